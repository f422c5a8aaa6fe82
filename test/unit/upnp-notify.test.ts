import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { GatewayEvent } from '../../src/core/gateway-client.js'
import { MalformedMessageError } from '../../src/errors.js'
import { UpnpClient } from '../../src/upnp/client.js'
import { decodeDeviceDescription } from '../../src/upnp/description.js'
import { decodeNotify, decodeSearchResponse } from '../../src/upnp/ssdp.js'
import { mutationOf } from '../fixtures/upnp/mutations.js'

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/upnp/${name}`, import.meta.url))
// Captured from miniupnpd 2.3.1 in the lab: the first NOTIFY of each burst around a restart.
const BYEBYE = fixture('miniupnpd-2.3.1-byebye.ssdp')
const ALIVE = fixture('miniupnpd-2.3.1-alive.ssdp')
const OLD_BOOT = 1796037204
const NEW_BOOT = 1796037205
const ROOT_USN = 'uuid:6e61746d-6170-7065-722d-6c6162000001::upnp:rootdevice'

/** The same NOTIFY with some headers replaced (or removed, with undefined). */
function edited (datagram: Buffer, changes: Record<string, string | undefined>): Buffer {
  let text = datagram.toString('latin1')
  for (const [name, value] of Object.entries(changes)) {
    text = text.replace(new RegExp(`^${name.replace(/\./g, '\\.')}: .*\\r\\n`, 'm'), value === undefined ? '' : `${name}: ${value}\r\n`)
  }
  return Buffer.from(text, 'latin1')
}

function clientFor (init: { bootId?: number, usn?: string } = { bootId: OLD_BOOT, usn: ROOT_USN }): { client: UpnpClient, resets: string[] } {
  const descriptionUrl = new URL('http://192.168.77.1:5000/rootDesc.xml')
  const description = decodeDeviceDescription(fixture('miniupnpd-1.8-igd2.xml').toString('utf8'), descriptionUrl)
  const client = new UpnpClient({
    gateway: '192.168.77.1',
    localAddress: '192.168.77.2',
    descriptionUrl,
    description,
    ...init,
    services: description.wanServices,
    requestTimeout: 1_000,
    maxConcurrentRequests: 2,
    randomPort: () => 40_000
  })
  const resets: string[] = []
  client.onEvent = (event: GatewayEvent) => { if (event.kind === 'reset') resets.push(event.reason) }
  return { client, resets }
}

describe('SSDP NOTIFY decoding', () => {
  it('reads miniupnpd 2.3.1 alive and byebye', () => {
    const alive = decodeNotify(ALIVE)
    assert.equal(alive.kind, 'alive')
    assert.equal(alive.notificationType, 'upnp:rootdevice')
    assert.equal(alive.usn, ROOT_USN)
    assert.equal(alive.bootId, NEW_BOOT)
    assert.equal(alive.location?.href, 'http://192.168.77.1:5000/rootDesc.xml')
    const byebye = decodeNotify(BYEBYE)
    assert.equal(byebye.kind, 'byebye')
    assert.equal(byebye.bootId, OLD_BOOT)
    assert.equal(byebye.location, undefined)
  })

  it('reads BOOTID.UPNP.ORG from a search answer', () => {
    assert.equal(decodeSearchResponse(fixture('miniupnpd-1.8.ssdp')).bootId, 1)
  })

  it('rejects what is not a usable NOTIFY with MalformedMessageError', () => {
    const rejects = (datagram: Uint8Array, reason: RegExp): void => {
      assert.throws(() => decodeNotify(datagram), (error: unknown) => error instanceof MalformedMessageError && reason.test(error.message))
    }
    rejects(fixture('miniupnpd-1.8.ssdp'), /not a NOTIFY/)
    rejects(edited(ALIVE, { NTS: 'ssdp:propchange' }), /NTS/)
    rejects(edited(ALIVE, { NT: undefined }), /without NT/)
    rejects(edited(ALIVE, { LOCATION: 'https://192.168.77.1/' }), /scheme/)
    rejects(edited(ALIVE, { LOCATION: undefined }), /LOCATION/)
    rejects(Buffer.concat([ALIVE, Buffer.alloc(9_000)]), /exceeds/)
    rejects(Buffer.from(`NOTIFY * HTTP/1.1\r\n${'X: y\r\n'.repeat(40)}`), /header lines/)
    rejects(Buffer.from(`NOTIFY ${'*'.repeat(2_000)} HTTP/1.1\r\n\r\n`), /start line/)
  })

  it('ignores a BOOTID that is not a 31-bit number', () => {
    for (const bad of ['-1', '2147483648', '1e3', '12a', '']) {
      assert.equal(decodeNotify(edited(ALIVE, { 'BOOTID.UPNP.ORG': bad })).bootId, undefined)
    }
  })

  it('never throws anything but MalformedMessageError on damaged NOTIFYs', () => {
    fc.assert(fc.property(mutationOf([ALIVE, BYEBYE]), (datagram) => {
      try { decodeNotify(datagram) } catch (error) { assert.ok(error instanceof MalformedMessageError, String(error)) }
    }), { numRuns: 5_000 })
  })
})

describe('UPnP client: gateway restarts heard through SSDP NOTIFY', () => {
  it('a new BOOTID in ssdp:alive is a reset, reported once for the whole burst', () => {
    const { client, resets } = clientFor()
    client.handleNotify(edited(ALIVE, { 'BOOTID.UPNP.ORG': String(OLD_BOOT) }))
    assert.deepEqual(resets, [], 'the periodic alive of the same boot is no news')
    for (let i = 0; i < 13; i++) client.handleNotify(ALIVE)
    assert.equal(resets.length, 1)
    assert.match(resets[0] ?? '', /BOOTID 1796037204 → 1796037205/)
  })

  it('byebye then alive is a reset even when the BOOTID did not change (a restart within the same second)', () => {
    const { client, resets } = clientFor()
    client.handleNotify(BYEBYE)
    assert.deepEqual(resets, [])
    client.handleNotify(edited(ALIVE, { 'BOOTID.UPNP.ORG': String(OLD_BOOT) }))
    assert.equal(resets.length, 1)
    assert.match(resets[0] ?? '', /byebye/)
  })

  it('without a BOOTID from the search, the first alive only teaches it', () => {
    const { client, resets } = clientFor({ usn: ROOT_USN })
    client.handleNotify(ALIVE)
    assert.deepEqual(resets, [])
    client.handleNotify(edited(ALIVE, { 'BOOTID.UPNP.ORG': String(NEW_BOOT + 7) }))
    assert.equal(resets.length, 1)
  })

  it('ignores other devices on the gateway (another description, another uuid) and garbage', () => {
    const { client, resets } = clientFor()
    // A media server on the router: its own description and boots.
    client.handleNotify(edited(ALIVE, { LOCATION: 'http://192.168.77.1:8200/rootDesc.xml', 'BOOTID.UPNP.ORG': '5' }))
    client.handleNotify(edited(BYEBYE, { USN: 'uuid:4d696e69-444c-164e-9d41-000000000001::upnp:rootdevice' }))
    client.handleNotify(edited(ALIVE, { LOCATION: 'http://192.168.77.1:8200/rootDesc.xml' }))
    client.handleNotify(Buffer.from('garbage'))
    client.handleNotify(edited(ALIVE, { NTS: 'ssdp:update' }))
    assert.deepEqual(resets, [])
  })

  it('learns the embedded devices from alive, so their byebye counts too', () => {
    const { client, resets } = clientFor()
    const wanDevice = 'uuid:6e61746d-6170-7065-722d-6c6162000003::urn:schemas-upnp-org:device:WANConnectionDevice:2'
    client.handleNotify(edited(ALIVE, { USN: wanDevice, 'BOOTID.UPNP.ORG': String(OLD_BOOT) }))
    client.handleNotify(edited(BYEBYE, { USN: wanDevice }))
    client.handleNotify(edited(ALIVE, { 'BOOTID.UPNP.ORG': String(OLD_BOOT) }))
    assert.equal(resets.length, 1)
  })
})
