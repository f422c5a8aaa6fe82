import { AbortError, TimeoutError } from '../errors.js'
import { abortedBy, SETTLED } from '../net/request.js'

// Defined below core (the UDP channel needs them too); core's callers keep importing them here.
export { abortedBy, SETTLED }

export interface DeadlineOptions {
  signal?: AbortSignal
  /** Milliseconds; undefined or Infinity for no limit. */
  timeout?: number
}

/**
 * Runs `task` with a signal that aborts when the caller's signal aborts or `timeout` passes, and
 * rejects as soon as either happens even if the task ignores its signal. The timer and the
 * listener are removed when the call settles, so nothing outlives it.
 */
export async function withDeadline<T> (
  what: string,
  options: DeadlineOptions,
  task: (signal: AbortSignal) => Promise<T>
): Promise<T> {
  const outer = options.signal
  if (outer?.aborted === true) throw abortedBy(outer, () => `${what}: aborted`)

  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let onOuterAbort: (() => void) | undefined
  const stopped = new Promise<never>((_resolve, reject) => {
    onOuterAbort = () => {
      const error = abortedBy(outer, () => `${what}: aborted`)
      controller.abort(error)
      reject(error)
    }
    outer?.addEventListener('abort', onOuterAbort, { once: true })
    const timeout = options.timeout
    if (timeout !== undefined && Number.isFinite(timeout)) {
      timer = setTimeout(() => {
        const error = new TimeoutError(`${what}: no answer within ${timeout} ms`)
        controller.abort(error)
        reject(error)
      }, timeout)
    }
  })
  // The race below may settle through `task`; keep the losing rejection from being reported.
  stopped.catch(() => {})
  try {
    return await Promise.race([task(controller.signal), stopped])
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    if (onOuterAbort !== undefined) outer?.removeEventListener('abort', onOuterAbort)
    if (!controller.signal.aborted) controller.abort(SETTLED)
  }
}

/**
 * A signal that aborts when any of `signals` does, for one call; `release()` (when the call
 * settles) detaches it. Not AbortSignal.any(): on Node 20 each call leaves an entry on every
 * source signal that is never freed (~100 bytes), so a UPnP client's long-lived shutdown signal
 * grew by one entry per request (looked for after the soak showed the UPnP NATs' heap rising).
 */
export function anySignal (signals: readonly AbortSignal[]): { signal: AbortSignal, release: () => void } {
  const controller = new AbortController()
  const aborted = signals.find((signal) => signal.aborted)
  if (aborted !== undefined) {
    controller.abort(aborted.reason)
    return { signal: controller.signal, release: () => {} }
  }
  const onAbort = (event: Event): void => {
    release()
    controller.abort((event.target as AbortSignal).reason)
  }
  const release = (): void => {
    for (const signal of signals) signal.removeEventListener('abort', onAbort)
  }
  for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true })
  return { signal: controller.signal, release }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw reasonOf(signal)
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(reasonOf(signal))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** The error an aborted signal stands for: its reason when that is an Error, else an AbortError. */
export function reasonOf (signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason
  return reason instanceof Error ? reason : new AbortError('aborted', { cause: reason })
}
