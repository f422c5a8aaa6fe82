import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CACHE_TIME, InvalidArgumentError, MAPPING_DURATION } from '../../src/index.js'
import { resolveDiscoverOptions, resolveMappingOptions } from '../../src/options.js'

const invalid = (pattern: RegExp) => (error: unknown): boolean =>
  error instanceof InvalidArgumentError && error.code === 'ERR_INVALID_ARGUMENT' && pattern.test(error.message)

describe('options', () => {
  it('has the documented defaults', () => {
    const options = resolveDiscoverOptions()
    assert.equal(MAPPING_DURATION, 60_000)
    assert.equal(CACHE_TIME, 15_000)
    assert.equal(options.mappingDuration, MAPPING_DURATION)
    assert.equal(options.cacheTime, CACHE_TIME)
    assert.deepEqual(options.protocols, ['pcp', 'nat-pmp', 'upnp'])
    assert.equal(options.gateway, undefined)
  })

  it('names the bad option', () => {
    assert.throws(() => resolveDiscoverOptions({ timeout: -1 }), invalid(/options\.timeout/))
    assert.throws(() => resolveDiscoverOptions({ timeout: Number.NaN }), invalid(/options\.timeout/))
    assert.throws(() => resolveDiscoverOptions({ gateway: 'router.local' }), invalid(/options\.gateway/))
    assert.throws(() => resolveDiscoverOptions({ protocols: [] }), invalid(/options\.protocols/))
    assert.throws(() => resolveDiscoverOptions({ protocols: ['smtp' as 'pcp'] }), invalid(/unknown protocol "smtp"/))
    assert.throws(() => resolveDiscoverOptions({ mappingDuration: 500 }), invalid(/options\.mappingDuration/))
    assert.throws(() => resolveDiscoverOptions({ signal: {} as AbortSignal }), invalid(/options\.signal/))
    assert.throws(() => resolveDiscoverOptions({ maxConcurrentRequests: 0 }), invalid(/maxConcurrentRequests/))
  })

  it('validates mapping arguments', () => {
    assert.deepEqual(resolveMappingOptions('tcp', 8080), {
      protocol: 'tcp', internalPort: 8080, externalPort: 8080, description: 'natmapper', signal: undefined, timeout: undefined
    })
    assert.throws(() => resolveMappingOptions('sctp', 8080), invalid(/protocol/))
    assert.throws(() => resolveMappingOptions('udp', 0), invalid(/internalPort/))
    assert.throws(() => resolveMappingOptions('udp', 65_536), invalid(/internalPort/))
    assert.throws(() => resolveMappingOptions('udp', 80.5), invalid(/internalPort/))
    assert.throws(() => resolveMappingOptions('udp', '80'), invalid(/internalPort/))
    assert.throws(() => resolveMappingOptions('udp', 80, { externalPort: 70_000 }), invalid(/externalPort/))
    assert.throws(() => resolveMappingOptions('udp', 80, { description: 'a\nb' }), invalid(/description/))
  })
})
