import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NatStats, ProtocolStats } from '../../src/index.js'
import { checkCounters, type AgentCounters } from '../../scripts/soak/counters.js'

// The soak's "counters" invariant, on made-up figures: what agrees passes, and each kind of
// disagreement is reported.

const none: ProtocolStats = { requests: 0, retransmissions: 0, timeouts: 0, refusals: 0, answers: [], mappingsEstablished: 0, mappingsRenewed: 0, mappingsChanged: 0, mappingsFailed: 0, mappingsLost: 0, mappingsRecovered: 0 }

function agent (pcp: Partial<ProtocolStats>, nat: Partial<NatStats>, emitted: Record<string, number>): AgentCounters {
  return {
    stats: { family: 'IPv4', type: 'pcp', gateway: '192.168.77.1', uptimeMs: 60_000, gatewayResets: 0, gatewayChanges: 0, sinceLastSuccessMs: 500, protocols: { pcp: { ...none, ...pcp }, 'nat-pmp': none, upnp: none }, ...nat },
    emitted
  }
}

const healthy = { requests: 40, answers: [{ code: 0, name: 'SUCCESS', count: 38 }], mappingsEstablished: 2, mappingsRenewed: 30, timeouts: 2, mappingsLost: 1, mappingsRecovered: 1 }
const events = { 'mapping-established': 2, 'mapping-renewed': 30, 'mapping-lost': 1, 'mapping-recovered': 1, 'gateway-reset': 1 }

function violations (counters: Record<string, AgentCounters>, kinds: string[][]): string[] {
  const found: string[] = []
  checkCounters(counters, kinds.map((each) => ({ kinds: each as never })), (detail) => { found.push(detail) })
  return found
}

describe('soak: the counters invariant', () => {
  it('counters that match the events and the faults pass', () => {
    assert.deepEqual(violations({ pcp: agent(healthy, { gatewayResets: 1 }, events) }, [['restart-flush'], ['silence-short']]), [])
  })

  it('a counter that differs from the events is reported', () => {
    assert.deepEqual(violations({ pcp: agent({ ...healthy, mappingsLost: 2 }, { gatewayResets: 1 }, events) }, []), ['pcp: mappings lost counted 2, events 1'])
  })

  it('a restart with no reset, a silence with no timeout, a move with no change are reported', () => {
    assert.deepEqual(violations({ pcp: agent({ ...healthy, timeouts: 0 }, {}, { ...events, 'gateway-reset': 0 }) }, [['restart-flush', 'silence-long'], ['gateway-switch']]), [
      'pcp: 1 gateway restart(s) applied, no reset counted',
      '1 silence(s) applied, no timeout counted',
      '1 move(s) to the second gateway applied, no gateway change counted'
    ])
  })

  it('a NAT that never talked, or not lately, is reported', () => {
    assert.deepEqual(violations({ pcp: agent({ ...healthy, requests: 0 }, { gatewayResets: 1, sinceLastSuccessMs: undefined }, events) }, []), [
      'pcp: 0 requests and 38 answers counted in a whole soak',
      'pcp: last success undefined ms ago, though every mapping was back'
    ])
  })
})
