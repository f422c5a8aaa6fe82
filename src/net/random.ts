/**
 * Randomness through the global Web Crypto object rather than an import of node:crypto: the
 * crypto module then loads on first use (a PCP nonce, a UPnP port retry) instead of at import
 * time, which is most of what a program using neither would pay for it.
 */

/** `length` random bytes (a PCP nonce, RFC 6887 §11.1). */
export function randomBytes (length: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(length))
}

/** A uniformly random integer in [min, max). */
export function randomInt (min: number, max: number): number {
  const range = max - min
  // Rejection sampling over 32 bits keeps the distribution uniform.
  const limit = Math.floor(0x1_0000_0000 / range) * range
  const word = new Uint32Array(1)
  do globalThis.crypto.getRandomValues(word)
  while ((word[0] ?? 0) >= limit)
  return min + ((word[0] ?? 0) % range)
}
