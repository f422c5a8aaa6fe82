import dgram from 'node:dgram'
import { DEFAULT_REQUEST_TIMEOUT } from '../constants.js'
import type { RequestOptions } from '../core/gateway-client.js'
import { reasonOf, withDeadline } from '../core/deadline.js'
import { ClosedError, NetworkError, PortUnreachableError, TimeoutError } from '../errors.js'
import { isIPv6, sameAddress } from './ip-address.js'

/** Produces the wait before each retransmission; when it ends, sending stops but listening goes on. */
export type RetransmitSchedule = () => Iterator<number>

export interface UdpRequest<T> {
  /** What to send; a function when the request must carry our own address (PCP's client address). */
  request: Uint8Array | ((localAddress: string) => Uint8Array)
  retransmit: RetransmitSchedule
  /**
   * Looks at one reply: returns the result to settle with, `undefined` when the reply is not for
   * this request (another request's, or a stale one), or throws to reject (a decoded failure).
   * A MalformedMessageError thrown here is remembered and the wait goes on: a garbled datagram
   * must not end an exchange a good reply could still finish.
   */
  accept: (reply: Uint8Array) => T | undefined
}

interface Pending {
  accept: (reply: Uint8Array) => unknown
  resolve: (value: unknown) => void
  reject: (error: Error) => void
  lastMalformed?: Error
}

/**
 * Request/response exchanges with one UDP server (a gateway's port 5351) over one connected
 * socket, kept for the client's life: a connected socket only hears its peer, and the kernel turns
 * an ICMP port unreachable into ECONNREFUSED, which ends every waiting exchange at once instead of
 * at its timeout. Several exchanges may wait at once; each reply goes to the first whose `accept`
 * claims it. The socket holds the process open only while an exchange waits.
 */
export class UdpChannel {
  readonly address: string
  readonly port: number
  readonly #trace: ((direction: 'send' | 'receive', bytes: Uint8Array) => void) | undefined
  readonly #pending = new Set<Pending>()
  #socket: Promise<dgram.Socket> | undefined
  #closed = false
  readonly #bindAddress: string | undefined

  /**
   * `bindAddress`: send from this address instead of the kernel's choice (IPv6: the stable global
   * address a pinhole is for, where the kernel would pick a temporary or link-local one).
   */
  constructor (address: string, port: number, trace?: (direction: 'send' | 'receive', bytes: Uint8Array) => void, bindAddress?: string) {
    this.address = address
    this.port = port
    this.#trace = trace
    this.#bindAddress = bindAddress
  }

  /** Our address as the kernel chose it for this peer. */
  async localAddress (): Promise<string> {
    return (await this.#open()).address().address
  }

  /** Sends `request` (and its retransmissions) until a reply is accepted, bounded by the caller's deadline. */
  async exchange<T> (what: string, request: UdpRequest<T>, options: RequestOptions): Promise<T> {
    return await withDeadline(what, { ...options, timeout: options.timeout ?? DEFAULT_REQUEST_TIMEOUT }, async (signal) => {
      const socket = await this.#open()
      if (signal.aborted) throw reasonOf(signal)
      const bytes = typeof request.request === 'function' ? request.request(socket.address().address) : request.request
      let timer: NodeJS.Timeout | undefined
      let pending: Pending | undefined
      let onAbort: (() => void) | undefined
      try {
        return await new Promise<T>((resolve, reject) => {
          pending = { accept: request.accept, resolve: resolve as (value: unknown) => void, reject }
          const waiting = pending
          onAbort = () => {
            const reason = reasonOf(signal)
            reject(reason instanceof TimeoutError && waiting.lastMalformed !== undefined
              ? new TimeoutError(`${reason.message}; the last reply was malformed`, { cause: waiting.lastMalformed })
              : reason)
          }
          signal.addEventListener('abort', onAbort, { once: true })
          if (this.#pending.size === 0) socket.ref()
          this.#pending.add(pending)
          const delays = request.retransmit()
          const send = (): void => {
            this.#trace?.('send', bytes)
            socket.send(bytes, (error) => { if (error !== null && error !== undefined) this.#fail(error) })
            const next = delays.next()
            if (next.done !== true) timer = setTimeout(send, next.value)
          }
          send()
        })
      } finally {
        clearTimeout(timer)
        if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
        if (pending !== undefined) this.#pending.delete(pending)
        if (this.#pending.size === 0 && !this.#closed) socket.unref()
      }
    })
  }

  /** Ends every waiting exchange with ClosedError and closes the socket. Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    for (const pending of this.#pending) pending.reject(new ClosedError('the client was closed'))
    this.#pending.clear()
    this.#socket?.then((socket) => { closeQuietly(socket) }, () => {})
  }

  async #open (): Promise<dgram.Socket> {
    if (this.#closed) throw new ClosedError('the client was closed')
    this.#socket ??= new Promise((resolve, reject) => {
      const socket = dgram.createSocket(isIPv6(this.address) ? 'udp6' : 'udp4')
      socket.on('message', (message, remote) => {
        // connect() already filters by peer; checking again costs nothing and documents the rule.
        if (remote.port === this.port && sameAddress(remote.address, this.address)) this.#dispatch(message)
      })
      // A socket that cannot bind or connect (no route while the host changes networks, an
      // address that went away) is closed here: the next exchange opens a new one (found by the
      // soak: one socket leaked per failed attempt).
      socket.once('error', (error) => {
        closeQuietly(socket)
        reject(error)
      })
      const connect = (): void => {
        socket.connect(this.port, this.address, () => {
          socket.removeAllListeners('error')
          socket.on('error', (error) => { this.#fail(error) })
          socket.unref()
          resolve(socket)
        })
      }
      if (this.#bindAddress === undefined) connect()
      else socket.bind({ address: this.#bindAddress, port: 0 }, connect)
    })
    try {
      return await this.#socket
    } catch (error) {
      this.#socket = undefined
      throw new NetworkError(`cannot reach ${this.address}:${this.port}: ${(error as Error).message}`, { cause: error })
    }
  }

  #dispatch (message: Uint8Array): void {
    this.#trace?.('receive', message)
    for (const pending of this.#pending) {
      try {
        const result = pending.accept(message)
        if (result === undefined) continue
        pending.resolve(result)
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_MALFORMED_MESSAGE') {
          pending.lastMalformed = error as Error
          continue
        }
        pending.reject(error as Error)
      }
      this.#pending.delete(pending)
      return
    }
  }

  /** A socket error ends every waiting exchange; ICMP port unreachable says nothing listens. */
  #fail (error: NodeJS.ErrnoException): void {
    const failure = error.code === 'ECONNREFUSED'
      ? new PortUnreachableError(`${this.address}:${this.port} is not listening (ICMP port unreachable)`, { cause: error })
      : new NetworkError(`UDP exchange with ${this.address}:${this.port} failed: ${error.message}`, { cause: error })
    for (const pending of this.#pending) pending.reject(failure)
    this.#pending.clear()
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
