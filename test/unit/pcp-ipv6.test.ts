import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeRequest, decodeResponse, encodeMapRequest, encodeResponse } from '../../src/pcp/codec.js'
import { hex } from '../helpers/fuzz.js'

const NONCE = hex('01 02 03 04 05 06 07 08 09 0a 0b 0c')

// RFC 6887 §11.1 MAP from an IPv6 client: 16-byte address fields hold the IPv6 address itself
// (no ::ffff: mapping), and the "any" suggested external address is `::`.
const MAP_REQUEST_6 = hex(`
  02 01 0000                            // version 2, request, MAP
  00000e10                              // lifetime 3600
  20010db8 00770000 00000000 00000002   // client IP address 2001:db8:77::2
  0102030405060708090a0b0c              // nonce
  11 000000                             // protocol 17 (UDP), reserved
  1f90 1f90                             // internal port 8080, suggested external port 8080
  00000000 00000000 00000000 00000000   // suggested external address ::
`)

// What miniupnpd answers for an IPv6 pinhole: the assigned address is the client's own.
const MAP_RESPONSE_6 = hex(`
  02 81 00 00                           // version 2, response MAP, result SUCCESS
  00000e10                              // lifetime 3600
  00001234                              // epoch
  00000000 00000000 00000000            // reserved
  0102030405060708090a0b0c              // nonce
  11 000000                             // UDP
  1f90 1f90                             // internal 8080, assigned external 8080
  20010db8 00770000 00000000 00000002   // assigned external address 2001:db8:77::2
`)

describe('PCP over IPv6 (RFC 6887 §11.1)', () => {
  it('encodes a MAP request from an IPv6 client', () => {
    const bytes = encodeMapRequest({ clientAddress: '2001:db8:77::2', lifetimeSeconds: 3600, nonce: NONCE, protocol: 'udp', internalPort: 8080, suggestedExternalPort: 8080 })
    assert.deepEqual(bytes, MAP_REQUEST_6)
    const decoded = decodeRequest(bytes)
    assert.equal(decoded.clientAddress, '2001:db8:77::2')
    assert.equal(decoded.opcode, 'map')
    assert.equal(decoded.map?.suggestedExternalAddress, '::')
  })

  it('decodes a MAP response granting a pinhole to the client\'s own address, and re-encodes it', () => {
    const decoded = decodeResponse(MAP_RESPONSE_6)
    assert.equal(decoded.kind, 'response')
    if (decoded.kind !== 'response' || decoded.opcode !== 'map') throw new Error('not a MAP response')
    assert.equal(decoded.map.externalAddress, '2001:db8:77::2')
    assert.equal(decoded.map.externalPort, 8080)
    assert.equal(decoded.lifetimeSeconds, 3600)
    assert.equal(decoded.epochSeconds, 0x1234)
    assert.deepEqual(encodeResponse({ opcode: 'map', resultCode: 0, lifetimeSeconds: 3600, epochSeconds: 0x1234, map: decoded.map }), MAP_RESPONSE_6)
  })

  it('decodes the same response from a subarray at an offset', () => {
    const padded = new Uint8Array(MAP_RESPONSE_6.length + 7)
    padded.set(MAP_RESPONSE_6, 7)
    const decoded = decodeResponse(padded.subarray(7))
    assert.equal(decoded.kind === 'response' && decoded.map?.externalAddress, '2001:db8:77::2')
  })
})
