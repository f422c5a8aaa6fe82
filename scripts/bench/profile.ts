/**
 * Reads V8 CPU profiles (node --cpu-prof, or node:inspector's Profiler) into the few lines a
 * report needs: where the sampled time went, by function (self and, for natmapper's own code,
 * inclusive of what it calls) and by file. Positions in the bundled dist/ are mapped back to
 * src/ through the bundle's source map.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
export interface CpuProfile { nodes: ProfileNode[], samples?: number[], timeDeltas?: number[] }

export interface Entry { name: string, ms: number }
export interface ProfileSummary {
  /** Profiles summed (the figures are per profile: averages). */
  profiles: number
  /** Sampled time on the thread, idle and the profiler's own excluded. */
  sampledMs: number
  /** Sampled time the thread was idle (waiting in the event loop). */
  idleMs: number
  /** Self time by function. */
  self: Entry[]
  /** Self time by script (node internals by module, natmapper by file). */
  files: Entry[]
  /** Inclusive time of natmapper's own functions (src/ or dist/), each counted once per sample. */
  inclusive: Entry[]
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Per generated line, [column, source index, original line] segments in column order. */
type LineMap = Array<Array<[number, number, number]>>
interface SourceMap { sources: string[], lines: LineMap }

/** Decodes a source map's VLQ `mappings` (Source Map v3) into segments per generated line. */
function decodeMappings (mappings: string): LineMap {
  const lines: LineMap = []
  let source = 0
  let originalLine = 0
  for (const line of mappings.split(';')) {
    const segments: Array<[number, number, number]> = []
    let column = 0
    for (const segment of line.split(',')) {
      if (segment === '') continue
      const fields: number[] = []
      let value = 0
      let shift = 0
      for (const char of segment) {
        const digit = BASE64.indexOf(char)
        value += (digit & 31) << shift
        if ((digit & 32) !== 0) { shift += 5; continue }
        fields.push((value & 1) === 1 ? -(value >>> 1) : value >>> 1)
        value = 0
        shift = 0
      }
      column += fields[0] ?? 0
      if (fields.length >= 4) {
        source += fields[1] ?? 0
        originalLine += fields[2] ?? 0
        segments.push([column, source, originalLine])
      }
    }
    lines.push(segments)
  }
  return lines
}

const sourceMaps = new Map<string, SourceMap | undefined>()

/** The source map beside a bundled file of dist/, if it has one. */
function sourceMapOf (url: string): SourceMap | undefined {
  if (!sourceMaps.has(url)) {
    let map: SourceMap | undefined
    try {
      const raw = JSON.parse(readFileSync(`${fileURLToPath(url)}.map`, 'utf8')) as { sources: string[], mappings: string }
      map = { sources: raw.sources, lines: decodeMappings(raw.mappings) }
    } catch {
      map = undefined
    }
    sourceMaps.set(url, map)
  }
  return sourceMaps.get(url)
}

/** "src/core/mapping.ts:199" for a position in a bundled file, or undefined without a map. */
function originalPosition (url: string, line: number, column: number): string | undefined {
  if (!url.startsWith('file://') || !url.includes('/dist/')) return undefined
  const map = sourceMapOf(url)
  const segments = map?.lines[line]
  if (map === undefined || segments === undefined) return undefined
  let found: [number, number, number] | undefined
  for (const segment of segments) {
    if (segment[0] > column) break
    found = segment
  }
  if (found === undefined) return undefined
  return `${(map.sources[found[1]] ?? '?').replace(/^(\.\.\/)+/, '')}:${found[2] + 1}`
}

function shortUrl (url: string, root: string): string {
  return url.replace(/^file:\/\//, '').replace(root, '')
}

function isOwnCode (url: string, root: string): boolean {
  const path = shortUrl(url, root)
  return (path.startsWith('src/') || path.startsWith('dist/')) && url !== path
}

/** A function's name; anonymous ones (callbacks) by their position, a module's top level as such. */
function nameOf (frame: CallFrame): string {
  if (frame.functionName !== '') return frame.functionName
  return frame.lineNumber === 0 && frame.columnNumber === 0 ? '(module top level)' : '(anonymous)'
}

/** Where a frame's code is: its source file and line when the bundle's map knows, else the script. */
function placeOf (frame: CallFrame, root: string): string {
  return originalPosition(frame.url, frame.lineNumber, frame.columnNumber) ?? shortUrl(frame.url, root)
}

function top (map: Map<string, number>, count: number, divisor: number): Entry[] {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, count).map(([name, ms]) => ({ name, ms: ms / divisor }))
}

/** Summarizes one or more profiles of the same thing; every figure is the mean per profile. */
export function summarizeProfiles (profiles: readonly CpuProfile[], root: string, count = 10): ProfileSummary {
  const self = new Map<string, number>()
  const files = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let sampled = 0
  let idle = 0
  const add = (map: Map<string, number>, key: string, ms: number): void => { map.set(key, (map.get(key) ?? 0) + ms) }
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((node) => [node.id, node]))
    const parent = new Map<number, number>()
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
    const nodeMs = new Map<number, number>()
    const samples = profile.samples ?? []
    samples.forEach((id, i) => { nodeMs.set(id, (nodeMs.get(id) ?? 0) + (profile.timeDeltas?.[i] ?? 0) / 1000) })
    for (const [id, ms] of nodeMs) {
      const node = byId.get(id)
      if (node === undefined) continue
      const frame = node.callFrame
      if (frame.url === '' && frame.functionName === '(idle)') { idle += ms; continue }
      // The inspector session's own message dispatch (Profiler.stop): not the code profiled.
      if (frame.url === '' && frame.functionName === 'dispatch') continue
      sampled += ms
      const place = frame.url === '' ? `(${frame.functionName})` : placeOf(frame, root)
      const file = place.replace(/:\d+$/, '')
      add(self, frame.url === '' ? file : `${nameOf(frame)} (${place})`, ms)
      add(files, file, ms)
      // Every own function on this sample's stack gets its time once, however deep it recurses.
      const seen = new Set<string>()
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const ancestor = byId.get(at)?.callFrame
        if (ancestor === undefined || !isOwnCode(ancestor.url, root)) continue
        const key = `${nameOf(ancestor)} (${placeOf(ancestor, root)})`
        if (seen.has(key)) continue
        seen.add(key)
        add(inclusive, key, ms)
      }
    }
  }
  const divisor = Math.max(1, profiles.length)
  return { profiles: profiles.length, sampledMs: sampled / divisor, idleMs: idle / divisor, self: top(self, count, divisor), files: top(files, count, divisor), inclusive: top(inclusive, count, divisor) }
}
