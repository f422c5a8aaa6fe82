import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { createInterface } from 'node:readline'
import { after, describe, it } from 'node:test'
import { FakePcpGateway } from '../helpers/fake-pcp-gateway.js'
import { ROOT } from '../helpers/lab.js'

// The natmapper executable as a process: bad usage (never reaches the network), and every command
// against the fake PCP/NAT-PMP gateway on loopback. The CLI runs under the network guard too, and
// always with --gateway 127.0.2.x: it never looks for the machine's own gateway.
// Loopback addresses 127.0.2.x belong to this file.

let nextHost = 10
const gateways: FakePcpGateway[] = []
async function fakeGateway (options: { pcp?: boolean, natPmp?: boolean } = {}): Promise<FakePcpGateway> {
  const gateway = await FakePcpGateway.start({ address: `127.0.2.${nextHost++}`, externalAddress: '11.77.0.1', ...options })
  gateways.push(gateway)
  return gateway
}
after(async () => { await Promise.all(gateways.map(async (gateway) => { await gateway.close() })) })

class Cli {
  readonly stdout: string[] = []
  readonly stderr: string[] = []
  readonly #child: ChildProcessWithoutNullStreams
  readonly #exited: Promise<number | null>

  constructor (args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', '--import', './test/helpers/network-guard.ts', 'src/cli/main.ts', ...args], { cwd: ROOT, env })
    createInterface({ input: this.#child.stdout }).on('line', (line) => { this.stdout.push(line) })
    createInterface({ input: this.#child.stderr }).on('line', (line) => { this.stderr.push(line) })
    this.#exited = new Promise((resolve) => this.#child.on('close', resolve))
  }

  get events (): Array<Record<string, unknown>> {
    return this.stdout.map((line) => JSON.parse(line) as Record<string, unknown>)
  }

  async until (what: string, condition: () => boolean, limit = 20_000): Promise<void> {
    const deadline = Date.now() + limit
    while (!condition()) {
      if (Date.now() > deadline || this.#child.exitCode !== null) throw new Error(`never ${what}: ${this.transcript()}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  signal (signal: NodeJS.Signals): void { this.#child.kill(signal) }

  async exit (limit = 60_000): Promise<number | null> {
    const timer = new Promise<'hung'>((resolve) => { setTimeout(() => { resolve('hung') }, limit).unref() })
    const code = await Promise.race([this.#exited, timer])
    if (code === 'hung') {
      this.#child.kill('SIGKILL')
      throw new Error(`natmapper did not exit: ${this.transcript()}`)
    }
    return code
  }

  transcript (): string {
    return `stdout:\n${this.stdout.join('\n')}\nstderr:\n${this.stderr.join('\n')}`
  }
}

async function natmapper (args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null, stdout: string[], stderr: string[], events: () => Array<Record<string, unknown>>, transcript: string }> {
  const cli = new Cli(args, env)
  const code = await cli.exit()
  return { code, stdout: cli.stdout, stderr: cli.stderr, events: () => cli.events, transcript: cli.transcript() }
}

describe('cli process: bad usage exits 2 with one line and the usage, before any network', { concurrency: true }, () => {
  const cases: Array<[string[], string]> = [
    [[], 'natmapper: no command given'],
    [['frobnicate'], 'natmapper: unknown command "frobnicate" (commands: discover, ip, map, unmap, list, serve, status, help)'],
    [['map', 'tcp', '99999'], 'natmapper: bad internal port "99999": expected a whole number from 1 to 65535'],
    [['map', 'icmp', '80'], 'natmapper: bad protocol "icmp": expected tcp or udp'],
    [['unmap', 'udp'], 'natmapper: missing <internal-port>'],
    [['ip', '--gateway', 'my-router'], 'natmapper: bad --gateway "my-router": expected an IP address'],
    [['discover', '--protocol', 'smtp'], 'natmapper: bad --protocol "smtp": expected pcp, nat-pmp, upnp'],
    [['list', '--bogus'], 'natmapper: unknown option --bogus'],
    [['ip', '--once'], 'natmapper: --once is not an option of ip'],
    [['map', 'udp', '53', '--duration', '1'], 'natmapper: bad --duration "1": expected a whole number of seconds from 3 to 604800']
  ]
  for (const [args, message] of cases) {
    it(`natmapper ${args.join(' ')}`, async () => {
      const result = await natmapper(args)
      assert.equal(result.code, 2, result.transcript)
      assert.deepEqual(result.stdout, [])
      assert.equal(result.stderr[0], message)
      assert.match(result.stderr[1] ?? '', /^Usage: natmapper /)
      assert.match(result.stderr[2] ?? '', /^Run "natmapper help/)
      assert.equal(result.stderr.length, 3)
    })
  }

  it('natmapper frobnicate --help: the unknown command, not the general help', async () => {
    const result = await natmapper(['frobnicate', '--help'])
    assert.equal(result.code, 2, result.transcript)
    assert.deepEqual(result.stdout, [])
    assert.match(result.stderr[0] ?? '', /^natmapper: unknown command "frobnicate" \(commands: /)
    assert.match(result.stderr[1] ?? '', /^Usage: natmapper /)
  })

  it('help and --version exit 0 on stdout', async () => {
    const help = await natmapper(['help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout.join('\n'), /Exit codes:/)
    const mapHelp = await natmapper(['map', '--help'])
    assert.equal(mapHelp.code, 0)
    assert.match(mapHelp.stdout[0] ?? '', /^Usage: natmapper map </)
    const version = await natmapper(['--version'])
    assert.equal(version.code, 0)
    assert.match(version.stdout[0] ?? '', /^natmapper \d+\.\d+\.\d+/)
  })
})

describe('cli process: against a fake gateway on loopback', () => {
  it('discover and ip, human and --json', async () => {
    const gateway = await fakeGateway()
    const discover = await natmapper(['discover', '--gateway', gateway.address, '--protocol', 'pcp,nat-pmp'])
    assert.equal(discover.code, 0, discover.transcript)
    assert.deepEqual(discover.stdout.map((line) => line.replace(/answered in .*/, 'answered in T')), [
      `gateway          ${gateway.address} (from --gateway)`,
      'local address    127.0.0.1',
      'pcp              yes, answered in T',
      'nat-pmp          yes, answered in T',
      'using            pcp',
      'external address 11.77.0.1, public: reachable from the internet through this gateway'
    ])
    const ip = await natmapper(['ip', '--gateway', gateway.address, '--protocol', 'nat-pmp', '--json'])
    assert.equal(ip.code, 0, ip.transcript)
    assert.deepEqual(ip.events(), [{ event: 'external-address', address: '11.77.0.1', scope: 'public', publiclyRoutable: true, type: 'nat-pmp', gateway: gateway.address }])
  })

  it('map held: renewals, then SIGTERM deletes the mapping at the gateway and exits 0', async () => {
    const gateway = await fakeGateway()
    const cli = new Cli(['map', 'udp', '4100', '--gateway', gateway.address, '--protocol', 'pcp', '--duration', '3', '--json'])
    await cli.until('renewed', () => cli.events.some((e) => e.event === 'renewed'))
    assert.equal(gateway.mappings.get('udp/4100')?.externalPort, 4100)
    cli.signal('SIGTERM')
    assert.equal(await cli.exit(), 0, cli.transcript())
    assert.deepEqual(cli.events.map((e) => e.event).filter((e) => e !== 'renewed'), ['discovered', 'established', 'closing', 'closed'])
    assert.equal(cli.events.at(-1)?.deleted, true)
    assert.equal(gateway.mappings.has('udp/4100'), false, 'deleted at the gateway')
  })

  it('map --once leaves the mapping; unmap: refused for PCP without a cache file (exit 1), done with NAT-PMP (exit 0)', async () => {
    const gateway = await fakeGateway()
    const once = await natmapper(['map', 'tcp', '4200', '--gateway', gateway.address, '--protocol', 'nat-pmp', '--once', '--external-port', '4201'])
    assert.equal(once.code, 0, once.transcript)
    assert.match(once.stdout[1] ?? '', / established: tcp 11\.77\.0\.1:\d+ -> 127\.0\.0\.1:4200 \(lease 60 s, until /)
    assert.ok(gateway.mappings.has('tcp/4200'), 'still on the gateway')

    const noCacheFile = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'HOME' && name !== 'XDG_CACHE_HOME'))
    const pcp = await natmapper(['unmap', 'tcp', '4200', '--gateway', gateway.address, '--protocol', 'pcp'], noCacheFile)
    assert.equal(pcp.code, 1, pcp.transcript)
    assert.deepEqual(pcp.stderr, ['natmapper: pcp cannot delete a mapping made by another client without its nonce (natmapper derives it from its cache file; there is none)',
      'hint: PCP cannot delete another client\'s mapping; NAT-PMP and UPnP can: --protocol nat-pmp or --protocol upnp'])

    const unmap = await natmapper(['unmap', 'tcp', '4200', '--gateway', gateway.address, '--protocol', 'nat-pmp'])
    assert.equal(unmap.code, 0, unmap.transcript)
    assert.equal(gateway.mappings.has('tcp/4200'), false)
  })

  it('PCP: unmap deletes what an earlier map --once made on this host (the nonce comes from the cache file)', async () => {
    const gateway = await fakeGateway()
    const cache = await mkdtemp(join(tmpdir(), 'natmapper-cli-'))
    try {
      const env = { ...process.env, XDG_CACHE_HOME: cache }
      const once = await natmapper(['map', 'udp', '4250', '--gateway', gateway.address, '--protocol', 'pcp', '--once'], env)
      assert.equal(once.code, 0, once.transcript)
      assert.ok(gateway.mappings.get('udp/4250')?.nonce !== undefined, 'a PCP mapping, bound to its nonce')
      const unmap = await natmapper(['unmap', 'udp', '4250', '--gateway', gateway.address, '--protocol', 'pcp'], env)
      assert.equal(unmap.code, 0, unmap.transcript)
      assert.equal(gateway.mappings.has('udp/4250'), false)
    } finally {
      await rm(cache, { recursive: true, force: true })
    }
  })

  it('the gateway says no: a refused mapping, an unsupported list, no gateway at all: exit 1', async () => {
    const gateway = await fakeGateway()
    gateway.behaviour = { resultCode: 2 }
    const refused = await natmapper(['map', 'tcp', '4300', '--gateway', gateway.address, '--protocol', 'pcp', '--json'])
    assert.equal(refused.code, 1, refused.transcript)
    const events = refused.events()
    assert.deepEqual(events.map((e) => e.event), ['discovered', 'error'])
    assert.equal((events[1]?.error as { resultName?: string }).resultName, 'NOT_AUTHORIZED')
    assert.equal(refused.stderr[0], 'natmapper: pcp gateway answered NOT_AUTHORIZED (2)')

    const list = await natmapper(['list', '--gateway', gateway.address, '--protocol', 'nat-pmp'])
    assert.equal(list.code, 1, list.transcript)
    assert.equal(list.stderr[0], 'natmapper: nat-pmp gateways cannot list their mappings')

    // Nothing listens on 127.0.2.250: port unreachable at once.
    const none = await natmapper(['ip', '--gateway', '127.0.2.250', '--protocol', 'pcp,nat-pmp'])
    assert.equal(none.code, 1, none.transcript)
    assert.match(none.stderr[0] ?? '', /^natmapper: no NAT gateway found \(/)
    assert.match(none.stderr[1] ?? '', /^hint: /)
  })

  it('--verbose prints each request and reply, decoded, on stderr (JSON with --json)', async () => {
    const gateway = await fakeGateway()
    const verbose = await natmapper(['ip', '--gateway', gateway.address, '--protocol', 'nat-pmp', '--verbose'])
    assert.equal(verbose.code, 0, verbose.transcript)
    assert.deepEqual(verbose.stdout, ['11.77.0.1'])
    assert.deepEqual(verbose.stderr.slice(0, 2), [
      `-> nat-pmp ${gateway.address}:5351 external address request`,
      `<- nat-pmp ${gateway.address}:5351 external address response SUCCESS (0), epoch ${verbose.stderr[1]?.match(/epoch (\d+)/)?.[1] ?? '?'}: 11.77.0.1`
    ])
    const json = await natmapper(['ip', '--gateway', gateway.address, '--protocol', 'pcp', '--verbose', '--json'])
    assert.equal(json.code, 0, json.transcript)
    const wire = json.stderr.map((line) => JSON.parse(line) as Record<string, unknown>)
    assert.ok(wire.every((event) => event.event === 'wire'))
    // PCP's NAT asks the same gateway's NAT-PMP for the address (no PCP MAP as a probe).
    assert.ok(wire.some((event) => event.protocol === 'pcp' && event.direction === 'receive' && event.opcode === 'announce'), json.stderr.join('\n'))
    assert.ok(wire.some((event) => event.protocol === 'nat-pmp' && event.direction === 'receive' && event.externalAddress === '11.77.0.1'), json.stderr.join('\n'))
    assert.ok(!wire.some((event) => event.opcode === 'map'), json.stderr.join('\n'))
  })
})
