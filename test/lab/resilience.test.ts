import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Agent, lab, labEnv, labSuite, runLabScript, waitUntilReachable } from '../helpers/lab.js'

// Faults on the real gateway, each checked from the WAN host. Short lifetimes make renewals
// frequent: mappingDuration 6 s renews every 2 s; cacheTime 3 s re-checks the address as often.
// Waits have generous limits (a shared 2-core machine); the time each recovery took is reported
// with t.diagnostic() so that it can be compared with the target in the issue.
const RENEWAL_MS = 2_000
const FAST = { mappingDuration: 3 * RENEWAL_MS, cacheTime: 3_000, networkCheckInterval: 1_000 }

// Permissive profile: faults are timed against 6 s leases, which PCP's stock min_lifetime of 120 s
// would stretch to two minutes.
labSuite('lab: faults (gateway restart, address change, silence, lost rules)', { mode: 'all', profile: 'permissive' }, () => {
  let nextPort = 24_000

  for (const protocol of ['pcp', 'nat-pmp', 'upnp'] as const) {
    it(`${protocol}: miniupnpd restarted with its rules flushed; the mapping comes back by itself`, async (t) => {
      const port = nextPort++
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { protocols: [protocol], ...FAST } })
      try {
        const mapped = await agent.next('mapped')
        const from = agent.events.length
        runLabScript('gateway.sh', ['restart', '--flush'])
        const ms = await waitUntilReachable('tcp', lab.gatewayWanAddress, () => mapped.port as number, 60_000)
        t.diagnostic(`${protocol}: reachable again ${ms} ms after the restart (target: one renewal period, ${RENEWAL_MS} ms, plus 5 s)`)
        // PCP and NAT-PMP hear the restarted gateway's announcements; UPnP finds the mapping gone
        // when it checks before renewing. Either way the NAT says the gateway lost its state.
        const reset = await agent.next('gateway-reset', 30_000, from)
        t.diagnostic(`${protocol}: told by "${String(reset.reason)}"`)
        await agent.exitCleanly()
      } finally {
        agent.kill()
      }
    })
  }

  for (const protocol of ['pcp', 'nat-pmp', 'upnp'] as const) {
    it(`${protocol}: the gateway's WAN address changes; externalAddr() gives the new one and it works`, async (t) => {
      const port = nextPort++
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { protocols: [protocol], ...FAST } })
      const moved = '11.77.0.9'
      try {
        await agent.next('mapped')
        const started = Date.now()
        runLabScript('gateway.sh', ['set-wan-ip', `${moved}/24`])
        const changed = await agent.next('external-address-changed', 60_000)
        t.diagnostic(`${protocol}: address change reported after ${Date.now() - started} ms (target: cacheTime 3000 ms plus one renewal ${RENEWAL_MS} ms)`)
        assert.equal(changed.address, moved)
        assert.equal(changed.isPublic, true)
        const address = await agent.ask('address', 'address')
        assert.equal(address.address, moved)
        await waitUntilReachable('tcp', moved, () => address.port as number, 30_000)
        await agent.exitCleanly()
      } finally {
        agent.kill()
        runLabScript('gateway.sh', ['set-wan-ip', `${lab.gatewayWanAddress}/24`])
      }
    })
  }

  for (const protocol of ['pcp', 'nat-pmp', 'upnp'] as const) {
    it(`${protocol}: the gateway silent past the lease: NoMappingError, then back by itself`, async (t) => {
      const port = nextPort++
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { protocols: [protocol], ...FAST, requestTimeout: 1_000 } })
      try {
        await agent.next('mapped')
        const from = agent.events.length
        runLabScript('gateway.sh', ['block'])
        await agent.next('lost', 60_000, from)
        const refused = await agent.ask('address', 'command-failed')
        assert.equal((refused.error as { code: string }).code, 'ERR_NO_MAPPING')
        const unblocked = Date.now()
        runLabScript('gateway.sh', ['unblock'])
        await agent.next('established', 60_000, from)
        t.diagnostic(`${protocol}: re-established ${Date.now() - unblocked} ms after the gateway answered again`)
        const address = await agent.ask('address', 'address')
        await waitUntilReachable('tcp', lab.gatewayWanAddress, () => address.port as number, 30_000)
        await agent.exitCleanly()
      } finally {
        agent.kill()
        runLabScript('gateway.sh', ['unblock'])
      }
    })
  }

  // Not UPnP: miniupnpd 2.3.1's nftables backend answers UPnP from a rule cache that only its own
  // changes refresh, so a rule deleted behind its back still looks held to GetSpecificPortMapping-
  // Entry and AddPortMapping alike; no UPnP client can see the loss (its PCP and NAT-PMP paths do
  // re-install the rule). A UPnP mapping repairs itself by its scheduled delete + add instead, and
  // on recreate(): not-forwarding.test.ts.
  for (const protocol of ['pcp', 'nat-pmp'] as const) {
    it(`${protocol}: a mapping rule deleted by hand on the gateway is restored`, async (t) => {
      const port = nextPort++
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { protocols: [protocol], ...FAST } })
      try {
        const mapped = await agent.next('mapped')
        runLabScript('gateway.sh', ['drop-mapping', 'tcp', String(mapped.port)])
        const ms = await waitUntilReachable('tcp', lab.gatewayWanAddress, () => mapped.port as number, 60_000)
        t.diagnostic(`${protocol}: rule restored and reachable ${ms} ms after it was deleted (target: one renewal period, ${RENEWAL_MS} ms)`)
        await agent.exitCleanly()
      } finally {
        agent.kill()
      }
    })
  }

  // miniupnpd stops answering with an address once its own is private or shared: UPnP says '' and
  // NAT-PMP NETWORK_FAILURE, both "unspecified" to natmapper. (PCP has no address request.)
  for (const protocol of ['nat-pmp', 'upnp'] as const) it(`${protocol}: the WAN address moves into shared address space (CGNAT): the NAT says it is not public`, async () => {
    const port = nextPort++
    const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { protocols: [protocol], ...FAST } })
    try {
      await agent.next('mapped')
      runLabScript('gateway.sh', ['set-wan-ip', '100.64.0.1/24'])
      const deadline = Date.now() + 60_000
      let status = await agent.ask('status', 'status')
      while (status.externalAddressIsPublic !== false && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500))
        status = await agent.ask('status', 'status')
      }
      assert.equal(status.externalAddressIsPublic, false, JSON.stringify(status))
      await agent.exitCleanly()
    } finally {
      agent.kill()
      runLabScript('gateway.sh', ['set-wan-ip', `${lab.gatewayWanAddress}/24`])
    }
  })

  it('a second gateway replaces the first as the default route: the mapping moves', async (t) => {
    const port = nextPort++
    runLabScript('gateway2.sh', ['up'])
    const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { ...FAST } })
    try {
      const discovered = await agent.next('discovered')
      assert.equal(discovered.gateway, lab.gatewayLanAddress)
      await agent.next('mapped')
      const moved = Date.now()
      runLabScript('lan-route.sh', ['gw2'])
      const changed = await agent.next('gateway-changed', 60_000)
      assert.equal(changed.gateway, labEnv.LAB_GW2_LAN_IP)
      const address = await (async () => {
        const deadline = Date.now() + 60_000
        while (true) {
          const answer = await agent.ask('address', 'address')
          if (answer.event === 'address' && answer.address === labEnv.LAB_GW2_WAN_IP) return answer
          if (Date.now() > deadline) throw new Error(`address never moved: ${JSON.stringify(answer)}`)
          await new Promise((resolve) => setTimeout(resolve, 500))
        }
      })()
      await waitUntilReachable('tcp', labEnv.LAB_GW2_WAN_IP ?? '', () => address.port as number, 30_000)
      t.diagnostic(`moved to ${String(changed.gateway)} (${String(changed.type)}) and reachable at ${String(address.address)}:${String(address.port)} ${Date.now() - moved} ms after the route changed`)
      await agent.exitCleanly()
    } finally {
      agent.kill()
      runLabScript('lan-route.sh', ['gw'])
      runLabScript('gateway2.sh', ['down'])
    }
  })
}, ['--uptime', 'daemon'])

