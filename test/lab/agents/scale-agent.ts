// Runs on the LAN host: holds many mappings on one NAT for a number of renewal periods and
// reports whether any was lost, as one JSON line per phase. After `held` it keeps holding them
// (renewals go on) until a line on stdin says close, so that the gateway's rules can be counted
// before the deletes begin. Usage: scale-agent.ts '{"count":1000,...}'
import { createInterface } from 'node:readline'
import { discoverNAT, type WireProtocol } from '../../../src/index.js'
import { assertInLabNamespace } from '../../helpers/netns.js'

assertInLabNamespace()
const { count, firstPort, mappingDuration, periods, protocol } = JSON.parse(process.argv[2] ?? '{}') as {
  count: number, firstPort: number, mappingDuration: number, periods: number, protocol: WireProtocol
}
const report = (event: string, fields: Record<string, unknown> = {}): void => { process.stdout.write(JSON.stringify({ event, ...fields }) + '\n') }

// closeTimeout: deleting a thousand mappings one by one takes miniupnpd a minute or more.
const nat = await discoverNAT({ protocols: [protocol], mappingDuration, requestTimeout: 10_000, closeTimeout: 600_000 })
let lost = 0
let failed = 0
let renewed = 0
nat.on('mapping-lost', () => { lost++ })
nat.on('mapping-failed', () => { failed++ })
nat.on('mapping-renewed', () => { renewed++ })

const started = performance.now()
const mappings = await Promise.all(Array.from({ length: count }, async (_, i) => await nat.newMapping('udp', firstPort + i)))
const errors: Record<string, number> = {}
for (const mapping of mappings) {
  if (mapping.lastError !== undefined) errors[mapping.lastError.message] = (errors[mapping.lastError.message] ?? 0) + 1
}
report('mapped', { established: mappings.filter((m) => m.established).length, ms: Math.round(performance.now() - started), errors })

const period = mappingDuration / 3
for (let elapsed = 1; elapsed <= periods; elapsed++) {
  await new Promise((resolve) => setTimeout(resolve, period))
  report('period', { n: elapsed, established: mappings.filter((m) => m.established).length, renewed, lost, failed, peakInFlight: nat.peakRequestsInFlight })
}
const ports = new Set(mappings.map((m) => m.externalPort))
report('held', { established: mappings.filter((m) => m.established).length, distinctPorts: ports.size, renewed, lost, failed, peakInFlight: nat.peakRequestsInFlight })
const input = createInterface({ input: process.stdin })
await new Promise<void>((resolve) => { input.once('line', () => { resolve() }) })
input.close()
process.stdin.destroy()
await nat.close()
report('closed')
