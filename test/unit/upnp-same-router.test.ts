import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { noteChannel, type WireNote } from '../../src/core/trace.js'
import { findNeighbour, parseIpNeighbours, readNeighbours6 } from '../../src/net/neighbours.js'
import { createUpnpProbe } from '../../src/upnp/probe.js'
import { followAnnouncedHost, gatewayInterface, offLinkReason, otherDeviceReason, type LinkAddress } from '../../src/upnp/same-router.js'
import { trustedControlUrl } from '../../src/upnp/trust.js'
import { noteJson, noteText } from '../../src/cli/wire.js'
import { FakeIgd } from '../helpers/fake-igd.js'

// `ip -6 neigh show` in the lab's LAN host (profile home) after natmapper discovered the gateway
// and talked to its global address, plus entries of the kinds the parser must also read or skip.
const NEIGHBOURS = `fe80::ff:fe77:1 dev lan0 lladdr 02:00:00:77:00:01 router REACHABLE
2001:db8:77::1 dev lan0 lladdr 02:00:00:77:00:01 router STALE
fd77:77:77::1 dev lan0 lladdr 02:00:00:77:00:01 router DELAY
2001:db8:77::ff:fe77:3 dev lan0 lladdr 02:00:00:77:00:03 REACHABLE
2001:db8:77::9 dev lan0 FAILED
2001:db8:77::8 dev lan0 INCOMPLETE
2001:db8:99::1 dev wlan0 lladdr 02:00:00:99:00:01 router REACHABLE
fe80::1 dev lan0 lladdr not-a-mac STALE
garbage line
192.168.77.1 dev lan0 lladdr 02:00:00:77:00:01 REACHABLE
`

// /proc/net/if_inet6 of that host, as readInterfaceAddresses6 reads it (stable, temporary, ULA, link-local).
const ADDRESSES: LinkAddress[] = [
  { address: '2001:db8:77::ff:fe77:2', interfaceName: 'lan0', prefixLength: 64 },
  { address: '2001:db8:77:0:dd77:9d8a:c7d1:4e5f', interfaceName: 'lan0', prefixLength: 64 },
  { address: 'fd77:77:77::ff:fe77:2', interfaceName: 'lan0', prefixLength: 64 },
  { address: 'fe80::ff:fe77:2', interfaceName: 'lan0', prefixLength: 64 },
  { address: '2001:db8:99::2', interfaceName: 'wlan0', prefixLength: 64 },
  { address: '::1', interfaceName: 'lo', prefixLength: 128 }
]

const GATEWAY = 'fe80::ff:fe77:1%lan0'

describe('IPv6 neighbour table (ip -6 neigh show)', () => {
  it('reads resolved entries with their link-layer address and router flag, unresolved ones without, and skips the rest', () => {
    const table = parseIpNeighbours(NEIGHBOURS)
    assert.deepEqual(table.slice(0, 6), [
      { address: 'fe80::ff:fe77:1', interfaceName: 'lan0', linkLayerAddress: '02:00:00:77:00:01', router: true },
      { address: '2001:db8:77::1', interfaceName: 'lan0', linkLayerAddress: '02:00:00:77:00:01', router: true },
      { address: 'fd77:77:77::1', interfaceName: 'lan0', linkLayerAddress: '02:00:00:77:00:01', router: true },
      { address: '2001:db8:77::ff:fe77:3', interfaceName: 'lan0', linkLayerAddress: '02:00:00:77:00:03', router: false },
      { address: '2001:db8:77::9', interfaceName: 'lan0', linkLayerAddress: undefined, router: false },
      { address: '2001:db8:77::8', interfaceName: 'lan0', linkLayerAddress: undefined, router: false }
    ])
    assert.equal(table.length, 8, 'garbage and IPv4 lines skipped')
    assert.equal(table[7]?.linkLayerAddress, undefined, 'a malformed link-layer address reads as unresolved')
    assert.equal(findNeighbour(table, '2001:DB8:77:0::1', 'lan0')?.linkLayerAddress, '02:00:00:77:00:01', 'any spelling')
    assert.equal(findNeighbour(table, '2001:db8:99::1', 'lan0'), undefined, 'on another interface')
    assert.equal(findNeighbour(table, '2001:db8:77::9', 'lan0'), undefined, 'unresolved')
  })

  it('never throws on bad input, and bounds what it reads', () => {
    for (const text of ['', '\n\n', 'dev dev dev', 'fe80::1 dev', 'x'.repeat(2_000_000), `${'fe80::1 dev lan0 lladdr 02:00:00:00:00:01 REACHABLE\n'.repeat(30_000)}`]) {
      const table = parseIpNeighbours(text)
      assert.ok(table.length <= 20_000)
    }
  })

  it('reads nothing where the table cannot be read', async () => {
    assert.equal(await readNeighbours6(async () => { throw new Error('spawn ip ENOENT') }), undefined)
  })
})

describe('the same-router rule for an IPv6 LOCATION (same-router.ts)', () => {
  const table = parseIpNeighbours(NEIGHBOURS)

  it('finds the gateway\'s interface from its zone, or from the on-link prefix that holds it', () => {
    assert.equal(gatewayInterface(GATEWAY, ADDRESSES), 'lan0')
    assert.equal(gatewayInterface('2001:db8:77::1', ADDRESSES), 'lan0')
    assert.equal(gatewayInterface('2001:db8:99::1', ADDRESSES), 'wlan0')
    assert.equal(gatewayInterface('2001:db8:1177::1', ADDRESSES), undefined)
    assert.equal(gatewayInterface('::1', ADDRESSES), undefined, 'a /128 says nothing about the link')
  })

  it('on-link: link-local, or inside a prefix of the gateway\'s interface; anything else is off-link', () => {
    for (const host of ['2001:db8:77::1', 'fd77:77:77::1', 'fe80::1', '2001:db8:77::ff:fe77:3']) assert.equal(offLinkReason(host, 'lan0', ADDRESSES), undefined, host)
    assert.equal(offLinkReason('2001:db8:1177::2', 'lan0', ADDRESSES), '2001:db8:1177::2 is off-link: no prefix of lan0 holds it')
    assert.equal(offLinkReason('2001:db8:99::1', 'lan0', ADDRESSES), '2001:db8:99::1 is off-link: no prefix of lan0 holds it', 'on another interface\'s link')
  })

  it('same device: the gateway\'s global, ULA and link-local addresses share its link-layer address', () => {
    for (const host of ['2001:db8:77::1', 'fd77:77:77::1', '[2001:db8:77::1]']) assert.equal(otherDeviceReason(host, GATEWAY, 'lan0', table), undefined, host)
  })

  it('another LAN host, an unresolved address, a missing gateway entry or no table: refused, saying why', () => {
    assert.equal(otherDeviceReason('2001:db8:77::ff:fe77:3', GATEWAY, 'lan0', table),
      '2001:db8:77::ff:fe77:3 is another device on the link (link-layer address 02:00:00:77:00:03, the gateway\'s is 02:00:00:77:00:01)')
    assert.equal(otherDeviceReason('2001:db8:77::9', GATEWAY, 'lan0', table), '2001:db8:77::9 has no neighbour entry on lan0: not reached on the link')
    assert.equal(otherDeviceReason('2001:db8:77::1', 'fe80::99%lan0', 'lan0', table), 'the gateway fe80::99 has no neighbour entry on lan0')
    assert.equal(otherDeviceReason('2001:db8:77::1', GATEWAY, 'lan0', undefined), 'the IPv6 neighbour table cannot be read here (ip -6 neigh show)')
  })

  it('a followed host\'s control URLs are kept as named; any other host\'s are not', () => {
    const control = new URL('http://[2001:db8:77::1]:5000/ctl/IP6FCtl')
    assert.equal(trustedControlUrl(control, GATEWAY, '2001:db8:77::1', '2001:db8:77::1')?.href, control.href)
    assert.equal(trustedControlUrl(new URL('http://[2001:db8:77::ff:fe77:3]:5000/ctl'), GATEWAY, '2001:db8:77::1', '2001:db8:77::1'), undefined)
    assert.equal(trustedControlUrl(control, GATEWAY, '2001:db8:77::1')?.hostname, '[fe80::ff:fe77:1]', 'not followed: re-pointed at the gateway')
  })

  it('plans: off-link refused before any packet; on-link checked once connected', async () => {
    const sources = (neighbours: string) => ({ addresses: async () => ADDRESSES, neighbours: async () => neighbours })
    const offLink = await followAnnouncedHost(GATEWAY, '2001:db8:1177::2', sources(NEIGHBOURS))
    assert.equal(offLink.refused, '2001:db8:1177::2 is off-link: no prefix of lan0 holds it')
    const ula = await followAnnouncedHost(GATEWAY, 'fd77:77:77::1', sources(NEIGHBOURS))
    assert.deepEqual([ula.refused, ula.zone], [undefined, 'lan0'])
    await ula.verify()
    const lanHost = await followAnnouncedHost(GATEWAY, '2001:db8:77::ff:fe77:3', sources(NEIGHBOURS))
    assert.equal(lanHost.refused, undefined)
    await assert.rejects(lanHost.verify(), /another device on the link/)
    const noInterface = await followAnnouncedHost('2001:db8:1177::1', '2001:db8:1177::5', sources(NEIGHBOURS))
    assert.equal(noInterface.refused, 'the interface of the gateway 2001:db8:1177::1 is unknown')
  })
})

describe('UPnP probe over IPv6: a LOCATION naming an off-link host (fake gateway on ::1)', () => {
  it('sends that host nothing, publishes why (the CLI\'s --verbose prints it), and asks the gateway\'s own address instead', async (t) => {
    const igd = await FakeIgd.start({ address: '::1', locationHost: '2001:db8:1177::2' })
    t.after(async () => { await igd.close() })
    const notes: WireNote[] = []
    const onNote = (note: unknown): void => { notes.push(note as WireNote) }
    noteChannel.subscribe(onNote)
    t.after(() => { noteChannel.unsubscribe(onNote) })
    // The facts of a host whose LAN is ::/64 on `lo`, where the gateway ::1 lives.
    const sameRouter = { addresses: async () => [{ address: '::2', interfaceName: 'lo', prefixLength: 64 }], neighbours: async () => { throw new Error('must not be read: refused before connecting') } }
    const upnp = createUpnpProbe({ ssdpPort: igd.ssdpPort, multicast: false, timeout: 2_000, requestTimeout: 500, sameRouter })
    const discovery = new AbortController()
    t.after(() => { discovery.abort() })
    const client = await upnp({ gateway: '::1', localAddress: '::1', signal: discovery.signal })
    t.after(async () => { await client.close() })
    assert.equal(client.descriptionUrl.href, `http://[::1]:${igd.httpPort}/rootDesc.xml`)
    assert.equal(igd.descriptionRequests, 1)
    const reason = '2001:db8:1177::2 is off-link: no prefix of lo holds it'
    assert.deepEqual(notes, [{
      protocol: 'upnp',
      peer: '::1',
      text: `LOCATION http://[2001:db8:1177::2]:${igd.httpPort}/rootDesc.xml not followed: ${reason}; asking the gateway's own address [::1]:${igd.httpPort} instead`
    }])
    assert.equal(noteText(notes[0] as WireNote), `!! upnp ::1 ${notes[0]?.text ?? ''}`)
    assert.deepEqual(noteJson(notes[0] as WireNote, new Date(0)), { event: 'note', time: '1970-01-01T00:00:00.000Z', protocol: 'upnp', peer: '::1', text: notes[0]?.text })
  })

  it('says why in the probe\'s failure when the gateway\'s own address does not serve the description either', async (t) => {
    const igd = await FakeIgd.start({ address: '::1', locationHost: '2001:db8:1177::2', descriptionStyle: 'never-ends' })
    t.after(async () => { await igd.close() })
    const sameRouter = { addresses: async () => [{ address: '::2', interfaceName: 'lo', prefixLength: 64 }], neighbours: undefined }
    const upnp = createUpnpProbe({ ssdpPort: igd.ssdpPort, multicast: false, timeout: 600, requestTimeout: 200, sameRouter })
    const discovery = new AbortController()
    t.after(() => { discovery.abort() })
    await assert.rejects(upnp({ gateway: '::1', localAddress: '::1', signal: discovery.signal }), (error: Error) =>
      /not followed: 2001:db8:1177::2 is off-link/.test(error.message) && /which failed too/.test(error.message))
  })
})
