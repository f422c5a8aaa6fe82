/**
 * One timer for many renewals: mappings whose next renewal falls within the same short window
 * (they were created together, or renewed together last time) wake the process once and start
 * together, so the protocol client sends them as one batch under one deadline. A renewal runs at
 * most a twentieth of its delay (and at most MAX_WINDOW) early, never late: at a third of the
 * lease, that costs nothing. Short delays (retries, tests) keep a timer of their own.
 */

/** The longest a renewal is brought forward to share a timer. */
const MAX_WINDOW = 1_000
/** Below this window, batching saves nothing worth the early renewal. */
const MIN_WINDOW = 50

interface Slot {
  timer: NodeJS.Timeout
  due: Set<() => void>
}

export class RenewalClock {
  /**
   * By start time. Slots of different windows that start at the same moment are one: firing then
   * is within the window of each.
   */
  readonly #slots = new Map<number, Slot>()

  /** Runs `task` after about `delay` ms (up to a twentieth earlier); returns a cancel function. */
  schedule (delay: number, task: () => void): () => void {
    const window = Math.min(MAX_WINDOW, delay / 20)
    if (window < MIN_WINDOW) {
      const timer = setTimeout(task, delay)
      // Renewals must not keep a process alive on their own: the caller's server does that.
      timer.unref()
      return () => { clearTimeout(timer) }
    }
    const start = Math.floor((Date.now() + delay) / window) * window
    let slot = this.#slots.get(start)
    if (slot === undefined) {
      const due = new Set<() => void>()
      const timer = setTimeout(() => {
        this.#slots.delete(start)
        for (const run of due) run()
      }, Math.max(0, start - Date.now()))
      timer.unref()
      slot = { timer, due }
      this.#slots.set(start, slot)
    }
    const { due, timer } = slot
    due.add(task)
    return () => {
      due.delete(task)
      if (due.size === 0 && this.#slots.get(start) === slot) {
        clearTimeout(timer)
        this.#slots.delete(start)
      }
    }
  }
}
