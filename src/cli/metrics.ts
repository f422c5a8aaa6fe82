/**
 * `natmapper serve --metrics [HOST:]PORT`: the service's status and counters in the Prometheus
 * text exposition format (version 0.0.4), served at /metrics. Off by default; a bare port listens
 * on 127.0.0.1 only, and another address must be named to be used. The formatting is pure.
 */
import type { Server } from 'node:http'
import { isIP } from '../net/ip-address.js'
import type { ProtocolStats } from '../index.js'
import type { ServiceStatus } from './status.js'

/** Where the metrics endpoint listens: an IP address (127.0.0.1 unless named) and a port. */
export interface ListenAddress {
  host: string
  port: number
}

/**
 * `9464`, `127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`. Returns a reason (a string) for
 * anything else. A bare port means loopback: the counters are exposed wider only when asked.
 */
export function parseListenAddress (text: string): ListenAddress | string {
  const match = /^(?:(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):)?(\d{1,5})$/.exec(text)
  const port = Number(match?.[3])
  if (match === null || !(port >= 1 && port <= 65_535)) return 'expected PORT or HOST:PORT, with an IP address for HOST ([...] for IPv6) and a port from 1 to 65535'
  const host = match[1] ?? match[2] ?? '127.0.0.1'
  if (isIP(host) === 0) return `${JSON.stringify(host)} is not an IP address`
  return { host, port }
}

type Labels = Record<string, string | number>

/** Label values escaped as the format says: backslash, double quote and line feed. */
function labelText (labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`
}

class Exposition {
  readonly #lines: string[] = []

  /** One metric family: HELP and TYPE, then its samples (none: the family is left out). */
  family (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[Labels, number]>): void {
    if (samples.length === 0) return
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, value] of samples) this.#lines.push(`${name}${labelText(labels)} ${Number.isFinite(value) ? String(value) : value > 0 ? '+Inf' : '-Inf'}`)
  }

  text (): string {
    return this.#lines.join('\n') + '\n'
  }
}

const MAPPING_EVENTS: ReadonlyArray<[keyof ProtocolStats, string]> = [
  ['mappingsEstablished', 'established'],
  ['mappingsRenewed', 'renewed'],
  ['mappingsChanged', 'changed'],
  ['mappingsFailed', 'failed'],
  ['mappingsLost', 'lost'],
  ['mappingsRecovered', 'recovered']
]

/** The status as a Prometheus exposition. Families and protocols are labels; every counter ends in _total. */
export function metricsText (status: ServiceStatus): string {
  const out = new Exposition()
  const mappingLabels = (mapping: ServiceStatus['mappings'][number]): Labels => ({
    name: mapping.name, family: mapping.family.toLowerCase(), protocol: mapping.protocol, internal_port: mapping.internalPort
  })
  out.family('natmapper_mapping_established', 'gauge', '1 while the gateway holds the mapping, else 0.',
    status.mappings.map((mapping) => [mappingLabels(mapping), mapping.established ? 1 : 0]))
  out.family('natmapper_mapping_external_port', 'gauge', 'The external port the gateway granted.',
    status.mappings.flatMap((mapping) => mapping.externalPort === null ? [] : [[mappingLabels(mapping), mapping.externalPort]]))
  out.family('natmapper_mapping_lease_seconds_left', 'gauge', 'Seconds until the mapping\'s lease runs out (a permanent lease is +Inf).',
    status.mappings.flatMap((mapping) => !mapping.established ? [] : [[mappingLabels(mapping), mapping.leaseSecondsLeft ?? Infinity]]))

  const nats = status.families.flatMap((family) => family.stats === null ? [] : [{ family: family.family.toLowerCase(), stats: family.stats }])
  const perProtocol = (pick: (stats: ProtocolStats) => number): Array<[Labels, number]> =>
    nats.flatMap(({ family, stats }) => Object.entries(stats.protocols).map(([protocol, counted]): [Labels, number] => [{ family, protocol }, pick(counted)]))
  out.family('natmapper_gateway_up', 'gauge', '1 when a gateway was found for the family, else 0.',
    status.families.map((family) => [{ family: family.family.toLowerCase() }, family.gateway === null ? 0 : 1]))
  out.family('natmapper_requests_total', 'counter', 'Requests sent to the gateway.', perProtocol((stats) => stats.requests))
  out.family('natmapper_retransmissions_total', 'counter', 'Requests sent again for want of an answer.', perProtocol((stats) => stats.retransmissions))
  out.family('natmapper_timeouts_total', 'counter', 'Requests that got no answer in time.', perProtocol((stats) => stats.timeouts))
  out.family('natmapper_refusals_total', 'counter', 'Requests refused by the gateway\'s host (ICMP port unreachable, TCP reset).', perProtocol((stats) => stats.refusals))
  out.family('natmapper_answers_total', 'counter', 'Answers from the gateway by result code (0 is success).',
    nats.flatMap(({ family, stats }) => Object.entries(stats.protocols).flatMap(([protocol, counted]) =>
      counted.answers.map((answer): [Labels, number] => [{ family, protocol, code: answer.code, result: answer.name }, answer.count]))))
  out.family('natmapper_mapping_events_total', 'counter', 'Mapping events: established, renewed, changed, failed, lost, recovered.',
    nats.flatMap(({ family, stats }) => Object.entries(stats.protocols).flatMap(([protocol, counted]) =>
      MAPPING_EVENTS.map(([field, event]): [Labels, number] => [{ family, protocol, event }, counted[field] as number]))))
  out.family('natmapper_gateway_resets_total', 'counter', 'Times the gateway lost its mappings (a restart) and they were made again.',
    nats.map(({ family, stats }) => [{ family }, stats.gatewayResets]))
  out.family('natmapper_gateway_changes_total', 'counter', 'Times the NAT moved to another gateway or protocol.',
    nats.map(({ family, stats }) => [{ family }, stats.gatewayChanges]))
  out.family('natmapper_seconds_since_last_success', 'gauge', 'Seconds since the gateway last answered with success.',
    nats.flatMap(({ family, stats }) => stats.sinceLastSuccessMs === null ? [] : [[{ family }, stats.sinceLastSuccessMs / 1000]]))
  out.family('natmapper_config_reloads_total', 'counter', 'Reloads of the config file applied.', [[{}, status.reloads]])
  out.family('natmapper_config_reloads_refused_total', 'counter', 'Reloads refused for a bad config file.', [[{}, status.reloadsRefused]])
  return out.text()
}

/** Serves metricsText(snapshot()) at /metrics; resolves once listening. */
export async function serveMetrics (address: ListenAddress, snapshot: () => ServiceStatus): Promise<Server> {
  const http = await import('node:http')
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]
    if (request.method !== 'GET' || path !== '/metrics') {
      response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('natmapper: metrics are at /metrics\n')
      return
    }
    response.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metricsText(snapshot()))
  })
  // Scrapers keep connections open: they must not hold the process at exit.
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(address.port, address.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}
