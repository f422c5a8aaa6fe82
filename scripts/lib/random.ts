/** Seeded randomness for the fuzzer and the soak: the same seed gives the same run. */

/** mulberry32: small, fast, good enough to drive mutations; seeded, so runs replay. */
export function prng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** One 32-bit seed from several numbers (FNV-1a over their bytes). */
export function mixSeed (...parts: number[]): number {
  let hash = 0x811c9dc5
  for (const part of parts) {
    for (let shift = 0; shift < 32; shift += 8) {
      hash ^= (part >>> shift) & 0xff
      hash = Math.imul(hash, 0x01000193) >>> 0
    }
  }
  return hash
}
