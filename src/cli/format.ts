/**
 * What the CLI prints, human and JSON: pure functions from results and events to text, so that
 * every format is unit-tested without a gateway. One JSON object per line, always with `event`.
 */
import { addressScope, type AddressScope, type GatewayMappingEntry, type NatType, type ProbeReport } from '../index.js'
import type { Family } from './args.js'

/** An error as JSON: its stable `code` first, then what the kind of error carries. */
export interface ErrorInfo {
  code?: string
  name: string
  message: string
  protocol?: string
  resultCode?: number
  resultName?: string
  reasons?: Record<string, ErrorInfo>
}

export function errorInfo (error: unknown): ErrorInfo {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) }
  const fields = error as Error & { code?: unknown, protocol?: unknown, resultCode?: unknown, resultName?: unknown, reasons?: unknown }
  const info: ErrorInfo = { ...(typeof fields.code === 'string' ? { code: fields.code } : {}), name: error.name, message: error.message }
  if (typeof fields.protocol === 'string') info.protocol = fields.protocol
  if (typeof fields.resultCode === 'number') info.resultCode = fields.resultCode
  if (typeof fields.resultName === 'string') info.resultName = fields.resultName
  if (typeof fields.reasons === 'object' && fields.reasons !== null) {
    info.reasons = Object.fromEntries(Object.entries(fields.reasons).map(([protocol, reason]) => [protocol, errorInfo(reason)]))
  }
  return info
}

/** One JSON line. */
export function jsonLine (value: Record<string, unknown>): string {
  return JSON.stringify(value)
}

/** "3.2 ms", "41 ms", "2.50 s". */
export function formatDuration (ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`
  if (ms < 1000) return `${Math.round(ms)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

/** Local wall-clock time, HH:MM:SS. */
export function clockTime (time: Date): string {
  return time.toTimeString().slice(0, 8)
}

/** A lease's end as JSON: an ISO time, or null for a permanent lease (or none). */
function expiryJson (expiresAt: Date | number | undefined): string | null {
  return expiresAt instanceof Date ? expiresAt.toISOString() : null
}

function leaseText (lifetimeSeconds: number): string {
  return lifetimeSeconds === 0 ? 'permanent lease' : `lease ${lifetimeSeconds} s`
}

/** What the scope of an external address means for reachability, in words. */
export function scopeText (scope: AddressScope): string {
  switch (scope) {
    case 'public': return 'public: reachable from the internet through this gateway'
    case 'private': return 'private, not publicly routable: another NAT is in front of this gateway (double NAT)'
    case 'shared': return 'shared (100.64.0.0/10), not publicly routable: a carrier-grade NAT is in front of this gateway'
    case 'unspecified': return 'unspecified: the gateway has no external address yet'
    default: return `${scope}, not publicly routable`
  }
}

// ---------------------------------------------------------------------------------------------
// discover

export interface DiscoverResult {
  family: Family
  /** Undefined when the family has no gateway (no default route, no usable address): see `error`. */
  gateway?: string
  /** Whether the gateway was given with --gateway or found on the default route. */
  gatewaySource: 'option' | 'default-route'
  /** Where the kernel's route to the Internet differs from the main table's default route. */
  route?: { table?: string, unusedGateway?: string }
  localAddress?: string
  probes: ProbeReport[]
  /** The protocol natmapper would use, when one answered. */
  type?: NatType
  externalAddress?: string
  /** Why there is no type or no external address. */
  error?: unknown
}

export function discoverJson (result: DiscoverResult): Record<string, unknown> {
  const scope = result.externalAddress === undefined ? undefined : addressScope(result.externalAddress)
  return {
    event: 'discovered',
    family: result.family,
    gateway: result.gateway ?? null,
    gatewaySource: result.gatewaySource,
    localAddress: result.localAddress ?? null,
    ...(result.route?.table === undefined ? {} : { routeTable: result.route.table }),
    ...(result.route?.unusedGateway === undefined ? {} : { unusedGateway: result.route.unusedGateway }),
    probes: result.probes.map((probe) => ({
      protocol: probe.protocol,
      ok: probe.error === undefined,
      ...(probe.type === undefined ? {} : { type: probe.type }),
      ms: Math.round(probe.ms * 10) / 10,
      ...(probe.error === undefined ? {} : { error: errorInfo(probe.error) })
    })),
    type: result.type ?? null,
    externalAddress: result.externalAddress ?? null,
    scope: scope ?? null,
    publiclyRoutable: scope === undefined ? null : scope === 'public',
    ...(result.family === 'IPv6' ? { pinholes: pinholesPossible(result) } : {}),
    ...(result.error === undefined ? {} : { error: errorInfo(result.error) })
  }
}

/** IPv6: whether natmapper can open inbound pinholes (a protocol that opens them answered). */
function pinholesPossible (result: DiscoverResult): boolean {
  return result.type !== undefined && result.error === undefined
}

/** The report of one family; `heading` puts the family's name above it (when several are shown). */
/** Which route the gateway came from, naming a main-table default route the kernel does not use. */
function routeText (route: DiscoverResult['route']): string {
  const table = route?.table === undefined ? 'the default route' : `the route the kernel uses, table ${route.table}`
  return route?.unusedGateway === undefined ? table : `${table}; not ${route.unusedGateway}, the main table's default route, which the kernel does not use`
}

export function discoverLines (result: DiscoverResult, heading = false): string[] {
  const row = (label: string, value: string): string => `${label.padEnd(17)}${value}`
  const lines: string[] = heading ? [result.family] : []
  if (result.gateway === undefined || result.localAddress === undefined) {
    lines.push(row('gateway', `none: ${errorInfo(result.error).message}`))
    if (result.family === 'IPv6') lines.push(row('pinholes', 'not possible: no IPv6 gateway'))
    return lines
  }
  lines.push(
    row('gateway', `${result.gateway} (${result.gatewaySource === 'option' ? 'from --gateway' : routeText(result.route)})`),
    row('local address', result.localAddress)
  )
  for (const probe of result.probes) {
    const kind = probe.type !== undefined && probe.type !== probe.protocol ? ` (${probe.type})` : ''
    lines.push(row(probe.protocol, probe.error === undefined
      ? `yes, answered in ${formatDuration(probe.ms)}${kind}`
      : `no: ${probe.error.message} (after ${formatDuration(probe.ms)})`))
  }
  lines.push(row('using', result.type ?? 'none: no protocol answered'))
  if (result.family === 'IPv6') {
    lines.push(row('pinholes', pinholesPossible(result)
      ? `possible: ${result.type ?? ''} opens inbound connections to ${result.localAddress} (no translation on IPv6)`
      : `not possible: ${result.type === undefined ? 'the gateway speaks neither PCP nor UPnP WANIPv6FirewallControl' : errorInfo(result.error).message}`))
  } else if (result.externalAddress !== undefined) {
    lines.push(row('external address', `${result.externalAddress}, ${scopeText(addressScope(result.externalAddress))}`))
  } else if (result.type !== undefined && result.error !== undefined) {
    lines.push(row('external address', `unknown: ${errorInfo(result.error).message}`))
  }
  return lines
}

// ---------------------------------------------------------------------------------------------
// ip and list

export function ipJson (address: string, type: NatType, gateway: string): Record<string, unknown> {
  const scope = addressScope(address)
  return { event: 'external-address', address, scope, publiclyRoutable: scope === 'public', type, gateway }
}

export function listJson (entries: GatewayMappingEntry[], type: NatType, gateway: string): Record<string, unknown> {
  return { event: 'mappings', type, gateway, mappings: entries.map((entry) => ({ ...entry })) }
}

export function listLines (entries: GatewayMappingEntry[], type: NatType, gateway: string): string[] {
  if (entries.length === 0) return [`no mappings on ${gateway} (${type})`]
  const header = ['PROTO', 'EXTERNAL', 'INTERNAL', 'LEASE', 'ENABLED', 'DESCRIPTION']
  const rows = entries.map((entry) => [
    entry.protocol,
    String(entry.externalPort),
    `${entry.internalClient}:${entry.internalPort}`,
    entry.lifetimeSeconds === 0 ? 'permanent' : `${entry.lifetimeSeconds} s`,
    entry.enabled ? 'yes' : 'no',
    entry.description
  ])
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((cells) => cells[column]?.length ?? 0)))
  const line = (cells: string[]): string => cells.map((cell, column) => column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)).join('  ')
  return [line(header), ...rows.map(line)]
}

// ---------------------------------------------------------------------------------------------
// map: one event per line, and the live status line

export type MapEvent =
  | { event: 'discovered', type: NatType, gateway: string, localAddress: string }
  | {
    event: 'established'
    protocol: 'tcp' | 'udp'
    internalPort: number
    localAddress: string
    /** Undefined only when the gateway could not be asked for it. */
    address: string | undefined
    port: number
    lifetimeSeconds: number
    expiresAt: Date | number | undefined
  }
  | { event: 'renewed', port: number, renewals: number, lifetimeSeconds: number, expiresAt: Date | number | undefined }
  | { event: 'changed', address: string | undefined, port: number, previousAddress: string | undefined, previousPort: number }
  | { event: 'failed', error: unknown, established: boolean }
  | { event: 'lost', error: unknown }
  | { event: 'external-address-changed', address: string, previous: string | undefined }
  /** The gateway lost its state (a restart): natmapper re-creates every mapping. */
  | { event: 'gateway-reset', reason: string }
  /** The NAT moved to another gateway or protocol. */
  | { event: 'gateway-changed', type: NatType, gateway: string, previousType: NatType, previousGateway: string, reason: string }
  | { event: 'closing', signal: string }
  | { event: 'closed', deleted: boolean, error?: unknown }
  /** --once: the mapping stays on the gateway until its lease runs out. */
  | { event: 'left', expiresAt: Date | number | undefined }
  /** This family has no mapping (no gateway, or the gateway said no) while another family has one. */
  | { event: 'unavailable', error: unknown }

/** The event as JSON; `family` says which address family's mapping it is about. */
export function mapEventJson (event: MapEvent, time: Date, family?: Family): Record<string, unknown> {
  const base = { event: event.event, time: time.toISOString(), ...(family === undefined ? {} : { family }) }
  switch (event.event) {
    case 'discovered':
      return { ...base, type: event.type, gateway: event.gateway, localAddress: event.localAddress }
    case 'established':
      return {
        ...base,
        protocol: event.protocol,
        address: event.address ?? null,
        port: event.port,
        internalAddress: event.localAddress,
        internalPort: event.internalPort,
        lifetimeSeconds: event.lifetimeSeconds,
        expiresAt: expiryJson(event.expiresAt)
      }
    case 'renewed':
      return { ...base, port: event.port, renewals: event.renewals, lifetimeSeconds: event.lifetimeSeconds, expiresAt: expiryJson(event.expiresAt) }
    case 'changed':
      return { ...base, address: event.address ?? null, port: event.port, previousAddress: event.previousAddress ?? null, previousPort: event.previousPort }
    case 'failed':
      return { ...base, established: event.established, error: errorInfo(event.error) }
    case 'lost':
      return { ...base, error: event.error === undefined ? null : errorInfo(event.error) }
    case 'external-address-changed':
      return { ...base, address: event.address, previous: event.previous ?? null, scope: addressScope(event.address), publiclyRoutable: addressScope(event.address) === 'public' }
    case 'gateway-reset':
      return { ...base, reason: event.reason }
    case 'gateway-changed':
      return { ...base, type: event.type, gateway: event.gateway, previousType: event.previousType, previousGateway: event.previousGateway, reason: event.reason }
    case 'closing':
      return { ...base, signal: event.signal }
    case 'closed':
      return { ...base, deleted: event.deleted, ...(event.error === undefined ? {} : { error: errorInfo(event.error) }) }
    case 'left':
      return { ...base, expiresAt: expiryJson(event.expiresAt) }
    case 'unavailable':
      return { ...base, error: errorInfo(event.error) }
  }
}

function endpoint (address: string | undefined, port: number): string {
  return `${address ?? '?'}:${port}`
}

function untilText (expiresAt: Date | number | undefined): string {
  return expiresAt instanceof Date ? `, until ${clockTime(expiresAt)}` : ''
}

/** The event in words, without a timestamp; `family` (when several are held) goes in front. */
export function mapEventText (event: MapEvent, family?: Family): string {
  return family === undefined ? eventText(event) : `${family}: ${eventText(event)}`
}

function eventText (event: MapEvent): string {
  switch (event.event) {
    case 'discovered':
      return `gateway ${event.gateway} speaks ${event.type}; this host is ${event.localAddress}`
    case 'established':
      return `established: ${event.protocol} ${endpoint(event.address, event.port)} -> ${event.localAddress}:${event.internalPort} (${leaseText(event.lifetimeSeconds)}${untilText(event.expiresAt)})`
    case 'renewed':
      return `renewed (${event.renewals}): ${leaseText(event.lifetimeSeconds)}${untilText(event.expiresAt)}`
    case 'changed':
      return `changed: now ${endpoint(event.address, event.port)} (was ${endpoint(event.previousAddress, event.previousPort)})`
    case 'failed':
      return `failed: ${errorInfo(event.error).message}; retrying${event.established ? ' while the lease lasts' : ''}`
    case 'lost':
      return `lost: the lease ran out${event.error === undefined ? '' : ` (${errorInfo(event.error).message})`}; retrying`
    case 'external-address-changed':
      return `external address changed: ${event.address}, ${scopeText(addressScope(event.address))} (was ${event.previous ?? 'unknown'})`
    case 'gateway-reset':
      return `the gateway lost its mappings (${event.reason}); re-creating`
    case 'gateway-changed':
      return `now using ${event.type} at ${event.gateway} (was ${event.previousType} at ${event.previousGateway}): ${event.reason}`
    case 'closing':
      return `${event.signal}: deleting the mapping at the gateway`
    case 'closed':
      return event.deleted
        ? 'deleted at the gateway'
        : `closed, but the gateway did not confirm the delete${event.error === undefined ? '' : `: ${errorInfo(event.error).message}`}`
    case 'left':
      return event.expiresAt instanceof Date
        ? `left on the gateway, not renewed: the lease runs out at ${clockTime(event.expiresAt)}`
        : 'left on the gateway with a permanent lease: delete it with "natmapper unmap"'
    case 'unavailable':
      return `no mapping on this family: ${errorInfo(event.error).message}`
  }
}

/** One line per event, for logs and pipes: "12:00:01 established: ...". */
export function mapEventLine (event: MapEvent, time: Date, family?: Family): string {
  return `${clockTime(time)} ${mapEventText(event, family)}`
}

/** What the live status line shows. */
export interface MapStatus {
  protocol: 'tcp' | 'udp'
  internalPort: number
  localAddress: string
  type: NatType
  address: string | undefined
  port: number
  established: boolean
  renewals: number
  expiresAt: Date | number | undefined
  lastError: unknown
  /** Named in front when several families are held. */
  family?: Family
}

/** The status line of the held mappings (one per family), at `now`, cut to `width` columns. */
export function statusText (statuses: MapStatus | MapStatus[], now: number, width = 100): string {
  const parts = (Array.isArray(statuses) ? statuses : [statuses]).flatMap((status) => statusParts(status, now))
  parts.push('Ctrl-C deletes')
  const text = parts.join(' | ')
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 3))}...`
}

function statusParts (status: MapStatus, now: number): string[] {
  const parts: string[] = []
  const family = status.family === undefined ? '' : `${status.family} `
  if (status.established) {
    parts.push(`${family}mapped ${status.protocol} ${endpoint(status.address, status.port)} -> ${status.localAddress}:${status.internalPort} (${status.type})`)
    parts.push(`renewed ${status.renewals}x`)
    if (status.expiresAt instanceof Date) parts.push(`lease ends in ${Math.max(0, Math.ceil((status.expiresAt.getTime() - now) / 1000))} s`)
    else parts.push('permanent lease')
    if (status.lastError !== undefined) parts.push(`last error: ${errorInfo(status.lastError).message}`)
  } else {
    parts.push(`${family}not mapped: ${status.protocol} ${status.internalPort} (${status.type}), retrying`)
    if (status.lastError !== undefined) parts.push(`last error: ${errorInfo(status.lastError).message}`)
  }
  return parts
}
