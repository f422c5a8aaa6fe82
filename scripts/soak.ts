/**
 * `npm run soak -- --minutes N --mappings M --seed S [--out DIR]`: hours of churn in the lab.
 *
 * Four NATs run on the LAN host (one per protocol, and one with every protocol, which moves
 * between them), each holding M mappings, TCP and UDP, each with a service behind it. A seeded
 * fault driver (scripts/soak/schedule.ts) applies random, overlapping faults to the real
 * miniupnpd gateways, while these invariants are checked all the time:
 *
 *   recovery      within RECOVERY_BOUND_MS after each episode's faults are undone, every open
 *                 mapping is established and the WAN host reaches it where it says it is;
 *   truthful      no mapping reports established while its gateway holds no rule for it, for
 *                 longer than DETECTION_BOUND_MS;
 *   crash         no unhandled rejection, no uncaught exception, no process warning (such as
 *                 MaxListenersExceededWarning) in any agent;
 *   close         after close() no rule of ours is left on either gateway, and every agent
 *                 process ends by itself;
 *   memory        heap (after a forced GC) and active handles, sampled at quiet points with the
 *                 same mappings open, flat between the first and the last third of the run;
 *   counters      each NAT's nat.stats() agrees with the events it emitted (resets, gateway
 *                 changes, mappings established, recovered, changed, lost) and with the faults
 *                 applied: a gateway restart is counted as a reset (or the NAT had moved), a
 *                 silence as timeouts, a move to the second gateway as a gateway change.
 *
 * A failure prints the seed and the fault timeline; the same seed replays the same schedule.
 * Results go to DIR/soak-SEED.json (read by scripts/soak-report.ts). Exit code 1 on any violation.
 */
import { Buffer } from 'node:buffer'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { acquireLabLock, lab, labEnv, labUnavailableReason, releaseLabLock, ROOT, WanProber } from '../test/helpers/lab.js'
import { applyFault, gatewayRules, labScript, restoreLab, type ActiveFault, type GatewayRule, type HeldMapping } from './soak/faults.js'
import { planEpisode, type FaultKind, type PlannedFault } from './soak/schedule.js'
import { checkCounters, type AgentCounters } from './soak/counters.js'
import type { NatStats } from '../src/index.js'

/** Mappings are asked for this long and renewed every third of it; leases are short, faults bite. */
const MAPPING_DURATION_MS = 6_000
const DISCOVER = { mappingDuration: MAPPING_DURATION_MS, cacheTime: 3_000, networkCheckInterval: 1_000, requestTimeout: 1_500, timeout: 10_000 }
/** After the last fault of an episode is undone, every mapping must be back within this. */
const RECOVERY_BOUND_MS = 30_000
/** How long a mapping may say established while its gateway holds no rule for it. */
const DETECTION_BOUND_MS = 15_000
/** Heap growth (median of the last third of samples over the first third) allowed per agent. */
const HEAP_GROWTH_BOUND = 3 * 1024 * 1024
/** Growth allowed per agent, same comparison, of live resources (timers, sockets, ...) and of open file descriptors. */
const HANDLE_GROWTH_BOUND = 4
const FD_GROWTH_BOUND = 2

const AGENTS = [
  { name: 'pcp', protocols: ['pcp'] },
  { name: 'nat-pmp', protocols: ['nat-pmp'] },
  { name: 'upnp', protocols: ['upnp'] },
  { name: 'any', protocols: ['pcp', 'nat-pmp', 'upnp'] }
] as const

interface MappingStatus { transport: 'tcp' | 'udp', port: number, established: boolean, externalPort: number, address?: string, addressError?: unknown }
interface AgentStatus { type: string, gateway: string, localAddress: string, mappings: MappingStatus[] }
/** `heapCode`: the part of heapUsed that is V8's compiled code and bytecode. `handles`: timers, UDP sockets and servers alive by async_hooks' count, unref'd ones included; `fds`: open file descriptors. */
interface MemorySample { t: number, heapUsed: number, heapCode?: number, rss: number, handles: number, fds: number, timers: number, byKind: Record<string, number>, mappings: number, gc: boolean }
interface AgentEvent { event: string, t: number, [field: string]: unknown }

export interface TimelineEntry { t: number, what: string }
export interface Violation { t: number, invariant: 'recovery' | 'truthful' | 'crash' | 'close' | 'memory' | 'counters' | 'agent', detail: string }
/** An episode after which the gateway itself could not add rules until it was restarted. */
export interface GatewayIncident { t: number, episode: number, evidence: string, recoveredAfterRestartMs: number | undefined }
export interface EpisodeResult { index: number, kinds: FaultKind[], faults: PlannedFault[], startedAt: number, settledAt: number, recoveredMs: number | undefined }
export interface SoakResult {
  seed: number
  minutes: number
  mappingsPerAgent: number
  agents: string[]
  startedAt: string
  wallSeconds: number
  episodes: EpisodeResult[]
  violations: Violation[]
  /** Gateway breakdowns no client could mend (see gatewayBreakage); not violations, but listed. */
  incidents: GatewayIncident[]
  memory: Record<string, { samples: MemorySample[], heapFirstThird: number, heapLastThird: number, /** Absent in results written before it was measured. */ heapCodeFirstThird?: number, heapCodeLastThird?: number, handlesFirstThird: number, handlesLastThird: number, fdsFirstThird: number, fdsLastThird: number }>
  agentEvents: Record<string, Record<string, number>>
  /** Absent in results written before the counters existed. */
  counters?: Record<string, AgentCounters>
  timeline: TimelineEntry[]
}

/** One soak-agent process on the LAN host. */
class SoakAgent {
  readonly name: string
  /** The one-off events seen so far. */
  readonly events: AgentEvent[] = []
  readonly counts: Record<string, number> = {}
  readonly #child: ChildProcessWithoutNullStreams
  readonly #waiting: Array<{ event: string, resolve: (event: AgentEvent) => void, reject: (error: Error) => void }> = []
  readonly exited: Promise<number | null>
  #stderr = ''
  #queue: Promise<unknown> = Promise.resolve()

  constructor (name: string, config: unknown, onEvent: (agent: SoakAgent, event: AgentEvent) => void) {
    this.name = name
    this.#child = spawn('ip', ['netns', 'exec', lab.lanNamespace, process.execPath, '--expose-gc', '--import', 'tsx', `${ROOT}test/lab/agents/soak-agent.ts`, JSON.stringify(config)], { cwd: ROOT })
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      let event: AgentEvent
      try { event = JSON.parse(line) as AgentEvent } catch { this.#stderr += `stdout: ${line}\n`; return }
      this.counts[event.event] = (this.counts[event.event] ?? 0) + 1
      if (event.event === 'ready' || event.event === 'closed') this.events.push(event)
      const waiter = this.#waiting.findIndex((each) => each.event === event.event || (event.event === 'command-failed'))
      if (waiter >= 0) {
        const [found] = this.#waiting.splice(waiter, 1)
        found?.resolve(event)
      }
      onEvent(this, event)
    })
    this.#child.stderr.on('data', (data: Buffer) => { this.#stderr = (this.#stderr + data.toString()).slice(-8_000) })
    this.exited = new Promise((resolve) => this.#child.on('close', (code) => {
      for (const waiter of this.#waiting.splice(0)) waiter.reject(new Error(`agent ${name} exited (${String(code)}): ${this.#stderr.slice(-2_000)}`))
      resolve(code)
    }))
  }

  get stderr (): string { return this.#stderr }

  /** Sends a command and waits for the event that answers it; commands are answered in order. */
  async ask (command: Record<string, unknown>, answer: string, timeout = 30_000): Promise<AgentEvent> {
    const asked = this.#queue.then(async () => await new Promise<AgentEvent>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`agent ${this.name} did not answer ${JSON.stringify(command)} within ${timeout} ms`)) }, timeout)
      this.#waiting.push({ event: answer, resolve: (event) => { clearTimeout(timer); resolve(event) }, reject: (error) => { clearTimeout(timer); reject(error) } })
      this.#child.stdin.write(JSON.stringify(command) + '\n')
    }))
    this.#queue = asked.catch(() => {})
    return await asked
  }

  /** Waits for a one-off event ('ready', 'closed'), which may already have come. */
  async next (event: string, timeout: number): Promise<AgentEvent> {
    const seen = this.events.find((each) => each.event === event)
    if (seen !== undefined) return seen
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`agent ${this.name} did not report ${event} within ${timeout} ms: ${this.#stderr.slice(-2_000)}`)) }, timeout)
      this.#waiting.push({ event, resolve: (found) => { clearTimeout(timer); resolve(found) }, reject: (error) => { clearTimeout(timer); reject(error) } })
    })
  }

  async status (): Promise<AgentStatus> {
    const reply = await this.ask({ cmd: 'status' }, 'status')
    return reply as unknown as AgentStatus
  }

  kill (): void { this.#child.kill('SIGKILL') }
}

function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

function thirds (samples: readonly MemorySample[], pick: (sample: MemorySample) => number): [number, number] {
  const third = Math.max(1, Math.floor(samples.length / 3))
  return [median(samples.slice(0, third).map(pick)), median(samples.slice(-third).map(pick))]
}

async function sleep (ms: number): Promise<void> { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '5' },
      mappings: { type: 'string', default: '6' },
      seed: { type: 'string' },
      out: { type: 'string' },
      'heap-snapshots': { type: 'string' }
    }
  })
  const minutes = Number(values.minutes)
  const mappingsPerAgent = Number(values.mappings)
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed)
  if (!(minutes > 0)) throw new Error('--minutes must be a positive number')
  if (!Number.isInteger(mappingsPerAgent) || mappingsPerAgent < 1 || mappingsPerAgent > 200) throw new Error('--mappings must be an integer from 1 to 200')
  if (!Number.isInteger(seed) || seed < 0) throw new Error('--seed must be a non-negative integer')
  const unavailable = labUnavailableReason()
  if (unavailable !== undefined) throw new Error(`the soak needs the lab: ${unavailable}`)

  const began = Date.now()
  const timeline: TimelineEntry[] = []
  const violations: Violation[] = []
  const note = (what: string): void => {
    timeline.push({ t: Date.now() - began, what })
    console.log(`${((Date.now() - began) / 1_000).toFixed(1).padStart(7)} s  ${what}`)
  }
  const violate = (invariant: Violation['invariant'], detail: string): void => {
    violations.push({ t: Date.now() - began, invariant, detail })
    note(`VIOLATION ${invariant}: ${detail}`)
  }

  console.log(`soak: seed ${seed}, ${minutes} min, ${mappingsPerAgent} mappings per NAT, NATs: ${AGENTS.map((agent) => agent.name).join(', ')}; lab instance '${process.env.NATMAPPER_LAB_INSTANCE ?? ''}'`)
  await acquireLabLock()
  const agents: SoakAgent[] = []
  const prober = { current: undefined as WanProber | undefined }
  const statuses = new Map<string, AgentStatus>()
  const memory = new Map<string, MemorySample[]>()
  const episodes: EpisodeResult[] = []
  const incidents: GatewayIncident[] = []
  const counters: Record<string, AgentCounters> = {}
  let gatewayLog: LogTail | undefined
  let stopSampling = false
  let sampler: Promise<void> = Promise.resolve()
  try {
    await labScript('up.sh', ['--mode', 'all', '--uptime', 'daemon'])
    await labScript('gateway2.sh', ['up'])
    gatewayLog = new LogTail(`${labEnv.LAB_RUN_DIR ?? '/run/natmapper-lab'}/miniupnpd.log`)
    prober.current = new WanProber()
    const onEvent = (agent: SoakAgent, event: AgentEvent): void => {
      if (event.event === 'crash' || event.event === 'warning') violate('crash', `${agent.name}: ${event.event} ${JSON.stringify(event)}`)
      if (['gateway-reset', 'gateway-changed', 'external-address-changed', 'lost', 'changed', 'command-failed'].includes(event.event)) {
        const fields: Record<string, unknown> = { ...event }
        delete fields.event
        delete fields.t
        note(`  ${agent.name}: ${event.event} ${JSON.stringify(fields).slice(0, 200)}`)
      }
    }
    AGENTS.forEach((spec, index) => {
      const base = 30_000 + index * 1_000
      const mappings = Array.from({ length: mappingsPerAgent }, (_, k) => ({ transport: k % 2 === 0 ? 'tcp' : 'udp', port: base + k }))
      agents.push(new SoakAgent(spec.name, { discover: { ...DISCOVER, protocols: spec.protocols }, mappings, heapSnapshots: values['heap-snapshots'] }, onEvent))
    })
    for (const agent of agents) {
      const ready = await agent.next('ready', 60_000)
      statuses.set(agent.name, ready as unknown as AgentStatus)
      note(`${agent.name}: ready on ${String(ready.type)} via ${String(ready.gateway)}`)
    }

    // The "truthful" invariant, sampled all the time: established means the gateway holds it.
    const suspicious = new Map<string, number>()
    const sample = async (): Promise<void> => {
      const fresh = await Promise.all(agents.map(async (agent) => [agent.name, await agent.status()] as const))
      const rules: Record<string, GatewayRule[]> = { [lab.gatewayLanAddress]: await gatewayRules('gw'), [labGateway2()]: await gatewayRules('gw2') }
      const now = Date.now()
      for (const [name, status] of fresh) {
        statuses.set(name, status)
        for (const mapping of status.mappings) {
          const id = `${name} ${mapping.transport}/${mapping.port}`
          const held = (rules[status.gateway] ?? []).some((rule) => rule.protocol === mapping.transport && rule.externalPort === mapping.externalPort && rule.internalPort === mapping.port && rule.internalAddress === status.localAddress)
          if (!mapping.established || held) { suspicious.delete(id); continue }
          const since = suspicious.get(id) ?? now
          suspicious.set(id, since)
          if (now - since > DETECTION_BOUND_MS) {
            violate('truthful', `${id} has said established on ${status.gateway} port ${mapping.externalPort} for ${now - since} ms while the gateway holds no rule for it`)
            suspicious.set(id, now)
          }
        }
      }
    }
    sampler = (async () => {
      while (!stopSampling) {
        await sample().catch((error: unknown) => { note(`sampler: ${String(error)}`) })
        await sleep(1_000)
      }
    })()

    const held = (): HeldMapping[] => [...statuses.values()].flatMap((status) => status.mappings.filter((mapping) => mapping.established).map((mapping) => ({ transport: mapping.transport, externalPort: mapping.externalPort, gateway: status.gateway })))
    const burst = async (pick: number, open: boolean): Promise<void> => {
      const agent = agents[pick % agents.length] as SoakAgent
      const count = 4 + (pick % 7)
      const base = 30_000 + agents.indexOf(agent) * 1_000 + 500
      await Promise.all(Array.from({ length: count }, async (_, k) => {
        await agent.ask({ cmd: open ? 'open' : 'close', transport: k % 2 === 0 ? 'udp' : 'tcp', port: base + k }, open ? 'opened' : 'mapping-closed')
      }))
      note(`${agent.name}: ${open ? 'opened' : 'closed'} a burst of ${count} mappings`)
    }

    const stopAt = began + minutes * 60_000
    for (let index = 0; Date.now() < stopAt; index++) {
      const episode = planEpisode(seed, index, MAPPING_DURATION_MS)
      const startedAt = Date.now() - began
      note(`episode ${index}: ${episode.faults.map((fault) => `${fault.kind} at +${fault.startMs} ms for ${fault.holdMs} ms`).join('; ')}`)
      await Promise.all(episode.faults.map(async (fault) => {
        await sleep(fault.startMs)
        note(`  apply ${fault.kind}`)
        let active: ActiveFault
        try {
          active = await applyFault(fault, { held, burst, note })
        } catch (error) {
          note(`  ${fault.kind} could not be applied: ${String(error)}`)
          return
        }
        await sleep(fault.holdMs)
        if (fault.holdMs > 0) note(`  undo ${fault.kind}`)
        await active.undo().catch((error: unknown) => { note(`  ${fault.kind} could not be undone: ${String(error)}`) })
      }))
      const settledAt = Date.now()
      const recovery = await waitForRecovery(agents, prober.current, settledAt)
      const recoveredMs = recovery.ms
      if (recoveredMs === undefined) {
        // A gateway that cannot add rules any more cannot be repaired by any client: say so,
        // restart it (what its owner would do), and require recovery from then on.
        const evidence = gatewayBreakage(gatewayLog?.readNew() ?? '')
        if (evidence === undefined) {
          violate('recovery', `not every mapping was back within ${RECOVERY_BOUND_MS} ms: ${recovery.problems.slice(0, 8).join('; ')}`)
        } else {
          note(`episode ${index}: the gateway itself is broken (miniupnpd log: "${evidence}"); restarting it`)
          await labScript('gateway.sh', ['restart'])
          const restartedAt = Date.now()
          const after = await waitForRecovery(agents, prober.current, restartedAt)
          incidents.push({ t: restartedAt - began, episode: index, evidence, recoveredAfterRestartMs: after.ms })
          if (after.ms === undefined) violate('recovery', `not every mapping was back within ${RECOVERY_BOUND_MS} ms of restarting the broken gateway: ${after.problems.slice(0, 8).join('; ')}`)
          else note(`episode ${index}: every mapping reachable ${after.ms} ms after the broken gateway was restarted`)
        }
      }
      gatewayLog?.readNew()
      if (recoveredMs !== undefined) note(`episode ${index}: every mapping reachable ${recoveredMs} ms after the faults were undone`)
      episodes.push({ index, kinds: episode.faults.map((fault) => fault.kind), faults: episode.faults, startedAt, settledAt: settledAt - began, recoveredMs })
      if (recoveredMs !== undefined) {
        for (const agent of agents) {
          const sample = await agent.ask({ cmd: 'memory' }, 'memory') as unknown as MemorySample
          const samples = memory.get(agent.name) ?? []
          samples.push(sample)
          memory.set(agent.name, samples)
        }
      }
      await sleep(episode.quietMs)
    }

    stopSampling = true
    await sampler
    for (const agent of agents) {
      const reply = await agent.ask({ cmd: 'stats' }, 'stats').catch((error: unknown) => { violate('counters', `${agent.name}: no stats: ${String(error)}`) })
      if (reply !== undefined) counters[agent.name] = { stats: reply.stats as NatStats, emitted: reply.emitted as Record<string, number> }
    }
    checkCounters(counters, episodes, (detail) => { violate('counters', detail) })
    // The "close" invariant: close() leaves no rule of ours and lets the process end by itself.
    for (const agent of agents) {
      await agent.ask({ cmd: 'exit' }, 'closed', 30_000).catch((error: unknown) => { violate('close', `${agent.name}: ${String(error)}`) })
    }
    for (const agent of agents) {
      const code = await Promise.race([agent.exited, sleep(15_000).then(() => 'hung' as const)])
      if (code === 'hung') {
        violate('close', `${agent.name} did not exit by itself within 15 s of close(): something was left running`)
        agent.kill()
      } else if (code !== 0) {
        violate('agent', `${agent.name} exited with ${String(code)}: ${agent.stderr.slice(-1_000)}`)
      }
    }
    // Rules a NAT abandoned when the LAN address moved expire with their lease; give them that.
    const ours = new Set([lab.lanAddress, '192.168.77.20'])
    let left: GatewayRule[] = []
    for (const deadline = Date.now() + MAPPING_DURATION_MS * 3; Date.now() < deadline; await sleep(500)) {
      left = [...await gatewayRules('gw'), ...await gatewayRules('gw2')].filter((rule) => ours.has(rule.internalAddress))
      if (left.length === 0) break
    }
    if (left.length > 0) violate('close', `after close() the gateways still hold ${left.length} rule(s) of ours: ${left.map((rule) => `${rule.protocol} ${rule.externalPort}→${rule.internalAddress}:${rule.internalPort}`).join(', ')}`)
  } catch (error) {
    violate('agent', `the soak itself failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
  } finally {
    stopSampling = true
    await sampler.catch(() => {})
    for (const agent of agents) agent.kill()
    prober.current?.close()
    await restoreLab().catch(() => {})
    await labScript('down.sh', []).catch(() => {})
    releaseLabLock()
  }

  // The "memory" invariant: flat between the first and the last third of the run.
  const memoryReport: SoakResult['memory'] = {}
  for (const [name, samples] of memory) {
    const [heapFirstThird, heapLastThird] = thirds(samples, (sample) => sample.heapUsed)
    // Reported beside the heap, not subtracted from it: the bound holds for the whole heap.
    const [heapCodeFirstThird, heapCodeLastThird] = thirds(samples, (sample) => sample.heapCode ?? 0)
    const [handlesFirstThird, handlesLastThird] = thirds(samples, (sample) => sample.handles)
    const [fdsFirstThird, fdsLastThird] = thirds(samples, (sample) => sample.fds)
    memoryReport[name] = { samples, heapFirstThird, heapLastThird, heapCodeFirstThird, heapCodeLastThird, handlesFirstThird, handlesLastThird, fdsFirstThird, fdsLastThird }
    if (samples.length >= 3) {
      if (heapLastThird - heapFirstThird > HEAP_GROWTH_BOUND) violate('memory', `${name}: heap grew ${((heapLastThird - heapFirstThird) / 1_048_576).toFixed(2)} MB (bound ${HEAP_GROWTH_BOUND / 1_048_576} MB)`)
      if (handlesLastThird - handlesFirstThird > HANDLE_GROWTH_BOUND) violate('memory', `${name}: live resources (timers, sockets) grew from ${handlesFirstThird} to ${handlesLastThird}`)
      if (fdsLastThird - fdsFirstThird > FD_GROWTH_BOUND) violate('memory', `${name}: open file descriptors grew from ${fdsFirstThird} to ${fdsLastThird}`)
    }
  }

  const result: SoakResult = {
    seed,
    minutes,
    mappingsPerAgent,
    agents: AGENTS.map((agent) => agent.name),
    startedAt: new Date(began).toISOString(),
    wallSeconds: Math.round((Date.now() - began) / 1_000),
    episodes,
    violations,
    incidents,
    memory: memoryReport,
    agentEvents: Object.fromEntries(agents.map((agent) => [agent.name, agent.counts])),
    counters,
    timeline
  }
  if (values.out !== undefined) {
    mkdirSync(values.out, { recursive: true })
    writeFileSync(`${values.out}/soak-${seed}.json`, JSON.stringify(result, null, 1))
  }
  printSummary(result)
  if (violations.length > 0) {
    console.log(`\nFAILED with seed ${seed}: replay with  NATMAPPER_LAB_INSTANCE=${process.env.NATMAPPER_LAB_INSTANCE ?? ''} npm run soak -- --minutes ${minutes} --mappings ${mappingsPerAgent} --seed ${seed}`)
    console.log('fault timeline:')
    for (const entry of timeline) console.log(`${(entry.t / 1_000).toFixed(1).padStart(7)} s  ${entry.what}`)
    process.exitCode = 1
  }
}

function labGateway2 (): string {
  return labEnv.LAB_GW2_LAN_IP ?? '192.168.77.254'
}

/**
 * Waits until every mapping of every agent is established and reachable from the WAN host at the
 * address and port it reports; resolves with the time that took, or with what is still wrong
 * once the bound has passed.
 */
async function waitForRecovery (agents: readonly SoakAgent[], prober: WanProber, since: number): Promise<{ ms?: number, problems: string[] }> {
  let problems: string[] = []
  while (Date.now() - since < RECOVERY_BOUND_MS) {
    problems = []
    const statuses = await Promise.all(agents.map(async (agent) => [agent, await agent.status().catch(() => undefined)] as const))
    await Promise.all(statuses.flatMap(([agent, status]) => {
      if (status === undefined) { problems.push(`${agent.name}: no status`); return [] }
      return status.mappings.map(async (mapping) => {
        const id = `${agent.name} ${mapping.transport}/${mapping.port}`
        if (!mapping.established || mapping.address === undefined) { problems.push(`${id} not established`); return }
        const reach = await prober.probe(mapping.transport, mapping.address, mapping.externalPort, 1_000)
        if (!reach.ok) problems.push(`${id} at ${mapping.address}:${mapping.externalPort} unreachable (${reach.error ?? ''})`)
      })
    }))
    if (problems.length === 0) return { ms: Date.now() - since, problems }
    await sleep(200)
  }
  return { problems }
}

/**
 * miniupnpd 2.3.1's nftables backend can stop adding rules for good ("mnl_cb_run returned -1",
 * "send_batch failed" on every request) after its rules were changed behind its back; only a
 * restart mends it. The first such line in `log`, or undefined.
 */
function gatewayBreakage (log: string): string | undefined {
  return /^.*(?:send_batch failed|mnl_cb_run returned -1).*$/m.exec(log)?.[0]?.trim()
}

/** Reads what miniupnpd has logged since the last call. */
class LogTail {
  readonly #path: string
  #offset: number
  constructor (path: string) {
    this.#path = path
    this.#offset = this.#size()
  }

  readNew (): string {
    const size = this.#size()
    if (size < this.#offset) this.#offset = 0
    const length = Math.min(size - this.#offset, 4 * 1024 * 1024)
    const buffer = Buffer.alloc(length)
    const fd = openSync(this.#path, 'r')
    try { readSync(fd, buffer, 0, length, this.#offset) } finally { closeSync(fd) }
    this.#offset = size
    return buffer.toString('latin1')
  }

  #size (): number {
    try { return statSync(this.#path).size } catch { return 0 }
  }
}

function printSummary (result: SoakResult): void {
  const byKind = new Map<string, number[]>()
  for (const episode of result.episodes) {
    for (const kind of new Set(episode.kinds)) {
      const times = byKind.get(kind) ?? []
      if (episode.recoveredMs !== undefined) times.push(episode.recoveredMs)
      byKind.set(kind, times)
    }
  }
  console.log(`\nsoak summary: seed ${result.seed}, ${result.wallSeconds} s, ${result.episodes.length} episodes, ${result.violations.length} violation(s)`)
  console.log('fault kind        applied  recovery median (ms)  worst (ms)')
  for (const [kind, times] of [...byKind].sort()) {
    const applied = result.episodes.filter((episode) => episode.kinds.includes(kind as FaultKind)).length
    console.log(`${kind.padEnd(17)} ${String(applied).padStart(7)} ${String(median(times)).padStart(21)} ${String(Math.max(0, ...times)).padStart(11)}`)
  }
  for (const [name, figures] of Object.entries(result.memory)) {
    console.log(`${name.padEnd(8)} heap ${(figures.heapFirstThird / 1_048_576).toFixed(2)} → ${(figures.heapLastThird / 1_048_576).toFixed(2)} MB (V8 code and bytecode ${((figures.heapCodeFirstThird ?? 0) / 1_048_576).toFixed(2)} → ${((figures.heapCodeLastThird ?? 0) / 1_048_576).toFixed(2)} MB), live resources ${figures.handlesFirstThird} → ${figures.handlesLastThird}, fds ${figures.fdsFirstThird} → ${figures.fdsLastThird} (${figures.samples.length} samples after GC)`)
  }
  const faults = new Map<string, number>()
  for (const episode of result.episodes) for (const kind of episode.kinds) faults.set(kind, (faults.get(kind) ?? 0) + 1)
  console.log(`faults applied: ${[...faults].sort().map(([kind, count]) => `${kind} ${count}`).join(', ') || 'none'}`)
  for (const [name, { stats }] of Object.entries(result.counters ?? {})) {
    const protocols = Object.entries(stats.protocols).filter(([, p]) => p.requests > 0)
    console.log(`${name.padEnd(8)} counters: gateway resets ${stats.gatewayResets}, changes ${stats.gatewayChanges}; ${protocols.map(([protocol, p]) =>
      `${protocol}: requests ${p.requests}, retransmissions ${p.retransmissions}, timeouts ${p.timeouts}, refusals ${p.refusals}, lost ${p.mappingsLost}, recovered ${p.mappingsRecovered}, answers ${p.answers.map((a) => `${a.name} ${a.count}`).join(' ')}`).join('; ')}`)
  }
  for (const incident of result.incidents) console.log(`GATEWAY BROKEN after episode ${incident.episode} (${incident.evidence}); restarted; every mapping back ${String(incident.recoveredAfterRestartMs)} ms later`)
  for (const violation of result.violations) console.log(`VIOLATION ${violation.invariant} at ${(violation.t / 1_000).toFixed(1)} s: ${violation.detail}`)
}

await main()
