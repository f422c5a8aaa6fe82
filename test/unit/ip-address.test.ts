import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { InvalidArgumentError } from '../../src/errors.js'
import {
  addressScope,
  decodeIPv4,
  decodeIPv6Field,
  encodeIPv4,
  encodeIPv6Field,
  isIPv4Mapped,
  isPubliclyRoutable,
  sameAddress
} from '../../src/net/ip-address.js'
import { hex } from '../helpers/fuzz.js'

describe('encodeIPv4 / decodeIPv4', () => {
  it('round-trips a dotted quad through its 4 bytes', () => {
    assert.deepEqual(encodeIPv4('192.168.1.254'), Uint8Array.of(192, 168, 1, 254))
    assert.equal(decodeIPv4(Uint8Array.of(192, 168, 1, 254)), '192.168.1.254')
  })

  it('decodes at an offset', () => {
    assert.equal(decodeIPv4(Uint8Array.of(9, 9, 10, 0, 0, 1, 9), 2), '10.0.0.1')
  })

  it('refuses reads past the end and bad offsets', () => {
    assert.throws(() => decodeIPv4(Uint8Array.of(1, 2, 3)), InvalidArgumentError)
    assert.throws(() => decodeIPv4(Uint8Array.of(1, 2, 3, 4), 1), InvalidArgumentError)
    assert.throws(() => decodeIPv4(Uint8Array.of(1, 2, 3, 4), -1), InvalidArgumentError)
    assert.throws(() => decodeIPv4(Uint8Array.of(1, 2, 3, 4), 0.5), InvalidArgumentError)
  })

  it('refuses what is not an IPv4 address', () => {
    for (const bad of ['', '1.2.3', '256.1.1.1', '01.2.3.4', '::1', '1.2.3.4 ', 'example.com']) {
      assert.throws(() => encodeIPv4(bad), InvalidArgumentError, bad)
    }
  })
})

describe('encodeIPv6Field', () => {
  it('carries IPv4 as IPv4-mapped ::ffff:a.b.c.d (RFC 6887 §5)', () => {
    assert.deepEqual(encodeIPv6Field('192.0.2.1'), hex('0000 0000 0000 0000 0000 ffff c000 0201'))
    assert.deepEqual(encodeIPv6Field('0.0.0.0'), hex('0000 0000 0000 0000 0000 ffff 0000 0000'))
  })

  it('parses every RFC 4291 §2.2 text form', () => {
    const vectors: Array<[string, string]> = [
      ['::', '0000 0000 0000 0000 0000 0000 0000 0000'],
      ['::1', '0000 0000 0000 0000 0000 0000 0000 0001'],
      ['2001:DB8::8:800:200C:417A', '2001 0db8 0000 0000 0008 0800 200c 417a'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001 0db8 0000 0000 0000 0000 0000 0001'],
      ['1:2:3:4:5:6:7::', '0001 0002 0003 0004 0005 0006 0007 0000'],
      ['::2:3:4:5:6:7:8', '0000 0002 0003 0004 0005 0006 0007 0008'],
      ['ff02::1:ff00:1', 'ff02 0000 0000 0000 0000 0001 ff00 0001'],
      ['::ffff:10.0.0.1', '0000 0000 0000 0000 0000 ffff 0a00 0001'],
      ['::FFFF:10.0.0.1', '0000 0000 0000 0000 0000 ffff 0a00 0001'],
      ['64:ff9b::192.0.2.33', '0064 ff9b 0000 0000 0000 0000 c000 0221'],
      ['1:2:3:4:5:6:1.2.3.4', '0001 0002 0003 0004 0005 0006 0102 0304']
    ]
    for (const [text, bytes] of vectors) {
      assert.deepEqual(encodeIPv6Field(text), hex(bytes), text)
    }
  })

  it('drops the zone of a scoped address: it names our interface, not part of the address', () => {
    assert.deepEqual(encodeIPv6Field('fe80::1%eth0'), encodeIPv6Field('fe80::1'))
  })

  it('refuses what is not an IP address', () => {
    for (const bad of ['', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '[::1]', 'fe80::1%', ':::', 'g::1', '1.2.3', '::01.2.3.4']) {
      assert.throws(() => encodeIPv6Field(bad), InvalidArgumentError, bad)
    }
  })
})

describe('decodeIPv6Field', () => {
  it('gives RFC 5952 §4 canonical text', () => {
    const vectors: Array<[string, string]> = [
      ['2001 0db8 0000 0000 0000 0000 0002 0001', '2001:db8::2:1'], // §4.1 leading zeros dropped, §4.2.1 longest run
      ['2001 0db8 0000 0001 0001 0001 0001 0001', '2001:db8:0:1:1:1:1:1'], // §4.2.2 a lone 0 is not compressed
      ['2001 0000 0000 0001 0000 0000 0000 0001', '2001:0:0:1::1'], // §4.2.3 the longest run wins
      ['2001 0db8 0000 0000 0001 0000 0000 0001', '2001:db8::1:0:0:1'], // §4.2.3 first of equal runs
      ['2001 0DB8 0000 0000 0000 0000 AAAA 0001', '2001:db8::aaaa:1'], // §4.3 lowercase
      ['0000 0000 0000 0000 0000 0000 0000 0000', '::'],
      ['0000 0000 0000 0000 0000 0000 0000 0001', '::1'],
      ['0001 0000 0000 0000 0000 0000 0000 0000', '1::'],
      ['fe80 0000 0000 0000 0000 0000 0000 0001', 'fe80::1'],
      ['0000 0000 0000 0000 0000 0000 0102 0304', '::102:304'] // IPv4-compatible is deprecated: plain hex
    ]
    for (const [bytes, text] of vectors) {
      assert.equal(decodeIPv6Field(hex(bytes)), text, bytes)
    }
  })

  it('gives an IPv4-mapped field as a dotted quad', () => {
    assert.equal(decodeIPv6Field(hex('0000 0000 0000 0000 0000 ffff 0b4d 0001')), '11.77.0.1')
  })

  it('decodes at an offset and refuses reads past the end', () => {
    const bytes = new Uint8Array(20)
    bytes.set(encodeIPv6Field('2001:db8::7'), 4)
    assert.equal(decodeIPv6Field(bytes, 4), '2001:db8::7')
    assert.throws(() => decodeIPv6Field(bytes, 5), InvalidArgumentError)
    assert.throws(() => decodeIPv6Field(new Uint8Array(15)), InvalidArgumentError)
  })

  it('property: decode agrees with the WHATWG URL serializer and re-encodes to the same bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.boolean(), (bytes, zeroRuns) => {
      if (zeroRuns) {
        bytes.fill(0, 4, 10) // make compression likely
      }
      const text = decodeIPv6Field(bytes)
      assert.deepEqual(encodeIPv6Field(text), bytes)
      if (!isIPv4Mapped(text) && !text.includes('.')) {
        // WHATWG serializes IPv6 the RFC 5952 way (it writes IPv4-mapped addresses in hex, hence the skip).
        assert.equal(text, new URL(`http://[${text}]/`).hostname.slice(1, -1))
      }
    }), { numRuns: 2_000 })
  })
})

describe('isIPv4Mapped and sameAddress', () => {
  it('recognises ::ffff:0:0/96 only', () => {
    assert.equal(isIPv4Mapped('::ffff:192.0.2.1'), true)
    assert.equal(isIPv4Mapped('::ffff:c000:201'), true)
    assert.equal(isIPv4Mapped('192.0.2.1'), false)
    assert.equal(isIPv4Mapped('::192.0.2.1'), false)
    assert.equal(isIPv4Mapped('64:ff9b::192.0.2.1'), false)
    assert.throws(() => isIPv4Mapped('nope'), InvalidArgumentError)
  })

  it('compares addresses, not spellings', () => {
    assert.equal(sameAddress('10.0.0.1', '::ffff:10.0.0.1'), true)
    assert.equal(sameAddress('2001:DB8::1', '2001:db8:0:0:0:0:0:1'), true)
    assert.equal(sameAddress('10.0.0.1', '10.0.0.2'), false)
  })
})

describe('addressScope', () => {
  const vectors: Array<[string, string]> = [
    ['8.8.8.8', 'public'],
    ['11.77.0.1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'reserved'],
    ['10.20.30.40', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.0.1', 'private'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.255', 'shared'],
    ['100.128.0.1', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.1.1', 'link-local'],
    ['192.0.0.1', 'reserved'],
    ['192.0.0.9', 'public'], // PCP anycast (RFC 7723)
    ['192.0.2.1', 'documentation'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.200', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.20.0.1', 'public'],
    ['192.88.99.1', 'reserved'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:192.168.1.1', 'private'], // mapped: the IPv4 address's scope
    ['::ffff:8.8.4.4', 'public'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::2', 'reserved'],
    ['64:ff9b::192.0.2.1', 'public'],
    ['64:ff9b:1::1', 'private'],
    ['100::1', 'reserved'],
    ['2001:4860:4860::8888', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['2001::1', 'reserved'], // Teredo, inside the IETF protocol assignments
    ['2001:1::1', 'public'], // PCP anycast (RFC 7723)
    ['2001:2::1', 'benchmarking'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['fe80::1%lo', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'reserved'],
    ['ff02::1', 'multicast'],
    ['4000::1', 'reserved'] // outside 2000::/3: unallocated
  ]

  for (const [address, scope] of vectors) {
    it(`${address} is ${scope}`, () => {
      assert.equal(addressScope(address), scope)
      assert.equal(isPubliclyRoutable(address), scope === 'public')
    })
  }

  it('refuses what is not an IP address', () => {
    assert.throws(() => addressScope('localhost'), InvalidArgumentError)
    assert.throws(() => isPubliclyRoutable(''), InvalidArgumentError)
  })

  it('property: an IPv4 address and its IPv4-mapped form have the same scope', () => {
    fc.assert(fc.property(fc.ipV4(), (address) => {
      assert.equal(addressScope(`::ffff:${address}`), addressScope(address))
    }), { numRuns: 1_000 })
  })
})
