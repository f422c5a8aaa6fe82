// Runs on the LAN host: holds `count` mappings on one NAT and answers "status" with how many are
// established and what the NAT reported meanwhile (one JSON line per event, see agent-io.ts).
import { createInterface } from 'node:readline'
import { discoverNAT, type DiscoverOptions, type TransportProtocol } from '../../../src/index.js'
import { agentConfig, report } from './agent-io.js'

const { count, firstPort, transport, discover } = agentConfig<{ count: number, firstPort: number, transport: TransportProtocol, discover: DiscoverOptions }>()

const nat = await discoverNAT(discover)
let resets = 0
let renewed = 0
nat.on('gateway-reset', (event) => { resets++; report('gateway-reset', { ...event }) })
nat.on('mapping-renewed', () => { renewed++ })
const mappings = await Promise.all(Array.from({ length: count }, async (_, i) => await nat.newMapping(transport, firstPort + i)))
const status = (): Record<string, unknown> => ({ type: nat.type, established: mappings.filter((m) => m.established).length, ports: mappings.map((m) => m.externalPort), resets, renewed })
report('mapped', status())

const commands = createInterface({ input: process.stdin })
for await (const command of commands) {
  if (command === 'status') {
    report('status', status())
  } else if (command === 'exit') {
    await nat.close()
    report('closed')
    break
  }
}
commands.close()
