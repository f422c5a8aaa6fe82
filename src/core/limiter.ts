import { setMaxListeners } from '../builtins.js'

/** Urgent work (renewing or deleting what the gateway holds) goes ahead of new work. */
export type RequestPriority = 'urgent' | 'normal'

/**
 * Bounds how many requests are in flight toward one gateway: small routers drop or fail requests
 * that arrive in a burst, and a NAT with a thousand mappings must not send a thousand at once.
 * Waiting requests are served urgent first, then in arrival order, so that a burst of new
 * mappings cannot starve the renewals that keep existing ones alive.
 */
interface Waiter {
  wake: () => void
  fail: (reason: unknown) => void
  queue: Waiter[]
  /** The waiters of its signal (none without a signal), which it leaves when woken. */
  watched: Set<Waiter> | undefined
}

export class RequestLimiter {
  readonly #limit: number
  #active = 0
  readonly #waiting: Record<RequestPriority, Waiter[]> = { urgent: [], normal: [] }
  /**
   * Waiters by the signal that may cancel them, under one listener per signal kept for the signal's
   * life: a mapping's signal waits here at every renewal of a big batch, and adding and removing a
   * listener each time cost more than the wait itself.
   */
  readonly #bySignal = new WeakMap<AbortSignal, Set<Waiter>>()
  /** The most requests ever in flight at once (for benchmarks and tests). */
  peak = 0

  constructor (limit: number) {
    this.#limit = limit
  }

  get active (): number {
    return this.#active
  }

  async run<T> (task: () => Promise<T>, signal?: AbortSignal, priority: RequestPriority = 'normal'): Promise<T> {
    // A finishing task hands its slot straight to the next waiter, so a newcomer cannot slip in
    // between and push the count over the limit.
    if (this.#active >= this.#limit) {
      await this.#slot(signal, this.#waiting[priority])
    } else {
      this.#active++
      this.peak = Math.max(this.peak, this.#active)
    }
    try {
      return await task()
    } finally {
      const next = this.#waiting.urgent.shift() ?? this.#waiting.normal.shift()
      if (next !== undefined) {
        next.watched?.delete(next)
        next.wake()
      } else {
        this.#active--
      }
    }
  }

  async #slot (signal: AbortSignal | undefined, queue: Waiter[]): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason)
        return
      }
      const watched = signal === undefined ? undefined : this.#watch(signal)
      const waiter: Waiter = { wake: resolve, fail: reject, queue, watched }
      watched?.add(waiter)
      queue.push(waiter)
    })
  }

  #watch (signal: AbortSignal): Set<Waiter> {
    let watched = this.#bySignal.get(signal)
    if (watched === undefined) {
      const waiters = new Set<Waiter>()
      signal.addEventListener('abort', () => {
        for (const waiter of waiters) {
          const index = waiter.queue.indexOf(waiter)
          if (index !== -1) waiter.queue.splice(index, 1)
          waiter.fail(signal.reason)
        }
        waiters.clear()
      }, { once: true })
      this.#bySignal.set(signal, waiters)
      watched = waiters
    }
    return watched
  }
}

/** A signal shared by many waiting requests (close() deleting a thousand mappings) is not a leak. */
export function allowManyListeners (signal: AbortSignal): AbortSignal {
  setMaxListeners(0, signal)
  return signal
}
