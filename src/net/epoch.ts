import { monotonicMs } from './clock.js'

/**
 * Detects that a NAT-PMP or PCP gateway lost its mapping state (a reboot, a WAN address change)
 * from the epoch it puts in every reply (RFC 6886 §3.6, RFC 6887 §8.5). The gateway's epoch must
 * advance with our own clock; if it goes backwards, or advances much slower, its state was reset.
 */
export class EpochTracker {
  #previous: { serverSeconds: number, clientMs: number } | undefined

  /** The last epoch the gateway reported, undefined before the first reply. */
  get epochSeconds (): number | undefined {
    return this.#previous?.serverSeconds
  }

  /** Records an epoch; true when it shows the gateway lost its state since the previous one. */
  observe (serverSeconds: number, clientMs = monotonicMs()): boolean {
    const continuous = this.continues(serverSeconds, clientMs)
    this.#previous = { serverSeconds, clientMs }
    return !continuous
  }

  /**
   * Whether an epoch reported now follows from the last one recorded (true before the first),
   * without recording it: what an unauthenticated announcement says is compared, never kept.
   */
  continues (serverSeconds: number, clientMs = monotonicMs()): boolean {
    const previous = this.#previous
    if (previous === undefined) return true
    // RFC 6887 §8.5, with RFC 6886 §3.6's slack: one second backwards, or a clock running more
    // than 1/16 slower or faster than ours plus two seconds, means the epoch is not continuous.
    if (serverSeconds + 1 < previous.serverSeconds) return false
    const clientDelta = (clientMs - previous.clientMs) / 1000
    const serverDelta = serverSeconds - previous.serverSeconds
    return !(clientDelta + 2 < serverDelta - serverDelta / 16 || serverDelta + 2 < clientDelta - clientDelta / 16)
  }
}
