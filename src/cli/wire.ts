/**
 * --verbose: every message on the `natmapper:wire` channel, decoded with the protocols' own
 * codecs (PCP and NAT-PMP) or shown as text (UPnP). Pure: a WireMessage in, text or JSON out.
 */
import { Buffer } from 'node:buffer'
import type { WireMessage, WireNote } from '../index.js'
import {
  decodeRequest as decodeNatPmpRequest,
  decodeResponse as decodeNatPmpResponse,
  natPmpResultName,
  type NatPmpRequest,
  type NatPmpResponse
} from '../natpmp/codec.js'
import {
  decodeRequest as decodePcpRequest,
  decodeResponse as decodePcpResponse,
  pcpResultName,
  type PcpDecoded,
  type PcpRequest
} from '../pcp/codec.js'

/** UPnP bodies longer than this are cut, with a note of how much was left out. */
export const MAX_TEXT_CHARS = 800

export interface DecodedWire {
  /** One line: direction, protocol, peer, and what the message says. */
  summary: string
  /** The decoded fields (bytes as hex), or the text for UPnP. */
  fields: Record<string, unknown>
  /** UPnP: the message text, truncated; indented under the summary in human output. */
  text?: string
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')

export function decodeWire (message: WireMessage): DecodedWire {
  const arrow = message.direction === 'send' ? '->' : '<-'
  const head = `${arrow} ${message.protocol} ${message.peer}`
  try {
    switch (message.protocol) {
      case 'pcp': {
        const decoded = message.direction === 'send' ? pcpRequestFields(decodePcpRequest(message.bytes)) : pcpResponseFields(decodePcpResponse(message.bytes))
        return { summary: `${head} ${decoded.line}`, fields: decoded.fields }
      }
      case 'nat-pmp': {
        const decoded = message.direction === 'send' ? natPmpRequestFields(decodeNatPmpRequest(message.bytes)) : natPmpResponseFields(decodeNatPmpResponse(message.bytes))
        return { summary: `${head} ${decoded.line}`, fields: decoded.fields }
      }
      case 'upnp': {
        const full = Buffer.from(message.bytes).toString('utf8')
        const text = full.length > MAX_TEXT_CHARS ? `${full.slice(0, MAX_TEXT_CHARS)}\n[... ${full.length - MAX_TEXT_CHARS} more characters]` : full
        const firstLine = full.split(/\r?\n/, 1)[0] ?? ''
        return { summary: `${head} ${message.bytes.length} bytes: ${firstLine.slice(0, 120)}`, fields: { text }, text }
      }
    }
  } catch (error) {
    return { summary: `${head} ${message.bytes.length} bytes, undecodable (${(error as Error).message}): ${hex(message.bytes)}`, fields: { undecodable: (error as Error).message, hex: hex(message.bytes) } }
  }
}

export function wireJson (message: WireMessage, time: Date): Record<string, unknown> {
  const decoded = decodeWire(message)
  return {
    event: 'wire',
    time: time.toISOString(),
    protocol: message.protocol,
    direction: message.direction,
    peer: message.peer,
    bytes: message.bytes.length,
    ...(message.ignored === undefined ? {} : { ignored: message.ignored }),
    ...decoded.fields
  }
}

export function wireText (message: WireMessage): string {
  const decoded = decodeWire(message)
  if (message.ignored !== undefined) return `${decoded.summary}\n    ignored: ${message.ignored}`
  if (decoded.text === undefined) return decoded.summary
  // HTTP and SSDP end with a blank line: drop it, and indent the rest under the summary.
  const body = decoded.text.replace(/\r/g, '').trimEnd().split('\n').map((line) => `    ${line}`).join('\n')
  return `${decoded.summary}\n${body}`
}

/** A note (see WireNote): `!! upnp fe80::1%eth0 LOCATION ... not followed: ...`. */
export function noteText (note: WireNote): string {
  return `!! ${note.protocol} ${note.peer} ${note.text}`
}

export function noteJson (note: WireNote, time: Date): Record<string, unknown> {
  return { event: 'note', time: time.toISOString(), protocol: note.protocol, peer: note.peer, text: note.text }
}

interface Decoded { line: string, fields: Record<string, unknown> }

function pcpRequestFields (request: PcpRequest): Decoded {
  const fields: Record<string, unknown> = { kind: 'request', opcode: request.opcode, version: request.version, lifetimeSeconds: request.lifetimeSeconds, clientAddress: request.clientAddress }
  let line = `${request.opcode.toUpperCase()} request, lifetime ${request.lifetimeSeconds} s, client ${request.clientAddress}`
  if (request.opcode === 'map') {
    const map = request.map
    Object.assign(fields, { nonce: hex(map.nonce), transport: map.protocol, internalPort: map.internalPort, suggestedExternalPort: map.suggestedExternalPort, suggestedExternalAddress: map.suggestedExternalAddress })
    line += `, ${String(map.protocol)} internal port ${map.internalPort}, suggested ${map.suggestedExternalAddress} port ${map.suggestedExternalPort}, nonce ${hex(map.nonce)}`
  }
  if (request.options.length > 0) fields.options = request.options.map((option) => option.code)
  return { line, fields }
}

function pcpResponseFields (response: PcpDecoded): Decoded {
  if (response.kind === 'version-mismatch') {
    return { line: `UNSUPP_VERSION: the server speaks version ${response.serverVersion}`, fields: { kind: 'version-mismatch', serverVersion: response.serverVersion } }
  }
  const result = pcpResultName(response.resultCode)
  const fields: Record<string, unknown> = { kind: 'response', opcode: response.opcode, resultCode: response.resultCode, resultName: result, lifetimeSeconds: response.lifetimeSeconds, epochSeconds: response.epochSeconds }
  let line = `${response.opcode.toUpperCase()} response ${result} (${response.resultCode}), lifetime ${response.lifetimeSeconds} s, epoch ${response.epochSeconds}`
  if (response.opcode === 'map') {
    const map = response.map
    Object.assign(fields, { nonce: hex(map.nonce), transport: map.protocol, internalPort: map.internalPort, externalPort: map.externalPort, externalAddress: map.externalAddress })
    line += `, ${String(map.protocol)} internal port ${map.internalPort} -> ${map.externalAddress}:${map.externalPort}, nonce ${hex(map.nonce)}`
  }
  return { line, fields }
}

function natPmpRequestFields (request: NatPmpRequest): Decoded {
  if (request.opcode === 'external-address') return { line: 'external address request', fields: { kind: 'request', opcode: request.opcode } }
  const action = request.lifetimeSeconds === 0 ? 'delete' : 'map'
  return {
    line: `${request.protocol} ${action} request, internal port ${request.internalPort}, suggested port ${request.suggestedExternalPort}, lifetime ${request.lifetimeSeconds} s`,
    fields: { kind: 'request', opcode: request.opcode, transport: request.protocol, internalPort: request.internalPort, suggestedExternalPort: request.suggestedExternalPort, lifetimeSeconds: request.lifetimeSeconds }
  }
}

function natPmpResponseFields (response: NatPmpResponse): Decoded {
  const result = `${natPmpResultName(response.resultCode)} (${response.resultCode})`
  const fields: Record<string, unknown> = { kind: 'response', opcode: response.opcode, resultCode: response.resultCode, resultName: natPmpResultName(response.resultCode), truncated: response.truncated }
  if (response.epochSeconds !== undefined) fields.epochSeconds = response.epochSeconds
  const epoch = response.epochSeconds === undefined ? '' : `, epoch ${response.epochSeconds}`
  if (response.truncated) {
    return { line: `${response.opcode} response ${result}, truncated${epoch}`, fields }
  }
  if (response.opcode === 'external-address') {
    if (response.externalAddress !== undefined) fields.externalAddress = response.externalAddress
    return { line: `external address response ${result}${epoch}${response.externalAddress === undefined ? '' : `: ${response.externalAddress}`}`, fields }
  }
  Object.assign(fields, { transport: response.protocol, internalPort: response.internalPort, externalPort: response.externalPort, lifetimeSeconds: response.lifetimeSeconds })
  return { line: `${response.protocol} map response ${result}${epoch}, internal port ${response.internalPort} -> external port ${response.externalPort}, lifetime ${response.lifetimeSeconds} s`, fields }
}
