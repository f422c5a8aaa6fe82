import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { discoverNAT } from '../../src/index.js'
import { wireChannel, type WireMessage } from '../../src/core/trace.js'
import { PCP_SERVER_PORT } from '../../src/constants.js'
import { FakePcpGateway } from '../helpers/fake-pcp-gateway.js'

// Loopback addresses 127.0.12.x belong to this file.
let nextHost = 10
const gateways: FakePcpGateway[] = []
after(async () => { await Promise.all(gateways.map(async (gateway) => { await gateway.close() })) })

/** How long the gateway's port stays closed (the soak's protocol-switch holds it 4-10 s). */
const CLOSED_MS = 8_000
/** The soak's settings: renewals every 2 s, retries 1 s, 2 s, 2 s... (capped at a third of the duration). */
const OPTIONS = { mappingDuration: 6_000, cacheTime: 3_000, requestTimeout: 1_500 }
/**
 * What the back-off allows in CLOSED_MS for 2 mappings: each at most one renewal then retries at
 * 1, 2, 2, 2 s (5 each); the address check every cacheTime (3); rediscovery at most every 5 s
 * (2 probes). 15, measured 11-13; 20 leaves room for a slow machine and nothing for a loop.
 */
const MOST_SENDS = 20

interface Measured { sent: number, requests: number, refusals: number, retransmissions: number, summary: string }

/**
 * A NAT holding 2 mappings on its own fake gateway, whose port is then closed for CLOSED_MS (the
 * kernel answers each datagram with ICMP port unreachable at once: loopback is never rate-limited);
 * `poll` asks every established mapping's externalAddr() every 50 ms meanwhile, as a status page
 * or the soak's sampler does. Counts the datagrams sent to the port (retransmissions and
 * rediscovery's probes included) and what nat.stats() counted.
 */
async function refusedFor (protocol: 'pcp' | 'nat-pmp', poll: boolean): Promise<Measured> {
  const address = `127.0.12.${nextHost++}`
  const gateway = await FakePcpGateway.start({ address, externalAddress: '11.77.0.1' })
  gateways.push(gateway)
  const nat = await discoverNAT({ gateway: address, protocols: [protocol], ...OPTIONS })
  try {
    const mappings = await Promise.all([1, 2].map(async (i) => await nat.newMapping('udp', 7300 + i)))
    assert.deepEqual(mappings.map((mapping) => mapping.established), [true, true])
    const peer = `${address}:${PCP_SERVER_PORT}`
    let sent = 0
    const onMessage = (message: unknown): void => {
      const wire = message as WireMessage
      if (wire.direction === 'send' && wire.peer === peer) sent++
    }
    wireChannel.subscribe(onMessage)
    const before = nat.stats().protocols[protocol]
    await gateway.close()
    const closedAt = Date.now()
    let asked = 0
    try {
      while (Date.now() - closedAt < CLOSED_MS) {
        if (poll) {
          await Promise.all(mappings.filter((mapping) => mapping.established).map(async (mapping) => {
            asked++
            await mapping.externalAddr({ timeout: 3_000 }).catch(() => {})
          }))
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    } finally {
      wireChannel.unsubscribe(onMessage)
    }
    const seconds = (Date.now() - closedAt) / 1000
    const after = nat.stats().protocols[protocol]
    const measured = {
      sent,
      requests: after.requests - before.requests,
      refusals: after.refusals - before.refusals,
      retransmissions: after.retransmissions - before.retransmissions
    }
    const summary = `${protocol}${poll ? `, externalAddr() asked ${asked} times` : ', nobody asking'}: ${sent} datagrams in ${seconds.toFixed(1)} s ` +
      `(${(sent / seconds).toFixed(1)}/s), ${measured.requests} requests, ${measured.refusals} refusals`
    console.log(summary)
    if (poll) assert.ok(asked > 40, `the poll ran (${summary})`)
    assert.ok(mappings.every((mapping) => mapping.lastError?.name === 'PortUnreachableError'), summary)
    return { ...measured, summary }
  } finally {
    await nat.close()
  }
}

for (const protocol of ['pcp', 'nat-pmp'] as const) {
  describe(`${protocol}: a gateway whose port answers ICMP port unreachable`, () => {
    it('gets requests no faster than the mappings back off, even from a caller polling externalAddr(); each refusal counted once', async () => {
      // Side by side: the lease running out (its last try) with nobody asking, and a polled NAT.
      const [quiet, polled] = await Promise.all([refusedFor(protocol, false), refusedFor(protocol, true)])
      for (const measured of [quiet, polled]) {
        assert.ok(measured.sent >= 6, `the mappings kept retrying: ${measured.summary}`)
        assert.ok(measured.sent <= MOST_SENDS, `at most ${MOST_SENDS} datagrams while refused: ${measured.summary}`)
        // One refusal per refused request (no retransmission: each is refused at once); the last
        // request may have been sent as the window closed, its refusal not yet read.
        assert.equal(measured.retransmissions, 0, measured.summary)
        assert.ok(measured.refusals <= measured.requests && measured.requests - measured.refusals <= 1, measured.summary)
      }
    })
  })
}

describe('nat.externalAddress() after the gateway answers again', () => {
  it('asks at once after a mapping is granted again, instead of answering with the failure it held back', async () => {
    const address = `127.0.12.${nextHost++}`
    let gateway = await FakePcpGateway.start({ address, externalAddress: '11.77.0.1' })
    gateways.push(gateway)
    // A long duration: the held-back failure lasts 1, 2, 4, 8 s... (up to 20 s) after each failed query.
    const nat = await discoverNAT({ gateway: address, protocols: ['nat-pmp'], mappingDuration: 60_000, cacheTime: 500, requestTimeout: 1_500 })
    try {
      const mapping = await nat.newMapping('udp', 7400)
      assert.equal(mapping.established, true)
      await gateway.close()
      await new Promise((resolve) => setTimeout(resolve, 600)) // past cacheTime
      // Refused queries until the one held back for at least 4 s.
      for (let failures = 0; failures < 3;) {
        await nat.externalAddress().catch(() => {})
        failures = nat.stats().protocols['nat-pmp'].refusals
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      gateway = await FakePcpGateway.start({ address, externalAddress: '11.77.0.1' })
      gateways.push(gateway)
      await mapping.recreate().catch(() => {})
      assert.equal(mapping.lastError, undefined, 'the mapping was granted again')
      assert.equal(await nat.externalAddress(), '11.77.0.1')
    } finally {
      await nat.close()
    }
  })
})
