/**
 * `npm run bench`: builds dist/, brings the lab up in each gateway mode in turn and measures
 * natmapper beside the floor (bare sockets making the same exchanges) and the reference clients
 * (natpmpc, upnpc, @achingbrain/nat-port-mapper), all in the same run. Writes BENCHMARKS.md and
 * prints it. Every client runs inside the lab's LAN namespace (scripts/bench/agent.ts); this
 * process only drives the lab and never sends a packet itself.
 *
 * A whole run takes about 10 minutes, 7 of them the 1 000-mapping phase (see MAPPING_DURATION);
 * BENCH_MAPPINGS=200 BENCH_MAPPING_DURATION=30000 BENCH_RUNS=5 makes a check of about 2 minutes.
 *
 * Environment: BENCH_RUNS (default 20) runs per row; BENCH_WARMUP (3); BENCH_SLOW_RUNS (5) for
 * "no NAT" rows that end at the 2.5 s timeout; BENCH_MAPPINGS (1000); BENCH_MAPPING_DURATION
 * (360000 ms: see below); BENCH_PHASES (all,pmp,upnp,closed,silent) to run only some gateway modes;
 * BENCH_CPU_PROF=dir to profile every agent (node --cpu-prof); BENCH_RAW=file to keep the raw
 * results as JSON, BENCH_REPORT_FROM=file to render BENCHMARKS.md from such a file again;
 * BENCH_OUTPUT=file to write the report there instead of BENCHMARKS.md (quick subset runs);
 * BENCH_DIST=dir to measure another build of natmapper (say, main's) instead of building dist/;
 * BENCH_SHARED_AGENT=1 to run every discovery client in one agent process (the old way), not one
 * agent per client family.
 *
 * A section another script maintains in BENCHMARKS.md between `<!-- NAME:start -->` and
 * `<!-- NAME:end -->` markers (the libp2p benchmark's) is kept as it is when the file is rewritten.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { acquireLabLock, lab, labUnavailableReason, releaseLabLock, ROOT, runLabScript, type LabMode } from '../test/helpers/lab.js'
import type { AgentConfig, AllocationResult, DiscoveryMode, DiscoveryOutput, DiscoveryReady, NoNatResult, ProcessResult, RenewalResult } from './bench/agent.js'
import { ALLOCATION_NODE_FLAGS } from './bench/allocation.js'
import { CLIENT_FAMILIES } from './bench/labels.js'
import { renderChart } from './bench/chart.js'
import { renderReport, type BenchResults, type Machine, type RenewalsMeasured } from './bench/report.js'

const env = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number, got ${process.env[name]}`)
  return value
}
const RUNS = Math.max(1, env('BENCH_RUNS', 20))
const WARM_UP = env('BENCH_WARMUP', 3)
const SLOW_RUNS = Math.max(1, env('BENCH_SLOW_RUNS', 5))
const IMPORT_RUNS = Math.max(RUNS, 30)
const RSS_RUNS = Math.max(1, Math.min(RUNS, 5))
const MAPPINGS = Math.max(1, env('BENCH_MAPPINGS', 1_000))
/**
 * miniupnpd 2.3.1 in the lab spends about 0.1 ms per rule it holds on every request (it re-reads
 * its nftables chains and /proc/net/tcp, and logs each rule): with 1 000 rules, renewing all of
 * them takes about 105 s. 360 s (renewals every 120 s) is what it sustains, with some headroom.
 */
const MAPPING_DURATION = env('BENCH_MAPPING_DURATION', 360_000)
const FIRST_PORT = 40_000
const PHASES = (process.env.BENCH_PHASES ?? 'all,pmp,upnp,closed,silent').split(',').map((phase) => phase.trim())
const AGENT = `${ROOT}scripts/bench/agent.ts`
/** BENCH_SHARED_AGENT=1: every discovery client in one agent, as before (to compare methodologies). */
const SHARED_AGENT = process.env.BENCH_SHARED_AGENT === '1'
const OUTPUT = process.env.BENCH_OUTPUT === undefined || process.env.BENCH_OUTPUT === '' ? `${ROOT}BENCHMARKS.md` : process.env.BENCH_OUTPUT
const DIST = process.env.BENCH_DIST === undefined || process.env.BENCH_DIST === '' ? `${ROOT}dist/` : `${process.env.BENCH_DIST.replace(/\/$/, '')}/`

const started = Date.now()
const log = (message: string): void => { process.stderr.write(`bench [${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}\n`) }

function agentArgs (config: AgentConfig, nodeFlags: string[] = []): string[] {
  const profile = process.env.BENCH_CPU_PROF
  const profiling = profile === undefined || profile === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`]
  return ['netns', 'exec', lab.lanNamespace, process.execPath, ...nodeFlags, ...profiling, '--import', 'tsx', AGENT, JSON.stringify(config)]
}

/** Runs one agent task inside the LAN namespace and returns the JSON object it prints last. */
function runAgent<T> (config: AgentConfig, nodeFlags: string[] = []): T {
  const result = spawnSync('ip', agentArgs(config, nodeFlags), { encoding: 'utf8', cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 })
  if (result.status !== 0) throw new Error(`bench agent (${config.task}) failed (${String(result.status ?? result.signal)}): ${result.stderr}${result.stdout.slice(-2000)}`)
  return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as T
}

/**
 * An agent driven line by line: each command written to its stdin is answered with one JSON line.
 * The discovery agents (one per client family) take their rounds this way, in turn.
 */
class AgentSession {
  readonly #child
  readonly #lines: AsyncIterator<string>
  #stderr = ''

  constructor (readonly config: AgentConfig) {
    this.#child = spawn('ip', agentArgs(config), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    this.#child.stderr.on('data', (chunk: Buffer) => { this.#stderr += chunk.toString() })
    this.#lines = createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]()
  }

  /** The agent's next line, parsed. */
  async next<T> (): Promise<T> {
    const line = await this.#lines.next()
    if (line.done === true) throw new Error(`bench agent (${this.config.task}) ended early: ${this.#stderr}`)
    return JSON.parse(line.value) as T
  }

  async command<T> (command: string): Promise<T> {
    this.#child.stdin.write(`${command}\n`)
    return await this.next<T>()
  }

  /** Sends the last command, and returns the last line once the agent has exited 0. */
  async finish<T> (command: string): Promise<T> {
    this.#child.stdin.end(`${command}\n`)
    const result = await this.next<T>()
    const code = await new Promise<number | null>((resolve) => {
      if (this.#child.exitCode !== null) resolve(this.#child.exitCode)
      else this.#child.on('close', resolve)
    })
    if (code !== 0) throw new Error(`bench agent (${this.config.task}) failed (${String(code)}): ${this.#stderr}`)
    return result
  }

  /** Ends the agent (after a failure elsewhere), so that none is left waiting for a command. */
  kill (): void {
    this.#child.stdin.destroy()
    this.#child.kill()
  }
}

/**
 * The discovery tables of one gateway mode: one agent per client family (floors, natmapper, the
 * in-process reference client, the whole-process ones), so that no client pays for garbage
 * another left in its process. Each round, every agent in turn times its rows once.
 */
async function measureDiscovery (mode: DiscoveryMode, base: { gateway: string, clientAddress: string }): Promise<DiscoveryOutput> {
  const groups = SHARED_AGENT ? [[...CLIENT_FAMILIES]] : CLIENT_FAMILIES.map((family) => [family])
  const agents = groups.map((families) => new AgentSession({ task: 'discovery', mode, families, ...base, root: ROOT, runs: RUNS }))
  try {
    const ready = await Promise.all(agents.map(async (agent) => await agent.next<DiscoveryReady>()))
    for (let round = 0; round < WARM_UP; round++) for (const agent of agents) await agent.command('warm')
    for (let run = 0; run < RUNS; run++) for (const agent of agents) await agent.command('run')
    const outputs: DiscoveryOutput[] = []
    for (const agent of agents) outputs.push(await agent.finish<DiscoveryOutput>('finish'))
    // The rows in the order the agents list them, whichever agent measured each.
    const tables: DiscoveryOutput['tables'] = {}
    for (const { group, client } of ready[0]?.rows ?? []) {
      const samples = outputs.map((output) => output.tables[group]?.[client]).find((found) => found !== undefined)
      if (samples !== undefined) (tables[group] ??= {})[client] = samples
    }
    return {
      tables,
      phases: Object.assign({}, ...outputs.map((output) => output.phases)),
      profiles: Object.assign({}, ...outputs.map((output) => output.profiles))
    }
  } catch (error) {
    for (const agent of agents) agent.kill()
    throw error
  }
}

/** DNAT rules for tcp ports [first, first + count) in the gateway's nftables. */
function gatewayRuleCount (first: number, count: number): number {
  return runLabScript('gateway.sh', ['mappings']).split('\n').filter((line) => {
    const [protocol, port] = line.trim().split(/\s+/)
    return protocol === 'tcp' && Number(port) >= first && Number(port) < first + count
  }).length
}

/**
 * The renewals agent is interactive: when it reports `held`, the gateway's rules are counted
 * while the mappings are still held; then it is told to close, and the rules are counted again.
 */
async function runRenewals (config: Extract<AgentConfig, { task: 'renewals' }>): Promise<RenewalsMeasured> {
  const child = spawn('ip', agentArgs(config, ['--expose-gc']), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  let rulesHeld = -1
  let last = ''
  for await (const line of createInterface({ input: child.stdout })) {
    last = line
    const event = (JSON.parse(line) as { event?: string }).event
    if (event === 'mapped' || event === 'period' || event === 'default-rate') log(`renewals: ${line}`)
    if (event === 'held') {
      rulesHeld = gatewayRuleCount(config.firstPort, config.count)
      child.stdin.end('close\n')
    }
  }
  const code = await new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    else child.on('close', resolve)
  })
  if (code !== 0) throw new Error(`bench renewals agent failed (${String(code)}): ${stderr}`)
  const result = JSON.parse(last) as RenewalResult
  return { ...result, rulesHeld, rulesLeft: gatewayRuleCount(config.firstPort, config.count) }
}

/**
 * Holds the lab (lock, fresh lab in `mode`) for one phase only, and leaves a moment after it, so
 * that others' tests waiting for the lab get it between phases.
 */
async function withLab<T> (mode: LabMode, body: () => Promise<T> | T): Promise<T> {
  await acquireLabLock()
  try {
    runLabScript('up.sh', ['--mode', mode])
    log(`lab up in mode ${mode}`)
    return await body()
  } finally {
    try { runLabScript('down.sh', []) } finally { releaseLabLock() }
    await new Promise((resolve) => setTimeout(resolve, 1_000))
  }
}

/** The modules `import 'dist/index.js'` loads: natmapper's own files, and the packages and builtins they import. */
function importGraph (entry: string): { files: number, packages: string[], builtins: string[] } {
  const files = new Set<string>()
  const packages = new Set<string>()
  const builtins = new Set<string>()
  const visit = (file: string): void => {
    if (files.has(file)) return
    files.add(file)
    // Static imports and re-exports, minified or not (esbuild may put one right after a `}`);
    // `import(...)` (on first use) does not match.
    for (const match of readFileSync(file, 'utf8').matchAll(/(?:^|[\n;}])\s*(?:import|export)\s*[{*\w][^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\n;}])\s*import\s*['"]([^'"]+)['"]/g)) {
      const specifier = match[1] ?? match[2] ?? ''
      if (specifier.startsWith('.')) visit(new URL(specifier, `file://${file}`).pathname)
      else if (specifier.startsWith('node:')) builtins.add(specifier)
      else packages.add(specifier)
    }
  }
  visit(entry)
  return { files: files.size, packages: [...packages].sort(), builtins: [...builtins].sort() }
}

function commandOutput (command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' })
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.trim()
}

function machine (): Machine {
  const osName = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type()
  const versions = commandOutput('dpkg-query', ['-W', '-f=${Package} ${Version}\\n', 'miniupnpd-nftables', 'natpmpc', 'miniupnpc'])
  const version = (name: string): string => new RegExp(`^${name} (\\S+)`, 'm').exec(versions)?.[1] ?? 'unknown'
  const achingbrain = JSON.parse(readFileSync(`${ROOT}node_modules/@achingbrain/nat-port-mapper/package.json`, 'utf8')) as { version: string }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown CPU',
    cores: os.cpus().length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    node: process.version,
    os: osName,
    kernel: os.release(),
    gateway: `miniupnpd ${commandOutput('/usr/sbin/miniupnpd', ['--version']).split(/\s+/)[1] ?? '?'} (Debian miniupnpd-nftables ${version('miniupnpd-nftables')})`,
    references: [
      `natpmpc ${version('natpmpc')} (libnatpmp)`,
      `upnpc ${version('miniupnpc')} (miniupnpc)`,
      `@achingbrain/nat-port-mapper ${achingbrain.version}`
    ]
  }
}

async function measure (): Promise<BenchResults> {
  const reason = labUnavailableReason()
  if (reason !== undefined) throw new Error(`the benchmark needs the lab: ${reason}`)
  if (process.env.BENCH_SKIP_BUILD !== '1' && DIST === `${ROOT}dist/`) {
    log('building dist/ (npm run build)')
    const build = spawnSync('npm', ['run', 'build'], { encoding: 'utf8', cwd: ROOT })
    if (build.status !== 0) throw new Error(`build failed: ${build.stdout}${build.stderr}`)
  }
  const gateway = lab.gatewayLanAddress
  const clientAddress = lab.lanAddress
  const results: BenchResults = {
    date: new Date().toISOString(),
    durationMs: 0,
    machine: machine(),
    runs: RUNS,
    warmUp: WARM_UP,
    slowRuns: SLOW_RUNS,
    importRuns: IMPORT_RUNS,
    rssRuns: RSS_RUNS,
    discovery: {},
    phases: {},
    discoveryProfiles: {},
    noNat: {}
  }
  const discovery = async (mode: DiscoveryMode): Promise<void> => {
    log(`discovery, mode ${mode}: ${RUNS} runs${mode === 'upnp' ? ' (upnpc takes ~2 s a run)' : ''}`)
    const output = await measureDiscovery(mode, { gateway, clientAddress })
    Object.assign(results.discovery, output.tables)
    Object.assign(results.phases, output.phases)
    Object.assign(results.discoveryProfiles, output.profiles)
  }
  for (const phase of PHASES) {
    switch (phase) {
      case 'all':
        await withLab('all', async () => {
          await discovery('all')
          log('bytes allocated per discover + map')
          results.allocation = runAgent<AllocationResult>({ task: 'allocation', gateway, clientAddress }, ALLOCATION_NODE_FLAGS)
          log('whole processes: CLI, import time, RSS')
          results.process = runAgent<ProcessResult>({ task: 'process', gateway, clientAddress, root: ROOT, runs: RUNS, importRuns: IMPORT_RUNS, rssRuns: RSS_RUNS })
        })
        break
      case 'pmp':
        await withLab('pmp', async () => {
          await discovery('pmp')
          log(`renewals: ${MAPPINGS} PCP mappings, mappingDuration ${MAPPING_DURATION} ms, three periods`)
          results.renewals = await runRenewals({ task: 'renewals', gateway, clientAddress, root: ROOT, count: MAPPINGS, firstPort: FIRST_PORT, mappingDuration: MAPPING_DURATION, periods: 3 })
        })
        break
      case 'upnp':
        await withLab('upnp', async () => {
          await discovery('upnp')
          log('RSS with one UPnP mapping')
          results.upnpRss = runAgent<ProcessResult>({ task: 'process', gateway, clientAddress, root: ROOT, runs: RUNS, importRuns: IMPORT_RUNS, rssRuns: RSS_RUNS, only: 'rss' })
        })
        break
      case 'closed':
      case 'silent':
        await withLab(phase, () => {
          log(`"no NAT" verdict, mode ${phase}`)
          results.noNat[phase] = runAgent<NoNatResult>({ task: 'no-nat', mode: phase, gateway, clientAddress, runs: RUNS, slowRuns: SLOW_RUNS })
        })
        break
      default:
        throw new Error(`BENCH_PHASES: unknown phase ${phase} (expected all, pmp, upnp, closed, silent)`)
    }
  }
  results.imports = importGraph(`${DIST}index.js`)
  results.durationMs = Date.now() - started
  return results
}

const from = process.env.BENCH_REPORT_FROM
const results = from === undefined || from === '' ? await measure() : JSON.parse(readFileSync(from, 'utf8')) as BenchResults
const raw = process.env.BENCH_RAW
if (raw !== undefined && raw !== '') writeFileSync(raw, JSON.stringify(results, null, 2))
/**
 * Sections of the old file between `<!-- NAME:start -->` and `<!-- NAME:end -->` (written by other
 * scripts), put back into the new report before its closing notes.
 */
function keepMarkedSections (report: string, previous: string): string {
  const sections = [...previous.matchAll(/<!-- ([\w-]+):start -->[\s\S]*?<!-- \1:end -->\n?/g)].map((match) => match[0].endsWith('\n') ? match[0] : `${match[0]}\n`)
  if (sections.length === 0) return report
  const notes = report.indexOf('\n## How each number is measured')
  const at = notes === -1 ? report.length : notes + 1
  return `${report.slice(0, at)}${sections.join('\n')}\n${report.slice(at)}`
}

const previous = existsSync(OUTPUT) ? readFileSync(OUTPUT, 'utf8') : ''
const report = keepMarkedSections(renderReport(results), previous)
writeFileSync(OUTPUT, report)
// The picture BENCHMARKS.md and the README show, beside the report.
writeFileSync(`${dirname(OUTPUT)}/benchmarks.svg`, renderChart(results))
process.stdout.write(report)
log(`wrote ${OUTPUT}`)
