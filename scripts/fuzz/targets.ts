/**
 * What `npm run fuzz` feeds: every decoder that reads bytes from the network, its seed corpus
 * (the real routers' messages in test/fixtures, lab captures, and encoder output covering each
 * message kind), and the errors it may throw. Anything else thrown is a crash.
 */
import { Buffer } from 'node:buffer'
import { readdirSync, readFileSync } from 'node:fs'
import { GatewayResultError, MalformedMessageError } from '../../src/errors.js'
import { readAnnouncement } from '../../src/pcp/announcement.js'
import * as natpmp from '../../src/natpmp/codec.js'
import * as pcp from '../../src/pcp/codec.js'
import { decodeDeviceDescription } from '../../src/upnp/description.js'
import { HttpResponseParser } from '../../src/upnp/http-codec.js'
import {
  decodeExternalIPAddress,
  decodeFirewallStatus,
  decodePinholeId,
  decodePortMappingEntry,
  decodeReservedPort,
  decodeSoapResponse,
  decodeStatusInfo
} from '../../src/upnp/soap.js'
import { decodeNotify, decodeSearchResponse } from '../../src/upnp/ssdp.js'
import { MAX_DESCRIPTION_BYTES, MAX_SOAP_RESPONSE_BYTES } from '../../src/upnp/constants.js'

export interface FuzzTarget {
  name: string
  /** Valid or real inputs that mutations start from. */
  corpus: () => Uint8Array[]
  /** Longest purely random input generated. */
  maxRandomBytes: number
  /** Decodes one input; `random` drives any choice beyond the bytes (how HTTP arrives in pieces). */
  run: (input: Uint8Array, random: () => number) => void
  /** The typed errors this decoder may throw on bad input. */
  allowed: (error: unknown) => boolean
}

const FIXTURES = new URL('../../test/fixtures/upnp/', import.meta.url)
const fixtures = (match: RegExp): Uint8Array[] =>
  readdirSync(FIXTURES).filter((name) => match.test(name)).sort().map((name) => readFileSync(new URL(name, FIXTURES)))
const text = (value: string): Uint8Array => Buffer.from(value, 'utf8')
const utf8 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
const malformedOnly = (error: unknown): boolean => error instanceof MalformedMessageError

/**
 * Runs both decoders of a format on the same input (a valid input suits at most one of them);
 * throws the first one's MalformedMessageError only when both reject, and anything else at once.
 */
function either (first: () => unknown, second: () => unknown): void {
  let rejection: unknown
  for (const decode of [first, second]) {
    try {
      decode()
      return
    } catch (error) {
      if (!(error instanceof MalformedMessageError)) throw error
      rejection ??= error
    }
  }
  throw rejection
}

/** The recorded device descriptions. */
const descriptions = (): Uint8Array[] => fixtures(/\.xml$/).filter((bytes) => utf8(bytes).includes('<root'))

const NONCE = Uint8Array.from({ length: 12 }, (_, i) => i * 17)
const PCP_OPTIONS = [[], [{ code: 1, data: new Uint8Array(20) }], [{ code: 2, data: new Uint8Array(20) }, { code: 3, data: new Uint8Array(0) }]]

function pcpCorpus (): Uint8Array[] {
  const corpus: Uint8Array[] = []
  for (const options of PCP_OPTIONS) {
    for (const resultCode of [0, 1, 2, 8, 12]) {
      corpus.push(pcp.encodeResponse({ opcode: 'announce', resultCode, lifetimeSeconds: 0, epochSeconds: 1234, options }))
      for (const protocol of ['tcp', 'udp'] as const) {
        for (const externalAddress of ['11.77.0.1', '2001:db8:1177::1']) {
          corpus.push(pcp.encodeResponse({ opcode: 'map', resultCode, lifetimeSeconds: 7200, epochSeconds: 99, options, map: { nonce: NONCE, protocol, internalPort: 8080, externalPort: 8081, externalAddress } }))
        }
      }
    }
    corpus.push(pcp.encodeRequest({ opcode: 'announce', lifetimeSeconds: 0, clientAddress: '192.168.77.2', options }))
    corpus.push(pcp.encodeMapRequest({ clientAddress: '192.168.77.2', lifetimeSeconds: 60, nonce: NONCE, protocol: 'udp', internalPort: 4000, suggestedExternalPort: 4000 }))
    corpus.push(pcp.encodeMapRequest({ clientAddress: '2001:db8:77::2', lifetimeSeconds: 0, nonce: NONCE, protocol: 'tcp', internalPort: 4000, suggestedExternalPort: 0 }))
  }
  return corpus
}

function natpmpCorpus (): Uint8Array[] {
  const corpus: Uint8Array[] = [natpmp.encodeExternalAddressRequest()]
  for (const resultCode of [0, 1, 2, 3, 4, 5]) {
    corpus.push(natpmp.encodeResponse({ opcode: 'external-address', truncated: false, resultCode, epochSeconds: 77, externalAddress: '11.77.0.1' }))
    for (const protocol of ['tcp', 'udp'] as const) {
      corpus.push(natpmp.encodeResponse({ opcode: 'map', truncated: false, protocol, resultCode, epochSeconds: 77, internalPort: 8080, externalPort: 8080, lifetimeSeconds: 3600 }))
      corpus.push(natpmp.encodeMapRequest({ protocol, internalPort: 8080, suggestedExternalPort: 8080, lifetimeSeconds: resultCode * 60 }))
    }
    if (resultCode !== 0) corpus.push(natpmp.encodeResponse({ opcode: 'external-address', truncated: true, resultCode, epochSeconds: 5 }))
  }
  corpus.push(natpmp.encodeUnsupportedVersionResponse({ requestOpcode: 0, epochSeconds: 3 }))
  return corpus
}

/** An HTTP response around `body` in each framing routers use. */
function httpFramings (body: Uint8Array): Uint8Array[] {
  const head = (lines: string[]): Buffer => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
  const half = Math.floor(body.length / 2)
  return [
    Buffer.concat([head(['HTTP/1.1 200 OK', 'Content-Type: text/xml; charset="utf-8"', `Content-Length: ${body.length}`, 'Connection: close']), body]),
    Buffer.concat([head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']),
      Buffer.from(`${half.toString(16)};ext=1\r\n`), body.subarray(0, half), Buffer.from(`\r\n${(body.length - half).toString(16)}\r\n`),
      body.subarray(half), Buffer.from('\r\n0\r\nX-Trailer: 1\r\n\r\n')]),
    Buffer.concat([head(['HTTP/1.0 200 OK', 'Server: router']), body]),
    Buffer.concat([head(['HTTP/1.1 100 Continue']), head(['HTTP/1.1 500 Internal Server Error', `Content-Length: ${body.length}`]), body])
  ]
}

const SOAP_ACTIONS = ['AddPortMapping', 'AddAnyPortMapping', 'GetExternalIPAddress', 'GetStatusInfo', 'GetSpecificPortMappingEntry', 'GetGenericPortMappingEntry', 'DeletePortMapping', 'GetFirewallStatus', 'AddPinhole']

function soapEnvelope (action: string, args: Array<[string, string]>): string {
  return '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action}Response xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2">` +
    args.map(([name, value]) => `<${name}>${value}</${name}>`).join('') +
    `</u:${action}Response></s:Body></s:Envelope>\r\n`
}

function soapCorpus (): Uint8Array[] {
  return [
    // The recorded SOAP answers: fixtures named after their action or fault.
    ...fixtures(/-(fault-\d+|\w+PortMapping\w*)\.xml$/),
    text(soapEnvelope('GetExternalIPAddress', [['NewExternalIPAddress', '11.77.0.1']])),
    text(soapEnvelope('GetExternalIPAddress', [['NewExternalIPAddress', '']])),
    text(soapEnvelope('GetStatusInfo', [['NewConnectionStatus', 'Connected'], ['NewLastConnectionError', 'ERROR_NONE'], ['NewUptime', '1234']])),
    text(soapEnvelope('AddAnyPortMapping', [['NewReservedPort', '40000']])),
    text(soapEnvelope('GetSpecificPortMappingEntry', [['NewInternalPort', '8080'], ['NewInternalClient', '192.168.77.2'], ['NewEnabled', '1'], ['NewPortMappingDescription', 'natmapper &amp; co'], ['NewLeaseDuration', '3600']])),
    text(soapEnvelope('GetGenericPortMappingEntry', [['NewRemoteHost', ''], ['NewExternalPort', '8080'], ['NewProtocol', 'TCP'], ['NewInternalPort', '8080'], ['NewInternalClient', '192.168.77.2'], ['NewEnabled', '1'], ['NewPortMappingDescription', 'x'], ['NewLeaseDuration', '0']])),
    text(soapEnvelope('GetFirewallStatus', [['FirewallEnabled', '1'], ['InboundPinholeAllowed', '1']])),
    text(soapEnvelope('AddPinhole', [['UniqueID', '7']]))
  ]
}

/** Every decoder of a SOAP answer's values: each is run on what decodeSoapResponse returned. */
const VALUE_DECODERS: Array<(values: ReadonlyMap<string, string>) => unknown> = [
  decodeExternalIPAddress, decodeStatusInfo, decodeReservedPort, decodeFirewallStatus, decodePinholeId,
  (values) => decodePortMappingEntry(values, 'GetSpecificPortMappingEntry'),
  (values) => decodePortMappingEntry(values, 'GetGenericPortMappingEntry')
]

export const TARGETS: FuzzTarget[] = [
  {
    name: 'pcp',
    corpus: pcpCorpus,
    maxRandomBytes: 1_200,
    run: (input) => {
      either(() => pcp.decodeResponse(input), () => pcp.decodeRequest(input))
    },
    allowed: malformedOnly
  },
  {
    name: 'nat-pmp',
    corpus: natpmpCorpus,
    maxRandomBytes: 1_200,
    run: (input) => {
      either(() => natpmp.decodeResponse(input), () => natpmp.decodeRequest(input))
    },
    allowed: malformedOnly
  },
  {
    // The 5350 listener's reader never throws: anything it cannot read is not an announcement.
    name: 'announcement',
    corpus: () => [...pcpCorpus(), ...natpmpCorpus()],
    maxRandomBytes: 1_200,
    run: (input) => { readAnnouncement(input) },
    allowed: () => false
  },
  {
    name: 'ssdp',
    corpus: () => fixtures(/\.ssdp$/),
    maxRandomBytes: 9_000,
    run: (input) => {
      either(() => decodeSearchResponse(input), () => decodeNotify(input))
    },
    allowed: malformedOnly
  },
  {
    name: 'http',
    corpus: () => [
      ...fixtures(/\.http$/),
      ...[...descriptions(), text(soapEnvelope('GetExternalIPAddress', [['NewExternalIPAddress', '11.77.0.1']]))].flatMap(httpFramings)
    ],
    maxRandomBytes: 20_000,
    run: (input, random) => {
      const parser = new HttpResponseParser({ maxBodyBytes: MAX_SOAP_RESPONSE_BYTES })
      // As a socket delivers it: in up to 8 pieces cut at random places.
      let at = 0
      const pieces = 1 + Math.floor(random() * 8)
      for (let piece = 1; piece <= pieces && parser.response === undefined; piece++) {
        const end = piece === pieces ? input.length : at + Math.floor(random() * (input.length - at + 1))
        parser.push(input.subarray(at, end))
        at = end
      }
      if (parser.response === undefined) parser.end()
    },
    allowed: malformedOnly
  },
  {
    name: 'description',
    corpus: () => [...descriptions(), ...fixtures(/\.http$/).map((bytes) => {
      const body = utf8(bytes).indexOf('<?xml')
      return body < 0 ? bytes : bytes.subarray(Buffer.byteLength(utf8(bytes).slice(0, body)))
    })],
    maxRandomBytes: MAX_DESCRIPTION_BYTES,
    run: (input) => { decodeDeviceDescription(utf8(input), new URL('http://192.168.77.1:5000/rootDesc.xml')) },
    allowed: malformedOnly
  },
  {
    name: 'soap',
    corpus: soapCorpus,
    maxRandomBytes: MAX_SOAP_RESPONSE_BYTES,
    run: (input, random) => {
      const action = SOAP_ACTIONS[Math.floor(random() * SOAP_ACTIONS.length)] ?? 'AddPortMapping'
      const body = utf8(input)
      // The envelope's action decides what the gateway meant; try the one it names too.
      const named = /<[\w:]*?(\w+)Response[\s>]/.exec(body)?.[1]
      for (const each of named === undefined ? [action] : [action, named]) {
        let values: Map<string, string>
        try {
          values = decodeSoapResponse(body, each)
        } catch (error) {
          if (error instanceof GatewayResultError || error instanceof MalformedMessageError) continue
          throw error
        }
        for (const decode of VALUE_DECODERS) {
          try { decode(values) } catch (error) { if (!(error instanceof MalformedMessageError)) throw error }
        }
      }
    },
    allowed: (error) => error instanceof MalformedMessageError || error instanceof GatewayResultError
  }
]
