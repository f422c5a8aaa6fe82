// Runs on the LAN host: serves a dual-stack echo port, maps it on every family with
// mapEveryFamily(), reports each mapping's address as a JSON line, closes everything on "exit".
import { createInterface } from 'node:readline'
import { mapEveryFamily } from '../../../src/index.js'
import { agentConfig, report } from './agent-io.js'
import { startEcho } from './echo.js'

const config = agentConfig<{ transport: 'tcp' | 'udp', port: number }>()
const echo = await startEcho(config.transport, config.port, '::')
const every = await mapEveryFamily(config.transport, config.port)
const addresses = await Promise.all(every.mappings.map(async (mapping) => await mapping.externalAddr()))
report('mapped', { addresses, types: every.nats.map((nat) => nat.type), reasons: Object.fromEntries(Object.entries(every.reasons).map(([k, v]) => [k, v.message])) })
const commands = createInterface({ input: process.stdin })
for await (const command of commands) {
  if (command === 'exit') {
    await every.close()
    await echo.close()
    report('closed')
    break
  }
}
commands.close()
