/**
 * Turns the JSON results of one or more soak runs (`npm run soak -- --out DIR`) into Markdown:
 * faults applied by kind, time to recover (median and worst), invariant violations, heap and
 * handle figures.
 *
 *   node --import tsx scripts/soak-report.ts DIR_OR_FILES...                 (prints it)
 *   node --import tsx scripts/soak-report.ts DIR --update RELIABILITY.md      (replaces the part
 *        between <!-- soak-report:begin --> and <!-- soak-report:end --> in that file)
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { SoakResult } from './soak.js'

const BEGIN = '<!-- soak-report:begin -->'
const END = '<!-- soak-report:end -->'

function load (paths: readonly string[]): SoakResult[] {
  const files = paths.flatMap((path) => statSync(path).isDirectory()
    ? readdirSync(path).filter((name) => /^soak-\d+\.json$/.test(name)).sort().map((name) => `${path}/${name}`)
    : [path])
  return files.map((file) => JSON.parse(readFileSync(file, 'utf8')) as SoakResult)
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0
const mb = (bytes: number): string => (bytes / 1_048_576).toFixed(2)

export function renderSoakReport (runs: readonly SoakResult[]): string {
  const lines: string[] = []
  const minutes = runs.reduce((sum, run) => sum + run.wallSeconds / 60, 0)
  const episodes = runs.flatMap((run) => run.episodes)
  const violations = runs.flatMap((run) => run.violations.map((violation) => ({ ...violation, seed: run.seed })))
  lines.push(`${runs.length} run(s), seeds ${runs.map((run) => run.seed).join(', ')}; ${minutes.toFixed(1)} minutes of wall time in all; ` +
    `${episodes.length} fault episodes (${episodes.filter((episode) => episode.kinds.length > 1).length} with overlapping faults); ` +
    `${runs[0]?.agents.length ?? 0} NATs (${runs[0]?.agents.join(', ') ?? ''}) of ${runs[0]?.mappingsPerAgent ?? 0} mappings each. ` +
    `Started ${runs.map((run) => run.startedAt).join(', ')}.`)
  lines.push('')
  lines.push('Recovery: from the moment the episode\'s last fault was undone until every mapping of every NAT was established and the WAN host reached it at the address and port it reported. An episode counts for each kind it contained.')
  lines.push('')
  lines.push('| fault kind | episodes | alone | recovery median (ms) | worst (ms) | not recovered |')
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: |')
  const kinds = [...new Set(episodes.flatMap((episode) => episode.kinds))].sort()
  for (const kind of kinds) {
    const withKind = episodes.filter((episode) => episode.kinds.includes(kind))
    const times = withKind.flatMap((episode) => episode.recoveredMs === undefined ? [] : [episode.recoveredMs])
    lines.push(`| ${kind} | ${withKind.length} | ${withKind.filter((episode) => episode.kinds.length === 1).length} | ${median(times)} | ${Math.max(0, ...times)} | ${withKind.length - times.length} |`)
  }
  const all = episodes.flatMap((episode) => episode.recoveredMs === undefined ? [] : [episode.recoveredMs])
  lines.push(`| **all episodes** | ${episodes.length} | | ${median(all)} | ${Math.max(0, ...all)} | ${episodes.length - all.length} |`)
  lines.push('')
  const incidents = runs.flatMap((run) => (run.incidents ?? []).map((incident) => ({ ...incident, seed: run.seed })))
  lines.push(`Invariant violations: **${violations.length}**.`)
  for (const violation of violations) lines.push(`- seed ${violation.seed}, ${(violation.t / 1_000).toFixed(1)} s, ${violation.invariant}: ${violation.detail}`)
  lines.push('')
  lines.push(`Gateway breakdowns (miniupnpd's nftables backend refusing every rule until restarted; no client can mend that, so the soak restarts the gateway and requires recovery from then on): ${incidents.length}.`)
  for (const incident of incidents) lines.push(`- seed ${incident.seed}, after episode ${incident.episode}: \`${incident.evidence}\`; every mapping back ${String(incident.recoveredAfterRestartMs)} ms after the restart`)
  lines.push('')
  lines.push('Memory, per NAT process: heap used after a forced GC, live resources (timers, sockets and other async resources by async_hooks, unref\'d ones included) and open file descriptors, sampled after each episode had recovered (the same mappings open each time); median of the first third of the samples → median of the last third. Of the heap growth, the part that is V8\'s compiled code and bytecode (`v8.getHeapCodeStatistics()`; it grows while more code paths run and get optimised, then levels off) is shown beside it.')
  lines.push('')
  lines.push('| seed | NAT | samples | heap first third (MB) | heap last third (MB) | growth (MB) | of which code (MB) | live resources first → last | fds first → last |')
  lines.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |')
  for (const run of runs) {
    for (const [name, figures] of Object.entries(run.memory)) {
      lines.push(`| ${run.seed} | ${name} | ${figures.samples.length} | ${mb(figures.heapFirstThird)} | ${mb(figures.heapLastThird)} | ${mb(figures.heapLastThird - figures.heapFirstThird)} | ${figures.heapCodeFirstThird === undefined || figures.heapCodeLastThird === undefined ? '–' : mb(figures.heapCodeLastThird - figures.heapCodeFirstThird)} | ${figures.handlesFirstThird} → ${figures.handlesLastThird} | ${figures.fdsFirstThird} → ${figures.fdsLastThird} |`)
    }
  }
  lines.push('')
  const events: Record<string, number> = {}
  for (const run of runs) for (const counts of Object.values(run.agentEvents)) for (const [event, count] of Object.entries(counts)) events[event] = (events[event] ?? 0) + count
  lines.push(`Events the NATs reported in all: ${['gateway-reset', 'gateway-changed', 'external-address-changed', 'lost', 'changed', 'crash', 'warning', 'command-failed'].map((event) => `${event} ${events[event] ?? 0}`).join(', ')}.`)
  return lines.join('\n')
}

function main (): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { update: { type: 'string' } } })
  if (positionals.length === 0) throw new Error('usage: soak-report.ts DIR_OR_FILES... [--update FILE]')
  const report = renderSoakReport(load(positionals))
  if (values.update === undefined) {
    console.log(report)
    return
  }
  const text = readFileSync(values.update, 'utf8')
  const begin = text.indexOf(BEGIN)
  const end = text.indexOf(END)
  if (begin < 0 || end < begin) throw new Error(`${values.update} has no ${BEGIN} ... ${END} section`)
  writeFileSync(values.update, `${text.slice(0, begin + BEGIN.length)}\n${report}\n${text.slice(end)}`)
  console.log(`updated ${values.update}`)
}

main()
