import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { discoverNAT, NoMappingError, type NAT } from '../../src/index.js'
import { encodeResponse as encodeNatPmpResponse } from '../../src/natpmp/codec.js'
import { NatPmpClient } from '../../src/natpmp/client.js'
import { encodeResponse as encodePcpResponse } from '../../src/pcp/codec.js'
import { PcpClient } from '../../src/pcp/client.js'
import type { GatewayEvent } from '../../src/core/gateway-client.js'
import { FakePcpGateway } from '../helpers/fake-pcp-gateway.js'

// Loopback addresses 127.0.1.x belong to this file (core-fake-gateway.test.ts uses 127.0.0.x).
let nextHost = 10
const gateways: FakePcpGateway[] = []
async function fakeGateway (options: { pcp?: boolean, natPmp?: boolean, externalAddress?: string, epochSeconds?: number } = {}): Promise<FakePcpGateway> {
  const gateway = await FakePcpGateway.start({ address: `127.0.1.${nextHost++}`, externalAddress: '11.77.0.1', ...options })
  gateways.push(gateway)
  return gateway
}
after(async () => { await Promise.all(gateways.map(async (gateway) => { await gateway.close() })) })

async function nextEvent<T> (emitter: NodeJS.EventEmitter | NAT, event: string, limit = 20_000): Promise<T> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no ${event} event within ${limit} ms`)) }, limit)
    ;(emitter as NodeJS.EventEmitter).once(event, (value: unknown) => { clearTimeout(timer); resolve(value as T) })
  })
}

for (const protocol of ['pcp', 'nat-pmp'] as const) {
  describe(`${protocol}: faults the lab cannot stage`, () => {
    it('an epoch going backwards without a restart is taken as a reset: every mapping is re-created on the same port', async () => {
      const gateway = await fakeGateway({ epochSeconds: 5_000 })
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol], mappingDuration: 3_000 })
      const mappings = await Promise.all([1, 2].map(async (i) => await nat.newMapping('tcp', 7100 + i)))
      const ports = mappings.map((m) => m.externalPort)
      gateway.setEpoch(0)
      gateway.mappings.clear()
      const reset = await nextEvent<{ reason: string }>(nat, 'gateway-reset')
      assert.match(reset.reason, /epoch/)
      await assert.doesNotReject(async () => {
        const deadline = Date.now() + 20_000
        while (gateway.mappings.size < 2) {
          if (Date.now() > deadline) throw new Error('mappings not re-created')
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      })
      assert.deepEqual(mappings.map((m) => m.externalPort), ports)
      await nat.close()
    })

    it('a success reply that grants port 0 is not taken as a mapping', async () => {
      const gateway = await fakeGateway()
      gateway.behaviour = { grantExternalPort: () => 0 }
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol] })
      const mapping = await nat.newMapping('udp', 7200)
      assert.equal(mapping.established, false)
      assert.equal(mapping.lastError?.name, 'MalformedMessageError')
      await nat.close()
    })

    it('notices a new external address within cacheTime, with events, and externalAddr() reflects it', async () => {
      const gateway = await fakeGateway()
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol], cacheTime: 1_000 })
      const mapping = await nat.newMapping('tcp', 7300)
      assert.equal((await mapping.externalAddr()).address, '11.77.0.1')
      gateway.externalAddress = '11.77.0.9'
      const changed = await nextEvent<{ address: string, previous: string, isPublic: boolean }>(nat, 'external-address-changed')
      assert.deepEqual([changed.previous, changed.address, changed.isPublic], ['11.77.0.1', '11.77.0.9', true])
      assert.equal((await mapping.externalAddr()).address, '11.77.0.9')
      await nat.close()
    })

    it('reports an external address that is not publicly routable (double NAT / CGNAT)', async () => {
      const gateway = await fakeGateway({ externalAddress: '100.64.0.5' })
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol] })
      const mapping = await nat.newMapping('udp', 7400)
      const address = await mapping.externalAddr()
      assert.equal(address.address, '100.64.0.5')
      assert.equal(address.isPublic, false)
      assert.equal(nat.externalAddressIsPublic, false)
      assert.equal(nat.externalAddressScope, 'shared')
      await nat.close()
    })

    if (protocol === 'nat-pmp') it('a gateway that answers NETWORK_FAILURE to the address request has no public address', async () => {
      const gateway = await fakeGateway()
      const nat = await discoverNAT({ gateway: gateway.address, protocols: ['nat-pmp'], cacheTime: 0 })
      gateway.externalAddress = '0.0.0.0'
      assert.equal(await nat.externalAddress(), '0.0.0.0')
      assert.equal(nat.externalAddressIsPublic, false)
      assert.equal(nat.externalAddressScope, 'unspecified')
      await nat.close()
    })

    it('loses the mapping when the gateway is silent past the lease, and gets it back when it answers', async () => {
      const gateway = await fakeGateway()
      gateway.behaviour = { grantLifetime: () => 2 }
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol], requestTimeout: 500 })
      const mapping = await nat.newMapping('tcp', 7500)
      assert.ok(mapping.established)
      gateway.behaviour = { silent: true, grantLifetime: () => 2 }
      await nextEvent(mapping, 'lost')
      await assert.rejects(mapping.externalAddr(), NoMappingError)
      gateway.behaviour = { grantLifetime: () => 2 }
      await nextEvent(mapping, 'established')
      assert.ok(mapping.established)
      await nat.close()
    })
  })
}

describe('switching protocols', () => {
  it('moves to NAT-PMP when the gateway stops speaking PCP', async () => {
    const gateway = await fakeGateway()
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['pcp', 'nat-pmp'], mappingDuration: 3_000 })
    assert.equal(nat.type, 'pcp')
    const mapping = await nat.newMapping('tcp', 7600)
    gateway.pcp = false
    const changed = await nextEvent<{ type: string, previousType: string }>(nat, 'gateway-changed', 30_000)
    assert.deepEqual([changed.previousType, changed.type], ['pcp', 'nat-pmp'])
    assert.equal(nat.type, 'nat-pmp')
    if (!mapping.established) await nextEvent(mapping, 'established')
    assert.ok(gateway.requests.some((r) => r.protocol === 'nat-pmp' && r.request?.opcode === 'map' && r.request.internalPort === 7600 && r.request.lifetimeSeconds > 0),
      'the mapping was re-created over NAT-PMP')
    await nat.close()
    assert.equal(gateway.mappings.size, 0)
  })
})

describe('announcements (RFC 6886 §3.2.1, RFC 6887 §14.1.3)', () => {
  it('a NAT-PMP address announcement is reported as an announcement to check, its address and epoch not taken', () => {
    const client = new NatPmpClient('192.0.2.1', '192.0.2.2')
    const events: GatewayEvent[] = []
    client.onEvent = (event) => events.push(event)
    client.handleAnnouncement(encodeNatPmpResponse({ opcode: 'external-address', truncated: false, resultCode: 0, epochSeconds: 2, externalAddress: '11.77.0.2' }))
    assert.deepEqual(events, [
      { kind: 'announcement', reason: 'NAT-PMP address announcement from the gateway (epoch 2 s)', epochContinues: true }
    ])
    assert.equal(client.epochSeconds, undefined, 'an announcement\'s epoch is not recorded')
    assert.equal(client.lastExternalAddress, undefined, 'nor its address')
    client.handleAnnouncement(new Uint8Array([1, 2, 3]))
    client.handleAnnouncement(encodeNatPmpResponse({ opcode: 'map', truncated: false, protocol: 'tcp', resultCode: 0, epochSeconds: 2, internalPort: 1, externalPort: 1, lifetimeSeconds: 1 }))
    assert.equal(events.length, 1, 'garbage and other replies are not announcements')
  })

  it('either client understands the other protocol\'s announcement from the same gateway', () => {
    const natPmp = new NatPmpClient('192.0.2.1', '192.0.2.2')
    const pcp = new PcpClient('192.0.2.1', '192.0.2.2')
    const events: GatewayEvent[] = []
    natPmp.onEvent = (event) => events.push(event)
    pcp.onEvent = (event) => events.push(event)
    natPmp.handleAnnouncement(encodePcpResponse({ opcode: 'announce', resultCode: 0, lifetimeSeconds: 0, epochSeconds: 0 }))
    pcp.handleAnnouncement(encodeNatPmpResponse({ opcode: 'external-address', truncated: false, resultCode: 0, epochSeconds: 0, externalAddress: '11.77.0.1' }))
    assert.deepEqual(events.map((event) => event.kind), ['announcement', 'announcement'])
  })

  it('an unsolicited PCP ANNOUNCE is reported as an announcement to check', () => {
    const client = new PcpClient('192.0.2.1', '192.0.2.2')
    const events: GatewayEvent[] = []
    client.onEvent = (event) => events.push(event)
    client.handleAnnouncement(encodePcpResponse({ opcode: 'announce', resultCode: 0, lifetimeSeconds: 0, epochSeconds: 0 }))
    assert.equal(events[0]?.kind, 'announcement')
  })
})
