/**
 * What routers in the field do to a held mapping, through the public API (NAT, Mapping) against
 * the fake IGD and the fake PCP gateway on loopback: the second round of README "Router quirks
 * handled" (issue 20). The UPnP client's own side of each is in upnp-client.test.ts.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, describe, it } from 'node:test'
import {
  discoverNAT,
  GatewayResultError,
  InvalidArgumentError,
  MappingNotHeldError,
  type DiscoverOptions,
  type Mapping,
  type NAT
} from '../../src/index.js'
import { createUpnpProbe } from '../../src/upnp/probe.js'
import { FakeIgd, type FakeIgdOptions } from '../helpers/fake-igd.js'
import { FakePcpGateway, fakeMappingKey } from '../helpers/fake-pcp-gateway.js'

// Each test gets a loopback address of its own, so nothing remembered or bound carries over.
let nextHost = 140
const freshAddress = (): string => `127.0.0.${nextHost++}`
const closing: Array<{ close: () => Promise<void> }> = []
after(async () => { for (const each of closing.reverse()) await each.close() })

async function fakeIgd (options: FakeIgdOptions = {}): Promise<FakeIgd> {
  const igd = await FakeIgd.start({ address: freshAddress(), ...options })
  closing.push(igd)
  return igd
}

/** A UPnP NAT on the fake IGD, found through its description URL (the fake's SSDP is on a port of its own). */
async function upnpNat (igd: FakeIgd, options: DiscoverOptions = {}): Promise<NAT> {
  const nat = await discoverNAT({ gateway: igd.address, protocols: ['upnp'], upnpDescriptionUrl: igd.descriptionUrl, rememberGateway: false, ...options })
  closing.push(nat)
  return nat
}

async function nextEvent<T> (emitter: Mapping | NAT, event: string, limit = 15_000): Promise<T> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no ${event} event within ${limit} ms`)) }, limit)
    ;(emitter as unknown as NodeJS.EventEmitter).once(event, (value: unknown) => { clearTimeout(timer); resolve(value as T) })
  })
}

const actions = (igd: FakeIgd): string[] => igd.calls.map((call) => call.action)

describe('routers that ignore M-SEARCH: upnpDescriptionUrl', () => {
  it('finds the gateway through the URL given, without an SSDP answer', async () => {
    const igd = await fakeIgd()
    const nat = await upnpNat(igd)
    assert.equal(nat.type, 'upnp-igd2')
    assert.equal(nat.gateway, igd.address)
    assert.equal(igd.searches.length, 0, 'no search needed')
    assert.equal(igd.descriptionRequests, 1)
    const mapping = await nat.newMapping('tcp', 8080)
    assert.ok(mapping.established)
    assert.ok(igd.mapping('TCP', 8080))
  })

  it('refuses a URL that names another host than the gateway, and never contacts it', async (t) => {
    const igd = await fakeIgd()
    const decoyAddress = freshAddress()
    let decoyConnections = 0
    const decoy = net.createServer((socket) => { decoyConnections++; socket.destroy() })
    await new Promise<void>((resolve) => { decoy.listen(igd.httpPort, decoyAddress, resolve) })
    t.after(async () => { await new Promise<void>((resolve) => { decoy.close(() => { resolve() }) }) })
    const elsewhere = `http://${decoyAddress}:${igd.httpPort}/rootDesc.xml`

    // With the gateway given, when the options are read.
    await assert.rejects(discoverNAT({ gateway: igd.address, protocols: ['upnp'], upnpDescriptionUrl: elsewhere }),
      (error: unknown) => error instanceof InvalidArgumentError && /not the gateway/.test(error.message))
    // Found from the default route: when the probe learns the gateway.
    const probe = createUpnpProbe({ multicast: false, ssdpPort: igd.ssdpPort, timeout: 1_000 })
    await assert.rejects(probe({ gateway: igd.address, localAddress: '127.0.0.1', signal: new AbortController().signal, descriptionUrl: new URL(elsewhere) }),
      (error: unknown) => error instanceof InvalidArgumentError && /not the gateway/.test(error.message))
    assert.equal(decoyConnections, 0)
    for (const bad of ['https://192.168.1.1/rootDesc.xml', 'http://router.lan:5000/rootDesc.xml', 'not a url']) {
      await assert.rejects(discoverNAT({ upnpDescriptionUrl: bad }), InvalidArgumentError, bad)
    }
  })
})

describe('listed but not forwarding: mapping.recreate()', () => {
  it('deletes the UPnP mapping and adds it again, on the same port (Technicolor CGA4131COM, tailscale #21208)', async () => {
    const igd = await fakeIgd()
    const nat = await upnpNat(igd)
    const mapping = await nat.newMapping('tcp', 8081)
    igd.stopForwarding('TCP', 8081)
    assert.equal(igd.forwards('TCP', 8081), false)
    const renewed = nextEvent(mapping, 'renewed')
    const before = igd.calls.length
    await mapping.recreate()
    await renewed
    assert.deepEqual(actions(igd).slice(before), ['DeletePortMapping', 'AddPortMapping'])
    assert.equal(igd.forwards('TCP', 8081), true)
    assert.equal(mapping.externalPort, 8081)
    assert.ok(mapping.established)
  })

  it('is protocol-generic: a PCP mapping is deleted and mapped anew', async () => {
    const gateway = await FakePcpGateway.start({ address: freshAddress(), externalAddress: '11.77.0.1' })
    closing.push(gateway)
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['pcp'] })
    closing.push(nat)
    const mapping = await nat.newMapping('udp', 5000)
    const held = gateway.mappings.get(fakeMappingKey('udp', 5000))
    assert.ok(held !== undefined)
    const requests = gateway.requests.length
    await mapping.recreate()
    const sent = gateway.requests.slice(requests).map((each) => each.protocol === 'pcp' && each.request?.opcode === 'map' ? each.request.lifetimeSeconds : undefined)
    assert.deepEqual(sent, [0, 60], 'a delete (lifetime 0), then a new MAP')
    assert.notEqual(gateway.mappings.get(fakeMappingKey('udp', 5000)), held, 'a new mapping, not a renewal of the old one')
    assert.ok(mapping.established)
  })

  it('rejects on a closed mapping', async () => {
    const igd = await fakeIgd()
    const nat = await upnpNat(igd)
    const mapping = await nat.newMapping('tcp', 8082)
    await mapping.close()
    await assert.rejects(mapping.recreate(), (error: unknown) => (error as { code?: string }).code === 'ERR_CLOSED')
  })
})

describe('success that did nothing', () => {
  it('a full table that answers AddPortMapping with success (Linksys, weupnp #12): lost at the first check, and the error says why', async () => {
    // Renewed every second: the first check comes soon.
    const igd = await fakeIgd({ tableSize: 1, quirk: 'silent-when-full' })
    const nat = await upnpNat(igd, { mappingDuration: 3_000 })
    const first = await nat.newMapping('tcp', 8083)
    assert.ok(first.established)
    const second = await nat.newMapping('tcp', 8084)
    const lost = nextEvent<{ error: Error }>(second, 'lost')
    const { error } = await lost
    assert.equal(second.established, false)
    assert.ok(error instanceof MappingNotHeldError)
    assert.equal(error.code, 'ERR_MAPPING_NOT_HELD')
    assert.match(error.message, /AddPortMapping for tcp port 8084 with success, but lists no such entry.*table is full/)
    assert.equal(second.lastError, error)
    assert.ok(first.established, 'the mapping the gateway holds is untouched')
  })
})

describe('per-device permission (Fritz!Box)', () => {
  it('606 for a port >= 1024 names the per-device setting; 606 below 1024 names the port rules', async () => {
    const igd = await fakeIgd({ fault: (call) => call.action === 'AddPortMapping' ? 606 : undefined })
    const nat = await upnpNat(igd)
    const high = await nat.newMapping('tcp', 8085)
    const highError = high.lastError
    assert.ok(highError instanceof GatewayResultError)
    assert.deepEqual([highError.resultCode, highError.resultName], [606, 'ActionNotAuthorized'])
    assert.match(highError.message, /port 8085, which no common rule forbids: this host is not permitted to map ports.*"Permit independent port sharing"/)
    const low = await nat.newMapping('tcp', 80, { externalPort: 80 })
    const lowError = low.lastError
    assert.ok(lowError instanceof GatewayResultError && lowError.resultCode === 606)
    assert.match(lowError.message, /internal port 80 and external port 80: .*1024-65535/)
    assert.doesNotMatch(lowError.message, /port sharing/)
  })
})
