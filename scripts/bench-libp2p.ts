/**
 * `npm run bench:libp2p`: time from createLibp2p() to the public multiaddr in the node's
 * getMultiaddrs(), natmapper/libp2p beside @libp2p/upnp-nat, on the same UPnP-only gateway (the
 * lab in mode upnp, real miniupnpd), in the same run, runs interleaved. The floor is the same
 * node's time to its first listen address (no NAT service involved). Each run is a fresh process
 * inside the LAN namespace (test/lab/agents/libp2p-agent.ts): both services start cold.
 * Writes its table into BENCHMARKS.md between the libp2p-bench markers (appends the section when
 * they are missing) and prints it.
 *
 * js-libp2p 3 needs Node.js 22+: on an older Node this script runs itself again on the Node 22
 * from scripts/node-binaries.sh. Environment: BENCH_LIBP2P_RUNS (default 7) runs per service.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { acquireLabLock, Agent, gatewayHolds, lab, labUnavailableReason, releaseLabLock, ROOT, runLabScript, type AgentEvent } from '../test/helpers/lab.js'
import { spread, summarize } from './bench/stats.js'

const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  const node22 = spawnSync(`${ROOT}scripts/node-binaries.sh`, ['22'], { encoding: 'utf8' })
  const path = node22.stdout.trim().split(' ')[1]
  if (node22.status !== 0 || path === undefined) throw new Error(`scripts/node-binaries.sh 22 failed: ${node22.stderr}`)
  const rerun = spawnSync(path, ['--import', 'tsx', fileURLToPath(import.meta.url)], { stdio: 'inherit', cwd: ROOT })
  process.exit(rerun.status ?? 1)
}

const RUNS = Math.max(1, Number(process.env.BENCH_LIBP2P_RUNS ?? 7))
const OUTPUT = `${ROOT}BENCHMARKS.md`
const START = '<!-- libp2p-bench:start -->'
const END = '<!-- libp2p-bench:end -->'
const SERVICES = ['natmapper', 'upnp-nat'] as const
const log = (message: string): void => { process.stderr.write(`bench:libp2p ${message}\n`) }

interface Run { floor: number, publicAddress: number | undefined }

/** One cold node A on the LAN host: ms to its first listen address and to its public one. */
async function runOnce (service: typeof SERVICES[number]): Promise<Run> {
  const a = new Agent(lab.lanNamespace, 'libp2p-agent.ts', { role: 'listen', listen: ['/ip4/0.0.0.0/tcp/0'], nat: service, natmapper: { family: 'IPv4' } })
  const prefix = `/ip4/${lab.gatewayWanAddress}/tcp/`
  try {
    const deadline = Date.now() + 60_000
    let floor: number | undefined
    while (Date.now() < deadline) {
      const updates = a.events.filter((e): e is AgentEvent & { addrs: string[], ms: number } => e.event === 'multiaddrs')
      floor ??= updates.find((e) => e.addrs.some((addr) => addr.startsWith(`/ip4/${lab.lanAddress}/tcp/`)))?.ms
      const found = updates.find((e) => e.addrs.some((addr) => addr.startsWith(prefix)))
      if (found !== undefined && floor !== undefined) {
        const port = Number(found.addrs.find((addr) => addr.startsWith(prefix))?.slice(prefix.length).split('/')[0])
        if (!gatewayHolds('tcp', port)) throw new Error(`${service} announced ${prefix}${port} but the gateway does not forward it`)
        return { floor, publicAddress: found.ms }
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    log(`${service}: no public address within 60 s; events: ${JSON.stringify(a.events.slice(-3))} ${a.stderr.join('').slice(-500)}`)
    return { floor: floor ?? Number.NaN, publicAddress: undefined }
  } finally {
    a.send('exit')
    await a.next('stopped', 30_000).catch(() => {})
    a.kill()
  }
}

const unavailable = labUnavailableReason()
if (unavailable !== undefined) throw new Error(`the benchmark needs the lab: ${unavailable}`)
await acquireLabLock()
const results: Record<typeof SERVICES[number], Run[]> = { natmapper: [], 'upnp-nat': [] }
try {
  runLabScript('up.sh', ['--mode', 'upnp'])
  for (let run = 1; run <= RUNS; run++) {
    // Alternate which goes first, so neither always runs on a machine the other just warmed.
    for (const service of run % 2 === 1 ? SERVICES : [...SERVICES].reverse()) {
      const result = await runOnce(service)
      results[service].push(result)
      log(`run ${run}/${RUNS} ${service}: listen address ${result.floor.toFixed(0)} ms, public address ${result.publicAddress?.toFixed(0) ?? 'never'} ms`)
    }
  }
} finally {
  runLabScript('down.sh', [])
  releaseLabLock()
}

const rows = SERVICES.map((service) => {
  const runs = results[service]
  const reached = runs.flatMap((r) => r.publicAddress === undefined ? [] : [r.publicAddress])
  const label = service === 'natmapper' ? '`natmapper/libp2p` (natMapper())' : `\`@libp2p/upnp-nat\` ${installedVersion('@libp2p/upnp-nat')} (uPnPNAT())`
  return `| ${label} | ${spread(summarize(runs.map((r) => r.floor)))} | ${reached.length === 0 ? 'never' : spread(summarize(reached))} | ${reached.length}/${runs.length} |`
})
const section = [
  START,
  '## js-libp2p: time to a public address',
  '',
  `\`npm run bench:libp2p\`, ${new Date().toISOString().slice(0, 10)}, Node.js ${process.versions.node}, js-libp2p ${installedVersion('libp2p')}: a fresh node`,
  '(TCP, noise, yamux, identify, ping; `autoConfirmAddress: true`) listening on `/ip4/0.0.0.0/tcp/0` on the',
  'lab\'s LAN host behind miniupnpd in UPnP-only mode (no PCP, no NAT-PMP). Milliseconds from the',
  'createLibp2p() call to the first `node.getMultiaddrs()` holding `/ip4/<gateway WAN address>/tcp/<port>`',
  '(polled every 5 ms; the gateway then forwards that port), median (min–max) of the runs, the two',
  'services interleaved in one run. The floor column is the same node\'s time to its own listen',
  'address: what starting js-libp2p costs before any NAT service can act.',
  '',
  '| Service | Floor: listen address, ms | Public address, ms | Runs that got one |',
  '|---|---|---|---|',
  ...rows,
  '',
  '@libp2p/upnp-nat waits for a 5 s debounce after the addresses change before it maps anything;',
  'natmapper/libp2p starts discovery when the node starts and maps each port as soon as the transport listens.',
  END
].join('\n')

function installedVersion (name: string): string {
  try { return (JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version: string }).version } catch { return '?' }
}

let report = ''
try { report = readFileSync(OUTPUT, 'utf8') } catch { /* no BENCHMARKS.md yet: the section starts it */ }
const start = report.indexOf(START)
const end = report.indexOf(END)
report = start >= 0 && end > start
  ? report.slice(0, start) + section + report.slice(end + END.length)
  : `${report.trimEnd()}\n\n${section}\n`
writeFileSync(OUTPUT, report)
process.stdout.write(section + '\n')
