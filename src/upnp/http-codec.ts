/**
 * HTTP/1.1 message codec for the two exchanges UPnP needs (description GET, SOAP POST): request
 * bytes out, and an incremental response parser in. Pure: no sockets, no clock.
 *
 * The parser accepts what routers actually send (RFC 9112 framing: Content-Length, chunked, or
 * read-to-close for HTTP/1.0 servers that send no length; bare LF line ends; folded headers;
 * interim 1xx responses) and bounds everything: the head, the number of headers, chunk-size lines,
 * trailers and the body. Every failure is a MalformedMessageError.
 */
import { InvalidArgumentError, MalformedMessageError } from '../errors.js'
import { MAX_HTTP_HEADER_BYTES, MAX_HTTP_HEADERS } from './constants.js'

export interface HttpRequest {
  method: 'GET' | 'POST'
  url: URL
  /** Extra headers, in order. Host and Content-Length are added. */
  headers?: ReadonlyArray<readonly [string, string]>
  body?: Uint8Array
}

export interface HttpResponse {
  /** The minor version: HTTP/1.0 or HTTP/1.1. */
  httpVersion: '1.0' | '1.1'
  statusCode: number
  statusText: string
  /** Lower-case names; a repeated header's values are joined with ", ". */
  headers: ReadonlyMap<string, string>
  body: Uint8Array
}

export interface HttpResponseLimits {
  maxHeaderBytes: number
  maxHeaders: number
  maxBodyBytes: number
}

/** Serializes a request. Header names and values are checked: a CR or LF would split the request. */
export function encodeHttpRequest (request: HttpRequest): Uint8Array {
  const target = `${request.url.pathname === '' ? '/' : request.url.pathname}${request.url.search}`
  const lines = [`${request.method} ${target} HTTP/1.1`, `Host: ${request.url.host}`]
  for (const [name, value] of request.headers ?? []) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new InvalidArgumentError(`bad HTTP header name ${JSON.stringify(name)}`)
    if (/[\r\n\0]/.test(value)) throw new InvalidArgumentError(`HTTP header ${name} has a line break or NUL`)
    lines.push(`${name}: ${value}`)
  }
  if (request.body !== undefined) lines.push(`Content-Length: ${request.body.byteLength}`)
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
  return request.body === undefined ? head : Buffer.concat([head, request.body])
}

type Framing =
  | { kind: 'length', remaining: number }
  | { kind: 'chunked' }
  | { kind: 'close' }
  | { kind: 'none' }

type ChunkState = 'size' | 'data' | 'data-end' | 'trailer'

/** Most bytes of chunk-size line (with extensions) or trailer section we read. */
const MAX_CHUNK_LINE = 1_024
const MAX_TRAILER_BYTES = 8_192

/**
 * An incremental HTTP/1.x response parser. Feed it what the socket delivers with `push`; it
 * returns the response once it is complete. Call `end` when the peer closes the connection.
 */
export class HttpResponseParser {
  readonly #limits: HttpResponseLimits
  /** The head so far, as latin1 text (one character per byte). */
  #head = ''
  #status: Omit<HttpResponse, 'body'> | undefined
  #framing: Framing | undefined
  readonly #body: Uint8Array[] = []
  #bodyBytes = 0
  #chunkState: ChunkState = 'size'
  #chunkRemaining = 0
  #line = ''
  #trailerBytes = 0
  #result: HttpResponse | undefined

  constructor (limits: Partial<HttpResponseLimits> & Pick<HttpResponseLimits, 'maxBodyBytes'>) {
    this.#limits = { maxHeaderBytes: MAX_HTTP_HEADER_BYTES, maxHeaders: MAX_HTTP_HEADERS, ...limits }
  }

  /** The finished response, once there is one. */
  get response (): HttpResponse | undefined {
    return this.#result
  }

  /** Consumes bytes; returns the response when it is complete (bytes after it are ignored). */
  push (chunk: Uint8Array): HttpResponse | undefined {
    let bytes = chunk
    while (this.#result === undefined && bytes.byteLength > 0) {
      bytes = this.#framing === undefined ? this.#pushHead(bytes) : this.#pushBody(bytes)
    }
    return this.#result
  }

  /** The peer closed the connection: returns the response if that completes it, else throws. */
  end (): HttpResponse {
    if (this.#result !== undefined) return this.#result
    if (this.#framing === undefined) {
      throw malformed(this.#head === '' ? 'connection closed without a response' : 'connection closed inside the response head')
    }
    if (this.#framing.kind === 'close') return this.#finish()
    if (this.#framing.kind === 'length') throw malformed(`connection closed with ${this.#framing.remaining} body bytes missing`)
    throw malformed('connection closed inside a chunked body')
  }

  #pushHead (bytes: Uint8Array): Uint8Array {
    const searchFrom = Math.max(0, this.#head.length - 3)
    this.#head += latin1(bytes)
    const end = findHeadEnd(this.#head, searchFrom)
    if (end === undefined) {
      if (this.#head.length > this.#limits.maxHeaderBytes) throw malformed(`response head exceeds ${this.#limits.maxHeaderBytes} bytes`)
      return EMPTY
    }
    if (end.headLength > this.#limits.maxHeaderBytes) throw malformed(`response head exceeds ${this.#limits.maxHeaderBytes} bytes`)
    const rest = bytes.subarray(bytes.byteLength - (this.#head.length - end.bodyStart))
    const status = parseHead(this.#head.slice(0, end.headLength), this.#limits.maxHeaders)
    this.#head = ''
    if (status.statusCode >= 100 && status.statusCode < 200) {
      // RFC 9110 §15.2: an interim response (100 Continue) is followed by the real one.
      if (status.statusCode === 101) throw malformed('unexpected 101 Switching Protocols')
      return rest
    }
    this.#status = status
    this.#framing = framingOf(status, this.#limits.maxBodyBytes)
    if (this.#framing.kind === 'none' || (this.#framing.kind === 'length' && this.#framing.remaining === 0)) this.#finish()
    return rest
  }

  #pushBody (bytes: Uint8Array): Uint8Array {
    const framing = this.#framing
    if (framing === undefined || framing.kind === 'none') return EMPTY
    if (framing.kind === 'length') {
      const taken = bytes.subarray(0, framing.remaining)
      this.#append(taken)
      framing.remaining -= taken.byteLength
      if (framing.remaining === 0) this.#finish()
      return EMPTY
    }
    if (framing.kind === 'close') {
      this.#append(bytes)
      return EMPTY
    }
    return this.#pushChunked(bytes)
  }

  #pushChunked (bytes: Uint8Array): Uint8Array {
    if (this.#chunkState === 'data') {
      const taken = bytes.subarray(0, this.#chunkRemaining)
      this.#append(taken)
      this.#chunkRemaining -= taken.byteLength
      if (this.#chunkRemaining === 0) this.#chunkState = 'data-end'
      return bytes.subarray(taken.byteLength)
    }
    // The other states read whole lines.
    const newline = bytes.indexOf(0x0a)
    const piece = newline === -1 ? bytes : bytes.subarray(0, newline)
    this.#line += latin1(piece)
    const limit = this.#chunkState === 'trailer' ? MAX_TRAILER_BYTES : MAX_CHUNK_LINE
    if (this.#line.length > limit) throw malformed(`chunk framing line longer than ${limit} bytes`)
    if (newline === -1) return EMPTY
    const line = this.#line.endsWith('\r') ? this.#line.slice(0, -1) : this.#line
    this.#line = ''
    this.#takeChunkLine(line)
    return bytes.subarray(newline + 1)
  }

  #takeChunkLine (line: string): void {
    switch (this.#chunkState) {
      case 'size': {
        const size = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?$/.exec(line)
        if (size?.[1] === undefined) throw malformed(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`)
        const length = parseInt(size[1], 16)
        if (this.#bodyBytes + length > this.#limits.maxBodyBytes) throw tooLarge(this.#limits.maxBodyBytes)
        this.#chunkRemaining = length
        this.#chunkState = length === 0 ? 'trailer' : 'data'
        return
      }
      case 'data-end':
        if (line !== '') throw malformed('chunk data longer than its size')
        this.#chunkState = 'size'
        return
      case 'trailer':
        if (line === '') { this.#finish(); return }
        this.#trailerBytes += line.length
        if (this.#trailerBytes > MAX_TRAILER_BYTES) throw malformed(`trailers exceed ${MAX_TRAILER_BYTES} bytes`)
        return
      case 'data':
        return
    }
  }

  #append (bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return
    this.#bodyBytes += bytes.byteLength
    if (this.#bodyBytes > this.#limits.maxBodyBytes) throw tooLarge(this.#limits.maxBodyBytes)
    this.#body.push(bytes)
  }

  #finish (): HttpResponse {
    const status = this.#status
    if (status === undefined) throw malformed('response finished before its head')
    this.#result = { ...status, body: Buffer.concat(this.#body, this.#bodyBytes) }
    return this.#result
  }
}

const EMPTY = new Uint8Array(0)

function latin1 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

/** Where the head ends (CRLFCRLF, or LFLF from sloppy servers), searching from `from`. */
function findHeadEnd (text: string, from: number): { headLength: number, bodyStart: number } | undefined {
  const crlf = text.indexOf('\r\n\r\n', from)
  const lf = text.indexOf('\n\n', from)
  if (crlf === -1 && lf === -1) return undefined
  if (lf === -1 || (crlf !== -1 && crlf < lf)) return { headLength: crlf, bodyStart: crlf + 4 }
  return { headLength: lf, bodyStart: lf + 2 }
}

function parseHead (head: string, maxHeaders: number): Omit<HttpResponse, 'body'> {
  const lines = head.split(/\r?\n/)
  const statusLine = lines[0] ?? ''
  const status = /^HTTP\/1\.(\d)[ \t]+(\d{3})(?:[ \t]+(.*))?$/.exec(statusLine.trim())
  if (status === null) throw malformed(`bad status line ${JSON.stringify(statusLine.slice(0, 40))}`)
  const headers = new Map<string, string>()
  let previous: string | undefined
  let count = 0
  for (const line of lines.slice(1)) {
    if (line === '') continue
    if (line.startsWith(' ') || line.startsWith('\t')) {
      // RFC 9112 §5.2: obsolete line folding; the continuation joins the previous value.
      if (previous === undefined) throw malformed('folded header line without a header')
      headers.set(previous, `${headers.get(previous) ?? ''} ${line.trim()}`.trim())
      continue
    }
    if (++count > maxHeaders) throw malformed(`more than ${maxHeaders} headers`)
    const colon = line.indexOf(':')
    const name = colon > 0 ? line.slice(0, colon).toLowerCase() : ''
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw malformed(`bad header line ${JSON.stringify(line.slice(0, 40))}`)
    const value = line.slice(colon + 1).trim()
    const existing = headers.get(name)
    headers.set(name, existing === undefined ? value : `${existing}, ${value}`)
    previous = name
  }
  return {
    httpVersion: status[1] === '0' ? '1.0' : '1.1',
    statusCode: Number(status[2]),
    statusText: status[3] ?? '',
    headers
  }
}

/** RFC 9112 §6.3: how the body is delimited. */
function framingOf (status: Omit<HttpResponse, 'body'>, maxBodyBytes: number): Framing {
  if (status.statusCode === 204 || status.statusCode === 304) return { kind: 'none' }
  const contentEncoding = status.headers.get('content-encoding')
  // We never send Accept-Encoding, so a compressed body is a server bug we cannot read.
  if (contentEncoding !== undefined && contentEncoding.toLowerCase() !== 'identity') {
    throw malformed(`unsupported Content-Encoding ${JSON.stringify(contentEncoding.slice(0, 40))}`)
  }
  const transferEncoding = status.headers.get('transfer-encoding')
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.toLowerCase().split(',').map((coding) => coding.trim()).filter((coding) => coding !== '' && coding !== 'identity')
    if (codings.length === 0) return { kind: 'close' }
    if (codings.length === 1 && codings[0] === 'chunked') return { kind: 'chunked' }
    throw malformed(`unsupported Transfer-Encoding ${JSON.stringify(transferEncoding.slice(0, 40))}`)
  }
  const contentLength = status.headers.get('content-length')
  if (contentLength !== undefined) {
    // Repeated or comma-joined values must agree (RFC 9112 §6.3 item 5).
    const values = new Set(contentLength.split(',').map((value) => value.trim()))
    const [value] = values
    if (values.size !== 1 || value === undefined || !/^\d{1,15}$/.test(value)) {
      throw malformed(`bad Content-Length ${JSON.stringify(contentLength.slice(0, 40))}`)
    }
    const length = Number(value)
    if (length > maxBodyBytes) throw tooLarge(maxBodyBytes)
    return { kind: 'length', remaining: length }
  }
  // HTTP/1.0 servers (and some 1.1 ones) send no length and close the connection instead.
  return { kind: 'close' }
}

function malformed (message: string): MalformedMessageError {
  return new MalformedMessageError('upnp', `HTTP: ${message}`)
}

function tooLarge (maxBodyBytes: number): MalformedMessageError {
  return malformed(`body exceeds ${maxBodyBytes} bytes`)
}
