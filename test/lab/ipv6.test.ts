import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Agent, gatewayHoldsPinhole, lab, labSuite, reachableFromWan } from '../helpers/lab.js'

// IPv6 through the real gateway: no translation, but nm-gw's forward policy drops new inbound
// WAN->LAN connections unless miniupnpd opened a pinhole. For each transport: unreachable before,
// reachable at the host's own global address after newMapping, unreachable after close.
// Permissive profile: one test renews a pinhole every second (mappingDuration 3 s), which PCP's
// stock min_lifetime of 120 s would not grant. IPv6 under the stock rules: stock.test.ts.
labSuite('lab: IPv6 pinholes against miniupnpd', { mode: 'all', profile: 'permissive' }, () => {
  let nextPort = 26_000
  for (const protocol of ['pcp', 'upnp'] as const) {
    for (const transport of ['tcp', 'udp'] as const) {
      it(`${protocol} ${transport} over IPv6: closed before, open after newMapping, closed after close`, async () => {
        const port = nextPort++
        const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport, port, discover: { family: 'IPv6', protocols: [protocol] } })
        try {
          const discovered = await agent.next('discovered')
          assert.equal(discovered.type, protocol === 'upnp' ? 'upnp-igd2' : protocol)
          assert.equal(discovered.gateway, lab.gatewayLanAddress6, 'found through the LAN host\'s IPv6 default route')
          assert.equal(discovered.localAddress, lab.lanAddress6)
          const mapped = await agent.next('mapped')
          assert.deepEqual({ address: mapped.address, port: mapped.port, family: mapped.family, protocol: mapped.protocol },
            { address: lab.lanAddress6, port, family: 'IPv6', protocol: transport })
          assert.ok(gatewayHoldsPinhole(transport, lab.lanAddress6, port), 'the gateway holds a pinhole')
          const reach = await reachableFromWan(transport, lab.lanAddress6, port)
          assert.ok(reach.ok, `WAN host reaches the LAN service over IPv6: ${reach.output}`)

          agent.send('close-mapping')
          assert.equal((await agent.next('mapping-closed')).established, false)
          assert.ok(!gatewayHoldsPinhole(transport, lab.lanAddress6, port), 'the gateway no longer holds the pinhole')
          assert.ok(!(await reachableFromWan(transport, lab.lanAddress6, port)).ok, 'closed again after close')

          await agent.exitCleanly()
        } finally {
          agent.kill()
        }
      })
    }

    it(`${protocol} over IPv6: without a mapping the WAN host cannot reach the LAN server`, async () => {
      // The agent serves the port but maps another one: the firewall, not a missing server, blocks.
      const port = nextPort++
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { family: 'IPv6', protocols: [protocol] } })
      try {
        await agent.next('mapped')
        agent.send('close-mapping')
        await agent.next('mapping-closed')
        const reach = await reachableFromWan('tcp', lab.lanAddress6, port)
        assert.ok(!reach.ok, `blocked without a pinhole: ${reach.output}`)
        await agent.exitCleanly()
      } finally {
        agent.kill()
      }
    })

    it(`${protocol} over IPv6: a pinhole held across renewals stays open, and close removes it`, async () => {
      const port = nextPort++
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'udp', port, discover: { family: 'IPv6', protocols: [protocol], mappingDuration: 3_000 } })
      try {
        await agent.next('mapped')
        const renewedFrom = agent.events.length
        await agent.next('renewed', 20_000, renewedFrom)
        const second = agent.events.findIndex((e, i) => i >= renewedFrom && e.event === 'renewed')
        await agent.next('renewed', 20_000, second + 1)
        assert.equal(agent.count('lost'), 0)
        assert.ok(gatewayHoldsPinhole('udp', lab.lanAddress6, port))
        const reach = await reachableFromWan('udp', lab.lanAddress6, port)
        assert.ok(reach.ok, reach.output)
        await agent.exitCleanly()
        // PCP: miniupnpd 2.3.1 bug: once a PCP IPv6 pinhole has been renewed ("updating pinhole" in its
        // log), a MAP with lifetime 0 and the same nonce is refused ("Unauthorized to remove PCP
        // mapping"): the pinhole then closes only when its granted lifetime (3 s here) runs out.
        const deadline = Date.now() + 15_000
        while (gatewayHoldsPinhole('udp', lab.lanAddress6, port) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250))
        assert.ok(!gatewayHoldsPinhole('udp', lab.lanAddress6, port), 'the pinhole is gone after close (at the latest when its lifetime ran out)')
        assert.ok(!(await reachableFromWan('udp', lab.lanAddress6, port)).ok, 'closed again after nat.close()')
      } finally {
        agent.kill()
      }
    })
  }
})
