import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { it } from 'node:test'
import { Agent, gatewayHolds, lab, labSuite, ROOT, runLabScript } from '../helpers/lab.js'
import { natmapper } from '../helpers/lab-cli.js'

// What another host on the LAN can do to natmapper's mappings (issue 20): speak for the gateway
// with spoofed announcements, and hold a port natmapper is told to delete.

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** nm-lan2 multicasts PCP and NAT-PMP announcements "from" the gateway (192.168.77.1:5351), epoch 0, `rate` a second. */
async function spoofAnnouncements (seconds: number, rate = 10): Promise<string> {
  const child = spawn('ip', ['netns', 'exec', lab.lan2Namespace, 'python3', `${ROOT}lab/tools/spoof_announce.py`,
    '--source', lab.gatewayLanAddress, '--epoch', '0', '--rate', String(rate), '--seconds', String(seconds)])
  let output = ''
  child.stdout.on('data', (data: Buffer) => { output += data.toString() })
  child.stderr.on('data', (data: Buffer) => { output += data.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  assert.equal(code, 0, `spoof_announce.py failed: ${output}`)
  return output.trim()
}

/** NAT-PMP/PCP datagrams the gateway received from the LAN while `during` ran. */
async function requestsAtGateway (during: () => Promise<unknown>): Promise<number> {
  runLabScript('gateway.sh', ['count-requests', '--reset'])
  await during()
  return Number(runLabScript('gateway.sh', ['count-requests']).trim())
}

function heldUdpRules (): number {
  return runLabScript('gateway.sh', ['mappings']).split('\n').filter((line) => line.startsWith('udp ')).length
}

const COUNT = 100
const FLOOD_SECONDS = 10

// Stock profile (the router as shipped), twice: with miniupnpd's sample config's system uptime, its
// epoch continues across a restart (only its announcement says it restarted); with a daemon
// uptime, the epoch starts at 0 again, as RFC 6887 §8.5 asks of a gateway that lost its state.
for (const uptime of ['system', 'daemon'] as const) labSuite(`lab: a LAN host that speaks for the gateway (spoofed announcements), uptime ${uptime}`, { mode: 'pmp', profile: 'stock' }, () => {
  it(`${FLOOD_SECONDS} s of spoofed announcements, 10 a second, at a NAT holding ${COUNT} PCP mappings cost the gateway a few requests a second; a real restart meanwhile is repaired`, async (t) => {
    // Renewals every 2 minutes: none fall in the windows counted below.
    const agent = new Agent(lab.lanNamespace, 'hold-agent.ts', { count: COUNT, firstPort: 30_000, transport: 'udp', discover: { protocols: ['pcp'], mappingDuration: 360_000 } })
    try {
      const mapped = await agent.next('mapped', 60_000)
      assert.equal(mapped.established, COUNT)
      assert.equal(heldUdpRules(), COUNT)

      const quiet = await requestsAtGateway(async () => { await sleep(FLOOD_SECONDS * 1_000) })
      let spoofed = ''
      const flooded = await requestsAtGateway(async () => { spoofed = await spoofAnnouncements(FLOOD_SECONDS) })
      const status = await agent.ask('status', 'status')
      t.diagnostic(`${spoofed}; requests at the gateway in ${FLOOD_SECONDS} s: ${quiet} without the flood, ${flooded} with it; the NAT reported ${String(status.resets)} resets`)
      assert.ok(flooded - quiet <= 3 * FLOOD_SECONDS, `the flood cost the gateway ${flooded - quiet} requests in ${FLOOD_SECONDS} s (at most 3 a second)`)
      assert.equal(status.resets, 0, 'no reset believed')
      assert.equal(status.established, COUNT)

      // A real restart that forgets every mapping, in the middle of another flood.
      const flood = spoofAnnouncements(FLOOD_SECONDS)
      await sleep(2_000)
      runLabScript('gateway.sh', ['restart', '--flush'])
      const restarted = Date.now()
      let held = 0
      while ((held = heldUdpRules()) < COUNT && Date.now() - restarted < 60_000) await sleep(100)
      const repairedMs = Date.now() - restarted
      t.diagnostic(`after gateway.sh restart --flush during the flood: ${held} of ${COUNT} mappings back at the gateway in ${repairedMs} ms`)
      assert.equal(held, COUNT, 'every mapping is back')
      await flood
      const after = await agent.ask('status', 'status')
      assert.ok((after.resets as number) >= 1, 'the restart was recognised')
      assert.deepEqual(after.ports, mapped.ports, 'on the same external ports')
      agent.send('exit')
      await agent.next('closed', 60_000)
      assert.equal(await agent.exit(), 0)
    } finally {
      agent.kill()
    }
  })
}, ['--uptime', uptime])

// A router with secure mode off (stock-insecure): UPnP lets any LAN host delete any entry.
labSuite('lab: deleting someone else\'s mapping (secure_mode=no)', { mode: 'all', profile: 'stock-insecure' }, () => {
  it('natmapper unmap of a port the other LAN host holds exits 1, says whose it is, and leaves the entry; --force deletes it', async () => {
    const port = 9_100
    const theirs = await natmapper(['map', 'tcp', String(port), '--once', '--protocol', 'upnp', '--duration', '600'], { namespace: lab.lan2Namespace })
    assert.equal(theirs.code, 0, theirs.cli.transcript())
    const entry = `tcp ${port} ${lab.lan2Address} ${port}`
    assert.ok(runLabScript('gateway.sh', ['mappings']).includes(entry), 'nm-lan2 holds the port')

    const refused = await natmapper(['unmap', 'tcp', String(port), '--protocol', 'upnp'])
    assert.equal(refused.code, 1, refused.cli.transcript())
    assert.match(refused.stderr, new RegExp(`mapped to ${lab.lan2Address.replaceAll('.', '\\.')}:${port}, not to this host \\(${lab.lanAddress.replaceAll('.', '\\.')}\\)`))
    assert.match(refused.stderr, /--force/)
    assert.ok(runLabScript('gateway.sh', ['mappings']).includes(entry), 'the entry is still there')

    const forced = await natmapper(['unmap', 'tcp', String(port), '--protocol', 'upnp', '--force'])
    assert.equal(forced.code, 0, forced.cli.transcript())
    assert.ok(!gatewayHolds('tcp', port), '--force deleted it (the router has no secure mode to stop it)')
  })
})
