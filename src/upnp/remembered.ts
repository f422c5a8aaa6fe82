/**
 * The remembered UPnP gateway: where the description of a gateway that worked is, and the WAN
 * service chosen on it, so that the next discovery (a rediscovery in this process, a new NAT, or,
 * through a small cache file, the next `natmapper` run) tries it at once with one GET instead of
 * waiting ~50 ms for the router's SSDP answer. The caller races it against the SSDP search, so a
 * stale entry (the router rebooted onto another port, or is another router now) costs nothing.
 *
 * An entry is keyed by gateway and local address, lives REMEMBER_FOR, and is used only when its
 * description URL names the current gateway itself: an entry edited to name another host, or left
 * from another network, never makes us talk to anyone but the gateway of the default route.
 */
import { sameAddress } from './trust.js'
import { debug } from '../debug.js'
import { readCacheFile, updateCacheFile } from '../net/cache-file.js'

/** How long a gateway is remembered: long enough for a CLI run a minute later, short enough that a new router is not tried for long. */
export const REMEMBER_FOR = 10 * 60_000
/** Entries kept in the file and in this process (one per gateway and local address); the oldest go first. */
export const MAX_ENTRIES = 16

export interface RememberedGateway {
  /** The description URL. */
  location: string
  /** The WAN service chosen on it. */
  serviceType: string
  controlUrl: string
  /** Date.now() when it last worked. */
  savedAt: number
}

/** In the order they were last saved, oldest first. */
const inProcess = new Map<string, RememberedGateway>()

const keyOf = (gateway: string, localAddress: string): string => `${gateway} ${localAddress}`

/**
 * The remembered gateway for this gateway and local address, if fresh and on the gateway itself;
 * from this process's memory, else from `file`. Never throws: a bad file means nothing remembered.
 */
export async function recallGateway (gateway: string, localAddress: string, file: string | undefined): Promise<Recalled | undefined> {
  return recalledInProcess(gateway, localAddress) ?? (file === undefined ? undefined : usable((await readEntries(file))[keyOf(gateway, localAddress)], gateway))
}

/** The same from this process's memory alone, at once. */
export function recalledInProcess (gateway: string, localAddress: string): Recalled | undefined {
  return usable(inProcess.get(keyOf(gateway, localAddress)), gateway)
}

export interface Recalled { location: URL, serviceType: string, controlUrl: string }

function usable (entry: unknown, gateway: string): Recalled | undefined {
  if (entry === undefined || !isEntry(entry)) return undefined
  const age = Date.now() - entry.savedAt
  if (age < 0 || age > REMEMBER_FOR) return undefined
  let location: URL
  try {
    location = new URL(entry.location)
  } catch {
    return undefined
  }
  if (location.protocol !== 'http:' || !sameAddress(location.hostname, gateway)) {
    debug('upnp: remembered gateway %s is not %s: ignored', location.host, gateway)
    return undefined
  }
  return { location, serviceType: entry.serviceType, controlUrl: entry.controlUrl }
}

/** Remembers a gateway that worked, in this process and (best effort) in `file`. */
export function rememberGateway (gateway: string, localAddress: string, entry: Omit<RememberedGateway, 'savedAt'>, file: string | undefined): void {
  const key = keyOf(gateway, localAddress)
  // Copies, not the strings given: the service type is cut out of the description XML, and V8
  // keeps a whole document alive for as long as a slice of it is (found in the soak's heap snapshots).
  const saved: RememberedGateway = { location: copyOf(entry.location), serviceType: copyOf(entry.serviceType), controlUrl: copyOf(entry.controlUrl), savedAt: Date.now() }
  inProcess.delete(key)
  inProcess.set(key, saved)
  // A host that roams meets new gateways and addresses for as long as it runs: keep the map bounded.
  for (const [oldKey, old] of inProcess) {
    if (inProcess.size <= MAX_ENTRIES && Date.now() - old.savedAt <= REMEMBER_FOR) break
    inProcess.delete(oldKey)
  }
  if (file !== undefined) {
    writeEntry(file, key, saved).catch((error: unknown) => { debug('upnp: cannot write %s: %s', file, String(error)) })
  }
}

/** The same text in a string of its own (not a slice of a larger one). */
function copyOf (text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8')
}

function isEntry (value: unknown): value is RememberedGateway {
  const entry = value as Partial<RememberedGateway> | null
  return typeof entry === 'object' && entry !== null && typeof entry.location === 'string' && typeof entry.serviceType === 'string' &&
    typeof entry.controlUrl === 'string' && typeof entry.savedAt === 'number' && Number.isFinite(entry.savedAt)
}

/** The remembered gateways in the cache file (its `gateways` key). */
async function readEntries (file: string): Promise<Record<string, unknown>> {
  const gateways = (await readCacheFile(file)).gateways
  return typeof gateways === 'object' && gateways !== null ? gateways as Record<string, unknown> : {}
}

/** Updates this entry in the file, dropping stale ones and keeping the newest MAX_ENTRIES. */
async function writeEntry (file: string, key: string, entry: RememberedGateway): Promise<void> {
  await updateCacheFile(file, 'gateways', (current) => {
    const entries = Object.entries(typeof current === 'object' && current !== null ? current : {})
      .filter(([other, value]) => other !== key && isEntry(value) && Date.now() - value.savedAt <= REMEMBER_FOR)
    return Object.fromEntries([...entries.slice(-(MAX_ENTRIES - 1)), [key, entry]])
  })
}
