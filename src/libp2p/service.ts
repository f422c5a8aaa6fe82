import { serviceCapabilities, serviceDependencies, type ComponentLogger, type Logger, type NodeInfo, type PeerId, type Startable } from '@libp2p/interface'
import type { NAT } from '../index.js'
import { FamilyGateway, type AddressAnnouncer } from './family-gateway.js'
import type { ResolvedNatMapperInit } from './options.js'

/** The libp2p components the service uses (libp2p's own Components have all of them). */
export interface NatMapperComponents {
  /** The node's peer id, in the default mapping description. */
  peerId: PeerId
  /** The node's name and version, in the default mapping description. */
  nodeInfo: NodeInfo
  /** Where the service logs (`libp2p:natmapper`). */
  logger: ComponentLogger
  /** Where the external addresses are announced and withdrawn. */
  addressManager: AddressAnnouncer
  /** The node's events: a change of its transport addresses makes the service map again. */
  events: Pick<EventTarget, 'addEventListener' | 'removeEventListener'>
}

/** Events after which the node's own transport addresses may differ. */
const ADDRESS_EVENTS = ['transport:listening', 'transport:close', 'self:peer:update'] as const

/**
 * The natMapper() service: maps the node's listen ports on the gateway of each family and
 * announces the external addresses through the address manager. See natMapper().
 */
export class NatMapperService implements Startable {
  /** The service's name in libp2p's logs and errors. */
  readonly [Symbol.toStringTag] = 'natmapper/libp2p'
  /** What the service provides, for services that depend on NAT traversal. */
  readonly [serviceCapabilities]: string[] = ['@libp2p/nat-traversal']

  readonly #components: NatMapperComponents
  readonly #init: ResolvedNatMapperInit
  readonly #log: Logger
  readonly #onAddressesChanged = (): void => { for (const gateway of this.#gateways) gateway.update() }
  #gateways: FamilyGateway[] = []
  #started = false

  constructor (components: NatMapperComponents, init: ResolvedNatMapperInit) {
    this.#components = components
    this.#init = init
    this.#log = components.logger.forComponent('libp2p:natmapper')
  }

  /** Mapped addresses are unverified until @libp2p/autonat confirms them, unless autoConfirmAddress is set (as upnp-nat). */
  get [serviceDependencies] (): string[] {
    return this.#init.autoConfirmAddress ? [] : ['@libp2p/autonat']
  }

  /** The NAT of each family whose gateway has been found (natmapper's NAT: its type, gateway, mappings, events). */
  get nats (): NAT[] {
    return this.#gateways.flatMap((gateway) => gateway.nat === undefined ? [] : [gateway.nat])
  }

  /** Whether start() ran and stop() has not. */
  isStarted (): boolean {
    return this.#started
  }

  /** Starts gateway discovery at once; the ports are mapped as soon as the transports listen. */
  async start (): Promise<void> {
    if (this.#started) return
    this.#started = true
    const { nodeInfo, peerId, addressManager } = this.#components
    const description = this.#init.description ?? `${nodeInfo.name}@${nodeInfo.version} ${peerId.toString()}`
    this.#gateways = this.#init.families.map((family) => new FamilyGateway(family, this.#init, description, addressManager, this.#log))
    for (const event of ADDRESS_EVENTS) this.#components.events.addEventListener(event, this.#onAddressesChanged)
    for (const gateway of this.#gateways) gateway.start()
  }

  /** The transports listen by now (libp2p starts them before afterStart). */
  afterStart (): void {
    this.#onAddressesChanged()
  }

  /** Withdraws every announced address and deletes every mapping at the gateway. Idempotent. */
  async stop (): Promise<void> {
    if (!this.#started) return
    for (const event of ADDRESS_EVENTS) this.#components.events.removeEventListener(event, this.#onAddressesChanged)
    const gateways = this.#gateways
    this.#gateways = []
    await Promise.all(gateways.map(async (gateway) => { await gateway.stop() }))
    this.#started = false
  }
}
