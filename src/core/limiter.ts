/**
 * Bounds how many requests are in flight toward one gateway: small routers drop or fail requests
 * that arrive in a burst, and a NAT with a thousand mappings must not send a thousand at once.
 */
export class RequestLimiter {
  readonly #limit: number
  #active = 0
  readonly #waiting: Array<() => void> = []
  /** The most requests ever in flight at once (for benchmarks and tests). */
  peak = 0

  constructor (limit: number) {
    this.#limit = limit
  }

  get active (): number {
    return this.#active
  }

  async run<T> (task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    // A finishing task hands its slot straight to the next waiter, so a newcomer cannot slip in
    // between and push the count over the limit.
    if (this.#active >= this.#limit) {
      await this.#slot(signal)
    } else {
      this.#active++
      this.peak = Math.max(this.peak, this.#active)
    }
    try {
      return await task()
    } finally {
      const next = this.#waiting.shift()
      if (next !== undefined) next()
      else this.#active--
    }
  }

  async #slot (signal: AbortSignal | undefined): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#waiting.indexOf(wake)
        if (index !== -1) this.#waiting.splice(index, 1)
        reject(signal?.reason)
      }
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      if (signal?.aborted === true) { onAbort(); return }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(wake)
    })
  }
}
