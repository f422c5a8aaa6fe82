// Runs on the LAN host: discovers the NAT with the given options, asks nat.externalAddress() a
// few times with no mapping open (the first answer cannot come from a cache: the probe did not
// ask), reports each answer and how long it took, and closes. The test checks the process then
// ends by itself.
import { discoverNAT, type DiscoverOptions } from '../../../src/index.js'
import { assertInLabNamespace } from '../../helpers/netns.js'

assertInLabNamespace()
const config = JSON.parse(process.argv[2] ?? '{}') as { discover: DiscoverOptions, times: number }
const report = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
}
const nat = await discoverNAT({ ...config.discover, cacheTime: 0 })
report('discovered', { type: nat.type, gateway: nat.gateway })
try {
  for (let i = 0; i < config.times; i++) {
    const started = performance.now()
    const address = await nat.externalAddress()
    report('address', { address, ms: performance.now() - started })
  }
} catch (error) {
  report('address-failed', { message: (error as Error).message, code: (error as { code?: string }).code })
} finally {
  await nat.close()
  report('closed')
}
