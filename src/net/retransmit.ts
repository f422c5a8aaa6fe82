import type { RetransmitSchedule } from './udp-channel.js'

/**
 * RFC 6886 §3.1: first retransmission after 250 ms, the interval doubling each time, nine sends in
 * all. The caller's deadline usually ends the exchange long before the schedule does.
 */
export const natPmpSchedule: RetransmitSchedule = function * () {
  for (let attempt = 0, delay = 250; attempt < 8; attempt++, delay *= 2) yield delay
}

/**
 * RFC 6887 §8.1.1: IRT 3 s, MRT 1024 s, no count limit, each interval jittered by ±10 %.
 * `random` is injectable so tests can pin it. An iterator object rather than a generator: one is
 * made for every request, renewals included, and a generator costs several times as much.
 */
export function pcpSchedule (random: () => number = Math.random): RetransmitSchedule {
  const jitter = (): number => 1 + (random() * 0.2 - 0.1)
  return () => {
    let delay = 0
    return {
      next: (): IteratorResult<number> => {
        delay = delay === 0 ? 3_000 * jitter() : Math.min(2 * delay, 1_024_000) * jitter()
        return { done: false, value: Math.round(delay) }
      }
    }
  }
}
