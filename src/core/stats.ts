import type { WireProtocol } from '../errors.js'
import type { ExchangeCounters } from '../net/counters.js'
import type { MappingEvents } from './events.js'
import type { CountersByProtocol, NatType } from './gateway-client.js'

/** How many answers one result code has had. */
export interface AnswerCount {
  /** The protocol's result code: PCP and NAT-PMP result codes, UPnP error codes; 0 is success. */
  code: number
  /** The protocol's name for it, e.g. `SUCCESS`, `NOT_AUTHORIZED`, `ConflictInMappingEntry`. */
  name: string
  /** How many answers carried it. */
  count: number
}

/** Counts for one protocol, since the NAT was made. Every field only grows. */
export interface ProtocolStats {
  /** Requests sent to the gateway (first transmissions; a UPnP SOAP call is one). */
  requests: number
  /** Datagrams sent again because no answer came yet (PCP, NAT-PMP). */
  retransmissions: number
  /** Requests that got no answer within their deadline. */
  timeouts: number
  /** Requests refused by the gateway's host (ICMP port unreachable, a TCP reset): the protocol is off there. */
  refusals: number
  /** Answers by result code, in the order the codes were first seen. */
  answers: AnswerCount[]
  /** Mappings granted for the first time. */
  mappingsEstablished: number
  /** Renewals that kept a mapping as it was. */
  mappingsRenewed: number
  /** Grants that moved a mapping to another external port or address. */
  mappingsChanged: number
  /** Attempts to create or renew that failed (each is retried). */
  mappingsFailed: number
  /** Mappings whose lease ran out before a renewal succeeded, or that moved to another gateway. */
  mappingsLost: number
  /** Mappings granted again after they had been lost. */
  mappingsRecovered: number
}

/** What `NAT.stats()` returns: plain numbers for one NAT (one address family), since it was made. */
export interface NatStats {
  /** The NAT's address family (one NAT per family). */
  family: 'IPv4' | 'IPv6'
  /** The protocol in use now. */
  type: NatType
  /** The gateway in use now. */
  gateway: string
  /** Milliseconds since the NAT was made. */
  uptimeMs: number
  /** Times the gateway lost its state (a restart seen in an epoch, an announcement, a BOOTID, a missing rule). */
  gatewayResets: number
  /** Times the NAT moved to another gateway or protocol. */
  gatewayChanges: number
  /** Milliseconds since the last successful answer from the gateway, in any protocol; undefined before the first. */
  sinceLastSuccessMs: number | undefined
  /** Counts per protocol; all three are present, zero where the protocol was never used. */
  protocols: Record<WireProtocol, ProtocolStats>
}

/** Beyond this many distinct result codes (a gateway inventing codes), answers are counted under the last one seen. */
const MAX_RESULT_CODES = 64

/** One protocol's counters, incremented in place by the channel, the client and the NAT. */
class ProtocolCounters implements ExchangeCounters {
  requests = 0
  retransmissions = 0
  timeouts = 0
  refusals = 0
  established = 0
  renewed = 0
  changed = 0
  failed = 0
  lost = 0
  recovered = 0
  readonly #answers = new Map<number, AnswerCount>()
  readonly #owner: NatCounters

  constructor (owner: NatCounters) {
    this.#owner = owner
  }

  answered (code: number, name: string): void {
    const entry = this.#answers.get(code)
    if (entry !== undefined) entry.count++
    else if (this.#answers.size < MAX_RESULT_CODES) this.#answers.set(code, { code, name, count: 1 })
    if (code === 0) this.#owner.lastSuccessAt = Date.now()
  }

  snapshot (): ProtocolStats {
    return {
      requests: this.requests,
      retransmissions: this.retransmissions,
      timeouts: this.timeouts,
      refusals: this.refusals,
      answers: [...this.#answers.values()].map((answer) => ({ ...answer })),
      mappingsEstablished: this.established,
      mappingsRenewed: this.renewed,
      mappingsChanged: this.changed,
      mappingsFailed: this.failed,
      mappingsLost: this.lost,
      mappingsRecovered: this.recovered
    }
  }
}

/**
 * A NAT's counters. Owned by the core: protocol clients count their exchanges through
 * `byProtocol` (GatewayClient.countInto), the NAT counts mapping events and gateway news here.
 */
export class NatCounters {
  readonly createdAt = Date.now()
  lastSuccessAt = 0
  gatewayResets = 0
  gatewayChanges = 0
  readonly #pcp = new ProtocolCounters(this)
  readonly #natPmp = new ProtocolCounters(this)
  readonly #upnp = new ProtocolCounters(this)
  readonly byProtocol: CountersByProtocol = { pcp: this.#pcp, 'nat-pmp': this.#natPmp, upnp: this.#upnp }

  /** Counts one mapping event, under the protocol in use. */
  mappingEvent<K extends keyof MappingEvents> (type: NatType, event: K, args: MappingEvents[K]): void {
    const counters = type === 'pcp' ? this.#pcp : type === 'nat-pmp' ? this.#natPmp : this.#upnp
    switch (event) {
      case 'established':
        if ((args as MappingEvents['established'])[0].recovered) counters.recovered++
        else counters.established++
        break
      case 'renewed': counters.renewed++; break
      case 'changed': counters.changed++; break
      case 'failed': counters.failed++; break
      case 'lost': counters.lost++; break
    }
  }

  snapshot (family: 'IPv4' | 'IPv6', type: NatType, gateway: string): NatStats {
    const now = Date.now()
    return {
      family,
      type,
      gateway,
      uptimeMs: now - this.createdAt,
      gatewayResets: this.gatewayResets,
      gatewayChanges: this.gatewayChanges,
      sinceLastSuccessMs: this.lastSuccessAt === 0 ? undefined : Math.max(0, now - this.lastSuccessAt),
      protocols: { pcp: this.#pcp.snapshot(), 'nat-pmp': this.#natPmp.snapshot(), upnp: this.#upnp.snapshot() }
    }
  }
}
