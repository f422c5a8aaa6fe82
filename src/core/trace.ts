import { diagnosticsChannel } from '../builtins.js'
import type { WireProtocol } from '../errors.js'

/** One datagram or HTTP body on the wire, published on the `natmapper:wire` diagnostics channel. */
export interface WireMessage {
  /** The protocol the message belongs to. */
  protocol: WireProtocol
  /** Whether natmapper sent it or received it. */
  direction: 'send' | 'receive'
  /** host:port of the other side. */
  peer: string
  /** The datagram, or the HTTP body, as it went over the wire. */
  bytes: Uint8Array
  /** Set on a message that was received and ignored: why (e.g. not from the gateway). */
  ignored?: string
}

/**
 * Observability without a logger dependency: subscribers (the CLI's --verbose, a user's
 * debugging session) see every message; with none, publishing costs one property read.
 */
export const wireChannel = diagnosticsChannel.channel('natmapper:wire')

export function wireTracer (protocol: WireProtocol, peer: string): (direction: 'send' | 'receive', bytes: Uint8Array) => void {
  return (direction, bytes) => {
    if (wireChannel.hasSubscribers) wireChannel.publish({ protocol, direction, peer, bytes } satisfies WireMessage)
  }
}
