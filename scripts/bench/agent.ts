/**
 * Runs inside the lab's LAN namespace: measures natmapper in-process, the floor, and the reference
 * clients, and prints one JSON object of samples (ms). Driven by scripts/bench.ts.
 */
import { spawnSync } from 'node:child_process'
import { discoverNAT, type DiscoverOptions } from '../../src/index.js'
import { assertInLabNamespace } from '../../test/helpers/netns.js'
import { natPmpFloor, pcpFloor, upnpFloor } from './floor.js'

assertInLabNamespace()
const { gateway, clientAddress, runs, protocols } = JSON.parse(process.argv[2] ?? '{}') as {
  gateway: string, clientAddress: string, runs: number, protocols: Array<'pcp' | 'nat-pmp' | 'upnp'>
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

/** Wall time of a reference client's whole process. */
function timeProcess (command: string, args: string[]): number {
  const started = performance.now()
  const result = spawnSync(command, args, { encoding: 'utf8' })
  const ms = performance.now() - started
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stdout}${result.stderr}`)
  return ms
}
const natpmpc = (args: string[]): number => timeProcess('natpmpc', ['-g', gateway, ...args])

// Warm-up rounds first, so that module loading, the JIT and the first sockets are not measured.
const WARM_UP_ROUNDS = Number(process.env.BENCH_WARMUP ?? 3)
for (let run = -WARM_UP_ROUNDS; run < runs; run++) {
  const keep = run >= 0
  for (const protocol of protocols) {
    const floor = protocol === 'pcp'
      ? await pcpFloor(gateway, clientAddress, PORT)
      : protocol === 'nat-pmp' ? await natPmpFloor(gateway, PORT) : await upnpFloor(gateway, clientAddress, PORT)
    if (keep) { record(`${protocol} floor discover`, floor.discover); record(`${protocol} floor discover + map`, floor.map) }
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
    if (protocol === 'upnp' && keep) {
      // upnpc discovers (waiting out its 2 s search window), then maps: discover + map.
      record('upnp upnpc discover + map (process)', timeProcess('upnpc', ['-e', 'bench', '-a', clientAddress, String(PORT), String(PORT), 'TCP', '60']))
      timeProcess('upnpc', ['-u', `http://${gateway}:5000/rootDesc.xml`, '-d', String(PORT), 'TCP'])
    }
  }
}
delete samples['warm-up discover']
delete samples['warm-up discover + map']
process.stdout.write(JSON.stringify(samples) + '\n')
