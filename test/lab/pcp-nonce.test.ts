import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { gatewayHolds, labSuite } from '../helpers/lab.js'
import { natmapper } from '../helpers/lab-cli.js'

// PCP nonces that outlive the process (issue 20): natmapper derives a mapping's nonce from a secret
// in its cache file, so a second process deletes what the first one left. miniupnpd 2.3.1 does not
// check PCP nonces for IPv4 mappings (lab/README.md), so this shows the flow on the real gateway;
// the fake gateway's tests show the check (test/unit/pcp-natpmp-quirks.test.ts).

// Stock profile: the router as shipped.
labSuite('lab: PCP mappings of an earlier process', { mode: 'pmp', profile: 'stock' }, () => {
  let cache = ''
  before(() => { cache = mkdtempSync(join(tmpdir(), 'natmapper-lab-cache-')) })
  after(() => { rmSync(cache, { recursive: true, force: true }) })

  it('map --once over PCP, then unmap --protocol pcp from another process deletes it', async () => {
    const port = 23_400
    // Both processes with the same cache file, of this test's own.
    const env = { ...process.env, XDG_CACHE_HOME: cache }
    const once = await natmapper(['map', 'udp', String(port), '--protocol', 'pcp', '--once', '--external-port', String(port)], { env })
    assert.equal(once.code, 0, once.cli.transcript())
    assert.ok(gatewayHolds('udp', port), 'left on the gateway')
    const unmap = await natmapper(['unmap', 'udp', String(port), '--protocol', 'pcp'], { env })
    assert.equal(unmap.code, 0, unmap.cli.transcript())
    assert.ok(!gatewayHolds('udp', port), 'deleted by the second process')
  })
})
