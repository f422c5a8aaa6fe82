import { AbortError } from '../errors.js'

/** Options every waiting call accepts. */
export interface RequestOptions {
  /** Aborts the wait; the call rejects with AbortError. */
  signal?: AbortSignal
  /** Milliseconds before the call rejects with TimeoutError. */
  timeout?: number
}

/**
 * The reason a signal is aborted with once the call it served has its outcome (a deadline's task
 * settled, discovery decided on a gateway): only cleanup listens to it, and the rejections it
 * causes (the losing probes') are read by no one. One shared instance spares each of them a
 * stack trace and a message.
 */
export const SETTLED = new AbortError('settled')

/**
 * The error a call stopped by `signal` rejects with: SETTLED itself when the signal says nobody
 * will read it, else a new AbortError with the message (built only then) and the signal's reason.
 */
export function abortedBy (signal: AbortSignal | undefined, message: () => string, cause: unknown = signal?.reason): AbortError {
  return signal?.reason === SETTLED ? SETTLED : new AbortError(message(), { cause })
}
