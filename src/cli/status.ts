/**
 * `natmapper status`: what a running `natmapper serve` holds, read from the Unix socket the
 * service owns. The service writes one JSON object (ServiceStatus) to each connection and closes
 * it; this command prints it as text, or as it came with --json. The formatting is pure.
 */
import type { NatStats, ProtocolStats } from '../index.js'
import type { Family, TransportName } from './args.js'
import { errorInfo, type ErrorInfo } from './format.js'

/** The socket's file name in the runtime directory. */
const SOCKET_NAME = 'natmapper.sock'
/** Where the socket is without $RUNTIME_DIRECTORY (what the unit's RuntimeDirectory=natmapper makes). */
export const DEFAULT_RUNTIME_DIRECTORY = '/run/natmapper'
/** A status larger than this is not from natmapper. */
const MAX_STATUS_BYTES = 4 * 1024 * 1024
/** How long `natmapper status` waits for the service. */
const STATUS_TIMEOUT_MS = 5_000

/**
 * The service's socket: in $RUNTIME_DIRECTORY (set by systemd from RuntimeDirectory=; the first
 * of several), else /run/natmapper. `status` looks in the same place.
 */
export function statusSocketPath (env: NodeJS.ProcessEnv = process.env): string {
  const first = env.RUNTIME_DIRECTORY?.split(':')[0]
  const directory = first !== undefined && first.startsWith('/') ? first : DEFAULT_RUNTIME_DIRECTORY
  return `${directory.replace(/\/+$/, '')}/${SOCKET_NAME}`
}

/** One mapping the service holds (or tries to), on one family. */
export interface MappingStatus {
  /** The config file's section name. */
  name: string
  family: Family
  protocol: TransportName
  internalPort: number
  description: string
  /** The external port asked for; null: the internal port. */
  requestedExternalPort: number | null
  established: boolean
  externalAddress: string | null
  /** The external port granted; null while not established. */
  externalPort: number | null
  /** Seconds until the current lease runs out; null while not established or for a permanent lease. */
  leaseSecondsLeft: number | null
  /** The last failed attempt's error, cleared by the next success. */
  lastError: ErrorInfo | null
}

/** One address family's gateway, or why there is none yet. */
export interface FamilyStatus {
  family: Family
  gateway: string | null
  type: string | null
  localAddress: string | null
  /** Why discovery failed (it is retried); null once a gateway is found. */
  error: ErrorInfo | null
  /** The NAT's counters (nat.stats(); sinceLastSuccessMs null before the first success). */
  stats: (Omit<NatStats, 'sinceLastSuccessMs'> & { sinceLastSuccessMs: number | null }) | null
}

/** What the service's socket gives. */
export interface ServiceStatus {
  pid: number
  config: string
  startedAt: string
  /** Reloads applied, and refused (a bad file) since the start. */
  reloads: number
  reloadsRefused: number
  lastReloadError: string | null
  mappings: MappingStatus[]
  families: FamilyStatus[]
}

/** The NAT's counters as JSON (undefined becomes null, so that the key stays). */
export function statsJson (stats: NatStats): FamilyStatus['stats'] {
  return { ...stats, sinceLastSuccessMs: stats.sinceLastSuccessMs ?? null }
}

export function errorJson (error: unknown): ErrorInfo | null {
  return error === undefined || error === null ? null : errorInfo(error)
}

function hostPort (address: string | null, port: number | null): string {
  const host = address === null ? '?' : address.includes(':') ? `[${address}]` : address
  return `${host}:${port ?? '?'}`
}

function counts (stats: ProtocolStats): string {
  const answers = stats.answers.map((answer) => `${answer.name} (${answer.code}) ${answer.count}`).join(', ')
  return `requests ${stats.requests}, retransmissions ${stats.retransmissions}, timeouts ${stats.timeouts}, refusals ${stats.refusals}` +
    `${answers === '' ? '' : `; answers: ${answers}`}; mappings established ${stats.mappingsEstablished}, renewed ${stats.mappingsRenewed},` +
    ` changed ${stats.mappingsChanged}, failed ${stats.mappingsFailed}, lost ${stats.mappingsLost}, recovered ${stats.mappingsRecovered}`
}

/** The status as text: one line per mapping, then each family's gateway and counters. */
export function statusLines (status: ServiceStatus): string[] {
  const lines = [`natmapper serve (pid ${status.pid}) since ${status.startedAt}, config ${status.config}` +
    `; reloads ${status.reloads}, refused ${status.reloadsRefused}${status.lastReloadError === null ? '' : ` (last: ${status.lastReloadError})`}`]
  lines.push('', 'mappings:')
  if (status.mappings.length === 0) lines.push('  none')
  for (const mapping of status.mappings) {
    const what = `  [${mapping.name}] ${mapping.family} ${mapping.protocol} ${mapping.internalPort}`
    const state = mapping.established
      ? `${hostPort(mapping.externalAddress, mapping.externalPort)}, ${mapping.leaseSecondsLeft === null ? 'permanent lease' : `lease ${mapping.leaseSecondsLeft} s left`}`
      : 'not mapped, retrying'
    lines.push(`${what}: ${state}${mapping.lastError === null ? '' : `; last error: ${mapping.lastError.message}`}`)
  }
  for (const family of status.families) {
    lines.push('', family.gateway === null
      ? `${family.family}: no gateway yet${family.error === null ? '' : `: ${family.error.message}`}`
      : `${family.family}: gateway ${family.gateway} (${family.type ?? '?'}), from ${family.localAddress ?? '?'}`)
    const stats = family.stats
    if (stats === null) continue
    lines.push(`  gateway resets ${stats.gatewayResets}, gateway changes ${stats.gatewayChanges}, last success ${stats.sinceLastSuccessMs === null ? 'never' : `${Math.round(stats.sinceLastSuccessMs / 1000)} s ago`}`)
    for (const [protocol, counted] of Object.entries(stats.protocols)) {
      if (counted.requests > 0 || counted.mappingsEstablished > 0) lines.push(`  ${protocol}: ${counts(counted)}`)
    }
  }
  return lines
}

/** Reads the service's status from its socket. Rejects with a one-line reason. */
export async function readServiceStatus (path: string): Promise<ServiceStatus> {
  const net = await import('node:net')
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const socket = net.connect(path)
    socket.setTimeout(STATUS_TIMEOUT_MS, () => { socket.destroy(new Error(`no answer from ${path} within ${STATUS_TIMEOUT_MS} ms`)) })
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_STATUS_BYTES) socket.destroy(new Error(`${path} sent more than ${MAX_STATUS_BYTES} bytes`))
      else chunks.push(chunk)
    })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      reject(new Error(error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
        ? `no natmapper serve is running (nothing listens on ${path})`
        : error.code === 'EACCES' ? `${path}: permission denied (the service's socket is its user's alone: try sudo)` : `${path}: ${error.message}`))
    })
    socket.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ServiceStatus)
      } catch {
        reject(new Error(`${path} did not answer with a natmapper status`))
      }
    })
  })
}
