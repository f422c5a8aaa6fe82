/**
 * Runs inside the lab's LAN namespace: measures natmapper in-process, the floor, and the reference
 * clients, and prints one JSON object of samples (ms). Driven by scripts/bench.ts.
 */
import { spawnSync } from 'node:child_process'
import { discoverNAT, type DiscoverOptions } from '../../src/index.js'
import { assertInLabNamespace } from '../../test/helpers/netns.js'
import { natPmpFloor, pcpFloor } from './floor.js'

assertInLabNamespace()
const { gateway, clientAddress, runs, protocols } = JSON.parse(process.argv[2] ?? '{}') as {
  gateway: string, clientAddress: string, runs: number, protocols: Array<'pcp' | 'nat-pmp'>
}
const samples: Record<string, number[]> = {}
const record = (name: string, ms: number): void => { (samples[name] ??= []).push(ms) }
const PORT = 31_000

async function natmapper (label: string, options: DiscoverOptions): Promise<void> {
  let started = performance.now()
  const probeOnly = await discoverNAT(options)
  record(`${label} discover`, performance.now() - started)
  await probeOnly.close()

  started = performance.now()
  const nat = await discoverNAT(options)
  const mapping = await nat.newMapping('tcp', PORT)
  record(`${label} discover + map`, performance.now() - started)
  if (!mapping.established) throw new Error(`${label}: not established: ${String(mapping.lastError)}`)
  await nat.close()
}

function natpmpc (args: string[]): number {
  const started = performance.now()
  const result = spawnSync('natpmpc', ['-g', gateway, ...args], { encoding: 'utf8' })
  const ms = performance.now() - started
  if (result.status !== 0) throw new Error(`natpmpc ${args.join(' ')} failed: ${result.stdout}${result.stderr}`)
  return ms
}

// Warm-up rounds first, so that module loading, the JIT and the first sockets are not measured.
const WARM_UP_ROUNDS = Number(process.env.BENCH_WARMUP ?? 3)
for (let run = -WARM_UP_ROUNDS; run < runs; run++) {
  const keep = run >= 0
  for (const protocol of protocols) {
    if (protocol === 'pcp') {
      const floor = await pcpFloor(gateway, clientAddress, PORT)
      if (keep) { record('pcp floor discover', floor.discover); record('pcp floor discover + map', floor.map) }
    } else {
      const floor = await natPmpFloor(gateway, PORT)
      if (keep) { record('nat-pmp floor discover', floor.discover); record('nat-pmp floor discover + map', floor.map) }
    }
    if (keep) {
      await natmapper(`${protocol} natmapper`, { protocols: [protocol], gateway })
      await natmapper(`${protocol} natmapper (default route)`, { protocols: [protocol] })
    } else {
      await natmapper('warm-up', { protocols: [protocol], gateway })
    }
    if (protocol === 'nat-pmp' && keep) {
      record('nat-pmp natpmpc discover (process)', natpmpc([]))
      // natpmpc -a asks for the address, then maps: the same two exchanges as discover + map.
      record('nat-pmp natpmpc discover + map (process)', natpmpc(['-a', String(PORT), String(PORT), 'tcp', '60']))
      natpmpc(['-a', '0', String(PORT), 'tcp', '0'])
    }
  }
}
delete samples['warm-up discover']
delete samples['warm-up discover + map']
process.stdout.write(JSON.stringify(samples) + '\n')
