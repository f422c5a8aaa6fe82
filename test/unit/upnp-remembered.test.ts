import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { after, describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { MAX_ENTRIES, recallGateway, recalledInProcess, rememberGateway, REMEMBER_FOR } from '../../src/upnp/remembered.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heapAfterGc = (): number => { gc(); gc(); return process.memoryUsage().heapUsed }

const directory = mkdtempSync(`${tmpdir()}/natmapper-remembered-unit-`)
after(() => { rmSync(directory, { recursive: true, force: true }) })
const service = { serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2', controlUrl: 'http://10.9.0.1:5000/ctl/IPConn' }
const write = (file: string, gateways: unknown): void => { writeFileSync(file, JSON.stringify({ version: 1, gateways })) }
const settle = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 100)) }

describe('remembered UPnP gateway', () => {
  it('remembers in the process and in the file, keyed by gateway and local address', async () => {
    const file = `${directory}/a/b/gateways.json`
    rememberGateway('10.9.0.1', '10.9.0.2', { location: 'http://10.9.0.1:5000/rootDesc.xml', ...service }, file)
    assert.equal((await recallGateway('10.9.0.1', '10.9.0.2', undefined))?.location.href, 'http://10.9.0.1:5000/rootDesc.xml')
    assert.equal(await recallGateway('10.9.0.1', '10.9.0.3', undefined), undefined, 'another local address')
    await settle()
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { gateways: Record<string, { location: string }> }
    assert.equal(saved.gateways['10.9.0.1 10.9.0.2']?.location, 'http://10.9.0.1:5000/rootDesc.xml')
  })

  it('reads the file for a gateway this process has not seen', async () => {
    const file = `${directory}/read.json`
    write(file, { '10.8.0.1 10.8.0.2': { location: 'http://10.8.0.1:2869/desc.xml', ...service, savedAt: Date.now() } })
    assert.equal((await recallGateway('10.8.0.1', '10.8.0.2', file))?.location.port, '2869')
  })

  it('ignores an entry that names another host, is stale or from the future, or is not http', async () => {
    const file = `${directory}/bad.json`
    const now = Date.now()
    write(file, {
      '10.7.0.1 10.7.0.2': { location: 'http://10.7.0.99:5000/rootDesc.xml', ...service, savedAt: now },
      '10.7.0.3 10.7.0.2': { location: 'http://10.7.0.3:5000/rootDesc.xml', ...service, savedAt: now - REMEMBER_FOR - 1 },
      '10.7.0.4 10.7.0.2': { location: 'http://10.7.0.4:5000/rootDesc.xml', ...service, savedAt: now + 3_600_000 },
      '10.7.0.5 10.7.0.2': { location: 'https://10.7.0.5/rootDesc.xml', ...service, savedAt: now },
      '10.7.0.6 10.7.0.2': { location: 42, savedAt: now }
    })
    for (const gateway of ['10.7.0.1', '10.7.0.3', '10.7.0.4', '10.7.0.5', '10.7.0.6']) {
      assert.equal(await recallGateway(gateway, '10.7.0.2', file), undefined, gateway)
    }
  })

  it('treats a missing, garbled or oversized file as empty', async () => {
    assert.equal(await recallGateway('10.6.0.1', '10.6.0.2', `${directory}/missing.json`), undefined)
    writeFileSync(`${directory}/garbled.json`, '{"gateways": ')
    assert.equal(await recallGateway('10.6.0.1', '10.6.0.2', `${directory}/garbled.json`), undefined)
    const entry = { location: 'http://10.6.0.1:5000/rootDesc.xml', ...service, savedAt: Date.now(), padding: 'x'.repeat(20_000) }
    write(`${directory}/big.json`, { '10.6.0.1 10.6.0.2': entry })
    assert.equal(await recallGateway('10.6.0.1', '10.6.0.2', `${directory}/big.json`), undefined)
  })

  // Regression (soak heap snapshots): the in-process map was keyed by gateway and local address
  // and never pruned, so a host meeting new networks kept every one it had seen.
  it('keeps at most MAX_ENTRIES gateways in the process, dropping the oldest', () => {
    const localAddress = (index: number): string => `10.5.${Math.floor(index / 250)}.${(index % 250) + 2}`
    for (let index = 0; index <= MAX_ENTRIES; index++) {
      rememberGateway('10.5.0.1', localAddress(index), { location: 'http://10.5.0.1:5000/rootDesc.xml', ...service }, undefined)
    }
    assert.equal(recalledInProcess('10.5.0.1', localAddress(0)), undefined, 'the oldest is dropped')
    for (let index = 1; index <= MAX_ENTRIES; index++) assert.notEqual(recalledInProcess('10.5.0.1', localAddress(index)), undefined, localAddress(index))
    // Saving one again makes it the newest: the next one dropped is the oldest after it.
    rememberGateway('10.5.0.1', localAddress(1), { location: 'http://10.5.0.1:5000/rootDesc.xml', ...service }, undefined)
    rememberGateway('10.5.0.1', localAddress(MAX_ENTRIES + 1), { location: 'http://10.5.0.1:5000/rootDesc.xml', ...service }, undefined)
    assert.notEqual(recalledInProcess('10.5.0.1', localAddress(1)), undefined)
    assert.equal(recalledInProcess('10.5.0.1', localAddress(2)), undefined)
  })

  // Regression (soak heap snapshots): the service type handed in is a slice of the description
  // XML, and the remembered entry kept the whole document alive with it.
  it('does not keep alive the document its strings were cut from', () => {
    const before = heapAfterGc()
    rememberCutFromDocument(8 * 1024 * 1024)
    const grown = heapAfterGc() - before
    assert.ok(grown < 4 * 1024 * 1024, `the heap kept ${(grown / 1_048_576).toFixed(1)} MB after the document was dropped`)
    assert.equal(recalledInProcess('10.4.0.1', '10.4.0.2')?.serviceType, service.serviceType)
  })
})

/** Remembers a service type cut from an on-heap document of `size` bytes, as the XML decoder hands it over; the document is gone when this returns. */
function rememberCutFromDocument (size: number): void {
  const document = `<serviceType>${service.serviceType}</serviceType>` + ' '.repeat(size)
  const serviceType = document.slice('<serviceType>'.length, '<serviceType>'.length + service.serviceType.length)
  rememberGateway('10.4.0.1', '10.4.0.2', { location: 'http://10.4.0.1:5000/rootDesc.xml', serviceType, controlUrl: service.controlUrl }, undefined)
}
