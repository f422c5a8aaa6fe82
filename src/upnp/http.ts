/**
 * A minimal HTTP client for the gateway's description and control URLs: one TCP connection per
 * request (`Connection: close`, as miniupnpc does; routers' embedded servers handle little
 * else reliably), the response read by our bounded parser, and nothing left behind: no agent, no
 * pooled socket, no timer. The caller bounds the exchange with `signal`, whose reason (a
 * TimeoutError, AbortError or ClosedError from the caller) is what the request rejects with.
 */
import { reasonOf } from '../core/deadline.js'
import { wireTracer } from '../core/trace.js'
import { HttpStatusError, NetworkError, UnsupportedError } from '../errors.js'
import { encodeHttpRequest, HttpResponseParser, type HttpRequest, type HttpResponse } from './http-codec.js'
import { addressScope, isIPv6 } from '../net/ip-address.js'
import { normalizeAddress } from './trust.js'

export interface HttpExchangeOptions extends HttpRequest {
  /** Responses with a larger body are refused (MalformedMessageError). */
  maxBodyBytes: number
  /** Ends the exchange; required, so that a body that never ends cannot hold us. */
  signal: AbortSignal
  /**
   * The interface a link-local host is reached on (the gateway's zone: `lan0` of `fe80::1%lan0`).
   * A URL cannot carry one (WHATWG URL has no zone), so it travels beside it.
   */
  zone?: string | undefined
  /** Our address to connect from (a pinhole request must come from the address it is for). */
  localAddress?: string | undefined
  /** Runs once connected, before the request is sent; a rejection ends the exchange with its error. */
  beforeRequest?: ((connection: { remoteAddress: string | undefined }) => Promise<void>) | undefined
}

export interface HttpExchange {
  response: HttpResponse
  /** Our address on the connection: the address the gateway sees us at. */
  localAddress: string | undefined
}

let net: typeof import('node:net') | undefined

/**
 * node:net costs ~5 ms to load: only programs that talk to a UPnP gateway pay it, and the probe
 * loads it while it waits for SSDP answers (see preloadGatewayCode in upnp/probe.ts).
 */
export async function loadTcp (): Promise<typeof import('node:net')> {
  net ??= await import('node:net')
  return net
}

/** Sends one request and reads one response. Rejects only with NatMapperError subclasses. */
export async function httpExchange (options: HttpExchangeOptions): Promise<HttpExchange> {
  const { url, signal } = options
  if (signal.aborted) throw reasonOf(signal)
  if (url.protocol !== 'http:') throw new UnsupportedError(`upnp: ${url.protocol} URLs are not supported (${url.href})`)
  const request = encodeHttpRequest(options)
  const parser = new HttpResponseParser({ maxBodyBytes: options.maxBodyBytes })
  const trace = wireTracer('upnp', url.host)
  const what = `${options.method} ${url.href}`

  const tcp = net ?? await loadTcp()
  if (signal.aborted) throw reasonOf(signal)
  const host = normalizeAddress(url.hostname)
  const socket = tcp.connect({
    host: options.zone !== undefined && isIPv6(host) && addressScope(host) === 'link-local' ? `${host}%${options.zone}` : host,
    port: url.port === '' ? 80 : Number(url.port),
    noDelay: true,
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress })
  })
  let onAbort: (() => void) | undefined
  try {
    return await new Promise<HttpExchange>((resolve, reject) => {
      let answered = false
      const succeed = (response: HttpResponse): void => {
        if (answered) return
        answered = true
        trace('receive', response.body)
        resolve({ response, localAddress: socket.localAddress === undefined ? undefined : normalizeAddress(socket.localAddress) })
      }
      onAbort = () => { reject(reasonOf(signal)) }
      signal.addEventListener('abort', onAbort, { once: true })
      const send = (): void => {
        trace('send', request)
        socket.write(request)
      }
      socket.on('connect', () => {
        if (options.beforeRequest === undefined) { send(); return }
        options.beforeRequest({ remoteAddress: socket.remoteAddress }).then(() => { if (!socket.destroyed) send() }, reject)
      })
      socket.on('data', (chunk: Uint8Array) => {
        try {
          const response = parser.push(chunk)
          if (response !== undefined) succeed(response)
        } catch (error) {
          reject(error)
        }
      })
      socket.on('end', () => {
        try {
          succeed(parser.end())
        } catch (error) {
          reject(error)
        }
      })
      socket.on('error', (error: NodeJS.ErrnoException) => {
        reject(new NetworkError(`${what} failed: ${error.code ?? error.message}`, { cause: error }))
      })
      socket.on('close', () => {
        reject(new NetworkError(`${what}: connection closed before a response`))
      })
    })
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
    socket.destroy()
  }
}

/** Throws HttpStatusError unless the response is a 2xx. */
export function expectSuccess (response: HttpResponse, what: string): void {
  if (response.statusCode < 200 || response.statusCode > 299) {
    throw new HttpStatusError(response.statusCode, `${what} answered HTTP ${response.statusCode} ${response.statusText}`.trim())
  }
}
