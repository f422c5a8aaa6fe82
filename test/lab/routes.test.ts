import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { Agent, assertMappingLifecycle, lab, labEnv, labSuite, reachableFromWan, runLabScript } from '../helpers/lab.js'
import { Cli, echoService, listening, natmapper } from '../helpers/lab-cli.js'

// The route the kernel uses (issue 19): natmapper finds the gateway as `ip route get` would, with
// every table and `ip rule`, not only the main table. nm-lan's routing is set by lab/vpn.sh
// (layouts main, policy, wg) and the VPN server nm-vpn sits beside the lab: a point-to-point tun
// link (wg0, no link layer, what wireguard-go or OpenVPN give a host; the kernel here has no
// wireguard module) to a NAT-PMP server on 10.2.0.1, as ProtonVPN's. The gateway is `stock`.
labSuite('lab: the route the kernel uses (policy routing, wg-quick, a VPN gateway over a point-to-point link)', { mode: 'all', profile: 'stock' }, () => {
  const VPN_GATEWAY = labEnv.LAB_VPN_IP ?? ''
  const VPN_WAN = labEnv.LAB_VPN_WAN_IP ?? ''
  const VPN_CLIENT = labEnv.LAB_VPN_CLIENT_IP ?? ''
  let nextPort = 27_500

  before(() => { runLabScript('vpn.sh', ['up']) })
  after(() => { runLabScript('vpn.sh', ['down']) })

  it('default route only in a table chosen by ip rule (nothing in main): discover finds the gateway on both families, and a PCP mapping works', async () => {
    runLabScript('vpn.sh', ['layout', 'policy'])
    try {
      const discover = await natmapper(['discover'])
      assert.equal(discover.code, 0, discover.cli.transcript())
      assert.match(discover.stdout, new RegExp(`^gateway +${lab.gatewayLanAddress.replaceAll('.', '\\.')} \\(the route the kernel uses, table ${labEnv.LAB_POLICY_TABLE ?? ''}\\)$`, 'm'))
      assert.match(discover.stdout, new RegExp(`^gateway +${lab.gatewayLanAddress6} `, 'm'))
      assert.equal(discover.stdout.match(/^using +pcp$/gm)?.length, 2, discover.stdout)
      const json = await natmapper(['discover', '--json', '--family', 'ipv4'])
      assert.equal(json.code, 0, json.cli.transcript())
      const event = json.cli.events[0] ?? {}
      assert.deepEqual([event.gateway, event.routeTable, event.unusedGateway], [lab.gatewayLanAddress, labEnv.LAB_POLICY_TABLE, undefined])
      await assertMappingLifecycle({ transport: 'tcp', port: nextPort++, discover: { protocols: ['pcp'], family: 'IPv4' } }, 'pcp')
    } finally {
      runLabScript('vpn.sh', ['layout', 'main'])
    }
  })

  it("wg-quick's layout (main table via the router, all traffic through a table whose default route has no next hop): one line naming wg0, the unused router and --gateway", async () => {
    runLabScript('vpn.sh', ['layout', 'wg'])
    try {
      const discover = await natmapper(['discover'])
      assert.equal(discover.code, 1, discover.cli.transcript())
      for (const [family, router] of [['IPv4', lab.gatewayLanAddress], ['IPv6', lab.gatewayLanAddress6]]) {
        const lines = discover.stdout.split('\n').filter((line) => line.includes(`${family} Internet traffic`))
        assert.equal(lines.length, 1, discover.stdout)
        assert.match(lines[0] ?? '', new RegExp(`^gateway +none: the kernel routes ${family} Internet traffic through ${labEnv.LAB_VPN_CLIENT_IF ?? ''}, a point-to-point link with no gateway to ask \\(not via ${(router ?? '').replaceAll('.', '\\.')}, the main table's default route\\): give the gateway with --gateway \\(options\\.gateway\\)`))
      }
      const json = await natmapper(['discover', '--json', '--family', 'ipv4'])
      assert.equal(json.code, 1, json.cli.transcript())
      assert.equal((json.cli.events[0]?.error as { code?: string } | undefined)?.code, 'ERR_NO_NEXT_HOP', json.stdout)
      // The library says the same: discoverNAT() rejects with the typed error, nothing was sent.
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port: nextPort++, discover: { family: 'IPv4' } })
      try {
        const failed = await agent.next('discovery-failed')
        assert.equal((failed.error as { code?: string }).code, 'ERR_NO_NEXT_HOP', JSON.stringify(failed))
      } finally {
        agent.kill()
      }
    } finally {
      runLabScript('vpn.sh', ['layout', 'main'])
    }
  })

  it('a policy table whose default route goes via another gateway (on wg0): discover names both, and discovery maps on the one the kernel uses', async () => {
    runLabScript('vpn.sh', ['layout', 'via'])
    try {
      const discover = await natmapper(['discover', '--family', 'ipv4'])
      assert.equal(discover.code, 0, discover.cli.transcript())
      assert.match(discover.stdout, new RegExp(`^gateway +${VPN_GATEWAY.replaceAll('.', '\\.')} \\(the route the kernel uses, table ${labEnv.LAB_VPN_TABLE ?? ''}; not ${lab.gatewayLanAddress.replaceAll('.', '\\.')}, the main table's default route, which the kernel does not use\\)$`, 'm'))
      assert.match(discover.stdout, new RegExp(`^external address ${VPN_WAN.replaceAll('.', '\\.')},`, 'm'))
      // discoverNAT() sees that our address toward the Internet is not the one facing the main
      // table's gateway, asks `ip route get`, and probes 10.2.0.1 only.
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'udp', port: nextPort++, discover: { protocols: ['pcp'], family: 'IPv4' } })
      try {
        const discovered = await agent.next('discovered')
        assert.deepEqual([discovered.gateway, discovered.localAddress, discovered.type], [VPN_GATEWAY, VPN_CLIENT, 'pcp'])
        const mapped = await agent.next('mapped')
        assert.equal(mapped.address, VPN_WAN)
        const vpnMappings = runLabScript('vpn.sh', ['mappings'])
        assert.match(vpnMappings, new RegExp(`^udp ${String(mapped.port)} ${VPN_CLIENT.replaceAll('.', '\\.')} `, 'm'))
        assert.equal(runLabScript('gateway.sh', ['mappings']).trim(), '', 'nothing mapped on the router the kernel does not use')
        const reach = await reachableFromWan('udp', VPN_WAN, mapped.port as number)
        assert.ok(reach.ok, `the WAN host reaches the LAN service through the VPN: ${reach.output}`)
        agent.send('close-mapping')
        assert.equal((await agent.next('mapping-closed')).established, false)
        assert.equal(runLabScript('vpn.sh', ['mappings']).trim(), '', 'no rule left on the VPN server')
        await agent.exitCleanly()
      } finally {
        agent.kill()
      }
    } finally {
      runLabScript('vpn.sh', ['layout', 'main'])
    }
  })

  it("a NAT-PMP gateway over the point-to-point link, named with --gateway (wg-quick's layout): map, reached from the WAN at the VPN's address, SIGINT deletes it", async () => {
    runLabScript('vpn.sh', ['layout', 'wg'])
    const port = nextPort++
    const service = echoService(port)
    const cli = new Cli(['map', 'tcp', String(port), '--gateway', VPN_GATEWAY, '--protocol', 'nat-pmp', '--json', '--family', 'ipv4'])
    const vpnHolds = (externalPort: number): boolean => runLabScript('vpn.sh', ['mappings']).split('\n').includes(`tcp ${externalPort} ${VPN_CLIENT} ${port}`)
    try {
      await listening(service)
      const discovered = await cli.event('discovered')
      assert.deepEqual([discovered.gateway, discovered.localAddress, discovered.type], [VPN_GATEWAY, VPN_CLIENT, 'nat-pmp'])
      const established = await cli.event('established')
      assert.equal(established.address, VPN_WAN)
      const externalPort = established.port as number
      assert.ok(vpnHolds(externalPort), runLabScript('vpn.sh', ['mappings']))
      const reach = await reachableFromWan('tcp', VPN_WAN, externalPort)
      assert.ok(reach.ok, `the WAN host reaches the LAN service through the VPN: ${reach.output}`)
      cli.signal('SIGINT')
      assert.equal(await cli.exit(), 0, cli.transcript())
      assert.equal(cli.events.at(-1)?.deleted, true, cli.transcript())
      assert.ok(!vpnHolds(externalPort), 'the VPN server no longer holds the mapping')
      assert.ok(!(await reachableFromWan('tcp', VPN_WAN, externalPort)).ok, 'unreachable after close')
    } finally {
      cli.kill()
      service.kill('SIGKILL')
      runLabScript('vpn.sh', ['layout', 'main'])
    }
  })
})
