import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { it } from 'node:test'
import { Agent, gatewayHolds, lab, labSuite, reachableFromWan, type LabGateway } from '../helpers/lab.js'

// The real gateway with NAT-PMP and PCP off: UPnP IGD only, as IGDv2 (miniupnpd's default) and
// as IGDv1. The whole life of a mapping for TCP and UDP, and a port conflict with another host.
// Both run against the stock rules (ports >= 1024 only), IGDv1 as the most common consumer router.
const gateways: Array<[LabGateway, 'upnp-igd2' | 'upnp-igd1']> = [
  [{ mode: 'upnp', profile: 'stock' }, 'upnp-igd2'],
  [{ profile: 'stock-igd1' }, 'upnp-igd1']
]
for (const [gateway, type] of gateways) {
  labSuite(`lab: UPnP ${type} against miniupnpd (${gateway.profile})`, gateway, () => {
    let nextPort = type === 'upnp-igd2' ? 22_000 : 23_000
    for (const transport of ['tcp', 'udp'] as const) {
      it(`${transport}: map, reach from the WAN, delete, exit by itself`, async () => {
        const port = nextPort++
        const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport, port, discover: { protocols: ['upnp'] } })
        try {
          const discovered = await agent.next('discovered')
          assert.equal(discovered.type, type)
          assert.equal(discovered.gateway, lab.gatewayLanAddress)
          const mapped = await agent.next('mapped')
          assert.equal(mapped.address, lab.gatewayWanAddress)
          const externalPort = mapped.port as number
          assert.ok(gatewayHolds(transport, externalPort), 'the gateway holds a redirect for the mapping')
          const reach = await reachableFromWan(transport, lab.gatewayWanAddress, externalPort)
          assert.ok(reach.ok, `WAN host reaches the LAN service: ${reach.output}`)

          agent.send('close-mapping')
          await agent.next('mapping-closed')
          assert.ok(!gatewayHolds(transport, externalPort), 'the gateway no longer holds the mapping')
          await agent.exitCleanly()
        } finally {
          agent.kill()
        }
      })
    }

    it('conflict: another LAN host holds the port we ask for; we get another one, truthfully', async () => {
      const port = nextPort++
      // The second LAN host takes external port `port` first, with the reference client.
      const taken = spawnSync('ip', ['netns', 'exec', lab.lan2Namespace, 'upnpc', '-u', `http://${lab.gatewayLanAddress}:5000/rootDesc.xml`,
        '-e', 'lan2', '-a', lab.lan2Address, String(port), String(port), 'TCP'], { encoding: 'utf8', timeout: 30_000 })
      assert.equal(taken.status, 0, taken.stdout + taken.stderr)
      assert.ok(gatewayHolds('tcp', port))

      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { protocols: ['upnp'] }, mapping: { externalPort: port } })
      try {
        const mapped = await agent.next('mapped')
        const externalPort = mapped.port as number
        assert.notEqual(externalPort, port, 'the gateway could not give us the port the other host holds')
        assert.ok(gatewayHolds('tcp', externalPort))
        const reach = await reachableFromWan('tcp', lab.gatewayWanAddress, externalPort)
        assert.ok(reach.ok, `WAN host reaches us on the port we reported: ${reach.output}`)
        await agent.exitCleanly()
        assert.ok(!gatewayHolds('tcp', externalPort))
        assert.ok(gatewayHolds('tcp', port), 'the other host\'s mapping is untouched')
      } finally {
        agent.kill()
      }
    })
  })
}
