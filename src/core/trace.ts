import { diagnosticsChannel } from '../builtins.js'
import type { WireProtocol } from '../errors.js'

/** One datagram or HTTP body on the wire, published on the `natmapper:wire` diagnostics channel. */
export interface WireMessage {
  protocol: WireProtocol
  direction: 'send' | 'receive'
  /** host:port of the other side. */
  peer: string
  bytes: Uint8Array
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

/**
 * A decision about what the gateway said that no message shows, published on the `natmapper:note`
 * diagnostics channel: the CLI's --verbose prints it among the messages (why an answer was refused).
 */
export interface WireNote {
  protocol: WireProtocol
  /** The gateway, as the wire messages name it. */
  peer: string
  text: string
}

export const noteChannel = diagnosticsChannel.channel('natmapper:note')

export function publishNote (protocol: WireProtocol, peer: string, text: string): void {
  if (noteChannel.hasSubscribers) noteChannel.publish({ protocol, peer, text } satisfies WireNote)
}
