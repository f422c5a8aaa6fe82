import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { it } from 'node:test'
import { gatewayHolds, lab, labEnv, labSuite, reachableFromWan } from '../helpers/lab.js'
import { BUILT_CLI, Cli, echoService, listening, natmapper } from '../helpers/lab-cli.js'

// The real `natmapper` executable, run inside the LAN namespace against miniupnpd (UPnP IGDv2,
// NAT-PMP and PCP all on): every command in human and --json form, `map` held across renewals and
// stopped by signals, --once and unmap, and the exit codes. The test process itself sends nothing.

const WAN = lab.gatewayWanAddress
const GATEWAY = lab.gatewayLanAddress

// Permissive profile: this suite drives the CLI through the lab's every-port rules; the CLI under
// the stock rules is covered in stock.test.ts.
labSuite('lab: the natmapper CLI', { mode: 'all', profile: 'permissive' }, () => {
  let nextPort = 21_000

  it('discover: each protocol, the one in use and the public external address (human and --json)', async () => {
    const human = await natmapper(['discover'])
    assert.equal(human.code, 0, human.cli.transcript())
    assert.match(human.stdout, new RegExp(`^gateway +${GATEWAY.replaceAll('.', '\\.')} \\(the default route\\)$`, 'm'))
    assert.match(human.stdout, new RegExp(`^local address +${lab.lanAddress.replaceAll('.', '\\.')}$`, 'm'))
    assert.match(human.stdout, /^pcp +yes, answered in /m)
    assert.match(human.stdout, /^nat-pmp +yes, answered in /m)
    assert.match(human.stdout, /^upnp +/m)
    assert.match(human.stdout, /^using +pcp$/m)
    assert.match(human.stdout, new RegExp(`^external address +${WAN.replaceAll('.', '\\.')}, public`, 'm'))

    // The IPv6 gateway too (what it says there: home.test.ts, on a home network's IPv6).
    assert.match(human.stdout, /^IPv6$/m)

    const json = await natmapper(['discover', '--json'])
    assert.equal(json.code, 0, json.cli.transcript())
    assert.deepEqual(json.cli.events.map((e) => e.family), ['IPv4', 'IPv6'], 'one JSON object per family')
    const result = json.cli.events[0] ?? {}
    assert.equal(result.event, 'discovered')
    assert.equal(result.gateway, GATEWAY)
    assert.equal(result.localAddress, lab.lanAddress)
    assert.equal(result.type, 'pcp')
    assert.equal(result.externalAddress, WAN)
    assert.equal(result.publiclyRoutable, true)
    const probes = result.probes as Array<{ protocol: string, ok: boolean, ms: number }>
    assert.deepEqual(probes.map((probe) => probe.protocol), ['pcp', 'nat-pmp', 'upnp'])
    for (const probe of probes.filter((p) => p.protocol !== 'upnp')) assert.ok(probe.ok && probe.ms >= 0, JSON.stringify(probe))
  })

  it('ip: the external address alone, and as JSON; --verbose shows the decoded exchange on stderr', async () => {
    const human = await natmapper(['ip'])
    assert.equal(human.code, 0, human.cli.transcript())
    assert.equal(human.stdout, WAN)

    const json = await natmapper(['ip', '--json', '--protocol', 'nat-pmp'])
    assert.equal(json.code, 0, json.cli.transcript())
    assert.deepEqual(json.cli.events, [{ event: 'external-address', address: WAN, scope: 'public', publiclyRoutable: true, type: 'nat-pmp', gateway: GATEWAY }])

    const verbose = await natmapper(['ip', '--verbose', '--protocol', 'pcp'])
    assert.equal(verbose.code, 0, verbose.cli.transcript())
    assert.equal(verbose.stdout, WAN, 'stdout holds the address alone')
    assert.match(verbose.stderr, new RegExp(`^-> pcp ${GATEWAY}:5351 ANNOUNCE request`, 'm'))
    assert.match(verbose.stderr, /^<- pcp \S+ ANNOUNCE response SUCCESS \(0\)/m)
    // The address comes from the gateway's NAT-PMP on the same port, never from a PCP MAP probe.
    assert.match(verbose.stderr, new RegExp(`^<- nat-pmp ${GATEWAY}:5351 .*${WAN.replaceAll('.', '\\.')}`, 'm'))
    assert.doesNotMatch(verbose.stderr, /MAP request/)
  })

  it('map --json, held across renewals: reachable from the WAN host; SIGINT deletes the mapping and exits 0', async () => {
    const port = nextPort++
    const service = echoService(port)
    const cli = new Cli(['map', 'tcp', String(port), '--duration', '3', '--json', '--family', 'ipv4'])
    try {
      await listening(service)
      assert.deepEqual(Object.keys(await cli.event('discovered')).sort(), ['event', 'family', 'gateway', 'localAddress', 'time', 'type'])
      const established = await cli.event('established')
      assert.equal(established.address, WAN)
      assert.equal(established.protocol, 'tcp')
      assert.equal(established.internalPort, port)
      assert.equal(established.lifetimeSeconds, 3)
      const externalPort = established.port as number
      assert.ok(gatewayHolds('tcp', externalPort), 'the gateway holds the mapping')

      const second = await cli.event('renewed', 2)
      assert.equal(second.renewals, 2)
      assert.equal(second.port, externalPort, 'renewals keep the port')
      const reach = await reachableFromWan('tcp', WAN, externalPort)
      assert.ok(reach.ok, `the WAN host reaches the LAN service: ${reach.output}`)

      cli.signal('SIGINT')
      assert.equal(await cli.exit(), 0, cli.transcript())
      const events = cli.events
      assert.equal(events.filter((e) => e.event === 'changed' || e.event === 'lost' || e.event === 'failed').length, 0, cli.transcript())
      assert.deepEqual(events.at(-2), { event: 'closing', signal: 'SIGINT', time: events.at(-2)?.time, family: 'IPv4' })
      assert.equal(events.at(-1)?.event, 'closed')
      assert.equal(events.at(-1)?.deleted, true)
      assert.ok(!gatewayHolds('tcp', externalPort), 'the gateway no longer holds the mapping')
    } finally {
      cli.kill()
      service.kill('SIGKILL')
    }
  })

  it('map (human, NAT-PMP, UDP), held across renewals: one line per event; SIGTERM deletes the mapping and exits 0', async () => {
    const port = nextPort++
    const cli = new Cli(['map', 'udp', String(port), '--duration', '3', '--protocol', 'nat-pmp', '--description', 'cli test', '--family', 'ipv4'])
    try {
      await cli.until('printed "established"', () => cli.stdout.some((line) => line.includes(' established: ')))
      const established = cli.stdout.find((line) => line.includes(' established: ')) ?? ''
      const match = new RegExp(`^\\d\\d:\\d\\d:\\d\\d established: udp ${WAN.replaceAll('.', '\\.')}:(\\d+) -> ${lab.lanAddress.replaceAll('.', '\\.')}:${port} \\(lease 3 s, until \\d\\d:\\d\\d:\\d\\d\\)$`).exec(established)
      assert.ok(match !== null, established)
      const externalPort = Number(match[1])
      assert.ok(gatewayHolds('udp', externalPort))
      await cli.until('printed two renewals', () => cli.stdout.some((line) => / renewed \(2\): lease 3 s/.test(line)))

      cli.signal('SIGTERM')
      assert.equal(await cli.exit(), 0, cli.transcript())
      assert.match(cli.stdout.at(-2) ?? '', / SIGTERM: deleting the mapping at the gateway$/)
      assert.match(cli.stdout.at(-1) ?? '', / deleted at the gateway$/)
      assert.match(cli.stdout[0] ?? '', new RegExp(`gateway ${GATEWAY.replaceAll('.', '\\.')} speaks nat-pmp`))
      assert.deepEqual(cli.stderr, [])
      assert.ok(!gatewayHolds('udp', externalPort), 'the gateway no longer holds the mapping')
    } finally {
      cli.kill()
    }
  })

  it('map --protocol upnp (IGD), held across a renewal; SIGINT deletes it', async () => {
    const port = nextPort++
    const cli = new Cli(['map', 'tcp', String(port), '--duration', '3', '--protocol', 'upnp', '--json', '--family', 'ipv4'])
    try {
      assert.match((await cli.event('discovered')).type as string, /^upnp-igd/)
      const established = await cli.event('established')
      assert.equal(established.address, WAN, 'the external address, asked of the IGD')
      const externalPort = established.port as number
      assert.ok(gatewayHolds('tcp', externalPort))
      assert.equal((await cli.event('renewed')).port, externalPort)
      cli.signal('SIGINT')
      assert.equal(await cli.exit(), 0, cli.transcript())
      assert.equal(cli.events.at(-1)?.deleted, true, cli.transcript())
      assert.ok(!gatewayHolds('tcp', externalPort), 'the gateway no longer holds the mapping')
    } finally {
      cli.kill()
    }
  })

  it('map --once leaves the mapping on the gateway; unmap --protocol nat-pmp removes it (human and --json)', async () => {
    const port = nextPort++
    const once = await natmapper(['map', 'tcp', String(port), '--once', '--protocol', 'nat-pmp', '--family', 'ipv4'])
    assert.equal(once.code, 0, once.cli.transcript())
    assert.match(once.stdout, / established: tcp \S+ -> /)
    assert.match(once.cli.stdout.at(-1) ?? '', / left on the gateway, not renewed: the lease runs out at /)
    assert.ok(gatewayHolds('tcp', port), 'the mapping outlives the process')

    const unmap = await natmapper(['unmap', 'tcp', String(port), '--protocol', 'nat-pmp'])
    assert.equal(unmap.code, 0, unmap.cli.transcript())
    assert.equal(unmap.stdout, `the gateway accepted the delete: tcp internal port ${port} on ${GATEWAY} (nat-pmp)`)
    assert.ok(!gatewayHolds('tcp', port), 'unmap deleted it')

    const jsonPort = nextPort++
    const onceJson = await natmapper(['map', 'udp', String(jsonPort), '--once', '--json', '--duration', '600', '--protocol', 'nat-pmp', '--family', 'ipv4'])
    assert.equal(onceJson.code, 0, onceJson.cli.transcript())
    assert.deepEqual(onceJson.cli.events.map((e) => e.event), ['discovered', 'established', 'left'])
    const granted = onceJson.cli.events[1]?.port as number
    assert.equal(onceJson.cli.events[1]?.lifetimeSeconds, 600)
    assert.ok(gatewayHolds('udp', granted))

    const unmapJson = await natmapper(['unmap', 'udp', String(jsonPort), '--protocol', 'nat-pmp', '--json'])
    assert.equal(unmapJson.code, 0, unmapJson.cli.transcript())
    assert.deepEqual(unmapJson.cli.events, [{ event: 'deleted', protocol: 'udp', internalPort: jsonPort, externalPort: null, type: 'nat-pmp', gateway: GATEWAY }])
    assert.ok(!gatewayHolds('udp', granted), 'unmap deleted it')
  })

  it('unmap and list with PCP: the protocol cannot, said in one line and a hint, exit 1', async () => {
    const unmap = await natmapper(['unmap', 'tcp', '8080'])
    assert.equal(unmap.code, 1, unmap.cli.transcript())
    assert.equal(unmap.stdout, '')
    assert.equal(unmap.cli.stderr[0], 'natmapper: pcp cannot delete a mapping made by another client')
    assert.match(unmap.cli.stderr[1] ?? '', /^hint: .*--protocol nat-pmp/)

    const list = await natmapper(['list', '--protocol', 'pcp', '--json'])
    assert.equal(list.code, 1, list.cli.transcript())
    assert.equal(list.cli.events[0]?.event, 'error')
    assert.equal((list.cli.events[0]?.error as { code?: string }).code, 'ERR_UNSUPPORTED')
    assert.equal(list.cli.stderr[0], 'natmapper: pcp gateways cannot list their mappings')
  })

  it('list and unmap over UPnP: the gateway\'s table (human and --json), and a delete by external port', async () => {
    const port = nextPort++
    const once = await natmapper(['map', 'tcp', String(port), '--once', '--protocol', 'upnp', '--description', 'natmapper cli test', '--json', '--family', 'ipv4'])
    assert.equal(once.code, 0, once.cli.transcript())
    const externalPort = once.cli.events.find((e) => e.event === 'established')?.port as number

    const human = await natmapper(['list', '--protocol', 'upnp'])
    assert.equal(human.code, 0, human.cli.transcript())
    assert.match(human.cli.stdout[0] ?? '', /^PROTO +EXTERNAL +INTERNAL +LEASE +ENABLED +DESCRIPTION$/)
    assert.ok(human.cli.stdout.some((line) => new RegExp(`^tcp +${externalPort} +${lab.lanAddress.replaceAll('.', '\\.')}:${port} +\\d+ s +yes +natmapper cli test$`).test(line)), human.stdout)

    const json = await natmapper(['list', '--json', '--protocol', 'upnp'])
    assert.equal(json.code, 0, json.cli.transcript())
    const table = json.cli.events[0] as { event: string, type: string, mappings: Array<Record<string, unknown>> }
    assert.equal(table.event, 'mappings')
    assert.match(table.type, /^upnp-igd/)
    const row = table.mappings.find((entry) => entry.externalPort === externalPort)
    assert.deepEqual({ ...row, lifetimeSeconds: 0 }, { protocol: 'tcp', externalPort, internalClient: lab.lanAddress, internalPort: port, description: 'natmapper cli test', lifetimeSeconds: 0, enabled: true })

    const unmap = await natmapper(['unmap', 'tcp', String(port), '--external-port', String(externalPort), '--protocol', 'upnp'])
    assert.equal(unmap.code, 0, unmap.cli.transcript())
    assert.ok(!gatewayHolds('tcp', externalPort))
  })

  it('exit codes: 1 when no gateway answers, 2 for bad usage (one line, then the usage)', async () => {
    // nm-lan2's host runs no gateway: its closed port answers ICMP port unreachable at once.
    const none = await natmapper(['ip', '--gateway', labEnv.LAB_LAN2_IP ?? '192.168.77.3', '--protocol', 'pcp,nat-pmp'])
    assert.equal(none.code, 1, none.cli.transcript())
    assert.match(none.cli.stderr[0] ?? '', /^natmapper: no NAT gateway found \(pcp: .*nat-pmp: /)

    const usage = await natmapper(['map', 'tcp', '0'])
    assert.equal(usage.code, 2)
    assert.equal(usage.stdout, '')
    assert.equal(usage.cli.stderr[0], 'natmapper: bad internal port "0": expected a whole number from 1 to 65535')
    assert.match(usage.cli.stderr[1] ?? '', /^Usage: natmapper map </)
  })

  it('the built executable (dist/cli/main.js) runs', { skip: existsSync(BUILT_CLI) ? false : 'dist/cli/main.js is not built (npm run build)' }, async () => {
    const result = await natmapper(['ip', '--json'], { script: [BUILT_CLI] })
    assert.equal(result.code, 0, result.cli.transcript())
    assert.equal(result.cli.events[0]?.address, WAN)
  })
})
