import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ConfigError, MAX_CONFIG_BYTES, mappingKey, parseConfig, sameSettings } from '../../src/cli/config.js'

// The file `natmapper serve --config` reads: what it accepts, and every message it refuses with.

describe('serve config: what it accepts', () => {
  it('reads sections, keys, defaults, quotes, comments and blank lines', () => {
    const mappings = parseConfig([
      '# a comment',
      '; another',
      '',
      '[web]',
      'protocol = tcp',
      'port = 8080',
      '',
      '  [ game.server_2 ]  ',
      '  Protocol=UDP  ',
      'port= 27015',
      'external-port =27016',
      'description = "Game server # 2"',
      'family = IPv6',
      '[both]\r',
      'protocol = udp\r',
      'port = 8080\r',
      'family = all\r'
    ].join('\n'))
    assert.deepEqual(mappings, [
      { name: 'web', line: 4, protocol: 'tcp', internalPort: 8080, description: 'natmapper web', families: ['IPv4', 'IPv6'] },
      { name: 'game.server_2', line: 8, protocol: 'udp', internalPort: 27015, externalPort: 27016, description: 'Game server # 2', families: ['IPv6'] },
      { name: 'both', line: 14, protocol: 'udp', internalPort: 8080, description: 'natmapper both', families: ['IPv4', 'IPv6'] }
    ])
  })

  it('an empty file holds no mappings', () => {
    assert.deepEqual(parseConfig(''), [])
    assert.deepEqual(parseConfig('# nothing yet\n'), [])
  })

  it('the example shipped in the package parses', () => {
    const mappings = parseConfig(readFileSync(new URL('../../systemd/natmapper.conf', import.meta.url), 'utf8'))
    assert.deepEqual(mappings.map((m) => [m.name, m.protocol, m.internalPort, m.externalPort, m.families]), [
      ['wireguard', 'udp', 51820, 51820, ['IPv4', 'IPv6']],
      ['jellyfin', 'tcp', 8096, undefined, ['IPv4']]
    ])
  })

  it('the example in the README parses', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    const block = /```ini\n([\s\S]*?)```/.exec(readme)?.[1]
    assert.ok(block !== undefined, 'the README shows a config file')
    assert.deepEqual(parseConfig(block), [{ name: 'wireguard', line: 2, protocol: 'udp', internalPort: 51820, externalPort: 51820, description: 'WireGuard', families: ['IPv4', 'IPv6'] }])
  })

  it('a mapping keeps its key across reloads; a new external port or description is a new setting', () => {
    const [a, b, c] = parseConfig('[a]\nprotocol=tcp\nport=9000\ndescription=web\n[b]\nprotocol=tcp\nport=9001\n[c]\nprotocol=tcp\nport=9002\nexternal-port=9100\n')
    assert.ok(a !== undefined && b !== undefined && c !== undefined)
    assert.equal(mappingKey(a, 'IPv4'), 'IPv4 tcp 9000')
    const [renamed] = parseConfig('[other-name]\nprotocol=tcp\nport=9000\ndescription=web\n')
    assert.ok(renamed !== undefined && sameSettings(a, renamed), 'a new name alone changes nothing at the gateway')
    const [defaulted] = parseConfig('[other-name]\nprotocol=tcp\nport=9000\n')
    assert.ok(defaulted !== undefined && !sameSettings(a, defaulted), 'the default description names the mapping')
    assert.ok(!sameSettings(b, c))
    assert.ok(!sameSettings(a, { ...a, description: 'x' }))
  })
})

describe('serve config: every refusal names the line and what is wrong', () => {
  const cases: Array<[string, string, number, string]> = [
    ['not a section', '[web\nprotocol = tcp', 1, 'expected "[name]", got "[web"'],
    ['bad name', '[my web]\nprotocol = tcp', 1, 'bad mapping name "my web": use 1 to 64 letters, digits, ".", "_" or "-"'],
    ['empty name', '[]', 1, 'bad mapping name "": use 1 to 64 letters, digits, ".", "_" or "-"'],
    ['name twice', '[a]\nprotocol=tcp\nport=1\n\n[a]', 5, 'mapping [a] is already defined on line 1'],
    ['no equals', '[a]\nprotocol tcp', 2, 'expected "[name]", "key = value" or a comment, got "protocol tcp"'],
    ['key outside', 'protocol = tcp\n[a]', 1, '"protocol" is outside any mapping: start one with "[name]"'],
    ['unknown key', '[a]\nproto = tcp', 2, 'unknown key "proto" (keys: protocol, port, external-port, description, family)'],
    ['key twice', '[a]\nport = 1\nprotocol=tcp\nport = 2', 4, 'port is already set on line 2'],
    ['no protocol', '# x\n[a]\nport = 80', 2, 'mapping [a] has no protocol'],
    ['no port', '[a]\nprotocol = udp', 1, 'mapping [a] has no port'],
    ['bad protocol', '[a]\nprotocol = sctp\nport = 9', 2, 'bad protocol "sctp": expected tcp or udp'],
    ['port zero', '[a]\nprotocol = tcp\nport = 0', 3, 'bad port "0": expected a whole number from 1 to 65535'],
    ['port too big', '[a]\nprotocol = tcp\nport = 65536', 3, 'bad port "65536": expected a whole number from 1 to 65535'],
    ['port not a number', '[a]\nprotocol = tcp\nport = 80a', 3, 'bad port "80a": expected a whole number from 1 to 65535'],
    ['port empty', '[a]\nprotocol = tcp\nport =', 3, 'bad port "": expected a whole number from 1 to 65535'],
    ['external port', '[a]\nprotocol = tcp\nport = 8080\nexternal-port = -1', 4, 'bad external-port "-1": expected a whole number from 1 to 65535'],
    ['bad family', '[a]\nprotocol = tcp\nport = 8080\nfamily = ipv5', 4, 'bad family "ipv5": expected ipv4, ipv6 or all'],
    ['long description', `[a]\nprotocol = tcp\nport = 8080\ndescription = ${'x'.repeat(257)}`, 4, 'bad description: expected at most 256 characters'],
    ['overlap', '[a]\nprotocol = udp\nport = 5000\nfamily = ipv6\n[b]\nprotocol = udp\nport = 5000', 5, 'mapping [b] maps udp port 5000 on IPv6, as [a] on line 1 does'],
    ['control character', '[a]\nprotocol = tcp\u0000', 2, 'the line holds a control character'],
    ['long line', `[a]\n# ${'x'.repeat(1_100)}`, 2, 'the line is longer than 1024 characters'],
    ['long value shown cut', `[a]\nprotocol = ${'y'.repeat(100)}\nport = 1`, 2, `bad protocol "${'y'.repeat(64)}…": expected tcp or udp`]
  ]
  for (const [what, text, line, reason] of cases) {
    it(what, () => {
      assert.throws(() => parseConfig(text), (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error))
        assert.equal(error.reason, reason)
        assert.equal(error.line, line)
        assert.equal(error.message, `line ${line}: ${reason}`)
        assert.doesNotMatch(error.message, /\n/, 'one line')
        return true
      })
    })
  }

  it('too many mappings', () => {
    const text = Array.from({ length: 257 }, (_, i) => `[m${i}]\nprotocol = tcp\nport = ${i + 1}`).join('\n')
    assert.throws(() => parseConfig(text), { message: 'line 769: more than 256 mappings' })
  })

  it('a file too big', () => {
    assert.throws(() => parseConfig(`#${'x'.repeat(MAX_CONFIG_BYTES)}`), (error: unknown) =>
      error instanceof ConfigError && error.line === 0 && error.message === 'the file is larger than 65536 bytes')
  })

  it('any text: a list of mappings or a ConfigError, never anything else', () => {
    const pieces = fc.constantFrom('[a]', '[b]', 'protocol = tcp', 'protocol=udp', 'port = 80', 'port=x', 'family = ipv6', 'external-port = 9', '#', '=', '[', ']', '\n', ' ', '"')
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.array(pieces, { maxLength: 40 }).map((parts) => parts.join('\n'))), (text) => {
      try {
        const mappings = parseConfig(text)
        for (const mapping of mappings) assert.ok(mapping.internalPort >= 1 && mapping.internalPort <= 65_535)
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error
        assert.doesNotMatch(error.message, /\n/)
      }
    }), { numRuns: 2_000, seed: 21 })
  })
})
