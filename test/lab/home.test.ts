import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, it } from 'node:test'
import { Agent, assertMappingLifecycle, gatewayHolds, gatewayHoldsPinhole, lab, labEnv, labSuite, reachableFromWan } from '../helpers/lab.js'
import { Cli, echoService, listening, natmapper } from '../helpers/lab-cli.js'

// The home profile (lab/README.md): the gateway advertises its prefixes (radvd), the LAN hosts
// autoconfigure with temporary addresses and route IPv6 via the gateway's link-local address,
// and miniupnpd's SSDP answers (from that link-local address) name its global address as
// LOCATION. What the CLI says there, which LOCATIONs natmapper follows (the gateway's own global,
// ULA and link-local addresses) and which it refuses (another LAN host, an off-link host), the
// library's pinhole lifecycles, and the CLI holding a mapping on each family. IPv4 on the same
// rules: stock.test.ts.

const NEXT_HOP = `${labEnv.LAB_GW_LAN_LL6 ?? ''}%${labEnv.LAB_LAN_IF ?? ''}`
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

function inNamespace (namespace: string, command: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', namespace, ...command], { encoding: 'utf8', ...(input === undefined ? {} : { input }) })
}

function gatewayNft (script: string): void {
  inNamespace(lab.gatewayNamespace, ['nft', '-f', '-'], script)
}

labSuite('lab: a home network (router advertisements, SLAAC, temporary addresses)', { mode: 'all', profile: 'home' }, () => {
  // Each test's CLI runs start with nothing remembered: a gateway that worked in an earlier test
  // (or run) would be asked at once, racing the searches under test.
  const cacheHome = process.env.XDG_CACHE_HOME
  beforeEach(() => { process.env.XDG_CACHE_HOME = mkdtempSync(join(tmpdir(), 'natmapper-home-test-')) })
  afterEach(() => {
    rmSync(process.env.XDG_CACHE_HOME ?? '', { recursive: true, force: true })
    if (cacheHome === undefined) delete process.env.XDG_CACHE_HOME
    else process.env.XDG_CACHE_HOME = cacheHome
  })

  // Under the stock rules, through the link-local next hop, from a host whose outgoing
  // connections prefer a temporary address: the pinhole opens to the stable address, the WAN host
  // reaches it there, and close leaves it unreachable with no rule left.
  let nextPort = 28_000
  for (const protocol of ['pcp', 'upnp'] as const) {
    for (const transport of ['tcp', 'udp'] as const) {
      it(`${protocol} ${transport} IPv6: discover, pinhole, reached at the stable address from the WAN, close, unreachable, gone`, async () => {
        await assertMappingLifecycle({ transport, port: nextPort++, discover: { protocols: [protocol], family: 'IPv6' } }, protocol === 'upnp' ? 'upnp-igd2' : protocol)
      })
    }
  }

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

  it('CLI: natmapper map tcp PORT holds one mapping per family, each reachable from the WAN host; SIGINT deletes both and exits 0', async () => {
    const port = 28_400
    const service = echoService(port)
    const cli = new Cli(['map', 'tcp', String(port), '--json'])
    try {
      await listening(service)
      await cli.event('established', 2)
      const established = cli.events.filter((e) => e.event === 'established')
      const ipv4 = established.find((e) => e.family === 'IPv4')
      const ipv6 = established.find((e) => e.family === 'IPv6')
      assert.equal(ipv4?.address, lab.gatewayWanAddress, cli.transcript())
      assert.deepEqual([ipv6?.address, ipv6?.port], [lab.lanAddress6, port], cli.transcript())
      const ipv4Port = ipv4?.port as number
      assert.ok(gatewayHolds('tcp', ipv4Port))
      assert.ok(gatewayHoldsPinhole('tcp', lab.lanAddress6, port))
      for (const [address, externalPort] of [[lab.gatewayWanAddress, ipv4Port], [lab.lanAddress6, port]] as const) {
        const reach = await reachableFromWan('tcp', address, externalPort)
        assert.ok(reach.ok, `WAN host reaches ${address}:${externalPort}: ${reach.output}`)
      }
      assert.ok(cli.events.every((e) => e.family === 'IPv4' || e.family === 'IPv6'), 'every JSON line names its family')
      cli.signal('SIGINT')
      assert.equal(await cli.exit(), 0, cli.transcript())
      assert.deepEqual(cli.events.filter((e) => e.event === 'closed').map((e) => [e.family, e.deleted]).sort(), [['IPv4', true], ['IPv6', true]])
      assert.ok(!gatewayHolds('tcp', ipv4Port), 'IPv4 mapping deleted on SIGINT')
      assert.ok(!gatewayHoldsPinhole('tcp', lab.lanAddress6, port), 'IPv6 pinhole deleted on SIGINT')
    } finally {
      cli.kill()
      service.kill()
    }
  })

  // LOCATIONs other than miniupnpd's own: nft in nm-gw hands the LAN's SSDP searches to a decoy
  // that answers, from the gateway's link-local address as miniupnpd does, with the LOCATION
  // under test; miniupnpd keeps serving HTTP, PCP and everything else.
  const DECOY_SSDP_PORT = 1901
  async function withDecoySsdp<T> (location: string, task: (decoy: Agent) => Promise<T>): Promise<T> {
    gatewayNft(`table inet lab_decoy {
  chain prerouting {
    type nat hook prerouting priority -150; policy accept;
    iifname "${labEnv.LAB_GW_LAN_IF ?? ''}" udp dport ${labEnv.LAB_SSDP_PORT ?? ''} redirect to :${DECOY_SSDP_PORT}
  }
}`)
    const decoy = new Agent(lab.gatewayNamespace, 'decoy.ts', { role: 'ssdp', port: DECOY_SSDP_PORT, location })
    try {
      await decoy.next('ready')
      const result = await task(decoy)
      assert.ok(decoy.count('search') > 0, 'the decoy answered the searches')
      return result
    } finally {
      decoy.kill()
      gatewayNft('delete table inet lab_decoy')
    }
  }

  // Another address of the gateway itself: followed. The pinhole request leaves from the stable
  // address (secure mode would answer 606 to the temporary one) whichever address it goes to.
  const followed = [
    { what: 'its global address (miniupnpd\'s own answer)', host: () => lab.gatewayLanAddress6, decoy: false },
    { what: 'its ULA address', host: () => labEnv.LAB_GW_LAN_ULA_IP6 ?? '', decoy: true },
    { what: 'its link-local address (as AVM Fritz!Box does)', host: () => labEnv.LAB_GW_LAN_LL6 ?? '', decoy: true }
  ]
  let followedPort = 28_300
  for (const { what, host, decoy } of followed) {
    it(`a LOCATION naming ${what} is followed: natmapper map opens a pinhole the WAN host reaches; SIGINT closes it; exit 0`, async () => {
      const port = followedPort++
      const location = `http://[${host()}]:${labEnv.LAB_HTTP_PORT ?? ''}/rootDesc.xml`
      const run = async (): Promise<void> => {
        const service = echoService(port)
        const cli = new Cli(['map', 'tcp', String(port), '--family', 'ipv6', '--protocol', 'upnp', '--json', '--verbose'])
        try {
          await listening(service)
          const established = await cli.event('established')
          assert.deepEqual([established.address, established.port], [lab.lanAddress6, port], cli.transcript())
          assert.ok(gatewayHoldsPinhole('tcp', lab.lanAddress6, port), 'the gateway holds the pinhole')
          const reach = await reachableFromWan('tcp', lab.lanAddress6, port)
          assert.ok(reach.ok, `the WAN host reaches the stable address: ${reach.output}`)
          cli.signal('SIGINT')
          assert.equal(await cli.exit(), 0, cli.transcript())
          assert.ok(!gatewayHoldsPinhole('tcp', lab.lanAddress6, port), 'no pinhole left')
          assert.ok(!(await reachableFromWan('tcp', lab.lanAddress6, port)).ok, 'unreachable again')
          const wire = cli.stderr.map((line) => JSON.parse(line) as { event: string, direction?: string, peer?: string, text?: string })
          assert.deepEqual(wire.filter((line) => line.event === 'note'), [], 'nothing refused')
          const peers = new Set(wire.filter((line) => line.direction === 'send' && line.text?.startsWith('GET ') === true).map((line) => line.peer))
          assert.ok(peers.has(`[${host()}]:${labEnv.LAB_HTTP_PORT ?? ''}`), `the description came from ${host()}: ${[...peers].join(', ')}`)
        } finally {
          cli.kill()
          service.kill()
        }
      }
      if (decoy) await withDecoySsdp(location, run)
      else await run()
    })
  }

  // Another host named as LOCATION: refused, nothing asked of it, the reason under --verbose.
  const refused = [
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
  let refusedPort = 28_200
  for (const { what, namespace, host, reason } of refused) {
    it(`a LOCATION naming ${what} is refused, with the reason under --verbose; the gateway's own address is asked instead`, async () => {
      const port = refusedPort++
      const location = `http://[${host()}]:${port}/rootDesc.xml`
      const http = new Agent(namespace(), 'decoy.ts', { role: 'http', port })
      try {
        await http.next('ready')
        const result = await withDecoySsdp(location, async () => await natmapper(['discover', '--family', 'ipv6', '--protocol', 'upnp', '--verbose']))
        assert.notEqual(result.code, 0, result.cli.transcript())
        const note = `!! upnp ${NEXT_HOP} LOCATION ${location} not followed: ${reason()}; asking the gateway's own address [${labEnv.LAB_GW_LAN_LL6 ?? ''}]:${port} instead`
        assert.ok(result.stderr.split('\n').includes(note), `expected "${note}" in\n${result.stderr}`)
        assert.equal(http.count('data'), 0, 'no request reached the named host')
        assert.doesNotMatch(result.stderr, new RegExp(`^-> upnp \\[${escape(host())}\\]`, 'm'), 'nothing was sent to the named host')
      } finally {
        http.kill()
      }
    })
  }
})
