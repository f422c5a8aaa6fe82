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

for (const protocol of ['pcp', 'nat-pmp'] as const) {
  describe(`${protocol}: a gateway whose port answers ICMP port unreachable`, () => {
    it('gets requests no faster than the mappings back off, however often externalAddr() is asked; every refusal counted once', async () => {
      const address = `127.0.12.${nextHost++}`
      const gateway = await FakePcpGateway.start({ address, externalAddress: '11.77.0.1' })
      gateways.push(gateway)
      const nat = await discoverNAT({ gateway: address, protocols: [protocol], ...OPTIONS })
      const mappings = await Promise.all([1, 2].map(async (i) => await nat.newMapping('udp', 7300 + i)))
      assert.deepEqual(mappings.map((mapping) => mapping.established), [true, true])

      // Every datagram sent to the gateway's port, retransmissions and discovery's probes included.
      const peer = `${address}:${PCP_SERVER_PORT}`
      let sent = 0
      const onMessage = (message: unknown): void => {
        const wire = message as WireMessage
        if (wire.direction === 'send' && wire.peer === peer) sent++
      }
      wireChannel.subscribe(onMessage)
      const before = nat.stats().protocols[protocol]
      // The kernel now answers every datagram to the port with ICMP port unreachable (loopback is
      // never rate-limited), each in well under a millisecond.
      await gateway.close()
      const closedAt = Date.now()
      let asked = 0
      try {
        // A caller that polls every mapping's address (a status page, the soak's sampler) must not
        // turn each poll into a request while the mappings back off.
        while (Date.now() - closedAt < CLOSED_MS) {
          await Promise.all(mappings.filter((mapping) => mapping.established).map(async (mapping) => {
            asked++
            await mapping.externalAddr({ timeout: 3_000 }).catch(() => {})
          }))
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      } finally {
        wireChannel.unsubscribe(onMessage)
      }
      const seconds = (Date.now() - closedAt) / 1000
      const counted = nat.stats().protocols[protocol]
      const requests = counted.requests - before.requests
      const refusals = counted.refusals - before.refusals
      const rate = `${sent} datagrams in ${seconds.toFixed(1)} s (${(sent / seconds).toFixed(1)}/s), ${requests} requests, ${refusals} refusals, externalAddr() asked ${asked} times`
      console.log(`${protocol}: ${rate}`)
      assert.ok(asked > 40, `the poll ran (${rate})`)
      assert.ok(sent >= 6, `the mappings kept retrying (${rate})`)
      assert.ok(sent <= MOST_SENDS, `at most ${MOST_SENDS} datagrams while refused: ${rate}`)
      // Each refused exchange counted once: no retransmission, every request refused.
      assert.equal(counted.retransmissions - before.retransmissions, 0, rate)
      assert.equal(refusals, requests, rate)
      assert.ok(mappings.every((mapping) => mapping.lastError?.name === 'PortUnreachableError'), rate)
      await nat.close()
    })
  })
}
