import { setMaxListeners } from '../builtins.js'

/** Urgent work (renewing or deleting what the gateway holds) goes ahead of new work. */
export type RequestPriority = 'urgent' | 'normal'

/**
 * Bounds how many requests are in flight toward one gateway: small routers drop or fail requests
 * that arrive in a burst, and a NAT with a thousand mappings must not send a thousand at once.
 * Waiting requests are served urgent first, then in arrival order, so that a burst of new
 * mappings cannot starve the renewals that keep existing ones alive.
 */
export class RequestLimiter {
  readonly #limit: number
  #active = 0
  readonly #waiting: Record<RequestPriority, Array<() => void>> = { urgent: [], normal: [] }
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
      if (next !== undefined) next()
      else this.#active--
    }
  }

  async #slot (signal: AbortSignal | undefined, queue: Array<() => void>): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = queue.indexOf(wake)
        if (index !== -1) queue.splice(index, 1)
        reject(signal?.reason)
      }
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      if (signal?.aborted === true) { onAbort(); return }
      signal?.addEventListener('abort', onAbort, { once: true })
      queue.push(wake)
    })
  }
}

/** A signal shared by many waiting requests (close() deleting a thousand mappings) is not a leak. */
export function allowManyListeners (signal: AbortSignal): AbortSignal {
  setMaxListeners(0, signal)
  return signal
}
