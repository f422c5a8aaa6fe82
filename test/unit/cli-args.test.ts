import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { parseCommandLine, parseProtocols, UsageError, type Command } from '../../src/cli/args.js'

const parse = (line: string): Command => parseCommandLine(line === '' ? [] : line.split(' '))

/** Asserts that the line is refused with exactly this one-line message (and the command's usage). */
function refused (line: string, message: string | RegExp, command?: string): void {
  assert.throws(() => parse(line), (error: unknown) => {
    assert.ok(error instanceof UsageError, `not a UsageError: ${String(error)}`)
    if (typeof message === 'string') assert.equal(error.message, message)
    else assert.match(error.message, message)
    assert.ok(!error.message.includes('\n'), 'one line')
    assert.equal(error.command, command)
    return true
  }, line)
}

const v4 = { families: ['IPv4'], json: false, verbose: false }
const both = { ...v4, families: ['IPv4', 'IPv6'] }

describe('cli arguments: commands', () => {
  it('discover, ip and list take only the global options, before or after the command', () => {
    assert.deepEqual(parse('discover'), { name: 'discover', options: both })
    assert.deepEqual(parse('ip --json'), { name: 'ip', options: { ...v4, json: true } })
    assert.deepEqual(parse('--verbose --json list'), { name: 'list', options: { ...v4, json: true, verbose: true } })
    assert.deepEqual(parse('discover --gateway 192.168.1.1 --timeout 500'), { name: 'discover', options: { ...v4, gateway: '192.168.1.1', timeout: 500 } })
    assert.deepEqual(parse('ip --gateway=fe80::1'), { name: 'ip', options: { ...v4, families: ['IPv6'], gateway: 'fe80::1' } })
  })

  it('map: protocol, port and its options', () => {
    assert.deepEqual(parse('map tcp 8080'), { name: 'map', options: both, protocol: 'tcp', internalPort: 8080, once: false })
    assert.deepEqual(parse('map UDP 51820 --external-port 51821 --duration 3600 --description game --once --json'), {
      name: 'map',
      options: { ...both, json: true },
      protocol: 'udp',
      internalPort: 51820,
      externalPort: 51821,
      durationSeconds: 3600,
      description: 'game',
      once: true
    })
    assert.deepEqual(parseCommandLine(['map', 'tcp', '80', '--description', 'my web server']), { name: 'map', options: both, protocol: 'tcp', internalPort: 80, description: 'my web server', once: false })
    assert.equal((parse('map tcp 1 --duration 3') as { durationSeconds?: number }).durationSeconds, 3)
    assert.equal((parse('map tcp 65535 --duration 604800') as { durationSeconds?: number }).durationSeconds, 604_800)
  })

  it('unmap: protocol, port and --external-port', () => {
    assert.deepEqual(parse('unmap udp 4000'), { name: 'unmap', options: v4, protocol: 'udp', internalPort: 4000 })
    assert.deepEqual(parse('unmap tcp 80 --external-port 8080 --protocol upnp'), { name: 'unmap', options: { ...v4, protocols: ['upnp'] }, protocol: 'tcp', internalPort: 80, externalPort: 8080 })
    assert.deepEqual(parse('unmap tcp 80 --force'), { name: 'unmap', options: v4, protocol: 'tcp', internalPort: 80, force: true })
  })

  it('--family: ipv4, ipv6 or all (discover and map); the default follows --gateway; a mismatch is bad usage', () => {
    const families = (line: string): unknown => (parse(line) as { options: { families: string[] } }).options.families
    assert.deepEqual(families('map tcp 8080 --family ipv6'), ['IPv6'])
    assert.deepEqual(families('discover --family IPv4'), ['IPv4'])
    assert.deepEqual(families('map tcp 8080 --family all'), ['IPv4', 'IPv6'])
    assert.deepEqual(families('map tcp 8080 --gateway 2001:db8::1'), ['IPv6'])
    assert.deepEqual(families('ip --family ipv6'), ['IPv6'])
    assert.throws(() => parse('map tcp 8080 --family ipv5'), /bad --family "ipv5": expected ipv4, ipv6, all/)
    assert.throws(() => parse('map tcp 8080 --family ipv4 --gateway 2001:db8::1'), /--family ipv4 does not match --gateway, an IPv6 address/)
    assert.throws(() => parse('ip --family all'), /--family all is for discover and map/)
  })

  it('--protocol: repeated, comma-separated, any case; duplicates dropped, order kept', () => {
    assert.deepEqual((parse('ip --protocol nat-pmp --protocol pcp,UPNP') as { options: { protocols?: string[] } }).options.protocols, ['nat-pmp', 'pcp', 'upnp'])
    assert.deepEqual(parseProtocols(['pcp', 'pcp, nat-pmp']), ['pcp', 'nat-pmp'])
  })

  it('help: the overview, a command\'s page, and --help anywhere on the line', () => {
    assert.deepEqual(parse('help'), { name: 'help' })
    assert.deepEqual(parse('help map'), { name: 'help', topic: 'map' })
    assert.deepEqual(parse('--help'), { name: 'help' })
    assert.deepEqual(parse('-h'), { name: 'help' })
    assert.deepEqual(parse('map --help'), { name: 'help', topic: 'map' })
    assert.deepEqual(parse('unmap tcp -h'), { name: 'help', topic: 'unmap' })
    // A half-typed line with --help still gets its help, not an error.
    assert.deepEqual(parse('map tcp 99999 --frob --help'), { name: 'help', topic: 'map' })
    assert.deepEqual(parse('--version'), { name: 'version' })
  })
})

describe('cli arguments: bad usage is one line naming the problem', () => {
  it('no command, an unknown command, or no help for it', () => {
    refused('', 'no command given')
    refused('mapp tcp 80', 'unknown command "mapp" (commands: discover, ip, map, unmap, list, serve, status, help)')
    refused('help mapp', /^no help for "mapp"/)
    refused('help map ip', 'unexpected argument "ip"')
    // --help does not hide an unknown command behind the general help.
    refused('frobnicate --help', /^unknown command "frobnicate" \(commands: /)
    refused('-h frobnicate tcp 80', /^unknown command "frobnicate" \(commands: /)
  })

  it('unknown options, values missing or given to a flag', () => {
    refused('discover --frob', 'unknown option --frob', 'discover')
    refused('map tcp 80 -x', 'unknown option -x', 'map')
    refused('ip --gateway', '--gateway needs a value', 'ip')
    refused('ip --gateway --json', '--gateway needs a value', 'ip')
    refused('map tcp 80 --once=yes', '--once takes no value', 'map')
    refused('ip --json=1', '--json takes no value', 'ip')
    refused('ip --version', '--version takes no command', 'ip')
  })

  it('options of another command', () => {
    refused('discover --once', '--once is not an option of discover', 'discover')
    refused('unmap tcp 80 --duration 60', '--duration is not an option of unmap', 'unmap')
    refused('list --external-port 80', '--external-port is not an option of list', 'list')
  })

  it('operands: missing, extra or out of range', () => {
    refused('map', 'missing <tcp|udp>', 'map')
    refused('map tcp', 'missing <internal-port>', 'map')
    refused('map tcp 80 81', 'unexpected argument "81"', 'map')
    refused('ip 1.2.3.4', 'unexpected argument "1.2.3.4"', 'ip')
    refused('map sctp 80', 'bad protocol "sctp": expected tcp or udp', 'map')
    refused('unmap tcp 0', 'bad internal port "0": expected a whole number from 1 to 65535', 'unmap')
    refused('map tcp 65536', 'bad internal port "65536": expected a whole number from 1 to 65535', 'map')
    refused('map tcp 80.5', /^bad internal port "80\.5"/, 'map')
    refused('map tcp 0x50', /^bad internal port "0x50"/, 'map')
    refused('map tcp 80 --external-port 70000', /^bad --external-port "70000"/, 'map')
  })

  it('global option values', () => {
    refused('ip --gateway router.local', 'bad --gateway "router.local": expected an IP address', 'ip')
    refused('ip --protocol igd', 'bad --protocol "igd": expected pcp, nat-pmp, upnp', 'ip')
    refused('ip --protocol pcp,', 'bad --protocol "": expected pcp, nat-pmp, upnp', 'ip')
    refused('ip --timeout 0', 'bad --timeout "0": expected a whole number of milliseconds from 1 to 3600000', 'ip')
    refused('ip --timeout=-5', /^bad --timeout "-5"/, 'ip')
    refused('ip --timeout 2s', /^bad --timeout "2s"/, 'ip')
    refused('list --upnp-url https://192.168.1.1/rootDesc.xml', 'bad --upnp-url "https://192.168.1.1/rootDesc.xml": expected an http URL with the gateway\'s IP address', 'list')
    refused('list --upnp-url http://router.lan:5000/rootDesc.xml', /^bad --upnp-url "http:\/\/router\.lan/, 'list')
    refused('list --upnp-url rootDesc.xml', /^bad --upnp-url "rootDesc\.xml"/, 'list')
  })

  it('--upnp-url: the description URL of a router that ignores SSDP searches', () => {
    assert.deepEqual(parse('list --upnp-url http://192.168.1.1:5000/rootDesc.xml'), { name: 'list', options: { ...v4, upnpUrl: 'http://192.168.1.1:5000/rootDesc.xml' } })
  })

  it('--duration and --description limits', () => {
    refused('map tcp 80 --duration 2', 'bad --duration "2": expected a whole number of seconds from 3 to 604800', 'map')
    refused('map tcp 80 --duration 604801', /^bad --duration "604801"/, 'map')
    assert.throws(() => parseCommandLine(['map', 'tcp', '80', '--description', 'a'.repeat(257)]), /at most 256 printable characters/)
    assert.throws(() => parseCommandLine(['map', 'tcp', '80', '--description', 'tab\there']), /printable/)
  })

  it('never throws anything but a UsageError, whatever the line (property)', () => {
    const word = fc.oneof(
      fc.constantFrom('map', 'unmap', 'ip', 'discover', 'list', 'help', 'tcp', 'udp', '80', '0', '65536', '--once', '--json',
        '--verbose', '--gateway', '10.0.0.1', '--protocol', 'pcp', '--timeout', '--duration', '--external-port', '--description', '-h', '--', '-', '--x=1',
        'line\nbreak', '--new\nline', '--gateway=\r'),
      fc.string({ maxLength: 8 }))
    fc.assert(fc.property(fc.array(word, { maxLength: 8 }), (argv) => {
      try {
        const command = parseCommandLine(argv)
        if ('internalPort' in command) assert.ok(command.internalPort >= 1 && command.internalPort <= 65_535)
      } catch (error) {
        assert.ok(error instanceof UsageError, `${JSON.stringify(argv)}: ${String(error)}`)
        assert.ok(!error.message.includes('\n'))
      }
    }), { numRuns: 2_000 })
  })
})
