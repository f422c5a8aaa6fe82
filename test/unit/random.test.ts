import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { monotonicMs } from '../../src/net/clock.js'
import { randomBytes, randomInt } from '../../src/net/random.js'

describe('randomness and the monotonic clock', () => {
  it('gives the bytes asked for, different each time (PCP nonces)', () => {
    const nonces = Array.from({ length: 200 }, () => randomBytes(12))
    for (const nonce of nonces) assert.equal(nonce.length, 12)
    assert.equal(new Set(nonces.map((nonce) => Buffer.from(nonce).toString('hex'))).size, nonces.length)
    // Every bit position is set somewhere and clear somewhere among 200 nonces (all zeros would pass the test above with a counter).
    for (let bit = 0; bit < 96; bit++) {
      const set = nonces.filter((nonce) => ((nonce[bit >> 3] ?? 0) >> (bit & 7)) & 1).length
      assert.ok(set > 40 && set < 160, `bit ${bit} set in ${set} of 200`)
    }
    assert.equal(randomBytes(0).length, 0)
  })

  it('draws integers in [min, max), every value of a small range', () => {
    const seen = new Set<number>()
    for (let i = 0; i < 2_000; i++) {
      const value = randomInt(1024, 1034)
      assert.ok(Number.isInteger(value) && value >= 1024 && value < 1034, String(value))
      seen.add(value)
    }
    assert.equal(seen.size, 10)
    const wide = randomInt(1024, 65_536)
    assert.ok(wide >= 1024 && wide < 65_536)
  })

  it('counts milliseconds forward', async () => {
    const before = monotonicMs()
    await new Promise((resolve) => setTimeout(resolve, 20))
    const elapsed = monotonicMs() - before
    assert.ok(elapsed >= 15 && elapsed < 60_000, String(elapsed))
  })
})
