import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { describe, it } from 'node:test'
import { SETTLED } from '../../src/core/deadline.js'
import { AbortError } from '../../src/errors.js'
import { UdpChannel } from '../../src/net/udp-channel.js'

const codec = { decode: (bytes: Uint8Array) => bytes, keyOf: () => undefined }

/** A UDP server on 127.0.0.1 that sends every datagram back while `echoing()` says so. */
async function echoServer (echoing: () => boolean = () => true): Promise<import('node:dgram').Socket> {
  const dgram = await import('node:dgram')
  const server = dgram.createSocket('udp4')
  server.on('message', (message, remote) => { if (echoing()) server.send(message, remote.port, remote.address) })
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve))
  return server
}

/** One exchange of `byte` on `channel`, resolving with the byte echoed. */
async function echo (channel: UdpChannel<Uint8Array>, signal: AbortSignal, byte: number): Promise<number | undefined> {
  return await channel.exchange('echo', { request: Uint8Array.of(byte), key: 'echo', accept: (bytes) => bytes[0], retransmit: () => [100, 200][Symbol.iterator]() },
    { signal, timeout: 5_000 })
}

describe('UDP channel and long-lived signals', () => {
  // Regression (CI soak, seed 1): a mapping's signal outlives the channels it is used on (each move
  // to a new gateway makes a new client); every channel left its abort listener on it, and after
  // ten gateway changes Node warned MaxListenersExceededWarning (and kept every old channel alive).
  it('leaves no abort listener on a signal once its exchanges have settled, over many channels', async () => {
    const server = await echoServer()
    const mappingLife = new AbortController()
    try {
      for (let move = 0; move < 15; move++) {
        const channel = new UdpChannel('127.0.0.1', server.address().port, codec)
        assert.equal(await echo(channel, mappingLife.signal, move), move)
        assert.equal(getEventListeners(mappingLife.signal, 'abort').length, 0, `after move ${move}`)
        channel.close()
      }
    } finally {
      server.close()
    }
  })

  // A mapping's signal comes back at every renewal: its listener stays between them (adding and
  // removing one each time showed in the renewal profile), never more than one, and goes with the
  // channel or the signal.
  it('keeps one listener for a signal that comes back, and takes it off on close or abort', async () => {
    let silent = false
    const server = await echoServer(() => !silent)
    const exchange = echo
    try {
      const mappingLife = new AbortController()
      const channel = new UdpChannel('127.0.0.1', server.address().port, codec)
      assert.equal(await exchange(channel, mappingLife.signal, 1), 1)
      assert.equal(getEventListeners(mappingLife.signal, 'abort').length, 0, 'seen once: nothing kept')
      for (let renewal = 2; renewal < 20; renewal++) {
        assert.equal(await exchange(channel, mappingLife.signal, renewal), renewal)
        assert.equal(getEventListeners(mappingLife.signal, 'abort').length, 1, `after renewal ${renewal}`)
      }
      channel.close()
      assert.equal(getEventListeners(mappingLife.signal, 'abort').length, 0, 'after close')

      // The kept listener still ends a waiting exchange when its signal aborts, and goes with it.
      const other = new AbortController()
      const second = new UdpChannel('127.0.0.1', server.address().port, codec)
      await exchange(second, other.signal, 1)
      await exchange(second, other.signal, 2)
      silent = true
      const waiting = exchange(second, other.signal, 3)
      other.abort(new Error('mapping closed'))
      await assert.rejects(waiting, { code: 'ERR_ABORTED' })
      assert.equal(getEventListeners(other.signal, 'abort').length, 0, 'after abort')
      second.close()
    } finally {
      server.close()
    }
  })

  // The listener is added after the turn that sent the request (the first addEventListener after
  // an idle moment is slow): an abort in that same turn must still end the exchange, and leave
  // nothing on the signal.
  it('ends an exchange aborted before its listener was added, and adds none', async () => {
    const silent = await echoServer(() => false)
    const channel = new UdpChannel('127.0.0.1', silent.address().port, codec)
    try {
      // The socket is open from the first exchange on: the next ones start in the caller's turn.
      const opening = new AbortController()
      const first = echo(channel, opening.signal, 1)
      await new Promise((resolve) => setTimeout(resolve, 20))
      opening.abort(new Error('enough'))
      await assert.rejects(first, { code: 'ERR_ABORTED' })

      const caller = new AbortController()
      const waiting = echo(channel, caller.signal, 2)
      const reason = new Error('the caller gave up at once')
      caller.abort(reason)
      assert.equal(getEventListeners(caller.signal, 'abort').length, 0, 'not armed yet')
      await assert.rejects(waiting, (error) => error instanceof AbortError && error.cause === reason)
      assert.equal(getEventListeners(caller.signal, 'abort').length, 0, 'after the abort')
    } finally {
      channel.close()
      silent.close()
    }
  })

  // Discovery stops its losing probes with SETTLED once it has a winner: nobody reads their
  // rejections, so they carry the shared instance rather than a new error with a stack each. A
  // caller's own abort still gets an AbortError naming the request, with the caller's reason.
  it('an exchange stopped with SETTLED rejects with SETTLED itself; a caller\'s abort with a new AbortError', async () => {
    const silent = await echoServer(() => false)
    const channel = new UdpChannel('127.0.0.1', silent.address().port, codec)
    const exchange = async (signal: AbortSignal): Promise<unknown> => await channel.exchange('silent request', { request: Uint8Array.of(1), key: 'k', accept: () => 1, retransmit: () => [][Symbol.iterator]() },
      { signal, timeout: 5_000 })
    try {
      const settled = new AbortController()
      const losing = exchange(settled.signal)
      settled.abort(SETTLED)
      await assert.rejects(losing, (error) => error === SETTLED)

      const caller = new AbortController()
      const stopped = exchange(caller.signal)
      const reason = new Error('the caller gave up')
      caller.abort(reason)
      await assert.rejects(stopped, (error) => error instanceof AbortError && error !== SETTLED && error.code === 'ERR_ABORTED' &&
        error.message === 'silent request: aborted' && error.cause === reason)
    } finally {
      channel.close()
      silent.close()
    }
  })
})
