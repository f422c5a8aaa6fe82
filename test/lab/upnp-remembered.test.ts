import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { after, it } from 'node:test'
import { Agent, labEnv, lab, labSuite, runLabScript } from '../helpers/lab.js'

// The remembered UPnP gateway across processes, through the cache file the CLI uses: a stale
// entry (the router came back on another HTTP port) is recovered through SSDP, and an entry
// edited to name another host is never contacted.
labSuite('lab: the remembered UPnP gateway', { mode: 'upnp', profile: 'stock' }, () => {
  const directory = mkdtempSync(`${tmpdir()}/natmapper-remembered-`)
  const file = `${directory}/upnp-gateways.json`
  const key = `${lab.gatewayLanAddress} ${lab.lanAddress}`
  const httpPort = labEnv.LAB_HTTP_PORT ?? '5000'
  after(() => { rmSync(directory, { recursive: true, force: true }) })

  const entry = (): { location: string, controlUrl: string, savedAt: number } => {
    const gateways = (JSON.parse(readFileSync(file, 'utf8')) as { gateways: Record<string, { location: string, controlUrl: string, savedAt: number }> }).gateways
    const found = gateways[key]
    assert.ok(found !== undefined, `the cache file remembers ${key}: ${JSON.stringify(gateways)}`)
    return found
  }

  /** One process: discover over UPnP with the cache file, map, and exit by itself. */
  const mapOnce = async (port: number): Promise<void> => {
    const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port, discover: { protocols: ['upnp'], gatewayCacheFile: file } })
    try {
      const discovered = await agent.next('discovered')
      assert.equal(discovered.type, 'upnp-igd2')
      assert.equal(discovered.gateway, lab.gatewayLanAddress)
      const mapped = await agent.next('mapped')
      assert.equal(mapped.address, lab.gatewayWanAddress)
      await agent.exitCleanly()
    } finally {
      agent.kill()
    }
  }

  it('a gateway back on another HTTP port: the remembered URL fails, SSDP finds the new one, which is remembered', async () => {
    await mapOnce(24_000)
    assert.equal(new URL(entry().location).port, httpPort)
    runLabScript('gateway.sh', ['set-http-port', '5002'])
    try {
      await mapOnce(24_001)
      const moved = entry()
      assert.equal(new URL(moved.location).port, '5002', 'only SSDP could have told us the new port')
      assert.equal(new URL(moved.controlUrl).port, '5002')
    } finally {
      runLabScript('gateway.sh', ['set-http-port', httpPort])
    }
  })

  it('an entry edited to name another host is ignored: that host never hears from us', async () => {
    // The other LAN host listens where the edited entry points, and reports any connection.
    const listener = spawn('ip', ['netns', 'exec', lab.lan2Namespace, 'python3', '-u', '-c',
      `import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', ${httpPort})); s.listen(8)
print('listening', flush=True)
while True:
    c, a = s.accept(); print('connection from', a[0], flush=True); c.close()`], { stdio: ['ignore', 'pipe', 'pipe'] })
    let heard = ''
    listener.stdout.on('data', (chunk: Buffer) => { heard += chunk.toString() })
    try {
      const started = Date.now()
      while (!heard.includes('listening') && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 50))
      assert.ok(heard.includes('listening'), 'the decoy listener started')
      const other = `http://${lab.lan2Address}:${httpPort}`
      writeFileSync(file, JSON.stringify({ version: 1, gateways: { [key]: { location: `${other}/rootDesc.xml`, serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2', controlUrl: `${other}/ctl/IPConn`, savedAt: Date.now() } } }))
      await mapOnce(24_002)
      assert.ok(!heard.includes('connection'), `the host the edited entry named was contacted: ${heard}`)
      assert.equal(new URL(entry().location).hostname, lab.gatewayLanAddress, 'the gateway found through SSDP replaced the edited entry')
    } finally {
      listener.kill()
    }
  })
})
