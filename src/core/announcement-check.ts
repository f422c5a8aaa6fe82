import { monotonicMs } from '../net/clock.js'
import type { Mapping } from './mapping.js'

/**
 * At most one check of the gateway per this many ms, however many announcements arrive: a router
 * takes longer than that to restart, so announcements closer together are one event.
 */
export const ANNOUNCEMENT_CHECK_INTERVAL = 1_000
/**
 * Renewals after announcements the check could not confirm (see below) draw on a bucket of this
 * many, refilled this many a second: a restart after a quiet time renews up to 100 mappings at
 * once, as every announcement did before; a flood of them costs at most 5 renewals a second.
 */
export const UNCONFIRMED_RENEWALS_BURST = 100
export const UNCONFIRMED_RENEWALS_PER_SECOND = 5
/** How often the paced renewals look for tokens. */
const PACING_TICK = 200

export interface AnnouncementCheckHost {
  /**
   * Asks the gateway once whether its epoch went back or its address changed; true when it did
   * (the NAT has then renewed every mapping itself).
   */
  check: () => Promise<boolean>
  mappings: () => Iterable<Mapping>
  /** The check found nothing, yet an announcement's epoch continued: every mapping is renewed (paced). */
  unconfirmedReset: (reason: string) => void
}

/**
 * What a NAT-PMP or PCP announcement makes the NAT do. Anyone on the LAN can send one with the
 * gateway's source address, and renewing every mapping on each turned natmapper into an amplifier
 * aimed at the router (issue 20: five spoofed pairs a second gave 45 resets in 3 s). So an
 * announcement only makes the NAT ask the gateway (one request, at most one a second): a reset
 * shows in the epoch of its reply, and a new address in the address. An announcement whose own
 * epoch follows from the gateway's replies, although the check shows nothing, comes from a
 * gateway whose epoch survives its restarts (miniupnpd with `system_uptime=yes`, its sample
 * configuration) or from someone who copied it: its mappings are renewed, at a bounded pace.
 */
export class AnnouncementCheck {
  readonly #host: AnnouncementCheckHost
  #lastCheckAt = -Infinity
  #timer: NodeJS.Timeout | undefined
  #running = false
  /** The announcements since the last check began: the last that claimed a continuous epoch, if any, and when the first came. */
  #waiting: { continuing: string | undefined, since: number } | undefined
  #pacing: { queue: Mapping[], next: number, since: number, timer: NodeJS.Timeout | undefined } | undefined
  #tokens = UNCONFIRMED_RENEWALS_BURST
  #tokensAt = monotonicMs()
  #closed = false

  constructor (host: AnnouncementCheckHost) {
    this.#host = host
  }

  announced (reason: string, epochContinues: boolean): void {
    if (this.#closed) return
    this.#waiting = { continuing: epochContinues ? reason : this.#waiting?.continuing, since: this.#waiting?.since ?? Date.now() }
    this.#schedule()
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    clearTimeout(this.#pacing?.timer)
    this.#pacing = undefined
  }

  #schedule (): void {
    if (this.#running || this.#timer !== undefined || this.#waiting === undefined || this.#closed) return
    const delay = Math.max(0, this.#lastCheckAt + ANNOUNCEMENT_CHECK_INTERVAL - monotonicMs())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#check().catch(() => {})
    }, delay).unref()
  }

  async #check (): Promise<void> {
    const waiting = this.#waiting
    if (waiting === undefined || this.#closed) return
    this.#waiting = undefined
    this.#running = true
    this.#lastCheckAt = monotonicMs()
    let changed = false
    try {
      changed = await this.#host.check()
    } catch {
      // No answer: the renewals on schedule find out what the gateway holds.
    } finally {
      this.#running = false
    }
    if (!changed && waiting.continuing !== undefined && !this.#closed) {
      this.#host.unconfirmedReset(waiting.continuing)
      this.#renewPaced(waiting.since)
    }
    this.#schedule()
  }

  /** Renews every established mapping not granted after `since` (a grant in the same ms may predate it), as tokens allow. */
  #renewPaced (since: number): void {
    if (this.#closed) return
    clearTimeout(this.#pacing?.timer)
    const pacing = { queue: [...this.#host.mappings()], next: 0, since, timer: undefined as NodeJS.Timeout | undefined }
    this.#pacing = pacing
    const tick = (): void => {
      const now = monotonicMs()
      this.#tokens = Math.min(UNCONFIRMED_RENEWALS_BURST, this.#tokens + (now - this.#tokensAt) * UNCONFIRMED_RENEWALS_PER_SECOND / 1000)
      this.#tokensAt = now
      while (this.#tokens >= 1 && pacing.next < pacing.queue.length) {
        const mapping = pacing.queue[pacing.next++]
        if (mapping === undefined || !mapping.established || mapping.grantedAt > pacing.since) continue
        mapping.renewNow()
        this.#tokens--
      }
      if (pacing.next < pacing.queue.length && this.#pacing === pacing) pacing.timer = setTimeout(tick, PACING_TICK).unref()
      else if (this.#pacing === pacing) this.#pacing = undefined
    }
    tick()
  }
}
