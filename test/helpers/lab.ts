/**
 * Test helpers for the lab: network namespaces with a real miniupnpd (see lab/README.md).
 * Lab suites run in the root namespace but never send a packet from it: every packet comes from
 * an agent started inside a lab namespace with `ip netns exec`.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { labInstance, readLabEnv } from './lab-env.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const LAB = `${ROOT}lab/`
const LOCK = `/run/natmapper-lab-tests${labInstance() === '' ? '' : `-${labInstance()}`}.lock`

export type LabMode = 'all' | 'pmp' | 'upnp' | 'upnp-igd1' | 'silent' | 'closed'

/**
 * How the lab's miniupnpd is configured (lab/README.md, "Gateway profiles"). New tests run against
 * `stock` unless they need another one: `permissive` allows every port and PCP lifetimes down to
 * 1 s; `stock` is miniupnpd's sample config (ports >= 1024 only, PCP min_lifetime 120);
 * `stock-igd1` is stock as UPnP IGDv1 with NAT-PMP/PCP off (mode upnp-igd1); `home` is stock on a
 * home network's IPv6 (router advertisements, SLAAC with temporary addresses, a link-local next
 * hop): IPv6 tests run on it.
 */
export type LabProfile = 'permissive' | 'stock' | 'stock-igd1' | 'home'

/** Which gateway a lab suite runs against. */
export interface LabGateway {
  /** What miniupnpd speaks. Default 'all' (stock-igd1: 'upnp-igd1'). */
  mode?: LabMode
  profile: LabProfile
}

/** KEY=VALUE pairs from lab/lab.env (for this lab instance): namespace names and addresses. */
export const labEnv: Record<string, string> = readLabEnv()

function env (key: string): string {
  const value = labEnv[key]
  if (value === undefined || value === '') throw new Error(`lab/lab.env has no ${key}`)
  return value
}

export const lab = {
  get lanNamespace (): string { return env('LAB_NS_LAN') },
  get lan2Namespace (): string { return env('LAB_NS_LAN2') },
  get wanNamespace (): string { return env('LAB_NS_WAN') },
  get gatewayNamespace (): string { return env('LAB_NS_GW') },
  get gatewayLanAddress (): string { return env('LAB_GW_LAN_IP') },
  get gatewayWanAddress (): string { return env('LAB_GW_WAN_IP') },
  get lanAddress (): string { return env('LAB_LAN_IP') },
  get lan2Address (): string { return env('LAB_LAN2_IP') },
  /** The gateway's global LAN address (what miniupnpd names in its LOCATION). */
  get gatewayLanAddress6 (): string { return env('LAB_GW_LAN_IP6') },
  /** The LAN host's IPv6 next hop: the gateway's link-local address in the home profile, its global one otherwise. */
  get gatewayNextHop6 (): string { return runningProfile() === 'home' ? `${env('LAB_GW_LAN_LL6')}%${env('LAB_LAN_IF')}` : env('LAB_GW_LAN_IP6') },
  get gatewayWanAddress6 (): string { return env('LAB_GW_WAN_IP6') },
  /** The LAN host's stable global address: autoconfigured (EUI-64) in the home profile, set by hand otherwise. */
  get lanAddress6 (): string { return runningProfile() === 'home' ? env('LAB_LAN_SLAAC_IP6') : env('LAB_LAN_IP6') },
  /** The second LAN host's, likewise. */
  get lan2Address6 (): string { return runningProfile() === 'home' ? env('LAB_LAN2_SLAAC_IP6') : env('LAB_LAN2_IP6') },
  get wanAddress6 (): string { return env('LAB_WAN_IP6') }
}

/** The profile of the lab that is up (lab/up.sh writes it), or undefined. */
export function runningProfile (): string | undefined {
  const profile = readFileSafe(`${env('LAB_RUN_DIR')}/profile`)
  return profile === '' ? undefined : profile
}

/** Why the lab cannot run here, or undefined when it can. */
export function labUnavailableReason (): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux network namespaces'
  if (process.getuid?.() !== 0) return 'the lab needs root to create network namespaces'
  for (const tool of ['ip', 'nft', 'miniupnpd', 'radvd']) {
    if (spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0) return `${tool} is not installed (bash lab/install.sh installs the lab tools)`
  }
  return undefined
}

/**
 * A describe() whose tests run against a fresh lab with `gateway`'s mode and profile. Without root
 * the suite is reported as skipped with the reason, unless NATMAPPER_REQUIRE_LAB=1, under which it
 * fails.
 */
export function labSuite (name: string, gateway: LabGateway, body: () => void, upArgs: string[] = []): void {
  labToolsSuite(name, () => {
    before(async () => {
      await acquireLabLock()
      runLabScript('up.sh', [...(gateway.mode === undefined ? [] : ['--mode', gateway.mode]), '--profile', gateway.profile, ...upArgs])
    })
    after(() => {
      runLabScript('down.sh', [])
      releaseLabLock()
    })
    body()
  })
}

/**
 * A describe() that needs what the lab needs (Linux, root, the lab tools) but builds no lab. Without
 * them the suite is reported as skipped with the reason, unless NATMAPPER_REQUIRE_LAB=1, under which
 * it fails.
 */
export function labToolsSuite (name: string, body: () => void): void {
  const reason = labUnavailableReason()
  if (reason === undefined) {
    describe(name, body)
  } else if (process.env.NATMAPPER_REQUIRE_LAB === '1') {
    describe(name, () => { it('needs the lab', () => { throw new Error(`lab required (NATMAPPER_REQUIRE_LAB=1) but unavailable: ${reason}`) }) })
  } else {
    describe(name, { skip: reason }, body)
  }
}

/** Test files run in parallel processes; only one may own the lab at a time. */
/** Holds the lab for this process (tests, the demo, benchmarks); waits while another holds it. */
export async function acquireLabLock (): Promise<void> {
  const deadline = Date.now() + 600_000
  while (true) {
    // The lock directory appears with its pid file already inside (rename is atomic), so a waiter
    // never sees an empty owner and takes it for a dead one.
    const staging = `${LOCK}.${process.pid}`
    rmSync(staging, { recursive: true, force: true })
    mkdirSync(staging)
    writeFileSync(`${staging}/pid`, String(process.pid))
    try {
      renameSync(staging, LOCK)
      return
    } catch {
      rmSync(staging, { recursive: true, force: true })
      const owner = Number(readFileSafe(`${LOCK}/pid`))
      if (!(owner > 0) || !processAlive(owner)) { rmSync(LOCK, { recursive: true, force: true }); continue }
      if (Date.now() > deadline) throw new Error(`lab is held by process ${owner}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}

export function releaseLabLock (): void {
  if (readFileSafe(`${LOCK}/pid`) === String(process.pid)) rmSync(LOCK, { recursive: true, force: true })
}

function readFileSafe (path: string): string {
  try { return readFileSync(path, 'utf8').trim() } catch { return '' }
}

function processAlive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

export function runLabScript (script: string, args: string[]): string {
  const result = spawnSync('bash', [`${LAB}${script}`, ...args], { encoding: 'utf8', timeout: 60_000 })
  if (result.status !== 0) throw new Error(`lab/${script} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}${result.stdout}`)
  return result.stdout
}

/** The nftables rules miniupnpd holds right now. */
export function gatewayRules (): string {
  return runLabScript('gateway.sh', ['rules'])
}

/**
 * Waits until miniupnpd's log has stopped growing for `quietMs` (at most `limit` ms), and returns its
 * length then: a refused request keeps miniupnpd busy (and logging) for seconds after the client has
 * its answer, so a test that reads the log for its own requests starts from a quiet gateway.
 */
export async function quietGatewayLog (quietMs = 1_500, limit = 60_000): Promise<number> {
  const started = Date.now()
  let length = gatewayLog().length
  let stableSince = Date.now()
  while (Date.now() - stableSince < quietMs && Date.now() - started < limit) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    const now = gatewayLog().length
    if (now !== length) { length = now; stableSince = Date.now() }
  }
  return length
}

export function gatewayLog (): string {
  try { return runLabScript('gateway.sh', ['log']) } catch (error) { return String(error) }
}

/**
 * Whether the gateway's nftables hold a redirect of external `port`/`protocol`. Reads the DNAT
 * rules themselves (through `lab/gateway.sh mappings`: "tcp 8080 192.168.77.2 8080" per rule),
 * not miniupnpd's idea of them.
 */
export function gatewayHolds (protocol: 'tcp' | 'udp', port: number): boolean {
  return runLabScript('gateway.sh', ['mappings']).split('\n').some((line) => {
    const [ruleProtocol, externalPort] = line.trim().split(/\s+/)
    return ruleProtocol === protocol && Number(externalPort) === port
  })
}

/**
 * Whether the gateway's nftables hold an IPv6 pinhole to `address` port `port`/`protocol`.
 * miniupnpd 2.3.1's nft backend writes pinholes (UPnP and PCP alike) into its forward chain as
 * raw payload matches: `iif "gw-wan" th dport 8080 @nh,192,128 0x2001...0002 @nh,48,8 0x6 accept`
 * (@nh,192,128 is the IPv6 destination, @nh,48,8 the next header).
 */
export function gatewayHoldsPinhole (protocol: 'tcp' | 'udp', address: string, port: number): boolean {
  const hex = ipv6Hex(address)
  const next = protocol === 'tcp' ? '0x6' : '0x11'
  return gatewayRules().split('\n').some((line) =>
    new RegExp(`dport ${port}\\b`).test(line) && line.includes(`@nh,192,128 0x${hex}`) && line.includes(`@nh,48,8 ${next}`))
}

function ipv6Hex (address: string): string {
  const [head = '', tail = ''] = address.split('::')
  const headGroups = head === '' ? [] : head.split(':')
  const tailGroups = tail === '' ? [] : tail.split(':')
  const groups = [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
  return groups.map((group) => group.padStart(4, '0')).join('').toLowerCase()
}

/** Runs a test agent (TypeScript, via tsx) inside a lab namespace. */
export function spawnInNamespace (namespace: string, agent: string, args: string[]): ChildProcessWithoutNullStreams {
  return spawn('ip', ['netns', 'exec', namespace, process.execPath, '--import', 'tsx', `${ROOT}test/lab/agents/${agent}`, ...args], { cwd: ROOT })
}

/** Polls until the WAN host reaches address:port, or `limit` ms pass; resolves with how long it took. */
export async function waitUntilReachable (protocol: 'tcp' | 'udp', address: string, port: () => number, limit: number): Promise<number> {
  const started = Date.now()
  let last = ''
  while (Date.now() - started < limit) {
    const reach = await reachableFromWan(protocol, address, port())
    if (reach.ok) return Date.now() - started
    last = reach.output
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error(`${protocol} ${address}:${port()} not reachable within ${limit} ms: ${last}\ngateway log:\n${gatewayLog().slice(-2000)}`)
}

/** Proves the LAN service answers at address:port from the WAN host. */
export async function reachableFromWan (protocol: 'tcp' | 'udp', address: string, port: number): Promise<{ ok: boolean, output: string }> {
  const child = spawnInNamespace(lab.wanNamespace, 'reach.ts', [protocol, address, String(port), '3000'])
  let output = ''
  child.stdout.on('data', (data: Buffer) => { output += data.toString() })
  child.stderr.on('data', (data: Buffer) => { output += data.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { ok: code === 0, output: output.trim() }
}

export interface AgentEvent { event: string, [field: string]: unknown }

/** A map-agent process: its JSON events, commands to it, and its exit. */
export class Agent {
  readonly events: AgentEvent[] = []
  readonly stderr: string[] = []
  readonly #child: ChildProcessWithoutNullStreams
  readonly #exited: Promise<number | null>
  #waiters: Array<() => void> = []

  constructor (namespace: string, agent: string, config: unknown) {
    this.#child = spawnInNamespace(namespace, agent, [JSON.stringify(config)])
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      try { this.events.push(JSON.parse(line) as AgentEvent) } catch { this.stderr.push(`stdout: ${line}`) }
      for (const wake of this.#waiters) wake()
    })
    this.#child.stderr.on('data', (data: Buffer) => { this.stderr.push(data.toString()) })
    this.#exited = new Promise((resolve) => this.#child.on('close', (code) => {
      resolve(code)
      for (const wake of this.#waiters) wake()
    }))
  }

  send (command: string): void {
    this.#child.stdin.write(command + '\n')
  }

  /** The events after index `from` named `event`. */
  since (from: number, event: string): AgentEvent[] {
    return this.events.slice(from).filter((e) => e.event === event)
  }

  /** Sends a command and waits for its answer, or for the agent to report that it failed. */
  async ask (command: string, answer: string, timeout = 20_000): Promise<AgentEvent> {
    const from = this.events.length
    this.send(command)
    const deadline = Date.now() + timeout
    while (true) {
      const reply = this.events.slice(from).find((e) => e.event === answer || (e.event === 'command-failed' && e.command === command))
      if (reply !== undefined) return reply
      if (Date.now() > deadline || this.#child.exitCode !== null) throw new Error(`agent never answered "${command}"; events: ${JSON.stringify(this.events.slice(from))}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** Waits (generously) for an event that matches. */
  async next (event: string, timeout = 20_000, after = 0): Promise<AgentEvent> {
    const deadline = Date.now() + timeout
    while (true) {
      const found = this.events.slice(after).find((e) => e.event === event)
      if (found !== undefined) return found
      if (Date.now() > deadline || this.#child.exitCode !== null) {
        throw new Error(`agent never reported "${event}"; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr.join('')}\ngateway log:\n${gatewayLog().slice(-3000)}`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
      this.#waiters = []
    }
  }

  count (event: string): number {
    return this.events.filter((e) => e.event === event).length
  }

  /** Tells the agent to close its NAT and exit, and asserts it closed and exited by itself with 0. */
  async exitCleanly (): Promise<void> {
    this.send('exit')
    await this.next('closed')
    assert.equal(await this.exit(), 0)
  }

  /** Resolves with the exit code if the process ends by itself within `timeout`, else kills it and throws. */
  async exit (timeout = 15_000): Promise<number | null> {
    const timer = new Promise<'hung'>((resolve) => { const t = setTimeout(() => { resolve('hung') }, timeout); t.unref() })
    const result = await Promise.race([this.#exited, timer])
    if (result === 'hung') {
      this.kill()
      throw new Error(`agent did not exit by itself within ${timeout} ms: something was left running. events: ${JSON.stringify(this.events)}`)
    }
    return result
  }

  kill (): void {
    this.#child.kill('SIGKILL')
  }
}

/** What the gateway logs when its permission rules refuse a request (miniupnpd 2.3.1). */
export const GATEWAY_REFUSAL = /permission rule \d+ matched : port mapping rejected|No allowed eport|not authori[sz]ed/i

/**
 * The whole life of one mapping through a map-agent: discovered as `type`, mapped, held by the
 * gateway, reached from the WAN host, closed, gone and unreachable, and the agent exits by itself. IPv4 checks the
 * gateway's DNAT rule at the external port, IPv6 its pinhole to the LAN host's own address.
 */
export async function assertMappingLifecycle (config: { transport: 'tcp' | 'udp', port: number, discover: Record<string, unknown> }, type: string): Promise<void> {
  const ipv6 = config.discover.family === 'IPv6'
  const agent = new Agent(lab.lanNamespace, 'map-agent.ts', config)
  try {
    const discovered = await agent.next('discovered')
    assert.equal(discovered.type, type)
    assert.equal(discovered.gateway, ipv6 ? lab.gatewayNextHop6 : lab.gatewayLanAddress)
    const mapped = await agent.next('mapped')
    assert.equal(mapped.address, ipv6 ? lab.lanAddress6 : lab.gatewayWanAddress)
    assert.equal(mapped.family, ipv6 ? 'IPv6' : 'IPv4')
    const port = mapped.port as number
    assert.ok(port >= 1_024, `external port ${port}`)
    const held = (): boolean => ipv6 ? gatewayHoldsPinhole(config.transport, lab.lanAddress6, port) : gatewayHolds(config.transport, port)
    assert.ok(held(), 'the gateway holds the mapping')
    const reach = await reachableFromWan(config.transport, String(mapped.address), port)
    assert.ok(reach.ok, `WAN host reaches the LAN service: ${reach.output}`)
    agent.send('close-mapping')
    assert.equal((await agent.next('mapping-closed')).established, false)
    assert.ok(!held(), 'the gateway no longer holds the mapping')
    // The agent still serves the port: the gateway, not a missing server, blocks it now.
    const after = await reachableFromWan(config.transport, String(mapped.address), port)
    assert.ok(!after.ok, `unreachable from the WAN host after close: ${after.output}`)
    await agent.exitCleanly()
  } finally {
    agent.kill()
  }
}

/** A wan-prober agent in the WAN namespace: many reachability probes, one process. */
export class WanProber {
  readonly #child: ChildProcessWithoutNullStreams
  readonly #pending = new Map<number, (result: { ok: boolean, error?: string }) => void>()
  #nextId = 1

  constructor () {
    this.#child = spawnInNamespace(lab.wanNamespace, 'wan-prober.ts', [])
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      let reply: { id: number, ok: boolean, error?: string }
      try { reply = JSON.parse(line) as typeof reply } catch { return }
      this.#pending.get(reply.id)?.(reply)
      this.#pending.delete(reply.id)
    })
    this.#child.on('close', () => {
      for (const resolve of this.#pending.values()) resolve({ ok: false, error: 'wan-prober exited' })
      this.#pending.clear()
    })
  }

  /** One round trip from the WAN host to address:port, bounded by `timeout` ms. */
  async probe (protocol: 'tcp' | 'udp', address: string, port: number, timeout = 1_000): Promise<{ ok: boolean, error?: string }> {
    const id = this.#nextId++
    return await new Promise((resolve) => {
      this.#pending.set(id, resolve)
      this.#child.stdin.write(JSON.stringify({ id, protocol, address, port, timeout }) + '\n')
    })
  }

  /** Probes every `interval` ms until one round trip succeeds; resolves with the time that took, or throws after `limit`. */
  async untilReachable (protocol: 'tcp' | 'udp', address: string, port: () => number, limit: number, interval = 50): Promise<number> {
    const started = Date.now()
    let last = ''
    while (Date.now() - started < limit) {
      const result = await this.probe(protocol, address, port(), 500)
      if (result.ok) return Date.now() - started
      last = result.error ?? ''
      await new Promise((resolve) => setTimeout(resolve, interval))
    }
    throw new Error(`${protocol} ${address}:${port()} not reachable within ${limit} ms: ${last}`)
  }

  close (): void {
    this.#child.stdin.end()
    this.#child.kill()
  }
}
