import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Agent, gatewayHolds, lab, labSuite, reachableFromWan } from '../helpers/lab.js'

// The real gateway: miniupnpd with NAT-PMP and PCP on, UPnP off. For each protocol and transport,
// the whole life of a mapping: discover, map, reach it from the WAN host, delete, exit cleanly.
// Permissive profile: the renewal tests renew every second (mappingDuration 3 s), which PCP's stock
// min_lifetime of 120 s would not grant. The same lifecycle under the stock rules: stock.test.ts.
labSuite('lab: PCP and NAT-PMP against miniupnpd', { mode: 'pmp', profile: 'permissive' }, () => {
  let nextPort = 20_000
  for (const protocol of ['pcp', 'nat-pmp'] as const) {
    for (const transport of ['tcp', 'udp'] as const) {
      it(`${protocol} ${transport}: map, reach from the WAN, delete, exit by itself`, async () => {
        const port = nextPort++
        const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport, port, discover: { protocols: [protocol] } })
        try {
          const discovered = await agent.next('discovered')
          assert.equal(discovered.type, protocol)
          assert.equal(discovered.gateway, lab.gatewayLanAddress, 'found through the LAN host\'s default route')
          const mapped = await agent.next('mapped')
          assert.equal(mapped.address, lab.gatewayWanAddress)
          assert.equal(mapped.protocol, transport)
          assert.equal(mapped.family, 'IPv4')
          const externalPort = mapped.port as number
          assert.ok(externalPort > 0)

          assert.ok(gatewayHolds(transport, externalPort), 'the gateway holds a redirect for the mapping')
          const reach = await reachableFromWan(transport, lab.gatewayWanAddress, externalPort)
          assert.ok(reach.ok, `WAN host reaches the LAN service: ${reach.output}`)

          agent.send('close-mapping')
          const closed = await agent.next('mapping-closed')
          assert.equal(closed.established, false)
          assert.ok(!gatewayHolds(transport, externalPort), 'the gateway no longer holds the mapping')

          await agent.exitCleanly()
        } finally {
          agent.kill()
        }
      })
    }
  }

  for (const protocol of ['pcp', 'nat-pmp'] as const) {
    it(`${protocol}: a mapping held across renewals keeps its external port and stays reachable`, async () => {
      const port = nextPort++
      // 3 s lifetime: a renewal every second.
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { protocols: [protocol], mappingDuration: 3_000 } })
      try {
        const mapped = await agent.next('mapped')
        const renewedFrom = agent.events.length
        await agent.next('renewed', 20_000, renewedFrom)
        const second = agent.events.findIndex((e, i) => i >= renewedFrom && e.event === 'renewed')
        await agent.next('renewed', 20_000, second + 1)
        assert.equal(agent.count('changed'), 0, 'no renewal moved the port')
        assert.equal(agent.count('lost'), 0)
        agent.send('address')
        const address = await agent.next('address')
        assert.equal(address.port, mapped.port)
        const reach = await reachableFromWan('tcp', lab.gatewayWanAddress, mapped.port as number)
        assert.ok(reach.ok, reach.output)
        await agent.exitCleanly()
        assert.ok(!gatewayHolds('tcp', mapped.port as number), 'nat.close() deleted the mapping')
      } finally {
        agent.kill()
      }
    })
  }

  it('discovery with every protocol enabled prefers PCP', async () => {
    const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'udp', port: nextPort++, discover: {} })
    try {
      assert.equal((await agent.next('discovered')).type, 'pcp')
      await agent.next('mapped')
      await agent.exitCleanly()
    } finally {
      agent.kill()
    }
  })
})
