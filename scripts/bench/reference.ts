/**
 * The reference clients, driven the way their users drive them: @achingbrain/nat-port-mapper
 * (in-process, what js-libp2p uses) and the command-line tools natpmpc (libnatpmp) and upnpc
 * (miniupnpc), timed as whole processes. Run inside the lab's LAN namespace only.
 */
import { spawnSync } from 'node:child_process'
import { pmpNat, upnpNat, type Gateway } from '@achingbrain/nat-port-mapper'
import { gatewayQuiet } from './quiet.js'

/** How long a reference client may take before the run counts as failed. */
const LIMIT_MS = 10_000

export interface Timings { discover: number, map: number }

/**
 * @achingbrain/nat-port-mapper over NAT-PMP: it has no discovery (pmpNat() takes the gateway's
 * address), so "discover" is its externalIp() exchange, the one natmapper's NAT-PMP probe makes.
 * map() asks for the external address again before it resolves (the internal host is private),
 * so discover + map is three exchanges to natmapper's two. Both measured on a fresh client.
 */
export async function achingbrainPmp (gateway: string, clientAddress: string, port: number): Promise<Timings> {
  const started = performance.now()
  const client = pmpNat(gateway, { autoRefresh: false })
  await client.externalIp({ signal: AbortSignal.timeout(LIMIT_MS) })
  const discover = performance.now() - started
  await client.stop()

  await gatewayQuiet()
  return { discover, map: await achingbrainPmpMap(gateway, clientAddress, port) }
}

/** The discover + map half of achingbrainPmp(), in ms; the unmap and stop that follow are untimed. */
export async function achingbrainPmpMap (gateway: string, clientAddress: string, port: number): Promise<number> {
  const started = performance.now()
  const client = pmpNat(gateway, { autoRefresh: false })
  await client.externalIp({ signal: AbortSignal.timeout(LIMIT_MS) })
  // Its `ttl` goes on the wire unconverted (seconds), although documented in ms: 60 is 60 s.
  await client.map(port, clientAddress, { protocol: 'tcp', ttl: 60, signal: AbortSignal.timeout(LIMIT_MS) })
  const map = performance.now() - started
  await client.unmap(port, { signal: AbortSignal.timeout(LIMIT_MS) })
  await client.stop()
  return map
}

/**
 * The first IPv4 gateway upnpNat().findGateways() yields (SSDP search and the description
 * fetched). It also yields the gateway's IPv6 side, as another gateway, when the LAN has IPv6.
 */
async function firstUpnpGateway (): Promise<Gateway> {
  const client = upnpNat({ autoRefresh: false })
  for await (const gateway of client.findGateways({ signal: AbortSignal.timeout(LIMIT_MS) })) {
    if (gateway.family === 'IPv4') return gateway
    await gateway.stop()
  }
  throw new Error('@achingbrain/nat-port-mapper found no UPnP gateway')
}

/**
 * @achingbrain/nat-port-mapper over UPnP (IGDv2 only): discover is the first gateway yielded;
 * map() is AddAnyPortMapping followed by GetExternalIPAddress. Both measured on a fresh client.
 */
export async function achingbrainUpnp (clientAddress: string, port: number): Promise<Timings> {
  const started = performance.now()
  const gateway = await firstUpnpGateway()
  const discover = performance.now() - started
  await gateway.stop()

  await gatewayQuiet()
  return { discover, map: await achingbrainUpnpMap(clientAddress, port) }
}

/** The discover + map half of achingbrainUpnp(), in ms; the unmap and stop that follow are untimed. */
export async function achingbrainUpnpMap (clientAddress: string, port: number): Promise<number> {
  const started = performance.now()
  const gateway = await firstUpnpGateway()
  await gateway.map(port, clientAddress, { protocol: 'tcp', signal: AbortSignal.timeout(LIMIT_MS) })
  const map = performance.now() - started
  await gateway.unmap(port, { signal: AbortSignal.timeout(LIMIT_MS) })
  await gateway.stop()
  return map
}

/** Wall time of a whole process, from spawn to exit, in ms. Throws unless it exits 0 (or `expectFailure`). */
export function timeProcess (command: string, args: readonly string[], expectFailure = false): number {
  const started = performance.now()
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: LIMIT_MS })
  const elapsed = performance.now() - started
  if (result.error !== undefined) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`)
  if ((result.status === 0) === expectFailure) {
    throw new Error(`${command} ${args.join(' ')} exited ${String(result.status ?? result.signal)}: ${result.stdout}${result.stderr}`)
  }
  return elapsed
}
