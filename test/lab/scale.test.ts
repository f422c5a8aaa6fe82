import assert from 'node:assert/strict'
import { it } from 'node:test'
import { Agent, lab, labSuite, runLabScript } from '../helpers/lab.js'

// One NAT holding a thousand mappings on the real gateway through three renewal periods.
// miniupnpd re-reads its whole nftables ruleset for each request, so at a thousand rules one
// request costs it 60 to 100 ms and renewing them all takes it over a minute: a renewal period
// of two minutes (mappingDuration 6 min) is the shortest it sustains with room to spare.
const COUNT = 1_000
const MAPPING_DURATION = 360_000

// Permissive profile: the pacing above was measured under it (clean_ruleset_interval=0: miniupnpd
// never garbage-collects idle rules in the middle of the run).
labSuite('lab: scale', { mode: 'pmp', profile: 'permissive' }, () => {
  it(`${COUNT} PCP mappings on one NAT survive three renewal periods, then close cleanly`, async (t) => {
    const agent = new Agent(lab.lanNamespace, 'scale-agent.ts', { count: COUNT, firstPort: 40_000, mappingDuration: MAPPING_DURATION, periods: 3, protocol: 'pcp' })
    /** The end of what the agent wrote on stderr, for the messages of the assertions after close. */
    const agentStderr = (): string => agent.stderr.join('').slice(-2000)
    try {
      const mapped = await agent.next('mapped', 600_000)
      assert.equal(mapped.established, COUNT)
      t.diagnostic(`${COUNT} mappings created in ${String(mapped.ms)} ms`)
      const held = await agent.next('held', 3 * MAPPING_DURATION / 3 + 600_000)
      t.diagnostic(`after three periods: ${JSON.stringify(held)}`)
      assert.equal(held.established, COUNT, `none lost: ${JSON.stringify(held)}`)
      assert.equal(held.lost, 0, JSON.stringify(held))
      assert.equal(held.distinctPorts, COUNT, JSON.stringify(held))
      assert.ok((held.renewed as number) >= 2 * COUNT, `each mapping was renewed at least twice: ${JSON.stringify(held)}`)
      assert.ok((held.peakInFlight as number) <= 8, `requests in flight stayed bounded: ${JSON.stringify(held)}`)
      // The agent holds the mappings (and goes on renewing them) until told to close: counted
      // while its deletes ran, a slow moment let the first deletes in before the count.
      // miniupnpd renews a PCP mapping by deleting its rule and adding it again ("already
      // redirected ..., replacing"), and with a thousand rules the add takes it tens of ms, while
      // renewals go on all the time: one count can fall between the two (a loaded CI machine saw
      // 999). All of them held at one moment is what counts, so count again until then.
      const counts: number[] = []
      for (let tries = 0; tries < 30 && counts.at(-1) !== COUNT; tries++) {
        if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 1_000))
        counts.push(udpRulesAtGateway())
      }
      t.diagnostic(`rules counted at the gateway: ${counts.join(', ')}`)
      assert.equal(counts.at(-1), COUNT, `the gateway holds every rule (counted ${counts.join(', ')})`)
      agent.send('close')
      await agent.next('closed', 900_000)
      assert.equal(await agent.exit(), 0, `agent exit; stderr: ${agentStderr()}`)
      const left = udpRulesAtGateway()
      assert.equal(left, 0, `close() deleted every mapping (${String(left)} left; agent stderr: ${agentStderr()})`)
    } finally {
      agent.kill()
    }
  })
})

/** The UDP DNAT rules the gateway holds now (lab/gateway.sh mappings). */
function udpRulesAtGateway (): number {
  return runLabScript('gateway.sh', ['mappings']).split('\n').filter((line) => line.startsWith('udp ')).length
}
