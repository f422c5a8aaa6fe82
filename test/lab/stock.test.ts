import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Agent, assertMappingLifecycle, GATEWAY_REFUSAL, gatewayLog, gatewayRules, lab, labSuite, quietGatewayLog, runLabScript } from '../helpers/lab.js'
import { natmapper } from '../helpers/lab-cli.js'

// The gateway as routers ship it (lab/README.md, "Gateway profiles"): miniupnpd's sample
// permission rules (LAN hosts may map ports >= 1024 only), secure mode, PCP min_lifetime 120,
// everything else its defaults. What a new user meets: every protocol works for ports >= 1024, the
// CLI exits 0, a port below 1024 is refused with a reason, and asking for the external address
// makes no request the rules refuse. IPv6 under the same rules, on a home network's IPv6 (the home
// profile): home.test.ts.
labSuite('lab: a stock router (miniupnpd sample rules)', { mode: 'all', profile: 'stock' }, () => {
  let nextPort = 27_000

  const lifecycles = [
    { protocol: 'pcp', transport: 'tcp', family: 'IPv4', type: 'pcp' },
    { protocol: 'nat-pmp', transport: 'udp', family: 'IPv4', type: 'nat-pmp' },
    { protocol: 'upnp', transport: 'tcp', family: 'IPv4', type: 'upnp-igd2' }
  ] as const
  for (const { protocol, transport, family, type } of lifecycles) {
    it(`${protocol} ${transport} ${family}: discover, map a port >= 1024, reach it from the WAN, close, gone`, async () => {
      await assertMappingLifecycle({ transport, port: nextPort++, discover: { protocols: [protocol], family } }, type)
    })
  }

  for (const protocol of ['pcp', 'nat-pmp', 'upnp'] as const) {
    it(`${protocol}: internal port 80 is refused with the gateway's own code, and the message says why`, async () => {
      // miniupnpd 2.3.1 walks every external port before each refusal (about a second each, for
      // every retransmission too) and answers nothing meanwhile: generous limits, and discovery
      // may have to wait for the previous test's walks to end. On a loaded machine one walk takes
      // longer than the default 4 s request timeout (seen with seven lab sessions on two cores).
      const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port: 80, discover: { protocols: [protocol], timeout: 60_000, requestTimeout: 20_000 } })
      try {
        const refused = await agent.next('not-mapped', 90_000)
        const error = refused.lastError as { code: string, protocol: string, resultCode: number, resultName: string, message: string }
        assert.equal(error.code, 'ERR_GATEWAY_RESULT', JSON.stringify(error))
        assert.equal(error.protocol, protocol)
        // PCP and NAT-PMP: NOT_AUTHORIZED (2); miniupnpd's UPnP: 606 ActionNotAuthorized.
        assert.deepEqual([error.resultCode, error.resultName], protocol === 'upnp' ? [606, 'ActionNotAuthorized'] : [2, 'NOT_AUTHORIZED'])
        assert.match(error.message, /internal port 80/)
        assert.match(error.message, /1024-65535/)
        assert.doesNotMatch(gatewayRules(), /dport 80\b/, 'nothing mapped')
        await agent.exitCleanly()
      } finally {
        agent.kill()
      }
    })
  }

  it('pcp: nat.externalAddress() with no mapping answers, makes no request the rules refuse, and leaves no rule behind', async () => {
    const logBefore = await quietGatewayLog()
    const agent = new Agent(lab.lanNamespace, 'address-agent.ts', { discover: { protocols: ['pcp'] }, times: 5 })
    try {
      assert.equal((await agent.next('discovered')).type, 'pcp')
      await agent.next('closed')
      assert.equal(await agent.exit(), 0)
      const answers = agent.events.filter((e) => e.event === 'address')
      assert.equal(answers.length, 5, JSON.stringify(agent.events))
      for (const answer of answers) assert.equal(answer.address, lab.gatewayWanAddress)
      // Timing is the benchmark's business; printed for the record.
      console.log(`externalAddress() on PCP under stock: ${answers.map((a) => (a.ms as number).toFixed(1)).join(', ')} ms`)
      const log = gatewayLog().slice(logBefore)
      assert.doesNotMatch(log, GATEWAY_REFUSAL, `the gateway refused something:\n${log.slice(-2000)}`)
      assert.doesNotMatch(log, /PCP MAP: /i, 'no PCP MAP was needed')
      assert.equal(runLabScript('gateway.sh', ['mappings']).trim(), '', 'no rule left behind')
    } finally {
      agent.kill()
    }
  })

  it('CLI: natmapper ip and discover exit 0 and report the external address', async () => {
    const logBefore = await quietGatewayLog()
    const ip = await natmapper(['ip'])
    assert.equal(ip.code, 0, ip.cli.transcript())
    assert.equal(ip.stdout, lab.gatewayWanAddress)
    const discover = await natmapper(['discover'])
    assert.equal(discover.code, 0, discover.cli.transcript())
    assert.match(discover.stdout, /^using +pcp$/m)
    const log = gatewayLog().slice(logBefore)
    assert.doesNotMatch(log, GATEWAY_REFUSAL, `the gateway refused something:\n${log.slice(-2000)}`)
    assert.equal(runLabScript('gateway.sh', ['mappings']).trim(), '', 'no rule left behind')
  })
})

// The most common consumer router: the same rules, UPnP IGDv1 only (NAT-PMP/PCP off). The UPnP
// suite (upnp.test.ts) covers its mapping lifecycle; here, what the CLI and a refusal look like.
labSuite('lab: a stock IGDv1 router (UPnP only)', { profile: 'stock-igd1' }, () => {
  it('CLI: natmapper ip and discover exit 0 over IGDv1', async () => {
    const ip = await natmapper(['ip'])
    assert.equal(ip.code, 0, ip.cli.transcript())
    assert.equal(ip.stdout, lab.gatewayWanAddress)
    const discover = await natmapper(['discover'])
    assert.equal(discover.code, 0, discover.cli.transcript())
    assert.match(discover.stdout, /^using +upnp-igd1$/m)
  })
})
