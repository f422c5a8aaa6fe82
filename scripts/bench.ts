/**
 * `npm run bench`: brings the lab up and measures natmapper beside the floor (bare sockets making
 * the same exchanges) and the reference clients, in the same run. Prints medians with min and max.
 */
import { spawnSync } from 'node:child_process'
import { acquireLabLock, lab, releaseLabLock, ROOT, runLabScript } from '../test/helpers/lab.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 25)

interface Row { name: string, median: number, min: number, max: number, runs: number }

function summarize (name: string, values: number[]): Row {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length / 2
  const median = sorted.length % 2 === 1 ? (sorted[Math.floor(middle)] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
  return { name, median, min: sorted[0] ?? 0, max: sorted.at(-1) ?? 0, runs: values.length }
}

function runAgent (protocols: string[], runs = RUNS): Record<string, number[]> {
  const config = { gateway: lab.gatewayLanAddress, clientAddress: lab.lanAddress, runs, protocols }
  const result = spawnSync('ip', ['netns', 'exec', lab.lanNamespace, process.execPath, '--import', 'tsx', `${ROOT}scripts/bench/agent.ts`, JSON.stringify(config)], { encoding: 'utf8', cwd: ROOT })
  if (result.status !== 0) throw new Error(`bench agent failed: ${result.stderr}`)
  return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number[]>
}

await acquireLabLock()
const rows: Row[] = []
try {
  runLabScript('up.sh', ['--mode', 'pmp'])
  for (const [name, values] of Object.entries(runAgent(['pcp', 'nat-pmp']))) rows.push(summarize(name, values))
  runLabScript('up.sh', ['--mode', 'upnp'])
  for (const [name, values] of Object.entries(runAgent(['upnp']))) rows.push(summarize(name, values))
} finally {
  runLabScript('down.sh', [])
  releaseLabLock()
}

const format = (ms: number): string => ms.toFixed(2).padStart(9)
console.log(`natmapper benchmark: ${RUNS} runs each, lab gateway miniupnpd (mode pmp), ${new Date().toISOString()}`)
console.log(`${'measurement'.padEnd(48)}${'median'.padStart(9)}${'min'.padStart(9)}${'max'.padStart(9)}  (ms)`)
for (const row of rows.sort((a, b) => a.name.localeCompare(b.name))) {
  console.log(`${row.name.padEnd(48)}${format(row.median)}${format(row.min)}${format(row.max)}`)
}
for (const [protocol, target] of [['pcp', 1], ['nat-pmp', 1], ['upnp', 5]] as const) {
  const floor = rows.find((row) => row.name === `${protocol} floor discover + map`)
  const ours = rows.find((row) => row.name === `${protocol} natmapper discover + map`)
  if (floor !== undefined && ours !== undefined) {
    console.log(`${protocol}: natmapper discover + map is ${(ours.median - floor.median).toFixed(2)} ms above the floor (target: within ${target} ms)`)
  }
}
