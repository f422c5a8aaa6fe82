import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { it } from 'node:test'
import { Agent, lab, labEnv, labSuite, runLabScript } from '../helpers/lab.js'
import { natmapper } from '../helpers/lab-cli.js'

// The home profile (lab/README.md): the gateway advertises its prefixes (radvd), the LAN hosts
// autoconfigure with temporary addresses and route IPv6 via the gateway's link-local address,
// and miniupnpd's SSDP answers (from that link-local address) name its global address as
// LOCATION. What the CLI says there, and which LOCATIONs natmapper refuses to follow. The pinhole
// lifecycles on this profile are in stock.test.ts.

const NEXT_HOP = `${labEnv.LAB_GW_LAN_LL6 ?? ''}%${labEnv.LAB_LAN_IF ?? ''}`
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

function inNamespace (namespace: string, command: string[]): string {
  return execFileSync('ip', ['netns', 'exec', namespace, ...command], { encoding: 'utf8' })
}

labSuite('lab: a home network (router advertisements, SLAAC, temporary addresses)', { mode: 'all', profile: 'home' }, () => {
  it('the LAN host is set up as a desktop: default route via the link-local address, temporary source addresses preferred', () => {
    const routes = inNamespace(lab.lanNamespace, ['ip', '-6', 'route', 'show', 'default'])
    assert.match(routes, new RegExp(`^default via ${escape(labEnv.LAB_GW_LAN_LL6 ?? '')} dev ${labEnv.LAB_LAN_IF ?? ''} proto ra `, 'm'))
    const addresses = inNamespace(lab.lanNamespace, ['ip', '-6', 'addr', 'show', 'scope', 'global'])
    assert.match(addresses, new RegExp(`inet6 ${escape(lab.lanAddress6)}/64 `))
    assert.match(addresses, new RegExp(`inet6 ${escape(labEnv.LAB_LAN_SLAAC_ULA6 ?? '')}/64 `))
    // The kernel's own choice toward the gateway's global address is a temporary address: a
    // request left to it would not come from the InternalClient (secure mode answers 606).
    const route = inNamespace(lab.lanNamespace, ['ip', '-6', 'route', 'get', lab.gatewayLanAddress6])
    const source = /\bsrc (\S+)/.exec(route)?.[1] ?? ''
    assert.notEqual(source, lab.lanAddress6, route)
    assert.match(addresses, new RegExp(`inet6 ${escape(source)}/64 .*temporary`), `${source} is temporary:\n${addresses}`)
  })

  it('natmapper discover: both families answer, IPv6 through the link-local next hop with pinholes to the stable address; exit 0', async () => {
    const human = await natmapper(['discover'])
    assert.equal(human.code, 0, human.cli.transcript())
    assert.match(human.stdout, /^IPv6$/m)
    assert.match(human.stdout, new RegExp(`^gateway +${escape(NEXT_HOP)} \\(the default route\\)$`, 'm'))
    assert.match(human.stdout, new RegExp(`^pinholes +possible: pcp opens inbound connections to ${escape(lab.lanAddress6)} `, 'm'))

    const json = await natmapper(['discover', '--json'])
    assert.equal(json.code, 0, json.cli.transcript())
    const [ipv4, ipv6] = json.cli.events
    assert.deepEqual([ipv4?.family, ipv4?.type, ipv4?.externalAddress], ['IPv4', 'pcp', lab.gatewayWanAddress])
    assert.deepEqual([ipv6?.family, ipv6?.gateway, ipv6?.localAddress, ipv6?.type, ipv6?.pinholes], ['IPv6', NEXT_HOP, lab.lanAddress6, 'pcp', true])
  })

  it('natmapper discover over UPnP alone: the LOCATION naming the gateway\'s global address is followed; exit 0', async () => {
    const result = await natmapper(['discover', '--family', 'ipv6', '--protocol', 'upnp', '--verbose'])
    assert.equal(result.code, 0, result.cli.transcript())
    assert.match(result.stdout, /^using +upnp-igd2$/m)
    assert.match(result.stdout, new RegExp(`^pinholes +possible: upnp-igd2 opens inbound connections to ${escape(lab.lanAddress6)} `, 'm'))
    assert.match(result.stderr, new RegExp(`^-> upnp \\[${escape(lab.gatewayLanAddress6)}\\]:\\d+ \\d+ bytes: GET /rootDesc.xml`, 'm'))
    assert.doesNotMatch(result.stderr, /^!! /m, 'nothing refused')
  })

  it('natmapper map --once, each family, each protocol that has it: exit 0', async () => {
    let port = 28_100
    for (const [family, protocol] of [['ipv4', 'pcp'], ['ipv4', 'nat-pmp'], ['ipv4', 'upnp'], ['ipv6', 'pcp'], ['ipv6', 'upnp']] as const) {
      const result = await natmapper(['map', 'udp', String(port++), '--once', '--duration', '120', '--family', family, '--protocol', protocol])
      assert.equal(result.code, 0, `${family} ${protocol}\n${result.cli.transcript()}`)
      assert.match(result.stdout, /established: udp /, result.cli.transcript())
    }
  })

  // A gateway whose SSDP answer (from its own link-local address) names another host as LOCATION:
  // miniupnpd stopped, a decoy answers SSDP in its place, and a decoy HTTP server waits on the
  // named host. natmapper must send that host no request, and say why under --verbose.
  const refusals = [
    {
      what: 'another host on the LAN (nm-lan2)',
      namespace: () => lab.lan2Namespace,
      host: () => lab.lan2Address6,
      reason: () => `${lab.lan2Address6} is another device on the link (link-layer address ${labEnv.LAB_LAN2_MAC ?? ''}, the gateway's is ${labEnv.LAB_GW_LAN_MAC ?? ''})`
    },
    {
      what: 'an off-link host (the WAN host)',
      namespace: () => lab.wanNamespace,
      host: () => lab.wanAddress6,
      reason: () => `${lab.wanAddress6} is off-link: no prefix of ${labEnv.LAB_LAN_IF ?? ''} holds it`
    }
  ]
  for (const { what, namespace, host, reason } of refusals) {
    it(`a LOCATION naming ${what} is refused, with the reason under --verbose`, async () => {
      const port = 28_200 + refusals.findIndex((refusal) => refusal.what === what)
      const location = `http://[${host()}]:${port}/rootDesc.xml`
      runLabScript('gateway.sh', ['stop'])
      const ssdp = new Agent(lab.gatewayNamespace, 'decoy.ts', { role: 'ssdp', location })
      const http = new Agent(namespace(), 'decoy.ts', { role: 'http', port })
      try {
        await ssdp.next('ready')
        await http.next('ready')
        const result = await natmapper(['discover', '--family', 'ipv6', '--protocol', 'upnp', '--verbose'])
        assert.notEqual(result.code, 0, result.cli.transcript())
        assert.ok(ssdp.count('search') > 0, 'the decoy answered the search')
        const note = `!! upnp ${NEXT_HOP} LOCATION ${location} not followed: ${reason()}; asking the gateway's own address [${labEnv.LAB_GW_LAN_LL6 ?? ''}]:${port} instead`
        assert.ok(result.stderr.split('\n').includes(note), `expected "${note}" in\n${result.stderr}`)
        assert.equal(http.count('data'), 0, 'no request reached the named host')
        assert.doesNotMatch(result.stderr, new RegExp(`^-> upnp \\[${escape(host())}\\]`, 'm'), 'nothing was sent to the named host')
      } finally {
        ssdp.kill()
        http.kill()
        runLabScript('gateway.sh', ['start'])
      }
    })
  }
})
