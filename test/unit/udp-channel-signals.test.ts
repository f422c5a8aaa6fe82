import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { describe, it } from 'node:test'
import { UdpChannel } from '../../src/net/udp-channel.js'

describe('UDP channel and long-lived signals', () => {
  // Regression (CI soak, seed 1): a mapping's signal outlives the channels it is used on (each move
  // to a new gateway makes a new client); every channel left its abort listener on it, and after
  // ten gateway changes Node warned MaxListenersExceededWarning (and kept every old channel alive).
  it('leaves no abort listener on a signal once its exchanges have settled, over many channels', async () => {
    const dgram = await import('node:dgram')
    const server = dgram.createSocket('udp4')
    server.on('message', (message, remote) => { server.send(message, remote.port, remote.address) })
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve))
    const codec = { decode: (bytes: Uint8Array) => bytes, keyOf: () => undefined }
    const mappingLife = new AbortController()
    try {
      for (let move = 0; move < 15; move++) {
        const channel = new UdpChannel('127.0.0.1', server.address().port, codec)
        const reply = await channel.exchange('echo', { request: Uint8Array.of(move), key: 'echo', accept: (bytes) => bytes[0], retransmit: () => [100, 200][Symbol.iterator]() },
          { signal: mappingLife.signal, timeout: 5_000 })
        assert.equal(reply, move)
        assert.equal(getEventListeners(mappingLife.signal, 'abort').length, 0, `after move ${move}`)
        channel.close()
      }
    } finally {
      server.close()
    }
  })
})
