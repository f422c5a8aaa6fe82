import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { after, describe, it } from 'node:test'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { ComponentLogger, Logger, PeerId } from '@libp2p/interface'
import { serviceCapabilities, serviceDependencies } from '@libp2p/interface'
import { InvalidArgumentError } from '../../src/index.js'
import { natMapper, type NatMapperInit, type NatMapperService } from '../../src/libp2p/index.js'
import { listenPorts } from '../../src/libp2p/listen-addresses.js'
import { FakePcpGateway } from '../helpers/fake-pcp-gateway.js'

// The natmapper/libp2p service against a real natmapper NAT driving a fake PCP/NAT-PMP gateway on
// loopback, with a fake libp2p address manager that keeps the announced state, so each test
// checks what a node would announce after each thing the gateway does.

/** The address manager's side: transport addresses in, announced and confirmed addresses out. */
class FakeAddressManager {
  transport: Multiaddr[] = []
  /** "internal host:port/protocol -> external address:port" for each public address mapping. */
  readonly mappings = new Set<string>()
  readonly confirmed = new Set<string>()
  readonly calls: string[] = []

  /**
   * libp2p's IP mappings with autonat's verdict, as its address manager keeps them: unverified with
   * `expires` 0 when added, verified by confirmObservedAddr, and unverified again with a retry
   * time by removeObservedAddr (what autonat calls when peers cannot dial the address back).
   */
  readonly ipMappings = new Map<string, { multiaddr: Multiaddr, verified: boolean, expires: number }>()

  getAddressesWithMetadata (): Array<{ multiaddr: Multiaddr, type: string, verified?: boolean, expires?: number }> {
    return [...this.transport.map((ma) => ({ multiaddr: ma, type: 'transport' })),
      // An observed address on the same host and port must not be mapped again.
      { multiaddr: multiaddr('/ip4/127.0.0.1/tcp/4999'), type: 'observed' },
      ...[...this.ipMappings.values()].map((each) => ({ ...each, type: 'ip-mapping' }))]
  }

  addPublicAddressMapping (internalIp: string, internalPort: number, externalIp: string, externalPort = internalPort, protocol: 'tcp' | 'udp' = 'tcp'): void {
    const entry = `${internalIp}:${internalPort}/${protocol} -> ${externalIp}:${externalPort}`
    this.calls.push(`add ${entry}`)
    assert.ok(!this.mappings.has(entry), `announced twice: ${entry}`)
    this.mappings.add(entry)
    this.ipMappings.set(entry, { multiaddr: multiaddr(`/ip4/${externalIp}/${protocol}/${externalPort}`), verified: false, expires: 0 })
  }

  removePublicAddressMapping (internalIp: string, internalPort: number, externalIp: string, externalPort = internalPort, protocol: 'tcp' | 'udp' = 'tcp'): void {
    const entry = `${internalIp}:${internalPort}/${protocol} -> ${externalIp}:${externalPort}`
    this.calls.push(`remove ${entry}`)
    assert.ok(this.mappings.delete(entry), `withdrew what was not announced: ${entry}`)
    this.ipMappings.delete(entry)
  }

  confirmObservedAddr (addr: Multiaddr): void {
    this.calls.push(`confirm ${addr.toString()}`)
    this.confirmed.add(addr.toString())
    for (const each of this.ipMappings.values()) {
      if (each.multiaddr.equals(addr)) Object.assign(each, { verified: true, expires: Date.now() + 3_600_000 })
    }
  }

  removeObservedAddr (addr: Multiaddr): void {
    this.calls.push(`unconfirm ${addr.toString()}`)
    this.confirmed.delete(addr.toString())
    for (const each of this.ipMappings.values()) {
      if (each.multiaddr.equals(addr)) Object.assign(each, { verified: false, expires: Date.now() + 60_000 })
    }
  }
}

class FakeLogger implements ComponentLogger {
  readonly lines: string[] = []
  forComponent (name: string): Logger {
    const log = (level: string) => (format: string, ...args: unknown[]): void => { this.lines.push(`${level} ${name} ${format} ${args.map(String).join(' ')}`) }
    return Object.assign(log('log'), { error: log('error'), trace: log('trace'), newScope: () => this.forComponent(name), enabled: true }) as unknown as Logger
  }
}

interface Rig {
  gateway: FakePcpGateway
  addresses: FakeAddressManager
  events: EventTarget
  logger: FakeLogger
  service: NatMapperService
}

let nextHost = 60
const rigs: Rig[] = []
after(async () => {
  await Promise.all(rigs.map(async (rig) => { await rig.service.stop(); await rig.gateway.close() }))
})

async function startRig (transport: string[], init: NatMapperInit = {}, externalAddress = '11.77.0.1'): Promise<Rig> {
  const gateway = await FakePcpGateway.start({ address: `127.0.0.${nextHost++}`, externalAddress })
  const addresses = new FakeAddressManager()
  addresses.transport = transport.map((ma) => multiaddr(ma))
  const events = new EventTarget()
  const logger = new FakeLogger()
  const service = natMapper({ family: 'IPv4', gateway: gateway.address, autoConfirmAddress: true, ...init })({
    peerId: { toString: () => '12D3KooWFake' } as unknown as PeerId,
    nodeInfo: { name: 'test-node', version: '1.0.0', userAgent: 'test' },
    logger,
    addressManager: addresses,
    events
  })
  const rig = { gateway, addresses, events, logger, service }
  rigs.push(rig)
  await service.start()
  service.afterStart()
  return rig
}

async function waitUntil (what: string, condition: () => boolean, limit = 20_000): Promise<void> {
  const deadline = Date.now() + limit
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${limit} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const sorted = (set: Set<string>): string[] => [...set].sort()

describe('natmapper/libp2p service with a fake address manager', () => {
  it('maps each eligible listen port and announces and confirms its external address', async () => {
    const { addresses, gateway, service } = await startRig([
      '/ip4/127.0.0.1/tcp/4001',
      '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWFake', // the same port again: one mapping
      '/ip4/127.0.0.1/tcp/4002/ws',
      '/ip4/127.0.0.1/udp/4003/quic-v1',
      '/ip4/127.0.0.1/udp/4004/webrtc-direct', // not a transport a port mapping serves
      '/ip4/192.0.2.9/tcp/4005', // another interface: this gateway cannot forward there
      '/ip6/::1/tcp/4006'
    ])
    await waitUntil('three announcements', () => addresses.mappings.size === 3)
    assert.deepEqual(sorted(addresses.mappings), [
      '127.0.0.1:4001/tcp -> 11.77.0.1:4001',
      '127.0.0.1:4002/tcp -> 11.77.0.1:4002',
      '127.0.0.1:4003/udp -> 11.77.0.1:4003'
    ])
    assert.deepEqual(sorted(addresses.confirmed), ['/ip4/11.77.0.1/tcp/4001', '/ip4/11.77.0.1/tcp/4002', '/ip4/11.77.0.1/udp/4003'])
    assert.deepEqual([...gateway.mappings.values()].map((m) => `${m.protocol} ${m.internalPort}`).sort(), ['tcp 4001', 'tcp 4002', 'udp 4003'])
    assert.equal(service.nats[0]?.type, 'pcp')
  })

  it('without autoConfirmAddress it announces unconfirmed and depends on autonat', async () => {
    const { addresses, service } = await startRig(['/ip4/127.0.0.1/tcp/4011'], { autoConfirmAddress: false })
    await waitUntil('announced', () => addresses.mappings.size === 1)
    assert.equal(addresses.confirmed.size, 0)
    assert.deepEqual(service[serviceDependencies], ['@libp2p/autonat'])
    assert.deepEqual(service[serviceCapabilities], ['@libp2p/nat-traversal'])
  })

  // js-libp2p 3's autonat has no event: it calls removeObservedAddr() on an address peers cannot
  // dial back, which fires self:peer:update when that address was verified before.
  it('autonat finds a mapped address unreachable: the mapping is recreated once, and the log says so', async () => {
    const { addresses, events, gateway, logger } = await startRig(['/ip4/127.0.0.1/tcp/4015'], { autoConfirmAddress: false })
    await waitUntil('announced', () => addresses.mappings.size === 1)
    const external = multiaddr('/ip4/11.77.0.1/tcp/4015')
    addresses.confirmObservedAddr(external)
    events.dispatchEvent(new Event('self:peer:update'))
    await new Promise((resolve) => setTimeout(resolve, 100))
    const lifetimes = (): number[] => gateway.requests.flatMap((each) => each.protocol === 'pcp' && each.request?.opcode === 'map' ? [each.request.lifetimeSeconds] : [])
    assert.ok(!lifetimes().includes(0), 'nothing deleted while autonat says reachable')
    const held = gateway.mappings.get('tcp/4015')

    addresses.removeObservedAddr(external)
    events.dispatchEvent(new Event('self:peer:update'))
    await waitUntil('recreated', () => logger.lines.some((line) => line.includes('recreated the mapping')))
    assert.ok(logger.lines.some((line) => /autonat found %s:%d\/%s unreachable.*recreating it \(delete \+ add\) 11\.77\.0\.1 4015 tcp/.test(line)), logger.lines.join('\n'))
    assert.deepEqual(lifetimes().slice(-2), [0, 60], 'a delete, then a new MAP')
    assert.notEqual(gateway.mappings.get('tcp/4015'), held, 'a new mapping at the gateway')
    assert.deepEqual(sorted(addresses.mappings), ['127.0.0.1:4015/tcp -> 11.77.0.1:4015'], 'the same address stays announced')

    // Still unverified at the next update: not again (once per verdict, not a loop).
    events.dispatchEvent(new Event('self:peer:update'))
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(lifetimes().filter((lifetime) => lifetime === 0).length, 1)
  })

  it('with autoConfirmAddress (no autonat) an unverified address is not acted on', async () => {
    const { addresses, events, gateway } = await startRig(['/ip4/127.0.0.1/tcp/4016'])
    await waitUntil('announced', () => addresses.mappings.size === 1)
    addresses.removeObservedAddr(multiaddr('/ip4/11.77.0.1/tcp/4016'))
    events.dispatchEvent(new Event('self:peer:update'))
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.ok(!gateway.requests.some((each) => each.protocol === 'pcp' && each.request?.opcode === 'map' && each.request.lifetimeSeconds === 0))
  })

  it('maps a listen port that appears later and withdraws and deletes one that goes away', async () => {
    const { addresses, events, gateway } = await startRig(['/ip4/127.0.0.1/tcp/4021'])
    await waitUntil('first announced', () => addresses.mappings.size === 1)
    addresses.transport = [multiaddr('/ip4/127.0.0.1/tcp/4022')]
    events.dispatchEvent(new Event('transport:listening'))
    await waitUntil('the new port replaces the old one', () => addresses.mappings.has('127.0.0.1:4022/tcp -> 11.77.0.1:4022') && addresses.mappings.size === 1)
    await waitUntil('the old mapping deleted at the gateway', () => [...gateway.mappings.values()].every((m) => m.internalPort !== 4021))
  })

  it('replaces the announcement when the gateway grants another external port', async () => {
    const { addresses, gateway } = await startRig(['/ip4/127.0.0.1/tcp/4031'], { mappingDuration: 3_000 })
    await waitUntil('announced', () => addresses.mappings.size === 1)
    // The gateway restarts and now gives the port to someone else: our renewal gets 40031.
    gateway.behaviour = { grantExternalPort: () => 40_031 }
    gateway.mappings.clear()
    gateway.setEpoch(0)
    await waitUntil('the new port announced', () => addresses.mappings.has('127.0.0.1:4031/tcp -> 11.77.0.1:40031'))
    assert.deepEqual(sorted(addresses.mappings), ['127.0.0.1:4031/tcp -> 11.77.0.1:40031'])
    assert.deepEqual(sorted(addresses.confirmed), ['/ip4/11.77.0.1/tcp/40031'])
  })

  it('replaces the announcement when the gateway\'s external address changes', async () => {
    const { addresses, gateway } = await startRig(['/ip4/127.0.0.1/tcp/4041', '/ip4/127.0.0.1/udp/4042/quic-v1'], { mappingDuration: 3_000 })
    await waitUntil('announced', () => addresses.mappings.size === 2)
    gateway.externalAddress = '11.77.5.5'
    await waitUntil('both moved to the new address', () => sorted(addresses.mappings).join() ===
      ['127.0.0.1:4041/tcp -> 11.77.5.5:4041', '127.0.0.1:4042/udp -> 11.77.5.5:4042'].join())
    assert.deepEqual(sorted(addresses.confirmed), ['/ip4/11.77.5.5/tcp/4041', '/ip4/11.77.5.5/udp/4042'])
  })

  it('withdraws a lost mapping and announces it again when the gateway grants it again', async () => {
    const { addresses, gateway } = await startRig(['/ip4/127.0.0.1/tcp/4051'], { mappingDuration: 3_000 })
    await waitUntil('announced', () => addresses.mappings.size === 1)
    gateway.behaviour = { silent: true }
    await waitUntil('withdrawn once the lease ran out', () => addresses.mappings.size === 0 && addresses.confirmed.size === 0)
    gateway.behaviour = {}
    await waitUntil('announced again', () => addresses.mappings.size === 1)
    assert.deepEqual(sorted(addresses.confirmed), ['/ip4/11.77.0.1/tcp/4051'])
  })

  it('follows the NAT to another protocol (a gateway change) and announces what the new one granted', async () => {
    const { addresses, gateway, service } = await startRig(['/ip4/127.0.0.1/tcp/4061'], { mappingDuration: 3_000 })
    await waitUntil('announced', () => addresses.mappings.size === 1)
    const before = addresses.calls.length
    // PCP stops working (refused) and NAT-PMP grants another port: the NAT moves there.
    gateway.pcp = false
    gateway.behaviour = { grantExternalPort: () => 40_061 }
    gateway.mappings.clear()
    await waitUntil('moved to NAT-PMP', () => service.nats[0]?.type === 'nat-pmp', 60_000)
    await waitUntil('the new grant announced', () => addresses.mappings.has('127.0.0.1:4061/tcp -> 11.77.0.1:40061'), 30_000)
      .catch((error: unknown) => { throw new Error(`${String(error)}; calls: ${addresses.calls.join('; ')}; gateway: ${JSON.stringify([...gateway.mappings.values()].map((m) => [m.createdBy, m.externalPort]))}`) })
    assert.deepEqual(sorted(addresses.mappings), ['127.0.0.1:4061/tcp -> 11.77.0.1:40061'])
    assert.ok(addresses.calls.slice(before).includes('remove 127.0.0.1:4061/tcp -> 11.77.0.1:4061'), addresses.calls.join('\n'))
  })

  it('behind a double NAT announces nothing and logs why once', async () => {
    const { addresses, gateway, logger } = await startRig(['/ip4/127.0.0.1/tcp/4071', '/ip4/127.0.0.1/tcp/4072'], { mappingDuration: 3_000 }, '10.20.0.2')
    await waitUntil('both mapped at the gateway', () => gateway.mappings.size === 2)
    // Renewals go on (a third of 3 s): the verdict must not be logged again for each.
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    assert.equal(addresses.mappings.size, 0)
    assert.equal(addresses.calls.length, 0)
    assert.equal(logger.lines.filter((line) => line.includes('not public')).length, 1, logger.lines.join('\n'))
    // The outer NAT goes away: the same mappings now lead to a public address.
    gateway.externalAddress = '11.77.0.7'
    await waitUntil('announced once public', () => addresses.mappings.size === 2)
  })

  it('stop withdraws every announcement and deletes the mappings at the gateway', async () => {
    const { addresses, gateway, service } = await startRig(['/ip4/127.0.0.1/tcp/4081', '/ip4/127.0.0.1/udp/4082/quic-v1'])
    await waitUntil('announced', () => addresses.mappings.size === 2)
    assert.equal(gateway.mappings.size, 2)
    await service.stop()
    assert.equal(addresses.mappings.size, 0)
    assert.equal(addresses.confirmed.size, 0)
    assert.equal(gateway.mappings.size, 0, 'deleted at the gateway')
    assert.equal(service.isStarted(), false)
    await service.stop() // idempotent
  })

  it('stop while discovery still waits for a gateway ends at once', async () => {
    const { service } = await startRig(['/ip4/127.0.0.1/tcp/4091'], { gateway: '127.0.0.250', discoveryTimeout: 60_000 })
    const started = Date.now()
    await service.stop()
    assert.ok(Date.now() - started < 30_000)
    assert.equal(service.nats.length, 0)
  })
})

describe('natmapper/libp2p options', () => {
  for (const [init, name] of [
    [{ family: 'IPv5' }, 'init.family'],
    [{ gateway: '2001:db8::1' }, 'init.gateway'],
    [{ gateway6: '192.168.1.1' }, 'init.gateway6'],
    [{ gateway: 'router.local' }, 'init.gateway'],
    [{ protocols: ['upnp', 'smtp'] }, 'init.protocols'],
    [{ mappingDuration: 1_000 }, 'init.mappingDuration'],
    [{ autoConfirmAddress: 'yes' }, 'init.autoConfirmAddress'],
    [{ description: 42 }, 'init.description'],
    [{ rediscoveryInterval: Number.NaN }, 'init.rediscoveryInterval']
  ] as const) {
    it(`rejects ${JSON.stringify(init)} naming ${name}`, () => {
      assert.throws(() => natMapper(init as unknown as NatMapperInit), (error: unknown) => error instanceof InvalidArgumentError && error.message.includes(name))
    })
  }
})

describe('natmapper/libp2p listen ports', () => {
  const transport = (ma: string): { multiaddr: Multiaddr, type: string } => ({ multiaddr: multiaddr(ma), type: 'transport' })
  it('keeps TCP, WebSockets, QUIC and WebTransport on the given hosts, one per port', () => {
    const ports = listenPorts([
      transport('/ip4/192.168.1.5/tcp/1'),
      transport('/ip4/192.168.1.5/tcp/2/wss'),
      transport('/ip4/192.168.1.5/tcp/3/tls/ws'),
      transport('/ip4/192.168.1.5/udp/4/quic-v1/webtransport/certhash/uEiAkH5a4DPGKUuOBjYw0CgwjvcJCJMD2K_1aluKR_tpevQ'),
      transport('/ip4/192.168.1.5/udp/4/quic-v1'),
      transport('/ip6/2001:db8::5/tcp/6'),
      transport('/ip4/192.168.1.5/udp/7'),
      transport('/ip4/192.168.1.5/tcp/8/p2p-circuit'),
      transport('/ip4/10.9.9.9/tcp/9'),
      { multiaddr: multiaddr('/ip4/192.168.1.5/tcp/10'), type: 'ip-mapping' }
    ], new Set(['192.168.1.5', '2001:db8::5']))
    assert.deepEqual(ports.map((p) => `${p.family} ${p.host} ${p.protocol} ${p.port}`), [
      'IPv4 192.168.1.5 tcp 1', 'IPv4 192.168.1.5 tcp 2', 'IPv4 192.168.1.5 tcp 3', 'IPv4 192.168.1.5 udp 4', 'IPv6 2001:db8::5 tcp 6'
    ])
  })
})

describe('natmapper without libp2p', () => {
  it('nothing outside src/libp2p imports a libp2p package or the service, so plain users load none', () => {
    const root = new URL('../../src/', import.meta.url)
    const offenders = readdirSync(root, { recursive: true, encoding: 'utf8' })
      // compat/libp2p.ts is natmapper/libp2p itself, on Nodes before 20.19 and 22.12.
      .filter((file) => file.endsWith('.ts') && !file.startsWith('libp2p/') && file !== 'compat/libp2p.ts')
      .filter((file) => /from '(@libp2p\/|@multiformats\/|@chainsafe\/|libp2p|[./]*libp2p\/)/.test(readFileSync(new URL(file, root), 'utf8')))
    assert.deepEqual(offenders, [])
  })

  it('package.json keeps the runtime dependencies to saxes and the libp2p packages optional peers', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>, peerDependencies: Record<string, string>, peerDependenciesMeta: Record<string, { optional: boolean }>, exports: Record<string, { types: string }>
    }
    assert.deepEqual(Object.keys(pkg.dependencies), ['saxes'])
    for (const name of Object.keys(pkg.peerDependencies)) assert.equal(pkg.peerDependenciesMeta[name]?.optional, true, name)
    assert.equal(Object.keys(pkg.exports['./libp2p'] ?? {})[0], 'types', 'types first in the export map')
  })
})
