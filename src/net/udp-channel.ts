import type dgram from 'node:dgram'
import { DEFAULT_REQUEST_TIMEOUT } from '../constants.js'
import { abortedBy, type RequestOptions } from './request.js'
import { ClosedError, NetworkError, PortUnreachableError, TimeoutError } from '../errors.js'
import { loadDgram } from './dgram.js'
import { isIPv6, sameAddress } from './ip-address.js'
import { monotonicMs } from './clock.js'
import type { ExchangeCounters } from './counters.js'

/** Produces the wait before each retransmission; when it ends, sending stops but listening goes on. */
export type RetransmitSchedule = () => Iterator<number>

/**
 * How a channel reads its server's replies: each datagram is decoded once, and offered only to
 * the exchanges waiting under its key (a PCP nonce, a NAT-PMP opcode and port), not to all.
 */
export interface ReplyCodec<D> {
  /**
   * Decodes one datagram. A MalformedMessageError is remembered by every waiting exchange and the
   * wait goes on (a garbled datagram must not end an exchange a good reply could still finish);
   * any other error ends the oldest waiting exchange (a server that refuses our version).
   */
  decode: (bytes: Uint8Array) => D
  /** The key of the exchanges a reply may answer; undefined offers it to every waiting exchange. */
  keyOf: (reply: D) => string | undefined
}

export interface UdpRequest<D, T> {
  /** What to send; a function when the request must carry our own address (PCP's client address). */
  request: Uint8Array | ((localAddress: string) => Uint8Array)
  retransmit: RetransmitSchedule
  /** The key its replies are filed under (ReplyCodec.keyOf). */
  key: string
  /**
   * Looks at one decoded reply: returns the result to settle with, `undefined` when the reply is
   * not for this request (another request's, or a stale one), or throws to reject (a decoded
   * failure). A MalformedMessageError thrown here is remembered and the wait goes on.
   */
  accept: (reply: D) => T | undefined
}

/** The exchanges waiting under one signal, and its listener (added once `armed`). */
interface Watched<D> {
  waiting: Set<Pending<D>>
  onAbort: () => void
  kept: boolean
  armed: boolean
}

interface Pending<D> {
  what: string
  key: string
  bytes: Uint8Array
  accept: (reply: D) => unknown
  resolve: (value: unknown) => void
  reject: (error: Error) => void
  signal: AbortSignal | undefined
  timeout: number
  /** monotonicMs() at which it times out; Infinity for never. */
  deadline: number
  /** monotonicMs() at which it is sent again; Infinity once its schedule has ended. */
  nextSend: number
  delays: Iterator<number>
  lastMalformed?: Error
}

/** A timer may fire up to a millisecond before its time (it counts whole ms): that is on time. */
const TIMER_SLACK = 1

/**
 * One timer for the earliest of many moments (monotonicMs() ms). It is never cleared while
 * the channel is open: an exchange that settles early leaves it to fire, find nothing due and
 * be set for the next moment, which costs one wake-up every few seconds instead of a timer set
 * and cleared for every renewal. It never holds the process open (the socket does, while an
 * exchange waits).
 */
class EarliestTimer {
  at = Infinity
  #timer: NodeJS.Timeout | undefined
  readonly #fire: () => void

  constructor (fire: () => void) {
    this.#fire = fire
  }

  set (at: number): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.at = at
    if (at === Infinity) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.at = Infinity
      this.#fire()
    }, Math.max(0, at - monotonicMs()))
    this.#timer.unref()
  }
}

const isMalformed = (error: unknown): boolean => (error as { code?: string } | undefined)?.code === 'ERR_MALFORMED_MESSAGE'

/**
 * Request/response exchanges with one UDP server (a gateway's port 5351) over one connected
 * socket, kept for the client's life: a connected socket only hears its peer, and the kernel turns
 * an ICMP port unreachable into ECONNREFUSED, which ends every waiting exchange at once instead of
 * at its timeout. Several exchanges may wait at once; each reply is decoded once and goes to the
 * first exchange under its key that claims it. The socket holds the process open only while an
 * exchange waits.
 */
export class UdpChannel<D> {
  readonly address: string
  readonly port: number
  readonly #codec: ReplyCodec<D>
  readonly #trace: ((direction: 'send' | 'receive', bytes: Uint8Array) => void) | undefined
  /** Every waiting exchange, oldest first, and the same filed by key. */
  readonly #pending = new Set<Pending<D>>()
  readonly #byKey = new Map<string, Array<Pending<D>>>()
  /**
   * Waiting exchanges by the signal that may abort them, with the one listener on that signal. The
   * listener goes when the last of them settles, unless the signal came back (a mapping's, at
   * every renewal): then it stays until the signal aborts or the channel closes, which spares each
   * renewal adding and removing one. Signals outlive channels (a mapping's moves to new gateways,
   * each with a channel of its own), so close() takes every listener off.
   */
  readonly #bySignal = new Map<AbortSignal, Watched<D>>()
  /** Signals whose listener is to be added after this turn of the event loop (see #watch). */
  #toArm: AbortSignal[] = []
  /** Signals seen once here: seen again, their listener is kept. */
  readonly #seen = new WeakSet<AbortSignal>()
  readonly #deadlines = new EarliestTimer(() => { this.#expire() })
  readonly #resends = new EarliestTimer(() => { this.#retransmit() })
  #socket: Promise<dgram.Socket> | undefined
  #ready: dgram.Socket | undefined
  #closed = false
  readonly #bindAddress: string | undefined
  /** Where requests, retransmissions and timeouts are counted (the owning NAT's); none until set. */
  counters: ExchangeCounters | undefined

  /**
   * `bindAddress`: send from this address instead of the kernel's choice (IPv6: the stable global
   * address a pinhole is for, where the kernel would pick a temporary or link-local one).
   * `socket`: one already connected to `address`:`port` (discovery's, made to learn our address),
   * which the channel adopts and closes: the first exchange goes out without waiting for a socket.
   */
  constructor (address: string, port: number, codec: ReplyCodec<D>, trace?: (direction: 'send' | 'receive', bytes: Uint8Array) => void, bindAddress?: string, socket?: dgram.Socket) {
    this.address = address
    this.port = port
    this.#codec = codec
    this.#trace = trace
    this.#bindAddress = bindAddress
    if (socket !== undefined) {
      socket.removeAllListeners('error')
      this.#listen(socket)
      this.#ready = socket
      this.#socket = Promise.resolve(socket)
    }
  }

  /** Our address as the kernel chose it for this peer. */
  async localAddress (): Promise<string> {
    return (await this.#open()).address().address
  }

  /** Our port, held for the channel's life (the kernel picks an ephemeral one, >= 1024). */
  async localPort (): Promise<number> {
    return (this.#ready ?? await this.#open()).address().port
  }

  /**
   * Sends `request` (and its retransmissions) until a reply is accepted; rejects with TimeoutError
   * after `timeout` ms (default DEFAULT_REQUEST_TIMEOUT; Infinity for none), with AbortError when
   * `signal` aborts. Nothing of the exchange (timer, listener) outlives it.
   */
  async exchange<T> (what: string, request: UdpRequest<D, T>, options: RequestOptions): Promise<T> {
    const signal = options.signal
    if (this.#closed) throw new ClosedError('the client was closed')
    if (signal?.aborted === true) throw abortedBy(signal, () => `${what}: aborted`)
    const socket = this.#ready ?? await this.#open()
    // The signal may have aborted while the socket opened.
    if ((signal?.aborted as boolean | undefined) === true) throw abortedBy(signal, () => `${what}: aborted`)
    const bytes = typeof request.request === 'function' ? request.request(socket.address().address) : request.request
    const timeout = options.timeout ?? DEFAULT_REQUEST_TIMEOUT
    return await new Promise<T>((resolve, reject) => {
      const now = monotonicMs()
      const delays = request.retransmit()
      const first = delays.next()
      const pending: Pending<D> = {
        what,
        key: request.key,
        bytes,
        accept: request.accept,
        resolve: resolve as (value: unknown) => void,
        reject,
        signal,
        timeout,
        deadline: now + timeout,
        nextSend: first.done === true ? Infinity : now + first.value,
        delays
      }
      if (this.#pending.size === 0) socket.ref()
      this.#pending.add(pending)
      const filed = this.#byKey.get(request.key)
      if (filed === undefined) this.#byKey.set(request.key, [pending])
      else filed.push(pending)
      if (signal !== undefined) this.#watch(signal, pending)
      if (pending.deadline < this.#deadlines.at) this.#deadlines.set(pending.deadline)
      if (pending.nextSend < this.#resends.at) this.#resends.set(pending.nextSend)
      if (this.counters !== undefined) this.counters.requests++
      this.#send(socket, bytes)
    })
  }

  /**
   * Settles a waiting exchange (a reply, its deadline, an abort, a failure, close()); false when
   * it had already settled. With nothing left waiting, the timers stop.
   */
  #settle (pending: Pending<D>, error: Error | undefined, value?: unknown): boolean {
    if (!this.#pending.delete(pending)) return false
    const filed = this.#byKey.get(pending.key)
    if (filed !== undefined) {
      if (filed.length === 1) this.#byKey.delete(pending.key)
      else filed.splice(filed.indexOf(pending), 1)
    }
    if (pending.signal !== undefined) this.#unwatch(pending.signal, pending)
    if (this.#pending.size === 0 && !this.#closed) this.#ready?.unref()
    if (error === undefined) pending.resolve(value)
    else pending.reject(error)
    return true
  }

  /**
   * One abort listener per signal (a mapping's, kept across its renewals), not one per exchange:
   * it ends whichever of the signal's exchanges are waiting when it aborts. The listener is added
   * after this turn of the event loop, when the request is on the wire: the first
   * addEventListener() after an idle moment costs ~0.07 ms (Node's EventTarget code, cold), which
   * the gateway's answer can cover but the request cannot. An abort before then is found when
   * the listener would be added, and ends the exchange at that moment.
   */
  #watch (signal: AbortSignal, pending: Pending<D>): void {
    let watched = this.#bySignal.get(signal)
    if (watched === undefined) {
      const waiting = new Set<Pending<D>>()
      const onAbort = (): void => {
        this.#bySignal.delete(signal)
        for (const each of [...waiting]) this.#settle(each, abortedBy(signal, () => `${each.what}: aborted`))
      }
      const kept = this.#seen.has(signal)
      this.#seen.add(signal)
      watched = { waiting, onAbort, kept, armed: false }
      this.#bySignal.set(signal, watched)
      if (this.#toArm.push(signal) === 1) setImmediate(this.#arm)
    }
    watched.waiting.add(pending)
  }

  readonly #arm = (): void => {
    const signals = this.#toArm
    this.#toArm = []
    for (const signal of signals) {
      const watched = this.#bySignal.get(signal)
      // Gone: its exchanges settled (or the channel closed) first.
      if (watched === undefined || watched.armed) continue
      if (signal.aborted) {
        watched.onAbort()
        continue
      }
      signal.addEventListener('abort', watched.onAbort, { once: true })
      watched.armed = true
    }
  }

  #unwatch (signal: AbortSignal, pending: Pending<D>): void {
    const watched = this.#bySignal.get(signal)
    if (watched === undefined) return
    watched.waiting.delete(pending)
    if (watched.waiting.size > 0 || (watched.kept && !this.#closed)) return
    this.#bySignal.delete(signal)
    if (watched.armed) signal.removeEventListener('abort', watched.onAbort)
  }

  /**
   * One deadline timer for every waiting exchange, set for the earliest deadline: exchanges that
   * started together (renewals that fell due at once) share it, and a new one sets no timer.
   */
  #expire (): void {
    const now = monotonicMs() + TIMER_SLACK
    for (const pending of [...this.#pending]) {
      if (pending.deadline > now) continue
      if (this.counters !== undefined) this.counters.timeouts++
      this.#settle(pending, new TimeoutError(`${pending.what}: no answer within ${pending.timeout} ms${pending.lastMalformed === undefined ? '' : '; the last reply was malformed'}`,
        pending.lastMalformed === undefined ? undefined : { cause: pending.lastMalformed }))
    }
    this.#deadlines.set(Math.min(...[...this.#pending].map((pending) => pending.deadline)))
  }

  /** The same for retransmissions: each exchange keeps its own protocol schedule, under one timer. */
  #retransmit (): void {
    const socket = this.#ready
    const now = monotonicMs()
    for (const pending of this.#pending) {
      if (pending.nextSend > now + TIMER_SLACK) continue
      if (socket !== undefined) {
        if (this.counters !== undefined) this.counters.retransmissions++
        this.#send(socket, pending.bytes)
      }
      const delay = pending.delays.next()
      pending.nextSend = delay.done === true ? Infinity : now + delay.value
    }
    this.#resends.set(Math.min(...[...this.#pending].map((pending) => pending.nextSend)))
  }

  #send (socket: dgram.Socket, bytes: Uint8Array): void {
    this.#trace?.('send', bytes)
    // With a callback, Node reports a failed send to it rather than dropping it; one for every send.
    socket.send(bytes, this.#onSent)
  }

  readonly #onSent = (error: Error | null): void => {
    if (error !== null && error !== undefined) this.#fail(error as NodeJS.ErrnoException)
  }

  /** Ends every waiting exchange with ClosedError and closes the socket. Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    // Built only when an exchange is waiting to be told: most channels close idle.
    if (this.#pending.size > 0) {
      const closed = new ClosedError('the client was closed')
      for (const pending of [...this.#pending]) this.#settle(pending, closed)
    }
    for (const [signal, watched] of this.#bySignal) if (watched.armed) signal.removeEventListener('abort', watched.onAbort)
    this.#bySignal.clear()
    this.#deadlines.set(Infinity)
    this.#resends.set(Infinity)
    this.#socket?.then((socket) => { closeQuietly(socket) }, () => {})
  }

  async #open (): Promise<dgram.Socket> {
    if (this.#closed) throw new ClosedError('the client was closed')
    this.#socket ??= loadDgram().then(async (dgram) => await new Promise((resolve, reject) => {
      const socket = dgram.createSocket(isIPv6(this.address) ? 'udp6' : 'udp4')
      // A socket that cannot bind or connect (no route while the host changes networks, an
      // address that went away) is closed here: the next exchange opens a new one (found by the
      // soak: one socket leaked per failed attempt).
      socket.once('error', (error) => {
        closeQuietly(socket)
        reject(error)
      })
      const connect = (): void => {
        connectSocket(socket, this.port, this.address).then(() => {
          socket.removeAllListeners('error')
          this.#listen(socket)
          this.#ready = socket
          resolve(socket)
        }, (error: unknown) => {
          closeQuietly(socket)
          reject(error)
        })
      }
      if (this.#bindAddress === undefined) connect()
      else socket.bind({ address: this.#bindAddress, port: 0 }, connect)
    }))
    try {
      return await this.#socket
    } catch (error) {
      this.#socket = undefined
      throw new NetworkError(`cannot reach ${this.address}:${this.port}: ${(error as Error).message}`, { cause: error })
    }
  }

  /** Hears a connected socket's replies and failures; it holds the process open only while an exchange waits. */
  #listen (socket: dgram.Socket): void {
    socket.on('message', (message, remote) => {
      // connect() already filters by peer; checking again costs nothing and documents the rule.
      if (remote.port === this.port && sameAddress(remote.address, this.address)) this.#dispatch(message)
    })
    socket.on('error', (error) => { this.#fail(error) })
    socket.unref()
  }

  #dispatch (message: Uint8Array): void {
    this.#trace?.('receive', message)
    if (this.#pending.size === 0) return
    let reply: D
    try {
      reply = this.#codec.decode(message)
    } catch (error) {
      if (isMalformed(error)) {
        for (const pending of this.#pending) pending.lastMalformed = error as Error
      } else {
        const oldest = this.#pending.values().next().value
        if (oldest !== undefined) this.#settle(oldest, error as Error)
      }
      return
    }
    const key = this.#codec.keyOf(reply)
    const candidates = key === undefined ? this.#pending : this.#byKey.get(key)
    if (candidates === undefined) return
    for (const pending of candidates) {
      let result: unknown
      try {
        result = pending.accept(reply)
      } catch (error) {
        if (isMalformed(error)) {
          pending.lastMalformed = error as Error
          continue
        }
        this.#settle(pending, error as Error)
        return
      }
      if (result === undefined) continue
      this.#settle(pending, undefined, result)
      return
    }
  }

  /** A socket error ends every waiting exchange; ICMP port unreachable says nothing listens. */
  #fail (error: NodeJS.ErrnoException): void {
    if (error.code === 'ECONNREFUSED' && this.counters !== undefined) this.counters.refusals += this.#pending.size
    const failure = error.code === 'ECONNREFUSED'
      ? new PortUnreachableError(`${this.address}:${this.port} is not listening (ICMP port unreachable)`, { cause: error })
      : new NetworkError(`UDP exchange with ${this.address}:${this.port} failed: ${error.message}`, { cause: error })
    for (const pending of [...this.#pending]) this.#settle(pending, failure)
  }
}

/** Closing twice throws in node; a socket torn down by an error may already be closed. */
export function closeQuietly (socket: dgram.Socket): void {
  try { socket.close() } catch { /* already closed */ }
}

/**
 * A UDP socket connected to `address`:`port`, and our address facing it as the kernel chose it
 * (routing decides, nothing is sent). The caller owns the socket: a channel to that peer may adopt
 * it (UdpChannel's `socket`), else it must be closed. It never holds the process open by itself.
 */
export async function connectedSocket (address: string, port: number): Promise<{ socket: dgram.Socket, localAddress: string }> {
  const socket = (await loadDgram()).createSocket(isIPv6(address) ? 'udp6' : 'udp4')
  try {
    // Nothing is sent before a channel adopts it, but an error must never go unheard.
    socket.on('error', () => {})
    await connectSocket(socket, port, address)
    socket.unref()
    return { socket, localAddress: socket.address().address }
  } catch (error) {
    closeQuietly(socket)
    throw new NetworkError(`no route to ${address}: ${(error as Error).message}`, { cause: error })
  }
}

/**
 * connect() on a UDP socket (routing decides our address; nothing is sent). A failed connect
 * (ENETUNREACH: no route) reaches the callback, not 'error', and would otherwise leave an
 * unconnected socket on 0.0.0.0 that looks connected.
 */
export async function connectSocket (socket: dgram.Socket, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => { reject(error) }
    socket.once('error', onError)
    // Node passes the connect error to the callback, though its types say it takes none.
    const done = (...args: unknown[]): void => {
      socket.removeListener('error', onError)
      if (args[0] instanceof Error) reject(args[0])
      else resolve()
    }
    socket.connect(port, address, done)
  })
}

/** Our address facing `address` (routing decides; nothing is sent). */
export async function localAddressFacing (address: string, port: number): Promise<string> {
  const { socket, localAddress } = await connectedSocket(address, port)
  closeQuietly(socket)
  return localAddress
}
