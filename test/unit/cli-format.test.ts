import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  clockTime,
  discoverJson,
  discoverLines,
  errorInfo,
  formatDuration,
  ipJson,
  listJson,
  listLines,
  mapEventJson,
  mapEventLine,
  mapEventText,
  statusText,
  type MapEvent,
  type MapStatus
} from '../../src/cli/format.js'
import { Output, type TextSink } from '../../src/cli/output.js'
import { helpText, usageHint } from '../../src/cli/usage.js'
import { decodeWire, MAX_TEXT_CHARS, wireJson, wireText } from '../../src/cli/wire.js'
import { GatewayResultError, NoNATFoundError, TimeoutError, UnsupportedError, type GatewayMappingEntry } from '../../src/index.js'
import { encodeRequest as encodeNatPmpRequest, encodeResponse as encodeNatPmpResponse } from '../../src/natpmp/codec.js'
import { encodeAnnounceRequest, encodeMapRequest, encodeResponse as encodePcpResponse } from '../../src/pcp/codec.js'

const TIME = new Date('2026-01-02T03:04:05.000Z')
const NONCE = Uint8Array.from({ length: 12 }, (_, i) => i + 1)

describe('cli format: errors', () => {
  it('keeps the stable code, the kind\'s fields and the per-protocol reasons', () => {
    assert.deepEqual(errorInfo(new GatewayResultError('pcp', 2, 'NOT_AUTHORIZED')), {
      code: 'ERR_GATEWAY_RESULT', name: 'GatewayResultError', message: 'pcp gateway answered NOT_AUTHORIZED (2)', protocol: 'pcp', resultCode: 2, resultName: 'NOT_AUTHORIZED'
    })
    const none = errorInfo(new NoNATFoundError({ pcp: new TimeoutError('no answer within 2500 ms') }))
    assert.equal(none.code, 'ERR_NO_NAT_FOUND')
    assert.deepEqual(none.reasons, { pcp: { code: 'ERR_TIMEOUT', name: 'TimeoutError', message: 'no answer within 2500 ms' } })
    assert.deepEqual(errorInfo('plain'), { name: 'Error', message: 'plain' })
    assert.deepEqual(errorInfo(new RangeError('x')), { name: 'RangeError', message: 'x' })
  })

  it('durations and times', () => {
    assert.equal(formatDuration(3.24), '3.2 ms')
    assert.equal(formatDuration(41.4), '41 ms')
    assert.equal(formatDuration(2500), '2.50 s')
    assert.match(clockTime(TIME), /^\d\d:\d\d:\d\d$/)
  })
})

describe('cli format: discover, ip, list', () => {
  const result = {
    family: 'IPv4' as const,
    gateway: '192.168.77.1',
    gatewaySource: 'default-route' as const,
    localAddress: '192.168.77.2',
    probes: [
      { protocol: 'pcp' as const, type: 'pcp' as const, ms: 3.21 },
      { protocol: 'upnp' as const, type: 'upnp-igd2' as const, ms: 61.7 },
      { protocol: 'nat-pmp' as const, ms: 2500, error: new TimeoutError('no answer within 2500 ms') }
    ],
    type: 'pcp' as const,
    externalAddress: '11.77.0.1'
  }

  it('human: one row per fact, each protocol with its time or its reason', () => {
    assert.deepEqual(discoverLines(result), [
      'gateway          192.168.77.1 (the default route)',
      'local address    192.168.77.2',
      'pcp              yes, answered in 3.2 ms',
      'upnp             yes, answered in 62 ms (upnp-igd2)',
      'nat-pmp          no: no answer within 2500 ms (after 2.50 s)',
      'using            pcp',
      'external address 11.77.0.1, public: reachable from the internet through this gateway'
    ])
  })

  it('human: a private or shared external address means another NAT upstream', () => {
    assert.match(discoverLines({ ...result, externalAddress: '192.168.1.20' }).at(-1) ?? '', /private, not publicly routable: .*double NAT/)
    assert.match(discoverLines({ ...result, externalAddress: '100.64.3.4' }).at(-1) ?? '', /shared .*carrier-grade NAT/)
    const none = discoverLines({ ...result, type: undefined, externalAddress: undefined, error: new NoNATFoundError({}) })
    assert.equal(none.at(-1), 'using            none: no protocol answered')
  })

  it('IPv6: a heading, no external address, and whether pinholes are possible and why', () => {
    const ipv6 = { family: 'IPv6' as const, gateway: '2001:db8:77::1', gatewaySource: 'default-route' as const, localAddress: '2001:db8:77::2',
      probes: [{ protocol: 'pcp' as const, type: 'pcp' as const, ms: 2.5 }], type: 'pcp' as const }
    assert.deepEqual(discoverLines(ipv6, true), [
      'IPv6',
      'gateway          2001:db8:77::1 (the default route)',
      'local address    2001:db8:77::2',
      'pcp              yes, answered in 2.5 ms',
      'using            pcp',
      'pinholes         possible: pcp opens inbound connections to 2001:db8:77::2 (no translation on IPv6)'
    ])
    assert.equal(discoverLines({ ...ipv6, type: undefined, error: new NoNATFoundError({}) }).at(-1),
      'pinholes         not possible: the gateway speaks neither PCP nor UPnP WANIPv6FirewallControl')
    assert.deepEqual(discoverLines({ family: 'IPv6', gatewaySource: 'default-route', probes: [], error: new Error('no IPv6 default route') }), [
      'gateway          none: no IPv6 default route',
      'pinholes         not possible: no IPv6 gateway'
    ])
    const json = discoverJson(ipv6)
    assert.equal(json.family, 'IPv6')
    assert.equal(json.pinholes, true)
    assert.equal(json.externalAddress, null)
    assert.equal(discoverJson(result).family, 'IPv4')
    assert.equal('pinholes' in discoverJson(result), false)
  })

  it('JSON: one object, probes with ok/ms/error, scope and publiclyRoutable', () => {
    const json = discoverJson(result)
    assert.equal(json.event, 'discovered')
    assert.equal(json.type, 'pcp')
    assert.equal(json.externalAddress, '11.77.0.1')
    assert.equal(json.scope, 'public')
    assert.equal(json.publiclyRoutable, true)
    assert.deepEqual(json.probes, [
      { protocol: 'pcp', ok: true, type: 'pcp', ms: 3.2 },
      { protocol: 'upnp', ok: true, type: 'upnp-igd2', ms: 61.7 },
      { protocol: 'nat-pmp', ok: false, ms: 2500, error: { code: 'ERR_TIMEOUT', name: 'TimeoutError', message: 'no answer within 2500 ms' } }
    ])
    const failed = discoverJson({ ...result, type: undefined, externalAddress: undefined, error: new NoNATFoundError({}) })
    assert.equal(failed.externalAddress, null)
    assert.equal(failed.publiclyRoutable, null)
    assert.equal((failed.error as { code: string }).code, 'ERR_NO_NAT_FOUND')
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(failed)))
  })

  it('ip as JSON', () => {
    assert.deepEqual(ipJson('10.0.0.7', 'nat-pmp', '10.0.0.1'), { event: 'external-address', address: '10.0.0.7', scope: 'private', publiclyRoutable: false, type: 'nat-pmp', gateway: '10.0.0.1' })
  })

  it('list: an aligned table, or a line saying it is empty; JSON keeps every field', () => {
    const entries: GatewayMappingEntry[] = [
      { protocol: 'tcp', externalPort: 8080, internalClient: '192.168.77.2', internalPort: 80, description: 'web', lifetimeSeconds: 3600, enabled: true },
      { protocol: 'udp', externalPort: 51820, internalClient: '192.168.77.3', internalPort: 51820, description: 'wireguard tunnel', lifetimeSeconds: 0, enabled: false }
    ]
    assert.deepEqual(listLines(entries, 'upnp-igd2', '192.168.77.1'), [
      'PROTO  EXTERNAL  INTERNAL            LEASE      ENABLED  DESCRIPTION',
      'tcp    8080      192.168.77.2:80     3600 s     yes      web',
      'udp    51820     192.168.77.3:51820  permanent  no       wireguard tunnel'
    ])
    assert.deepEqual(listLines([], 'upnp-igd1', '10.0.0.1'), ['no mappings on 10.0.0.1 (upnp-igd1)'])
    assert.deepEqual(listJson(entries, 'upnp-igd2', '192.168.77.1'), { event: 'mappings', type: 'upnp-igd2', gateway: '192.168.77.1', mappings: entries })
  })
})

describe('cli format: map events', () => {
  const expiresAt = new Date(TIME.getTime() + 60_000)
  const events: MapEvent[] = [
    { event: 'discovered', type: 'pcp', gateway: '192.168.77.1', localAddress: '192.168.77.2' },
    { event: 'established', protocol: 'tcp', internalPort: 8080, localAddress: '192.168.77.2', address: '11.77.0.1', port: 8080, lifetimeSeconds: 60, expiresAt },
    { event: 'renewed', port: 8080, renewals: 3, lifetimeSeconds: 60, expiresAt },
    { event: 'changed', address: '11.77.0.1', port: 8081, previousAddress: '11.77.0.1', previousPort: 8080 },
    { event: 'failed', error: new GatewayResultError('nat-pmp', 3, 'NETWORK_FAILURE'), established: true },
    { event: 'lost', error: undefined },
    { event: 'external-address-changed', address: '100.64.0.1', previous: '11.77.0.1' },
    { event: 'gateway-reset', reason: 'epoch went back' },
    { event: 'gateway-changed', type: 'upnp-igd2', gateway: '10.0.0.1', previousType: 'pcp', previousGateway: '192.168.77.1', reason: 'default route changed' },
    { event: 'closing', signal: 'SIGINT' },
    { event: 'closed', deleted: true },
    { event: 'closed', deleted: false, error: new TimeoutError('no answer') },
    { event: 'left', expiresAt },
    { event: 'left', expiresAt: Infinity }
  ]

  it('every event has a one-line text and a JSON object with event and time', () => {
    for (const event of events) {
      const text = mapEventText(event)
      assert.ok(text.length > 0 && !text.includes('\n'), text)
      assert.equal(mapEventLine(event, TIME), `${clockTime(TIME)} ${text}`)
      const json = mapEventJson(event, TIME)
      assert.equal(json.event, event.event)
      assert.equal(json.time, '2026-01-02T03:04:05.000Z')
      assert.doesNotThrow(() => JSON.parse(JSON.stringify(json)))
    }
  })

  it('the texts say what happened', () => {
    const [discovered, established, renewed, changed, failed, lost, moved, reset, switched, closing, deleted, notDeleted, left, permanent] = events.map((event) => mapEventText(event))
    assert.equal(discovered, 'gateway 192.168.77.1 speaks pcp; this host is 192.168.77.2')
    assert.equal(established, `established: tcp 11.77.0.1:8080 -> 192.168.77.2:8080 (lease 60 s, until ${clockTime(expiresAt)})`)
    assert.equal(renewed, `renewed (3): lease 60 s, until ${clockTime(expiresAt)}`)
    assert.equal(changed, 'changed: now 11.77.0.1:8081 (was 11.77.0.1:8080)')
    assert.equal(failed, 'failed: nat-pmp gateway answered NETWORK_FAILURE (3); retrying while the lease lasts')
    assert.equal(lost, 'lost: the lease ran out; retrying')
    assert.match(moved ?? '', /^external address changed: 100\.64\.0\.1, shared .* \(was 11\.77\.0\.1\)$/)
    assert.equal(reset, 'the gateway lost its mappings (epoch went back); re-creating')
    assert.equal(switched, 'now using upnp-igd2 at 10.0.0.1 (was pcp at 192.168.77.1): default route changed')
    assert.equal(closing, 'SIGINT: deleting the mapping at the gateway')
    assert.equal(deleted, 'deleted at the gateway')
    assert.equal(notDeleted, 'closed, but the gateway did not confirm the delete: no answer')
    assert.match(left ?? '', /^left on the gateway, not renewed: the lease runs out at \d\d:\d\d:\d\d$/)
    assert.match(permanent ?? '', /permanent lease/)
  })

  it('JSON fields: addresses, ports, lease end as ISO time (null when permanent), errors by code', () => {
    assert.deepEqual(mapEventJson(events[1] as MapEvent, TIME), {
      event: 'established', time: TIME.toISOString(), protocol: 'tcp', address: '11.77.0.1', port: 8080, internalAddress: '192.168.77.2', internalPort: 8080, lifetimeSeconds: 60, expiresAt: expiresAt.toISOString()
    })
    assert.deepEqual(mapEventJson({ event: 'renewed', port: 1, renewals: 1, lifetimeSeconds: 0, expiresAt: Infinity }, TIME).expiresAt, null)
    assert.deepEqual(mapEventJson(events[4] as MapEvent, TIME).error, { code: 'ERR_GATEWAY_RESULT', name: 'GatewayResultError', message: 'nat-pmp gateway answered NETWORK_FAILURE (3)', protocol: 'nat-pmp', resultCode: 3, resultName: 'NETWORK_FAILURE' })
    assert.deepEqual(mapEventJson(events[6] as MapEvent, TIME), { event: 'external-address-changed', time: TIME.toISOString(), address: '100.64.0.1', previous: '11.77.0.1', scope: 'shared', publiclyRoutable: false })
    assert.deepEqual(mapEventJson(events[10] as MapEvent, TIME), { event: 'closed', time: TIME.toISOString(), deleted: true })
  })

  it('the status line: the mapping, renewals, time left, last error; cut to the terminal', () => {
    const status: MapStatus = {
      protocol: 'udp', internalPort: 4000, localAddress: '10.0.0.2', type: 'nat-pmp', address: '11.77.0.1', port: 4001,
      established: true, renewals: 2, expiresAt: new Date(TIME.getTime() + 41_200), lastError: undefined
    }
    assert.equal(statusText(status, TIME.getTime(), 200), 'mapped udp 11.77.0.1:4001 -> 10.0.0.2:4000 (nat-pmp) | renewed 2x | lease ends in 42 s | Ctrl-C deletes')
    assert.equal(statusText({ ...status, expiresAt: Infinity }, TIME.getTime(), 200), 'mapped udp 11.77.0.1:4001 -> 10.0.0.2:4000 (nat-pmp) | renewed 2x | permanent lease | Ctrl-C deletes')
    assert.equal(statusText({ ...status, established: false, lastError: new TimeoutError('no answer') }, TIME.getTime(), 200), 'not mapped: udp 4000 (nat-pmp), retrying | last error: no answer | Ctrl-C deletes')
    const narrow = statusText(status, TIME.getTime(), 30)
    assert.equal(narrow.length, 30)
    assert.ok(narrow.endsWith('...'))
  })
})

describe('cli format: --verbose decodes the wire', () => {
  const peer = '192.168.77.1:5351'

  it('PCP requests and responses, with the MAP fields and the nonce', () => {
    const announce = decodeWire({ protocol: 'pcp', direction: 'send', peer, bytes: encodeAnnounceRequest({ clientAddress: '192.168.77.2' }) })
    assert.equal(announce.summary, `-> pcp ${peer} ANNOUNCE request, lifetime 0 s, client 192.168.77.2`)
    const map = encodeMapRequest({ clientAddress: '192.168.77.2', lifetimeSeconds: 60, nonce: NONCE, protocol: 'tcp', internalPort: 8080, suggestedExternalPort: 8080 })
    assert.equal(decodeWire({ protocol: 'pcp', direction: 'send', peer, bytes: map }).summary,
      `-> pcp ${peer} MAP request, lifetime 60 s, client 192.168.77.2, tcp internal port 8080, suggested 0.0.0.0 port 8080, nonce 0102030405060708090a0b0c`)
    const reply = encodePcpResponse({ opcode: 'map', resultCode: 0, lifetimeSeconds: 60, epochSeconds: 77, map: { nonce: NONCE, protocol: 'tcp', internalPort: 8080, externalPort: 8081, externalAddress: '11.77.0.1' } })
    const decoded = decodeWire({ protocol: 'pcp', direction: 'receive', peer, bytes: reply })
    assert.equal(decoded.summary, `<- pcp ${peer} MAP response SUCCESS (0), lifetime 60 s, epoch 77, tcp internal port 8080 -> 11.77.0.1:8081, nonce 0102030405060708090a0b0c`)
    assert.equal(decoded.fields.externalPort, 8081)
    const refused = encodePcpResponse({ opcode: 'announce', resultCode: 2, lifetimeSeconds: 0, epochSeconds: 1 })
    assert.match(decodeWire({ protocol: 'pcp', direction: 'receive', peer, bytes: refused }).summary, /ANNOUNCE response NOT_AUTHORIZED \(2\)/)
  })

  it('NAT-PMP requests and responses, a delete named as such', () => {
    assert.equal(wireText({ protocol: 'nat-pmp', direction: 'send', peer, bytes: encodeNatPmpRequest({ opcode: 'external-address' }) }), `-> nat-pmp ${peer} external address request`)
    assert.equal(wireText({ protocol: 'nat-pmp', direction: 'send', peer, bytes: encodeNatPmpRequest({ opcode: 'map', protocol: 'udp', internalPort: 4000, suggestedExternalPort: 0, lifetimeSeconds: 0 }) }),
      `-> nat-pmp ${peer} udp delete request, internal port 4000, suggested port 0, lifetime 0 s`)
    const address = encodeNatPmpResponse({ opcode: 'external-address', truncated: false, resultCode: 0, epochSeconds: 5, externalAddress: '11.77.0.1' })
    assert.equal(wireText({ protocol: 'nat-pmp', direction: 'receive', peer, bytes: address }), `<- nat-pmp ${peer} external address response SUCCESS (0), epoch 5: 11.77.0.1`)
    const map = encodeNatPmpResponse({ opcode: 'map', truncated: false, protocol: 'tcp', resultCode: 0, epochSeconds: 5, internalPort: 80, externalPort: 8080, lifetimeSeconds: 7200 })
    assert.equal(wireText({ protocol: 'nat-pmp', direction: 'receive', peer, bytes: map }), `<- nat-pmp ${peer} tcp map response SUCCESS (0), epoch 5, internal port 80 -> external port 8080, lifetime 7200 s`)
    const truncated = encodeNatPmpResponse({ opcode: 'map', truncated: true, protocol: 'tcp', resultCode: 2 })
    assert.equal(wireText({ protocol: 'nat-pmp', direction: 'receive', peer, bytes: truncated }), `<- nat-pmp ${peer} map response NOT_AUTHORIZED (2), truncated`)
  })

  it('undecodable bytes are shown in hex, never thrown', () => {
    const junk = decodeWire({ protocol: 'pcp', direction: 'receive', peer, bytes: Uint8Array.of(9, 9, 9) })
    assert.match(junk.summary, /3 bytes, undecodable \(.+\): 090909$/)
    assert.equal(wireJson({ protocol: 'nat-pmp', direction: 'receive', peer, bytes: new Uint8Array(0) }, TIME).hex, '')
  })

  it('UPnP as text: the first line in the summary, the body indented and truncated', () => {
    const body = `HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n\r\n${'x'.repeat(2 * MAX_TEXT_CHARS)}`
    const text = wireText({ protocol: 'upnp', direction: 'receive', peer: '192.168.77.1:1900', bytes: new TextEncoder().encode(body) })
    const lines = text.split('\n')
    assert.equal(lines[0], `<- upnp 192.168.77.1:1900 ${body.length} bytes: HTTP/1.1 200 OK`)
    assert.equal(lines[1], '    HTTP/1.1 200 OK')
    assert.match(lines.at(-1) ?? '', /^ {4}\[\.\.\. \d+ more characters\]$/)
    const json = wireJson({ protocol: 'upnp', direction: 'send', peer: 'p', bytes: new TextEncoder().encode('M-SEARCH * HTTP/1.1\r\n') }, TIME)
    assert.deepEqual(json, { event: 'wire', time: TIME.toISOString(), protocol: 'upnp', direction: 'send', peer: 'p', bytes: 21, text: 'M-SEARCH * HTTP/1.1\r\n' })
  })
})

describe('cli output: the live status line', () => {
  const sink = (isTTY: boolean): TextSink & { text: string } => {
    const target = {
      text: '',
      isTTY,
      columns: 80,
      write (chunk: string, callback?: (error?: Error | null) => void): boolean { target.text += chunk; callback?.(); return true }
    }
    return target
  }

  it('on a terminal: rewritten in place, cleared around every printed line', async () => {
    const stdout = sink(true)
    const stderr = sink(false)
    const output = new Output(stdout, stderr)
    assert.equal(output.live, true)
    assert.equal(output.columns, 79)
    output.status('one')
    output.status('two')
    output.out('event')
    output.err('warning')
    output.clearStatus()
    await output.flush()
    const clear = '\r\u001b[2K'
    assert.equal(stdout.text, `${clear}one${clear}two${clear}event\ntwo${clear}two${clear}`)
    assert.equal(stderr.text, 'warning\n')
  })

  it('in a pipe: no status line at all, plain lines', () => {
    const stdout = sink(false)
    const output = new Output(stdout, sink(false))
    output.status('ignored')
    output.out('line')
    output.clearStatus()
    assert.equal(stdout.text, 'line\n')
  })
})

describe('cli help', () => {
  it('every page documents the exit codes and the global options', () => {
    for (const topic of [undefined, 'discover', 'ip', 'map', 'unmap', 'list'] as const) {
      const text = helpText(topic)
      assert.match(text, /Exit codes:\n {2}0 {2}success\n {2}1 {2}the gateway or the network said no.*\n {2}2 {2}bad usage/)
      for (const flag of ['--gateway', '--protocol', '--timeout', '--json', '--verbose', '--help']) assert.ok(text.includes(flag), `${topic ?? 'overview'}: ${flag}`)
    }
    for (const flag of ['--external-port', '--duration', '--description', '--once']) assert.ok(helpText('map').includes(flag), flag)
    assert.match(usageHint('map'), /^Usage: natmapper map <tcp\|udp> <internal-port>.*\nRun "natmapper help map" for more\.$/)
  })

  it('UnsupportedError is what list and unmap report for PCP (the CLI hints on its code)', () => {
    assert.equal(errorInfo(new UnsupportedError('x')).code, 'ERR_UNSUPPORTED')
  })
})
