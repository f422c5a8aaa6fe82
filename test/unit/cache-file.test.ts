import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { after, describe, it } from 'node:test'
import { readCacheFile, updateCacheFile } from '../../src/net/cache-file.js'

const directory = mkdtempSync(`${tmpdir()}/natmapper-cache-file-`)
after(() => { rmSync(directory, { recursive: true, force: true }) })

describe('the cache file (gatewayCacheFile)', () => {
  it('keeps every update made at once in one process: each key, and each turn of a read-modify-write', async () => {
    const file = `${directory}/at-once/cache.json`
    // The PCP nonce secret and two families' remembered gateways, as `natmapper serve` can write them.
    await Promise.all([
      updateCacheFile(file, 'pcpNonceSecret', () => 'secret'),
      updateCacheFile(file, 'gateways', (current) => ({ ...(current as object | undefined), ipv4: 1 })),
      updateCacheFile(`${directory}/at-once/../at-once/cache.json`, 'gateways', (current) => ({ ...(current as object | undefined), ipv6: 2 })),
      ...Array.from({ length: 10 }, async () => { await updateCacheFile(file, 'count', (current) => (typeof current === 'number' ? current : 0) + 1) })
    ])
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    assert.deepEqual(saved, { version: 1, pcpNonceSecret: 'secret', gateways: { ipv4: 1, ipv6: 2 }, count: 10 })
    assert.deepEqual(readdirSync(`${directory}/at-once`), ['cache.json'], 'no temporary file left')
  })

  it('a failed write leaves no temporary file, throws, and lets the next update through', async () => {
    const parent = `${directory}/failing`
    const file = `${parent}/cache.json`
    mkdirSync(file, { recursive: true }) // a directory where the file should be: the rename fails
    await assert.rejects(updateCacheFile(file, 'key', () => 1))
    assert.deepEqual(readdirSync(parent), ['cache.json'], 'no temporary file left')
    assert.deepEqual(await readCacheFile(file), {})
    rmSync(file, { recursive: true })
    await updateCacheFile(file, 'key', () => 2)
    assert.deepEqual(await readCacheFile(file), { version: 1, key: 2 })
  })
})
