import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FAULT_KINDS, planEpisode } from '../../scripts/soak/schedule.js'

describe('soak fault schedule', () => {
  it('is a pure function of the seed: the same seed replays the same episodes', () => {
    for (let index = 0; index < 50; index++) assert.deepEqual(planEpisode(42, index, 6_000), planEpisode(42, index, 6_000))
    assert.notDeepEqual(Array.from({ length: 20 }, (_, i) => planEpisode(1, i, 6_000)), Array.from({ length: 20 }, (_, i) => planEpisode(2, i, 6_000)))
  })

  it('overlaps faults, never two that drive the same switch, and reaches every kind', () => {
    const seen = new Set<string>()
    let overlapping = 0
    for (let index = 0; index < 500; index++) {
      const { faults, quietMs } = planEpisode(7, index, 6_000)
      assert.ok(faults.length >= 1 && faults.length <= 3)
      assert.ok(quietMs >= 2_000 && quietMs < 5_000)
      const kinds = faults.map((fault) => fault.kind)
      assert.equal(new Set(kinds).size, kinds.length, 'one fault of a kind at a time')
      assert.ok(!(kinds.includes('silence-short') && kinds.includes('silence-long')))
      assert.ok(!(kinds.includes('gateway-switch') && kinds.includes('lan-address')))
      assert.ok(kinds.filter((kind) => ['restart-flush', 'port-conflict', 'protocol-switch'].includes(kind)).length <= 1)
      assert.equal(faults[0]?.startMs, 0)
      for (const fault of faults) {
        seen.add(fault.kind)
        if (fault.kind === 'silence-short') assert.ok(fault.holdMs < 6_000, 'shorter than a lease')
        if (fault.kind === 'silence-long') assert.ok(fault.holdMs > 6_000, 'longer than a lease')
      }
      if (faults.length > 1) overlapping++
    }
    assert.deepEqual([...seen].sort(), [...FAULT_KINDS].sort())
    assert.ok(overlapping > 100, `only ${overlapping} of 500 episodes overlap`)
  })
})
