/**
 * Milliseconds on the monotonic clock, for deadlines, retransmissions and epoch checks (only
 * differences mean anything). Not performance.now(): the first touch of the `performance` global
 * loads perf_hooks and nine modules behind it (~0.3 MB of a small process's peak RSS);
 * process.hrtime reads the same clock and is loaded with Node itself.
 */
export function monotonicMs (): number {
  const [seconds, nanoseconds] = process.hrtime()
  return seconds * 1_000 + nanoseconds / 1_000_000
}
