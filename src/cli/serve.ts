/**
 * `natmapper serve --config FILE`: holds every mapping the file names, for as long as it runs, in
 * the foreground (as systemd expects). One NAT per address family, found again and again until it
 * is; each mapping made on each of its families. SIGHUP rereads the file: mappings it no longer
 * names are deleted, new ones made, the others left untouched; a bad file changes nothing.
 * SIGTERM (or SIGINT) deletes every mapping and exits 0. The state and counters are served on a
 * Unix socket (`natmapper status`) and, if asked, as Prometheus metrics.
 *
 * It prints one line per event, with no colour and no status line: journald adds the time.
 */
import { readFileSync, statSync } from 'node:fs'
import type { Server as HttpServer } from 'node:http'
import type { Server as SocketServer } from 'node:net'
import { discoverNAT, type Mapping, type NAT } from '../index.js'
import type { Command, Family } from './args.js'
import { ConfigError, MAX_CONFIG_BYTES, mappingKey, parseConfig, sameSettings, type MappingConfig } from './config.js'
import { errorInfo, jsonLine } from './format.js'
import { serveMetrics } from './metrics.js'
import type { Output } from './output.js'
import { errorJson, statsJson, statusSocketPath, type FamilyStatus, type MappingStatus, type ServiceStatus } from './status.js'

/** `natmapper serve` as parsed: the config file, the optional metrics address, the global options. */
export type ServeCommand = Extract<Command, { name: 'serve' }>

/** Exit codes, as run.ts's. */
const EXIT_OK = 0
const EXIT_REFUSED = 1
const EXIT_USAGE = 2

/** Discovery of a family that has no gateway is tried again after this, doubling up to the maximum. */
const FIRST_REDISCOVERY_MS = 5_000
const MAX_REDISCOVERY_MS = 300_000

/** One mapping of the file on one family. */
interface Held {
  key: string
  config: MappingConfig
  family: Family
  mapping?: Mapping
  /** The external address last reported for it. */
  address?: string
  /** The last failure printed, so that a retry that fails the same way is not printed again. */
  lastFailure?: string
  /** Set when a reload removed it while its mapping was being made. */
  removed?: boolean
}

/** One address family's NAT, or the discovery that looks for it. */
interface FamilyState {
  family: Family
  nat?: NAT
  error?: unknown
  retryTimer?: NodeJS.Timeout
  retryDelay: number
  /** The last discovery failure printed: the same one again is not (a host without IPv6). */
  lastPrinted?: string
}

/** An event, printed as one line of text or one JSON object. */
type ServeEvent = Record<string, unknown> & { event: string }

/** Runs the service until SIGTERM or SIGINT; the exit code. `gatewayCacheFile`: where UPnP gateways are remembered. */
export async function serve (command: ServeCommand, output: Output, gatewayCacheFile: string | undefined): Promise<number> {
  // Errors are a line of text on stderr, with --json too (as map does); the rest goes to stdout.
  const print = (event: ServeEvent, error = false): void => {
    if (command.options.json) output.out(jsonLine({ ...event, time: new Date().toISOString() }))
    if (error) output.err(eventText(event))
    else if (!command.options.json) output.out(eventText(event))
  }

  let config: MappingConfig[]
  try {
    config = readConfig(command.config)
  } catch (error) {
    print({ event: 'config-refused', message: configMessage(command.config, error) }, true)
    return EXIT_USAGE
  }

  const service = new Service(command, print, gatewayCacheFile)
  const socketPath = statusSocketPath()
  let socketServer: SocketServer
  let metricsServer: HttpServer | undefined
  try {
    socketServer = await listenOnSocket(socketPath, () => service.status())
    if (command.metrics !== undefined) metricsServer = await serveMetrics(command.metrics, () => service.status())
  } catch (error) {
    print({ event: 'error', message: `cannot start: ${errorInfo(error).message}` }, true)
    return EXIT_REFUSED
  }
  print({ event: 'started', config: command.config, mappings: config.length, socket: socketPath, ...(command.metrics === undefined ? {} : { metrics: `${command.metrics.host}:${command.metrics.port}` }) })

  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        print({ event: 'error', message: `${signal} again: exiting without waiting for the gateway` }, true)
        process.exit(EXIT_REFUSED)
      }
      stopping = true
      resolve(signal)
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
  // Reloads run one at a time, in the order the signals came, after the first apply.
  let reloading = service.apply(config).then(() => {})
  const onHangup = (): void => { reloading = reloading.then(async () => { await service.reload() }) }
  process.on('SIGHUP', onHangup)

  const signal = await stopped
  process.off('SIGHUP', onHangup)
  await reloading
  print({ event: 'stopping', signal, mappings: service.heldCount })
  await service.stop()
  await new Promise<void>((resolve) => { socketServer.close(() => { resolve() }) })
  if (metricsServer !== undefined) {
    metricsServer.closeAllConnections()
    await new Promise<void>((resolve) => { metricsServer?.close(() => { resolve() }) })
  }
  print({ event: 'stopped' })
  return EXIT_OK
}

/** Reads and parses the config file; throws ConfigError or the read's error. */
function readConfig (path: string): MappingConfig[] {
  const stats = statSync(path)
  if (!stats.isFile()) throw new ConfigError(0, 'not a regular file')
  if (stats.size > MAX_CONFIG_BYTES) throw new ConfigError(0, `the file is larger than ${MAX_CONFIG_BYTES} bytes`)
  return parseConfig(readFileSync(path, 'utf8'))
}

/** "FILE:LINE: what is wrong", one line. */
function configMessage (path: string, error: unknown): string {
  if (error instanceof ConfigError) return error.line === 0 ? `${path}: ${error.reason}` : `${path}:${error.line}: ${error.reason}`
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return `${path}: cannot read it${code === undefined ? `: ${errorInfo(error).message}` : ` (${code})`}`
}

class Service {
  readonly #command: ServeCommand
  readonly #print: (event: ServeEvent, error?: boolean) => void
  readonly #startedAt = new Date()
  readonly #families = new Map<Family, FamilyState>()
  /** Every mapping the file names, by mappingKey(), in the file's order. */
  #held = new Map<string, Held>()
  #reloads = 0
  #reloadsRefused = 0
  #lastReloadError: string | undefined
  #stopping = false
  readonly #gatewayCacheFile: string | undefined

  constructor (command: ServeCommand, print: (event: ServeEvent, error?: boolean) => void, gatewayCacheFile: string | undefined) {
    this.#command = command
    this.#print = print
    this.#gatewayCacheFile = gatewayCacheFile
  }

  get heldCount (): number {
    return this.#held.size
  }

  /** Rereads the file (SIGHUP). A bad file is one line on stderr and changes nothing. */
  async reload (): Promise<void> {
    if (this.#stopping) return
    let config: MappingConfig[]
    try {
      config = readConfig(this.#command.config)
    } catch (error) {
      this.#reloadsRefused++
      this.#lastReloadError = configMessage(this.#command.config, error)
      this.#print({ event: 'reload-refused', message: this.#lastReloadError, held: this.#held.size }, true)
      return
    }
    this.#reloads++
    this.#lastReloadError = undefined
    const { added, removed, kept } = await this.apply(config)
    this.#print({ event: 'reloaded', config: this.#command.config, added, removed, unchanged: kept })
  }

  /** Makes what is held match `config`: removed and changed mappings deleted, new ones made, the rest untouched. */
  async apply (config: MappingConfig[]): Promise<{ added: number, removed: number, kept: number }> {
    const wanted = new Map<string, { config: MappingConfig, family: Family }>()
    for (const mapping of config) for (const family of mapping.families) wanted.set(mappingKey(mapping, family), { config: mapping, family })
    const removals: Held[] = []
    const next = new Map<string, Held>()
    let kept = 0
    for (const [key, held] of this.#held) {
      const want = wanted.get(key)
      if (want !== undefined && sameSettings(held.config, want.config)) {
        held.config = want.config
        kept++
      } else {
        removals.push(held)
      }
    }
    const additions: Held[] = []
    for (const [key, want] of wanted) {
      const existing = this.#held.get(key)
      if (existing !== undefined && !removals.includes(existing)) {
        next.set(key, existing)
      } else {
        const held: Held = { key, config: want.config, family: want.family }
        next.set(key, held)
        additions.push(held)
      }
    }
    this.#held = next
    // Deleted first: a changed mapping's new settings may need the rule the old one holds.
    await Promise.all(removals.map(async (held) => { await this.#remove(held) }))
    await Promise.all(additions.map(async (held) => { await this.#add(held) }))
    return { added: additions.length, removed: removals.length, kept }
  }

  /** Deletes every mapping at the gateway and releases every NAT. */
  async stop (): Promise<void> {
    this.#stopping = true
    const held = [...this.#held.values()]
    await Promise.all(held.map(async (each) => { await this.#remove(each) }))
    await Promise.all([...this.#families.values()].map(async (state) => {
      clearTimeout(state.retryTimer)
      await state.nat?.close()
    }))
  }

  status (): ServiceStatus {
    const now = Date.now()
    const mappings: MappingStatus[] = [...this.#held.values()].map((held) => {
      const mapping = held.mapping
      const established = mapping?.established === true
      const expiresAt = mapping?.expiresAt
      return {
        name: held.config.name,
        family: held.family,
        protocol: held.config.protocol,
        internalPort: held.config.internalPort,
        description: held.config.description,
        requestedExternalPort: held.config.externalPort ?? null,
        established,
        externalAddress: established ? (held.address ?? null) : null,
        externalPort: established ? (mapping?.externalPort ?? null) : null,
        leaseSecondsLeft: established && expiresAt instanceof Date ? Math.max(0, Math.round((expiresAt.getTime() - now) / 1000)) : null,
        lastError: errorJson(mapping?.lastError)
      }
    })
    const families: FamilyStatus[] = [...this.#families.values()].map((state) => ({
      family: state.family,
      gateway: state.nat?.gateway ?? null,
      type: state.nat?.type ?? null,
      localAddress: state.nat?.localAddress ?? null,
      error: state.nat === undefined ? errorJson(state.error) : null,
      stats: state.nat === undefined ? null : statsJson(state.nat.stats())
    }))
    return {
      pid: process.pid,
      config: this.#command.config,
      startedAt: this.#startedAt.toISOString(),
      reloads: this.#reloads,
      reloadsRefused: this.#reloadsRefused,
      lastReloadError: this.#lastReloadError ?? null,
      mappings,
      families
    }
  }

  async #add (held: Held): Promise<void> {
    const state = this.#family(held.family)
    if (state.nat !== undefined) await this.#map(state.nat, held)
  }

  async #map (nat: NAT, held: Held): Promise<void> {
    if (held.mapping !== undefined || held.removed === true || this.#stopping) return
    const { config } = held
    try {
      // Resolves after the first attempt, granted or not: the mapping keeps trying by itself.
      held.mapping = await nat.newMapping(config.protocol, config.internalPort, {
        description: config.description,
        ...(config.externalPort === undefined ? {} : { externalPort: config.externalPort })
      })
    } catch (error) {
      // Only a closed NAT rejects (the service is stopping).
      if (!this.#stopping) this.#print({ ...this.#about(held), event: 'failed', error: errorInfo(error), established: false }, true)
      return
    }
    // A reload removed it meanwhile, or the service is stopping (both set while we waited).
    if ((held.removed as boolean | undefined) === true || this.#stopping) await this.#remove(held)
  }

  async #remove (held: Held): Promise<void> {
    held.removed = true
    const mapping = held.mapping
    if (mapping === undefined || mapping.closed) return
    const wasHeld = mapping.established
    try {
      await mapping.close()
      this.#print({ ...this.#about(held), event: 'deleted', held: wasHeld })
    } catch (error) {
      this.#print({ ...this.#about(held), event: 'delete-failed', error: errorInfo(error) }, true)
    }
  }

  /** The family's state; discovery starts on the first call. */
  #family (family: Family): FamilyState {
    let state = this.#families.get(family)
    if (state === undefined) {
      state = { family, retryDelay: FIRST_REDISCOVERY_MS }
      this.#families.set(family, state)
      void this.#discover(state)
    }
    return state
  }

  async #discover (state: FamilyState): Promise<void> {
    const { options } = this.#command
    let nat: NAT
    try {
      nat = await discoverNAT({
        family: state.family,
        ...(options.gateway === undefined ? {} : { gateway: options.gateway }),
        ...(options.protocols === undefined ? {} : { protocols: options.protocols }),
        ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
        ...(this.#gatewayCacheFile === undefined ? {} : { gatewayCacheFile: this.#gatewayCacheFile })
      })
    } catch (error) {
      state.error = error
      if (this.#stopping) return
      // Said once per kind of failure: a host without IPv6 would otherwise say so every 5 minutes.
      const info = errorInfo(error)
      if (state.lastPrinted !== info.message) this.#print({ event: 'no-gateway', family: state.family, error: info, retryInSeconds: state.retryDelay / 1000 }, true)
      state.lastPrinted = info.message
      state.retryTimer = setTimeout(() => { void this.#discover(state) }, state.retryDelay).unref()
      state.retryDelay = Math.min(state.retryDelay * 2, MAX_REDISCOVERY_MS)
      return
    }
    if (this.#stopping) {
      await nat.close()
      return
    }
    state.nat = nat
    state.error = undefined
    state.lastPrinted = undefined
    this.#print({ event: 'discovered', family: state.family, type: nat.type, gateway: nat.gateway, localAddress: nat.localAddress })
    this.#watch(state.family, nat)
    await Promise.all([...this.#held.values()].filter((held) => held.family === state.family).map(async (held) => { await this.#map(nat, held) }))
  }

  /** The held entry a mapping event is about (looked up by key: events come before newMapping() resolves). */
  #heldFor (family: Family, mapping: Mapping): Held | undefined {
    const held = this.#held.get(`${family} ${mapping.protocol} ${mapping.internalPort}`)
    return held === undefined || (held.mapping !== undefined && held.mapping !== mapping) ? undefined : held
  }

  #about (held: Held): ServeEvent {
    return { event: '', name: held.config.name, family: held.family, protocol: held.config.protocol, internalPort: held.config.internalPort }
  }

  /** Prints what happens to a family's NAT and its mappings (renewals are counted, not printed). */
  #watch (family: Family, nat: NAT): void {
    nat.on('mapping-established', (event) => {
      const held = this.#heldFor(family, event.mapping)
      if (held === undefined) return
      held.lastFailure = undefined
      const print = (address: string | undefined): void => {
        if (address !== undefined) held.address = address
        this.#print({ ...this.#about(held), event: event.recovered ? 'recovered' : 'established', address: held.address ?? null, port: event.port, lifetimeSeconds: event.lifetimeSeconds, type: nat.type })
      }
      // NAT-PMP and UPnP grants carry no address: the NAT knows it (cached), or asks.
      if (event.address !== undefined) print(event.address)
      else void event.mapping.externalAddr().then((found) => { print(found.address) }, () => { print(undefined) })
    })
    nat.on('mapping-changed', (event) => {
      const held = this.#heldFor(family, event.mapping)
      if (held === undefined) return
      if (event.address !== undefined) held.address = event.address
      this.#print({ ...this.#about(held), event: 'changed', address: event.address ?? null, port: event.port, previousAddress: event.previousAddress ?? null, previousPort: event.previousPort })
    })
    nat.on('mapping-failed', (event) => {
      const held = this.#heldFor(family, event.mapping)
      if (held === undefined || held.lastFailure === event.error.message) return
      held.lastFailure = event.error.message
      this.#print({ ...this.#about(held), event: 'failed', error: errorInfo(event.error), established: event.mapping.established }, true)
    })
    nat.on('mapping-lost', (event) => {
      const held = this.#heldFor(family, event.mapping)
      if (held === undefined) return
      this.#print({ ...this.#about(held), event: 'lost', error: event.error === undefined ? null : errorInfo(event.error) }, true)
    })
    nat.on('external-address-changed', (event) => {
      for (const held of this.#held.values()) if (held.family === family) held.address = event.address
      this.#print({ event: 'external-address-changed', family, address: event.address, previous: event.previous })
    })
    nat.on('gateway-reset', (event) => { this.#print({ event: 'gateway-reset', family, reason: event.reason }) })
    nat.on('gateway-changed', (event) => { this.#print({ event: 'gateway-changed', family, ...event }) })
  }
}

function endpoint (address: unknown, port: unknown): string {
  const host = typeof address === 'string' ? (address.includes(':') ? `[${address}]` : address) : '?'
  return `${host}:${String(port)}`
}

/** One line of text per event: "[web] IPv4 tcp 8080: established ...", no time (journald adds it). */
export function eventText (event: ServeEvent): string {
  const subject = typeof event.name === 'string' ? `[${event.name}] ${String(event.family)} ${String(event.protocol)} ${String(event.internalPort)}: ` : typeof event.family === 'string' ? `${event.family}: ` : ''
  const error = (event.error as { message?: string } | null | undefined)?.message
  switch (event.event) {
    case 'started':
      return `serving ${String(event.mappings)} mapping(s) from ${String(event.config)}; status on ${String(event.socket)}${event.metrics === undefined ? '' : `, metrics on http://${String(event.metrics)}/metrics`}`
    case 'config-refused':
      return `natmapper: ${String(event.message)}`
    case 'reload-refused':
      return `natmapper: ${String(event.message)}; the ${String(event.held)} mapping(s) held are left as they were`
    case 'reloaded':
      return `reloaded ${String(event.config)}: ${String(event.added)} added, ${String(event.removed)} removed, ${String(event.unchanged)} unchanged`
    case 'discovered':
      return `${subject}gateway ${String(event.gateway)} (${String(event.type)}), from ${String(event.localAddress)}`
    case 'no-gateway':
      return `${subject}no gateway: ${error ?? '?'}; trying again in ${String(event.retryInSeconds)} s`
    case 'established':
    case 'recovered':
      return `${subject}${event.event} on ${endpoint(event.address, event.port)} (${String(event.type)}, ${event.lifetimeSeconds === 0 ? 'permanent lease' : `lease ${String(event.lifetimeSeconds)} s`})`
    case 'changed':
      return `${subject}changed to ${endpoint(event.address, event.port)} (was ${endpoint(event.previousAddress, event.previousPort)})`
    case 'failed':
      return `${subject}failed: ${error ?? '?'}${event.established === true ? ' (still held)' : ''}; retrying`
    case 'lost':
      return `${subject}lost${error === undefined ? '' : `: ${error}`}; retrying`
    case 'deleted':
      return `${subject}deleted${event.held === true ? ' at the gateway' : ' (it was not held)'}`
    case 'delete-failed':
      return `${subject}delete failed: ${error ?? '?'}`
    case 'external-address-changed':
      return `${subject}external address changed from ${String(event.previous)} to ${String(event.address)}`
    case 'gateway-reset':
      return `${subject}the gateway lost its mappings (${String(event.reason)}); making them again`
    case 'gateway-changed':
      return `${subject}moved to gateway ${String(event.gateway)} (${String(event.type)}): ${String(event.reason)}`
    case 'stopping':
      return `${String(event.signal)}: deleting ${String(event.mappings)} mapping(s) at the gateway`
    case 'stopped':
      return 'stopped'
    default:
      return `${subject}${event.event}${typeof event.message === 'string' ? `: ${event.message}` : ''}`
  }
}

/**
 * Listens on the status socket: a directory of our own (0700 when we make it), a socket only
 * our user may connect to (0600). A socket left by a service that died is replaced; one that
 * answers belongs to a service still running, which is an error.
 */
async function listenOnSocket (path: string, snapshot: () => ServiceStatus): Promise<SocketServer> {
  const net = await import('node:net')
  const { chmodSync, mkdirSync, unlinkSync } = await import('node:fs')
  const directory = path.slice(0, path.lastIndexOf('/'))
  mkdirSync(directory, { recursive: true, mode: 0o700 })
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.end(JSON.stringify(snapshot()) + '\n')
  })
  const listen = async (): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => {
        server.off('error', reject)
        resolve()
      })
    })
  }
  try {
    await listen()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
    if (await answers(net, path)) throw new Error(`another natmapper serve is running (it listens on ${path})`, { cause: error })
    unlinkSync(path)
    await listen()
  }
  chmodSync(path, 0o600)
  // Held open (referenced) until closed: the library's timers never keep a process alive.
  return server
}

async function answers (net: typeof import('node:net'), path: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = net.connect(path)
    socket.on('connect', () => { socket.destroy(); resolve(true) })
    socket.on('error', () => { resolve(false) })
  })
}
