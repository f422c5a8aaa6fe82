import type { NatStats } from '../../src/index.js'
import type { FaultKind } from './schedule.js'

/** One soak agent's counters at the end of the run, and the events it counted itself. */
export interface AgentCounters { stats: NatStats, emitted: Record<string, number> }

/**
 * The "counters" invariant. Exact: each NAT's counters against the events it emitted. Lower
 * bounds: against the faults applied (the faults overlap, and a NAT may be on the other gateway
 * when one is restarted, so a fault's count is not an exact figure of any counter).
 */
export function checkCounters (counters: Record<string, AgentCounters>, episodes: ReadonlyArray<{ kinds: FaultKind[] }>, violate: (detail: string) => void): void {
  const applied = (...kinds: FaultKind[]): number => episodes.reduce((sum, episode) => sum + episode.kinds.filter((kind) => kinds.includes(kind)).length, 0)
  const all = Object.entries(counters)
  const sum = (stats: NatStats, pick: (protocol: NatStats['protocols']['pcp']) => number): number =>
    Object.values(stats.protocols).reduce((total, protocol) => total + pick(protocol), 0)
  for (const [name, { stats, emitted }] of all) {
    const pairs: Array<[string, number, number]> = [
      ['gateway resets', stats.gatewayResets, emitted['gateway-reset'] ?? 0],
      ['gateway changes', stats.gatewayChanges, emitted['gateway-changed'] ?? 0],
      ['mappings established', sum(stats, (p) => p.mappingsEstablished), emitted['mapping-established'] ?? 0],
      ['mappings recovered', sum(stats, (p) => p.mappingsRecovered), emitted['mapping-recovered'] ?? 0],
      ['mappings renewed', sum(stats, (p) => p.mappingsRenewed), emitted['mapping-renewed'] ?? 0],
      ['mappings changed', sum(stats, (p) => p.mappingsChanged), emitted['mapping-changed'] ?? 0],
      ['mappings failed', sum(stats, (p) => p.mappingsFailed), emitted['mapping-failed'] ?? 0],
      ['mappings lost', sum(stats, (p) => p.mappingsLost), emitted['mapping-lost'] ?? 0]
    ]
    for (const [what, counted, seen] of pairs) if (counted !== seen) violate(`${name}: ${what} counted ${counted}, events ${seen}`)
    const answers = sum(stats, (p) => p.answers.reduce((total, answer) => total + answer.count, 0))
    const requests = sum(stats, (p) => p.requests)
    if (requests === 0 || answers === 0) violate(`${name}: ${requests} requests and ${answers} answers counted in a whole soak`)
    if (stats.sinceLastSuccessMs === undefined || stats.sinceLastSuccessMs > 60_000) violate(`${name}: last success ${String(stats.sinceLastSuccessMs)} ms ago, though every mapping was back`)
    // A restart that flushes the gateway is seen (epoch, announcement, BOOTID, a missing rule), unless the NAT had moved.
    const restarts = applied('restart-flush', 'port-conflict')
    if (restarts > 0 && stats.gatewayResets === 0 && stats.gatewayChanges === 0) violate(`${name}: ${restarts} gateway restart(s) applied, no reset counted`)
  }
  const total = (pick: (stats: NatStats) => number): number => all.reduce((sum, [, { stats }]) => sum + pick(stats), 0)
  const silences = applied('silence-short', 'silence-long')
  if (silences > 0 && total((stats) => sum(stats, (p) => p.timeouts)) === 0) violate(`${silences} silence(s) applied, no timeout counted`)
  const switches = applied('gateway-switch')
  if (switches > 0 && total((stats) => stats.gatewayChanges) === 0) violate(`${switches} move(s) to the second gateway applied, no gateway change counted`)
}

