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

/**
 * A decision about what the gateway said that no message shows, published on the `natmapper:note`
 * diagnostics channel: the CLI's --verbose prints it among the messages (why an answer was refused).
 */
export interface WireNote {
  /** The protocol the decision belongs to. */
  protocol: WireProtocol
  /** The gateway, as the wire messages name it. */
  peer: string
  /** What was decided, and why, in one line. */
  text: string
}

/** The `natmapper:note` diagnostics channel: every WireNote is published on it. */
export const noteChannel = diagnosticsChannel.channel('natmapper:note')

/** Publishes a WireNote, when anyone listens. */
export function publishNote (protocol: WireProtocol, peer: string, text: string): void {
  if (noteChannel.hasSubscribers) noteChannel.publish({ protocol, peer, text } satisfies WireNote)
}
