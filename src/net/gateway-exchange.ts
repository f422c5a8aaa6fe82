import { DEFAULT_REQUEST_TIMEOUT, PCP_SERVER_PORT } from '../constants.js'
import type { RequestOptions } from '../core/gateway-client.js'
import { withDeadline } from '../core/deadline.js'
import { wireTracer } from '../core/trace.js'
import type { WireProtocol } from '../errors.js'
import { udpExchange, type RetransmitSchedule } from './udp-exchange.js'

/** One NAT-PMP or PCP request to the gateway's port 5351, bounded by the caller's deadline. */
export async function exchangeWithGateway<T> (
  protocol: WireProtocol,
  gateway: string,
  request: Uint8Array,
  retransmit: RetransmitSchedule,
  accept: (reply: Uint8Array) => T | undefined,
  options: RequestOptions
): Promise<T> {
  const what = `${protocol} request to ${gateway}`
  return await withDeadline(what, { ...options, timeout: options.timeout ?? DEFAULT_REQUEST_TIMEOUT }, async (signal) =>
    await udpExchange({
      address: gateway,
      port: PCP_SERVER_PORT,
      request,
      retransmit,
      accept,
      signal,
      trace: wireTracer(protocol, `${gateway}:${PCP_SERVER_PORT}`)
    }))
}
