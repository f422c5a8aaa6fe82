import assert from 'node:assert/strict'
import net from 'node:net'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isIP, isIPv4, isIPv6, MAX_IP_TEXT_LENGTH } from '../../src/net/ip-address.js'

// natmapper validates addresses itself so that it need not load node:net at start-up; node's own
// validators are the oracle here.
const ipv6Like = fc.array(fc.oneof(
  fc.constantFrom(':', '::', '.', '%', 'eth0', '0', 'ffff', '1.2.3.4', '255.255.255.255', '256.1.1.1', '01.2.3.4'),
  fc.stringMatching(/^[0-9a-fA-F]{1,5}$/)
), { maxLength: 12 }).map((parts) => parts.join(''))
const ipv4Like = fc.array(fc.oneof(fc.nat(300).map(String), fc.constantFrom('.', '00', '01', '-1', ' ')), { maxLength: 9 }).map((parts) => parts.join(''))

describe('address validation agrees with node:net', () => {
  it('on known forms', () => {
    for (const address of ['1.2.3.4', '0.0.0.0', '255.255.255.255', '::', '::1', 'fe80::1%eth0', '2001:db8::1', '::ffff:1.2.3.4', '1:2:3:4:5:6:7:8', '1::8']) {
      assert.equal(isIP(address), net.isIP(address), address)
    }
    for (const address of ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.0.0.1', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', 'fe80::1%', 'g::1', '1.2.3.4:80']) {
      assert.equal(isIP(address), net.isIP(address), address)
    }
  })

  it(`refuses text longer than ${MAX_IP_TEXT_LENGTH} characters, which node:net would take`, () => {
    const long = '::255.255.255.255%255.255.255.255255.255.255.255255.255.255.255a0'
    assert.equal(long.length, MAX_IP_TEXT_LENGTH + 1)
    assert.equal(net.isIPv6(long), true)
    assert.equal(isIPv6(long), false)
    assert.equal(isIPv6(long.slice(0, MAX_IP_TEXT_LENGTH)), net.isIPv6(long.slice(0, MAX_IP_TEXT_LENGTH)))
  })

  it('on 10 000 generated IPv6-like and IPv4-like strings each', () => {
    // Past MAX_IP_TEXT_LENGTH natmapper refuses by design (node:net has no bound).
    fc.assert(fc.property(ipv6Like, (text) => {
      assert.equal(isIPv6(text), text.length <= MAX_IP_TEXT_LENGTH && net.isIPv6(text), text)
    }), { numRuns: 10_000 })
    fc.assert(fc.property(ipv4Like, (text) => { assert.equal(isIPv4(text), net.isIPv4(text), text) }), { numRuns: 10_000 })
  })
})
