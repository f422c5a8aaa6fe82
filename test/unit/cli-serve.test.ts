import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { after, describe, it } from 'node:test'
import { parseCommandLine, UsageError } from '../../src/cli/args.js'
import { metricsText, parseListenAddress } from '../../src/cli/metrics.js'
import { statusLines, statusSocketPath, type ServiceStatus } from '../../src/cli/status.js'
import { FakePcpGateway, fakeMappingKey } from '../helpers/fake-pcp-gateway.js'
import { Cli, natmapper } from '../helpers/lab-cli.js'
import { readExposition } from '../helpers/prometheus.js'

// `natmapper serve` and `natmapper status`: their arguments, the status and metrics formats, and
// the service as a process against the fake PCP gateway on loopback (127.0.4.x belongs to this
// file): a config file held, reloaded (bad and good), read through the socket, scraped, stopped.

const SCRIPT = ['--import', 'tsx', '--import', './test/helpers/network-guard.ts', 'src/cli/main.ts']

describe('serve and status: arguments', () => {
  it('serve needs --config; --metrics is a port (loopback) or an address named', () => {
    assert.deepEqual(parseCommandLine(['serve', '--config', '/etc/natmapper.conf']),
      { name: 'serve', options: { families: ['IPv4'], json: false, verbose: false }, config: '/etc/natmapper.conf' })
    const withMetrics = parseCommandLine(['serve', '--config=x', '--metrics', '9464', '--protocol', 'pcp', '--json'])
    assert.deepEqual(withMetrics, { name: 'serve', options: { families: ['IPv4'], json: true, verbose: false, protocols: ['pcp'] }, config: 'x', metrics: { host: '127.0.0.1', port: 9464 } })
    assert.deepEqual(parseListenAddress('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464 })
    assert.deepEqual(parseListenAddress('[::1]:9464'), { host: '::1', port: 9464 })
    assert.deepEqual(parseCommandLine(['status', '--json']), { name: 'status', options: { families: ['IPv4'], json: true, verbose: false } })
  })

  it('bad usage is one line', () => {
    const refused: Array<[string[], string]> = [
      [['serve'], 'missing --config <file>'],
      [['serve', '--config', 'x', '--metrics', 'localhost:9464'], 'bad --metrics "localhost:9464": expected PORT or HOST:PORT, with an IP address for HOST ([...] for IPv6) and a port from 1 to 65535'],
      [['serve', '--config', 'x', '--metrics', '70000'], 'bad --metrics "70000": expected PORT or HOST:PORT, with an IP address for HOST ([...] for IPv6) and a port from 1 to 65535'],
      [['serve', '--config', 'x', '--metrics', '[::g]:1'], 'bad --metrics "[::g]:1": expected PORT or HOST:PORT, with an IP address for HOST ([...] for IPv6) and a port from 1 to 65535'],
      [['serve', '--config', 'x', '--metrics', '999.1.1.1:80'], 'bad --metrics "999.1.1.1:80": "999.1.1.1" is not an IP address'],
      [['serve', '--config', 'x', '--family', 'ipv6'], '--family is not an option of serve: each mapping names its families in the config file'],
      [['serve', '--config', 'x', 'extra'], 'unexpected argument "extra"'],
      [['map', 'tcp', '80', '--config', 'x'], '--config is not an option of map'],
      [['status', '--metrics', '1'], '--metrics is not an option of status'],
      [['status', 'now'], 'unexpected argument "now"']
    ]
    for (const [argv, message] of refused) {
      assert.throws(() => parseCommandLine(argv), (error: unknown) => error instanceof UsageError && error.message === message, `${argv.join(' ')}: ${message}`)
    }
  })

  it('the socket is in $RUNTIME_DIRECTORY (the first of several), else /run/natmapper', () => {
    assert.equal(statusSocketPath({}), '/run/natmapper/natmapper.sock')
    assert.equal(statusSocketPath({ RUNTIME_DIRECTORY: '/run/natmapper-2/' }), '/run/natmapper-2/natmapper.sock')
    assert.equal(statusSocketPath({ RUNTIME_DIRECTORY: '/run/a:/run/b' }), '/run/a/natmapper.sock')
    assert.equal(statusSocketPath({ RUNTIME_DIRECTORY: 'relative' }), '/run/natmapper/natmapper.sock')
  })
})

const SAMPLE_STATUS: ServiceStatus = {
  pid: 42,
  config: '/etc/natmapper.conf',
  startedAt: '2026-12-07T10:00:00.000Z',
  reloads: 1,
  reloadsRefused: 2,
  lastReloadError: '/etc/natmapper.conf:3: bad port "x": expected a whole number from 1 to 65535',
  mappings: [
    { name: 'web', family: 'IPv4', protocol: 'tcp', internalPort: 8080, description: 'a "quoted" \\ name', requestedExternalPort: null, established: true, externalAddress: '11.77.0.1', externalPort: 8080, leaseSecondsLeft: 95, lastError: null },
    { name: 'web', family: 'IPv6', protocol: 'tcp', internalPort: 8080, description: 'x', requestedExternalPort: null, established: true, externalAddress: '2001:db8:77::2', externalPort: 8080, leaseSecondsLeft: null, lastError: null },
    { name: 'game', family: 'IPv4', protocol: 'udp', internalPort: 27015, description: 'x', requestedExternalPort: 27016, established: false, externalAddress: null, externalPort: null, leaseSecondsLeft: null, lastError: { code: 'ERR_TIMEOUT', name: 'TimeoutError', message: 'no answer' } }
  ],
  families: [
    {
      family: 'IPv4',
      gateway: '192.168.77.1',
      type: 'pcp',
      localAddress: '192.168.77.2',
      error: null,
      stats: {
        family: 'IPv4',
        type: 'pcp',
        gateway: '192.168.77.1',
        uptimeMs: 60_000,
        gatewayResets: 1,
        gatewayChanges: 0,
        sinceLastSuccessMs: 1_500,
        protocols: {
          pcp: { requests: 10, retransmissions: 1, timeouts: 1, refusals: 0, answers: [{ code: 0, name: 'SUCCESS', count: 8 }, { code: 2, name: 'NOT_AUTHORIZED', count: 1 }], mappingsEstablished: 2, mappingsRenewed: 5, mappingsChanged: 0, mappingsFailed: 1, mappingsLost: 0, mappingsRecovered: 0 },
          'nat-pmp': { requests: 1, retransmissions: 0, timeouts: 0, refusals: 0, answers: [{ code: 0, name: 'SUCCESS', count: 1 }], mappingsEstablished: 0, mappingsRenewed: 0, mappingsChanged: 0, mappingsFailed: 0, mappingsLost: 0, mappingsRecovered: 0 },
          upnp: { requests: 0, retransmissions: 0, timeouts: 0, refusals: 0, answers: [], mappingsEstablished: 0, mappingsRenewed: 0, mappingsChanged: 0, mappingsFailed: 0, mappingsLost: 0, mappingsRecovered: 0 }
        }
      }
    },
    { family: 'IPv6', gateway: null, type: null, localAddress: null, error: { code: 'ERR_NO_DEFAULT_GATEWAY', name: 'NoDefaultGatewayError', message: 'no IPv6 default route' }, stats: null }
  ]
}

describe('serve and status: formats', () => {
  it('status as text: a line per mapping, then each family and its counters', () => {
    assert.deepEqual(statusLines(SAMPLE_STATUS), [
      'natmapper serve (pid 42) since 2026-12-07T10:00:00.000Z, config /etc/natmapper.conf; reloads 1, refused 2 (last: /etc/natmapper.conf:3: bad port "x": expected a whole number from 1 to 65535)',
      '',
      'mappings:',
      '  [web] IPv4 tcp 8080: 11.77.0.1:8080, lease 95 s left',
      '  [web] IPv6 tcp 8080: [2001:db8:77::2]:8080, permanent lease',
      '  [game] IPv4 udp 27015: not mapped, retrying; last error: no answer',
      '',
      'IPv4: gateway 192.168.77.1 (pcp), from 192.168.77.2',
      '  gateway resets 1, gateway changes 0, last success 2 s ago',
      '  pcp: requests 10, retransmissions 1, timeouts 1, refusals 0; answers: SUCCESS (0) 8, NOT_AUTHORIZED (2) 1; mappings established 2, renewed 5, changed 0, failed 1, lost 0, recovered 0',
      '  nat-pmp: requests 1, retransmissions 0, timeouts 0, refusals 0; answers: SUCCESS (0) 1; mappings established 0, renewed 0, changed 0, failed 0, lost 0, recovered 0',
      '',
      'IPv6: no gateway yet: no IPv6 default route'
    ])
  })

  it('metrics: every line in the Prometheus text format, every counter a _total, the values the status holds', () => {
    const text = metricsText(SAMPLE_STATUS)
    const { samples, types, help } = readExposition(text)
    for (const [name, type] of types) {
      assert.ok(help.has(name), `${name} has HELP`)
      assert.equal(name.endsWith('_total'), type === 'counter', `${name} is a ${type}`)
    }
    const value = (name: string, labels: Record<string, string>): number | undefined =>
      samples.find((sample) => sample.name === name && Object.entries(labels).every(([key, wanted]) => sample.labels[key] === wanted))?.value
    assert.equal(value('natmapper_mapping_established', { name: 'web', family: 'ipv4' }), 1)
    assert.equal(value('natmapper_mapping_established', { name: 'game' }), 0)
    assert.equal(value('natmapper_mapping_lease_seconds_left', { name: 'web', family: 'ipv4' }), 95)
    assert.equal(value('natmapper_mapping_lease_seconds_left', { name: 'web', family: 'ipv6' }), Infinity)
    assert.equal(value('natmapper_mapping_external_port', { name: 'game' }), undefined, 'no port while not mapped')
    assert.equal(value('natmapper_requests_total', { family: 'ipv4', protocol: 'pcp' }), 10)
    assert.equal(value('natmapper_answers_total', { family: 'ipv4', protocol: 'pcp', code: '2', result: 'NOT_AUTHORIZED' }), 1)
    assert.equal(value('natmapper_mapping_events_total', { family: 'ipv4', protocol: 'pcp', event: 'renewed' }), 5)
    assert.equal(value('natmapper_gateway_resets_total', { family: 'ipv4' }), 1)
    assert.equal(value('natmapper_gateway_up', { family: 'ipv6' }), 0)
    assert.equal(value('natmapper_seconds_since_last_success', { family: 'ipv4' }), 1.5)
    assert.equal(value('natmapper_config_reloads_refused_total', {}), 2)
    // The reader is strict: it refuses what the format forbids.
    assert.throws(() => readExposition('a 1\n# TYPE a counter\n'), /TYPE of a after its samples/)
    assert.throws(() => readExposition('a 1\nb 1\na{x="1"} 2\n'), /not together/)
    assert.throws(() => readExposition('a{x="\\q"} 1\n'), /not a sample/)
    assert.throws(() => readExposition('a 1'), /line feed/)
  })
})

describe('serve as a process, against a fake gateway', () => {
  const directory = mkdtempSync(`${tmpdir()}/natmapper-serve-`)
  after(() => { rmSync(directory, { recursive: true, force: true }) })
  const gateways: FakePcpGateway[] = []
  after(async () => { await Promise.all(gateways.map(async (gateway) => { await gateway.close() })) })

  it('holds the file\'s mappings, refuses a bad reload, applies a good one, serves status and metrics, deletes all on SIGTERM', async () => {
    const gateway = await FakePcpGateway.start({ address: '127.0.4.10', externalAddress: '11.77.0.1' })
    gateways.push(gateway)
    const config = `${directory}/natmapper.conf`
    const write = (mappings: Array<[string, 'tcp' | 'udp', number]>): void => {
      writeFileSync(config, mappings.map(([name, protocol, port]) => `[${name}]\nprotocol = ${protocol}\nport = ${port}\nfamily = ipv4\n`).join('\n'))
    }
    write([['web', 'tcp', 4080], ['game', 'udp', 4081]])
    const env = { ...process.env, RUNTIME_DIRECTORY: `${directory}/run` }
    const metricsPort = 19_000 + (process.pid % 1000)
    const cli = new Cli(['serve', '--config', config, '--gateway', gateway.address, '--metrics', String(metricsPort)], { namespace: null, script: SCRIPT, env })
    try {
      await cli.until('established both', () => cli.stdout.filter((line) => / established on /.test(line)).length === 2)
      assert.match(cli.stdout[0] ?? '', new RegExp(`^serving 2 mapping\\(s\\) from ${config}; status on ${directory}/run/natmapper.sock, metrics on http://127.0.0.1:${metricsPort}/metrics$`))
      assert.ok(cli.stdout.some((line) => line.startsWith(`IPv4: gateway ${gateway.address} (pcp), from `)), cli.transcript())
      assert.ok(cli.stdout.includes('[web] IPv4 tcp 4080: established on 11.77.0.1:4080 (pcp, lease 60 s)'), cli.transcript())
      assert.ok(cli.stdout.every((line) => !line.includes('\u001b') && !line.includes('\r')), 'no colour, no redraws')
      assert.equal(statSync(`${directory}/run`).mode & 0o777, 0o700)
      assert.equal(statSync(`${directory}/run/natmapper.sock`).mode & 0o777, 0o600)
      const webPort = gateway.mappings.get(fakeMappingKey('tcp', 4080))?.externalPort

      // A second service on the same socket is refused.
      const second = await natmapper(['serve', '--config', config, '--gateway', gateway.address], { namespace: null, script: SCRIPT, env })
      assert.equal(second.code, 1, second.cli.transcript())
      assert.match(second.stderr, /another natmapper serve is running/)

      // A bad file: one line naming the line, and nothing changes.
      writeFileSync(config, '[web]\nprotocol = tcp\nport = 4080\nfamily = ipv4\n[new]\nprotocol = tcp\nport = x\n')
      cli.signal('SIGHUP')
      await cli.until('refused the reload', () => cli.stderr.length > 0)
      assert.deepEqual(cli.stderr, [`natmapper: ${config}:7: bad port "x": expected a whole number from 1 to 65535; the 2 mapping(s) held are left as they were`])
      assert.deepEqual([...gateway.mappings.keys()].sort(), ['tcp/4080', 'udp/4081'])

      // A good one: one removed, one added, one untouched.
      write([['web', 'tcp', 4080], ['voice', 'udp', 4082]])
      cli.signal('SIGHUP')
      await cli.until('reloaded', () => cli.stdout.some((line) => line.startsWith('reloaded ')))
      await cli.until('the new one established', () => cli.stdout.some((line) => line.startsWith('[voice] IPv4 udp 4082: established')))
      assert.ok(cli.stdout.includes(`reloaded ${config}: 1 added, 1 removed, 1 unchanged`), cli.transcript())
      assert.ok(cli.stdout.includes('[game] IPv4 udp 4081: deleted at the gateway'), cli.transcript())
      assert.deepEqual([...gateway.mappings.keys()].sort(), ['tcp/4080', 'udp/4082'])
      assert.equal(gateway.mappings.get(fakeMappingKey('tcp', 4080))?.externalPort, webPort)

      // status, as JSON and as text, from another process.
      const status = await natmapper(['status', '--json'], { namespace: null, script: SCRIPT, env })
      assert.equal(status.code, 0, status.cli.transcript())
      const found = JSON.parse(status.stdout) as ServiceStatus
      assert.deepEqual(found.mappings.map((m) => [m.name, m.family, m.protocol, m.internalPort, m.established, m.externalAddress]),
        [['web', 'IPv4', 'tcp', 4080, true, '11.77.0.1'], ['voice', 'IPv4', 'udp', 4082, true, '11.77.0.1']])
      assert.ok(found.mappings.every((m) => m.leaseSecondsLeft !== null && m.leaseSecondsLeft > 0 && m.leaseSecondsLeft <= 60 && m.lastError === null))
      assert.deepEqual([found.reloads, found.reloadsRefused], [1, 1])
      const pcp = found.families[0]?.stats?.protocols.pcp
      assert.equal(pcp?.mappingsEstablished, 3, JSON.stringify(pcp))
      const sent = gateway.requests.filter((request) => request.protocol === 'pcp' && request.request?.opcode === 'map').length
      assert.equal(pcp.requests + pcp.retransmissions, sent, 'every MAP the gateway saw was counted')
      const text = await natmapper(['status'], { namespace: null, script: SCRIPT, env })
      assert.match(text.stdout, /^ {2}\[web\] IPv4 tcp 4080: 11\.77\.0\.1:\d+, lease \d+ s left$/m)

      // The metrics endpoint, scraped: the format line by line, and the same numbers.
      const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
      const { samples } = readExposition(await response.text())
      assert.equal(samples.find((s) => s.name === 'natmapper_mapping_established' && s.labels.name === 'voice')?.value, 1)
      assert.equal(samples.find((s) => s.name === 'natmapper_config_reloads_refused_total')?.value, 1)
      assert.ok((samples.find((s) => s.name === 'natmapper_requests_total' && s.labels.protocol === 'pcp')?.value ?? 0) >= 3)
      assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/`)).status, 404)

      cli.signal('SIGTERM')
      assert.equal(await cli.exit(), 0, cli.transcript())
      assert.deepEqual([...gateway.mappings.keys()], [], 'nothing left at the gateway')
      assert.deepEqual(cli.stdout.slice(-1), ['stopped'])
      assert.ok(cli.stdout.includes('SIGTERM: deleting 2 mapping(s) at the gateway'), cli.transcript())
      assert.ok(!existsSync(`${directory}/run/natmapper.sock`), 'the socket is gone')
    } finally {
      cli.kill()
    }
  })

  it('a bad file at the start: one line naming the line, exit 2', async () => {
    const config = `${directory}/bad.conf`
    writeFileSync(config, '[a]\nprotocol = tcp\nport = 4090\nfamily = ipv9\n')
    const result = await natmapper(['serve', '--config', config, '--gateway', '127.0.4.11'], { namespace: null, script: SCRIPT, env: { ...process.env, RUNTIME_DIRECTORY: `${directory}/run-bad` } })
    assert.equal(result.code, 2)
    assert.equal(result.stderr, `natmapper: ${config}:4: bad family "ipv9": expected ipv4, ipv6 or all`)
    assert.equal(result.stdout, '')
    const missing = await natmapper(['serve', '--config', `${directory}/none.conf`], { namespace: null, script: SCRIPT, env: { ...process.env, RUNTIME_DIRECTORY: `${directory}/run-bad` } })
    assert.equal(missing.code, 2)
    assert.equal(missing.stderr, `natmapper: ${directory}/none.conf: cannot read it (ENOENT)`)
  })
})
