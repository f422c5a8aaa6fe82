import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { after, describe, it } from 'node:test'
import {
  AbortError,
  discoverNAT,
  GatewayResultError,
  NoMappingError,
  NoNATFoundError,
  type Mapping,
  type NAT
} from '../../src/index.js'
import { FakePcpGateway } from '../helpers/fake-pcp-gateway.js'

// Each test gets its own loopback address: the fake binds port 5351 there, as a gateway would.
let nextHost = 10
const freshAddress = (): string => `127.0.0.${nextHost++}`
const gateways: FakePcpGateway[] = []
async function fakeGateway (options: { pcp?: boolean, natPmp?: boolean } = {}): Promise<FakePcpGateway> {
  const gateway = await FakePcpGateway.start({ address: freshAddress(), externalAddress: '11.77.0.1', ...options })
  gateways.push(gateway)
  return gateway
}
after(async () => { await Promise.all(gateways.map(async (gateway) => { await gateway.close() })) })

/** Waits for an event with a generous limit, so a slow moment on a shared machine never fails a test. */
async function nextEvent<T> (emitter: Mapping | NAT, event: string, limit = 15_000): Promise<T> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no ${event} event within ${limit} ms`)) }, limit)
    ;(emitter as unknown as NodeJS.EventEmitter).once(event, (value: unknown) => { clearTimeout(timer); resolve(value as T) })
  })
}

async function waitUntil (condition: () => boolean, limit = 15_000): Promise<void> {
  const deadline = Date.now() + limit
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('discovery against a fake gateway on loopback', () => {
  it('prefers PCP when the gateway speaks both', async () => {
    const gateway = await fakeGateway()
    const nat = await discoverNAT({ gateway: gateway.address })
    assert.equal(nat.type, 'pcp')
    assert.equal(nat.gateway, gateway.address)
    await nat.close()
  })

  it('falls back to NAT-PMP when PCP is answered with UNSUPP_VERSION, without waiting out a timeout', async () => {
    const gateway = await fakeGateway({ pcp: false })
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['pcp', 'nat-pmp'], preferenceWindow: 10_000, timeout: 10_000 })
    assert.equal(nat.type, 'nat-pmp')
    // The PCP probe was refused, so the long preference window was not sat out.
    assert.ok(gateway.requests.some((r) => r.protocol === 'pcp' && r.outcome === 'refused-version'))
    assert.equal(await nat.externalAddress(), '11.77.0.1')
    await nat.close()
  })

  it('a PCP-only server makes the NAT-PMP probe fail and PCP win', async () => {
    const gateway = await fakeGateway({ natPmp: false })
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['nat-pmp', 'pcp'] })
    assert.equal(nat.type, 'pcp')
    await nat.close()
  })

  it('a PCP server that refuses NAT-PMP in PCP format (RFC 6887 §9) ends the NAT-PMP probe at once', async () => {
    const address = freshAddress()
    const server = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => { server.bind(5351, address, resolve) })
    // Version 2, response bit on the request's opcode, result 1 (UNSUPP_VERSION), padded to 24 bytes.
    server.on('message', (message, from) => {
      const reply = Buffer.alloc(24)
      reply[0] = 2
      reply[1] = 0x80 | (message[1] ?? 0)
      reply[3] = 1
      server.send(reply, from.port, from.address)
    })
    try {
      const error = await discoverNAT({ gateway: address, protocols: ['nat-pmp'], timeout: 60_000 }).catch((e: unknown) => e)
      assert.ok(error instanceof NoNATFoundError)
      assert.equal(error.reasons['nat-pmp']?.name, 'UnsupportedError')
    } finally {
      server.close()
    }
  })

  it('treats ICMP port unreachable as an immediate no, with each protocol\'s reason', async () => {
    // Nothing listens on this loopback address: PCP and NAT-PMP (5351) and SSDP (1900) are refused.
    const error = await discoverNAT({ gateway: freshAddress(), timeout: 60_000 }).catch((e: unknown) => e)
    assert.ok(error instanceof NoNATFoundError, String(error))
    assert.equal(error.code, 'ERR_NO_NAT_FOUND')
    assert.equal(error.reasons.pcp?.name, 'PortUnreachableError')
    assert.equal(error.reasons['nat-pmp']?.name, 'PortUnreachableError')
    assert.equal(error.reasons.upnp?.name, 'PortUnreachableError')
  })

  it('rejects with NoNATFoundError at the timeout when the gateway is silent', async () => {
    const gateway = await fakeGateway()
    gateway.behaviour = { silent: true }
    const error = await discoverNAT({ gateway: gateway.address, protocols: ['pcp', 'nat-pmp'], timeout: 300 }).catch((e: unknown) => e)
    assert.ok(error instanceof NoNATFoundError)
    assert.equal(error.reasons.pcp?.name, 'TimeoutError')
    assert.equal(error.reasons['nat-pmp']?.name, 'TimeoutError')
  })

  it('rejects with AbortError when the signal fires, and at once when it already has', async () => {
    const gateway = await fakeGateway()
    gateway.behaviour = { silent: true }
    const controller = new AbortController()
    const pending = discoverNAT({ gateway: gateway.address, signal: controller.signal, timeout: 60_000 })
    setTimeout(() => { controller.abort() }, 50)
    await assert.rejects(pending, AbortError)
    await assert.rejects(discoverNAT({ gateway: gateway.address, signal: AbortSignal.abort() }), AbortError)
  })

  it('retransmits NAT-PMP requests after 250 ms (RFC 6886 §3.1) when the first is lost', async () => {
    const gateway = await fakeGateway()
    gateway.behaviour = { dropFirst: 1 }
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['nat-pmp'] })
    const sent = gateway.requests.filter((r) => r.protocol === 'nat-pmp')
    assert.equal(sent.length, 2)
    const gap = (sent[1]?.time ?? 0) - (sent[0]?.time ?? 0)
    assert.ok(gap >= 200, `retransmitted after ${gap} ms`)
    await nat.close()
  })

  it('ignores stale, duplicate and wrong-port replies', async () => {
    const gateway = await fakeGateway()
    gateway.behaviour = { staleReplyFirst: true, duplicates: 2 }
    for (const protocol of ['pcp', 'nat-pmp'] as const) {
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol] })
      const mapping = await nat.newMapping('udp', 4000)
      assert.ok(mapping.established, `${protocol}: ${String(mapping.lastError)}`)
      await nat.close()
    }
    gateway.behaviour = { replyFromOtherPort: true }
    await assert.rejects(discoverNAT({ gateway: gateway.address, protocols: ['pcp', 'nat-pmp'], timeout: 400 }), NoNATFoundError)
  })
})

for (const protocol of ['pcp', 'nat-pmp'] as const) {
  describe(`${protocol} mappings against a fake gateway`, () => {
    it('records the port and lifetime the gateway granted, not what it asked for', async () => {
      const gateway = await fakeGateway()
      gateway.behaviour = { grantExternalPort: () => 40_001 }
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol] })
      const established = nextEvent<{ port: number }>(nat, 'mapping-established')
      const mapping = await nat.newMapping('tcp', 8080)
      assert.equal(mapping.externalPort, 40_001)
      assert.equal((await established).port, 40_001)
      assert.deepEqual(await mapping.externalAddr(), { address: '11.77.0.1', port: 40_001, protocol: 'tcp', family: 'IPv4', isPublic: true })
      assert.ok(gateway.mappings.has('tcp/8080'))
      await mapping.close()
      assert.ok(!gateway.mappings.has('tcp/8080'), 'close() deleted the mapping at the gateway')
      assert.equal(mapping.externalPort, 0)
      await assert.rejects(mapping.externalAddr(), NoMappingError)
      await nat.close()
    })

    it('renews sooner when the gateway grants a shorter lifetime, keeping the port', async () => {
      const gateway = await fakeGateway()
      gateway.behaviour = { grantLifetime: () => 2 }
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol] })
      const mapping = await nat.newMapping('udp', 5000, { externalPort: 45_000 })
      assert.equal(mapping.externalPort, 45_000)
      await nextEvent(mapping, 'renewed')
      await nextEvent(mapping, 'renewed')
      assert.equal(mapping.externalPort, 45_000)
      assert.ok(mapping.renewals >= 2)
      const held = gateway.mappings.get('udp/5000')
      assert.ok(held !== undefined && held.renewals >= 2, 'the gateway saw renewals of the same mapping')
      await nat.close()
      assert.equal(gateway.mappings.size, 0)
    })

    it('resolves newMapping with the truth when the gateway refuses, and keeps trying', async () => {
      const gateway = await fakeGateway()
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol] })
      gateway.behaviour = { resultCode: 2 }
      const mapping = await nat.newMapping('tcp', 6000)
      assert.equal(mapping.established, false)
      assert.equal(mapping.externalPort, 0)
      const error = mapping.lastError
      assert.ok(error instanceof GatewayResultError)
      assert.equal(error.protocol, protocol)
      assert.equal(error.resultCode, 2)
      assert.equal(error.resultName, 'NOT_AUTHORIZED')
      await assert.rejects(mapping.externalAddr(), (e: unknown) => e instanceof NoMappingError && e.cause === error)
      // The gateway changes its mind: the retry (after 1 s) establishes the mapping.
      gateway.behaviour = {}
      await nextEvent(mapping, 'established')
      assert.ok(mapping.established)
      await nat.close()
    })

    it('names out-of-resources results', async () => {
      const gateway = await fakeGateway()
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol] })
      gateway.behaviour = { resultCode: protocol === 'pcp' ? 8 : 4 }
      const mapping = await nat.newMapping('udp', 6001)
      assert.equal((mapping.lastError as GatewayResultError).resultName, protocol === 'pcp' ? 'NO_RESOURCES' : 'OUT_OF_RESOURCES')
      await nat.close()
    })

    it('resolves newMapping after a timed-out first attempt and rejects it on abort', async () => {
      const gateway = await fakeGateway()
      const nat = await discoverNAT({ gateway: gateway.address, protocols: [protocol] })
      gateway.behaviour = { silent: true }
      const mapping = await nat.newMapping('tcp', 7000, { timeout: 200 })
      assert.equal(mapping.established, false)
      assert.equal(mapping.lastError?.name, 'TimeoutError')
      const controller = new AbortController()
      setTimeout(() => { controller.abort() }, 50)
      await assert.rejects(nat.newMapping('tcp', 7001, { signal: controller.signal }), AbortError)
      assert.deepEqual(nat.mappings(), [mapping], 'an aborted mapping is not kept')
      await nat.close()
    })
  })
}

describe('closing', () => {
  it('close() is idempotent, deletes every mapping and leaves no socket or timer behind', async () => {
    const before = new Set(process.getActiveResourcesInfo())
    const gateway = await fakeGateway()
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['pcp'] })
    await Promise.all([1, 2, 3].map(async (i) => await nat.newMapping('tcp', 9000 + i)))
    assert.equal(gateway.mappings.size, 3)
    await Promise.all([nat.close(), nat.close()])
    await nat.close()
    assert.equal(gateway.mappings.size, 0)
    assert.deepEqual(nat.mappings(), [])
    await gateway.close()
    await waitUntil(() => !process.getActiveResourcesInfo().some((resource) => !before.has(resource) && /UDP|Timeout/.test(resource)))
  })

  it('close() gives up on a silent gateway within closeTimeout', async () => {
    const gateway = await fakeGateway()
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['nat-pmp'], closeTimeout: 300 })
    await nat.newMapping('udp', 9100)
    gateway.behaviour = { silent: true }
    const started = Date.now()
    await nat.close()
    assert.ok(Date.now() - started < 10_000)
    assert.deepEqual(nat.mappings(), [])
  })
})

// PCP has no address request, and a MAP of a low port as a probe is what stock routers refuse
// (and miniupnpd 2.3.1 stalls on): the address comes from NAT-PMP on the same gateway, else a
// mapping of ours, else a short mapping of a port >= 1024 that is deleted at once.
describe('the external address of a PCP NAT', () => {
  const pcpMaps = (gateway: FakePcpGateway): Array<{ internalPort: number, lifetimeSeconds: number }> => gateway.requests.flatMap((entry) =>
    entry.protocol === 'pcp' && entry.request?.opcode === 'map' ? [{ internalPort: entry.request.map.internalPort, lifetimeSeconds: entry.request.lifetimeSeconds }] : [])

  it('comes from the NAT-PMP address request when the gateway speaks both, with no PCP MAP', async () => {
    const gateway = await fakeGateway()
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['pcp'], cacheTime: 0 })
    assert.equal(nat.type, 'pcp')
    assert.equal(await nat.externalAddress(), '11.77.0.1')
    assert.equal(await nat.externalAddress(), '11.77.0.1')
    assert.deepEqual(pcpMaps(gateway), [])
    assert.equal(gateway.requests.filter((r) => r.kind === 'external-address').length, 2)
    await nat.close()
  })

  it('on a PCP-only gateway: a short mapping of our own port >= 1024, deleted at once', async () => {
    const gateway = await fakeGateway({ natPmp: false })
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['pcp'], cacheTime: 0 })
    assert.equal(await nat.externalAddress(), '11.77.0.1')
    const maps = pcpMaps(gateway)
    assert.equal(maps.length, 2, 'one MAP and its delete')
    assert.ok(maps.every((map) => map.internalPort >= 1_024), JSON.stringify(maps))
    assert.deepEqual(maps.map((map) => map.lifetimeSeconds > 0), [true, false])
    assert.equal(gateway.mappings.size, 0, 'nothing left behind')
    // It learnt that NAT-PMP is not spoken: the next query does not ask again.
    const asked = gateway.requests.filter((r) => r.kind === 'external-address').length
    await nat.externalAddress()
    assert.equal(gateway.requests.filter((r) => r.kind === 'external-address').length, asked)
    await nat.close()
  })

  it('on a PCP-only gateway with a mapping of ours: what that mapping reported, with no request', async () => {
    const gateway = await fakeGateway({ natPmp: false })
    const nat = await discoverNAT({ gateway: gateway.address, protocols: ['pcp'], cacheTime: 0 })
    const mapping = await nat.newMapping('udp', 4_100)
    assert.ok(mapping.established)
    await nat.externalAddress() // learns that NAT-PMP is not spoken
    const before = gateway.requests.length
    assert.equal(await nat.externalAddress(), '11.77.0.1')
    assert.equal(gateway.requests.length, before)
    await nat.close()
  })
})
