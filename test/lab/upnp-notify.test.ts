import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Agent, gatewayHolds, lab, labSuite, runLabScript, WanProber } from '../helpers/lab.js'

// miniupnpd multicasts ssdp:byebye when it stops and ssdp:alive with a new BOOTID.UPNP.ORG when
// it starts. The mapping's renewal is 200 s away (mappingDuration 600 s) and the address is not
// re-checked (cacheTime 600 s), so only the NOTIFY can bring it back within the limit below. The
// time each recovery took is printed (the target: within 1 s; was ~2.3 s through the
// check before the next renewal); it is not asserted, the machine is shared.
const SLOW = { protocols: ['upnp'], mappingDuration: 600_000, cacheTime: 600_000, networkCheckInterval: 600_000 }
const RESTARTS = 5

labSuite('lab: UPnP gateway restarts heard through SSDP NOTIFY', { mode: 'all', profile: 'stock' }, () => {
  it('upnp: restarted with its rules flushed, the mapping is back long before any renewal', async (t) => {
    const agent = new Agent(lab.lanNamespace, 'map-agent.ts', { transport: 'tcp', port: 25_000, discover: SLOW })
    const prober = new WanProber()
    try {
      const mapped = await agent.next('mapped')
      const port = mapped.port as number
      const figures: number[] = []
      for (let restart = 0; restart < RESTARTS; restart++) {
        const from = agent.events.length
        // BOOTID is the daemon's start time in seconds: a restart in the same second keeps it,
        // and is still heard through the byebye that precedes it. Both paths get exercised.
        const started = Date.now()
        runLabScript('gateway.sh', ['restart', '--flush'])
        const restartMs = Date.now() - started
        const afterRestart = await prober.untilReachable('tcp', lab.gatewayWanAddress, () => port, 15_000)
        figures.push(restartMs + afterRestart)
        const reset = await agent.next('gateway-reset', 15_000, from)
        assert.match(String(reset.reason), /SSDP/, `the reset came from something else: ${String(reset.reason)}`)
        assert.equal(agent.since(from, 'lost').length, 0)
        t.diagnostic(`restart ${restart + 1}: reachable again ${figures.at(-1)} ms after the restart began (\`gateway.sh restart --flush\` took ${restartMs} ms of it); ${String(reset.reason)}`)
        await new Promise((resolve) => setTimeout(resolve, 600))
      }
      const sorted = [...figures].sort((a, b) => a - b)
      t.diagnostic(`upnp restart (stop, flush, start) → reachable: median ${sorted[Math.floor(sorted.length / 2)]} ms, worst ${sorted.at(-1)} ms over ${RESTARTS} restarts (target: within 1 000 ms)`)
      await agent.exitCleanly()
      assert.equal(gatewayHolds('tcp', port), false, 'close() deleted the mapping')
    } finally {
      prober.close()
      agent.kill()
    }
  })
})
