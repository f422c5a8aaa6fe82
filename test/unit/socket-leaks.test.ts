import assert from 'node:assert/strict'
import { createHook } from 'node:async_hooks'
import { describe, it } from 'node:test'
import { discoverNAT } from '../../src/discover.js'
import { NetworkError } from '../../src/errors.js'
import { UdpChannel } from '../../src/net/udp-channel.js'
import { natPmpProbe } from '../../src/natpmp/client.js'
import { pcpProbe } from '../../src/pcp/client.js'
import { FakePcpGateway } from '../helpers/fake-pcp-gateway.js'

// Our sockets are unref'd, which hides them from process.getActiveResourcesInfo(): count every
// UDP socket created and not yet destroyed instead.
const udpHandles = new Set<number>()
let udpCreated = 0
createHook({
  init (id, type) {
    if (type !== 'UDPWRAP') return
    udpHandles.add(id)
    udpCreated++
  },
  destroy (id) { udpHandles.delete(id) }
}).enable()
const udpSockets = (): number => udpHandles.size

describe('UDP channel', () => {
  // Regression (soak, seed 7): while the LAN host's address changed, every exchange whose socket
  // could not connect (ENETUNREACH) left that socket open; the NAT with every protocol enabled
  // grew by two sockets per fault. Binding to an address this host does not have fails the same
  // way, deterministically and without sending anything.
  it('closes a socket that failed to bind or connect, and opens a new one for the next exchange', async () => {
    const before = udpSockets()
    const codec = { decode: (bytes: Uint8Array) => bytes, keyOf: () => undefined }
    const channel = new UdpChannel('127.0.0.1', 9, codec, undefined, '192.0.2.1')
    for (let attempt = 0; attempt < 3; attempt++) {
      await assert.rejects(channel.exchange('test', { request: new Uint8Array(1), key: 'test', accept: () => undefined, retransmit: () => [][Symbol.iterator]() }, { timeout: 1_000 }), NetworkError)
    }
    // close() completes on a later turn of the event loop.
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(udpSockets(), before, 'no socket left behind by the failed attempts')
    channel.close()
  })
})

describe('PCP and NAT-PMP probes', () => {
  // Regression (soak, seed 7): a rediscovery while the gateway was silent left the socket of each
  // failed PCP and NAT-PMP probe open, one per protocol per rediscovery. Nothing listens on port
  // 5351 of 127.0.0.9, so both probes fail at once (ICMP port unreachable), or at the abort.
  for (const [name, probe] of [['pcp', pcpProbe], ['nat-pmp', natPmpProbe]] as const) {
    it(`${name}: a failed probe closes its socket`, async () => {
      const before = udpSockets()
      for (let attempt = 0; attempt < 3; attempt++) {
        await assert.rejects(probe({ gateway: '127.0.0.9', localAddress: '127.0.0.1', signal: AbortSignal.timeout(2_000) }))
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(udpSockets(), before, 'no socket left behind by the failed probes')
    })
  }
})

describe('discovery\'s address socket', () => {
  // Finding our address connects a UDP socket to the gateway's port 5351; the PCP (or NAT-PMP)
  // probe adopts it instead of opening and connecting one of its own, so its first request goes
  // out at once. Whatever does not adopt it closes it.
  it('carries the PCP probe and the mappings: one UDP socket for discover + map', async () => {
    const gateway = await FakePcpGateway.start({ address: '127.0.9.1', externalAddress: '11.77.0.1' })
    try {
      const createdBefore = udpCreated
      const openBefore = udpSockets()
      const nat = await discoverNAT({ gateway: gateway.address, protocols: ['pcp'] })
      const mapping = await nat.newMapping('tcp', 40_001)
      assert.equal(mapping.established, true)
      assert.equal(udpCreated - createdBefore, 1, 'the address lookup\'s socket is the PCP socket')
      await nat.close()
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(udpSockets(), openBefore, 'closed with the NAT')
    } finally {
      await gateway.close()
    }
  })

  for (const protocols of [['pcp'], ['nat-pmp'], ['upnp']] as const) {
    it(`is closed when discovery fails (protocols ${protocols.join(', ')})`, async () => {
      // The sockets of the test before close on a later turn of the event loop.
      await new Promise((resolve) => setTimeout(resolve, 50))
      const before = udpSockets()
      // Nothing listens on 127.0.0.9: every probe is refused at once.
      await assert.rejects(discoverNAT({ gateway: '127.0.0.9', protocols: [...protocols], timeout: 2_000 }), { code: 'ERR_NO_NAT_FOUND' })
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(udpSockets(), before, 'no socket left behind')
    })
  }
})
