/**
 * The optional cache file (DiscoverOptions.gatewayCacheFile; the CLI's lives in ~/.cache): one
 * small JSON object whose top-level keys belong to whoever keeps something there (the remembered
 * UPnP gateways, the PCP nonce secret). A reader never sees half a file, and a writer keeps the
 * keys it does not own.
 */

/** The cache file is tiny; anything larger was not written by us. */
const MAX_FILE_BYTES = 16 * 1024
const VERSION = 1

/** The file's contents; {} when it is missing, too large or not ours. Never throws. */
export async function readCacheFile (file: string): Promise<Record<string, unknown>> {
  try {
    const handle = await (await loadFs()).open(file, 'r')
    try {
      const buffer = Buffer.alloc(MAX_FILE_BYTES + 1)
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0)
      if (bytesRead > MAX_FILE_BYTES) return {}
      const parsed = JSON.parse(buffer.subarray(0, bytesRead).toString('utf8')) as unknown
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {}
    } finally {
      await handle.close()
    }
  } catch {
    return {}
  }
}

/**
 * Sets one top-level key to what `update` makes of its current value: read, update, write to a
 * temporary file (mode 0600, in a directory made 0700) and rename. This process's updates of one
 * file take turns: two at once (the PCP nonce secret and a remembered gateway, two families'
 * gateways) would each write back what it read, and the rename that came last would drop the
 * other's key.
 */
export async function updateCacheFile (file: string, key: string, update: (current: unknown) => unknown): Promise<void> {
  const { dirname, resolve } = await import('node:path')
  const path = resolve(file)
  const turn = (updating.get(path) ?? Promise.resolve()).then(async () => { await writeUpdate(path, dirname(path), key, update) })
  const done = turn.catch(() => {})
  updating.set(path, done)
  try {
    await turn
  } finally {
    if (updating.get(path) === done) updating.delete(path)
  }
}

/** The last update queued for each file (by absolute path), settled whatever its outcome. */
const updating = new Map<string, Promise<void>>()

/** One update of `file` (absolute), whose directory is made first if missing. */
async function writeUpdate (file: string, directory: string, key: string, update: (current: unknown) => unknown): Promise<void> {
  const contents = await readCacheFile(file)
  const updated = { ...contents, version: VERSION, [key]: update(contents[key]) }
  const fs = await loadFs()
  await fs.mkdir(directory, { recursive: true, mode: 0o700 })
  const temporary = `${file}.${process.pid}.tmp`
  try {
    await fs.writeFile(temporary, JSON.stringify(updated, null, 2) + '\n', { mode: 0o600 })
    await fs.rename(temporary, file)
  } catch (error) {
    // A full disk or a failed rename leaves no half-written file beside the cache.
    await fs.rm(temporary, { force: true }).catch(() => {})
    throw error
  }
}

/**
 * node:fs/promises on the first read or write of a cache file (the CLI's), not at start: a
 * library user without one never loads it (see builtins.ts).
 */
async function loadFs (): Promise<typeof import('node:fs/promises')> {
  return await import('node:fs/promises')
}
