/**
 * Runs inside the lab's LAN namespace (never elsewhere: it sends packets) and measures one task
 * of the benchmark, given as JSON in argv[2]; the last line it prints is one JSON object of
 * results. Driven by scripts/bench.ts, which owns the lab and its lock.
 *
 * natmapper is loaded from dist/ (what ships), not through tsx.
 *
 * Tasks:
 * - `discovery`: in-process discover and discover + first mapping for one gateway mode, beside
 *   the floor (bare sockets, floor.ts) and the reference clients (reference.ts), in the same run.
 *   One agent per client family (CLIENT_FAMILIES), driven round by round over stdin by
 *   scripts/bench.ts, so that no client runs in a process another client has filled with garbage.
 * - `no-nat`: how long until natmapper says "no NAT" when the gateway refuses or stays silent.
 * - `process`: whole processes: the CLI from start to mapping, `node -e 0`, natpmpc; import time;
 *   peak RSS with one mapping.
 * - `renewals`: one NAT holding many mappings through several renewal periods (interactive: it
 *   reports `held` and waits for a line on stdin before it closes, so that the gateway's rules can
 *   be counted while they are held).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { Session } from 'node:inspector/promises'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import type * as Natmapper from '../../src/index.js'
import type { DiscoverOptions, Mapping, WireMessage } from '../../src/index.js'
import { assertInLabNamespace } from '../../test/helpers/netns.js'
import { natPmpFloor, pcpFloor, pcpRenewalFloor, refusedFloor, upnpFloor, upnpMapAt } from './floor.js'
import { CLIENT, GROUP, NO_NAT, PROCESS, type ClientFamily } from './labels.js'
import { summarizeProfiles, type CpuProfile, type Entry, type ProfileSummary } from './profile.js'
import { bytesPerRun } from './allocation.js'
import { achingbrainPmp, achingbrainPmpMap, achingbrainUpnp, achingbrainUpnpMap, timeProcess, type Timings } from './reference.js'
import { gatewayQuiet } from './quiet.js'

assertInLabNamespace()

// natmapper as it ships: dist/, which scripts/bench.ts builds first (types from src/, the same
// API), or the build BENCH_DIST names (another branch's, for a before/after comparison).
const DIST = process.env.BENCH_DIST === undefined || process.env.BENCH_DIST === '' ? new URL('../../dist/', import.meta.url).pathname : `${process.env.BENCH_DIST.replace(/\/$/, '')}/`
const { discoverNAT, NoNATFoundError, probeGateway, wireChannel } = await import(pathToFileURL(`${DIST}index.js`).href) as typeof Natmapper

export type DiscoveryMode = 'all' | 'pmp' | 'upnp'
export type AgentConfig =
  | { task: 'discovery', mode: DiscoveryMode, families: ClientFamily[], gateway: string, clientAddress: string, root: string, runs: number }
  | { task: 'allocation', gateway: string, clientAddress: string }
  | { task: 'no-nat', mode: 'closed' | 'silent', gateway: string, clientAddress: string, runs: number, slowRuns: number }
  | { task: 'process', gateway: string, clientAddress: string, root: string, runs: number, importRuns: number, rssRuns: number, only?: 'rss' }
  | { task: 'renewals', gateway: string, clientAddress: string, root: string, count: number, firstPort: number, mappingDuration: number, periods: number, maxConcurrentRequests?: number }

/** Samples of one client in one table: discover and discover + map, in ms. */
export interface ClientSamples { discover: number[], map: number[], note?: string }
/** group → client → samples. */
export type DiscoveryResult = Record<string, Record<string, ClientSamples>>

const config = JSON.parse(process.argv[2] ?? '{}') as AgentConfig
const print = (value: unknown): void => { process.stdout.write(JSON.stringify(value) + '\n') }
const PORT = 31_000
/** CPU profiles of the import taken (and averaged) to show where its time goes. */
const IMPORT_PROFILES = 5

// ------------------------------------------------------------------------------------ discovery

/** natmapper in-process: discover alone, then (a second NAT) discover + first mapping. */
async function natmapper (options: DiscoverOptions): Promise<Timings> {
  const started = performance.now()
  const probeOnly = await discoverNAT(options)
  const discover = performance.now() - started
  await probeOnly.close()

  await gatewayQuiet()
  return { discover, map: await natmapperMap(options) }
}

/** natmapper's discover + first mapping on a fresh NAT, in ms; the close that follows is untimed. */
async function natmapperMap (options: DiscoverOptions): Promise<number> {
  const started = performance.now()
  const nat = await discoverNAT(options)
  const mapping = await nat.newMapping('tcp', PORT)
  const map = performance.now() - started
  if (!mapping.established) throw new Error(`natmapper ${JSON.stringify(options)}: not established: ${String(mapping.lastError)}`)
  await nat.close()
  return map
}

interface Scenario {
  group: string
  client: string
  family: ClientFamily
  note?: string
  run: () => Promise<Timings> | Timings
  /** Whole-process references are not warmed up (each run is a new process anyway). */
  warm?: boolean
}

function discoveryScenarios (mode: DiscoveryMode, gateway: string, clientAddress: string): Scenario[] {
  const natpmpc = (): Timings => {
    const discover = timeProcess('natpmpc', ['-g', gateway])
    // natpmpc -a asks for the address, then maps: the same two exchanges as discover + map.
    const map = timeProcess('natpmpc', ['-g', gateway, '-a', String(PORT), String(PORT), 'tcp', '60'])
    timeProcess('natpmpc', ['-g', gateway, '-a', '0', String(PORT), 'tcp', '0'])
    return { discover, map }
  }
  const upnpcRun = (): Timings => {
    // upnpc discovers (waiting out its 2 s search window), then maps; no separate discover step.
    const map = timeProcess('upnpc', ['-e', 'bench', '-a', clientAddress, String(PORT), String(PORT), 'TCP', '60'])
    timeProcess('upnpc', ['-u', `http://${gateway}:5000/rootDesc.xml`, '-d', String(PORT), 'TCP'])
    return { discover: Number.NaN, map }
  }
  const pmp = { protocols: ['nat-pmp' as const] }
  const pcp = { protocols: ['pcp' as const] }
  // The SSDP rows search every time, as a first contact does; the remembered row does not.
  const upnp = { protocols: ['upnp' as const], rememberGateway: false }
  const ssdp = 'SSDP every time (rememberGateway: false)'
  switch (mode) {
    case 'all': {
      const group = GROUP.all
      return [
        { group, client: CLIENT.pcpFloor, family: 'floor', run: async () => await pcpFloor(gateway, clientAddress, PORT), warm: true },
        { group, client: CLIENT.pcpRouteFloor, family: 'floor', run: async () => await pcpFloor(gateway, clientAddress, PORT, true), warm: true },
        { group, client: CLIENT.natmapperDefaults, family: 'natmapper', run: async () => await natmapper({}), warm: true },
        { group, client: CLIENT.natmapperAllGateway, family: 'natmapper', run: async () => await natmapper({ gateway }), warm: true },
        { group, client: CLIENT.achingbrainPmp, family: 'reference', note: 'NAT-PMP only (no PCP, no discovery: gateway given)', run: async () => await achingbrainPmp(gateway, clientAddress, PORT), warm: true },
        { group, client: CLIENT.achingbrainUpnp, family: 'reference', note: 'UPnP only (what js-libp2p uses)', run: async () => await achingbrainUpnp(clientAddress, PORT), warm: true },
        { group, client: CLIENT.natpmpc, family: 'process', note: 'NAT-PMP', run: natpmpc }
      ]
    }
    case 'pmp': {
      return [
        { group: GROUP.pcp, client: CLIENT.pcpFloor, family: 'floor', run: async () => await pcpFloor(gateway, clientAddress, PORT), warm: true },
        { group: GROUP.pcp, client: CLIENT.natmapperPcp, family: 'natmapper', run: async () => await natmapper({ ...pcp, gateway }), warm: true },
        { group: GROUP.pcp, client: CLIENT.pcpRouteFloor, family: 'floor', run: async () => await pcpFloor(gateway, clientAddress, PORT, true), warm: true },
        { group: GROUP.pcp, client: CLIENT.natmapperPcpRoute, family: 'natmapper', run: async () => await natmapper(pcp), warm: true },
        { group: GROUP.natPmp, client: CLIENT.natPmpFloor, family: 'floor', run: async () => await natPmpFloor(gateway, PORT), warm: true },
        { group: GROUP.natPmp, client: CLIENT.natmapperNatPmp, family: 'natmapper', run: async () => await natmapper({ ...pmp, gateway }), warm: true },
        { group: GROUP.natPmp, client: CLIENT.natPmpRouteFloor, family: 'floor', run: async () => await natPmpFloor(gateway, PORT, true), warm: true },
        { group: GROUP.natPmp, client: CLIENT.natmapperNatPmpRoute, family: 'natmapper', run: async () => await natmapper(pmp), warm: true },
        { group: GROUP.natPmp, client: CLIENT.achingbrainPmp, family: 'reference', note: 'gateway given (it has no discovery); map() asks for the address again', run: async () => await achingbrainPmp(gateway, clientAddress, PORT), warm: true },
        { group: GROUP.natPmp, client: CLIENT.natpmpc, family: 'process', run: natpmpc }
      ]
    }
    case 'upnp': {
      const group = GROUP.upnp
      return [
        { group, client: CLIENT.upnpFloor, family: 'floor', run: async () => await upnpFloor(gateway, clientAddress, PORT), warm: true },
        { group, client: CLIENT.natmapperUpnp, family: 'natmapper', note: ssdp, run: async () => await natmapper({ ...upnp, gateway }), warm: true },
        { group, client: CLIENT.natmapperUpnpRoute, family: 'natmapper', note: ssdp, run: async () => await natmapper(upnp), warm: true },
        { group, client: CLIENT.natmapperDefaults, family: 'natmapper', note: ssdp, run: async () => await natmapper({ rememberGateway: false }), warm: true },
        { group, client: CLIENT.upnpKnownFloor, family: 'floor', run: async () => await upnpMapAt(new URL(`http://${gateway}:5000/rootDesc.xml`), clientAddress, PORT), warm: true },
        { group, client: CLIENT.natmapperUpnpRemembered, family: 'natmapper', note: 'one GET, racing the search', run: async () => await natmapper({ protocols: ['upnp'], gateway }), warm: true },
        { group, client: CLIENT.achingbrainUpnp, family: 'reference', note: 'map() = AddAnyPortMapping + GetExternalIPAddress', run: async () => await achingbrainUpnp(clientAddress, PORT), warm: true },
        { group, client: CLIENT.upnpc, family: 'process', note: 'waits out its 2 s discovery window; no separate discover step', run: upnpcRun }
      ]
    }
  }
}

/** Where one discover + map spent its time, from the wire timestamps (ms). */
export interface PhaseSamples {
  /** From the call to the winning protocol's first request on the wire (options, route, sockets, other probes). */
  before: number[]
  /** Waiting for the gateway: the union of [a request, the first reply after it], the winning protocol's. */
  waiting: number[]
  /** Between a reply and the next request (decoding, state, the next request built). */
  between: number[]
  /** From the last reply to the promise resolved. */
  after: number[]
  total: number[]
}
export interface DiscoveryOutput {
  tables: DiscoveryResult
  phases: Record<string, PhaseSamples>
  /** client → CPU profile of PROFILED_RUNS discover + map runs, in ms per run. */
  profiles: Record<string, ProfileSummary>
}

/** Discover + map runs made under the CPU profiler, per profiled client. */
const PROFILED_RUNS = 40

/** natmapper's discover + map, PROFILED_RUNS times under the CPU profiler; figures are per run. */
async function profileRuns (options: DiscoverOptions, root: string): Promise<ProfileSummary> {
  const session = new Session()
  session.connect()
  try {
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 50 })
    await session.post('Profiler.start')
    for (let run = 0; run < PROFILED_RUNS; run++) {
      const nat = await discoverNAT(options)
      await nat.newMapping('tcp', PORT)
      await nat.close()
    }
    const { profile } = await session.post('Profiler.stop')
    const summary = summarizeProfiles([profile as CpuProfile], root, 10)
    const perRun = (entries: Entry[]): Entry[] => entries.map((entry) => ({ name: entry.name, ms: entry.ms / PROFILED_RUNS }))
    return { ...summary, profiles: PROFILED_RUNS, sampledMs: summary.sampledMs / PROFILED_RUNS, idleMs: summary.idleMs / PROFILED_RUNS, self: perRun(summary.self), files: perRun(summary.files), inclusive: perRun(summary.inclusive) }
  } finally {
    session.disconnect()
  }
}

/**
 * natmapper's discover + map again, with the `natmapper:wire` diagnostics channel timestamping
 * each message: the time outside "waiting" is the library's own (plus the kernel's send path).
 */
async function phases (options: DiscoverOptions, runs: number): Promise<PhaseSamples> {
  const events: Array<{ at: number, protocol: string, direction: 'send' | 'receive' }> = []
  const onMessage = (message: unknown): void => {
    const wire = message as WireMessage
    events.push({ at: performance.now(), protocol: wire.protocol, direction: wire.direction })
  }
  const samples: PhaseSamples = { before: [], waiting: [], between: [], after: [], total: [] }
  wireChannel.subscribe(onMessage)
  try {
    for (let run = 0; run < runs; run++) {
      await gatewayQuiet()
      events.length = 0
      const started = performance.now()
      const nat = await discoverNAT(options)
      const mapping = await nat.newMapping('tcp', PORT)
      const ended = performance.now()
      if (!mapping.established) throw new Error(`phases: not established: ${String(mapping.lastError)}`)
      // Only the protocol that won is on the critical path; the others' messages (losing probes,
      // a multicast search) count as natmapper's own time spent beside it.
      const lane = nat.type.startsWith('upnp') ? 'upnp' : nat.type
      const seen = events.filter((event) => event.at <= ended && event.protocol === lane)
      await nat.close()
      const firstSend = seen.find((event) => event.direction === 'send')?.at ?? ended
      const lastReceive = seen.findLast((event) => event.direction === 'receive')?.at ?? firstSend
      // The union of [a request, the first reply after it]: a request with no reply before the
      // end (a search repeated, a multicast copy) adds nothing of its own.
      const replies = seen.filter((event) => event.direction === 'receive').map((event) => event.at)
      let waiting = 0
      let coveredUntil = Number.NEGATIVE_INFINITY
      for (const event of seen) {
        if (event.direction !== 'send') continue
        const reply = replies.find((at) => at >= event.at)
        if (reply === undefined) continue
        waiting += Math.max(0, reply - Math.max(event.at, coveredUntil))
        coveredUntil = Math.max(coveredUntil, reply)
      }
      const total = ended - started
      samples.before.push(firstSend - started)
      samples.waiting.push(waiting)
      samples.after.push(ended - lastReceive)
      samples.between.push(total - (firstSend - started) - waiting - (ended - lastReceive))
      samples.total.push(total)
    }
  } finally {
    wireChannel.unsubscribe(onMessage)
  }
  return samples
}

/** One row of a discovery table, in the order the report shows it. */
export interface DiscoveryRow { group: string, client: string, note?: string }
/** What a discovery agent says when it is ready: every row of the mode, in order, its family's or not. */
export interface DiscoveryReady { event: 'ready', rows: DiscoveryRow[] }

/**
 * Measures the rows of one client family, a round at a time, as scripts/bench.ts asks over stdin:
 * `warm` (an untimed round: module loading, the JIT, the first sockets), `run` (a timed round),
 * `finish` (then the traced and profiled runs of natmapper's rows, and the results). The driver
 * asks each family's agent in turn, so a table's rows still share the same minutes.
 */
async function discoveryTask (task: Extract<AgentConfig, { task: 'discovery' }>): Promise<DiscoveryOutput> {
  const every = discoveryScenarios(task.mode, task.gateway, task.clientAddress)
  const scenarios = every.filter((scenario) => task.families.includes(scenario.family))
  print({ event: 'ready', rows: every.map(({ group, client, note }) => ({ group, client, ...(note === undefined ? {} : { note }) })) } satisfies DiscoveryReady)
  const tables: DiscoveryResult = {}
  for await (const line of createInterface({ input: process.stdin })) {
    const command = line.trim()
    if (command === 'finish') break
    if (command !== 'warm' && command !== 'run') throw new Error(`discovery agent: unknown command ${JSON.stringify(command)}`)
    for (const scenario of scenarios) {
      if (command === 'warm') {
        if (scenario.warm === true) await scenario.run()
        continue
      }
      await gatewayQuiet()
      const timings = await scenario.run()
      const samples = ((tables[scenario.group] ??= {})[scenario.client] ??= { discover: [], map: [], ...(scenario.note === undefined ? {} : { note: scenario.note }) })
      if (!Number.isNaN(timings.discover)) samples.discover.push(timings.discover)
      samples.map.push(timings.map)
    }
    print({ event: 'done' })
  }
  if (!task.families.includes('natmapper')) return { tables, phases: {}, profiles: {} }
  const traced: Record<string, PhaseSamples> = {}
  const profiles: Record<string, ProfileSummary> = {}
  const gateway = task.gateway
  if (task.mode === 'all') {
    traced[CLIENT.natmapperDefaults] = await phases({}, task.runs)
    traced[CLIENT.natmapperAllGateway] = await phases({ gateway }, task.runs)
  } else if (task.mode === 'pmp') {
    traced[CLIENT.natmapperPcp] = await phases({ protocols: ['pcp'], gateway }, task.runs)
    traced[CLIENT.natmapperNatPmp] = await phases({ protocols: ['nat-pmp'], gateway }, task.runs)
    profiles[CLIENT.natmapperPcp] = await profileRuns({ protocols: ['pcp'], gateway }, task.root)
    profiles[CLIENT.natmapperNatPmp] = await profileRuns({ protocols: ['nat-pmp'], gateway }, task.root)
  } else if (task.mode === 'upnp') {
    traced[CLIENT.natmapperUpnp] = await phases({ protocols: ['upnp'], gateway, rememberGateway: false }, task.runs)
    traced[CLIENT.natmapperUpnpRemembered] = await phases({ protocols: ['upnp'], gateway }, task.runs)
  }
  return { tables, phases: traced, profiles }
}

// ------------------------------------------------------------------------------------- allocation

/** client → bytes allocated on the JS heap per discover + map (with its delete), one figure per round. */
export type AllocationResult = Record<string, number[]>

/**
 * What each client allocates per discover + map and the delete after it (gateway mode all):
 * counted, not timed (allocation.ts). The agent is started with a large young generation.
 */
async function allocationTask (task: Extract<AgentConfig, { task: 'allocation' }>): Promise<AllocationResult> {
  const { gateway, clientAddress } = task
  const clients: Array<[string, () => Promise<unknown>]> = [
    [CLIENT.pcpRouteFloor, async () => await pcpFloor(gateway, clientAddress, PORT, true)],
    [CLIENT.natmapperDefaults, async () => await natmapperMap({})],
    [CLIENT.natmapperAllGateway, async () => await natmapperMap({ gateway })],
    [CLIENT.achingbrainPmp, async () => await achingbrainPmpMap(gateway, clientAddress, PORT)],
    [CLIENT.achingbrainUpnp, async () => await achingbrainUpnpMap(clientAddress, PORT)]
  ]
  const result: AllocationResult = {}
  for (const [client, run] of clients) result[client] = await bytesPerRun(run)
  return result
}

// ----------------------------------------------------------------------------------------- no NAT

export interface NoNatResult {
  rows: Record<string, { ms: number[], outcome: string, note?: string }>
  /** probeGateway() with default options: each probe's time and error code. */
  probes: Array<Array<{ protocol: string, ms: number, error?: string }>>
  /** Verdicts that took over a second, with each protocol's reason. */
  slow: Array<{ options: string, ms: number, reasons: Record<string, string> }>
}

/** Runs that took over a second, and why each protocol said no in them. */
const slowVerdicts: NoNatResult['slow'] = []

/** Time until discoverNAT rejects; anything but NoNATFoundError is a failure of the benchmark. */
async function noNatVerdict (options: DiscoverOptions): Promise<number> {
  const started = performance.now()
  try {
    const nat = await discoverNAT(options)
    await nat.close()
  } catch (error) {
    if (!(error instanceof NoNATFoundError)) throw error
    const elapsed = performance.now() - started
    if (elapsed > 1_000) {
      slowVerdicts.push({
        options: JSON.stringify(options),
        ms: elapsed,
        reasons: Object.fromEntries(Object.entries(error.reasons).map(([protocol, reason]) => [protocol, `${(reason as { code?: string }).code ?? reason.name}: ${reason.message}`]))
      })
    }
    return elapsed
  }
  throw new Error(`discoverNAT(${JSON.stringify(options)}) found a NAT where there is none`)
}

async function noNatTask (task: Extract<AgentConfig, { task: 'no-nat' }>): Promise<NoNatResult> {
  const rows: NoNatResult['rows'] = {}
  const sample = async (name: string, outcome: string, measure: () => Promise<number> | number, note?: string): Promise<void> => {
    const first = await measure()
    // A verdict that is a timeout (about 2.5 s each) is sampled fewer times: it is a timer.
    const runs = first > 1_000 ? task.slowRuns : task.runs
    const values = [first]
    while (values.length < runs) values.push(await measure())
    rows[name] = { ms: values, outcome, ...(note === undefined ? {} : { note }) }
  }
  await noNatVerdict({ protocols: ['pcp', 'nat-pmp'] }) // warm-up: module loading and the JIT
  if (task.mode === 'closed') {
    await sample(NO_NAT.floor, 'ECONNREFUSED', async () => await refusedFloor(task.gateway, task.clientAddress))
  }
  await sample(NO_NAT.defaults, 'NoNATFoundError', async () => await noNatVerdict({}))
  await sample(NO_NAT.binary, 'NoNATFoundError', async () => await noNatVerdict({ protocols: ['pcp', 'nat-pmp'] }))
  if (task.mode === 'closed') {
    await sample(NO_NAT.natpmpc, 'exit 1', () => timeProcess('natpmpc', ['-g', task.gateway], true))
  }
  const probes: NoNatResult['probes'] = []
  for (let run = 0; run < 3; run++) {
    const report = await probeGateway({})
    probes.push(report.probes.map((probe) => ({
      protocol: probe.protocol,
      ms: probe.ms,
      ...(probe.error === undefined ? {} : { error: `${(probe.error as { code?: string }).code ?? probe.error.name}: ${probe.error.message}` })
    })))
  }
  return { rows, probes, slow: slowVerdicts }
}

// ------------------------------------------------------------------------------- whole processes

/** process.memoryUsage() and the peak RSS (getrusage maxrss), in bytes, of one child process. */
export interface MemorySample { maxRSS: number, rss: number, heapTotal: number, heapUsed: number, external: number, arrayBuffers: number }

export interface ProcessResult {
  /** name → ms samples. */
  times: Record<string, number[]>
  /** name → one memory sample per run. */
  memory: Record<string, MemorySample[]>
  /** Where the import's time goes: CPU profiles of `await import(dist/index.js)` alone. */
  importProfile?: ProfileSummary
}

function nodeOutput (args: readonly string[]): string {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 10_000, maxBuffer: 256 * 1024 * 1024 })
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${String(result.status ?? result.signal)}: ${result.stdout}${result.stderr}`)
  return result.stdout.trim()
}

async function processTask (task: Extract<AgentConfig, { task: 'process' }>): Promise<ProcessResult> {
  const result: ProcessResult = { times: {}, memory: {} }
  const add = (table: Record<string, number[]>, name: string, value: number): void => { (table[name] ??= []).push(value) }
  const index = pathToFileURL(`${DIST}index.js`).href
  const cli = `${DIST}cli/main.js`
  const node = process.execPath

  if (task.only === undefined) {
    for (let run = 0; run < task.runs; run++) {
      add(result.times, PROCESS.nodeFloor, timeProcess(node, ['-e', '0']))
      add(result.times, PROCESS.cliPcp, timeProcess(node, [cli, 'map', 'tcp', String(33_000 + run), '--once', '--duration', '30', '--protocol', 'pcp', '--gateway', task.gateway]))
      add(result.times, PROCESS.cliNatPmp, timeProcess(node, [cli, 'map', 'tcp', String(34_000 + run), '--once', '--duration', '30', '--protocol', 'nat-pmp', '--gateway', task.gateway]))
      add(result.times, PROCESS.cliDefaults, timeProcess(node, [cli, 'map', 'tcp', String(35_000 + run), '--once', '--duration', '30']))
      add(result.times, PROCESS.natpmpc, timeProcess('natpmpc', ['-g', task.gateway, '-a', String(36_000 + run), String(36_000 + run), 'tcp', '60']))
      add(result.times, PROCESS.cliVersion, timeProcess(node, [cli, '--version']))
      add(result.times, PROCESS.nonceFloor, timeProcess(node, ['-e', 'crypto.getRandomValues(new Uint8Array(12))']))
    }
    const measureImport = 'const t = performance.now(); await import(process.argv[1]); process.stdout.write(String(performance.now() - t))'
    for (let run = 0; run < task.importRuns; run++) {
      add(result.times, PROCESS.importIndex, Number(nodeOutput(['--input-type=module', '-e', measureImport, index])))
      add(result.times, PROCESS.importProcess, timeProcess(node, ['--input-type=module', '-e', 'await import(process.argv[1])', index]))
      add(result.times, PROCESS.emptyModuleProcess, timeProcess(node, ['--input-type=module', '-e', '']))
    }
    // The import alone under the profiler (started after node:inspector itself has loaded).
    const profileImport = `
      const { Session } = await import('node:inspector/promises')
      const session = new Session()
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.setSamplingInterval', { interval: 100 })
      await session.post('Profiler.start')
      await import(process.argv[1])
      const { profile } = await session.post('Profiler.stop')
      process.stdout.write(JSON.stringify(profile))`
    const profiles: CpuProfile[] = []
    for (let run = 0; run < IMPORT_PROFILES; run++) profiles.push(JSON.parse(nodeOutput(['--input-type=module', '-e', profileImport, index])) as CpuProfile)
    result.importProfile = summarizeProfiles(profiles, task.root)
  }

  const report = 'const u = process.resourceUsage(); process.stdout.write(JSON.stringify({ maxRSS: u.maxRSS * 1024, ...process.memoryUsage() }))'
  const importOnly = `await import(process.argv[1]); ${report}`
  const holdOne = `
    const { discoverNAT } = await import(process.argv[1])
    const nat = await discoverNAT()
    const mapping = await nat.newMapping('tcp', 37000)
    if (!mapping.established) throw new Error('not established: ' + String(mapping.lastError))
    ${report}
    await nat.close()`
  // The floor: the same job with bare sockets (route table read, PCP ANNOUNCE then MAP with a
  // random nonce), holding the mapping while it reports; the delete follows.
  const bareSockets = `
    const dgram = require('node:dgram')
    const { randomBytes } = require('node:crypto')
    const { readFile } = require('node:fs/promises')
    const [gateway, client] = process.argv.slice(1)
    const header = (opcode, lifetime, length) => {
      const packet = Buffer.alloc(length)
      packet[0] = 2; packet[1] = opcode; packet.writeUInt32BE(lifetime, 4); packet.writeUInt16BE(0xffff, 18)
      client.split('.').forEach((octet, i) => { packet[20 + i] = Number(octet) })
      return packet
    }
    readFile('/proc/net/route', 'utf8').then(() => {
      const socket = dgram.createSocket('udp4')
      const map = header(1, 60, 60)
      randomBytes(12).copy(map, 24); map[36] = 6; map.writeUInt16BE(37001, 40); map.writeUInt16BE(37001, 42); map.writeUInt16BE(0xffff, 54)
      let step = 0
      socket.on('message', () => {
        step++
        if (step === 1) socket.send(map)
        else if (step === 2) { ${report}; map.writeUInt32BE(0, 4); socket.send(map) }
        else socket.close()
      })
      socket.connect(5351, gateway, () => { socket.send(header(0, 0, 24)) })
    })`
  const rows: Array<[string, string[]]> = [[PROCESS.nodeFloor, ['-e', report]]]
  if (task.only === undefined) {
    rows.push([PROCESS.rssEmptyModule, ['--input-type=module', '-e', report]])
    rows.push([PROCESS.rssBareSockets, ['-e', bareSockets, task.gateway, task.clientAddress]])
    // The same floor loaded the way natmapper is: an ES module file imported by URL (Node's file
    // loader, ~1.7 MB, is then part of it), for comparison.
    const moduleFloor = `${mkdtempSync(`${tmpdir()}/natmapper-bench-`)}/floor.mjs`
    writeFileSync(moduleFloor, [
      "import dgram from 'node:dgram'", "import { randomBytes } from 'node:crypto'", "import { readFile } from 'node:fs/promises'",
      bareSockets.replace(/^\s*const (dgram|\{ randomBytes \}|\{ readFile \}) = require\([^)]*\)$/gm, '')
    ].join('\n'))
    rows.push([PROCESS.rssBareSocketsModule, ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(moduleFloor).href)})`, task.gateway, task.clientAddress]])
    rows.push([PROCESS.rssImportOnly, ['--input-type=module', '-e', importOnly, index]])
  }
  rows.push([task.only === 'rss' ? PROCESS.rssOneUpnpMapping : PROCESS.rssOneMapping, ['--input-type=module', '-e', holdOne, index]])
  for (let run = 0; run < task.rssRuns; run++) {
    for (const [name, args] of rows) (result.memory[name] ??= []).push(JSON.parse(nodeOutput(args)) as MemorySample)
  }
  return result
}

// ------------------------------------------------------------------------------------ renewals

export interface RenewalPeriod { cpuPercent: number, cpuMs: number, userMs: number, systemMs: number, wallMs: number, renewed: number, failed: number, lost: number, established: number, heapUsed: number }
export interface RenewalResult {
  count: number
  mappingDuration: number
  setupMs: number
  establishedAfterSetup: number
  heapBefore: number
  heapAfter: number
  rssAfter: number
  periods: RenewalPeriod[]
  peakRequestsInFlight: number
  maxConcurrentRequests: number
  established: number
  distinctPorts: number
  renewed: number
  changed: number
  failed: number
  lost: number
  closeMs: number
  /** One more renewal period, after the measured ones, under the CPU profiler (its CPU is not counted above). */
  profile: ProfileSummary & { windowMs: number, cpuPercent: number, renewed: number }
  /**
   * The same floor paced as the measured periods renew (count / a third of mappingDuration): a
   * process woken less often pays more per wake-up, so this is the floor of those periods.
   */
  pacedFloor: { exchanges: number, cpuMsPerExchange: number, perSecond: number }
  /**
   * A smaller NAT renewing at the rate 1 000 mappings at the default 60 s duration would (50 a
   * second), which the gateway cannot sustain with 1 000 rules: CPU per renewal at that pace,
   * beside the bare-socket floor at the same pace.
   */
  defaultRate: DefaultRateResult
  /** ms per mapping created, for each tenth of them in order: the gateway's pace as its rules grow. */
  creationPace: number[]
  /** CPU of this process while it holds nothing and waits (% of one core): what the periods include anyway. */
  idlePercent: number
}

const gc = (globalThis as { gc?: () => void }).gc
function heapAfterGc (): number {
  if (gc === undefined) throw new Error('run the renewals task with --expose-gc')
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** How long the floor paced as the periods renew is timed. */
const PACED_FLOOR_MS = 30_000
/** The longest stretch of a renewal period that is profiled. */
const PROFILE_WINDOW_MS = 20_000
/** How long the agent's own idle CPU is measured, before any NAT exists. */
const IDLE_MS = 3_000
/** The default-rate measurement: this many mappings, renewed 50 times a second in all. */
const DEFAULT_RATE_MAPPINGS = 100
const DEFAULT_RATE_PER_SECOND = 1_000 / (60 / 3)
/** Renewal periods of the default-rate NAT in each timed window. */
const DEFAULT_RATE_PERIODS = 5
/**
 * Untimed between the cold window and the steady one, on both sides: V8 (and Node's own dgram and
 * timer code) keeps optimising for the first half minute or so at this rate, and a program that
 * holds mappings for days lives in the steady state.
 */
const DEFAULT_RATE_LEAD_MS = 20_000
/** Blocks of [floor, natmapper] at the default rate, one after the other (the machine's load drifts). */
const DEFAULT_RATE_BLOCKS = 2

/** CPU of one side's timed windows, summed over the blocks. */
export interface RateWindow {
  /** Renewals granted (natmapper) or exchanges made (floor). */
  count: number
  wallMs: number
  userMs: number
  systemMs: number
  cpuMsPerRenewal: number
}

export interface DefaultRateResult {
  mappings: number
  mappingDuration: number
  blocks: number
  leadMs: number
  failed: number
  lost: number
  /** The first window after one untimed period: the code still warming up. */
  cold: { nat: RateWindow, floor: RateWindow }
  /** The window after DEFAULT_RATE_LEAD_MS more: the steady state, what the target is about. */
  steady: { nat: RateWindow, floor: RateWindow }
}

function addWindow (into: RateWindow, count: number, wallMs: number, used: NodeJS.CpuUsage): void {
  into.count += count
  into.wallMs += wallMs
  into.userMs += used.user / 1000
  into.systemMs += used.system / 1000
  into.cpuMsPerRenewal = (into.userMs + into.systemMs) / into.count
}

const emptyWindow = (): RateWindow => ({ count: 0, wallMs: 0, userMs: 0, systemMs: 0, cpuMsPerRenewal: Number.NaN })

/**
 * DEFAULT_RATE_MAPPINGS mappings whose duration makes them renew 50 times a second in all, the
 * rate of 1 000 mappings at the default 60 s. In each block the bare-socket floor at the same rate
 * comes first, then a fresh NAT; each side is timed twice for DEFAULT_RATE_PERIODS renewal periods:
 * cold (at once) and steady (after DEFAULT_RATE_LEAD_MS more of the same, untimed).
 */
async function defaultRateTask (task: Extract<AgentConfig, { task: 'renewals' }>, firstPort: number): Promise<DefaultRateResult> {
  const mappingDuration = 3 * 1000 * DEFAULT_RATE_MAPPINGS / DEFAULT_RATE_PER_SECOND
  const timedMs = DEFAULT_RATE_PERIODS * mappingDuration / 3
  const cold = { nat: emptyWindow(), floor: emptyWindow() }
  const steady = { nat: emptyWindow(), floor: emptyWindow() }
  let failed = 0
  let lost = 0
  const exchangesIn = (ms: number): number => Math.round(DEFAULT_RATE_PER_SECOND * ms / 1000)
  for (let block = 0; block < DEFAULT_RATE_BLOCKS; block++) {
    for (const [window, ms] of [[cold, timedMs], [undefined, DEFAULT_RATE_LEAD_MS], [steady, timedMs]] as const) {
      const floor = await pcpRenewalFloor(task.gateway, task.clientAddress, firstPort - 1, exchangesIn(ms), ms)
      if (window !== undefined) addWindow(window.floor, floor.exchanges, floor.wallMs, floor.used)
    }

    const nat = await discoverNAT({ protocols: ['pcp'], gateway: task.gateway, mappingDuration, maxConcurrentRequests: task.maxConcurrentRequests ?? 8 })
    const counts = { renewed: 0, failed: 0, lost: 0 }
    nat.on('mapping-renewed', () => { counts.renewed++ })
    nat.on('mapping-failed', () => { counts.failed++ })
    nat.on('mapping-lost', () => { counts.lost++ })
    await Promise.all(Array.from({ length: DEFAULT_RATE_MAPPINGS }, async (_, i) => await nat.newMapping('tcp', firstPort + i)))
    // One untimed period first: renewals settle into their rhythm.
    await new Promise((resolve) => setTimeout(resolve, mappingDuration / 3))
    for (const [window, ms] of [[cold, timedMs], [undefined, DEFAULT_RATE_LEAD_MS], [steady, timedMs]] as const) {
      const before = counts.renewed
      const cpu = process.cpuUsage()
      const wall = performance.now()
      await new Promise((resolve) => setTimeout(resolve, ms))
      if (window !== undefined) addWindow(window.nat, counts.renewed - before, performance.now() - wall, process.cpuUsage(cpu))
    }
    failed += counts.failed
    lost += counts.lost
    await nat.close()
    // The gateway quiet again (its deletes done) before the next block.
    await new Promise((resolve) => setTimeout(resolve, 1_000))
  }
  return { mappings: DEFAULT_RATE_MAPPINGS, mappingDuration, blocks: DEFAULT_RATE_BLOCKS, leadMs: DEFAULT_RATE_LEAD_MS, failed, lost, cold, steady }
}

async function renewalsTask (task: Extract<AgentConfig, { task: 'renewals' }>): Promise<RenewalResult> {
  const limit = task.maxConcurrentRequests ?? 8
  // First, while the gateway holds nothing: the floor, CPU per PCP MAP exchange on a bare socket
  // paced as the periods will renew; the default-rate blocks; and what this process burns doing
  // nothing for a while.
  const perSecond = task.count / (task.mappingDuration / 3000)
  const pacedCount = Math.max(1, Math.round(perSecond * PACED_FLOOR_MS / 1000))
  const pacedFloor = { ...await pcpRenewalFloor(task.gateway, task.clientAddress, task.firstPort - 1, pacedCount, PACED_FLOOR_MS), perSecond }
  const defaultRate = await defaultRateTask(task, task.firstPort - 1 - DEFAULT_RATE_MAPPINGS)
  print({ event: 'default-rate', ...defaultRate })
  const idleCpu = process.cpuUsage()
  const idleWall = performance.now()
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS))
  const idleUsed = process.cpuUsage(idleCpu)
  const idlePercent = 100 * (idleUsed.user + idleUsed.system) / 1000 / (performance.now() - idleWall)
  const nat = await discoverNAT({ protocols: ['pcp'], gateway: task.gateway, mappingDuration: task.mappingDuration, maxConcurrentRequests: limit })
  const counts = { renewed: 0, changed: 0, failed: 0, lost: 0 }
  nat.on('mapping-renewed', () => { counts.renewed++ })
  nat.on('mapping-changed', () => { counts.changed++ })
  nat.on('mapping-failed', () => { counts.failed++ })
  nat.on('mapping-lost', () => { counts.lost++ })
  const heapBefore = heapAfterGc()

  const started = performance.now()
  const completions: number[] = []
  const mappings: Mapping[] = await Promise.all(Array.from({ length: task.count }, async (_, i) => {
    const mapping = await nat.newMapping('tcp', task.firstPort + i)
    completions.push(performance.now() - started)
    return mapping
  }))
  const setupMs = performance.now() - started
  // The gateway's pace: ms per mapping created, for each tenth of them (it answers one at a time).
  const tenth = Math.max(1, Math.floor(task.count / 10))
  const creationPace = Array.from({ length: Math.floor(task.count / tenth) }, (_, i) =>
    ((completions[(i + 1) * tenth - 1] ?? 0) - (i === 0 ? 0 : (completions[i * tenth - 1] ?? 0))) / tenth)
  const establishedAfterSetup = mappings.filter((mapping) => mapping.established).length
  const heapAfter = heapAfterGc()
  print({ event: 'mapped', established: establishedAfterSetup, ms: setupMs })

  const period = task.mappingDuration / 3
  const periods: RenewalPeriod[] = []
  for (let n = 0; n < task.periods; n++) {
    const before = { ...counts }
    const cpu = process.cpuUsage()
    const wall = performance.now()
    await new Promise((resolve) => setTimeout(resolve, period))
    const used = process.cpuUsage(cpu)
    const wallMs = performance.now() - wall
    const cpuMs = (used.user + used.system) / 1000
    periods.push({
      cpuPercent: 100 * cpuMs / wallMs,
      cpuMs,
      userMs: used.user / 1000,
      systemMs: used.system / 1000,
      wallMs,
      renewed: counts.renewed - before.renewed,
      failed: counts.failed - before.failed,
      lost: counts.lost - before.lost,
      established: mappings.filter((mapping) => mapping.established).length,
      heapUsed: process.memoryUsage().heapUsed
    })
    print({ event: 'period', ...periods.at(-1) })
  }
  // A window of a fourth period under the profiler, to show where the CPU goes (the profiler
  // costs some CPU too, so this window is not counted above).
  const profileWindow = Math.min(period, PROFILE_WINDOW_MS)
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  // A fine interval: renewals are short bursts between long idle stretches, which a coarse one misses.
  await session.post('Profiler.setSamplingInterval', { interval: 100 })
  const renewedBefore = counts.renewed
  const cpu = process.cpuUsage()
  const wall = performance.now()
  await session.post('Profiler.start')
  await new Promise((resolve) => setTimeout(resolve, profileWindow))
  const { profile } = await session.post('Profiler.stop')
  const used = process.cpuUsage(cpu)
  const profiled = { ...summarizeProfiles([profile as CpuProfile], task.root, 12), windowMs: profileWindow, cpuPercent: 100 * (used.user + used.system) / 1000 / (performance.now() - wall), renewed: counts.renewed - renewedBefore }
  session.disconnect()

  const established = mappings.filter((mapping) => mapping.established).length
  const distinctPorts = new Set(mappings.map((mapping) => mapping.externalPort)).size
  const rssAfter = process.memoryUsage().rss

  // The driver counts the gateway's rules while they are held, then tells us to close.
  print({ event: 'held', established })
  await new Promise<void>((resolve) => { createInterface({ input: process.stdin }).once('line', () => { resolve() }) })
  const closing = performance.now()
  await nat.close()
  const closeMs = performance.now() - closing
  process.stdin.destroy()
  return {
    count: task.count,
    mappingDuration: task.mappingDuration,
    setupMs,
    establishedAfterSetup,
    heapBefore,
    heapAfter,
    rssAfter,
    periods,
    peakRequestsInFlight: nat.peakRequestsInFlight,
    maxConcurrentRequests: limit,
    established,
    distinctPorts,
    ...counts,
    closeMs,
    profile: profiled,
    pacedFloor,
    defaultRate,
    creationPace,
    idlePercent
  }
}

switch (config.task) {
  case 'discovery': print(await discoveryTask(config)); break
  case 'allocation': print(await allocationTask(config)); break
  case 'no-nat': print(await noNatTask(config)); break
  case 'process': print(await processTask(config)); break
  case 'renewals': print(await renewalsTask(config)); break
}
