import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Agent, gatewayHoldsPinhole, lab, labSuite, reachableFromWan } from '../helpers/lab.js'

// mapEveryFamily() against the real gateway: one call, a mapping on IPv4 (PCP port mapping) and
// on IPv6 (pinhole), both reachable from the WAN host; close() closes both.
// Home profile: IPv4 as stock, IPv6 as a home network has it (SLAAC, link-local next hop).
labSuite('lab: mapEveryFamily against miniupnpd', { mode: 'all', profile: 'home' }, () => {
  let nextPort = 26_500

  for (const transport of ['tcp', 'udp'] as const) {
    it(`mapEveryFamily ${transport}: one call opens the port on IPv4 and IPv6, close closes both`, async () => {
      const port = nextPort++
      const agent = new Agent(lab.lanNamespace, 'every-family-agent.ts', { transport, port })
      try {
        const mapped = await agent.next('mapped')
        const addresses = mapped.addresses as Array<{ address: string, port: number, family: string }>
        const v4 = addresses.find((a) => a.family === 'IPv4')
        const v6 = addresses.find((a) => a.family === 'IPv6')
        assert.ok(v4 !== undefined && v6 !== undefined, `both families mapped: ${JSON.stringify(mapped)}`)
        assert.equal(v4.address, lab.gatewayWanAddress)
        assert.deepEqual({ address: v6.address, port: v6.port }, { address: lab.lanAddress6, port })
        assert.ok((await reachableFromWan(transport, v4.address, v4.port)).ok, 'reachable over IPv4')
        assert.ok((await reachableFromWan(transport, v6.address, v6.port)).ok, 'reachable over IPv6')
        await agent.exitCleanly()
        assert.ok(!gatewayHoldsPinhole(transport, lab.lanAddress6, port), 'the pinhole is gone')
        assert.ok(!(await reachableFromWan(transport, v6.address, v6.port)).ok, 'closed again over IPv6')
      } finally {
        agent.kill()
      }
    })
  }
})
