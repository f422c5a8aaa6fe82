import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SETTLED } from '../../src/core/deadline.js'
import type { GatewayClient, NatType, ProbeContext, ProbeRegistry, ProtocolProbe } from '../../src/core/gateway-client.js'
import { raceProbes } from '../../src/core/probe.js'
import { AbortError } from '../../src/errors.js'
import { resolveDiscoverOptions } from '../../src/options.js'

/** A client that only records whether it was closed (no network: the race never talks to it). */
function fakeClient (type: NatType): GatewayClient & { closed: boolean } {
  const client = {
    type,
    gateway: '127.0.0.1',
    localAddress: '127.0.0.1',
    closed: false,
    externalAddress: async () => '11.0.0.1',
    map: async () => { throw new Error('not used') },
    unmap: async () => {},
    close: async () => { client.closed = true }
  }
  return client as unknown as GatewayClient & { closed: boolean }
}

const location = { gateway: '127.0.0.1', localAddress: '127.0.0.1' }
const turn = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

describe('the probe race', () => {
  it('stops the other probes with SETTLED once it has a winner; a late answer is closed unused', async () => {
    const winner = fakeClient('pcp')
    const late = fakeClient('nat-pmp')
    let upnpSignal: AbortSignal | undefined
    let upnpError: unknown
    const probes: Record<string, ProtocolProbe> = {
      pcp: async () => winner,
      // Answers only as it is stopped: the answer comes after the race was decided.
      'nat-pmp': async (context: ProbeContext) => await new Promise<GatewayClient>((resolve) => {
        context.signal.addEventListener('abort', () => { resolve(late) }, { once: true })
      }),
      // Ends the way a real probe does when stopped: with the signal's verdict.
      upnp: async (context: ProbeContext) => {
        upnpSignal = context.signal
        return await new Promise<GatewayClient>((_resolve, reject) => {
          context.signal.addEventListener('abort', () => {
            upnpError = context.signal.reason === SETTLED ? SETTLED : new AbortError('stopped')
            reject(upnpError)
          }, { once: true })
        })
      }
    }
    const registry: ProbeRegistry = (protocol) => probes[protocol] as ProtocolProbe
    const found = await raceProbes(location, resolveDiscoverOptions({ gateway: '127.0.0.1' }), registry)
    assert.equal(found.client, winner)
    // The late answer's close follows its probe's promise by a turn or two.
    for (let turns = 0; turns < 10 && !late.closed; turns++) await turn()
    assert.equal(upnpSignal?.aborted, true)
    assert.equal(upnpSignal?.reason, SETTLED)
    assert.equal(upnpError, SETTLED)
    assert.equal(late.closed, true, 'the late NAT-PMP answer is closed')
    assert.equal(winner.closed, false, 'the winner is left open for the NAT')
  })

  it('with no winner, stops every probe at once and rejects with the caller\'s AbortError', async () => {
    const caller = new AbortController()
    const signals: AbortSignal[] = []
    const waitForever: ProtocolProbe = async (context) => await new Promise<GatewayClient>((_resolve, reject) => {
      signals.push(context.signal)
      context.signal.addEventListener('abort', () => { reject(context.signal.reason) }, { once: true })
    })
    const racing = raceProbes(location, resolveDiscoverOptions({ gateway: '127.0.0.1', signal: caller.signal }), () => waitForever)
    const reason = new Error('the caller gave up')
    caller.abort(reason)
    await assert.rejects(racing, (error) => error instanceof AbortError && error !== SETTLED && error.code === 'ERR_ABORTED' && error.cause === reason)
    assert.ok(signals.length > 0 && signals.every((signal) => signal.aborted), 'every probe stopped before the rejection is seen')
  })
})
