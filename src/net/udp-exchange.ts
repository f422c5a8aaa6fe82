import dgram from 'node:dgram'
import { isIPv6 } from 'node:net'
import { NetworkError, PortUnreachableError, TimeoutError } from '../errors.js'
import { reasonOf } from '../core/deadline.js'
import { sameAddress } from './ip-address.js'

/** Produces the wait before each retransmission; `undefined` stops sending (but keeps listening). */
export type RetransmitSchedule = () => Iterator<number>

export interface UdpExchange<T> {
  /** The server's address and port; replies from anywhere else are dropped. */
  address: string
  port: number
  request: Uint8Array
  retransmit: RetransmitSchedule
  /**
   * Looks at one reply: returns the result to settle with, `undefined` to keep waiting (a stale
   * or foreign reply), or throws to reject (a decoded failure such as a result code).
   * A MalformedMessageError thrown here is remembered and the wait goes on: a garbled datagram
   * must not end an exchange a good reply could still finish.
   */
  accept: (reply: Uint8Array) => T | undefined
  /** Ends the exchange; required so that no exchange waits forever. */
  signal: AbortSignal
  /** Called with each datagram sent and received, for tracing. */
  trace?: (direction: 'send' | 'receive', bytes: Uint8Array) => void
}

/**
 * One request/response exchange over a fresh connected UDP socket. Connecting means the kernel
 * drops datagrams from other peers and reports ICMP port unreachable as ECONNREFUSED, which we
 * turn into an immediate PortUnreachableError instead of waiting out the timeout.
 */
export async function udpExchange<T> (exchange: UdpExchange<T>): Promise<T> {
  const { signal } = exchange
  if (signal.aborted) throw reasonOf(signal)
  const socket = dgram.createSocket(isIPv6(exchange.address) ? 'udp6' : 'udp4')
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  let lastMalformed: Error | undefined

  try {
    return await new Promise<T>((resolve, reject) => {
      onAbort = () => {
        const reason = reasonOf(signal)
        if (reason instanceof TimeoutError && lastMalformed !== undefined && reason.cause === undefined) {
          reject(new TimeoutError(`${reason.message}; last reply was malformed`, { cause: lastMalformed }))
        } else {
          reject(reason)
        }
      }
      signal.addEventListener('abort', onAbort, { once: true })

      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ECONNREFUSED') {
          reject(new PortUnreachableError(`${exchange.address}:${exchange.port} is not listening (ICMP port unreachable)`, { cause: error }))
        } else {
          reject(new NetworkError(`UDP exchange with ${exchange.address}:${exchange.port} failed: ${error.message}`, { cause: error }))
        }
      })
      socket.on('message', (message, remote) => {
        // connect() already filters by peer; checking again costs nothing and documents the rule.
        if (remote.port !== exchange.port || !sameAddress(remote.address, exchange.address)) return
        exchange.trace?.('receive', message)
        try {
          const result = exchange.accept(message)
          if (result !== undefined) resolve(result)
        } catch (error) {
          if (error instanceof Error && (error as { code?: string }).code === 'ERR_MALFORMED_MESSAGE') {
            lastMalformed = error
          } else {
            reject(error)
          }
        }
      })

      const delays = exchange.retransmit()
      const send = (): void => {
        exchange.trace?.('send', exchange.request)
        socket.send(exchange.request, (error) => {
          if (error !== null && error !== undefined) socket.emit('error', error)
        })
        const next = delays.next()
        if (next.done !== true) timer = setTimeout(send, next.value)
      }
      socket.connect(exchange.port, exchange.address, send)
    })
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
    closeQuietly(socket)
  }
}

/** Closing twice throws in node; a socket torn down by an error may already be closed. */
function closeQuietly (socket: dgram.Socket): void {
  try { socket.close() } catch { /* already closed */ }
}

/** The local address the kernel would use to reach `address` (no packet is sent). */
export async function localAddressFacing (address: string, port: number): Promise<string> {
  const socket = dgram.createSocket(isIPv6(address) ? 'udp6' : 'udp4')
  try {
    return await new Promise<string>((resolve, reject) => {
      socket.once('error', (error) => { reject(new NetworkError(`no route to ${address}: ${error.message}`, { cause: error })) })
      socket.connect(port, address, () => { resolve(socket.address().address) })
    })
  } finally {
    closeQuietly(socket)
  }
}
