/**
 * How each fault of the soak is done to the lab, and undone. Everything goes through the lab
 * scripts or `ip -n <lab namespace>`: nothing here changes the root namespace.
 */
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { lab, labEnv, ROOT } from '../../test/helpers/lab.js'
import type { FaultKind, PlannedFault } from './schedule.js'

const run = promisify(execFile)

/** Runs lab/SCRIPT ARGS; resolves with stdout, or rejects with what it printed. */
export async function labScript (script: string, args: string[]): Promise<string> {
  const { stdout } = await run('bash', [`${ROOT}lab/${script}`, ...args], { timeout: 60_000 })
  return stdout
}

/** One DNAT rule on a gateway: "tcp 8080 192.168.77.2 8080". */
export interface GatewayRule { protocol: string, externalPort: number, internalAddress: string, internalPort: number }

export async function gatewayRules (gateway: 'gw' | 'gw2'): Promise<GatewayRule[]> {
  const text = await labScript(gateway === 'gw' ? 'gateway.sh' : 'gateway2.sh', ['mappings'])
  return text.split('\n').filter((line) => line.trim() !== '').map((line) => {
    const [protocol = '', externalPort = '0', internalAddress = '', internalPort = '0'] = line.trim().split(/\s+/)
    return { protocol, externalPort: Number(externalPort), internalAddress, internalPort: Number(internalPort) }
  })
}

/** A mapping as an agent reported it, enough to aim a fault at it. */
export interface HeldMapping { transport: 'tcp' | 'udp', externalPort: number, gateway: string }

export interface FaultContext {
  /** The mappings the agents hold now (from their last status). */
  held: () => HeldMapping[]
  /** Opens and closes the burst's mappings through an agent. */
  burst: (pick: number, open: boolean) => Promise<void>
  /** Records what a fault did, for the timeline. */
  note: (text: string) => void
}

const LAN_ADDRESS = lab.lanAddress
const MOVED_LAN_ADDRESS = '192.168.77.20'
const CONFIG = `${labEnv.LAB_RUN_DIR ?? '/run/natmapper-lab'}/miniupnpd.conf`

export interface ActiveFault { undo: () => Promise<void> }

/** Does `fault` to the lab; the result undoes it (a no-op for one-off events). */
export async function applyFault (fault: PlannedFault, context: FaultContext): Promise<ActiveFault> {
  const nothing = { undo: async () => {} }
  switch (fault.kind) {
    case 'restart-flush':
      await labScript('gateway.sh', ['restart', '--flush'])
      return nothing
    case 'silence-short':
    case 'silence-long':
      await labScript('gateway.sh', ['block'])
      return { undo: async () => { await labScript('gateway.sh', ['unblock']) } }
    case 'wan-address': {
      const address = `11.77.0.${10 + (fault.pick % 240)}`
      await labScript('gateway.sh', ['set-wan-ip', `${address}/24`])
      context.note(`WAN address now ${address}`)
      return { undo: async () => { await labScript('gateway.sh', ['set-wan-ip', `${lab.gatewayWanAddress}/24`]) } }
    }
    case 'rule-deleted': {
      const candidates = context.held().filter((mapping) => mapping.gateway === lab.gatewayLanAddress && mapping.externalPort > 0)
      const target = candidates[fault.pick % Math.max(candidates.length, 1)]
      if (target === undefined) {
        context.note('no mapping on the gateway to delete')
        return nothing
      }
      try {
        await labScript('gateway.sh', ['drop-mapping', target.transport, String(target.externalPort)])
        context.note(`deleted the rules of ${target.transport} ${target.externalPort}`)
      } catch {
        context.note(`no rule matched ${target.transport} ${target.externalPort}`)
      }
      return nothing
    }
    case 'gateway-switch':
      await labScript('lan-route.sh', ['gw2'])
      return { undo: async () => { await labScript('lan-route.sh', ['gw']) } }
    case 'lan-address':
      await moveLanAddress(LAN_ADDRESS, MOVED_LAN_ADDRESS)
      return { undo: async () => { await moveLanAddress(MOVED_LAN_ADDRESS, LAN_ADDRESS) } }
    case 'port-conflict': {
      const ports = context.held().filter((mapping) => mapping.gateway === lab.gatewayLanAddress && mapping.externalPort > 0)
      const chosen = rotate(ports, fault.pick).slice(0, 3)
      await labScript('gateway.sh', ['restart', '--flush'])
      // The other host asks at once, racing our clients' repair: whoever asks first gets the port.
      const taken: HeldMapping[] = []
      await Promise.all(chosen.map(async (mapping) => {
        if (await upnpcOnLan2(['-a', lab.lan2Address, String(mapping.externalPort), String(mapping.externalPort), mapping.transport.toUpperCase(), '3600'])) taken.push(mapping)
      }))
      context.note(`second LAN host took ${taken.length} of ${chosen.length} ports we held: ${taken.map((each) => `${each.transport} ${each.externalPort}`).join(', ')}`)
      return {
        undo: async () => {
          await Promise.all(taken.map(async (mapping) => { await upnpcOnLan2(['-d', String(mapping.externalPort), mapping.transport.toUpperCase()]) }))
        }
      }
    }
    case 'protocol-switch':
      setNatPmp(false)
      await labScript('gateway.sh', ['restart'])
      return {
        undo: async () => {
          setNatPmp(true)
          await labScript('gateway.sh', ['restart'])
        }
      }
    case 'burst':
      await context.burst(fault.pick, true)
      return { undo: async () => { await context.burst(fault.pick, false) } }
  }
}

/** Puts everything back as the soak began, whatever faults were active (after a failure). */
export async function restoreLab (): Promise<void> {
  setNatPmp(true)
  const steps: Array<[string, string[]]> = [['gateway.sh', ['unblock']], ['gateway.sh', ['set-wan-ip', `${lab.gatewayWanAddress}/24`]], ['lan-route.sh', ['gw']]]
  for (const [script, args] of steps) await labScript(script, args).catch(() => {})
  await moveLanAddress(MOVED_LAN_ADDRESS, LAN_ADDRESS).catch(() => {})
}

/**
 * The LAN host gets a new address on the same subnet (a new DHCP lease): the new one is added
 * first, promoted when the old one goes (so routes survive), and the default route is restated.
 */
async function moveLanAddress (from: string, to: string): Promise<void> {
  const ns = lab.lanNamespace
  const device = labEnv.LAB_LAN_IF ?? 'lan0'
  const prefix = labEnv.LAB_LAN_PREFIX ?? '24'
  const { stdout } = await run('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', device])
  if (!stdout.includes(`inet ${from}/`)) return
  const { stdout: route } = await run('ip', ['-n', ns, 'route', 'show', 'default'])
  const via = /via (\S+)/.exec(route)?.[1] ?? lab.gatewayLanAddress
  await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.${device}.promote_secondaries=1`])
  await run('ip', ['-n', ns, 'addr', 'add', `${to}/${prefix}`, 'dev', device]).catch(() => {})
  await run('ip', ['-n', ns, 'addr', 'del', `${from}/${prefix}`, 'dev', device])
  await run('ip', ['-n', ns, 'route', 'replace', 'default', 'via', via, 'dev', device])
}

/** miniupnpd 2.3.1 has one switch for NAT-PMP and PCP; the fault flips it in the running config. */
function setNatPmp (enabled: boolean): void {
  const text = readFileSync(CONFIG, 'utf8')
  writeFileSync(CONFIG, text.replace(/^enable_natpmp=.*$/m, `enable_natpmp=${enabled ? 'yes' : 'no'}`))
}

async function upnpcOnLan2 (args: string[]): Promise<boolean> {
  try {
    const { stdout } = await run('ip', ['netns', 'exec', lab.lan2Namespace, 'upnpc', '-u', labEnv.LAB_ROOTDESC_URL ?? 'http://192.168.77.1:5000/rootDesc.xml', ...args], { timeout: 15_000 })
    return !/failed|error/i.test(stdout)
  } catch {
    return false
  }
}

function rotate<T> (items: readonly T[], by: number): T[] {
  if (items.length === 0) return []
  const at = by % items.length
  return [...items.slice(at), ...items.slice(0, at)]
}

export type { FaultKind }
