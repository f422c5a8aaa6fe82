import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Agent, assertMappingLifecycle, gatewayHoldsPinhole, lab, labSuite, reachableFromWan } from '../helpers/lab.js'

// IPv6 as the lab set it up before the home profile: static addresses (nodad) and the default
// route via the gateway's global address, 2001:db8:77::1. Every other IPv6 suite runs on the home
// profile (SLAAC, link-local next hop, stock.test.ts and home.test.ts); this one keeps the old
// set-up as one case, and the renewal tests, which need the permissive profile: a pinhole renewed
// every second (mappingDuration 3 s), which PCP's stock min_lifetime of 120 s would not grant.
labSuite('lab: IPv6 pinholes with a global next hop (static set-up, permissive lifetimes)', { mode: 'all', profile: 'permissive' }, () => {
  let nextPort = 26_000

  it('upnp tcp over IPv6 via a global next hop: discover, pinhole, reach, close, gone', async () => {
    await assertMappingLifecycle({ transport: 'tcp', port: nextPort++, discover: { protocols: ['upnp'], family: 'IPv6' } }, 'upnp-igd2')
  })

  for (const protocol of ['pcp', 'upnp'] as const) {
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
