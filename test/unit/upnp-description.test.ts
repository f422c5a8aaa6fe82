import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { MalformedMessageError } from '../../src/errors.js'
import { decodeDeviceDescription, wanServiceKind, type DeviceDescription } from '../../src/upnp/description.js'
import { trustedControlUrl } from '../../src/upnp/trust.js'
import { escapeBareAmpersands, parseXml } from '../../src/upnp/xml.js'
import { mutationOf } from '../fixtures/upnp/mutations.js'

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/upnp/${name}`, import.meta.url), 'utf8')
const ACTIONTEC_BODY = fixture('actiontec-gt784wn.http').split('\r\n\r\n').slice(1).join('\r\n\r\n')
const REAL_DESCRIPTIONS: Array<[string, string]> = [
  ['miniupnpd-1.8-igd2.xml', fixture('miniupnpd-1.8-igd2.xml')],
  ['cisco-cga4131com.xml', fixture('cisco-cga4131com.xml')],
  ['dlink-dir-890l.xml', fixture('dlink-dir-890l.xml')],
  ['ddwrt-tl-wr841nd.xml', fixture('ddwrt-tl-wr841nd.xml')],
  ['actiontec-gt784wn.http', ACTIONTEC_BODY]
]

const summary = (description: DeviceDescription): Array<[string, string]> =>
  description.wanServices.map((service) => [service.kind, service.controlUrl.href])

/** Wraps services in the usual IGD → WANDevice → WANConnectionDevice nesting. */
const igd = (services: string, { urlBase = '', deviceType = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1' } = {}): string =>
  `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">${urlBase}<device><deviceType>${deviceType}</deviceType>` +
  '<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device>' +
  `<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList>${services}</serviceList>` +
  '</device></deviceList></device></deviceList></device></root>'
const service = (type: string, controlUrl: string): string =>
  `<service><serviceType>${type}</serviceType><controlURL>${controlUrl}</controlURL></service>`
const WANIP1 = 'urn:schemas-upnp-org:service:WANIPConnection:1'
const AT = new URL('http://192.168.1.1:5000/igd/desc.xml')

describe('device descriptions from real routers', () => {
  it('MiniUPnPd 1.8: IGDv2, WANIPConnection:2 three devices deep, the IPv6 firewall recorded', () => {
    const description = decodeDeviceDescription(fixture('miniupnpd-1.8-igd2.xml'), new URL('http://192.168.128.1:43412/rootDesc.xml'))
    assert.equal(description.igdVersion, 2)
    assert.equal(description.deviceType, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2')
    assert.equal(description.friendlyName, '9x45 MobileAP UPnP')
    assert.deepEqual(summary(description), [['WANIPConnection:2', 'http://192.168.128.1:43412/ctl/IPConn']])
    assert.equal(description.firewallControl?.controlUrl.href, 'http://192.168.128.1:43412/ctl/IP6FCtl')
  })

  it('Cisco CGA4131COM (libupnp): IGDv1 with mixed indentation', () => {
    const description = decodeDeviceDescription(fixture('cisco-cga4131com.xml'), new URL('http://10.1.10.1:49152/IGDdevicedesc_brlan0.xml'))
    assert.equal(description.igdVersion, 1)
    assert.equal(description.manufacturer, 'Cisco')
    assert.deepEqual(summary(description), [['WANIPConnection:1', 'http://10.1.10.1:49152/upnp/control/WANIPConnection0']])
    assert.equal(description.firewallControl, undefined)
  })

  it('D-Link DIR-890L: URLBase and query-string control URLs', () => {
    const description = decodeDeviceDescription(fixture('dlink-dir-890l.xml'), new URL('http://10.0.0.1:49152/InternetGatewayDevice.xml'))
    assert.deepEqual(summary(description), [['WANIPConnection:1', 'http://10.0.0.1:49152/soap.cgi?service=WANIPConn1']])
    assert.equal(description.modelName, 'D-Link Router')
  })

  it('DD-WRT: CRLF, a LANDevice beside the WANDevice, a stray CR after the root', () => {
    const description = decodeDeviceDescription(fixture('ddwrt-tl-wr841nd.xml'), new URL('http://192.168.1.1:1780/InternetGatewayDevice.xml'))
    assert.deepEqual(summary(description), [['WANIPConnection:1', 'http://192.168.1.1:1780/control?WANIPConnection']])
    assert.equal(description.friendlyName, 'TP-Link TL-WR841ND v9:DD-WRT')
  })

  it('Actiontec GT784WN (Broadcom): WANPPPConnection only, URLBase with a slash, colons in paths', () => {
    const description = decodeDeviceDescription(ACTIONTEC_BODY, new URL('http://192.168.0.1:5431/dyndev/uuid:deadbeef-dead-beef-dead-beefdeadbeef00'))
    assert.equal(description.igdVersion, 1)
    assert.deepEqual(summary(description), [['WANPPPConnection:1', 'http://192.168.0.1:5431/uuid:70f196f9-33f5-f533-f996-f170f1f9f50002/WANPPPConnection:1']])
  })
})

describe('TR-064 service types (ISP boxes)', () => {
  it('MitraStar-like (ofekp/TinyUPnP#14): WANIPConnection and WANPPPConnection under urn:dslforum-org are WAN services', () => {
    const description = decodeDeviceDescription(fixture('mitrastar-dsl-2401hn.xml'), new URL('http://192.168.25.1:5555/gatedesc.xml'))
    assert.equal(description.igdVersion, 1)
    assert.equal(description.manufacturer, 'MitraStar')
    assert.deepEqual(summary(description), [
      ['WANIPConnection:1', 'http://192.168.25.1:5555/UD/?4'],
      ['WANPPPConnection:1', 'http://192.168.25.1:5555/UD/?5']
    ])
    // SOAP actions are addressed to the type as the box wrote it.
    assert.deepEqual(description.wanServices.map((service) => service.serviceType),
      ['urn:dslforum-org:service:WANIPConnection:1', 'urn:dslforum-org:service:WANPPPConnection:1'])
  })
})

describe('device description parsing', () => {
  it('trims whitespace and newlines around types and URLs (Netgear WNR2000v5, lontivero/Open.NAT#66)', () => {
    const description = decodeDeviceDescription(igd(service(`\n  ${WANIP1}\n  `, '\n /ctl/ip \n'), { deviceType: '\nurn:schemas-upnp-org:device:InternetGatewayDevice:1\n' }), AT)
    assert.equal(description.deviceType, 'urn:schemas-upnp-org:device:InternetGatewayDevice:1')
    assert.deepEqual(summary(description), [['WANIPConnection:1', 'http://192.168.1.1:5000/ctl/ip']])
  })

  it('resolves absolute control URLs and a URLBase without a port (Linksys WRT120N, syncthing/syncthing#1187)', () => {
    const xml = igd(service(WANIP1, 'http://192.168.243.1:80/upnp/control?WANIPConnection'), { urlBase: '<URLBase>http://192.168.243.1</URLBase>' })
    assert.deepEqual(summary(decodeDeviceDescription(xml, new URL('http://192.168.243.1:5000/igd.xml'))), [['WANIPConnection:1', 'http://192.168.243.1/upnp/control?WANIPConnection']])
  })

  it('resolves relative control URLs by RFC 3986, against URLBase when there is one', () => {
    const resolve = (controlUrl: string, urlBase = ''): string | undefined =>
      decodeDeviceDescription(igd(service(WANIP1, controlUrl), { urlBase }), AT).wanServices[0]?.controlUrl.href
    assert.equal(resolve('/ctl'), 'http://192.168.1.1:5000/ctl')
    assert.equal(resolve('ctl'), 'http://192.168.1.1:5000/igd/ctl')
    assert.equal(resolve('ctl', '<URLBase>http://192.168.1.1:49000/</URLBase>'), 'http://192.168.1.1:49000/ctl')
    assert.equal(resolve('//192.168.1.1:6000/ctl'), 'http://192.168.1.1:6000/ctl')
    assert.equal(resolve('/ctl?a=1&amp;b=2'), 'http://192.168.1.1:5000/ctl?a=1&b=2')
    assert.equal(resolve('<![CDATA[/cdata]]>'), 'http://192.168.1.1:5000/cdata')
    // An unusable URLBase falls back to the description's own URL.
    assert.equal(resolve('/ctl', '<URLBase>not a url</URLBase>'), 'http://192.168.1.1:5000/ctl')
    assert.equal(resolve('/ctl', '<URLBase>ftp://192.168.1.1/</URLBase>'), 'http://192.168.1.1:5000/ctl')
    // A service without a usable control URL is left out.
    assert.equal(resolve(''), undefined)
    assert.equal(resolve('https://192.168.1.1/ctl'), undefined)
  })

  it('finds every WAN service kind at any depth, in document order', () => {
    const deep = (inner: string, depth: number): string => depth === 0 ? inner : `<deviceList><device>${deep(inner, depth - 1)}</device></deviceList>`
    const xml = '<root><device>' +
      `<serviceList>${service('urn:schemas-upnp-org:service:WANPPPConnection:1', '/ppp')}</serviceList>` +
      deep(`<serviceList>${service('urn:schemas-upnp-org:service:WANIPConnection:2', '/ip2')}${service(WANIP1, '/ip1')}` +
        `${service('urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1', '/common')}</serviceList>`, 6) +
      '</device></root>'
    const description = decodeDeviceDescription(xml, AT)
    assert.deepEqual(summary(description).map(([kind]) => kind), ['WANPPPConnection:1', 'WANIPConnection:2', 'WANIPConnection:1'])
    // A WANIPConnection:2 makes it an IGDv2 even under an IGD:1-less root.
    assert.equal(description.igdVersion, 2)
  })

  it('reads any namespace prefix and element-name case', () => {
    const xml = '<ns0:root xmlns:ns0="urn:schemas-upnp-org:device-1-0"><ns0:device><ns0:serviceList><ns0:service>' +
      `<ns0:serviceType>${WANIP1}</ns0:serviceType><ns0:controlurl>/prefixed</ns0:controlurl></ns0:service></ns0:serviceList></ns0:device></ns0:root>`
    assert.deepEqual(summary(decodeDeviceDescription(xml, AT)), [['WANIPConnection:1', 'http://192.168.1.1:5000/prefixed']])
  })

  it('tolerates a bare ampersand in free text ("AT&T")', () => {
    const xml = igd(service(WANIP1, '/ctl')).replace('<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>',
      '<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><friendlyName>AT&T Gateway</friendlyName>')
    const description = decodeDeviceDescription(xml, AT)
    assert.equal(description.friendlyName, 'AT&T Gateway')
    assert.equal(description.wanServices.length, 1)
  })

  it('escapes only bare ampersands, leaving references and CDATA alone, in linear time', () => {
    assert.equal(escapeBareAmpersands('AT&T &amp; &#65; &#x41; &lol9; & <![CDATA[a&b]]> &'), 'AT&amp;T &amp; &#65; &#x41; &lol9; &amp; <![CDATA[a&b]]> &amp;')
    assert.equal(escapeBareAmpersands('<![CDATA[never closed & '), '<![CDATA[never closed & ')
    const hostile = '&<![CDATA['.repeat(7_000)
    const started = performance.now()
    escapeBareAmpersands(hostile)
    assert.ok(performance.now() - started < 200)
  })

  it('knows the service kinds, newer WANIPConnection versions counting as :2', () => {
    assert.equal(wanServiceKind('urn:schemas-upnp-org:service:WANIPConnection:1'), 'WANIPConnection:1')
    assert.equal(wanServiceKind('URN:SCHEMAS-UPNP-ORG:SERVICE:WANIPCONNECTION:2'), 'WANIPConnection:2')
    assert.equal(wanServiceKind('urn:schemas-upnp-org:service:WANIPConnection:3'), 'WANIPConnection:2')
    assert.equal(wanServiceKind('urn:schemas-upnp-org:service:WANPPPConnection:1'), 'WANPPPConnection:1')
    assert.equal(wanServiceKind('urn:schemas-upnp-org:service:WANIPConnection:0'), undefined)
    // TR-064's names for the same services (ISP boxes; tailscale PR #10927): version 1 only.
    assert.equal(wanServiceKind('urn:dslforum-org:service:WANIPConnection:1'), 'WANIPConnection:1')
    assert.equal(wanServiceKind('urn:dslforum-org:service:WANPPPConnection:1'), 'WANPPPConnection:1')
    assert.equal(wanServiceKind('urn:dslforum-org:service:WANIPConnection:2'), 'WANIPConnection:1')
    assert.equal(wanServiceKind('urn:dslforum-org:service:WANCommonInterfaceConfig:1'), undefined)
    assert.equal(wanServiceKind('urn:other-org:service:WANIPConnection:1'), undefined)
  })

  const rejected: Array<[string, string]> = [
    ['an empty body', ''],
    ['text that is not XML', 'HTTP/1.1 404 Not Found'],
    ['a root that is not <root>', '<html><body>login</body></html>'],
    ['a root without <device>', '<root><specVersion/></root>'],
    ['a truncated document', igd(service(WANIP1, '/ctl')).slice(0, 200)],
    ['elements nested too deep', `<root>${'<a>'.repeat(100)}${'</a>'.repeat(100)}</root>`],
    ['too many elements', `<root>${'<a/>'.repeat(5_000)}</root>`],
    ['overlong text', `<root><device><friendlyName>${'x'.repeat(10_000)}</friendlyName></device></root>`],
    ['an external entity', '<?xml version="1.0"?><!DOCTYPE root [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><root><device>&xxe;</device></root>']
  ]
  for (const [what, xml] of rejected) {
    it(`rejects ${what} with MalformedMessageError`, () => {
      assert.throws(() => decodeDeviceDescription(xml, AT), MalformedMessageError)
    })
  }

  it('refuses a billion-laughs document at once, without expanding anything', () => {
    const lol = '<?xml version="1.0"?>\n<!DOCTYPE root [\n <!ENTITY lol "lol">\n' +
      Array.from({ length: 9 }, (_, level) => ` <!ENTITY lol${level + 2} "${`&lol${level === 0 ? '' : level + 1};`.repeat(10)}">`).join('\n') +
      `\n]>\n${igd(service(WANIP1, '/ctl')).replace('<?xml version="1.0"?>', '').replace('</device></root>', '<friendlyName>&lol10;</friendlyName></device></root>')}`
    const started = performance.now()
    assert.throws(() => decodeDeviceDescription(lol, AT), (error: unknown) => error instanceof MalformedMessageError && /DOCTYPE/.test(error.message))
    assert.ok(performance.now() - started < 100)
  })

  it('leaves an undeclared entity as inert text', () => {
    assert.equal(parseXml('<a>&lol9;</a>', 'test').text, '&lol9;')
  })

  it('property: mutated real descriptions decode or reject with MalformedMessageError (10 000 runs)', () => {
    const samples = REAL_DESCRIPTIONS.map(([, xml]) => Buffer.from(xml, 'utf8'))
    fc.assert(fc.property(mutationOf(samples), (input) => {
      try {
        const description = decodeDeviceDescription(Buffer.from(input).toString('utf8'), AT)
        for (const wan of description.wanServices) assert.equal(wan.controlUrl.protocol, 'http:')
      } catch (error) {
        assert.ok(error instanceof MalformedMessageError, `unexpected ${String(error)}`)
      }
    }), { numRuns: 10_000 })
  })

  it('property: generated element soup decodes or rejects with MalformedMessageError (10 000 runs)', () => {
    const names = fc.constantFrom('root', 'device', 'deviceList', 'serviceList', 'service', 'serviceType', 'controlURL', 'URLBase', 's:x', 'a')
    const node: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom(WANIP1, '/ctl', 'http://192.168.1.1/x', '&amp;', '&bogus;', '<![CDATA[x]]>', '<!-- c -->', '', '<', '&'),
        fc.string({ maxLength: 12 }),
        fc.tuple(names, fc.array(tie('node'), { maxLength: 4 })).map(([name, children]) => `<${name}>${children.join('')}</${name}>`)
      )
    })).node
    fc.assert(fc.property(node, (xml) => {
      try {
        decodeDeviceDescription(xml, AT)
      } catch (error) {
        assert.ok(error instanceof MalformedMessageError, `unexpected ${String(error)}`)
      }
    }), { numRuns: 10_000 })
  })
})

describe('control URL trust', () => {
  const gateway = '192.168.1.1'
  const check = (url: string, announcedHost = gateway): string | undefined => trustedControlUrl(new URL(url), gateway, announcedHost)?.href

  it('keeps a control URL on the gateway', () => {
    assert.equal(check('http://192.168.1.1:5000/ctl'), 'http://192.168.1.1:5000/ctl')
  })

  it('re-points a control URL on the address the gateway announced for itself', () => {
    assert.equal(check('http://10.9.9.9:5000/ctl', '10.9.9.9'), 'http://192.168.1.1:5000/ctl')
  })

  it('refuses control URLs that point anywhere else, or carry credentials, or are not http', () => {
    assert.equal(check('http://192.168.1.66:5000/ctl'), undefined)
    assert.equal(check('http://example.com/ctl'), undefined)
    assert.equal(check('http://u:p@192.168.1.1/ctl'), undefined)
    assert.equal(check('https://192.168.1.1/ctl'), undefined)
  })

  it('compares IPv6 and IPv4-mapped spellings as addresses', () => {
    assert.equal(trustedControlUrl(new URL('http://[fe80::1]:5000/ctl'), 'FE80::1', 'fe80::1')?.href, 'http://[fe80::1]:5000/ctl')
    assert.equal(trustedControlUrl(new URL('http://192.168.1.1/ctl'), '::ffff:192.168.1.1', '192.168.1.1')?.href, 'http://192.168.1.1/ctl')
  })
})
