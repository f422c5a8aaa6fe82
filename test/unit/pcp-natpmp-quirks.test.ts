// What NAT-PMP and PCP gateways (and hosts beside them) do in the field (issue 20), each acted out
// by the fake gateway: spoofed announcements, a renewal that does not extend the lease, a gateway
// that refuses everything, a nonce that must survive the process.
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it, type TestContext } from 'node:test'
import { NAT } from '../../src/core/nat.js'
import type { GatewayClient } from '../../src/core/gateway-client.js'
import { encodeResponse as encodeNatPmpResponse } from '../../src/natpmp/codec.js'
import { NatPmpClient } from '../../src/natpmp/client.js'
import { resolveDiscoverOptions, type DiscoverOptions } from '../../src/options.js'
import { encodeResponse as encodePcpResponse } from '../../src/pcp/codec.js'
import { PcpClient } from '../../src/pcp/client.js'
import { protocolProbes } from '../../src/protocols.js'
import { FakePcpGateway } from '../helpers/fake-pcp-gateway.js'

// Loopback addresses 127.0.3.x belong to this file.
let nextHost = 10
const gateways: FakePcpGateway[] = []
async function fakeGateway (options: { epochSeconds?: number } = {}): Promise<FakePcpGateway> {
  const gateway = await FakePcpGateway.start({ address: `127.0.3.${nextHost++}`, externalAddress: '11.77.0.1', ...options })
  gateways.push(gateway)
  return gateway
}
after(async () => { await Promise.all(gateways.map(async (gateway) => { await gateway.close() })) })

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function waitFor (what: string, condition: () => boolean, limit = 20_000): Promise<void> {
  const deadline = Date.now() + limit
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${limit} ms`)
    await sleep(20)
  }
}

/**
 * A NAT on the fake gateway whose client the test keeps: a gateway on loopback multicasts nothing,
 * so the test hands the client what its announcement listener would, as if from the gateway.
 */
function natOn (gateway: FakePcpGateway, protocol: 'pcp' | 'nat-pmp', options: DiscoverOptions = {}): { nat: NAT, client: GatewayClient } {
  const client = protocol === 'pcp' ? new PcpClient(gateway.address, '127.0.0.1') : new NatPmpClient(gateway.address, '127.0.0.1')
  const nat = new NAT({ client }, resolveDiscoverOptions({ gateway: gateway.address, protocols: [protocol], ...options }), protocolProbes)
  return { nat, client }
}

function announcement (protocol: 'pcp' | 'nat-pmp', epochSeconds: number): Uint8Array {
  return protocol === 'pcp'
    ? encodePcpResponse({ opcode: 'announce', resultCode: 0, lifetimeSeconds: 0, epochSeconds })
    : encodeNatPmpResponse({ opcode: 'external-address', truncated: false, resultCode: 0, epochSeconds, externalAddress: '11.77.0.66' })
}

for (const protocol of ['pcp', 'nat-pmp'] as const) {
  describe(`${protocol}: a LAN host that speaks for the gateway (spoofed announcements)`, () => {
    it('a flood of announcements with epoch 0 costs the gateway about one request a second, whatever the number of mappings; a real restart is still repaired at once', async (t) => {
      const gateway = await fakeGateway({ epochSeconds: 50_000 })
      const { nat, client } = natOn(gateway, protocol)
      const resets: string[] = []
      nat.on('gateway-reset', ({ reason }) => resets.push(reason))
      const count = 40
      await Promise.all(Array.from({ length: count }, async (_, i) => await nat.newMapping('udp', 7_000 + i)))
      assert.equal(gateway.mappings.size, count)

      // 2 s of spoofed announcements, 20 a second: on b5f9824 each one renewed every mapping.
      const before = gateway.requests.length
      for (let i = 0; i < 40; i++) {
        client.handleAnnouncement?.(announcement(protocol, 0))
        await sleep(50)
      }
      await sleep(1_100)
      const flood = gateway.requests.length - before
      t.diagnostic(`${flood} requests at the gateway during 40 spoofed announcements in 2 s, with ${count} mappings`)
      assert.ok(flood <= 4, `the flood cost ${flood} requests (checks are at most one a second)`)
      assert.deepEqual(resets, [], 'the gateway\'s own epoch says it did not restart')
      if (protocol === 'nat-pmp') assert.equal(await nat.externalAddress(), '11.77.0.1', 'the announced address was not believed')

      // A real restart: the gateway forgets everything and its epoch goes back.
      gateway.setEpoch(0)
      gateway.mappings.clear()
      const restartedAt = Date.now()
      client.handleAnnouncement?.(announcement(protocol, 0))
      await waitFor('every mapping back', () => gateway.mappings.size === count, 5_000)
      t.diagnostic(`all ${count} mappings back ${Date.now() - restartedAt} ms after the real announcement`)
      assert.equal(resets.length, 1)
      assert.match(resets[0] ?? '', /epoch/)
      await nat.close()
    })

    it('an announcement whose epoch continues (a gateway whose epoch survives its restarts) renews up to 100 mappings at once, then 5 a second', async (t) => {
      const gateway = await fakeGateway({ epochSeconds: 50_000 })
      const { nat, client } = natOn(gateway, protocol)
      let resets = 0
      nat.on('gateway-reset', () => { resets++ })
      const count = 130
      await Promise.all(Array.from({ length: count }, async (_, i) => await nat.newMapping('tcp', 7_100 + i)))
      gateway.mappings.clear()
      const restartedAt = Date.now()
      client.handleAnnouncement?.(announcement(protocol, gateway.epochSeconds))
      await waitFor('the first hundred back at once', () => gateway.mappings.size >= 100, 2_000)
      await waitFor('every mapping back', () => gateway.mappings.size === count, 15_000)
      t.diagnostic(`all ${count} back ${Date.now() - restartedAt} ms after the announcement`)

      // A flood of announcements that copy the gateway's epoch: still a few requests a second.
      const before = gateway.requests.length
      for (let i = 0; i < 30; i++) {
        client.handleAnnouncement?.(announcement(protocol, gateway.epochSeconds))
        await sleep(100)
      }
      const flood = gateway.requests.length - before
      t.diagnostic(`${flood} requests during 3 s of announcements with a continuing epoch, with ${count} mappings`)
      assert.ok(flood <= 3 + 3 * 5 + 10, `the flood cost ${flood} requests in 3 s`)
      assert.ok(resets >= 1, 'the renewals after the announcement are reported as a reset')
      assert.equal(nat.stats().gatewayResets, resets, 'the counter agrees with the gateway-reset events')
      await nat.close()
    })
  })
}

/** The gaps between the MAP requests (ms) for `internalPort`, from the gateway's log. */
function gapsBetweenMaps (gateway: FakePcpGateway, internalPort: number): number[] {
  const times = gateway.requests.filter((r) => r.kind === 'map' && (r.request as { internalPort?: number, map?: { internalPort: number } } | undefined) !== undefined &&
    ((r.request as { map?: { internalPort: number } }).map?.internalPort ?? (r.request as { internalPort?: number }).internalPort) === internalPort).map((r) => r.time)
  return times.slice(1).map((time, i) => time - (times[i] ?? 0))
}

for (const protocol of ['pcp', 'nat-pmp'] as const) {
  describe(`${protocol}: a gateway that refuses every mapping (miniupnpd 2.3.10+ after a WAN flap)`, () => {
    it('says the gateway refuses everything and should be restarted, backs off, and recovers by itself', async () => {
      const gateway = await fakeGateway()
      const { nat } = natOn(gateway, protocol, { mappingDuration: 12_000 })
      const mapping = await nat.newMapping('tcp', 7_200)
      assert.ok(mapping.established)
      // PCP NO_RESOURCES (8), NAT-PMP OUT_OF_RESOURCES (4): what miniupnpd answers when it cannot add the rule.
      gateway.behaviour = { resultCode: protocol === 'pcp' ? 8 : 4 }
      gateway.mappings.clear()
      mapping.renewNow()
      await waitFor('the typed error', () => mapping.lastError?.name === 'GatewayRefusesEverythingError', 20_000)
      const error = mapping.lastError as Error & { code: string, inARow: number, cause: { code?: string, protocol?: string, resultCode?: number } }
      assert.equal(error.code, 'ERR_GATEWAY_REFUSES_EVERYTHING')
      assert.match(error.message, /^the gateway refuses every request: restart it \(3 mapping requests in a row/)
      assert.equal(error.inARow, 3)
      assert.deepEqual([error.cause.code, error.cause.protocol, error.cause.resultCode], ['ERR_GATEWAY_RESULT', protocol, protocol === 'pcp' ? 8 : 4])
      await waitFor('a fourth attempt', () => gapsBetweenMaps(gateway, 7_200).length >= 4, 20_000)
      const gaps = gapsBetweenMaps(gateway, 7_200).slice(-3)
      // 1, 2, then 4 s apart (timers fire late on a loaded machine, never early: lower bounds only).
      assert.ok((gaps[0] ?? 0) >= 900 && (gaps[1] ?? 0) >= 1_900 && (gaps[2] ?? 0) >= 3_900, `retries back off: ${gaps.map(Math.round).join(', ')} ms apart`)
      // The gateway is restarted: the mapping comes back without a call from the application.
      gateway.behaviour = {}
      // The gateway holds the mapping a moment before its reply reaches the client: wait for both.
      await waitFor('established again', () => mapping.established && gateway.mappings.size === 1 && mapping.lastError === undefined, 20_000)
      assert.equal(mapping.lastError, undefined)
      await nat.close()
    })
  })
}

/** A cache file in a directory of its own, removed after the test. */
async function cacheFile (t: TestContext): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'natmapper-nonce-'))
  t.after(async () => { await rm(directory, { recursive: true, force: true }) })
  return join(directory, 'cache.json')
}

describe('pcp: the nonce after a restart (a gateway that checks it on renewal and delete, miniupnpd 814e855)', () => {
  const request = { protocol: 'tcp' as const, internalPort: 7_300, suggestedExternalPort: 7_300, lifetimeSeconds: 120, description: 'restart' }

  it('with a cache file, the next process renews and deletes the mapping an earlier one made', async (t) => {
    const gateway = await fakeGateway()
    const file = await cacheFile(t)
    const first = new PcpClient(gateway.address, '127.0.0.1', undefined, file)
    const granted = await first.map(request, undefined, {})
    await first.close() // the process ends without deleting
    const held = gateway.mappings.get('tcp/7300')
    assert.ok(held?.nonce !== undefined)

    const next = new PcpClient(gateway.address, '127.0.0.1', undefined, file)
    t.after(async () => { await next.close() })
    const renewed = await next.map(request, undefined, {})
    assert.equal(renewed.externalPort, granted.externalPort, 'the same mapping, renewed')
    assert.equal(gateway.mappings.get('tcp/7300')?.renewals, 1)
    await next.deleteMapping('tcp', 7_300, 0, {})
    assert.equal(gateway.mappings.size, 0, 'and deleted by a process that never held it')

    // The secret is the file's, kept private; another mapping gets another nonce.
    const saved = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
    assert.equal(typeof saved.pcpNonceSecret, 'string')
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    const other = await next.map({ ...request, internalPort: 7_301, suggestedExternalPort: 7_301 }, undefined, {})
    assert.notDeepEqual(gateway.mappings.get('tcp/7301')?.nonce, held.nonce)
    await next.unmap(other, {})
  })

  it('without a cache file, nonces stay random: the next process is refused, as before', async (t) => {
    const gateway = await fakeGateway()
    const first = new PcpClient(gateway.address, '127.0.0.1')
    await first.map(request, undefined, {})
    await first.close()
    const next = new PcpClient(gateway.address, '127.0.0.1')
    t.after(async () => { await next.close() })
    await assert.rejects(next.map(request, undefined, {}), (error: unknown) => (error as { resultName?: string }).resultName === 'NOT_AUTHORIZED')
    await assert.rejects(next.deleteMapping('tcp', 7_300, 0, {}), (error: unknown) => (error as { code?: string }).code === 'ERR_UNSUPPORTED')
  })

  it('a cache file that cannot be written, or holds garbage, means random nonces, never a failure', async (t) => {
    const gateway = await fakeGateway()
    // Its directory would have to be made inside a regular file.
    const notADirectory = await cacheFile(t)
    await writeFile(notADirectory, '')
    const unwritable = new PcpClient(gateway.address, '127.0.0.1', undefined, join(notADirectory, 'cache', 'cache.json'))
    t.after(async () => { await unwritable.close() })
    await unwritable.map({ ...request, internalPort: 7_310 }, undefined, {})
    await assert.rejects(unwritable.deleteMapping('tcp', 7_311, 0, {}), (error: unknown) => (error as { code?: string }).code === 'ERR_UNSUPPORTED')
    const file = await cacheFile(t)
    await writeFile(file, '{"pcpNonceSecret": "short", "gateways": [1, 2')
    const garbage = new PcpClient(gateway.address, '127.0.0.1', undefined, file)
    t.after(async () => { await garbage.close() })
    await garbage.map({ ...request, internalPort: 7_312 }, undefined, {})
    assert.equal(typeof (JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>).pcpNonceSecret, 'string', 'a new secret replaced the garbage')
  })

  it('a NAT with gatewayCacheFile keeps the mapping of the process before it, on the same external port', async (t) => {
    const gateway = await fakeGateway()
    const file = await cacheFile(t)
    const earlier = new PcpClient(gateway.address, '127.0.0.1', undefined, file)
    const granted = await earlier.map({ ...request, suggestedExternalPort: 0 }, undefined, {})
    await earlier.close()
    const client = new PcpClient(gateway.address, '127.0.0.1', undefined, file)
    const nat = new NAT({ client }, resolveDiscoverOptions({ gateway: gateway.address, protocols: ['pcp'], gatewayCacheFile: file }), protocolProbes)
    const mapping = await nat.newMapping('tcp', 7_300)
    assert.ok(mapping.established, String(mapping.lastError))
    assert.equal(mapping.externalPort, granted.externalPort)
    await nat.close()
    assert.equal(gateway.mappings.size, 0)
  })
})

for (const protocol of ['pcp', 'nat-pmp'] as const) {
  describe(`${protocol}: a renewal that does not extend the lease (Tomato's miniupnpd)`, () => {
    it('is noticed from the lifetime the gateway reports, and the mapping is recreated before the first lease ends', async () => {
      const gateway = await fakeGateway()
      gateway.behaviour = { renewalKeepsExpiry: true }
      // A 6 s lease renewed every 2 s: without a recreate it dies 6 s after it was made.
      const { nat } = natOn(gateway, protocol, { mappingDuration: 6_000 })
      const mapping = await nat.newMapping('udp', 7_400)
      const port = mapping.externalPort
      // A recreate is a delete, then a map: the gateway lacks the rule for that moment. Without the
      // recreate the lease ends 6 s in and the rule stays gone: the longest absence tells them apart.
      const started = Date.now()
      let absentSince: number | undefined
      let longestAbsence = 0
      while (Date.now() - started < 14_000) {
        const now = Date.now()
        if (gateway.mappings.get('udp/7400') === undefined) absentSince ??= now
        else absentSince = undefined
        if (absentSince !== undefined) longestAbsence = Math.max(longestAbsence, now - absentSince)
        await sleep(100)
      }
      assert.ok(longestAbsence < 2_000, `the gateway lacked the mapping for ${longestAbsence} ms at once (only a recreate's moment is expected)`)
      assert.ok(mapping.established)
      assert.equal(mapping.externalPort, port, 'on the same external port')
      const deletes = gateway.requests.filter((r) => r.kind === 'map' && (r.request as { lifetimeSeconds?: number }).lifetimeSeconds === 0)
      assert.ok(deletes.length >= 1, 'recreated (delete, then map)')
      await nat.close()
    })
  })
}

describe('pcp: refusals as the lease ends', () => {
  it('one last try just before the lease ends, not one a millisecond', async () => {
    const gateway = await fakeGateway()
    const { nat } = natOn(gateway, 'pcp', { mappingDuration: 4_000 })
    const mapping = await nat.newMapping('udp', 7_500)
    gateway.behaviour = { resultCode: 8 }
    const before = gateway.requests.length
    let lost = false
    mapping.once('lost', () => { lost = true })
    await waitFor('lost', () => lost, 20_000)
    const sent = gateway.requests.length - before
    assert.ok(sent <= 6, `${sent} requests while the 4 s lease ran out`)
    await nat.close()
  })
})
