import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { describe, it } from 'node:test'
import { RequestLimiter } from '../../src/core/limiter.js'

/** A task that runs until `release()`. */
function heldTask (): { task: () => Promise<string>, release: () => void } {
  let release = (): void => {}
  const done = new Promise<void>((resolve) => { release = resolve })
  return { task: async () => { await done; return 'held' }, release }
}

describe('request limiter', () => {
  it('ends the waiters of an aborted signal at once, and their turn goes to the others', async () => {
    const limiter = new RequestLimiter(1)
    const busy = heldTask()
    const running = limiter.run(busy.task)
    const closing = new AbortController()
    const other = new AbortController()
    const order: string[] = []
    const first = limiter.run(async () => { order.push('first'); return 1 }, closing.signal, 'urgent')
    const second = limiter.run(async () => { order.push('second'); return 2 }, closing.signal)
    const third = limiter.run(async () => { order.push('third'); return 3 }, other.signal)
    closing.abort(new Error('mapping closed'))
    await assert.rejects(first, /mapping closed/)
    await assert.rejects(second, /mapping closed/)
    busy.release()
    assert.equal(await running, 'held')
    assert.equal(await third, 3)
    assert.deepEqual(order, ['third'])
    assert.equal(limiter.active, 0)
    assert.equal(getEventListeners(closing.signal, 'abort').length, 0)
  })

  it('keeps one listener for a signal that waits again and again', async () => {
    const limiter = new RequestLimiter(1)
    const mappingLife = new AbortController()
    for (let renewal = 0; renewal < 20; renewal++) {
      const busy = heldTask()
      const running = limiter.run(busy.task)
      const waiting = limiter.run(async () => renewal, mappingLife.signal, 'urgent')
      busy.release()
      await running
      assert.equal(await waiting, renewal)
      assert.ok(getEventListeners(mappingLife.signal, 'abort').length <= 1, `after renewal ${renewal}`)
    }
    assert.equal(limiter.active, 0)
    // The kept listener ends a later wait.
    const busy = heldTask()
    const running = limiter.run(busy.task)
    const waiting = limiter.run(async () => 'never', mappingLife.signal)
    mappingLife.abort(new Error('closed'))
    await assert.rejects(waiting, /closed/)
    busy.release()
    await running
    assert.equal(limiter.active, 0)
  })
})
