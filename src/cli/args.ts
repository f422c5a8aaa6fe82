/**
 * The command line, parsed into a typed command: pure (no I/O), so every rule is unit-tested.
 * A bad argument becomes a UsageError whose message is the one line the user sees (exit code 2).
 */
import { isIP } from '../net/ip-address.js'
import { parseArgs } from 'node:util'
import { parseListenAddress, type ListenAddress } from './metrics.js'

/** The protocols discovery can use, as the user names them. */
export const PROTOCOL_NAMES = ['pcp', 'nat-pmp', 'upnp'] as const
export type ProtocolName = typeof PROTOCOL_NAMES[number]

/** --family, as the user names it. */
export const FAMILY_NAMES = ['ipv4', 'ipv6', 'all'] as const
export type FamilyName = typeof FAMILY_NAMES[number]
export type Family = 'IPv4' | 'IPv6'

export const COMMAND_NAMES = ['discover', 'ip', 'map', 'unmap', 'list', 'serve', 'status', 'help'] as const
export type CommandName = typeof COMMAND_NAMES[number]
/** A command that has its own help page. */
export type HelpTopic = Exclude<CommandName, 'help'>

/** Limits of --duration, in seconds: the library renews at a third of the lease (so at least 3 s) and caps it at a week. */
export const MIN_DURATION_SECONDS = 3
export const MAX_DURATION_SECONDS = 604_800

/** Flags every command accepts. */
export interface GlobalOptions {
  /** --gateway: skip the default-route lookup. */
  gateway?: string
  /** --protocol: which protocols to try; undefined for all. */
  protocols?: ProtocolName[]
  /** --timeout, in ms: discovery and each request. */
  timeout?: number
  /** --upnp-url: the UPnP description URL, fetched instead of waiting for SSDP. */
  upnpUrl?: string
  /**
   * The address families to work on (--family), IPv4 first. Default: the family of --gateway;
   * without it both for discover and map, IPv4 for the others.
   */
  families: Family[]
  json: boolean
  verbose: boolean
}

export type TransportName = 'tcp' | 'udp'

export type Command =
  | { name: 'help', topic?: HelpTopic }
  | { name: 'version' }
  | { name: 'discover', options: GlobalOptions }
  | { name: 'ip', options: GlobalOptions }
  | {
    name: 'map'
    options: GlobalOptions
    protocol: TransportName
    internalPort: number
    externalPort?: number
    /** --duration, in seconds: the lease asked for. */
    durationSeconds?: number
    description?: string
    /** --once: create, print, exit without deleting. */
    once: boolean
  }
  /** force: --force, delete the entry even when it is another host's (UPnP). */
  | { name: 'unmap', options: GlobalOptions, protocol: TransportName, internalPort: number, externalPort?: number, force?: true }
  | { name: 'list', options: GlobalOptions }
  /** --config: the mappings to hold; --metrics: where to serve Prometheus metrics (none by default). */
  | { name: 'serve', options: GlobalOptions, config: string, metrics?: ListenAddress }
  | { name: 'status', options: GlobalOptions }

/** Bad usage: `message` is the one line to print; `command` selects the usage shown after it. */
export class UsageError extends Error {
  readonly command: HelpTopic | undefined

  constructor (message: string, command?: HelpTopic) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

const OPTIONS = {
  gateway: { type: 'string' },
  protocol: { type: 'string', multiple: true },
  timeout: { type: 'string' },
  'upnp-url': { type: 'string' },
  family: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  'external-port': { type: 'string' },
  duration: { type: 'string' },
  description: { type: 'string' },
  once: { type: 'boolean' },
  force: { type: 'boolean' },
  config: { type: 'string' },
  metrics: { type: 'string' }
} as const

type OptionName = keyof typeof OPTIONS

/** Options beyond the global ones, per command. */
const COMMAND_OPTIONS: Record<HelpTopic, readonly OptionName[]> = {
  discover: [],
  ip: [],
  map: ['external-port', 'duration', 'description', 'once'],
  unmap: ['external-port', 'force'],
  list: [],
  serve: ['config', 'metrics'],
  status: []
}

const MAX_DESCRIPTION_LENGTH = 256

/** A user's value in a message: quoted, control characters escaped, so the message stays one line. */
function show (value: string): string {
  return JSON.stringify(value)
}

/** An option name as typed, control characters escaped. */
function printable (value: string): string {
  return JSON.stringify(value).slice(1, -1)
}

function isCommandName (value: string): value is CommandName {
  return (COMMAND_NAMES as readonly string[]).includes(value)
}

/** Parses `argv` (without `node` and the script). Throws UsageError for anything it cannot accept. */
export function parseCommandLine (argv: readonly string[]): Command {
  // Not strict: unknown options and missing values are reported below, in our own words.
  const { values, positionals, tokens } = parseArgs({ args: [...argv], options: OPTIONS, strict: false, allowPositionals: true, tokens: true })
  const first = positionals[0]
  const command = first !== undefined && isCommandName(first) ? first : undefined
  const topic = command === 'help' || command === undefined ? undefined : command

  // --help wins over everything else on the line, so that a half-typed command still gets its help;
  // but not over an unknown command, which has no help to show.
  if (values.help === true && (first === undefined || command !== undefined)) return { name: 'help', ...(topic === undefined ? {} : { topic }) }

  for (const token of tokens) {
    if (token.kind !== 'option') continue
    const config = (OPTIONS as Record<string, { type: 'string' | 'boolean' } | undefined>)[token.name]
    if (config === undefined) throw new UsageError(`unknown option ${printable(token.rawName)}`, topic)
    if (config.type === 'boolean' && token.inlineValue === true) throw new UsageError(`${token.rawName} takes no value`, topic)
    if (config.type === 'string' && (token.value === undefined || (token.inlineValue !== true && token.value.startsWith('-')))) {
      throw new UsageError(`${token.rawName} needs a value`, topic)
    }
  }

  if (values.version === true && first === undefined) return { name: 'version' }
  if (first === undefined) throw new UsageError('no command given')
  if (command === undefined) throw new UsageError(`unknown command ${show(first)} (commands: ${COMMAND_NAMES.join(', ')})`)

  if (command === 'help') {
    const about = positionals[1]
    if (positionals.length > 2) throw new UsageError(`unexpected argument ${show(positionals[2] ?? '')}`)
    if (about === undefined) return { name: 'help' }
    if (!isCommandName(about) || about === 'help') throw new UsageError(`no help for ${show(about)} (commands: ${COMMAND_NAMES.join(', ')})`)
    return { name: 'help', topic: about }
  }

  if (values.version === true) throw new UsageError('--version takes no command', command)
  for (const name of ['external-port', 'duration', 'description', 'once', 'config', 'metrics'] as const) {
    if (values[name] !== undefined && !COMMAND_OPTIONS[command].includes(name)) {
      throw new UsageError(`--${name} is not an option of ${command}`, command)
    }
  }

  const options = globalOptions(values, command)
  const operands = positionals.slice(1)
  switch (command) {
    case 'serve': {
      // The families are each mapping's own, in the file.
      if (values.family !== undefined) throw new UsageError('--family is not an option of serve: each mapping names its families in the config file', command)
      if (operands.length > 0) throw new UsageError(`unexpected argument ${show(operands[0] ?? '')}`, command)
      if (values.config === undefined) throw new UsageError('missing --config <file>', command)
      const metricsText = values.metrics === undefined ? undefined : stringValue(values.metrics)
      const metrics = metricsText === undefined ? undefined : parseListenAddress(metricsText)
      if (typeof metrics === 'string') throw new UsageError(`bad --metrics ${show(metricsText ?? '')}: ${metrics}`, command)
      return { name: 'serve', options, config: stringValue(values.config), ...(metrics === undefined ? {} : { metrics }) }
    }
    case 'discover':
    case 'ip':
    case 'list':
    case 'status':
      if (operands.length > 0) throw new UsageError(`unexpected argument ${show(operands[0] ?? '')}`, command)
      return { name: command, options }
    case 'map':
    case 'unmap': {
      const [protocolText, portText, extra] = operands
      if (protocolText === undefined) throw new UsageError('missing <tcp|udp>', command)
      const protocol = parseTransport(protocolText, command)
      if (portText === undefined) throw new UsageError('missing <internal-port>', command)
      if (extra !== undefined) throw new UsageError(`unexpected argument ${show(extra)}`, command)
      const internalPort = parsePort(portText, 'internal port', command)
      const externalPort = values['external-port'] === undefined ? undefined : parsePort(stringValue(values['external-port']), '--external-port', command)
      if (command === 'unmap') return { name: 'unmap', options, protocol, internalPort, ...(externalPort === undefined ? {} : { externalPort }), ...(values.force === true ? { force: true } : {}) }
      const durationSeconds = values.duration === undefined ? undefined : parseDuration(stringValue(values.duration))
      const description = values.description === undefined ? undefined : parseDescription(stringValue(values.description))
      return {
        name: 'map',
        options,
        protocol,
        internalPort,
        ...(externalPort === undefined ? {} : { externalPort }),
        ...(durationSeconds === undefined ? {} : { durationSeconds }),
        ...(description === undefined ? {} : { description }),
        once: values.once === true
      }
    }
  }
}

type Values = Record<string, string | boolean | Array<string | boolean> | undefined>

function globalOptions (values: Values, command: HelpTopic): GlobalOptions {
  const options: GlobalOptions = { families: [], json: values.json === true, verbose: values.verbose === true }
  let gatewayFamily: Family | undefined
  if (values.gateway !== undefined) {
    const gateway = stringValue(values.gateway)
    const version = isIP(gateway)
    if (version === 0) throw new UsageError(`bad --gateway ${show(gateway)}: expected an IP address`, command)
    options.gateway = gateway
    gatewayFamily = version === 6 ? 'IPv6' : 'IPv4'
  }
  options.families = parseFamily(values.family === undefined ? undefined : stringValue(values.family), gatewayFamily, command)
  if (values.protocol !== undefined) options.protocols = parseProtocols(values.protocol, command)
  if (values.timeout !== undefined) options.timeout = parseInteger(stringValue(values.timeout), '--timeout', 1, 3_600_000, 'milliseconds', command)
  if (values['upnp-url'] !== undefined) options.upnpUrl = parseUpnpUrl(stringValue(values['upnp-url']), command)
  return options
}

/** --upnp-url: an http URL naming a host by address (the library checks that it is the gateway). */
function parseUpnpUrl (text: string, command: HelpTopic): string {
  let url: URL | undefined
  try {
    url = new URL(text)
  } catch {
    url = undefined
  }
  const host = url?.hostname.replace(/^\[|\]$/g, '') ?? ''
  if (url?.protocol !== 'http:' || isIP(host) === 0) throw new UsageError(`bad --upnp-url ${show(text)}: expected an http URL with the gateway's IP address`, command)
  return text
}

/** --family, checked against --gateway's family; see GlobalOptions.families for the default. */
function parseFamily (text: string | undefined, gatewayFamily: Family | undefined, command: HelpTopic): Family[] {
  if (text === undefined) {
    if (gatewayFamily !== undefined) return [gatewayFamily]
    return command === 'discover' || command === 'map' ? ['IPv4', 'IPv6'] : ['IPv4']
  }
  const name = text.toLowerCase()
  if (!(FAMILY_NAMES as readonly string[]).includes(name)) throw new UsageError(`bad --family ${show(text)}: expected ${FAMILY_NAMES.join(', ')}`, command)
  const families: Family[] = name === 'ipv4' ? ['IPv4'] : name === 'ipv6' ? ['IPv6'] : ['IPv4', 'IPv6']
  if (gatewayFamily !== undefined && (families.length > 1 || families[0] !== gatewayFamily)) {
    throw new UsageError(`--family ${name} does not match --gateway, an ${gatewayFamily} address`, command)
  }
  if (families.length > 1 && command !== 'discover' && command !== 'map') throw new UsageError(`--family all is for discover and map; ${command} works on one family`, command)
  return families
}

/** `--protocol pcp --protocol upnp` and `--protocol pcp,upnp` alike; duplicates dropped, order kept. */
export function parseProtocols (value: string | boolean | Array<string | boolean>, command?: HelpTopic): ProtocolName[] {
  const names = (Array.isArray(value) ? value : [value]).flatMap((item) => String(item).split(','))
  const protocols: ProtocolName[] = []
  for (const raw of names) {
    const name = raw.trim().toLowerCase()
    if (!(PROTOCOL_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`bad --protocol ${show(raw)}: expected ${PROTOCOL_NAMES.join(', ')}`, command)
    }
    if (!protocols.includes(name as ProtocolName)) protocols.push(name as ProtocolName)
  }
  return protocols
}

function parseTransport (text: string, command: HelpTopic): TransportName {
  const lower = text.toLowerCase()
  if (lower !== 'tcp' && lower !== 'udp') throw new UsageError(`bad protocol ${show(text)}: expected tcp or udp`, command)
  return lower
}

function parsePort (text: string, what: string, command: HelpTopic): number {
  return parseInteger(text, what, 1, 65_535, undefined, command)
}

function parseDuration (text: string): number {
  return parseInteger(text, '--duration', MIN_DURATION_SECONDS, MAX_DURATION_SECONDS, 'seconds', 'map')
}

function parseInteger (text: string, what: string, min: number, max: number, unit: string | undefined, command: HelpTopic): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`bad ${what} ${show(text)}: expected a whole number ${unit === undefined ? '' : `of ${unit} `}from ${min} to ${max}`, command)
  }
  return value
}

function parseDescription (text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (text.length > MAX_DESCRIPTION_LENGTH || /[\u0000-\u001f\u007f]/.test(text)) {
    throw new UsageError(`bad --description: expected at most ${MAX_DESCRIPTION_LENGTH} printable characters`, 'map')
  }
  return text
}

function stringValue (value: string | boolean | Array<string | boolean>): string {
  // `multiple` is set only for --protocol; the last occurrence of any other option wins.
  const last = Array.isArray(value) ? value[value.length - 1] : value
  return String(last)
}
