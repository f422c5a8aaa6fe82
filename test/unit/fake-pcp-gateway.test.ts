/**
 * Smoke test of the fake gateway over real loopback UDP, with a raw socket as the client. It
 * uses 127.0.0.250 for the gateway; the client socket is bound to 127.0.0.1.
 */
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { InvalidArgumentError } from '../../src/errors.js'
import * as natPmp from '../../src/natpmp/codec.js'
import * as pcp from '../../src/pcp/codec.js'
import { FakePcpGateway } from '../helpers/fake-pcp-gateway.js'
import { hex } from '../helpers/fuzz.js'

const GATEWAY = '127.0.0.250'
const CLIENT = '127.0.0.1'
const EXTERNAL = '11.77.0.1'
const NONCE = hex('0102030405060708090a0b0c')
const OTHER_NONCE = hex('ffffffffffffffffffffffff')
/** Long enough for loopback replies to arrive, short enough to keep the file fast. */
const QUIET_MS = 60

interface Datagram { bytes: Uint8Array, port: number }

/** A bare UDP socket on 127.0.0.1 that records every datagram it receives. */
class RawClient {
  readonly received: Datagram[] = []
  readonly #socket = dgram.createSocket('udp4')
  #waiter: (() => void) | undefined

  static async open (): Promise<RawClient> {
    const client = new RawClient()
    await new Promise<void>((resolve) => client.#socket.bind(0, CLIENT, resolve))
    client.#socket.on('message', (message, from) => {
      client.received.push({ bytes: Uint8Array.from(message), port: from.port })
      client.#waiter?.()
    })
    return client
  }

  /** Sends to the gateway and resolves with the first `count` datagrams received after sending. */
  async exchange (request: Uint8Array, count = 1, timeoutMs = 2_000): Promise<Datagram[]> {
    this.received.length = 0
    const enough = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`got ${this.received.length} of ${count} replies`)) }, timeoutMs)
      this.#waiter = () => {
        if (this.received.length >= count) {
          clearTimeout(timer)
          resolve()
        }
      }
    })
    this.#socket.send(request, 5351, GATEWAY)
    await enough
    return this.received.slice(0, count)
  }

  /** Sends and asserts that nothing comes back for a while. */
  async expectNoReply (request: Uint8Array): Promise<void> {
    this.received.length = 0
    this.#socket.send(request, 5351, GATEWAY)
    await sleep(QUIET_MS)
    assert.equal(this.received.length, 0)
  }

  async close (): Promise<void> {
    await new Promise<void>((resolve) => this.#socket.close(resolve))
  }
}

const mapRequest = (overrides: Partial<Parameters<typeof pcp.encodeMapRequest>[0]> = {}): Uint8Array => pcp.encodeMapRequest({
  clientAddress: CLIENT, lifetimeSeconds: 600, nonce: NONCE, protocol: 'udp', internalPort: 4000, suggestedExternalPort: 4001, ...overrides
})

/** Decodes a reply as a PCP MAP response, failing the test if it is anything else. */
function pcpMap (datagram: Datagram | undefined): pcp.PcpMapResponse {
  assert.ok(datagram !== undefined)
  const decoded = pcp.decodeResponse(datagram.bytes)
  assert.ok(decoded.kind === 'response' && decoded.opcode === 'map', `not a MAP response: ${JSON.stringify(decoded)}`)
  return decoded
}

function natPmpReply (datagram: Datagram | undefined): natPmp.NatPmpResponse {
  assert.ok(datagram !== undefined)
  return natPmp.decodeResponse(datagram.bytes)
}

describe('FakePcpGateway', () => {
  let gateway: FakePcpGateway
  let client: RawClient

  beforeEach(async () => {
    gateway = await FakePcpGateway.start({ address: GATEWAY, externalAddress: EXTERNAL })
    client = await RawClient.open()
  })

  afterEach(async () => {
    await client.close()
    await gateway.close()
  })

  it('answers the NAT-PMP external address request from port 5351', async () => {
    gateway.setEpoch(500)
    const [reply] = await client.exchange(natPmp.encodeExternalAddressRequest())
    assert.equal(reply?.port, 5351)
    assert.deepEqual(natPmpReply(reply), { opcode: 'external-address', truncated: false, resultCode: 0, epochSeconds: 500, externalAddress: EXTERNAL })
    assert.equal(gateway.requests[0]?.kind, 'external-address')
    assert.equal(gateway.requests[0]?.outcome, 'answered')
  })

  it('answers PCP ANNOUNCE', async () => {
    const [reply] = await client.exchange(pcp.encodeAnnounceRequest({ clientAddress: CLIENT }))
    const decoded = pcp.decodeResponse(reply?.bytes ?? new Uint8Array())
    assert.ok(decoded.kind === 'response')
    assert.equal(decoded.opcode, 'announce')
    assert.equal(decoded.resultCode, 0)
  })

  it('creates, renews and deletes a PCP mapping, following RFC 6887 §11.3 and §15', async () => {
    const created = pcpMap((await client.exchange(mapRequest()))[0])
    assert.equal(created.resultCode, 0)
    assert.deepEqual(created.map, { nonce: NONCE, protocol: 'udp', internalPort: 4000, externalPort: 4001, externalAddress: EXTERNAL })
    assert.equal(created.lifetimeSeconds, 600)
    assert.equal(gateway.mappings.get('udp/4000')?.externalPort, 4001)

    // Same nonce: a renewal that keeps the port, even when another port is suggested.
    const renewed = pcpMap((await client.exchange(mapRequest({ suggestedExternalPort: 0 })))[0])
    assert.equal(renewed.map.externalPort, 4001)
    assert.equal(gateway.mappings.get('udp/4000')?.renewals, 1)

    // Another nonce: another client's mapping.
    const stolen = pcpMap((await client.exchange(mapRequest({ nonce: OTHER_NONCE })))[0])
    assert.equal(stolen.resultCode, pcp.PCP_RESULT_CODES.NOT_AUTHORIZED)

    const deleted = pcpMap((await client.exchange(mapRequest({ lifetimeSeconds: 0 })))[0])
    assert.equal(deleted.resultCode, 0)
    assert.equal(deleted.lifetimeSeconds, 0)
    assert.equal(gateway.mappings.size, 0)
    assert.deepEqual(gateway.requests.map((request) => request.kind), ['map', 'map', 'map', 'map'])
  })

  it('answers ADDRESS_MISMATCH when the client address field is not the source address', async () => {
    const reply = pcpMap((await client.exchange(mapRequest({ clientAddress: '127.0.0.9' })))[0])
    assert.equal(reply.resultCode, pcp.PCP_RESULT_CODES.ADDRESS_MISMATCH)
    assert.equal(gateway.mappings.size, 0)
  })

  it('maps and deletes over NAT-PMP, choosing another port when the suggested one is taken', async () => {
    await client.exchange(mapRequest({ internalPort: 5000, suggestedExternalPort: 6000 }))
    const reply = natPmpReply((await client.exchange(natPmp.encodeMapRequest({ protocol: 'udp', internalPort: 5001, suggestedExternalPort: 6000, lifetimeSeconds: 120 })))[0])
    assert.ok(reply.opcode === 'map' && !reply.truncated)
    assert.equal(reply.resultCode, 0)
    assert.equal(reply.externalPort, 5001) // 6000 is taken: the internal port is free
    assert.equal(gateway.mappings.get('udp/5001')?.createdBy, 'nat-pmp')

    const deleted = natPmpReply((await client.exchange(natPmp.encodeMapRequest({ protocol: 'udp', internalPort: 5001, suggestedExternalPort: 0, lifetimeSeconds: 0 })))[0])
    assert.ok(deleted.opcode === 'map' && !deleted.truncated)
    assert.deepEqual([deleted.externalPort, deleted.lifetimeSeconds], [0, 0])
    assert.equal(gateway.mappings.has('udp/5001'), false)
  })

  it('as a NAT-PMP-only server, refuses PCP with a version-0 UNSUPP_VERSION (RFC 6887 §9)', async () => {
    gateway.pcp = false
    const [reply] = await client.exchange(mapRequest())
    assert.deepEqual(pcp.decodeResponse(reply?.bytes ?? new Uint8Array()), { kind: 'version-mismatch', serverVersion: 0 })
    assert.equal(gateway.requests[0]?.outcome, 'refused-version')
    assert.equal(gateway.mappings.size, 0)
  })

  it('with unsupportedVersionForPcp, refuses PCP even though it speaks it', async () => {
    gateway.behaviour = { unsupportedVersionForPcp: true }
    const [reply] = await client.exchange(pcp.encodeAnnounceRequest({ clientAddress: CLIENT }))
    assert.deepEqual(pcp.decodeResponse(reply?.bytes ?? new Uint8Array()), { kind: 'version-mismatch', serverVersion: 0 })
  })

  it('as a PCP-only server, refuses NAT-PMP with UNSUPP_VERSION in NAT-PMP format', async () => {
    gateway.natPmp = false
    const [reply] = await client.exchange(natPmp.encodeExternalAddressRequest())
    assert.deepEqual(natPmpReply(reply), { opcode: 'external-address', truncated: true, resultCode: 1, epochSeconds: 0 })
  })

  it('is silent when it speaks neither, or when told to be', async () => {
    gateway.pcp = false
    gateway.natPmp = false
    await client.expectNoReply(mapRequest())
    gateway.pcp = true
    gateway.behaviour = { silent: true }
    await client.expectNoReply(mapRequest())
    assert.deepEqual(gateway.requests.map((request) => request.outcome), ['ignored', 'silent'])
  })

  it('drops the first N requests after a behaviour is set', async () => {
    gateway.behaviour = { dropFirst: 2 }
    await client.expectNoReply(mapRequest())
    await client.expectNoReply(mapRequest())
    assert.equal(pcpMap((await client.exchange(mapRequest()))[0]).resultCode, 0)
    assert.deepEqual(gateway.requests.map((request) => request.outcome), ['dropped', 'dropped', 'answered'])
  })

  it('sends duplicates', async () => {
    gateway.behaviour = { duplicates: 2 }
    const replies = await client.exchange(mapRequest(), 3)
    assert.deepEqual(replies[1]?.bytes, replies[0]?.bytes)
    assert.deepEqual(replies[2]?.bytes, replies[0]?.bytes)
  })

  it('sends a stale PCP reply with another nonce before the real one', async () => {
    gateway.behaviour = { staleReplyFirst: true }
    const [stale, real] = await client.exchange(mapRequest(), 2)
    assert.notDeepEqual(pcpMap(stale).map.nonce, NONCE)
    assert.deepEqual(pcpMap(real).map.nonce, NONCE)
  })

  it('sends a stale NAT-PMP reply with another opcode before the real one', async () => {
    gateway.behaviour = { staleReplyFirst: true }
    const [stale, real] = await client.exchange(natPmp.encodeMapRequest({ protocol: 'tcp', internalPort: 80, suggestedExternalPort: 0, lifetimeSeconds: 60 }), 2)
    assert.equal((natPmpReply(stale) as { protocol?: string }).protocol, 'udp')
    assert.equal((natPmpReply(real) as { protocol?: string }).protocol, 'tcp')
  })

  it('replies from another port when told to', async () => {
    gateway.behaviour = { replyFromOtherPort: true }
    const [reply] = await client.exchange(mapRequest())
    assert.equal(reply?.port, gateway.otherPort)
    assert.notEqual(reply?.port, 5351)
  })

  it('delays replies', async () => {
    gateway.behaviour = { delayMs: 150 }
    const started = performance.now()
    await client.exchange(mapRequest())
    assert.ok(performance.now() - started >= 140)
  })

  it('answers MAP with a scripted result code and keeps no mapping', async () => {
    gateway.behaviour = { resultCode: pcp.PCP_RESULT_CODES.NO_RESOURCES }
    assert.equal(pcpMap((await client.exchange(mapRequest()))[0]).resultCode, 8)
    gateway.behaviour = { resultCode: natPmp.NATPMP_RESULT_CODES.OUT_OF_RESOURCES }
    const reply = natPmpReply((await client.exchange(natPmp.encodeMapRequest({ protocol: 'udp', internalPort: 1, suggestedExternalPort: 0, lifetimeSeconds: 60 })))[0])
    assert.equal(reply.resultCode, 4)
    assert.equal(gateway.mappings.size, 0)
  })

  it('grants the scripted lifetime and port', async () => {
    gateway.behaviour = { grantLifetime: (requested) => Math.min(requested, 120), grantExternalPort: () => 61_000 }
    const reply = pcpMap((await client.exchange(mapRequest()))[0])
    assert.equal(reply.lifetimeSeconds, 120)
    assert.equal(reply.map.externalPort, 61_000)
  })

  it('answers NETWORK_FAILURE while it has no external address', async () => {
    gateway.externalAddress = '0.0.0.0'
    assert.equal(natPmpReply((await client.exchange(natPmp.encodeExternalAddressRequest()))[0]).resultCode, 3)
    assert.equal(pcpMap((await client.exchange(mapRequest()))[0]).resultCode, pcp.PCP_RESULT_CODES.NETWORK_FAILURE)
  })

  it('logs and ignores malformed requests', async () => {
    await client.expectNoReply(hex('02 01 0000'))
    assert.equal(gateway.requests[0]?.kind, 'malformed')
    assert.match(gateway.requests[0]?.error?.message ?? '', /shorter than the 24-byte header/)
  })

  it('refuses non-loopback addresses and a taken address', async () => {
    await assert.rejects(FakePcpGateway.start({ address: '192.0.2.1', externalAddress: EXTERNAL }), InvalidArgumentError)
    await assert.rejects(FakePcpGateway.start({ address: GATEWAY, externalAddress: EXTERNAL }), /EADDRINUSE/)
  })

  it('closes idempotently', async () => {
    await gateway.close()
    await gateway.close()
    await client.expectNoReply(mapRequest())
  })
})
