import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { InvalidArgumentError } from '../../src/errors.js'
import { decodeIPv6Field } from '../../src/net/ip-address.js'
import {
  decodeRequest,
  decodeResponse,
  encodeAnnounceRequest,
  encodeMapRequest,
  encodeRequest,
  encodeResponse,
  PCP_OPTION,
  PCP_RESULT_CODES,
  pcpResultName
} from '../../src/pcp/codec.js'
import type { PcpAnnounceResponse, PcpMapRequest, PcpMapResponse, PcpOption } from '../../src/pcp/codec.js'
import { atOffset, decodesOrRejects, FUZZ_RUNS, hex, malformedAsserter, mutated, randomMessages } from '../helpers/fuzz.js'

const assertMalformed = malformedAsserter('pcp')

const NONCE = hex('01 02 03 04 05 06 07 08 09 0a 0b 0c')

// RFC 6887 §7.1 (request header), §7.2 (response header), §11.1 (MAP), one field per line.
const ANNOUNCE_REQUEST = hex(`
  02                                    // version 2
  00                                    // R=0 (request), opcode 0: ANNOUNCE
  0000                                  // reserved
  00000000                              // requested lifetime 0 (RFC 6887 §14.1)
  00000000 00000000 0000ffff c0a8010a   // client IP address ::ffff:192.168.1.10
`)
const MAP_REQUEST = hex(`
  02                                    // version 2
  01                                    // R=0, opcode 1: MAP
  0000                                  // reserved
  00001c20                              // requested lifetime 7200 s
  00000000 00000000 0000ffff c0a8010a   // client IP address ::ffff:192.168.1.10
  0102030405060708090a0b0c              // mapping nonce (96 bits)
  11                                    // protocol 17: UDP
  000000                                // reserved
  1388                                  // internal port 5000
  1389                                  // suggested external port 5001
  00000000 00000000 0000ffff 00000000   // suggested external address ::ffff:0.0.0.0: no preference
`)
const MAP_RESPONSE = hex(`
  02                                    // version 2
  81                                    // R=1 (response), opcode 1: MAP
  00                                    // reserved
  00                                    // result code 0: SUCCESS
  00000e10                              // lifetime 3600 s
  0000002a                              // epoch time 42 s
  00000000 00000000 00000000            // reserved (96 bits)
  0102030405060708090a0b0c              // mapping nonce
  11                                    // protocol 17: UDP
  000000                                // reserved
  1388                                  // internal port 5000
  c351                                  // assigned external port 50001
  00000000 00000000 0000ffff 0b4d0001   // assigned external IP address 11.77.0.1
`)
const ANNOUNCE_RESPONSE = hex(`
  02 80 00 00                           // version 2, R=1 opcode 0: ANNOUNCE, reserved, SUCCESS
  00000000                              // lifetime 0
  00000539                              // epoch time 1337 s
  00000000 00000000 00000000            // reserved
`)

const MAP_RESPONSE_DECODED: PcpMapResponse = {
  kind: 'response',
  version: 2,
  opcode: 'map',
  resultCode: 0,
  lifetimeSeconds: 3600,
  epochSeconds: 42,
  map: { nonce: NONCE, protocol: 'udp', internalPort: 5000, externalPort: 50001, externalAddress: '11.77.0.1' },
  options: []
}

describe('PCP requests (RFC 6887 §7.1, §11.1, §14.1)', () => {
  it('encodes ANNOUNCE as a 24-byte header with lifetime 0', () => {
    assert.deepEqual(encodeAnnounceRequest({ clientAddress: '192.168.1.10' }), ANNOUNCE_REQUEST)
  })

  it('encodes MAP, suggesting ::ffff:0.0.0.0 for an IPv4 client by default', () => {
    assert.deepEqual(encodeMapRequest({
      clientAddress: '192.168.1.10', lifetimeSeconds: 7200, nonce: NONCE, protocol: 'udp', internalPort: 5000, suggestedExternalPort: 5001
    }), MAP_REQUEST)
  })

  it('suggests :: for an IPv6 client by default (RFC 6887 §11.1), and TCP is protocol 6', () => {
    assert.deepEqual(encodeMapRequest({
      clientAddress: '2001:db8::10', lifetimeSeconds: 60, nonce: NONCE, protocol: 'tcp', internalPort: 22, suggestedExternalPort: 0
    }), hex(`
      02 01 0000 0000003c
      20010db8 00000000 00000000 00000010   // client IP address 2001:db8::10
      0102030405060708090a0b0c
      06 000000                             // protocol 6: TCP, reserved
      0016 0000                             // internal port 22, suggested external port 0: any
      00000000 00000000 00000000 00000000   // suggested external address ::
    `))
  })

  // Address fields are remembered between requests (a client names the same address each time):
  // every message still gets bytes of its own, right for its address, however many addresses pass.
  it('encodes the same address the same way among many others, into bytes of each message\'s own', () => {
    const map = (clientAddress: string): Uint8Array => encodeMapRequest({ clientAddress, lifetimeSeconds: 60, nonce: NONCE, protocol: 'udp', internalPort: 1, suggestedExternalPort: 1 })
    const first = map('192.168.1.10')
    first.fill(0xee)
    for (let i = 0; i < 100; i++) {
      const address = i % 2 === 0 ? '192.168.1.10' : `2001:db8::${i.toString(16)}`
      assert.equal(decodeRequest(map(address)).clientAddress, address)
    }
    assert.deepEqual(map('192.168.1.10').subarray(8, 24), hex('00000000 00000000 0000ffff c0a8010a'))
    assert.throws(() => map('not an address'), InvalidArgumentError)
  })

  it('carries a suggested external address, IPv4 as IPv4-mapped', () => {
    const bytes = encodeMapRequest({
      clientAddress: '192.168.1.10', lifetimeSeconds: 60, nonce: NONCE, protocol: 'udp', internalPort: 1, suggestedExternalPort: 1, suggestedExternalAddress: '11.77.0.1'
    })
    assert.deepEqual(bytes.subarray(44), hex('00000000 00000000 0000ffff 0b4d0001'))
  })

  it('appends options as code, reserved, length, data padded to 4 bytes (RFC 6887 §7.3)', () => {
    const options: PcpOption[] = [
      { code: PCP_OPTION.PREFER_FAILURE, data: new Uint8Array(0) },
      { code: PCP_OPTION.THIRD_PARTY, data: hex('00000000 00000000 0000ffff c0a80102') },
      { code: 0x80, data: hex('01 02 03 04 05') }
    ]
    const bytes = encodeMapRequest({
      clientAddress: '192.168.1.10', lifetimeSeconds: 7200, nonce: NONCE, protocol: 'udp', internalPort: 5000, suggestedExternalPort: 5001, options
    })
    assert.deepEqual(bytes, Uint8Array.from([...MAP_REQUEST, ...hex(`
      02 00 0000                            // PREFER_FAILURE, reserved, length 0
      01 00 0010                            // THIRD_PARTY, reserved, length 16
      00000000 00000000 0000ffff c0a80102   //   internal IP address ::ffff:192.168.1.2
      80 00 0005                            // option 128, reserved, length 5
      0102030405 000000                     //   5 bytes of data, 3 bytes of padding
    `)]))
    assert.deepEqual(decodeRequest(bytes).options, options)
  })

  it('rejects arguments that do not fit, naming the option', () => {
    const valid = { clientAddress: '192.168.1.10', lifetimeSeconds: 1, nonce: NONCE, protocol: 'udp', internalPort: 1, suggestedExternalPort: 1 } as const
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ nonce: new Uint8Array(11) }, /nonce must be 12 bytes/],
      [{ clientAddress: 'gateway.local' }, /clientAddress must be an IPv4 or IPv6 address/],
      [{ suggestedExternalAddress: '1.2.3' }, /suggestedExternalAddress/],
      [{ protocol: 'sctp' }, /protocol must be 'tcp' or 'udp'/],
      [{ internalPort: 70_000 }, /internalPort/],
      [{ lifetimeSeconds: -1 }, /lifetimeSeconds/],
      [{ options: Array.from({ length: 60 }, () => ({ code: 1, data: new Uint8Array(16) })) }, /more than PCP's 1100/]
    ]
    for (const [override, reason] of cases) {
      assert.throws(() => encodeMapRequest({ ...valid, ...override } as never), (error: unknown) =>
        error instanceof InvalidArgumentError && reason.test(error.message), String(reason))
    }
  })

  it('decodes requests on the server side', () => {
    assert.deepEqual(decodeRequest(ANNOUNCE_REQUEST), {
      version: 2, opcode: 'announce', lifetimeSeconds: 0, clientAddress: '192.168.1.10', options: []
    })
    const expected: PcpMapRequest = {
      version: 2,
      opcode: 'map',
      lifetimeSeconds: 7200,
      clientAddress: '192.168.1.10',
      map: { nonce: NONCE, protocol: 'udp', internalPort: 5000, suggestedExternalPort: 5001, suggestedExternalAddress: '0.0.0.0' },
      options: []
    }
    assert.deepEqual(decodeRequest(atOffset(MAP_REQUEST)), expected)
  })

  it('rejects requests that are not', () => {
    assertMalformed(() => decodeRequest(new Uint8Array(0)), /version.*runs past the end/)
    assertMalformed(() => decodeRequest(hex('00 00')), /version 0, expected 2/)
    assertMalformed(() => decodeRequest(MAP_RESPONSE), /R bit set.*a response, not a request/)
    assertMalformed(() => decodeRequest(ANNOUNCE_REQUEST.slice(0, 20)), /20-byte message is shorter than the 24-byte header/)
    assertMalformed(() => decodeRequest(MAP_REQUEST.slice(0, 58)), /not a multiple of 4/)
    assertMalformed(() => decodeRequest(MAP_REQUEST.slice(0, 56)), /MAP data is 32 bytes, needs 36/)
    assertMalformed(() => decodeRequest(Uint8Array.from([...ANNOUNCE_REQUEST.slice(0, 1), 0x05, ...ANNOUNCE_REQUEST.slice(2)])), /unknown opcode 5/)
    const peer = Uint8Array.from([...ANNOUNCE_REQUEST.slice(0, 1), 0x02, ...ANNOUNCE_REQUEST.slice(2), ...new Uint8Array(52)])
    assertMalformed(() => decodeRequest(peer), /PEER data \(56 bytes at offset 24\) runs past the end/)
  })
})

describe('PCP responses (RFC 6887 §7.2, §7.3, §11.2)', () => {
  it('decodes a MAP response, also from inside a larger buffer', () => {
    assert.deepEqual(decodeResponse(MAP_RESPONSE), MAP_RESPONSE_DECODED)
    assert.deepEqual(decodeResponse(atOffset(MAP_RESPONSE)), MAP_RESPONSE_DECODED)
  })

  it('decodes an ANNOUNCE response', () => {
    const expected: PcpAnnounceResponse = {
      kind: 'response', version: 2, opcode: 'announce', resultCode: 0, lifetimeSeconds: 0, epochSeconds: 1337, options: []
    }
    assert.deepEqual(decodeResponse(ANNOUNCE_RESPONSE), expected)
  })

  it('decodes options and skips their padding', () => {
    const bytes = Uint8Array.from([...MAP_RESPONSE, ...hex(`
      80 00 0001 ff 000000                  // option 128, length 1, 1 byte of data, 3 of padding
      02 00 0000                            // PREFER_FAILURE, length 0
    `)])
    assert.deepEqual(decodeResponse(bytes), {
      ...MAP_RESPONSE_DECODED,
      options: [{ code: 0x80, data: hex('ff') }, { code: PCP_OPTION.PREFER_FAILURE, data: new Uint8Array(0) }]
    })
  })

  it('recognises a PEER response without exposing its data', () => {
    const bytes = Uint8Array.from([...ANNOUNCE_RESPONSE.slice(0, 1), 0x82, ...ANNOUNCE_RESPONSE.slice(2), ...new Uint8Array(56)])
    const decoded = decodeResponse(bytes)
    assert.equal(decoded.kind === 'response' && decoded.opcode, 'peer')
    assertMalformed(() => decodeResponse(bytes.slice(0, 76)), /PEER data/)
  })

  it('decodes IPv6 addresses in RFC 5952 form and other protocol numbers as numbers', () => {
    const bytes = Uint8Array.from(MAP_RESPONSE)
    bytes[36] = 0 // protocol 0: all protocols
    bytes.set(hex('20010db8 00000000 00000000 0000abcd'), 44)
    const decoded = decodeResponse(bytes)
    assert.ok(decoded.kind === 'response' && decoded.opcode === 'map')
    assert.equal(decoded.map.protocol, 0)
    assert.equal(decoded.map.externalAddress, '2001:db8::abcd')
  })

  it('decodes an unknown result code and names it UNKNOWN_n', () => {
    const bytes = Uint8Array.from(MAP_RESPONSE)
    bytes[3] = 42
    const decoded = decodeResponse(bytes)
    assert.ok(decoded.kind === 'response')
    assert.equal(decoded.resultCode, 42)
    assert.equal(pcpResultName(decoded.resultCode), 'UNKNOWN_42')
  })

  it('names the RFC 6887 §7.4 result codes', () => {
    assert.deepEqual(Array.from({ length: 15 }, (_, code) => pcpResultName(code)), [
      'SUCCESS', 'UNSUPP_VERSION', 'NOT_AUTHORIZED', 'MALFORMED_REQUEST', 'UNSUPP_OPCODE', 'UNSUPP_OPTION',
      'MALFORMED_OPTION', 'NETWORK_FAILURE', 'NO_RESOURCES', 'UNSUPP_PROTOCOL', 'USER_EX_QUOTA',
      'CANNOT_PROVIDE_EXTERNAL', 'ADDRESS_MISMATCH', 'EXCESSIVE_REMOTE_PEERS', 'UNKNOWN_14'
    ])
  })
})

describe('PCP version negotiation (RFC 6887 §9)', () => {
  it('recognises a NAT-PMP-only server\'s UNSUPP_VERSION reply: the cue to fall back', () => {
    assert.deepEqual(decodeResponse(hex(`
      00          // version 0: NAT-PMP
      81          // opcode 128 + 1, echoing our MAP
      0001        // NAT-PMP result code 1 (16 bits): UNSUPP_VERSION
      0000012c    // epoch
    `)), { kind: 'version-mismatch', serverVersion: 0 })
    assert.deepEqual(decodeResponse(hex('00 80 0001')), { kind: 'version-mismatch', serverVersion: 0 })
  })

  it('recognises the opcode-0 form sent by servers that followed RFC 6886 before erratum 3618', () => {
    assert.deepEqual(decodeResponse(hex('00 00 0001 0000012c')), { kind: 'version-mismatch', serverVersion: 0 })
  })

  it('recognises other PCP versions\' UNSUPP_VERSION (8-bit result code in byte 3)', () => {
    assert.deepEqual(decodeResponse(hex('01 81 00 01 00000000')), { kind: 'version-mismatch', serverVersion: 1 })
    assert.deepEqual(decodeResponse(Uint8Array.from([3, ...ANNOUNCE_RESPONSE.slice(1, 3), 1, ...ANNOUNCE_RESPONSE.slice(4)])),
      { kind: 'version-mismatch', serverVersion: 3 })
  })

  it('rejects other-version messages that are not UNSUPP_VERSION replies', () => {
    assertMalformed(() => decodeResponse(hex('00 81 0000 0000012c 1388 c351 00000e10')), /version 0, expected 2, and not an UNSUPP_VERSION reply/)
    assertMalformed(() => decodeResponse(hex('00 81 0101')), /version 0/) // 16-bit result 257, not 1
    assertMalformed(() => decodeResponse(hex('00 01 0001')), /version 0/) // a request's opcode
    assertMalformed(() => decodeResponse(hex('01 01 00 01')), /version 1/) // R bit clear
    assertMalformed(() => decodeResponse(hex('03 80 00 00')), /version 3/)
  })
})

describe('PCP response validation', () => {
  it('rejects anything shorter than 4 bytes', () => {
    for (const length of [0, 1, 2, 3]) {
      assertMalformed(() => decodeResponse(MAP_RESPONSE.slice(0, length)), new RegExp(`${length}-byte message is too short`))
    }
  })

  it('rejects a request where a response belongs (R bit clear)', () => {
    assertMalformed(() => decodeResponse(MAP_REQUEST), /R bit clear in opcode byte 1: a request, not a response/)
  })

  it('rejects a size under 24 bytes, not a multiple of 4, or over 1100 (RFC 6887 §7)', () => {
    assertMalformed(() => decodeResponse(ANNOUNCE_RESPONSE.slice(0, 20)), /20-byte message is shorter than the 24-byte header/)
    assertMalformed(() => decodeResponse(Uint8Array.from([...ANNOUNCE_RESPONSE, 0, 0])), /26-byte message is not a multiple of 4/)
    const oversized = new Uint8Array(1104)
    oversized.set(ANNOUNCE_RESPONSE)
    assertMalformed(() => decodeResponse(oversized), /1104-byte message is longer than 1100/)
  })

  it('accepts exactly 1100 bytes', () => {
    const largest = new Uint8Array(1100)
    largest.set(ANNOUNCE_RESPONSE)
    // The rest is options: code 0, length 1072, then zeros.
    largest.set(hex('00 00 0430'), 24)
    const decoded = decodeResponse(largest)
    assert.ok(decoded.kind === 'response')
    assert.equal(decoded.options[0]?.data.length, 1072)
  })

  it('rejects an unknown opcode', () => {
    assertMalformed(() => decodeResponse(Uint8Array.from([2, 0x85, ...ANNOUNCE_RESPONSE.slice(2)])), /unknown opcode 5/)
  })

  it('rejects MAP data shorter than 36 bytes', () => {
    assertMalformed(() => decodeResponse(MAP_RESPONSE.slice(0, 56)), /MAP data is 32 bytes, needs 36/)
    assertMalformed(() => decodeResponse(MAP_RESPONSE.slice(0, 24)), /MAP data is 0 bytes/)
  })

  it('rejects options whose length runs past the end, with or without padding', () => {
    assertMalformed(() => decodeResponse(Uint8Array.from([...ANNOUNCE_RESPONSE, ...hex('80 00 0008 01020304')])),
      /option 128 at offset 24 has 8 bytes of data \(8 padded\) but 4 bytes remain/)
    assertMalformed(() => decodeResponse(Uint8Array.from([...ANNOUNCE_RESPONSE, ...hex('80 00 0005 01020304')])),
      /option 128 at offset 24 has 5 bytes of data \(8 padded\) but 4 bytes remain/)
    assertMalformed(() => decodeResponse(Uint8Array.from([...MAP_RESPONSE, ...hex('01 00 0010 00000000')])),
      /option 1 at offset 60 has 16 bytes/)
  })
})

describe('PCP server side encoders', () => {
  it('re-encodes decoded vectors to the same bytes', () => {
    for (const vector of [MAP_RESPONSE, ANNOUNCE_RESPONSE]) {
      const decoded = decodeResponse(vector)
      assert.ok(decoded.kind === 'response' && decoded.opcode !== 'peer')
      assert.deepEqual(encodeResponse(decoded), vector)
    }
    for (const vector of [MAP_REQUEST, ANNOUNCE_REQUEST]) {
      const decoded = decodeRequest(vector)
      assert.ok(decoded.opcode !== 'peer')
      assert.deepEqual(encodeRequest(decoded), vector)
    }
  })

  it('refuses a result code that does not fit in 8 bits', () => {
    assert.throws(() => encodeResponse({ opcode: 'announce', resultCode: 256, lifetimeSeconds: 0, epochSeconds: 0 }), InvalidArgumentError)
  })

  it('has the result code numbers of RFC 6887 §7.4', () => {
    assert.equal(PCP_RESULT_CODES.ADDRESS_MISMATCH, 12)
    assert.equal(PCP_RESULT_CODES.EXCESSIVE_REMOTE_PEERS, 13)
  })
})

/** Ordinary prototypes, so that deepEqual compares generated and decoded objects. */
const plainObjects = { noNullPrototype: true } as const
const port = fc.integer({ min: 0, max: 65_535 })
const uint32 = fc.integer({ min: 0, max: 2 ** 32 - 1 })
/** Addresses in the form the decoder produces: dotted quads, canonical IPv6. */
const address = fc.oneof(fc.ipV4(), fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => decodeIPv6Field(bytes)))
const protocol = fc.oneof(
  fc.constantFrom('tcp' as const, 'udp' as const),
  fc.integer({ min: 0, max: 255 }).filter((number) => number !== 6 && number !== 17)
)
const nonce = fc.uint8Array({ minLength: 12, maxLength: 12 })
const options = fc.array(fc.record({ code: fc.integer({ min: 0, max: 255 }), data: fc.uint8Array({ maxLength: 24 }) }, plainObjects), { maxLength: 4 })

const validRequest = fc.oneof(
  fc.record({ version: fc.constant(2 as const), opcode: fc.constant('announce' as const), lifetimeSeconds: uint32, clientAddress: address, options }, plainObjects),
  fc.record({
    version: fc.constant(2 as const),
    opcode: fc.constant('map' as const),
    lifetimeSeconds: uint32,
    clientAddress: address,
    map: fc.record({ nonce, protocol, internalPort: port, suggestedExternalPort: port, suggestedExternalAddress: address }, plainObjects),
    options
  }, plainObjects)
)

const validResponse = fc.oneof(
  fc.record({
    kind: fc.constant('response' as const),
    version: fc.constant(2 as const),
    opcode: fc.constant('announce' as const),
    resultCode: fc.integer({ min: 0, max: 255 }),
    lifetimeSeconds: uint32,
    epochSeconds: uint32,
    options
  }, plainObjects),
  fc.record({
    kind: fc.constant('response' as const),
    version: fc.constant(2 as const),
    opcode: fc.constant('map' as const),
    resultCode: fc.integer({ min: 0, max: 255 }),
    lifetimeSeconds: uint32,
    epochSeconds: uint32,
    map: fc.record({ nonce, protocol, internalPort: port, externalPort: port, externalAddress: address }, plainObjects),
    options
  }, plainObjects)
)

/** Valid UNSUPP_VERSION replies from servers of other versions, for mutation. */
const versionMismatchReply = fc.oneof(
  fc.constantFrom(hex('00 80 0001 00000000'), hex('00 81 0001'), hex('00 00 0001 00000001'), hex('01 81 00 01')),
  uint32.map((epoch) => Uint8Array.from([0, 0x81, 0, 1, epoch >>> 24, (epoch >>> 16) & 0xff, (epoch >>> 8) & 0xff, epoch & 0xff]))
)

const plausibleStarts = [[2, 0x80], [2, 0x81], [2, 0x82], [2, 0], [2, 1], [2, 2], [0, 0x81], [1, 0x81]] as const

describe('PCP codec properties', () => {
  it('requests round-trip: encode, decode, re-encode', () => {
    fc.assert(fc.property(validRequest, (request) => {
      const bytes = encodeRequest(request)
      const decoded = decodeRequest(atOffset(bytes))
      assert.deepEqual(decoded, request) // also narrows decoded to ANNOUNCE | MAP
      assert.deepEqual(encodeRequest(decoded), bytes)
    }), { numRuns: 2_000 })
  })

  it('responses round-trip: encode, decode, re-encode', () => {
    fc.assert(fc.property(validResponse, (response) => {
      const bytes = encodeResponse(response)
      const decoded = decodeResponse(atOffset(bytes))
      assert.deepEqual(decoded, response) // also narrows decoded to ANNOUNCE | MAP
      assert.deepEqual(encodeResponse(decoded), bytes)
    }), { numRuns: 2_000 })
  })

  it('decodeResponse on random bytes: a value or MalformedMessageError', { timeout: 20_000 }, () => {
    fc.assert(fc.property(randomMessages(plausibleStarts), decodesOrRejects(decodeResponse)), { numRuns: FUZZ_RUNS })
  })

  it('decodeResponse on mutated valid replies: a value or MalformedMessageError', { timeout: 20_000 }, () => {
    const valid = fc.oneof(validResponse.map(encodeResponse), versionMismatchReply)
    fc.assert(fc.property(mutated(valid), decodesOrRejects(decodeResponse)), { numRuns: FUZZ_RUNS })
  })

  it('decodeRequest on random bytes: a value or MalformedMessageError', { timeout: 20_000 }, () => {
    fc.assert(fc.property(randomMessages(plausibleStarts), decodesOrRejects(decodeRequest)), { numRuns: FUZZ_RUNS })
  })

  it('decodeRequest on mutated valid requests: a value or MalformedMessageError', { timeout: 20_000 }, () => {
    fc.assert(fc.property(mutated(validRequest.map(encodeRequest)), decodesOrRejects(decodeRequest)), { numRuns: FUZZ_RUNS })
  })
})
