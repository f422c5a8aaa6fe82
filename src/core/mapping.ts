import { EventEmitter } from '../builtins.js'
import { addressScope, isIPv6 } from '../net/ip-address.js'
import { AbortError, ClosedError, explainRefusal, MappingNotHeldError, NoMappingError } from '../errors.js'
import type { ResolvedMappingOptions } from '../options.js'
import { reasonOf } from './deadline.js'
import { debug } from '../debug.js'
import type { MappingEvents } from './events.js'
import type { GatewayClient, PortMappingGrant, PortMappingRequest, RequestOptions, TransportProtocol } from './gateway-client.js'
import type { RequestLimiter } from './limiter.js'
import type { NAT } from './nat.js'
import type { RenewalClock } from './renewal-clock.js'

/** Where a mapping is reachable, from `Mapping.externalAddr()`. */
export interface MappingAddress {
  /** The gateway's external address (IPv6: this host's own address, opened by a pinhole). */
  address: string
  /** The external port the gateway granted. */
  port: number
  /** The transport protocol mapped. */
  protocol: TransportProtocol
  /** The address family of `address`. */
  family: 'IPv4' | 'IPv6'
  /** False when the gateway's external address is not publicly routable (double NAT, CGNAT). */
  isPublic: boolean
}

/** What a Mapping needs from its NAT; kept narrow so the NAT's internals stay its own. */
export interface MappingHost {
  readonly nat: NAT
  readonly client: GatewayClient
  readonly limiter: RequestLimiter
  /** Shares timers between renewals that fall due together. */
  readonly clock: RenewalClock
  readonly mappingDuration: number
  readonly cacheTime: number
  readonly requestTimeout: number
  /** The NAT's cached external address, refreshed from the gateway when older than cacheTime. */
  externalAddress: (options: RequestOptions) => Promise<string>
  /** The NAT's last known external address, however old, without asking the gateway. */
  readonly knownExternalAddress: string | undefined
  /** Tells the NAT what a grant said the external address is. */
  noteExternalAddress: (address: string) => void
  /** Tells the NAT how a request went (undefined for success), so it can notice a dead gateway. */
  reportOutcome: (error: Error | undefined) => void
  /** What a failure means given the NAT's other requests (a gateway that refuses them all). */
  explainFailure: (error: Error) => Error
  emit: <K extends keyof MappingEvents>(event: K, ...args: MappingEvents[K]) => void
  forget: (mapping: Mapping) => void
}

/** The options of an attempt nobody waits for (a scheduled renewal, a renewal on a gateway's reset). */
const NO_OPTIONS: RequestOptions = Object.freeze({})

/** A renewal this long after the last grant must extend the lease by half of that, or it is taken as not extending it. */
const NON_EXTENSION_MIN_MS = 1_000

/** How long before a held lease ends a failed renewal is tried once more. */
const LAST_TRY_BEFORE_EXPIRY = 500

/** The first retry after a failure; doubles up to a third of the mapping duration. */
const FIRST_RETRY_DELAY = 1_000

/** The wait before the next request after `failures` failed ones in a row (a mapping's, the NAT's address query). */
export function retryDelay (failures: number, mappingDuration: number): number {
  return Math.min(FIRST_RETRY_DELAY * 2 ** (failures - 1), mappingDuration / 3)
}

/**
 * One port mapping, kept alive until closed. It always tells the current truth: what the gateway
 * last granted, whether that grant is still valid, and the last error.
 */
export class Mapping extends EventEmitter<MappingEvents> {
  /** The NAT that holds this mapping. */
  readonly nat: NAT
  /** The transport protocol mapped. */
  readonly protocol: TransportProtocol
  /** The port on this host that the mapping leads to. */
  readonly internalPort: number
  /** The description sent to the gateway (UPnP shows it in its mapping table). */
  readonly description: string

  readonly #host: MappingHost
  readonly #requestedExternalPort: number
  /** The last grant, kept after it runs out: its protocol state (a PCP nonce) and port are reused. */
  #grant: PortMappingGrant | undefined
  /** When the last grant runs out (ms since the epoch); 0 while nothing is granted. */
  #validUntil = 0
  /** When the last grant arrived (ms since the epoch). */
  #grantedAt = 0
  #lastError: Error | undefined
  #failures = 0
  #renewals = 0
  /** Whether the gateway ever granted this mapping: a grant after that is a recovery. */
  #everEstablished = false
  /** Cancels the next scheduled attempt. */
  #cancelTimer: (() => void) | undefined
  /** Set while an attempt runs: the controller that ends it (close(), a move to another gateway). */
  #attempt: AbortController | undefined
  /** Reused by every attempt until one is cut short, so a renewal allocates no controller of its own. */
  #cancel = new AbortController()
  #inFlight: Promise<void> | undefined
  #closing: Promise<void> | undefined
  /** The next scheduled attempt deletes the mapping at the gateway before it maps it again (a renewal that did not extend the lease). */
  #recreateNext = false

  /** @internal Created by NAT.newMapping(). */
  constructor (host: MappingHost, options: ResolvedMappingOptions) {
    super()
    this.#host = host
    this.nat = host.nat
    this.protocol = options.protocol
    this.internalPort = options.internalPort
    this.description = options.description
    this.#requestedExternalPort = options.externalPort
  }

  /** The external port while the mapping is established, else 0. */
  get externalPort (): number {
    return this.established ? (this.#grant?.externalPort ?? 0) : 0
  }

  /** True while the gateway's last grant is in force. */
  get established (): boolean {
    return this.#closing === undefined && this.#grant !== undefined && Date.now() < this.#validUntil
  }

  /** The error of the last failed attempt, cleared by the next success. */
  get lastError (): Error | undefined {
    return this.#lastError
  }

  /** When the current lease runs out, or undefined while not established. Infinity for a permanent lease. */
  get expiresAt (): Date | number | undefined {
    if (!this.established) return undefined
    return Number.isFinite(this.#validUntil) ? new Date(this.#validUntil) : Infinity
  }

  /** How many renewals the gateway has granted since the mapping was established. */
  get renewals (): number {
    return this.#renewals
  }

  /** Whether close() was called (on the mapping or its NAT). */
  get closed (): boolean {
    return this.#closing !== undefined
  }

  /**
   * The external address and port, the address trusted for cacheTime. Rejects with NoMappingError
   * while the mapping is not established. While its retries back off after a failure, this asks
   * the gateway nothing more (PCP: the last grant's address; else see NAT.externalAddress()).
   */
  async externalAddr (options: RequestOptions = {}): Promise<MappingAddress> {
    if (!this.established) {
      throw new NoMappingError(this.closed ? 'mapping is closed' : 'mapping not established', { cause: this.#lastError })
    }
    let address: string
    if (this.reportsAddress) {
      // The gateway reports the address with each grant (PCP): a renewal is the way to ask again,
      // unless the last attempt failed: the retry on its back-off asks then, and a caller who
      // polls must not turn every poll into a request (a refused port answers each at once).
      if (Date.now() - this.#grantedAt >= this.#host.cacheTime && this.#failures === 0) await this.#renewWith(options).catch(() => {})
      address = this.#grant?.externalAddress ?? ''
    } else {
      address = await this.#host.externalAddress(options)
    }
    const grant = this.#grant
    // The mapping may have been lost or closed while we waited.
    if (!this.established || grant === undefined) throw new NoMappingError('mapping lost while fetching its address', { cause: this.#lastError })
    const scope = addressScope(address)
    return {
      address,
      port: grant.externalPort,
      protocol: this.protocol,
      family: isIPv6(address) ? 'IPv6' : 'IPv4',
      isPublic: scope === 'public'
    }
  }

  /** @internal Whether the gateway reports the external address with each grant (PCP does). */
  get reportsAddress (): boolean {
    return this.#grant?.externalAddress !== undefined
  }

  /** @internal When the last grant arrived (ms since the epoch; 0 before the first). */
  get grantedAt (): number {
    return this.#grantedAt
  }

  /** @internal Renew now (a gateway reset, an address change), unless an attempt is already running. */
  renewNow (): void {
    if (this.#closing !== undefined || this.#attempt !== undefined) return
    this.#clearTimer()
    this.#renew(NO_OPTIONS).catch(() => { /* recorded in lastError and the 'failed' event */ })
  }

  /**
   * @internal The NAT moved to another gateway: what was granted here means nothing there. Returns
   * the old grant so the NAT can delete it at the old gateway, and starts over on the new one.
   */
  moveToNewGateway (): PortMappingGrant | undefined {
    const grant = this.#validUntil > Date.now() ? this.#grant : undefined
    const wasEstablished = this.established
    this.#grant = undefined
    this.#validUntil = 0
    if (this.#attempt !== undefined) {
      this.#attempt.abort(new ClosedError('moved to another gateway'))
      this.#cancel = new AbortController()
      this.#attempt = undefined
    }
    if (wasEstablished) this.#host.emit('lost', { mapping: this, error: undefined })
    this.renewNow()
    return grant
  }

  /** @internal The NAT learned a new external address; tell listeners of mappings that share it. */
  externalAddressChanged (previous: string, address: string): void {
    const grant = this.#grant
    if (!this.established || grant === undefined || this.reportsAddress) return
    this.#host.emit('changed', { mapping: this, address, port: grant.externalPort, previousAddress: previous, previousPort: grant.externalPort })
  }

  /**
   * Deletes the mapping at the gateway and maps it again at once, asking for the same external
   * port: for a router that keeps a mapping listed (and renews it) but no longer forwards to it,
   * which only a new rule repairs (Technicolor CGA4131COM, tailscale #21208; a firewall reload on
   * the router). Call it when something outside tells you the mapping is unreachable. Connections
   * already established through the mapping survive (the router's connection tracking keeps
   * them). Resolves once mapped again; rejects with the gateway's error (also in `lastError` and
   * the `failed` event), after which the mapping keeps retrying as usual.
   */
  async recreate (options: RequestOptions = {}): Promise<void> {
    if (this.#closing !== undefined) throw new ClosedError('mapping is closed')
    // After any attempt in flight, so that what is deleted is the last grant.
    await this.#inFlight?.catch(() => {})
    if (this.#closing !== undefined) throw new ClosedError('mapping is closed')
    this.#clearTimer()
    await this.#runAttempt(options, true)
  }

  /** Deletes the mapping at the gateway and stops renewing it. Idempotent. */
  async close (): Promise<void> {
    await this.release(undefined)
  }

  /**
   * @internal The first attempt, run by NAT.newMapping(): resolves whether or not it succeeded;
   * rejects only when the caller aborted.
   */
  async start (options: RequestOptions): Promise<void> {
    try {
      await this.#renewWith(options)
    } catch (error) {
      if (error instanceof AbortError && options.signal?.aborted === true) {
        await this.release(undefined).catch(() => {})
        throw error
      }
    }
  }

  /** @internal Stops renewing and deletes the mapping at the gateway, bounded by `signal`. */
  async release (signal: AbortSignal | undefined): Promise<void> {
    this.#closing ??= this.#release(signal)
    await this.#closing
  }

  async #release (signal: AbortSignal | undefined): Promise<void> {
    this.#clearTimer()
    this.#cancel.abort(new ClosedError('mapping closed'))
    this.#host.forget(this)
    const grant = this.#grant
    const held = grant !== undefined && this.#validUntil > Date.now()
    this.#validUntil = 0
    if (grant === undefined || !held) return
    const options = { timeout: this.#host.requestTimeout, ...(signal === undefined ? {} : { signal }) }
    await this.#host.limiter.run(async () => { await this.#host.client.unmap(grant, options) }, signal, 'urgent')
  }

  /** Runs an attempt now, or joins the one in flight. */
  async #renewWith (options: RequestOptions): Promise<void> {
    if (this.#inFlight !== undefined) return await this.#inFlight
    this.#clearTimer()
    await this.#renew(options)
  }

  /** One attempt to create or renew, then the next one scheduled from what the gateway said. */
  async #renew (options: RequestOptions): Promise<void> {
    if (this.#closing !== undefined) return
    const anew = this.#recreateNext
    this.#recreateNext = false
    await this.#runAttempt(options, anew)
  }

  /** Runs one attempt as the one in flight, which later callers join (see #renewWith). */
  async #runAttempt (options: RequestOptions, anew: boolean): Promise<void> {
    const run = this.#attemptOnce(options, anew)
    this.#inFlight = run
    try {
      await run
    } finally {
      if (this.#inFlight === run) this.#inFlight = undefined
    }
  }

  /** One request to the gateway; `anew` deletes the held grant first and maps as if for the first time. */
  async #attemptOnce (options: RequestOptions, anew = false): Promise<void> {
    const attempt = this.#cancel
    this.#attempt = attempt
    const previous = this.#grant
    const wasEstablished = this.established
    // The grant belongs to the gateway asked, even if the NAT moves to another meanwhile.
    const client = this.#host.client
    try {
      // The client bounds its own request; the attempt's signal lets close() and moves cut it short.
      const signal = options.signal === undefined ? attempt.signal : AbortSignal.any([options.signal, attempt.signal])
      const request = this.#requestFor(previous)
      const requestOptions = { signal, timeout: options.timeout ?? this.#host.requestTimeout }
      const priority = wasEstablished ? 'urgent' : 'normal'
      if (anew && previous !== undefined && this.#validUntil > Date.now()) {
        await this.#host.limiter.run(async () => { await client.unmap(previous, requestOptions) }, signal, priority)
      }
      const grant = await this.#host.limiter.run(() => client.map(request, anew ? undefined : previous, requestOptions), signal, priority)
      if (this.#closing !== undefined || attempt.signal.aborted) {
        // Granted after we stopped wanting it: delete it rather than leave a rule behind (on a
        // router that grants only permanent leases it would stay forever).
        await client.unmap(grant, { timeout: this.#host.requestTimeout }).catch(() => {})
        return
      }
      this.#host.reportOutcome(undefined)
      this.#granted(grant, previous, wasEstablished)
    } catch (caught) {
      if (this.#closing !== undefined || attempt.signal.aborted) return
      const explained = explainRefusal(caught, this.internalPort, previous?.externalPort ?? this.#requestedExternalPort)
      const failure = explained instanceof Error ? explained : reasonOf(attempt.signal)
      this.#host.reportOutcome(failure)
      const error = this.#host.explainFailure(failure)
      this.#failed(error)
      throw error
    } finally {
      if (this.#attempt === attempt) this.#attempt = undefined
    }
  }

  /** What the next attempt asks the gateway for, given the last grant. */
  #requestFor (previous: PortMappingGrant | undefined): PortMappingRequest {
    return {
      protocol: this.protocol,
      internalPort: this.internalPort,
      // Ask for what we hold (or held) so that a renewal never moves the port (RFC 6887 §11.3).
      suggestedExternalPort: previous?.externalPort ?? this.#requestedExternalPort,
      ...(previous?.externalAddress === undefined ? {} : { suggestedExternalAddress: previous.externalAddress }),
      lifetimeSeconds: Math.ceil(this.#host.mappingDuration / 1000),
      description: this.description
    }
  }

  #granted (grant: PortMappingGrant, previous: PortMappingGrant | undefined, wasEstablished: boolean): void {
    const now = Date.now()
    const extendedBy = (grant.lifetimeSeconds === 0 ? Infinity : now + grant.lifetimeSeconds * 1000) - this.#validUntil
    const sinceLastGrant = now - this.#grantedAt
    this.#grant = grant
    this.#grantedAt = now
    this.#validUntil = grant.lifetimeSeconds === 0 ? Infinity : now + grant.lifetimeSeconds * 1000
    this.#lastError = undefined
    this.#failures = 0
    const previousAddress = previous?.externalAddress ?? this.#host.knownExternalAddress
    // PCP reports the address per mapping; otherwise the NAT's last known one is the mapping's.
    const address = grant.externalAddress ?? this.#host.knownExternalAddress

    if (!wasEstablished) {
      this.#renewals = 0
      const recovered = this.#everEstablished
      this.#everEstablished = true
      this.#host.emit('established', { mapping: this, address, port: grant.externalPort, lifetimeSeconds: grant.lifetimeSeconds, recovered })
    } else if (previous !== undefined && (previous.externalPort !== grant.externalPort || previousAddress !== address)) {
      this.#renewals++
      this.#host.emit('changed', { mapping: this, address, port: grant.externalPort, previousAddress, previousPort: previous.externalPort })
    } else {
      this.#renewals++
      this.#host.emit('renewed', { mapping: this, lifetimeSeconds: grant.lifetimeSeconds })
    }

    // After the events: the NAT may renew every mapping when the address moved.
    if (grant.externalAddress !== undefined) this.#host.noteExternalAddress(grant.externalAddress)

    // A renewal should move the lease's end by about the time since the last grant. One that
    // leaves the old end in place (Tomato's miniupnpd, miniupnp issues 131 and 199; seen where the
    // gateway reports the lease, PCP and NAT-PMP) lets the mapping die although every renewal
    // "succeeded": recreate it now.
    if (wasEstablished && Number.isFinite(extendedBy) && sinceLastGrant >= NON_EXTENSION_MIN_MS && extendedBy < sinceLastGrant / 2) {
      debug('%s %d: the renewal left the lease ending in %d s: recreating the mapping', this.protocol, this.internalPort, grant.lifetimeSeconds)
      this.#recreateNext = true
      this.#schedule(0, false)
      return
    }
    // Renew at a third of the duration we asked for, or at half of a shorter lease the gateway granted.
    const leaseMs = grant.lifetimeSeconds === 0 ? Infinity : grant.lifetimeSeconds * 1000
    this.#schedule(Math.min(this.#host.mappingDuration / 3, leaseMs / 2), true)
  }

  #failed (error: Error): void {
    this.#lastError = error
    this.#failures++
    // The gateway said it granted the mapping but does not hold it: what we hold is nothing, now.
    if (error instanceof MappingNotHeldError && this.#validUntil > Date.now()) this.#validUntil = Date.now()
    const lost = this.#grant !== undefined && this.#validUntil !== 0 && Date.now() >= this.#validUntil
    this.#host.emit('failed', { mapping: this, error })
    if (lost) {
      this.#validUntil = 0
      this.#host.emit('lost', { mapping: this, error })
    }
    const backoff = retryDelay(this.#failures, this.#host.mappingDuration)
    // Never let a held lease run out while waiting to retry: try once more just before it ends
    // (once: within the last half second the back-off holds, or a gateway refusing every
    // renewal then would get one request per millisecond until the lease ended).
    const untilExpiry = this.#validUntil - Date.now()
    this.#schedule(untilExpiry > LAST_TRY_BEFORE_EXPIRY ? Math.min(backoff, untilExpiry - LAST_TRY_BEFORE_EXPIRY) : backoff, false)
  }

  /**
   * The next attempt after `delay` ms. A renewal of a held grant (`shared`) may share a timer
   * with others due about then (RenewalClock); a retry keeps its exact back-off.
   */
  #schedule (delay: number, shared: boolean): void {
    this.#clearTimer()
    if (this.#closing !== undefined) return
    if (shared) {
      this.#cancelTimer = this.#host.clock.schedule(delay, this.#onDue)
    } else {
      const timer = setTimeout(this.#onDue, delay)
      // Renewals must not keep a process alive on their own: the caller's server does that.
      timer.unref()
      this.#cancelTimer = () => { clearTimeout(timer) }
    }
  }

  /** The scheduled attempt (one function for the mapping's life: it is scheduled at every renewal). */
  readonly #onDue = (): void => {
    this.#cancelTimer = undefined
    this.#checkExpiry()
    this.#renew(NO_OPTIONS).catch(() => { /* recorded in lastError and the 'failed' event */ })
  }

  #clearTimer (): void {
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
  }

  /** A lease can run out between attempts (a gateway that granted less than we asked for). */
  #checkExpiry (): void {
    if (this.#grant !== undefined && this.#validUntil !== 0 && Date.now() >= this.#validUntil) {
      this.#validUntil = 0
      this.#host.emit('lost', { mapping: this, error: this.#lastError })
    }
  }
}
