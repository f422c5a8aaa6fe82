/**
 * The commands: each calls the public API and prints through format.ts. Exit codes: 0 success,
 * 1 the gateway or network said no, 2 bad usage.
 */
import { readFileSync } from 'node:fs'
import {
  discoverNAT,
  InvalidArgumentError,
  NoNATFoundError,
  probeGateway,
  noteChannel,
  wireChannel,
  type DiscoverOptions,
  type Mapping,
  type NAT,
  type RequestOptions,
  type WireMessage,
  type WireNote,
  type WireProtocol
} from '../index.js'
import { parseCommandLine, UsageError, type Command, type Family, type GlobalOptions } from './args.js'
import {
  discoverJson,
  discoverLines,
  errorInfo,
  ipJson,
  jsonLine,
  listJson,
  listLines,
  mapEventJson,
  mapEventLine,
  mapEventText,
  statusText,
  type DiscoverResult,
  type MapEvent
} from './format.js'
import { Output } from './output.js'
import { helpText, usageHint } from './usage.js'
import { serve } from './serve.js'
import { readServiceStatus, statusLines, statusSocketPath } from './status.js'
import { noteJson, noteText, wireJson, wireText } from './wire.js'

export const EXIT_OK = 0
export const EXIT_REFUSED = 1
export const EXIT_USAGE = 2

export interface RunResult {
  code: number
  /**
   * Exit at once, without waiting for the event loop to drain: `map --once` leaves its mapping's
   * renewal timer behind on purpose (it never closes the NAT, so the lease is not deleted).
   */
  exitNow?: boolean
}

/** Runs one command line. Never throws for a user or network error: it prints and returns the exit code. */
export async function runCli (argv: readonly string[], output = new Output(process.stdout, process.stderr)): Promise<RunResult> {
  let command: Command
  try {
    command = parseCommandLine(argv)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    output.err(`natmapper: ${error.message}`)
    output.err(usageHint(error.command))
    return { code: EXIT_USAGE }
  }
  if (command.name === 'help') {
    output.out(helpText(command.topic))
    return { code: EXIT_OK }
  }
  if (command.name === 'version') {
    output.out(version())
    return { code: EXIT_OK }
  }

  const stopTracing = command.options.verbose ? traceWire(output, command.options.json) : () => {}
  try {
    switch (command.name) {
      case 'discover': return { code: await discover(command.options, output) }
      case 'ip': return { code: await ip(command.options, output) }
      case 'unmap': return { code: await unmap(command, output) }
      case 'list': return { code: await list(command.options, output) }
      case 'map': return await map(command, output)
      case 'serve': return { code: await serve(command, output, gatewayCacheFile()) }
      case 'status': return { code: await status(command.options, output) }
    }
  } catch (error) {
    return { code: reportError(error, command, output) }
  } finally {
    stopTracing()
  }
}

function version (): string {
  // dist/cli/ and src/cli/ are both two levels below package.json.
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }
  return `natmapper ${manifest.version ?? 'unknown'}`
}

/** Prints an error of a command that had started: one line on stderr (and an object with --json). */
function reportError (error: unknown, command: Exclude<Command, { name: 'help' | 'version' }>, output: Output): number {
  output.clearStatus()
  const info = errorInfo(error)
  // An argument only the library could check (rare: the parser checks the same limits first).
  if (error instanceof InvalidArgumentError) {
    output.err(`natmapper: ${info.message}`)
    output.err(usageHint(command.name))
    return EXIT_USAGE
  }
  if (command.options.json) output.out(jsonLine({ event: 'error', error: info }))
  output.err(`natmapper: ${info.message}`)
  const hint = hintFor(info.code, command)
  if (hint !== undefined) output.err(`hint: ${hint}`)
  if (info.code === undefined && command.options.verbose && error instanceof Error && error.stack !== undefined) output.err(error.stack)
  return EXIT_REFUSED
}

function hintFor (code: string | undefined, command: Exclude<Command, { name: 'help' | 'version' }>): string | undefined {
  switch (code) {
    case 'ERR_NO_NAT_FOUND':
      return 'the gateway may have UPnP, NAT-PMP and PCP turned off, or this host may not be behind a NAT; --verbose shows every request'
    case 'ERR_NO_DEFAULT_GATEWAY':
      return 'give the gateway\'s address with --gateway'
    case 'ERR_FOREIGN_MAPPING':
      return 'another host holds this port now; --force deletes its mapping anyway'
    case 'ERR_UNSUPPORTED':
      if (command.name === 'unmap') return 'PCP cannot delete another client\'s mapping; NAT-PMP and UPnP can: --protocol nat-pmp or --protocol upnp'
      if (command.name === 'list') return 'only UPnP IGD gateways can list their mappings: try --protocol upnp'
      return undefined
    default:
      return undefined
  }
}

/**
 * Where the CLI remembers the UPnP gateway that worked, so that the next run a minute later skips
 * the SSDP wait: $XDG_CACHE_HOME/natmapper, else ~/.cache/natmapper (the XDG default).
 */
function gatewayCacheFile (): string | undefined {
  const base = process.env.XDG_CACHE_HOME !== undefined && process.env.XDG_CACHE_HOME.startsWith('/')
    ? process.env.XDG_CACHE_HOME
    : process.env.HOME === undefined || process.env.HOME === '' ? undefined : `${process.env.HOME}/.cache`
  return base === undefined ? undefined : `${base}/natmapper/upnp-gateways.json`
}

/** Discovery options for one family (the first of --family unless given). */
function discoverOptions (options: GlobalOptions, extra: DiscoverOptions = {}, family: Family = options.families[0] ?? 'IPv4'): DiscoverOptions {
  const cacheFile = gatewayCacheFile()
  return {
    family,
    ...(cacheFile === undefined ? {} : { gatewayCacheFile: cacheFile }),
    ...(options.gateway === undefined ? {} : { gateway: options.gateway }),
    ...(options.protocols === undefined ? {} : { protocols: options.protocols }),
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    ...(options.upnpUrl === undefined ? {} : { upnpDescriptionUrl: options.upnpUrl }),
    ...extra
  }
}

function requestOptions (options: GlobalOptions): RequestOptions {
  return options.timeout === undefined ? {} : { timeout: options.timeout }
}

/** --verbose: every request and reply, decoded, and every note, on stderr. Returns the unsubscribe. */
function traceWire (output: Output, json: boolean): () => void {
  const onMessage = (message: unknown): void => {
    const wire = message as WireMessage
    output.err(json ? jsonLine(wireJson(wire, new Date())) : wireText(wire))
  }
  // Decisions no message shows (an SSDP answer's LOCATION not followed, and why), in line with them.
  const onNote = (message: unknown): void => {
    const note = message as WireNote
    output.err(json ? jsonLine(noteJson(note, new Date())) : noteText(note))
  }
  wireChannel.subscribe(onMessage)
  noteChannel.subscribe(onNote)
  return () => {
    wireChannel.unsubscribe(onMessage)
    noteChannel.unsubscribe(onNote)
  }
}

/** Discovers, runs `task` with the NAT, and closes the NAT whatever happens. */
async function withNat<T> (options: GlobalOptions, task: (nat: NAT) => Promise<T>, family?: Family): Promise<T> {
  const nat = await discoverNAT(discoverOptions(options, {}, family))
  try {
    return await task(nat)
  } finally {
    await nat.close()
  }
}

// ---------------------------------------------------------------------------------------------

async function discover (options: GlobalOptions, output: Output): Promise<number> {
  // The families are probed at once; each is reported whatever the others found.
  const results = await Promise.all(options.families.map(async (family) => await discoverFamily(options, family)))
  for (const result of results) {
    if (options.json) output.out(jsonLine(discoverJson(result)))
    else for (const line of discoverLines(result, options.families.length > 1)) output.out(line)
  }
  // Exit 0 when some family has a gateway natmapper can use.
  if (results.some((result) => result.type !== undefined && result.error === undefined)) return EXIT_OK
  for (const result of results) output.err(`natmapper: ${result.family}: ${errorInfo(result.error).message}`)
  return EXIT_REFUSED
}

async function discoverFamily (options: GlobalOptions, family: Family): Promise<DiscoverResult> {
  const gatewaySource = options.gateway === undefined ? 'default-route' : 'option'
  let report
  try {
    report = await probeGateway(discoverOptions(options, {}, family))
  } catch (error) {
    // No route, or no usable address, for this family.
    return { family, gatewaySource, probes: [], error }
  }
  const result: DiscoverResult = { family, gateway: report.gateway, gatewaySource, localAddress: report.localAddress, probes: report.probes, ...(report.route === undefined ? {} : { route: report.route }) }
  const answered = report.probes.filter((probe) => probe.error === undefined).map((probe) => probe.protocol)
  if (answered.length === 0) {
    result.error = new NoNATFoundError(Object.fromEntries(report.probes.flatMap((probe) => probe.error === undefined ? [] : [[probe.protocol, probe.error]])) as Partial<Record<WireProtocol, Error>>)
    return result
  }
  // Discovery again among the protocols that answered: it picks the one natmapper would use.
  try {
    await withNat({ ...options, gateway: report.gateway, protocols: answered }, async (nat) => {
      result.type = nat.type
      // IPv6 has no translation: a pinhole opens this host's own address, there is no external one.
      if (family === 'IPv4') result.externalAddress = await nat.externalAddress(requestOptions(options))
    }, family)
  } catch (error) {
    result.error = error
  }
  return result
}

async function ip (options: GlobalOptions, output: Output): Promise<number> {
  await withNat(options, async (nat) => {
    const address = await nat.externalAddress(requestOptions(options))
    output.out(options.json ? jsonLine(ipJson(address, nat.type, nat.gateway)) : address)
  })
  return EXIT_OK
}

async function unmap (command: Extract<Command, { name: 'unmap' }>, output: Output): Promise<number> {
  await withNat(command.options, async (nat) => {
    await nat.deleteMapping(command.protocol, command.internalPort, {
      ...requestOptions(command.options),
      ...(command.externalPort === undefined ? {} : { externalPort: command.externalPort }),
      ...(command.force === true ? { force: true } : {})
    })
    const port = command.externalPort === undefined ? '' : ` (external port ${command.externalPort})`
    output.out(command.options.json
      ? jsonLine({ event: 'deleted', protocol: command.protocol, internalPort: command.internalPort, externalPort: command.externalPort ?? null, type: nat.type, gateway: nat.gateway })
      : `the gateway accepted the delete: ${command.protocol} internal port ${command.internalPort}${port} on ${nat.gateway} (${nat.type})`)
  })
  return EXIT_OK
}

async function list (options: GlobalOptions, output: Output): Promise<number> {
  await withNat(options, async (nat) => {
    const entries = await nat.listGatewayMappings(requestOptions(options))
    if (options.json) output.out(jsonLine(listJson(entries, nat.type, nat.gateway)))
    else for (const line of listLines(entries, nat.type, nat.gateway)) output.out(line)
  })
  return EXIT_OK
}

async function status (options: GlobalOptions, output: Output): Promise<number> {
  const found = await readServiceStatus(statusSocketPath())
  if (options.json) output.out(jsonLine(found as unknown as Record<string, unknown>))
  else for (const line of statusLines(found)) output.out(line)
  return EXIT_OK
}

// ---------------------------------------------------------------------------------------------
// map

const STATUS_REFRESH_MS = 1_000

async function map (command: Extract<Command, { name: 'map' }>, output: Output): Promise<RunResult> {
  const stop = new AbortController()
  let stoppedBy: string | undefined
  const onSignal = (signal: NodeJS.Signals | 'SIGPIPE'): void => {
    if (stoppedBy !== undefined) {
      // A second Ctrl-C: the user does not want to wait for the gateway.
      output.clearStatus()
      output.err(`natmapper: ${signal} again: exiting without waiting for the gateway`)
      process.exit(EXIT_REFUSED)
    }
    stoppedBy = signal
    stop.abort(new Error(signal))
  }
  const onSigint = (): void => { onSignal('SIGINT') }
  const onSigterm = (): void => { onSignal('SIGTERM') }
  // The reader of a pipe went away (`natmapper map ... | head -1`): nobody is watching, let go.
  const onStdoutError = (error: NodeJS.ErrnoException): void => { if (error.code === 'EPIPE' && stoppedBy === undefined) onSignal('SIGPIPE') }
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigterm)
  process.stdout.on('error', onStdoutError)
  try {
    return await holdMapping(command, output, stop.signal, () => stoppedBy)
  } finally {
    process.off('SIGINT', onSigint)
    process.off('SIGTERM', onSigterm)
    process.stdout.off('error', onStdoutError)
  }
}

/** One family's NAT and mapping, held by `map`. */
interface Held {
  family: Family
  nat: NAT
  mapping?: Mapping
  /** The external address last reported for the mapping. */
  address?: string
}

async function holdMapping (command: Extract<Command, { name: 'map' }>, output: Output, stop: AbortSignal, stoppedBy: () => string | undefined): Promise<RunResult> {
  const { options } = command
  // Several families: each line and JSON object names its family; with one, JSON does.
  const several = options.families.length > 1
  const held: Held[] = []
  /** False once stopping: the status line is no longer drawn. */
  let holding = true
  // Events are printed in the order they happened, even when one waits for the external address.
  let printing = Promise.resolve()
  const print = (family: Family, event: MapEvent | (() => Promise<MapEvent>), permanent = true): void => {
    const time = new Date()
    const named = several ? family : undefined
    printing = printing.then(async () => {
      const resolved = typeof event === 'function' ? await event() : event
      if (options.json) output.out(jsonLine(mapEventJson(resolved, time, family)))
      else if (!output.live) output.out(mapEventLine(resolved, time, named))
      else if (permanent) output.out(mapEventText(resolved, named))
      drawStatus()
    }).catch((error: unknown) => { output.err(`natmapper: ${errorInfo(error).message}`) })
  }
  const drawStatus = (): void => {
    if (options.json || !holding || held.some((entry) => entry.mapping === undefined)) return
    output.status(statusText(held.map((entry) => ({
      protocol: command.protocol,
      internalPort: command.internalPort,
      localAddress: entry.nat.localAddress,
      type: entry.nat.type,
      address: entry.address,
      port: entry.mapping?.externalPort ?? 0,
      established: entry.mapping?.established ?? false,
      renewals: entry.mapping?.renewals ?? 0,
      expiresAt: entry.mapping?.expiresAt,
      lastError: entry.mapping?.lastError,
      ...(several ? { family: entry.family } : {})
    })), Date.now(), output.columns))
  }

  // Each family discovers and maps on its own, so a slow one does not hold the other's mapping back.
  const failures: Array<{ family: Family, error: unknown }> = []
  await Promise.all(options.families.map(async (family) => {
    let nat: NAT
    try {
      nat = await discoverNAT(discoverOptions(options, {
        signal: stop,
        ...(command.durationSeconds === undefined ? {} : { mappingDuration: command.durationSeconds * 1000 })
      }, family))
    } catch (error) {
      failures.push({ family, error })
      return
    }
    const entry: Held = { family, nat }
    held.push(entry)
    watch(entry, command, print)
    try {
      entry.mapping = await nat.newMapping(command.protocol, command.internalPort, {
        signal: stop,
        ...requestOptions(options),
        ...(command.externalPort === undefined ? {} : { externalPort: command.externalPort }),
        ...(command.description === undefined ? {} : { description: command.description })
      })
    } catch (error) {
      // Only an abort rejects newMapping(); the gateway's "no" is in mapping.lastError.
      failures.push({ family, error })
    }
  }))
  held.sort((a, b) => options.families.indexOf(a.family) - options.families.indexOf(b.family))
  // Interrupted before anything was held: nothing to delete beyond what close() does.
  if (stop.aborted) {
    await Promise.all(held.map(async (entry) => { await entry.nat.close() }))
    return { code: EXIT_OK }
  }
  if (held.length === 0) throw failures[0]?.error ?? new Error('no family to map on')
  for (const { family, error } of failures) print(family, { event: 'unavailable', error })
  await printing

  // A family whose first attempt failed (the gateway said no) is given up while another holds one.
  const refused = held.filter((entry) => entry.mapping?.established !== true)
  if (refused.length === held.length && !stop.aborted) {
    const reason = refused[0]?.mapping?.lastError
    await Promise.all(held.map(async (entry) => { await entry.nat.close() }))
    throw reason ?? new Error('the gateway did not grant the mapping')
  }
  for (const entry of refused) {
    held.splice(held.indexOf(entry), 1)
    await entry.nat.close()
    print(entry.family, { event: 'unavailable', error: entry.mapping?.lastError ?? new Error('the gateway did not grant the mapping') })
  }

  if (command.once && !stop.aborted) {
    for (const entry of held) print(entry.family, { event: 'left', expiresAt: entry.mapping?.expiresAt })
    await printing
    output.clearStatus()
    await output.flush()
    // Not nat.close(): that would delete the mapping. The lease runs out by itself.
    return { code: EXIT_OK, exitNow: true }
  }

  // Hold until a signal. This timer also keeps the process alive: the library's are unref()'d.
  const ticker = setInterval(drawStatus, STATUS_REFRESH_MS)
  try {
    if (!stop.aborted) await new Promise<void>((resolve) => { stop.addEventListener('abort', () => { resolve() }, { once: true }) })
  } finally {
    clearInterval(ticker)
  }

  holding = false
  await printing
  output.clearStatus()
  const deleteFailures = await Promise.all(held.map(async (entry) => {
    print(entry.family, { event: 'closing', signal: stoppedBy() ?? 'stop' })
    let failure: unknown
    try {
      // mapping.close() says whether the delete worked; nat.close() alone would not.
      await entry.mapping?.close()
    } catch (error) {
      failure = error ?? new Error('delete failed')
    }
    await entry.nat.close()
    print(entry.family, { event: 'closed', deleted: failure === undefined, ...(failure === undefined ? {} : { error: failure }) })
    return failure
  }))
  await printing
  output.clearStatus()
  return { code: deleteFailures.every((failure) => failure === undefined) ? EXIT_OK : EXIT_REFUSED }
}

/** Prints what happens to one family's NAT and mapping, and keeps its address current. */
function watch (entry: Held, command: Extract<Command, { name: 'map' }>, print: (family: Family, event: MapEvent | (() => Promise<MapEvent>), permanent?: boolean) => void): void {
  const { nat, family } = entry
  print(family, { event: 'discovered', type: nat.type, gateway: nat.gateway, localAddress: nat.localAddress })
  nat.on('mapping-established', (event) => {
    print(family, async () => {
      // NAT-PMP and UPnP grants carry no address: ask (the NAT caches it), but never fail the line for it.
      entry.address = event.address ?? await event.mapping.externalAddr(requestOptions(command.options)).then((a) => a.address, () => entry.address)
      return {
        event: 'established',
        protocol: command.protocol,
        internalPort: command.internalPort,
        localAddress: nat.localAddress,
        address: entry.address,
        port: event.port,
        lifetimeSeconds: event.lifetimeSeconds,
        expiresAt: event.mapping.expiresAt
      }
    })
  })
  nat.on('mapping-renewed', (event) => {
    print(family, { event: 'renewed', port: event.mapping.externalPort, renewals: event.mapping.renewals, lifetimeSeconds: event.lifetimeSeconds, expiresAt: event.mapping.expiresAt }, false)
  })
  nat.on('mapping-changed', (event) => {
    if (event.address !== undefined) entry.address = event.address
    print(family, { event: 'changed', address: event.address ?? entry.address, port: event.port, previousAddress: event.previousAddress, previousPort: event.previousPort })
  })
  // A failed first attempt is not printed as an event: map then exits 1 with the error (or, with
  // another family holding a mapping, reports this one unavailable).
  nat.on('mapping-failed', (event) => { if (entry.mapping !== undefined) print(family, { event: 'failed', error: event.error, established: event.mapping.established }) })
  nat.on('mapping-lost', (event) => { print(family, { event: 'lost', error: event.error }) })
  nat.on('external-address-changed', (event) => {
    entry.address = event.address
    print(family, { event: 'external-address-changed', address: event.address, previous: event.previous })
  })
  nat.on('gateway-reset', (event) => { print(family, { event: 'gateway-reset', reason: event.reason }) })
  nat.on('gateway-changed', (event) => { print(family, { event: 'gateway-changed', ...event }) })
}
