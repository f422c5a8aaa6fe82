import { EventEmitter } from 'node:events'
import { ClosedError, TimeoutError, UnsupportedError } from '../errors.js'
import { resolveMappingOptions, type MappingOptions, type ResolvedDiscoverOptions } from '../options.js'
import { withDeadline } from './deadline.js'
import type { MappingEvents, NatEvents } from './events.js'
import type { GatewayClient, GatewayMappingEntry, NatType, RequestOptions, TransportProtocol } from './gateway-client.js'
import { RequestLimiter } from './limiter.js'
import { Mapping, type MappingHost } from './mapping.js'

/** What discovery learned along with the client, to save the first requests. */
export interface DiscoveredGateway {
  client: GatewayClient
  /** The external address, if the probe already asked for it. */
  externalAddress?: string
}

/**
 * A NAT gateway and the mappings natmapper keeps open on it: a long-running service that renews
 * every mapping until the mapping or the NAT is closed. Created by discoverNAT().
 */
export class NAT extends EventEmitter<NatEvents> implements AsyncDisposable {
  /** The protocol in use. */
  readonly type: NatType
  /** The gateway's address. */
  readonly gateway: string
  /** Our address on the link facing the gateway (the internal client of every mapping). */
  readonly localAddress: string

  readonly #client: GatewayClient
  readonly #options: ResolvedDiscoverOptions
  readonly #limiter: RequestLimiter
  readonly #mappings = new Set<Mapping>()
  readonly #host: MappingHost
  #address: { value: string, at: number } | undefined
  #addressQuery: Promise<string> | undefined
  #closing: Promise<void> | undefined

  /** @internal Created by discoverNAT(). */
  constructor (discovered: DiscoveredGateway, options: ResolvedDiscoverOptions) {
    super()
    this.#client = discovered.client
    this.#options = options
    this.#limiter = new RequestLimiter(options.maxConcurrentRequests)
    this.type = discovered.client.type
    this.gateway = discovered.client.gateway
    this.localAddress = discovered.client.localAddress
    if (discovered.externalAddress !== undefined) this.#address = { value: discovered.externalAddress, at: Date.now() }
    this.#host = {
      nat: this,
      client: this.#client,
      limiter: this.#limiter,
      mappingDuration: options.mappingDuration,
      cacheTime: options.cacheTime,
      requestTimeout: options.requestTimeout,
      externalAddress: async (requestOptions) => await this.externalAddress(requestOptions),
      noteExternalAddress: (address) => { this.#noteExternalAddress(address) },
      emit: (event, ...args) => { this.#emitMappingEvent(event, ...args) },
      forget: (mapping) => { this.#mappings.delete(mapping) }
    }
  }

  /** The most requests that were ever in flight toward the gateway at once. */
  get peakRequestsInFlight (): number {
    return this.#limiter.peak
  }

  get closed (): boolean {
    return this.#closing !== undefined
  }

  /**
   * Maps `internalPort` on this host to an external port on the gateway and keeps it mapped.
   * Resolves after the first attempt whether or not the gateway granted it: ask the Mapping
   * (`established`, `externalAddr()`, `lastError`) or listen to its events for the current truth.
   */
  async newMapping (protocol: TransportProtocol, internalPort: number, options: MappingOptions = {}): Promise<Mapping> {
    const resolved = resolveMappingOptions(protocol, internalPort, options)
    if (this.closed) throw new ClosedError('NAT is closed')
    const mapping = new Mapping(this.#host, resolved)
    this.#mappings.add(mapping)
    await mapping.start({
      ...(resolved.signal === undefined ? {} : { signal: resolved.signal }),
      ...(resolved.timeout === undefined ? {} : { timeout: resolved.timeout })
    })
    return mapping
  }

  /** The mappings that are open (not closed) on this NAT. */
  mappings (): Mapping[] {
    return [...this.#mappings]
  }

  /** The gateway's external address, cached for cacheTime; concurrent callers share one request. */
  async externalAddress (options: RequestOptions = {}): Promise<string> {
    if (this.closed) throw new ClosedError('NAT is closed')
    const cached = this.#address
    if (cached !== undefined && Date.now() - cached.at < this.#options.cacheTime) return cached.value
    this.#addressQuery ??= this.#limiter.run(async () =>
      await this.#client.externalAddress({ timeout: this.#options.requestTimeout })
    ).then((address) => {
      this.#noteExternalAddress(address)
      return address
    }).finally(() => { this.#addressQuery = undefined })
    // The shared query has its own bound; this caller may give up sooner without cancelling it.
    const query = this.#addressQuery
    return await withDeadline('external address', options, async () => await query)
  }

  /**
   * Deletes a mapping this NAT object does not hold (made by another process or an earlier run).
   * Rejects with UnsupportedError where the protocol cannot (PCP ties a mapping to its creator's nonce).
   */
  async deleteMapping (protocol: TransportProtocol, internalPort: number, options: RequestOptions & { externalPort?: number } = {}): Promise<void> {
    const resolved = resolveMappingOptions(protocol, internalPort, { ...(options.externalPort === undefined ? {} : { externalPort: options.externalPort }) })
    if (this.closed) throw new ClosedError('NAT is closed')
    if (this.#client.deleteMapping === undefined) throw new UnsupportedError(`${this.type} cannot delete a mapping made by another client`)
    await this.#client.deleteMapping(resolved.protocol, resolved.internalPort, resolved.externalPort, { timeout: this.#options.requestTimeout, ...options })
  }

  /** The gateway's mapping table. Rejects with UnsupportedError where the protocol cannot list it (PCP, NAT-PMP). */
  async listGatewayMappings (options: RequestOptions = {}): Promise<GatewayMappingEntry[]> {
    if (this.closed) throw new ClosedError('NAT is closed')
    if (this.#client.listMappings === undefined) throw new UnsupportedError(`${this.type} gateways cannot list their mappings`)
    return await this.#client.listMappings({ timeout: this.#options.requestTimeout, ...options })
  }

  /** Deletes every mapping at the gateway (bounded by closeTimeout) and releases everything. Idempotent. */
  async close (): Promise<void> {
    this.#closing ??= this.#close()
    await this.#closing
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  async #close (): Promise<void> {
    const deadline = new AbortController()
    const timer = setTimeout(() => { deadline.abort(new TimeoutError(`close: mappings not deleted within ${this.#options.closeTimeout} ms`)) }, this.#options.closeTimeout)
    try {
      await Promise.allSettled([...this.#mappings].map(async (mapping) => { await mapping.release(deadline.signal) }))
    } finally {
      clearTimeout(timer)
      this.#mappings.clear()
      await this.#client.close()
    }
  }

  #noteExternalAddress (address: string): void {
    const previous = this.#address?.value
    this.#address = { value: address, at: Date.now() }
    if (previous !== undefined && previous !== address) this.emit('external-address-changed', { address, previous })
  }

  #emitMappingEvent<K extends keyof MappingEvents> (event: K, ...args: MappingEvents[K]): void {
    const mapping = args[0].mapping
    ;(mapping.emit as (event: K, ...args: MappingEvents[K]) => boolean)(event, ...args)
    ;(this.emit as (event: `mapping-${K}`, ...args: MappingEvents[K]) => boolean)(`mapping-${event}`, ...args)
  }
}
