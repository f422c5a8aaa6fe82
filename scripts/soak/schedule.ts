/**
 * The soak's fault schedule: a pure function of the seed. Episode after episode, one to three
 * faults start a few seconds apart, are held for a while (overlapping), and are undone; then the
 * soak waits for every mapping to come back. The same seed gives the same episodes, so a failing
 * run is replayed with its seed.
 */
import { mixSeed, prng } from '../lib/random.js'

export const FAULT_KINDS = [
  'restart-flush', // miniupnpd restarted with its rules and lease file flushed
  'silence-short', // the gateway drops the mapping protocols for less than a lease
  'silence-long', // ... and for longer than a lease
  'wan-address', // the gateway's WAN address changes (and changes back)
  'rule-deleted', // one mapping's nft rules deleted behind miniupnpd's back
  'gateway-switch', // the LAN host's default route moves to the second gateway (and back)
  'lan-address', // the LAN host's own address changes (and changes back)
  'port-conflict', // the gateway restarts flushed, and the second LAN host grabs ports we held
  'protocol-switch', // the gateway turns NAT-PMP and PCP off (UPnP only), then on again
  'burst' // a burst of mappings opened, held briefly, closed
] as const

export type FaultKind = typeof FAULT_KINDS[number]

/** Faults that cannot overlap: they drive the same switch. */
const EXCLUSIVE: ReadonlyArray<readonly FaultKind[]> = [
  ['silence-short', 'silence-long'],
  ['gateway-switch', 'lan-address'],
  ['restart-flush', 'port-conflict', 'protocol-switch']
]

export interface PlannedFault {
  kind: FaultKind
  /** ms after the episode begins. */
  startMs: number
  /** How long it is held before being undone (0: a one-off event). */
  holdMs: number
  /** A number the fault uses for its own choices (which mapping, which address, how many). */
  pick: number
}

export interface Episode {
  index: number
  faults: PlannedFault[]
  /** Quiet time after recovery before the next episode, in ms. */
  quietMs: number
}

/** How long each kind is held, in ms, as a range; `leaseMs` is the lifetime mappings are granted. */
function holdRange (kind: FaultKind, leaseMs: number): readonly [number, number] {
  switch (kind) {
    case 'restart-flush':
    case 'rule-deleted':
      return [0, 0]
    case 'silence-short': return [0.3 * leaseMs, 0.6 * leaseMs]
    case 'silence-long': return [1.5 * leaseMs, 2.5 * leaseMs]
    case 'wan-address': return [3_000, 8_000]
    case 'port-conflict': return [3_000, 6_000]
    case 'burst': return [2_000, 6_000]
    case 'gateway-switch':
    case 'lan-address':
    case 'protocol-switch':
      return [4_000, 10_000]
  }
}

/** Episode `index` of the run with `seed`: deterministic. */
export function planEpisode (seed: number, index: number, leaseMs: number): Episode {
  const random = prng(mixSeed(seed, index))
  const below = (n: number): number => Math.floor(random() * n)
  const roll = random()
  const count = roll < 0.55 ? 1 : roll < 0.9 ? 2 : 3
  const faults: PlannedFault[] = []
  while (faults.length < count) {
    const kind = FAULT_KINDS[below(FAULT_KINDS.length)] as FaultKind
    const clashes = faults.some((fault) => fault.kind === kind || EXCLUSIVE.some((group) => group.includes(kind) && group.includes(fault.kind)))
    if (clashes) continue
    const [low, high] = holdRange(kind, leaseMs)
    faults.push({ kind, startMs: faults.length === 0 ? 0 : below(3_000), holdMs: Math.round(low + random() * (high - low)), pick: below(2 ** 30) })
  }
  return { index, faults: faults.sort((a, b) => a.startMs - b.startMs), quietMs: 2_000 + below(3_000) }
}
