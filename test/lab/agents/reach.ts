// Runs on the WAN host: exits 0 when the LAN service answers at the given external address.
// Usage: reach.ts tcp|udp ADDRESS PORT [TIMEOUT_MS]
import { assertInLabNamespace } from '../../helpers/netns.js'
import { roundTrip } from './echo.js'

assertInLabNamespace()
const [protocol, address, port, timeout] = process.argv.slice(2)
if ((protocol !== 'tcp' && protocol !== 'udp') || address === undefined || port === undefined) {
  console.error('usage: reach.ts tcp|udp ADDRESS PORT [TIMEOUT_MS]')
  process.exit(2)
}
try {
  await roundTrip(protocol, address, Number(port), Number(timeout ?? 2000))
  console.log('reached')
} catch (error) {
  console.log(`unreachable: ${(error as Error).message}`)
  process.exitCode = 1
}
