/**
 * Turns the benchmark's measurements into BENCHMARKS.md (also printed on stdout): the machine,
 * the date, every timing beside its floor, the targets and whether each is met, and how each
 * number is measured. Everything here is computed from the results; nothing is typed in by hand.
 */
import type { AllocationResult, ClientSamples, DefaultRateResult, RateWindow, DiscoveryResult, MemorySample, NoNatResult, PhaseSamples, ProcessResult, RenewalResult } from './agent.js'
import { CLIENT, GROUP, NO_NAT, PROCESS } from './labels.js'
import type { Entry, ProfileSummary } from './profile.js'
import { mb, ms, spread, summarize } from './stats.js'

export interface Machine {
  cpu: string
  cores: number
  memory: string
  node: string
  os: string
  kernel: string
  gateway: string
  references: string[]
}

export interface RenewalsMeasured extends RenewalResult {
  /** DNAT rules for our ports in the gateway's nftables while the mappings were held. */
  rulesHeld: number
  /** The same count after nat.close(). */
  rulesLeft: number
}

export interface BenchResults {
  date: string
  durationMs: number
  machine: Machine
  runs: number
  warmUp: number
  slowRuns: number
  importRuns: number
  rssRuns: number
  discovery: DiscoveryResult
  /** client → where its discover + map spent its time (wire timestamps). */
  phases: Record<string, PhaseSamples>
  /** client → CPU profile of its discover + map, per run. */
  discoveryProfiles: Record<string, ProfileSummary>
  noNat: Partial<Record<'closed' | 'silent', NoNatResult>>
  /** client → bytes allocated on the JS heap per discover + map, per round. */
  allocation?: AllocationResult
  process?: ProcessResult
  upnpRss?: ProcessResult
  renewals?: RenewalsMeasured
  /** What `import 'dist/index.js'` loads (static import graph). */
  imports?: { files: number, packages: string[], builtins: string[] }
}

/** The documented discovery timeout (README: `timeout`, 2 500 ms). */
const DISCOVERY_TIMEOUT = 2_500

interface Target { what: string, measured: string, met: boolean | undefined }

const median = (values: readonly number[] | undefined): number => values === undefined || values.length === 0 ? Number.NaN : summarize(values).median
const yes = (met: boolean | undefined): string => met === undefined ? 'not measured' : met ? '**met**' : '**missed**'
const signed = (value: number): string => Number.isFinite(value) ? `${value >= 0 ? '+' : '−'}${ms(Math.abs(value))}` : 'n/a'
const table = (header: string[], rows: string[][]): string[] => [
  `| ${header.join(' | ')} |`,
  `| ${header.map((_, i) => i === 0 ? '---' : '---:').join(' | ')} |`,
  ...rows.map((row) => `| ${row.join(' | ')} |`)
]

function floorOf (clients: Record<string, ClientSamples>): ClientSamples | undefined {
  return Object.entries(clients).find(([name]) => name.startsWith('floor'))?.[1]
}

/**
 * The floor a row is compared with: rows that read the route table ("default route", "default
 * options") against the floor that reads it too, where the table has one; the rest against the
 * table's first floor.
 */
function floorFor (clients: Record<string, ClientSamples>, client: string): ClientSamples | undefined {
  const knownFloor = Object.entries(clients).find(([name]) => name.startsWith('floor') && name.includes('description URL known'))?.[1]
  if (client.includes('remembered') && knownFloor !== undefined) return knownFloor
  const readsRoute = client.includes('default route') || client.includes('default options')
  const routeFloor = Object.entries(clients).find(([name]) => name.startsWith('floor') && name.includes('/proc/net/route'))?.[1]
  return readsRoute && routeFloor !== undefined ? routeFloor : floorOf(clients)
}

function discoverySection (results: BenchResults): string[] {
  const lines: string[] = []
  for (const [group, clients] of Object.entries(results.discovery)) {
    const floor = floorOf(clients)
    lines.push(`### ${group}`, '')
    lines.push(...table(['client', 'discover, ms', 'above floor', 'discover + map, ms', 'above floor', 'note'],
      Object.entries(clients).map(([name, samples]) => {
        const isFloor = samples === floor
        const own = floorFor(clients, name)
        const floorDiscover = median(own?.discover)
        const floorMap = median(own?.map)
        const discover = samples.discover.length === 0 ? undefined : summarize(samples.discover)
        const map = summarize(samples.map)
        return [
          name.startsWith('floor') ? `*${name}*` : name,
          spread(discover),
          isFloor || discover === undefined ? '' : signed(discover.median - floorDiscover),
          spread(map),
          isFloor ? '' : signed(map.median - floorMap),
          samples.note ?? ''
        ]
      })))
    lines.push('')
  }
  const phases = Object.entries(results.phases)
  if (phases.length > 0) {
    lines.push('### Where natmapper\'s discover + map time goes', '',
      `Separate runs (${results.runs} each) with the \`natmapper:wire\` diagnostics channel timestamping every message; medians in ms. ` +
      'Only the messages of the protocol that won count as requests and replies; the other probes\' are part of natmapper\'s own time. ' +
      '"Waiting" is the time one of its requests had its reply still to come (the union of [request, first reply after it]: the gateway, the kernel and the event loop\'s wake-up); the other columns are natmapper\'s own time, ' +
      'except that for UPnP each TCP connection\'s set-up falls in "between" (a request is published once the connection is up).', '')
    lines.push(...table(['client', 'total', 'before the first request', 'waiting for the gateway', 'between a reply and the next request', 'after the last reply'],
      phases.map(([name, samples]) => [name, ms(median(samples.total)), ms(median(samples.before)), ms(median(samples.waiting)), ms(median(samples.between)), ms(median(samples.after))])))
    lines.push('')
  }
  const allocation = Object.entries(results.allocation ?? {})
  if (allocation.length > 0) {
    const floor = median(results.allocation?.[CLIENT.pcpRouteFloor])
    lines.push('### What a discover + map allocates (gateway mode all)', '',
      'Bytes allocated on the JS heap per discover + map and the delete after it, counted, not timed, so the machine\'s load does not move them: ' +
      'an agent of their own with a 128 MB young generation, 10 untimed runs, then rounds of 50 runs during which no GC runs (checked; a round with one is counted again), `heapUsed` after minus before, divided by 50. ' +
      'Median of the rounds, min–max in brackets. Garbage is what the next GC must go through: a client that leaves more of it pays (or makes the next client in its process pay) more scavenges.', '')
    lines.push(...table(['client', 'kB per discover + map', 'above the floor'], allocation.map(([name, bytes]) => {
      const summary = summarize(bytes.map((value) => value / 1000))
      return [name.startsWith('floor') ? `*${name}*` : name, `${summary.median.toFixed(1)} (${summary.min.toFixed(1)}–${summary.max.toFixed(1)})`,
        name === CLIENT.pcpRouteFloor ? '' : `+${((median(bytes) - floor) / 1000).toFixed(1)}`]
    })))
    lines.push('')
  }
  for (const [name, profile] of Object.entries(results.discoveryProfiles)) {
    lines.push(`CPU profile of \`${name}\`: ${profile.profiles} discover + map + close runs under the profiler (50 µs sampling, which slows them); ms per run, ${ms(profile.sampledMs)} on the CPU and ${ms(profile.idleMs)} idle:`, '')
    lines.push(...profileTables(profile))
  }
  return lines
}

function noNatSection (results: BenchResults): string[] {
  const lines: string[] = []
  for (const mode of ['closed', 'silent'] as const) {
    const result = results.noNat[mode]
    if (result === undefined) continue
    const floor = result.rows[NO_NAT.floor]
    const floorMedian = floor === undefined ? Number.NaN : median(floor.ms)
    lines.push(`### Gateway mode \`${mode}\` (${mode === 'closed' ? 'nothing listens: ICMP port unreachable, TCP RST' : 'everything to the gateway is dropped'})`, '')
    lines.push(...table(['client', 'verdict', 'time to verdict, ms', mode === 'closed' ? 'above floor' : 'vs. the 2 500 ms timeout', 'runs'],
      Object.entries(result.rows).map(([name, row]) => {
        const summary = summarize(row.ms)
        const isFloor = row === floor
        const beside = mode === 'closed' ? (isFloor ? '' : signed(summary.median - floorMedian)) : signed(summary.median - DISCOVERY_TIMEOUT)
        return [isFloor ? `*${name}*` : name, row.outcome, spread(summary), beside, String(summary.runs)]
      })))
    for (const slow of mode === 'closed' ? result.slow : []) {
      lines.push('', `One run of \`discoverNAT(${slow.options === '{}' ? '' : slow.options})\` took ${ms(slow.ms)} ms; the reasons it carried: ${Object.entries(slow.reasons).map(([protocol, reason]) => `${protocol}: \`${reason}\``).join('; ')}.`)
    }
    lines.push('', `Each probe of \`probeGateway()\` with default options (${result.probes.length} runs; median ms and how it ended):`, '')
    const protocols = [...new Set(result.probes.flat().map((probe) => probe.protocol))]
    lines.push(...table(['probe', 'ended after, ms', 'how'], protocols.map((protocol) => {
      const runs = result.probes.flat().filter((probe) => probe.protocol === protocol)
      const errors = [...new Set(runs.map((probe) => probe.error ?? 'answered'))]
      return [protocol, ms(median(runs.map((probe) => probe.ms))), errors.join('; ').replaceAll('|', '\\|')]
    })))
    lines.push('')
  }
  return lines
}

function processSection (results: BenchResults): string[] {
  const times = results.process?.times
  if (times === undefined) return ['Not measured in this run.', '']
  const floor = median(times[PROCESS.nodeFloor])
  const rows = [PROCESS.nodeFloor, PROCESS.nonceFloor, PROCESS.cliVersion, PROCESS.cliPcp, PROCESS.cliNatPmp, PROCESS.cliDefaults, PROCESS.natpmpc]
  return [
    ...table(['command (run in nm-lan, gateway mode all)', 'start to exit, ms', 'above `node -e 0`'], rows.map((name) => {
      const summary = times[name] === undefined ? undefined : summarize(times[name])
      const label = name === PROCESS.nodeFloor ? `*${name}* (the runtime's floor)` : name === PROCESS.nonceFloor ? `*${name}*` : `\`${name}\``
      return [label, spread(summary), name === PROCESS.nodeFloor || summary === undefined ? '' : signed(summary.median - floor)]
    })),
    ''
  ]
}

function memorySection (results: BenchResults): string[] {
  const times = results.process?.times ?? {}
  const lines: string[] = []
  const importRows: Array<[string, string, string]> = [
    [PROCESS.importIndex, '', ''],
    [PROCESS.importProcess, PROCESS.emptyModuleProcess, '']
  ]
  lines.push(...table(['measurement', 'median (min–max), ms', 'floor', 'above floor'], importRows.flatMap(([name, floorName]) => {
    if (times[name] === undefined) return []
    const summary = summarize(times[name])
    const floor = floorName === '' ? undefined : summarize(times[floorName] ?? [])
    return [[name, spread(summary), floor === undefined ? '(in-process: the import alone)' : `${floorName}: ${spread(floor)}`, floor === undefined ? '' : signed(summary.median - floor.median)]]
  })))
  lines.push('')
  const memoryRows: string[][] = []
  const field = (samples: MemorySample[] | undefined, key: keyof MemorySample): number => median(samples?.map((sample) => sample[key]))
  const delta = (value: number): string => `${value >= 0 ? '+' : '−'}${mb(Math.abs(value))}`
  const bare = results.process?.memory[PROCESS.rssBareSockets]
  for (const result of [results.process, results.upnpRss]) {
    if (result === undefined) continue
    const base = result.memory[PROCESS.nodeFloor]
    for (const [name, samples] of Object.entries(result.memory)) {
      const isBase = name === PROCESS.nodeFloor
      const holds = name === PROCESS.rssOneMapping || name === PROCESS.rssOneUpnpMapping
      memoryRows.push([
        isBase ? `*${name}* (baseline)` : name === PROCESS.rssBareSockets || name === PROCESS.rssBareSocketsModule ? `*${name}*` : name,
        mb(field(samples, 'maxRSS')),
        isBase ? '' : delta(field(samples, 'maxRSS') - field(base, 'maxRSS')),
        holds && bare !== undefined ? delta(field(samples, 'maxRSS') - field(bare, 'maxRSS')) : '',
        ...(['rss', 'heapTotal', 'heapUsed', 'external'] as const).map((key) => isBase ? mb(field(samples, key)) : delta(field(samples, key) - field(base, key)))
      ])
    }
  }
  if (memoryRows.length > 0) {
    lines.push(...table(['process', 'peak RSS (maxrss)', 'above `node -e 0`', 'above the bare-socket floor', 'RSS then', 'heapTotal', 'heapUsed', 'external'], memoryRows))
    lines.push('', 'The last four columns are `process.memoryUsage()` at the moment of measuring (the mapping held), as differences from the baseline\'s.', '')
  }
  const imports = results.imports
  if (imports !== undefined) {
    const packages = imports.packages.length === 0 ? 'no package' : imports.packages.map((name) => `\`${name}\``).join(', ')
    const builtins = imports.builtins.length === 0 ? 'no Node.js builtin' : `${imports.builtins.length} Node.js builtins (${imports.builtins.map((name) => name.replace('node:', '')).join(', ')})`
    lines.push(`\`import 'natmapper'\` loads ${imports.files} ES module files of natmapper's own, ${packages} and ${builtins} statically (as ES imports); anything else on first use.`, '')
  }
  const profile = results.process?.importProfile
  if (profile !== undefined) {
    lines.push(`Where the import's time goes: CPU profile of \`await import('dist/index.js')\` alone, in a fresh process (mean of ${profile.profiles} profiles: ${ms(profile.sampledMs)} ms on the CPU and ${ms(profile.idleMs)} ms idle, waiting for file reads, each):`, '')
    lines.push(...profileTables(profile))
  }
  return lines
}

function profileTables (profile: ProfileSummary): string[] {
  const rows = (entries: Entry[]): string[][] => entries.map((entry) => [`\`${entry.name.replaceAll('|', '\\|')}\``, ms(entry.ms)])
  return [
    ...table(['self time, by function', 'ms'], rows(profile.self.slice(0, 8))),
    '',
    ...table(['self time, by script', 'ms'], rows(profile.files.slice(0, 8))),
    '',
    ...(profile.inclusive.length === 0 ? [] : [...table(['natmapper\'s own code, inclusive', 'ms'], rows(profile.inclusive.slice(0, 8))), '']),
  ]
}

/** CPU ms per granted renewal over the measured periods. */
function cpuPerRenewal (renewals: RenewalsMeasured): number {
  const cpu = renewals.periods.reduce((sum, period) => sum + period.cpuMs, 0)
  const renewed = renewals.periods.reduce((sum, period) => sum + period.renewed, 0)
  return renewed === 0 ? Number.NaN : cpu / renewed
}

/** % of one core that `count` mappings cost at `mappingDuration`, from the measured CPU per renewal. */
function impliedPercent (renewals: RenewalsMeasured, mappingDuration: number): number {
  return 100 * renewals.count * cpuPerRenewal(renewals) / (mappingDuration / 3)
}

/** % of one core that 50 renewals a second cost, from the CPU per renewal measured at that rate (steady state). */
function atDefaultRate (rate: DefaultRateResult): number {
  return 100 * 50 * rate.steady.nat.cpuMsPerRenewal / 1000
}

/** One timed window of the default-rate measurement, as a table cell. */
function rateCell (window: RateWindow, unit: string): string {
  return `${window.cpuMsPerRenewal.toFixed(3)} ms (${ms(window.userMs + window.systemMs)} ms: ${ms(window.userMs)} user + ${ms(window.systemMs)} system, over ${window.count} ${unit} in ${ms(window.wallMs / 1000)} s; ${(100 * (window.userMs + window.systemMs) / window.wallMs).toFixed(2)} % of one core)`
}

function renewalsSection (renewals: RenewalsMeasured | undefined): string[] {
  if (renewals === undefined) return ['Not measured in this run.', '']
  const heapPerMapping = (renewals.heapAfter - renewals.heapBefore) / renewals.count
  const perRenewal = cpuPerRenewal(renewals)
  const rate = renewals.defaultRate
  return [
    `${renewals.count} PCP mappings on one NAT (gateway mode pmp, gateway given), \`mappingDuration\` ${renewals.mappingDuration / 1000} s: each renewed every ${renewals.mappingDuration / 3000} s. ` +
    `Creating them took ${ms(renewals.setupMs / 1000)} s (${renewals.establishedAfterSetup} established). ` +
    `miniupnpd answers one request at a time, and its time per request grows with the rules it holds: ms per mapping created, by tenth of the ${renewals.count}: ${renewals.creationPace.map((pace) => ms(pace)).join(', ')}. ` +
    `Renewing all ${renewals.count} therefore takes it about as long as creating them, which is why \`mappingDuration\` is ${renewals.mappingDuration / 1000} s here (renewals every ${renewals.mappingDuration / 3000} s), not 30 s; ` +
    'the CPU per renewal below gives the cost at any duration.',
    '',
    ...table(['renewal period', 'CPU, % of one core', 'CPU time, ms (user + system)', 'wall, s', 'renewals granted', 'failed', 'lost', 'established at its end'],
      renewals.periods.map((period, i) => [String(i + 1), period.cpuPercent.toFixed(2), `${ms(period.cpuMs)} (${ms(period.userMs)} + ${ms(period.systemMs)})`, ms(period.wallMs / 1000), String(period.renewed), String(period.failed), String(period.lost), String(period.established)])),
    '',
    ...table(['measurement', 'value'], [
      ['CPU per renewal (all periods: CPU time / renewals granted)', `${perRenewal.toFixed(3)} ms`],
      [`*floor*: CPU per PCP MAP exchange, bare connected socket, each from its own timer, paced as the periods renew (${renewals.pacedFloor.perSecond.toFixed(1)} a second)`, `${renewals.pacedFloor.cpuMsPerExchange.toFixed(3)} ms (${renewals.pacedFloor.exchanges} exchanges)`],
      [`CPU per renewal at 50 a second (the rate of 1 000 mappings at the default 60 s), steady state: ${rate.mappings} mappings, \`mappingDuration\` ${ms(rate.mappingDuration / 1000)} s, timed after ${ms(rate.leadMs / 1000 + rate.mappingDuration / 3000 * 6)} s of renewing, in ${rate.blocks} blocks`, `${rateCell(rate.steady.nat, 'renewals')}; ${rate.failed} failed, ${rate.lost} lost in all`],
      ['*floor*: the bare-socket exchange at 50 a second, steady state (timed after as long), in a block before each of those', rateCell(rate.steady.floor, 'exchanges')],
      [`the same at 50 a second, cold: the first ${ms(rate.mappingDuration / 3000 * 5)} s after one untimed period`, rateCell(rate.cold.nat, 'renewals')],
      ['*floor*: the same, cold: its first seconds', rateCell(rate.cold.floor, 'exchanges')],
      ['the same agent process idle, before any NAT exists', `${renewals.idlePercent.toFixed(2)} % of one core`],
      ['1 000 mappings at `mappingDuration` 60 s (the default): 50 renewals a second × CPU per renewal at that rate', `50 × ${rate.steady.nat.cpuMsPerRenewal.toFixed(3)} ms = ${ms(50 * rate.steady.nat.cpuMsPerRenewal)} ms a second: ${atDefaultRate(rate).toFixed(2)} % of one core (cold: ${(5 * rate.cold.nat.cpuMsPerRenewal).toFixed(2)} %)`],
      [`the same from the periods' CPU per renewal (a process woken ${ms(renewals.pacedFloor.perSecond)} times a second pays more per wake-up), 60 s / 30 s`, `${impliedPercent(renewals, 60_000).toFixed(2)} % / ${impliedPercent(renewals, 30_000).toFixed(2)} % of one core (arithmetic)`],
      ['peak requests in flight (`nat.peakRequestsInFlight`)', `${renewals.peakRequestsInFlight} (limit \`maxConcurrentRequests\` ${renewals.maxConcurrentRequests})`],
      ['heap per mapping (heapUsed after GC, before vs. after creating them)', `${(heapPerMapping / 1000).toFixed(2)} kB`],
      ['RSS of the process holding them', mb(renewals.rssAfter)],
      ['established after three periods', `${renewals.established} of ${renewals.count} (${renewals.distinctPorts} distinct external ports)`],
      ['events over the whole run: renewed / changed / failed / lost', `${renewals.renewed} / ${renewals.changed} / ${renewals.failed} / ${renewals.lost}`],
      ['DNAT rules for them in the gateway while held (`lab/gateway.sh mappings`)', String(renewals.rulesHeld)],
      ['`nat.close()`: time, rules left at the gateway after it', `${ms(renewals.closeMs)} ms, ${renewals.rulesLeft} left`]
    ]),
    '',
    `Where the CPU goes: ${ms(renewals.profile.windowMs / 1000)} s of a fourth renewal period under the CPU profiler, not counted above (${renewals.profile.cpuPercent.toFixed(2)} % of one core with the profiler on, ` +
    `${renewals.profile.renewed} renewals; ${ms(renewals.profile.sampledMs)} ms on the main thread, ${ms(renewals.profile.idleMs)} ms idle):`,
    '',
    ...profileTables(renewals.profile)
  ]
}

function targets (results: BenchResults): Target[] {
  const list: Target[] = []
  const nearFloor = (label: string, group: string, client: string, limit: number): void => {
    const clients = results.discovery[group]
    const ours = clients?.[client]
    const floor = clients === undefined ? undefined : floorFor(clients, client)
    if (ours === undefined || floor === undefined) { list.push({ what: label, measured: 'not measured', met: undefined }); return }
    const above = median(ours.map) - median(floor.map)
    list.push({ what: label, measured: `${ms(median(ours.map))} ms vs. floor ${ms(median(floor.map))} ms: ${signed(above)} ms`, met: above <= limit })
  }
  nearFloor('PCP discover + map within 1 ms of the floor', GROUP.pcp, CLIENT.natmapperPcp, 1)
  nearFloor('NAT-PMP discover + map within 1 ms of the floor', GROUP.natPmp, CLIENT.natmapperNatPmp, 1)
  nearFloor('UPnP-only discover + map within 5 ms of the floor', GROUP.upnp, CLIENT.natmapperUpnp, 5)
  nearFloor('UPnP with a remembered gateway: discover + map within 2 ms of the floor of one GET and one AddPortMapping', GROUP.upnp, CLIENT.natmapperUpnpRemembered, 2)
  nearFloor('PCP discover + map, default route, within 0.5 ms of the floor that reads /proc/net/route', GROUP.pcp, CLIENT.natmapperPcpRoute, 0.5)
  nearFloor('NAT-PMP discover + map, default route, within 0.5 ms of the floor that reads /proc/net/route', GROUP.natPmp, CLIENT.natmapperNatPmpRoute, 0.5)
  nearFloor('`discoverNAT()` with default options + a PCP mapping within 1 ms of the floor that reads /proc/net/route', GROUP.all, CLIENT.natmapperDefaults, 1)

  const closed = results.noNat.closed?.rows
  for (const [label, row] of [['default options', NO_NAT.defaults], ['protocols [pcp, nat-pmp]', NO_NAT.binary]] as const) {
    const value = median(closed?.[row]?.ms)
    list.push({ what: `"no NAT" verdict ≤ 50 ms when the gateway refuses (mode closed, ${label})`, measured: Number.isFinite(value) ? `${ms(value)} ms` : 'not measured', met: Number.isFinite(value) ? value <= 50 : undefined })
  }
  const silent = median(results.noNat.silent?.rows[NO_NAT.defaults]?.ms)
  list.push({ what: '"no NAT" verdict at the documented 2 500 ms timeout when the gateway is silent (within 50 ms)', measured: Number.isFinite(silent) ? `${ms(silent)} ms` : 'not measured', met: Number.isFinite(silent) ? silent <= DISCOVERY_TIMEOUT + 50 : undefined })

  const importMs = median(results.process?.times[PROCESS.importIndex])
  list.push({ what: 'import ≤ 12 ms', measured: Number.isFinite(importMs) ? `${ms(importMs)} ms` : 'not measured', met: Number.isFinite(importMs) ? importMs <= 12 : undefined })

  // The first benchmarks issue's target; issue 12 set the floor-relative one below instead, since
  // bare sockets doing the same exchanges already take most of those 5 MB. Kept, as measured.
  const floorAboveNode = median(results.process?.memory[PROCESS.rssBareSockets]?.map((sample) => sample.maxRSS)) - median(results.process?.memory[PROCESS.nodeFloor]?.map((sample) => sample.maxRSS))
  const floorNote = Number.isFinite(floorAboveNode) ? ` (the earlier target: the bare-socket floor alone is +${mb(floorAboveNode)})` : ''
  for (const [result, name] of [[results.process, PROCESS.rssOneMapping], [results.upnpRss, PROCESS.rssOneUpnpMapping]] as const) {
    if (result === undefined) continue
    const above = median(result.memory[name]?.map((sample) => sample.maxRSS)) - median(result.memory[PROCESS.nodeFloor]?.map((sample) => sample.maxRSS))
    list.push({ what: `peak RSS, ${name}, ≤ node -e 0 + 5 MB${floorNote}`, measured: `+${mb(above)}`, met: above <= 5_000_000 })
  }
  const oneMapping = results.process?.memory[PROCESS.rssOneMapping]
  const bareSockets = results.process?.memory[PROCESS.rssBareSockets]
  if (oneMapping !== undefined && bareSockets !== undefined) {
    const above = median(oneMapping.map((sample) => sample.maxRSS)) - median(bareSockets.map((sample) => sample.maxRSS))
    const moduleFloor = results.process?.memory[PROCESS.rssBareSocketsModule]
    const aboveModule = moduleFloor === undefined ? Number.NaN : median(oneMapping.map((sample) => sample.maxRSS)) - median(moduleFloor.map((sample) => sample.maxRSS))
    const beside = Number.isFinite(aboveModule) ? ` (${aboveModule >= 0 ? '+' : '−'}${mb(Math.abs(aboveModule))} over the same floor loaded as an ES module file, as natmapper is)` : ''
    list.push({ what: 'peak RSS, one PCP mapping held, ≤ the bare-socket floor + 2 MB', measured: `${above >= 0 ? '+' : '−'}${mb(Math.abs(above))}${beside}`, met: above <= 2_000_000 })
  }

  const renewals = results.renewals
  if (renewals === undefined) {
    list.push({ what: '1 000 mappings renewed with under 2 % of one core', measured: 'not measured', met: undefined })
  } else {
    const worst = Math.max(...renewals.periods.map((period) => period.cpuPercent))
    list.push({ what: `${renewals.count} mappings renewed with under 2 % of one core (worst of three periods, \`mappingDuration\` ${renewals.mappingDuration / 1000} s)`, measured: `${worst.toFixed(2)} %`, met: worst < 2 })
    const rate = renewals.defaultRate
    const atDefault = atDefaultRate(rate)
    list.push({ what: `the same at the default \`mappingDuration\` (60 s: 50 renewals a second), from the CPU per renewal measured at 50 a second in the steady state`, measured: `${atDefault.toFixed(2)} % (${rate.steady.nat.cpuMsPerRenewal.toFixed(3)} ms per renewal, floor ${rate.steady.floor.cpuMsPerRenewal.toFixed(3)} ms; the first seconds, cold: ${(5 * rate.cold.nat.cpuMsPerRenewal).toFixed(2)} %, floor ${(5 * rate.cold.floor.cpuMsPerRenewal).toFixed(2)} %; from the periods' CPU per renewal instead: ${impliedPercent(renewals, 60_000).toFixed(2)} %)`, met: atDefault <= 2 })
    const ratio = cpuPerRenewal(renewals) / renewals.pacedFloor.cpuMsPerExchange
    list.push({ what: `CPU per renewal ≤ 1.5 × the bare-socket floor's, at the periods' pace (${renewals.pacedFloor.perSecond.toFixed(1)} a second)`, measured: `${cpuPerRenewal(renewals).toFixed(3)} ms vs. floor ${renewals.pacedFloor.cpuMsPerExchange.toFixed(3)} ms: ${ratio.toFixed(2)} ×`, met: ratio <= 1.5 })
    for (const [name, pair] of [['steady', rate.steady], ['cold', rate.cold]] as const) {
      const rateRatio = pair.nat.cpuMsPerRenewal / pair.floor.cpuMsPerRenewal
      list.push({ what: `CPU per renewal ≤ 1.5 × the bare-socket floor's, at 50 a second, ${name}`, measured: `${pair.nat.cpuMsPerRenewal.toFixed(3)} ms vs. floor ${pair.floor.cpuMsPerRenewal.toFixed(3)} ms: ${rateRatio.toFixed(2)} ×`, met: rateRatio <= 1.5 })
    }
    list.push({ what: `none of the ${renewals.count} lost; the gateway holds every rule`, measured: `${renewals.established} established, ${renewals.lost} lost, ${renewals.rulesHeld} rules`, met: renewals.established === renewals.count && renewals.lost === 0 && renewals.rulesHeld === renewals.count })
  }
  return list
}

/** The allocation table's medians in one phrase, for the notes. */
function allocationSummary (results: BenchResults): string {
  const megabytes = (client: string): string => (median(results.allocation?.[client]) / 1_000_000).toFixed(3)
  if (results.allocation === undefined) return 'see "What a discover + map allocates"'
  return `"What a discover + map allocates": in this run upnpNat() ${megabytes(CLIENT.achingbrainUpnp)} MB per discover + map, natmapper with default options ${megabytes(CLIENT.natmapperDefaults)} MB, the floor ${megabytes(CLIENT.pcpRouteFloor)} MB`
}

function notes (results: BenchResults): string[] {
  const closed = results.noNat.closed
  const lines = [
    '- **Where and how.** Every client runs inside the lab\'s LAN namespace (`nm-lan`, started with `ip netns exec`), against miniupnpd in `nm-gw`, never in the machine\'s own network. ' +
    `The lab is rebuilt (\`lab/up.sh --mode M\`) for each gateway mode and held under the lab lock. In-process rows come from agent processes (\`scripts/bench/agent.ts\`, loading natmapper from \`dist/\`, built by \`npm run build\` at the start of the bench) after ${results.warmUp} warm-up rounds; ` +
    `each run times every client of its table in turn, so a table's rows share the same minutes. Times are \`performance.now()\` from the call to the resolved promise; medians, with min–max in brackets, of ${results.runs} runs.`,
    '- **One agent per client family.** For each gateway mode four agents run side by side in the LAN namespace: the floors, natmapper, @achingbrain/nat-port-mapper, and the one that spawns natpmpc and upnpc. ' +
    'The bench asks each in turn to time its rows once per run (so the rows still interleave), while the others wait idle. ' +
    'Clients in one process share its heap, and the garbage collector runs when the young generation fills, whoever filled it: a client that leaves much garbage hands the next one a scavenge in the middle of its exchanges. ' +
    `The clients differ a great deal in this (${allocationSummary(results)}), so in one shared agent a row's time depends on which row ran before it: the first row to allocate after upnpNat() in each round pays for its garbage. ` +
    'A process per family gives every client only its own garbage. It treats every row alike (the same warm-up rounds and pauses, no forced GC for anyone), changes nothing in what the floors do, and `BENCH_SHARED_AGENT=1` runs the old single agent for comparison.',
    '- **Discover** is `discoverNAT()` resolving; **discover + map** is a second, fresh `discoverNAT()` followed by `newMapping(\'tcp\', 31000)` resolving with the mapping established (each NAT is closed, untimed, before the next run). ' +
    'Every timed part of every row, floors included, starts after the same 50 ms pause (`scripts/bench/quiet.ts`), so that the gateway is done with the run before (its deletes, a search\'s answers still due) and no client is timed while miniupnpd works for another. ' +
    '"Default route" rows read the route table to find the gateway; "gateway given" rows pass `gateway`, like the floor and the reference clients.',
    '- **The floor** (`scripts/bench/floor.ts`) makes the same exchanges over bare sockets with hand-built packets and no checks: PCP ANNOUNCE then MAP; NAT-PMP address request then map; for UPnP one M-SEARCH (unicast to the gateway and multicast, as natmapper sends), the description GET, then AddPortMapping on fresh TCP connections. ' +
    'For "all protocols" the floor is the PCP one, the exchanges of the protocol that wins.',
    '- **@achingbrain/nat-port-mapper** runs in an agent of its own (see above): `pmpNat(gateway)` has no discovery, so its "discover" is `externalIp()` and its `map()` asks for the external address once more (three exchanges to natmapper\'s two); ' +
    '`upnpNat().findGateways()` searches for IGDv2 only, "discover" is the first gateway it yields, and its `map()` is AddAnyPortMapping followed by GetExternalIPAddress. It has no PCP and no way to try several protocols, hence no such rows. Each run uses a fresh client.',
    '- **natpmpc and upnpc** are timed as whole processes (spawn to exit) from an agent of their own. `natpmpc -g GW` is its discover, `natpmpc -g GW -a P P tcp 60` its discover + map; `upnpc -a` discovers (it waits out its 2 s SSDP window) and maps in one process. ' +
    `upnpc is run in mode upnp only (${results.runs} runs × ~2 s).`,
    `- **"No NAT" verdict**: time until \`discoverNAT()\` rejects with \`NoNATFoundError\`, default route. Rows whose first run takes over 1 s (a timeout) are sampled ${results.slowRuns} times, the others ${results.runs} times. ` +
    'The per-probe table comes from `probeGateway()`, which runs each probe to its end and reports when and how it ended.'
  ]
  if (closed !== undefined) {
    const probes = closed.probes.flat()
    const upnp = probes.filter((probe) => probe.protocol === 'upnp')
    const binary = probes.filter((probe) => probe.protocol !== 'upnp')
    const defaults = median(closed.rows[NO_NAT.defaults]?.ms)
    if (Number.isFinite(defaults) && defaults > 50 && upnp.length > 0) {
      lines.push(`- **Why the default verdict waits in mode closed** (from the probe table above, not a guess): the PCP and NAT-PMP probes end after ${ms(median(binary.map((probe) => probe.ms)))} ms with \`${binary[0]?.error?.split(':')[0] ?? '?'}\` ` +
        `(their connected socket receives the ICMP port unreachable), but the UPnP probe ends only after ${ms(median(upnp.map((probe) => probe.ms)))} ms (\`${upnp[0]?.error?.split(':')[0] ?? '?'}\`). ` +
        'A datagram that gets no answer and no refusal leaves nothing to conclude before the timeout; a multicast M-SEARCH can never be refused. ' +
        `With \`protocols: ['pcp', 'nat-pmp']\` the verdict takes ${ms(median(closed.rows[NO_NAT.binary]?.ms))} ms.`)
    }
  }
  lines.push(
    '- **Whole process** rows spawn the command from the agent in `nm-lan` (so `ip netns exec` is not counted) and time spawn to exit. `node -e 0` is the runtime\'s own floor; `--once` maps and exits without deleting the mapping (30 s lease, a new port each run). ' +
    'What the CLI adds above `node -e 0` is its start-up (the `natmapper --version` row: its modules loaded, no network) plus the discover + map exchanges of the tables above.',
    `- **Import time**: a fresh \`node --input-type=module\` process measures \`performance.now()\` around \`await import('dist/index.js')\`; ${results.importRuns} runs. The whole-process row compares the same import against an empty module.`,
    `- **Peak RSS**: a fresh process imports \`dist/index.js\`, runs \`discoverNAT()\` and \`newMapping()\` with default options, and reports \`process.resourceUsage().maxRSS\` (getrusage, as \`/usr/bin/time -v\` does) while the mapping is held; the baseline is \`node -e\` reporting the same; ${results.rssRuns} runs each, medians.`,
    '- **1 000 mappings**: one agent started with `--expose-gc`; the mappings are created at once (`Promise.all` of `newMapping`, the NAT\'s request limiter bounds what is in flight). Heap per mapping is the `heapUsed` difference after two forced GCs, divided by the count. ' +
    'CPU per period is the `process.cpuUsage()` (user + system) delta across one renewal period, divided by its wall time. ' +
    '**The CPU floor of a renewal** is the same PCP MAP exchange over a bare connected socket, each started by a timer of its own, before any NAT exists: once paced as the measured periods renew (the floor they are compared with: a process woken less often pays more per wake-up, so a faster-paced floor would flatter the comparison or spoil it), ' +
    '**At 50 a second**: 1 000 mappings at the default 60 s duration would renew 50 times a second, which miniupnpd cannot answer while it holds 1 000 rules (see above), so a NAT of 100 mappings with `mappingDuration` 6 s renews at that rate instead: in each of two blocks, the floor at 50 a second, then a fresh NAT of 100 mappings (after one untimed renewal period), then closed. Each side is timed twice: cold, its first 10 s (five renewal periods), and steady, 10 s more after another 20 s of the same untimed. The steady window is what the 2 % target is about: at this rate V8 keeps optimising the code of natmapper, and the dgram and timer code of Node itself, for about half a minute, and the floor warms up the same way, while a program that holds mappings for days spends all but that first minute in the steady state. The cold figures stay in the table, each beside its own cold floor. CPU per renewal and per floor exchange are summed over the blocks. ' +
    'The gateway\'s rules are counted with `lab/gateway.sh mappings` while the mappings are held and again after `nat.close()`.'
  )
  return lines
}

export function renderReport (results: BenchResults): string {
  const { machine } = results
  const list = targets(results)
  return [
    '# natmapper benchmarks',
    '',
    `Generated by \`npm run bench\` (\`scripts/bench.ts\`) on ${results.date}, in ${(results.durationMs / 1000).toFixed(0)} s. Do not edit by hand: run the bench again.`,
    '',
    `- **Machine:** ${machine.cpu}, ${machine.cores} cores, ${machine.memory} RAM; ${machine.os}, Linux ${machine.kernel}; Node.js ${machine.node}.`,
    `- **Gateway:** ${machine.gateway} in the namespace lab (\`lab/README.md\`), over veth pairs on this machine.`,
    `- **References:** ${machine.references.join('; ')}.`,
    `- **Runs:** ${results.runs} per row (median, with min–max), after ${results.warmUp} warm-up rounds; all times in ms.`,
    '',
    '![discover + first mapping, median ms: each protocol beside its floor and the reference clients](benchmarks.svg)',
    '',
    '## Targets',
    '',
    ...table(['target', 'measured (medians)', ''], list.map((target) => [target.what, target.measured, yes(target.met)])),
    '',
    '## Discover, and discover + first mapping (in-process)',
    '',
    ...discoverySection(results),
    '## The "no NAT" verdict',
    '',
    ...noNatSection(results),
    '## Whole process: the CLI from start to mapping',
    '',
    ...processSection(results),
    '## Import time and memory',
    '',
    ...memorySection(results),
    '## 1 000 mappings held for three renewal periods',
    '',
    ...renewalsSection(results.renewals),
    '## How each number is measured',
    '',
    ...notes(results),
    ''
  ].join('\n')
}

