import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { EpochTracker } from '../../src/net/epoch.js'

describe('epoch tracking (RFC 6887 §8.5, RFC 6886 §3.6)', () => {
  it('accepts an epoch that advances with our clock', () => {
    const epoch = new EpochTracker()
    assert.equal(epoch.observe(1000, 0), false)
    assert.equal(epoch.observe(1020, 20_000), false)
    assert.equal(epoch.observe(1021, 20_500), false, 'rounding to whole seconds is tolerated')
    assert.equal(epoch.epochSeconds, 1021)
  })

  it('flags an epoch that went backwards (a reboot)', () => {
    const epoch = new EpochTracker()
    epoch.observe(5000, 0)
    assert.equal(epoch.observe(3, 10_000), true)
  })

  it('flags an epoch that advanced far less than our clock (a restart between two replies)', () => {
    const epoch = new EpochTracker()
    epoch.observe(100, 0)
    assert.equal(epoch.observe(105, 60_000), true)
  })

  it('compares an announced epoch without recording it: a spoofed 0 leaves the next real reply continuous', () => {
    const epoch = new EpochTracker()
    assert.equal(epoch.continues(0, 0), true, 'nothing to compare with yet')
    epoch.observe(5000, 0)
    assert.equal(epoch.continues(0, 1_000), false)
    assert.equal(epoch.continues(5001, 1_000), true)
    assert.equal(epoch.epochSeconds, 5000)
    assert.equal(epoch.observe(5002, 2_000), false)
  })

  it('flags an epoch that jumped far ahead of our clock', () => {
    const epoch = new EpochTracker()
    epoch.observe(100, 0)
    assert.equal(epoch.observe(10_000, 1_000), true)
  })

  it('tolerates one second backwards', () => {
    const epoch = new EpochTracker()
    epoch.observe(100, 0)
    assert.equal(epoch.observe(99, 100), false)
  })
})
