/**
 * fast-check building blocks shared by the codec property tests: damaged versions of valid
 * messages, and the one rule every decoder must follow on hostile input.
 */

import assert from 'node:assert/strict'
import fc from 'fast-check'
import { MalformedMessageError, type WireProtocol } from '../../src/errors.js'

/** Runs per decoder property; the brief for the codecs asks for at least 10 000. */
export const FUZZ_RUNS = 10_000

/** Longer than any NAT-PMP or PCP message may be (1100 bytes), so size limits get exercised. */
const LONGEST_GENERATED = 1_200

type Mutation =
  | { kind: 'flip', index: number, mask: number }
  | { kind: 'set', index: number, value: number }
  | { kind: 'truncate', length: number }
  | { kind: 'extend', tail: Uint8Array }
  | { kind: 'pad', length: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), index: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('set' as const), index: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), length: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), tail: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({ kind: fc.constant('pad' as const), length: fc.integer({ min: 1, max: LONGEST_GENERATED }) })
)

function applyMutation (bytes: Uint8Array, change: Mutation): Uint8Array {
  switch (change.kind) {
    case 'flip':
    case 'set': {
      if (bytes.length === 0) {
        return bytes
      }
      const copy = Uint8Array.from(bytes)
      const index = change.index % copy.length
      copy[index] = change.kind === 'flip' ? (copy[index] ?? 0) ^ change.mask : change.value
      return copy
    }
    case 'truncate':
      return bytes.slice(0, change.length % (bytes.length + 1))
    case 'extend':
      return concat(bytes, change.tail)
    case 'pad':
      return concat(bytes, new Uint8Array(change.length))
  }
}

function concat (head: Uint8Array, tail: Uint8Array): Uint8Array {
  const joined = new Uint8Array(head.length + tail.length)
  joined.set(head)
  joined.set(tail, head.length)
  return joined
}

/** Valid messages with one to four flipped or overwritten bytes, truncations or extensions. */
export function mutated (valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([bytes, changes]) => changes.reduce(applyMutation, bytes))
}

/**
 * Random bytes, short and long, plus random bytes behind a plausible start (the given first
 * two bytes) so that the fuzzing reaches past the version and opcode checks.
 */
export function randomMessages (plausibleStarts: ReadonlyArray<readonly [number, number]>): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.uint8Array({ maxLength: LONGEST_GENERATED }),
    fc.tuple(fc.constantFrom(...plausibleStarts), fc.uint8Array({ maxLength: 120 }))
      .map(([start, rest]) => concat(Uint8Array.from(start), rest))
  )
}

/** The only outcomes allowed on hostile input: a decoded value, or a MalformedMessageError. */
export function decodesOrRejects (decode: (bytes: Uint8Array) => unknown): (bytes: Uint8Array) => void {
  return (bytes) => {
    try {
      decode(bytes)
    } catch (error) {
      assert.ok(error instanceof MalformedMessageError, `expected MalformedMessageError, got ${String(error)}`)
    }
  }
}

/**
 * Bytes from spaced hex with `//` comments to the end of the line, so vectors can be laid out
 * field by field like the RFC figures.
 */
export function hex (text: string): Uint8Array {
  const digits = text.split('\n').map((line) => line.replace(/\/\/.*$/, '')).join('').replace(/\s+/g, '')
  assert.ok(/^([0-9a-f]{2})*$/i.test(digits), `bad hex: ${text}`)
  return Uint8Array.from(Buffer.from(digits, 'hex'))
}

/** The same bytes inside a larger buffer at a nonzero offset: decoders must honour `byteOffset`. */
export function atOffset (bytes: Uint8Array, offset = 5): Uint8Array {
  const backing = new Uint8Array(offset + bytes.length + 3).fill(0xee)
  backing.set(bytes, offset)
  return backing.subarray(offset, offset + bytes.length)
}

/** An assertion that `decode` throws a MalformedMessageError of `protocol` whose message matches `reason`. */
export function malformedAsserter (protocol: WireProtocol): (decode: () => unknown, reason: RegExp) => void {
  return (decode, reason) => {
    assert.throws(decode, (error: unknown) => {
      assert.ok(error instanceof MalformedMessageError)
      assert.equal(error.protocol, protocol)
      assert.equal(error.code, 'ERR_MALFORMED_MESSAGE')
      assert.match(error.message, reason)
      return true
    })
  }
}
