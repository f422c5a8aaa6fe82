// UPnP gateways in the field (issue 20): a delete by external port that would remove another
// host's mapping (routers without secure mode), and a gateway that refuses every request.
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { NAT } from '../../src/core/nat.js'
import { ForeignMappingError } from '../../src/errors.js'
import { resolveDiscoverOptions } from '../../src/options.js'
import { protocolProbes } from '../../src/protocols.js'
import { UpnpClient } from '../../src/upnp/client.js'
import { createUpnpProbe } from '../../src/upnp/probe.js'
import { FakeIgd, type FakeIgdOptions } from '../helpers/fake-igd.js'

const LOCAL = '127.0.0.1'
const OTHER_HOST = '192.168.77.3'
let nextHost = 200

/** A fake IGD on its own loopback address (127.0.3.200+ belong to this file) and a client probed over loopback. */
async function connect (t: TestContext, options: FakeIgdOptions = {}): Promise<{ igd: FakeIgd, client: UpnpClient }> {
  const igd = await FakeIgd.start({ address: `127.0.3.${nextHost++}`, ...options })
  t.after(async () => { await igd.close() })
  const discovery = new AbortController()
  const client = await createUpnpProbe({ ssdpPort: igd.ssdpPort, multicast: false, timeout: 1_000, requestTimeout: 500 })({ gateway: igd.address, localAddress: LOCAL, signal: discovery.signal })
  discovery.abort()
  assert.ok(client instanceof UpnpClient)
  t.after(async () => { await client.close() })
  return { igd, client }
}

function natOn (client: UpnpClient, options = {}): NAT {
  return new NAT({ client }, resolveDiscoverOptions({ gateway: client.gateway, protocols: ['upnp'], ...options }), protocolProbes)
}

function holdForOtherHost (igd: FakeIgd, externalPort: number): void {
  igd.mappings.set(`TCP ${externalPort}`, { protocol: 'TCP', externalPort, internalPort: 9100, internalClient: OTHER_HOST, description: 'theirs', leaseDuration: 3600 })
}

describe('upnp: deleting someone else\'s mapping (routers without secure mode)', () => {
  it('deleteMapping() refuses another host\'s entry, saying whose it is, and leaves it; force deletes it', async (t) => {
    const { igd, client } = await connect(t)
    holdForOtherHost(igd, 9100)
    const nat = natOn(client)
    t.after(async () => { await nat.close() })
    await assert.rejects(nat.deleteMapping('tcp', 9100), (error: unknown) => {
      assert.ok(error instanceof ForeignMappingError)
      assert.equal(error.code, 'ERR_FOREIGN_MAPPING')
      assert.equal(error.internalClient, OTHER_HOST)
      assert.equal(error.internalPort, 9100)
      assert.match(error.message, /192\.168\.77\.3:9100, not to this host \(127\.0\.0\.1\)/)
      return true
    })
    assert.ok(igd.mapping('TCP', 9100) !== undefined, 'the entry is still there')
    assert.ok(!igd.calls.some((call) => call.action === 'DeletePortMapping'), 'no delete was sent')
    await nat.deleteMapping('tcp', 9100, { force: true })
    assert.equal(igd.mapping('TCP', 9100), undefined)
  })

  it('deleteMapping() deletes this host\'s own entry, and a missing one counts as deleted', async (t) => {
    const { igd, client } = await connect(t)
    const nat = natOn(client)
    t.after(async () => { await nat.close() })
    igd.mappings.set('UDP 9200', { protocol: 'UDP', externalPort: 9200, internalPort: 9200, internalClient: LOCAL, description: 'ours', leaseDuration: 0 })
    await nat.deleteMapping('udp', 9200)
    assert.equal(igd.mapping('UDP', 9200), undefined)
    await nat.deleteMapping('udp', 9200)
  })

  it('close() leaves alone a port another host took after our lease ran out unnoticed', async (t) => {
    const { igd, client } = await connect(t)
    const nat = natOn(client)
    const mapping = await nat.newMapping('tcp', 9300, { externalPort: 9300 })
    assert.equal(mapping.externalPort, 9300)
    // The router forgot our mapping (a restart, an expiry) and another host mapped the port.
    igd.mappings.clear()
    holdForOtherHost(igd, 9300)
    await nat.close()
    assert.equal(igd.mapping('TCP', 9300)?.internalClient, OTHER_HOST, 'their mapping survived our close()')
  })
})

describe('upnp: a gateway that refuses every mapping (miniupnpd 2.3.10+ after a WAN flap)', () => {
  it('AddPortMapping answered 501 again and again: a typed error that says to restart the gateway, retries back off, and it recovers by itself', async (t) => {
    let stuck = false
    const { igd, client } = await connect(t, { fault: (call) => stuck && call.action.startsWith('Add') ? 501 : undefined })
    const nat = natOn(client, { mappingDuration: 12_000 })
    t.after(async () => { await nat.close() })
    const mapping = await nat.newMapping('tcp', 9400)
    assert.ok(mapping.established)
    stuck = true
    igd.mappings.clear()
    mapping.renewNow()
    const deadline = Date.now() + 20_000
    while (mapping.lastError?.name !== 'GatewayRefusesEverythingError' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    const error = mapping.lastError as Error & { code?: string, cause?: { protocol?: string, resultCode?: number } }
    assert.equal(error.code, 'ERR_GATEWAY_REFUSES_EVERYTHING', String(error))
    assert.deepEqual([error.cause?.protocol, error.cause?.resultCode], ['upnp', 501])
    assert.match(error.message, /^the gateway refuses every request: restart it \(3 mapping requests in a row answered ActionFailed \(501\) over upnp/)
    const adds = igd.calls.filter((call) => call.action.startsWith('Add')).length
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    assert.ok(igd.calls.filter((call) => call.action.startsWith('Add')).length - adds <= 2, 'retries back off (at most two in the next 3 s)')
    stuck = false
    while ((igd.mappings.size === 0 || mapping.lastError !== undefined) && Date.now() < deadline + 20_000) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.ok(mapping.established, 'back by itself')
    assert.equal(igd.mapping('TCP', mapping.externalPort)?.internalClient, LOCAL, `the gateway holds it (port ${mapping.externalPort})`)
  })
})
