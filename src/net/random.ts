import { nodeFs } from '../builtins.js'

/**
 * Randomness from the kernel's generator: /dev/urandom where there is one (Linux, macOS, the
 * BSDs), else the global Web Crypto object (Windows, Node < 20.16). Reading the device is three
 * syscalls on node:fs, which Node has loaded anyway; the first crypto.getRandomValues() loads
 * Node's Web Crypto modules, ~0.35 MB of allocation for a 12-byte nonce, which is enough to cost
 * a small process a garbage collection and a megabyte of peak RSS.
 */
let noDevice = false

/**
 * Bytes read from the kernel ahead of need, handed out in order and never twice: a PCP nonce then
 * costs no syscall (three, open-read-close, would be on every first request's path), and 1000
 * mappings read the device 50 times, not 1000. Node's crypto.randomUUID() keeps such a cache too.
 */
const POOL_SIZE = 240
let pool: Uint8Array = new Uint8Array(0)
let poolUsed = 0

/** `length` random bytes (a PCP nonce, RFC 6887 §11.1). */
export function randomBytes (length: number): Uint8Array {
  if (length > POOL_SIZE) return fromKernel(length)
  if (pool.length - poolUsed < length) {
    pool = fromKernel(POOL_SIZE)
    poolUsed = 0
  }
  const bytes = pool.slice(poolUsed, poolUsed + length)
  // Handed out: not kept where a later reader of the pool could see them.
  pool.fill(0, poolUsed, poolUsed + length)
  poolUsed += length
  return bytes
}

function fromKernel (length: number): Uint8Array {
  const bytes = new Uint8Array(length)
  const fs = noDevice ? undefined : nodeFs()
  if (fs !== undefined) {
    try {
      const fd = fs.openSync('/dev/urandom', 'r')
      try {
        let filled = 0
        while (filled < length) {
          const read = fs.readSync(fd, bytes, filled, length - filled, null)
          if (read === 0) throw new Error('/dev/urandom: end of file')
          filled += read
        }
        return bytes
      } finally {
        fs.closeSync(fd)
      }
    } catch {
      noDevice = true
    }
  }
  return globalThis.crypto.getRandomValues(bytes)
}

/** A uniformly random integer in [min, max). */
export function randomInt (min: number, max: number): number {
  const range = max - min
  // Rejection sampling over 32 bits keeps the distribution uniform.
  const limit = Math.floor(0x1_0000_0000 / range) * range
  let word: number
  do {
    const bytes = randomBytes(4)
    word = ((bytes[0] ?? 0) * 0x100_0000) + ((bytes[1] ?? 0) << 16) + ((bytes[2] ?? 0) << 8) + (bytes[3] ?? 0)
  } while (word >= limit)
  return min + (word % range)
}
