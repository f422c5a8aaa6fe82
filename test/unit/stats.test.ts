import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { discoverNAT, type NAT, type NatStats, type ProtocolStats } from '../../src/index.js'
import { NatCounters } from '../../src/core/stats.js'
import { TimeoutError } from '../../src/errors.js'
import { createUpnpProbe } from '../../src/upnp/probe.js'
import { FakeIgd } from '../helpers/fake-igd.js'
import { FakePcpGateway } from '../helpers/fake-pcp-gateway.js'

// nat.stats() against a fake gateway on loopback: each counter is checked against what the
// gateway itself saw (every datagram it received) or against what the test made it do.
let nextHost = 140
const gateways: FakePcpGateway[] = []
async function fakeGateway (): Promise<FakePcpGateway> {
  const gateway = await FakePcpGateway.start({ address: `127.0.0.${nextHost++}`, externalAddress: '11.77.0.1' })
  gateways.push(gateway)
  return gateway
}
after(async () => { await Promise.all(gateways.map(async (gateway) => { await gateway.close() })) })

async function waitUntil (what: string, condition: () => boolean, limit = 15_000): Promise<void> {
  const deadline = Date.now() + limit
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`never ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function answers (stats: ProtocolStats): Record<string, number> {
  return Object.fromEntries(stats.answers.map((answer) => [`${answer.code} ${answer.name}`, answer.count]))
}

describe('nat.stats()', () => {
  for (const protocol of ['pcp', 'nat-pmp'] as const) {
    it(`${protocol}: requests, retransmissions, answers by code, timeouts, mapping events and resets match what the gateway saw`, async () => {
      const gateway = await fakeGateway()
      const nat: NAT = await discoverNAT({ gateway: gateway.address, protocols: [protocol], mappingDuration: 3_000, requestTimeout: 4_000, networkCheckInterval: 0 })
      const seenBefore = gateway.requests.length
      try {
        const fresh = nat.stats()
        assert.equal(fresh.family, 'IPv4')
        assert.equal(fresh.type, protocol)
        assert.equal(fresh.gateway, gateway.address)
        assert.deepEqual([fresh.gatewayResets, fresh.gatewayChanges, fresh.sinceLastSuccessMs], [0, 0, undefined], 'discovery is not counted')
        assert.deepEqual(Object.keys(fresh.protocols).sort(), ['nat-pmp', 'pcp', 'upnp'])

        // One lost datagram: the request is sent again (NAT-PMP after 250 ms, PCP after ~3 s).
        gateway.behaviour = { dropFirst: 1 }
        const mapping = await nat.newMapping('udp', 4000)
        assert.ok(mapping.established, String(mapping.lastError))
        await waitUntil('renewed twice', () => mapping.renewals >= 2)

        // A refusal: NOT_AUTHORIZED (2) in both protocols' numbering.
        gateway.behaviour = { resultCode: 2 }
        const refused = await nat.newMapping('tcp', 4001)
        assert.equal(refused.established, false)
        await refused.close()

        // A gateway that forgot everything: its epoch starts again.
        gateway.behaviour = {}
        gateway.setEpoch(0)
        await waitUntil('a reset counted', () => nat.stats().gatewayResets >= 1)

        // Silence: a renewal times out.
        const silentFrom = Date.now()
        gateway.behaviour = { silent: true }
        await waitUntil('a timeout counted', () => nat.stats().protocols[protocol].timeouts >= 1, 20_000)
        const stats: NatStats = nat.stats()
        const counted = stats.protocols[protocol]
        assert.ok((stats.sinceLastSuccessMs ?? -1) >= Date.now() - silentFrom - 50, `last success ${String(stats.sinceLastSuccessMs)} ms ago`)

        // Every datagram the gateway received since the NAT was made is a request or a retransmission.
        const received = gateway.requests.slice(seenBefore).filter((request) => request.protocol === protocol)
        assert.equal(counted.requests + counted.retransmissions, received.length, JSON.stringify(counted))
        assert.ok(counted.retransmissions >= 1, 'the dropped request was sent again')
        const byCode = answers(counted)
        const answered = received.filter((request) => request.outcome === 'answered').length
        assert.equal(Object.values(byCode).reduce((sum, count) => sum + count, 0), answered, JSON.stringify(byCode))
        assert.equal(byCode['2 NOT_AUTHORIZED'], 1, JSON.stringify(byCode))
        assert.ok((byCode['0 SUCCESS'] ?? 0) >= 3, JSON.stringify(byCode))
        assert.equal(counted.mappingsEstablished, 1)
        assert.ok(counted.mappingsRenewed >= 2)
        assert.ok(counted.mappingsFailed >= 2, 'the refusal and the timeout')
        assert.equal(stats.gatewayChanges, 0)
        assert.equal(stats.protocols.upnp.requests, 0)
      } finally {
        gateway.behaviour = {}
        await nat.close()
      }
    })
  }

  it('a request refused with ICMP port unreachable (nothing listens) counts as a refusal', async () => {
    const gateway = await fakeGateway()
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['nat-pmp'], requestTimeout: 5_000, networkCheckInterval: 0 })
    try {
      const mapping = await nat.newMapping('udp', 4200)
      assert.ok(mapping.established)
      await gateway.close()
      mapping.renewNow()
      await waitUntil('a refusal counted', () => nat.stats().protocols['nat-pmp'].refusals >= 1)
      const counted = nat.stats().protocols['nat-pmp']
      assert.equal(counted.timeouts, 0, 'refused at once, not timed out')
      assert.ok(counted.mappingsFailed >= 1)
    } finally {
      await nat.close()
    }
  })

  it('a mapping granted again after its lease ran out counts as lost, then recovered', async () => {
    const gateway = await fakeGateway()
    // The gateway grants 2 s; silence past that loses the mapping.
    gateway.behaviour = { grantLifetime: () => 2 }
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['nat-pmp'], mappingDuration: 60_000, requestTimeout: 500, networkCheckInterval: 0 })
    try {
      const mapping = await nat.newMapping('udp', 4100)
      assert.ok(mapping.established)
      gateway.behaviour = { silent: true, grantLifetime: () => 2 }
      await waitUntil('lost', () => nat.stats().protocols['nat-pmp'].mappingsLost >= 1)
      gateway.behaviour = { grantLifetime: () => 2 }
      await waitUntil('recovered', () => nat.stats().protocols['nat-pmp'].mappingsRecovered >= 1)
      const counted = nat.stats().protocols['nat-pmp']
      assert.deepEqual([counted.mappingsEstablished, counted.mappingsLost, counted.mappingsRecovered], [1, 1, 1])
    } finally {
      await nat.close()
    }
  })
})

describe('UPnP exchanges in the counters', () => {
  it('every SOAP call is a request; answers by UPnP error code (0 SUCCESS); a call with no answer in time is a timeout', async (t) => {
    const igd = await FakeIgd.start({ address: '127.0.0.160', occupiedPorts: [{ protocol: 'TCP', port: 5000 }] })
    let igdOpen = true
    t.after(async () => { if (igdOpen) await igd.close() })
    const discovery = new AbortController()
    const client = await createUpnpProbe({ ssdpPort: igd.ssdpPort, multicast: false, timeout: 1_000, requestTimeout: 500 })({ gateway: igd.address, localAddress: '127.0.0.1', signal: discovery.signal })
    discovery.abort()
    t.after(async () => { await client.close() })
    const counters = new NatCounters()
    assert.ok(client.countInto !== undefined)
    client.countInto(counters.byProtocol)
    const before = igd.calls.length

    // Port 5000 is another host's: 718; is it ours after all? 714, no entry for us; then the
    // gateway picks a port (AddAnyPortMapping).
    await client.map({ protocol: 'tcp', internalPort: 5000, suggestedExternalPort: 5000, lifetimeSeconds: 60, description: 'x' }, undefined, {})
    igd.options.soapDelayMs = 300
    await assert.rejects(client.externalAddress({ timeout: 100 }), TimeoutError)
    const upnp = counters.snapshot('IPv4', client.type, client.gateway).protocols.upnp
    assert.equal(upnp.requests, igd.calls.length - before, 'every SOAP call the gateway saw')
    assert.deepEqual(upnp.answers.map((answer) => [answer.code, answer.name, answer.count]), [[718, 'ConflictInMappingEntry', 1], [714, 'NoSuchEntryInArray', 1], [0, 'SUCCESS', 1]])
    assert.equal(upnp.timeouts, 1)
    assert.equal(upnp.retransmissions, 0)
    assert.equal(upnp.refusals, 0)

    // Nothing listens any more: the connection is refused.
    igdOpen = false
    await igd.close()
    await assert.rejects(client.externalAddress({ timeout: 2_000 }))
    const after = counters.snapshot('IPv4', client.type, client.gateway).protocols.upnp
    assert.deepEqual([after.requests, after.refusals, after.timeouts], [upnp.requests + 1, 1, 1])
  })
})
