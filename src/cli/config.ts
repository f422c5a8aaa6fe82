/**
 * The file `natmapper serve --config FILE` reads: pure parsing, so every rule is unit-tested.
 *
 * An INI file, as systemd units are: one section per mapping, named by the user (logs and
 * `natmapper status` show the name), `key = value` lines below it, `#` or `;` comments on lines
 * of their own. Anything it cannot accept is a ConfigError naming the line and what is wrong.
 *
 * ```ini
 * [wireguard]
 * protocol = udp
 * port = 51820
 * external-port = 51820
 * description = WireGuard
 * family = ipv4
 * ```
 */
import type { Family, TransportName } from './args.js'

/** Bigger files are refused before parsing: a mapping needs a few lines, not kilobytes. */
export const MAX_CONFIG_BYTES = 65_536
/** A home gateway holds a few dozen mappings; this many is a mistake (or not a config file). */
export const MAX_CONFIG_MAPPINGS = 256
const MAX_LINE_LENGTH = 1_024
const MAX_DESCRIPTION_LENGTH = 256
const NAME = /^[A-Za-z0-9._-]{1,64}$/
const KEYS = ['protocol', 'port', 'external-port', 'description', 'family'] as const
type Key = typeof KEYS[number]

/** One mapping the file names. */
export interface MappingConfig {
  /** The section's name. */
  name: string
  /** The line of its `[name]`. */
  line: number
  protocol: TransportName
  internalPort: number
  /** The external port to ask for; undefined: the internal port. */
  externalPort?: number
  description: string
  /** The families to map it on, IPv4 first. Default both. */
  families: Family[]
}

/** A line of the file that cannot be accepted: `line` (1-based; 0 for the whole file) and what is wrong. */
export class ConfigError extends Error {
  readonly line: number
  readonly reason: string

  constructor (line: number, reason: string) {
    super(line === 0 ? reason : `line ${line}: ${reason}`)
    this.name = 'ConfigError'
    this.line = line
    this.reason = reason
  }
}

/** A user's value in a message: quoted, control characters escaped, so that the message stays one line. */
function show (value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
}

interface Section {
  name: string
  line: number
  values: Map<Key, { value: string, line: number }>
}

/** Parses the file's text. Throws ConfigError at the first thing it cannot accept. */
export function parseConfig (text: string): MappingConfig[] {
  if (Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) throw new ConfigError(0, `the file is larger than ${MAX_CONFIG_BYTES} bytes`)
  const sections: Section[] = []
  let current: Section | undefined
  const lines = text.split('\n')
  for (let index = 0; index < lines.length; index++) {
    const number = index + 1
    const full = lines[index] ?? ''
    // A file written on Windows: CRLF line ends.
    const raw = full.endsWith('\r') ? full.slice(0, -1) : full
    if (raw.length > MAX_LINE_LENGTH) throw new ConfigError(number, `the line is longer than ${MAX_LINE_LENGTH} characters`)
    // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
    if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(raw)) throw new ConfigError(number, 'the line holds a control character')
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    if (line.startsWith('[')) {
      const name = /^\[\s*(.*?)\s*\]$/.exec(line)?.[1]
      if (name === undefined) throw new ConfigError(number, `expected "[name]", got ${show(line)}`)
      if (!NAME.test(name)) throw new ConfigError(number, `bad mapping name ${show(name)}: use 1 to 64 letters, digits, ".", "_" or "-"`)
      const twin = sections.find((section) => section.name === name)
      if (twin !== undefined) throw new ConfigError(number, `mapping [${name}] is already defined on line ${twin.line}`)
      if (sections.length >= MAX_CONFIG_MAPPINGS) throw new ConfigError(number, `more than ${MAX_CONFIG_MAPPINGS} mappings`)
      current = { name, line: number, values: new Map() }
      sections.push(current)
      continue
    }
    const equals = line.indexOf('=')
    if (equals === -1) throw new ConfigError(number, `expected "[name]", "key = value" or a comment, got ${show(line)}`)
    const key = line.slice(0, equals).trim().toLowerCase()
    let value = line.slice(equals + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    if (current === undefined) throw new ConfigError(number, `${show(key)} is outside any mapping: start one with "[name]"`)
    if (!(KEYS as readonly string[]).includes(key)) throw new ConfigError(number, `unknown key ${show(key)} (keys: ${KEYS.join(', ')})`)
    const previous = current.values.get(key as Key)
    if (previous !== undefined) throw new ConfigError(number, `${key} is already set on line ${previous.line}`)
    current.values.set(key as Key, { value, line: number })
  }
  const mappings = sections.map(toMapping)
  checkOverlaps(mappings)
  return mappings
}

function toMapping (section: Section): MappingConfig {
  const get = (key: Key): { value: string, line: number } | undefined => section.values.get(key)
  const required = (key: Key): { value: string, line: number } => {
    const entry = get(key)
    if (entry === undefined) throw new ConfigError(section.line, `mapping [${section.name}] has no ${key}`)
    return entry
  }
  const protocolEntry = required('protocol')
  const protocol = protocolEntry.value.toLowerCase()
  if (protocol !== 'tcp' && protocol !== 'udp') throw new ConfigError(protocolEntry.line, `bad protocol ${show(protocolEntry.value)}: expected tcp or udp`)
  const internalPort = port(required('port'), 'port')
  const externalEntry = get('external-port')
  const externalPort = externalEntry === undefined ? undefined : port(externalEntry, 'external-port')
  const descriptionEntry = get('description')
  const description = descriptionEntry?.value ?? `natmapper ${section.name}`
  if (description.length > MAX_DESCRIPTION_LENGTH) {
    throw new ConfigError(descriptionEntry?.line ?? section.line, `bad description: expected at most ${MAX_DESCRIPTION_LENGTH} characters`)
  }
  const familyEntry = get('family')
  const families = familyEntry === undefined ? ['IPv4', 'IPv6'] as Family[] : family(familyEntry)
  return {
    name: section.name,
    line: section.line,
    protocol,
    internalPort,
    ...(externalPort === undefined ? {} : { externalPort }),
    description,
    families
  }
}

function port (entry: { value: string, line: number }, key: 'port' | 'external-port'): number {
  const value = /^\d{1,5}$/.test(entry.value) ? Number(entry.value) : Number.NaN
  if (!(value >= 1 && value <= 65_535)) throw new ConfigError(entry.line, `bad ${key} ${show(entry.value)}: expected a whole number from 1 to 65535`)
  return value
}

function family (entry: { value: string, line: number }): Family[] {
  switch (entry.value.toLowerCase()) {
    case 'ipv4': return ['IPv4']
    case 'ipv6': return ['IPv6']
    case 'all': return ['IPv4', 'IPv6']
    default: throw new ConfigError(entry.line, `bad family ${show(entry.value)}: expected ipv4, ipv6 or all`)
  }
}

/** Two mappings of one internal port and protocol on one family would fight over one rule. */
function checkOverlaps (mappings: MappingConfig[]): void {
  for (let i = 0; i < mappings.length; i++) {
    const mapping = mappings[i] as MappingConfig
    for (const earlier of mappings.slice(0, i)) {
      const shared = mapping.families.find((each) => earlier.families.includes(each))
      if (shared !== undefined && earlier.protocol === mapping.protocol && earlier.internalPort === mapping.internalPort) {
        throw new ConfigError(mapping.line, `mapping [${mapping.name}] maps ${mapping.protocol} port ${mapping.internalPort} on ${shared}, as [${earlier.name}] on line ${earlier.line} does`)
      }
    }
  }
}

/** What identifies a held mapping across reloads: the same key with the same settings is left untouched. */
export function mappingKey (mapping: MappingConfig, family: Family): string {
  return `${family} ${mapping.protocol} ${mapping.internalPort}`
}

/** Whether a reload must replace the mapping (its settings at the gateway differ). */
export function sameSettings (a: MappingConfig, b: MappingConfig): boolean {
  return a.externalPort === b.externalPort && a.description === b.description
}
