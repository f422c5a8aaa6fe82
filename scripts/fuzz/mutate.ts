/**
 * The fuzzer's input generator: input number `index` of a run is a pure function of the seed, the
 * target and the index, so any crash or hang is replayed with `--replay INDEX` alone. Inputs are
 * mostly corpus samples (real fixtures, encoder output) edited a few times, sometimes two samples
 * spliced together, sometimes plain random bytes.
 */
import { Buffer } from 'node:buffer'
import { TOKENS } from '../../test/fixtures/upnp/mutations.js'
import { mixSeed, prng } from '../lib/random.js'

/** Byte values that sit on boundaries of the fields our decoders read. */
const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x0a, 0x0d, 0x20, 0x3a, 0x3c, 0x3e, 0x26]
const TOKEN_BUFFERS = TOKENS.map((token) => Buffer.from(token))

export interface GeneratorOptions {
  /** Longest random input, in bytes; a little above the target's own limit, so limits get hit. */
  maxRandomBytes: number
}

/** Input `index` of the run: deterministic in (seed, targetIndex, index). */
export function generateInput (corpus: readonly Uint8Array[], seed: number, targetIndex: number, index: number, options: GeneratorOptions): Uint8Array {
  const random = prng(mixSeed(seed, targetIndex, index))
  const below = (n: number): number => Math.floor(random() * n)
  const pick = <T>(items: readonly T[]): T => items[below(items.length)] as T
  const roll = random()
  if (roll < 0.1 || corpus.length === 0) {
    const length = random() < 0.5 ? below(64) : below(options.maxRandomBytes + 1)
    const bytes = new Uint8Array(length)
    for (let i = 0; i < length; i++) bytes[i] = below(256)
    return bytes
  }
  let bytes = Buffer.from(pick(corpus))
  if (roll < 0.2) {
    // Splice: the head of one sample onto the tail of another.
    const other = Buffer.from(pick(corpus))
    bytes = Buffer.concat([bytes.subarray(0, below(bytes.length + 1)), other.subarray(below(other.length + 1))])
  }
  const edits = 1 + below(random() < 0.8 ? 4 : 16)
  for (let edit = 0; edit < edits; edit++) {
    const at = below(bytes.length + 1)
    switch (below(8)) {
      case 0: // flip bits
        if (at < bytes.length) bytes[at] = (bytes[at] ?? 0) ^ (1 << below(8))
        break
      case 1: // an interesting byte
        if (at < bytes.length) bytes[at] = pick(INTERESTING_BYTES)
        break
      case 2: // a random byte
        if (at < bytes.length) bytes[at] = below(256)
        break
      case 3: // insert a token that matters to HTTP, SSDP or XML
        bytes = Buffer.concat([bytes.subarray(0, at), pick(TOKEN_BUFFERS), bytes.subarray(at)])
        break
      case 4: // delete a run
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + below(32))])
        break
      case 5: // duplicate a run (nesting, repeated headers)
        bytes = Buffer.concat([bytes.subarray(0, at + 1 + below(64)), bytes.subarray(at)])
        break
      case 6: // truncate
        bytes = bytes.subarray(0, at)
        break
      case 7: { // overwrite a 32-bit field with a boundary value
        if (at + 4 <= bytes.length) bytes.writeUInt32BE(pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff, below(2 ** 32)]), at)
        break
      }
    }
  }
  return bytes
}
