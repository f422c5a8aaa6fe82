import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { discoverNAT, type Mapping, type NAT } from '../index.js'
import { listenPortKey, listenPorts, type AddressWithType, type ListenPort } from './listen-addresses.js'
import type { ResolvedNatMapperInit } from './options.js'

/** What the service needs of libp2p's address manager; its AddressManager has all of it. */
export interface AddressAnnouncer {
  /** The node's addresses: the transport ones are the listen ports to map. */
  getAddressesWithMetadata: () => AddressWithType[]
  /** Announces an external address and port that leads to an internal one. */
  addPublicAddressMapping: (internalIp: string, internalPort: number, externalIp: string, externalPort?: number, protocol?: 'tcp' | 'udp') => void
  /** Withdraws what addPublicAddressMapping() announced. */
  removePublicAddressMapping: (internalIp: string, internalPort: number, externalIp: string, externalPort?: number, protocol?: 'tcp' | 'udp') => void
  /** Marks an address as verified (with `autoConfirmAddress`). */
  confirmObservedAddr: (addr: Multiaddr, options?: { ttl?: number }) => void
  /** Withdraws a confirmed address. */
  removeObservedAddr: (addr: Multiaddr) => void
}

/** An external address handed to the address manager, and the listen port it leads to. */
interface Announcement {
  internalHost: string
  internalPort: number
  externalAddress: string
  externalPort: number
  protocol: 'tcp' | 'udp'
}

interface Entry {
  port: ListenPort
  mapping: Mapping | undefined
  announced: Announcement | undefined
  /** The announcement autonat found unreachable and the mapping was recreated for: once each. */
  recreatedFor: Announcement | undefined
  /** Reconciliations run one at a time per entry, in order. */
  queue: Promise<void>
}

/** Confirmed addresses never expire on their own (as upnp-nat): the mapping's events withdraw them. */
const MAX_DATE = 8_640_000_000_000_000

/**
 * One address family's gateway: finds it (again and again while there is none), keeps one
 * mapping per eligible listen port on it, and keeps the address manager's view equal to what the
 * gateway granted: announces on establish, replaces on a changed port or address, withdraws on
 * loss, and withdraws everything and deletes the mappings on stop.
 */
export class FamilyGateway {
  readonly family: 'IPv4' | 'IPv6'
  readonly #init: ResolvedNatMapperInit
  readonly #description: string
  readonly #addressManager: AddressAnnouncer
  readonly #log: Logger
  readonly #shutdown = new AbortController()
  readonly #entries = new Map<string, Entry>()
  #nat: NAT | undefined
  #discovery: Promise<void> | undefined
  /** The non-public external address last logged, so a double NAT is logged once, not per mapping. */
  #doubleNatLogged: string | undefined

  constructor (family: 'IPv4' | 'IPv6', init: ResolvedNatMapperInit, description: string, addressManager: AddressAnnouncer, log: Logger) {
    this.family = family
    this.#init = init
    this.#description = description
    this.#addressManager = addressManager
    this.#log = log
  }

  /** The NAT once discovery found one. */
  get nat (): NAT | undefined {
    return this.#nat
  }

  /** Starts discovery in the background; mappings follow as soon as a gateway answers. */
  start (): void {
    this.#discovery ??= this.#discover()
  }

  /** The node's transport addresses may have changed: map what is new, close what is gone. */
  update (): void {
    const nat = this.#nat
    if (nat === undefined || this.#shutdown.signal.aborted) return
    const wanted = listenPorts(this.#addressManager.getAddressesWithMetadata(), new Set([nat.localAddress]))
      .filter((port) => port.family === this.family)
    const wantedKeys = new Set(wanted.map(listenPortKey))
    for (const [key, entry] of this.#entries) {
      if (wantedKeys.has(key)) continue
      this.#entries.delete(key)
      this.#reconcile(entry)
      entry.queue = entry.queue.then(async () => { await entry.mapping?.close() })
    }
    for (const port of wanted) {
      const key = listenPortKey(port)
      if (this.#entries.has(key)) continue
      const entry: Entry = { port, mapping: undefined, announced: undefined, recreatedFor: undefined, queue: Promise.resolve() }
      this.#entries.set(key, entry)
      entry.queue = this.#open(nat, entry)
    }
    this.#checkReachability()
  }

  /**
   * autonat's verdict on what we announced. js-libp2p 3's autonat has no event of its own: when
   * peers cannot dial an address back it calls `addressManager.removeObservedAddr()`, which leaves
   * our IP mapping unverified with a retry time (`expires` > 0; before any verdict it is 0) and,
   * if it was verified, fires `self:peer:update`. A mapping the router lists but no longer
   * forwards (Technicolor CGA4131COM, tailscale #21208; a firewall reload) looks exactly so, and
   * only a delete + add repairs it: recreate it, once per announcement, and say so.
   */
  #checkReachability (): void {
    if (this.#init.autoConfirmAddress) return
    const unreachable = new Set<string>()
    const verified = new Set<string>()
    for (const address of this.#addressManager.getAddressesWithMetadata()) {
      if (address.type !== 'ip-mapping') continue
      const key = externalKey(address.multiaddr)
      if (key === undefined) continue
      if (address.verified === true) verified.add(key)
      else if (address.expires !== undefined && address.expires > 0) unreachable.add(key)
    }
    for (const entry of this.#entries.values()) {
      const announced = entry.announced
      const mapping = entry.mapping
      if (announced === undefined || mapping === undefined) continue
      const key = `${announced.externalAddress}/${announced.protocol}/${announced.externalPort}`
      if (verified.has(key)) entry.recreatedFor = undefined
      if (!unreachable.has(key) || entry.recreatedFor === announced) continue
      entry.recreatedFor = announced
      this.#log('autonat found %s:%d/%s unreachable: the gateway may list the mapping without forwarding it; recreating it (delete + add)',
        announced.externalAddress, announced.externalPort, announced.protocol)
      entry.queue = entry.queue.then(async () => {
        try {
          await mapping.recreate()
          this.#log('recreated the mapping of %s:%d/%s', announced.externalAddress, announced.externalPort, announced.protocol)
        } catch (error) {
          if (!this.#shutdown.signal.aborted) this.#log.error('could not recreate the mapping of %s:%d/%s: %e', announced.externalAddress, announced.externalPort, announced.protocol, error)
        }
      })
    }
  }

  /** Withdraws every announced address, deletes every mapping at the gateway (bounded), stops discovery. */
  async stop (): Promise<void> {
    this.#shutdown.abort()
    for (const entry of this.#entries.values()) this.#reconcile(entry)
    await Promise.all([...this.#entries.values()].map(async (entry) => { await entry.queue }))
    this.#entries.clear()
    await this.#discovery
    await this.#nat?.close()
  }

  async #discover (): Promise<void> {
    const signal = this.#shutdown.signal
    let delay = this.#init.rediscoveryInterval
    while (!signal.aborted) {
      try {
        const gateway = this.#init.gateways[this.family]
        this.#nat = await discoverNAT({
          family: this.family,
          signal,
          ...(gateway === undefined ? {} : { gateway }),
          ...(this.#init.protocols === undefined ? {} : { protocols: this.#init.protocols }),
          ...(this.#init.mappingDuration === undefined ? {} : { mappingDuration: this.#init.mappingDuration }),
          ...(this.#init.discoveryTimeout === undefined ? {} : { timeout: this.#init.discoveryTimeout })
        })
        break
      } catch (error) {
        if (signal.aborted) return
        this.#log('no %s gateway (%s); looking again in %d ms', this.family, (error as Error).message, delay)
        await sleep(delay, undefined, { signal }).catch(() => {})
        delay = Math.min(delay * 2, this.#init.rediscoveryInterval * 10)
      }
    }
    const nat = this.#nat
    if (nat === undefined) return
    this.#log('%s gateway %s speaks %s; we are %s there', this.family, nat.gateway, nat.type, nat.localAddress)
    const onMappingNews = ({ mapping }: { mapping: Mapping }): void => { this.#onMappingNews(mapping) }
    // A verdict that came without self:peer:update (on an address never verified) is read at the next renewal.
    nat.on('mapping-renewed', () => { this.#checkReachability() })
    nat.on('mapping-established', onMappingNews)
    nat.on('mapping-changed', onMappingNews)
    nat.on('mapping-lost', onMappingNews)
    nat.on('gateway-changed', (event) => {
      this.#log('%s gateway is now %s over %s (%s)', this.family, event.gateway, event.type, event.reason)
      // Our address on the new link may differ, and with it the listen ports that qualify.
      this.update()
    })
    nat.on('gateway-reset', ({ reason }) => { this.#log('%s gateway lost its mappings (%s); re-creating them', this.family, reason) })
    this.update()
  }

  async #open (nat: NAT, entry: Entry): Promise<void> {
    const { protocol, port } = entry.port
    try {
      entry.mapping = await nat.newMapping(protocol, port, { description: this.#description, signal: this.#shutdown.signal })
    } catch (error) {
      if (!this.#shutdown.signal.aborted) this.#log.error('could not map %s port %d: %e', protocol, port, error)
      return
    }
    if (entry.mapping.lastError !== undefined) this.#log('%s port %d not mapped yet (%s); retrying', protocol, port, entry.mapping.lastError.message)
    // Events fired during newMapping() came before the entry knew its mapping: catch up now.
    await this.#reconciled(entry)
  }

  #onMappingNews (mapping: Mapping): void {
    for (const entry of this.#entries.values()) {
      if (entry.mapping === mapping) this.#reconcile(entry)
    }
  }

  #reconcile (entry: Entry): void {
    entry.queue = entry.queue.then(async () => { await this.#reconciled(entry) })
  }

  /** Makes what is announced for `entry` equal to what its mapping holds now. */
  async #reconciled (entry: Entry): Promise<void> {
    const target = await this.#announceable(entry)
    const current = entry.announced
    if (current !== undefined && target !== undefined && current.externalAddress === target.externalAddress && current.externalPort === target.externalPort) return
    if (current !== undefined) this.#withdraw(current)
    entry.announced = target
    if (target !== undefined) this.#announce(target)
  }

  /** What should be announced for `entry`: nothing while unmapped, stopped, removed, or behind a double NAT. */
  async #announceable (entry: Entry): Promise<Announcement | undefined> {
    const mapping = entry.mapping
    const live = (): boolean => !this.#shutdown.signal.aborted && this.#entries.get(listenPortKey(entry.port)) === entry
    if (mapping === undefined || !mapping.established || !live()) return undefined
    let external
    try {
      external = await mapping.externalAddr({ signal: this.#shutdown.signal })
    } catch {
      return undefined // lost or closed meanwhile; its next event brings us back
    }
    if (!live()) return undefined
    // IPv6 has no translation: the pinhole opens to the host's own global address, chosen by the NAT.
    if (this.family === 'IPv4' && !external.isPublic) {
      if (this.#doubleNatLogged !== external.address) {
        this.#doubleNatLogged = external.address
        this.#log.error('the gateway\'s external address %s is not public (double NAT or CGNAT): announcing no address through it', external.address)
      }
      return undefined
    }
    this.#doubleNatLogged = undefined
    return { internalHost: entry.port.host, internalPort: entry.port.port, externalAddress: external.address, externalPort: external.port, protocol: entry.port.protocol }
  }

  #announce (a: Announcement): void {
    this.#addressManager.addPublicAddressMapping(a.internalHost, a.internalPort, a.externalAddress, a.externalPort, a.protocol)
    if (this.#init.autoConfirmAddress) this.#addressManager.confirmObservedAddr(toMultiaddr(a), { ttl: MAX_DATE - Date.now() })
    this.#log('announced %s:%d/%s for %s:%d', a.externalAddress, a.externalPort, a.protocol, a.internalHost, a.internalPort)
  }

  #withdraw (a: Announcement): void {
    this.#addressManager.removePublicAddressMapping(a.internalHost, a.internalPort, a.externalAddress, a.externalPort, a.protocol)
    // A confirmed IPv6 pinhole address is also one of our transport addresses: unconfirm it too.
    if (this.#init.autoConfirmAddress) this.#addressManager.removeObservedAddr(toMultiaddr(a))
    this.#log('withdrew %s:%d/%s', a.externalAddress, a.externalPort, a.protocol)
  }
}

/** `address/protocol/port` of an `/ip4|ip6/<address>/tcp|udp/<port>/...` multiaddr, else undefined. */
function externalKey (ma: Multiaddr): string | undefined {
  const [ip, transport] = ma.getComponents()
  if (ip?.value === undefined || transport?.value === undefined || (transport.name !== 'tcp' && transport.name !== 'udp')) return undefined
  return `${ip.value}/${transport.name}/${transport.value}`
}

function toMultiaddr (a: Announcement): Multiaddr {
  return multiaddr(`/${a.externalAddress.includes(':') ? 'ip6' : 'ip4'}/${a.externalAddress}/${a.protocol}/${a.externalPort}`)
}
