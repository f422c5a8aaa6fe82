/**
 * Bytes allocated on the JS heap per discover + map, counted rather than timed, so that the
 * machine's load does not move the figure. The agent that runs this is started with a young
 * generation far larger than what the counted runs allocate (ALLOCATION_NODE_FLAGS): no garbage
 * collection runs while they do (checked), so `heapUsed` grows by exactly what they allocated.
 * Run inside the lab's LAN namespace only (the runs talk to the gateway).
 */
import { PerformanceObserver } from 'node:perf_hooks'

/** Young generation of 128 MB: 100 runs of a client that allocates 1 MB each fit without a GC. */
export const ALLOCATION_NODE_FLAGS = ['--max-semi-space-size=128', '--min-semi-space-size=128']

/** Runs counted per round, rounds per client, and untimed runs first (code compiled, caches filled). */
const RUNS_PER_ROUND = 50
const ROUNDS = 5
const WARM_UP_RUNS = 10

/**
 * Bytes allocated per call of `run`, one figure per round (a round is RUNS_PER_ROUND calls).
 * A round in which a GC ran is counted again (its figure would be what survived, not what was
 * allocated); three in a row mean the young generation is too small for this client.
 */
export async function bytesPerRun (run: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < WARM_UP_RUNS; i++) await run()
  let collections = 0
  const observer = new PerformanceObserver((list) => { collections += list.getEntries().length })
  observer.observe({ entryTypes: ['gc'] })
  try {
    const rounds: number[] = []
    let spoiled = 0
    while (rounds.length < ROUNDS) {
      // What the last round left (sockets closing, timers) settles first.
      await new Promise((resolve) => setTimeout(resolve, 20))
      collections = 0
      const before = process.memoryUsage().heapUsed
      for (let i = 0; i < RUNS_PER_ROUND; i++) await run()
      const after = process.memoryUsage().heapUsed
      // GC entries are delivered on a later turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve))
      if (collections > 0) {
        if (++spoiled >= 3) throw new Error(`allocation count: a GC ran in ${spoiled} rounds in a row; start the agent with a larger --max-semi-space-size`)
        continue
      }
      spoiled = 0
      rounds.push((after - before) / RUNS_PER_ROUND)
    }
    return rounds
  } finally {
    observer.disconnect()
  }
}
