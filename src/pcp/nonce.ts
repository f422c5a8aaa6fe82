/**
 * PCP nonces that survive the process. RFC 6887 §11.1 ties a mapping to the nonce that created
 * it, and newer miniupnpd checks it on renewal and delete (miniupnpd commit 814e855; libpcpnatpmp
 * issue 40): a process that restarts within the lease with a new random nonce can neither renew
 * nor delete its own mapping. With a cache file, a mapping's nonce is instead derived from a
 * per-host secret kept there: HMAC-SHA256(secret, gateway, client address, protocol, internal
 * port), cut to 12 bytes. The next process on this host (same user, same file) derives the same
 * nonce for the same mapping; nobody without the file (mode 0600) can. Without a file, nonces
 * stay random, as before.
 */
import { debug } from '../debug.js'
import { readCacheFile, updateCacheFile } from '../net/cache-file.js'
import { randomBytes } from '../net/random.js'
import type { TransportProtocol } from '../core/gateway-client.js'

const NONCE_SIZE = 12
const SECRET_SIZE = 32
/** The cache file's key. */
const KEY = 'pcpNonceSecret'

export type NonceSource = (gateway: string, clientAddress: string, protocol: TransportProtocol, internalPort: number) => Uint8Array

/** One load per file and process: every client of a NAT (rediscoveries too) shares it. */
const loaded = new Map<string, Promise<NonceSource | undefined>>()

/** The nonces of mappings made with this cache file; undefined when it cannot be read or written (random nonces then). */
export async function nonceSource (file: string): Promise<NonceSource | undefined> {
  let source = loaded.get(file)
  if (source === undefined) {
    source = load(file)
    loaded.set(file, source)
  }
  return await source
}

async function load (file: string): Promise<NonceSource | undefined> {
  try {
    let secret = secretFrom((await readCacheFile(file))[KEY])
    if (secret === undefined) {
      const fresh = Buffer.from(randomBytes(SECRET_SIZE)).toString('base64')
      // Another process may write its own at the same moment: the secret is whichever the file keeps.
      await updateCacheFile(file, KEY, (current) => secretFrom(current) === undefined ? fresh : current)
      secret = secretFrom((await readCacheFile(file))[KEY])
      if (secret === undefined) return undefined
    }
    const { createHmac } = await import('node:crypto')
    const key = secret
    return (gateway, clientAddress, protocol, internalPort) => {
      const digest = createHmac('sha256', key).update(`pcp-nonce 1 ${gateway} ${clientAddress} ${protocol} ${internalPort}`).digest()
      return new Uint8Array(digest.buffer, digest.byteOffset, NONCE_SIZE).slice()
    }
  } catch (error) {
    debug('pcp: no lasting nonces (%s): random ones', String(error))
    return undefined
  }
}

function secretFrom (value: unknown): Buffer | undefined {
  if (typeof value !== 'string') return undefined
  const secret = Buffer.from(value, 'base64')
  return secret.length === SECRET_SIZE ? secret : undefined
}
