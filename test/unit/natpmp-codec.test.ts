import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { InvalidArgumentError } from '../../src/errors.js'
import {
  decodeRequest,
  decodeResponse,
  encodeExternalAddressRequest,
  encodeMapRequest,
  encodeRequest,
  encodeResponse,
  encodeUnsupportedVersionResponse,
  NATPMP_RESULT_CODES,
  natPmpResultName
} from '../../src/natpmp/codec.js'
import type { NatPmpRequest, NatPmpResponse } from '../../src/natpmp/codec.js'
import { atOffset, decodesOrRejects, FUZZ_RUNS, hex, malformedAsserter, mutated, randomMessages } from '../helpers/fuzz.js'

const assertMalformed = malformedAsserter('nat-pmp')

// RFC 6886 §3.2 and §3.3 packet figures, one field per line.
const EXTERNAL_ADDRESS_REQUEST = hex(`
  00          // version 0
  00          // opcode 0: external address
`)
const EXTERNAL_ADDRESS_RESPONSE = hex(`
  00          // version 0
  80          // opcode 128 + 0
  0000        // result code 0: SUCCESS
  00001c20    // seconds since start of epoch: 7200
  0b4d0001    // external IPv4 address: 11.77.0.1
`)
const MAP_UDP_REQUEST = hex(`
  00          // version 0
  01          // opcode 1: map UDP
  0000        // reserved
  1388        // internal port 5000
  1389        // suggested external port 5001
  00001c20    // requested lifetime 7200 s
`)
const MAP_UDP_RESPONSE = hex(`
  00          // version 0
  81          // opcode 128 + 1
  0000        // result code 0: SUCCESS
  0000002a    // seconds since start of epoch: 42
  1388        // internal port 5000
  c351        // mapped external port 50001
  00000e10    // lifetime 3600 s
`)

describe('NAT-PMP requests (RFC 6886 §3.2, §3.3)', () => {
  it('encodes the external address request', () => {
    assert.deepEqual(encodeExternalAddressRequest(), EXTERNAL_ADDRESS_REQUEST)
  })

  it('encodes a UDP map request', () => {
    assert.deepEqual(encodeMapRequest({ protocol: 'udp', internalPort: 5000, suggestedExternalPort: 5001, lifetimeSeconds: 7200 }), MAP_UDP_REQUEST)
  })

  it('encodes a TCP map request with opcode 2', () => {
    assert.deepEqual(encodeMapRequest({ protocol: 'tcp', internalPort: 80, suggestedExternalPort: 0, lifetimeSeconds: 60 }), hex(`
      00 02 0000   // version, opcode 2: map TCP, reserved
      0050         // internal port 80
      0000         // suggested external port 0: any
      0000003c     // requested lifetime 60 s
    `))
  })

  it('encodes a delete as lifetime 0 and suggested external port 0 (RFC 6886 §3.4)', () => {
    assert.deepEqual(encodeMapRequest({ protocol: 'udp', internalPort: 5000, suggestedExternalPort: 50001, lifetimeSeconds: 0 }), hex(`
      00 01 0000 1388
      0000         // suggested external port forced to 0
      00000000     // lifetime 0: delete
    `))
  })

  it('rejects arguments that do not fit their fields, naming the option', () => {
    const valid = { protocol: 'udp', internalPort: 1, suggestedExternalPort: 1, lifetimeSeconds: 1 } as const
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ internalPort: 65_536 }, /internalPort/],
      [{ internalPort: -1 }, /internalPort/],
      [{ internalPort: 1.5 }, /internalPort/],
      [{ suggestedExternalPort: Number.NaN }, /suggestedExternalPort/],
      [{ lifetimeSeconds: 2 ** 32 }, /lifetimeSeconds/],
      [{ protocol: 'sctp' }, /protocol/]
    ]
    for (const [override, name] of cases) {
      assert.throws(() => encodeMapRequest({ ...valid, ...override } as never), (error: unknown) =>
        error instanceof InvalidArgumentError && name.test(error.message))
    }
  })

  it('decodes requests on the server side', () => {
    assert.deepEqual(decodeRequest(EXTERNAL_ADDRESS_REQUEST), { opcode: 'external-address' })
    assert.deepEqual(decodeRequest(atOffset(MAP_UDP_REQUEST)), {
      opcode: 'map', protocol: 'udp', internalPort: 5000, suggestedExternalPort: 5001, lifetimeSeconds: 7200
    })
  })

  it('rejects requests that are not', () => {
    assertMalformed(() => decodeRequest(new Uint8Array(0)), /version.*runs past the end/)
    assertMalformed(() => decodeRequest(hex('00')), /opcode.*runs past the end/)
    assertMalformed(() => decodeRequest(hex('02 01')), /version 2, expected 0/)
    assertMalformed(() => decodeRequest(MAP_UDP_RESPONSE), /opcode 129 is a response's/)
    assertMalformed(() => decodeRequest(hex('00 03')), /unknown opcode 3/)
    assertMalformed(() => decodeRequest(MAP_UDP_REQUEST.slice(0, 11)), /11-byte map request is shorter than 12/)
    assertMalformed(() => decodeRequest(new Uint8Array(1101)), /longer than 1100/)
  })
})

describe('NAT-PMP responses (RFC 6886 §3.2, §3.3, §3.5)', () => {
  it('decodes the external address response', () => {
    assert.deepEqual(decodeResponse(EXTERNAL_ADDRESS_RESPONSE), {
      opcode: 'external-address', truncated: false, resultCode: 0, epochSeconds: 7200, externalAddress: '11.77.0.1'
    })
  })

  it('decodes a map response, also from inside a larger buffer', () => {
    const expected = {
      opcode: 'map', truncated: false, protocol: 'udp', resultCode: 0, epochSeconds: 42, internalPort: 5000, externalPort: 50001, lifetimeSeconds: 3600
    }
    assert.deepEqual(decodeResponse(MAP_UDP_RESPONSE), expected)
    assert.deepEqual(decodeResponse(atOffset(MAP_UDP_RESPONSE)), expected)
  })

  it('leaves the external address out of an error response (RFC 6886 §3.2: the field is undefined)', () => {
    assert.deepEqual(decodeResponse(hex('00 80 0003 00000005 00000000')), {
      opcode: 'external-address', truncated: false, resultCode: NATPMP_RESULT_CODES.NETWORK_FAILURE, epochSeconds: 5
    })
  })

  it('decodes a full-size map error response', () => {
    assert.deepEqual(decodeResponse(hex('00 82 0002 00000005 0050 0000 00000000')), {
      opcode: 'map', truncated: false, protocol: 'tcp', resultCode: 2, epochSeconds: 5, internalPort: 80, externalPort: 0, lifetimeSeconds: 0
    })
  })

  it('accepts the truncated error replies routers send: 4 bytes, or 8 with the epoch', () => {
    assert.deepEqual(decodeResponse(hex('00 81 0002')), { opcode: 'map', protocol: 'udp', truncated: true, resultCode: 2 })
    assert.deepEqual(decodeResponse(hex('00 80 0003 00000009')), { opcode: 'external-address', truncated: true, resultCode: 3, epochSeconds: 9 })
  })

  it('rejects a truncated success and error replies of other sizes', () => {
    assertMalformed(() => decodeResponse(hex('00 81 0000')), /4-byte map response with result SUCCESS is shorter than the 16/)
    assertMalformed(() => decodeResponse(hex('00 80 0000 00000009')), /8-byte external-address response.*shorter than the 12/)
    assertMalformed(() => decodeResponse(hex('00 81 0002 00000009 1388')), /10-byte map response/)
    assertMalformed(() => decodeResponse(EXTERNAL_ADDRESS_RESPONSE.slice(0, 11)), /11-byte/)
    assertMalformed(() => decodeResponse(MAP_UDP_RESPONSE.slice(0, 12)), /12-byte map response/)
  })

  it('rejects anything shorter than the 4-byte header', () => {
    for (const length of [0, 1, 2, 3]) {
      assertMalformed(() => decodeResponse(EXTERNAL_ADDRESS_RESPONSE.slice(0, length)), new RegExp(`${length}-byte response is shorter than the 4-byte header`))
    }
  })

  it('ignores bytes after the fields, up to 1100 bytes, and rejects longer messages', () => {
    const padded = new Uint8Array(1100)
    padded.set(MAP_UDP_RESPONSE)
    assert.equal(decodeResponse(padded).opcode, 'map')
    const oversized = new Uint8Array(1101)
    oversized.set(MAP_UDP_RESPONSE)
    assertMalformed(() => decodeResponse(oversized), /1101-byte message is longer than 1100 bytes/)
  })

  it('rejects another version, e.g. a PCP reply', () => {
    assertMalformed(() => decodeResponse(hex('02 80 0000 00001c20 0b4d0001')), /version 2, expected 0/)
  })

  it('rejects a request where a response belongs, and unknown opcodes', () => {
    assertMalformed(() => decodeResponse(MAP_UDP_REQUEST), /opcode 1 is a request's/)
    assertMalformed(() => decodeResponse(hex('00 83 0000 00000000 0000 0000 00000000')), /unknown opcode 3/)
    assertMalformed(() => decodeResponse(hex('00 ff 0000 00000000 0000 0000 00000000')), /unknown opcode 127/)
  })

  it('decodes an unknown result code and names it UNKNOWN_n', () => {
    const response = decodeResponse(hex('00 80 0063 00000001 00000000'))
    assert.equal(response.resultCode, 99)
    assert.equal(natPmpResultName(response.resultCode), 'UNKNOWN_99')
  })

  it('names the RFC 6886 §3.5 result codes', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(natPmpResultName),
      ['SUCCESS', 'UNSUPP_VERSION', 'NOT_AUTHORIZED', 'NETWORK_FAILURE', 'OUT_OF_RESOURCES', 'UNSUPP_OPCODE', 'UNKNOWN_6'])
  })
})

describe('NAT-PMP server side encoders', () => {
  it('re-encodes decoded vectors to the same bytes', () => {
    for (const vector of [EXTERNAL_ADDRESS_RESPONSE, MAP_UDP_RESPONSE, hex('00 81 0002'), hex('00 80 0003 00000009')]) {
      assert.deepEqual(encodeResponse(decodeResponse(vector)), vector)
    }
    for (const vector of [EXTERNAL_ADDRESS_REQUEST, MAP_UDP_REQUEST]) {
      assert.deepEqual(encodeRequest(decodeRequest(vector)), vector)
    }
  })

  it('zeroes the external address of an error response (RFC 6886 §3.2)', () => {
    const bytes = encodeResponse({ opcode: 'external-address', truncated: false, resultCode: 3, epochSeconds: 1, externalAddress: '11.77.0.1' })
    assert.deepEqual(bytes, hex('00 80 0003 00000001 00000000'))
  })

  it('refuses a success without an address, and a truncated success', () => {
    assert.throws(() => encodeResponse({ opcode: 'external-address', truncated: false, resultCode: 0, epochSeconds: 1 }), InvalidArgumentError)
    assert.throws(() => encodeResponse({ opcode: 'map', protocol: 'udp', truncated: true, resultCode: 0 }), InvalidArgumentError)
  })

  it('encodes the UNSUPP_VERSION reply to a PCP request (RFC 6886 §3.5, erratum 3618)', () => {
    assert.deepEqual(encodeUnsupportedVersionResponse({ requestOpcode: 1, epochSeconds: 300 }), hex(`
      00          // version 0
      81          // opcode 128 + the request's opcode (PCP MAP is 1)
      0001        // result code 1: UNSUPP_VERSION
      0000012c    // seconds since start of epoch: 300
    `))
    assert.throws(() => encodeUnsupportedVersionResponse({ requestOpcode: 128, epochSeconds: 0 }), InvalidArgumentError)
  })
})

/** Ordinary prototypes, so that deepEqual compares generated and decoded objects. */
const plainObjects = { noNullPrototype: true } as const
const port = fc.integer({ min: 0, max: 65_535 })
const uint32 = fc.integer({ min: 0, max: 2 ** 32 - 1 })
const protocol = fc.constantFrom('tcp' as const, 'udp' as const)

const validRequest: fc.Arbitrary<NatPmpRequest> = fc.oneof(
  fc.constant({ opcode: 'external-address' as const }),
  fc.record({ opcode: fc.constant('map' as const), protocol, internalPort: port, suggestedExternalPort: port, lifetimeSeconds: uint32 }, plainObjects)
)

const errorCode = fc.integer({ min: 1, max: 65_535 })

const validResponse: fc.Arbitrary<NatPmpResponse> = fc.oneof(
  fc.record({
    opcode: fc.constant('external-address' as const),
    truncated: fc.constant(false as const),
    resultCode: fc.constant(0),
    epochSeconds: uint32,
    externalAddress: fc.ipV4()
  }, plainObjects),
  fc.record({
    opcode: fc.constant('external-address' as const),
    truncated: fc.constant(false as const),
    resultCode: errorCode,
    epochSeconds: uint32
  }, plainObjects),
  fc.record({
    opcode: fc.constant('external-address' as const),
    truncated: fc.constant(true as const),
    resultCode: errorCode,
    epochSeconds: uint32
  }, { ...plainObjects, requiredKeys: ['opcode', 'truncated', 'resultCode'] }),
  fc.record({
    opcode: fc.constant('map' as const),
    truncated: fc.constant(false as const),
    protocol,
    resultCode: fc.integer({ min: 0, max: 65_535 }),
    epochSeconds: uint32,
    internalPort: port,
    externalPort: port,
    lifetimeSeconds: uint32
  }, plainObjects),
  fc.record({
    opcode: fc.constant('map' as const),
    truncated: fc.constant(true as const),
    protocol,
    resultCode: errorCode,
    epochSeconds: uint32
  }, { ...plainObjects, requiredKeys: ['opcode', 'truncated', 'protocol', 'resultCode'] })
)

const plausibleStarts = [[0, 0], [0, 1], [0, 2], [0, 0x80], [0, 0x81], [0, 0x82]] as const

describe('NAT-PMP codec properties', () => {
  it('requests round-trip: encode, decode, re-encode', () => {
    fc.assert(fc.property(validRequest, (request) => {
      const bytes = encodeRequest(request)
      const decoded = decodeRequest(bytes)
      // A delete goes out with suggested external port 0 whatever was asked (RFC 6886 §3.4).
      const expected = request.opcode === 'map' && request.lifetimeSeconds === 0 ? { ...request, suggestedExternalPort: 0 } : request
      assert.deepEqual(decoded, expected)
      assert.deepEqual(encodeRequest(decoded), bytes)
    }), { numRuns: 2_000 })
  })

  it('responses round-trip: encode, decode, re-encode', () => {
    fc.assert(fc.property(validResponse, (response) => {
      const bytes = encodeResponse(response)
      const decoded = decodeResponse(atOffset(bytes))
      assert.deepEqual(decoded, response)
      assert.deepEqual(encodeResponse(decoded), bytes)
    }), { numRuns: 2_000 })
  })

  it('decodeResponse on random bytes: a value or MalformedMessageError', { timeout: 20_000 }, () => {
    fc.assert(fc.property(randomMessages(plausibleStarts), decodesOrRejects(decodeResponse)), { numRuns: FUZZ_RUNS })
  })

  it('decodeResponse on mutated valid responses: a value or MalformedMessageError', { timeout: 20_000 }, () => {
    fc.assert(fc.property(mutated(validResponse.map(encodeResponse)), decodesOrRejects(decodeResponse)), { numRuns: FUZZ_RUNS })
  })

  it('decodeRequest on random bytes: a value or MalformedMessageError', { timeout: 20_000 }, () => {
    fc.assert(fc.property(randomMessages(plausibleStarts), decodesOrRejects(decodeRequest)), { numRuns: FUZZ_RUNS })
  })

  it('decodeRequest on mutated valid requests: a value or MalformedMessageError', { timeout: 20_000 }, () => {
    fc.assert(fc.property(mutated(validRequest.map(encodeRequest)), decodesOrRejects(decodeRequest)), { numRuns: FUZZ_RUNS })
  })
})
