import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { withDeadline } from '../../src/core/deadline.js'
import { AbortError, InvalidArgumentError, MalformedMessageError, NetworkError, TimeoutError } from '../../src/errors.js'
import { encodeHttpRequest, HttpResponseParser, type HttpResponse } from '../../src/upnp/http-codec.js'
import { httpExchange } from '../../src/upnp/http.js'
import { mutationOf, splitAt } from '../fixtures/upnp/mutations.js'

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1')
const text = (body: Uint8Array): string => Buffer.from(body).toString('latin1')
const ACTIONTEC = readFileSync(new URL('../fixtures/upnp/actiontec-gt784wn.http', import.meta.url))

/** Feeds `pieces` and then the connection's end, as a socket would. */
function parse (pieces: readonly Uint8Array[], maxBodyBytes = 65_536, closes = true): HttpResponse {
  const parser = new HttpResponseParser({ maxBodyBytes })
  for (const piece of pieces) {
    const response = parser.push(piece)
    if (response !== undefined) return response
  }
  if (!closes) throw new Error('incomplete')
  return parser.end()
}

/** The parser's contract for any input: a response, or MalformedMessageError. */
function parsesOrRejects (pieces: readonly Uint8Array[]): HttpResponse | undefined {
  try {
    return parse(pieces, 4_096)
  } catch (error) {
    assert.ok(error instanceof MalformedMessageError, `unexpected ${String(error)}`)
    return undefined
  }
}

describe('HTTP request encoding', () => {
  it('writes a GET with Host and the extra headers', () => {
    const request = encodeHttpRequest({ method: 'GET', url: new URL('http://192.168.1.1:5000/rootDesc.xml?a=1#frag'), headers: [['Connection', 'close']] })
    assert.equal(text(request), 'GET /rootDesc.xml?a=1 HTTP/1.1\r\nHost: 192.168.1.1:5000\r\nConnection: close\r\n\r\n')
  })

  it('writes a POST with Content-Length and the body; IPv6 hosts stay bracketed', () => {
    const request = encodeHttpRequest({ method: 'POST', url: new URL('http://[fe80::1]/ctl'), body: bytes('<x/>') })
    assert.equal(text(request), 'POST /ctl HTTP/1.1\r\nHost: [fe80::1]\r\nContent-Length: 4\r\n\r\n<x/>')
  })

  it('refuses header values that would split the request', () => {
    assert.throws(() => encodeHttpRequest({ method: 'GET', url: new URL('http://h/'), headers: [['SOAPAction', 'a\r\nX: y']] }), InvalidArgumentError)
    assert.throws(() => encodeHttpRequest({ method: 'GET', url: new URL('http://h/'), headers: [['Bad Name', 'v']] }), InvalidArgumentError)
  })
})

describe('HTTP response parsing', () => {
  it('reads a Content-Length body and ignores what follows it', () => {
    const response = parse([bytes('HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\n\r\nhelloEXTRA')], 65_536, false)
    assert.equal(response.statusCode, 200)
    assert.equal(response.statusText, 'OK')
    assert.equal(response.httpVersion, '1.1')
    assert.equal(response.headers.get('content-type'), 'text/xml')
    assert.equal(text(response.body), 'hello')
  })

  it('decodes chunked bodies with extensions and trailers', () => {
    const response = parse([bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n')], 65_536, false)
    assert.equal(text(response.body), 'hello, world')
  })

  it('reads an HTTP/1.0 body without Content-Length to the close (a real Broadcom router)', () => {
    const response = parse([ACTIONTEC])
    assert.equal(response.httpVersion, '1.0')
    assert.equal(response.headers.get('content-type'), 'application/octet-stream')
    assert.match(text(response.body), /^<\?xml version="1\.0"\?>\r\n<root/)
    assert.match(text(response.body), /<\/root>\r\n$/)
  })

  it('accepts bare LF line ends, folded headers and repeated headers', () => {
    const response = parse([bytes('HTTP/1.1 200 OK\nX-A: one\n two\nX-B: 1\nX-B: 2\nContent-Length: 2\n\nok')], 65_536, false)
    assert.equal(response.headers.get('x-a'), 'one two')
    assert.equal(response.headers.get('x-b'), '1, 2')
    assert.equal(text(response.body), 'ok')
  })

  it('skips an interim 100 Continue', () => {
    const response = parse([bytes('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nbad')], 65_536, false)
    assert.equal(response.statusCode, 500)
    assert.equal(text(response.body), 'bad')
  })

  it('finishes a 204 at the end of its head', () => {
    assert.equal(parse([bytes('HTTP/1.1 204 No Content\r\n\r\n')], 65_536, false).body.length, 0)
  })

  it('gives the same response however the bytes are split', () => {
    const whole = parse([ACTIONTEC])
    for (const size of [1, 2, 3, 7, 64]) {
      const pieces: Uint8Array[] = []
      for (let offset = 0; offset < ACTIONTEC.length; offset += size) pieces.push(ACTIONTEC.subarray(offset, offset + size))
      assert.deepEqual(parse(pieces), whole)
    }
  })

  const rejected: Array<[string, string, number?]> = [
    ['a non-HTTP status line', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['HTTP/2', 'HTTP/2 200\r\n\r\n'],
    ['101 Switching Protocols', 'HTTP/1.1 101 Switching Protocols\r\n\r\n'],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nnonsense\r\n\r\n'],
    ['a folded line before any header', 'HTTP/1.1 200 OK\r\n folded\r\n\r\n'],
    ['a Content-Length over the cap', 'HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n'],
    ['conflicting Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'],
    ['a negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
    ['a gzip body', 'HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx'],
    ['gzip transfer coding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['a chunk size past the cap', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n'],
    ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n'],
    ['chunked bodies adding up past the cap', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'800\r\n'.concat('x'.repeat(2_048), '\r\n').repeat(3)}`, 4_096],
    ['a close-delimited body past the cap', `HTTP/1.0 200 OK\r\n\r\n${'x'.repeat(5_000)}`, 4_096],
    ['a head past the cap', `HTTP/1.1 200 OK\r\nX: ${'y'.repeat(9_000)}\r\n\r\n`],
    ['too many headers', `HTTP/1.1 200 OK\r\n${'X: y\r\n'.repeat(70)}\r\n`],
    ['a close before any byte', ''],
    ['a close inside the head', 'HTTP/1.1 200 OK\r\nContent-Le'],
    ['a close inside a Content-Length body', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'],
    ['a close inside a chunked body', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab']
  ]
  for (const [what, input, maxBodyBytes] of rejected) {
    it(`rejects ${what} with MalformedMessageError`, () => {
      assert.throws(() => parse([bytes(input)], maxBodyBytes ?? 65_536), MalformedMessageError)
    })
  }

  const samples = [
    ACTIONTEC,
    bytes('HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 12\r\n\r\n<root></root>'),
    bytes('HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n4;x\r\n<a/>\r\n0\r\nT: 1\r\n\r\n'),
    bytes('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\nServer: x\n\nbody')
  ]

  it('property: any bytes, split anywhere, parse or reject with MalformedMessageError (10 000 runs)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2_048 }), fc.array(fc.nat(), { maxLength: 6 }), (input, cuts) => {
      parsesOrRejects(splitAt(input, cuts))
    }), { numRuns: 10_000 })
  })

  it('property: mutated responses, split anywhere, parse or reject with MalformedMessageError (10 000 runs)', () => {
    fc.assert(fc.property(mutationOf(samples), fc.array(fc.nat(), { maxLength: 6 }), (input, cuts) => {
      parsesOrRejects(splitAt(input, cuts))
    }), { numRuns: 10_000 })
  })

  it('property: a framed body survives any split (2 000 runs)', () => {
    const framed = fc.tuple(fc.uint8Array({ maxLength: 600 }), fc.constantFrom('length', 'chunked', 'close'), fc.integer({ min: 1, max: 50 }))
      .map(([body, framing, chunkSize]) => {
        if (framing === 'length') return { body, wire: Buffer.concat([bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]) }
        if (framing === 'close') return { body, wire: Buffer.concat([bytes('HTTP/1.0 200 OK\r\n\r\n'), body]) }
        const pieces: Uint8Array[] = [bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')]
        for (let offset = 0; offset < body.length; offset += chunkSize) {
          const chunk = body.subarray(offset, offset + chunkSize)
          pieces.push(bytes(`${chunk.length.toString(16)}\r\n`), chunk, bytes('\r\n'))
        }
        pieces.push(bytes('0\r\n\r\n'))
        return { body, wire: Buffer.concat(pieces) }
      })
    fc.assert(fc.property(framed, fc.array(fc.nat(), { maxLength: 8 }), ({ body, wire }, cuts) => {
      assert.deepEqual(Buffer.from(parse(splitAt(wire, cuts)).body), Buffer.from(body))
    }), { numRuns: 2_000 })
  })
})

/** A loopback server whose connections are answered by `answer`; returns its URL. */
async function server (answer: (socket: net.Socket, request: string) => void): Promise<{ url: URL, close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const listener = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let request = ''
    socket.on('data', (chunk: Buffer) => {
      request += chunk.toString('latin1')
      if (request.includes('\r\n\r\n')) answer(socket, request)
    })
  })
  await new Promise<void>((resolve) => { listener.listen(0, '127.0.0.1', resolve) })
  const { port } = listener.address() as net.AddressInfo
  return {
    url: new URL(`http://127.0.0.1:${port}/desc.xml`),
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => { listener.close(() => { resolve() }) })
    }
  }
}

const get = async (url: URL, options: { timeout?: number, signal?: AbortSignal } = {}): Promise<HttpResponse> =>
  await withDeadline('test GET', { timeout: options.timeout ?? 1_000, ...(options.signal === undefined ? {} : { signal: options.signal }) }, async (signal) =>
    (await httpExchange({ method: 'GET', url, maxBodyBytes: 65_536, signal })).response)

describe('HTTP exchange over TCP', () => {
  it('sends the request and reads the response; reports our local address', async () => {
    let seen = ''
    const fake = await server((socket, request) => { seen = request; socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok') })
    const exchange = await withDeadline('test', { timeout: 1_000 }, async (signal) => await httpExchange({ method: 'GET', url: fake.url, maxBodyBytes: 100, signal }))
    assert.equal(text(exchange.response.body), 'ok')
    assert.equal(exchange.localAddress, '127.0.0.1')
    assert.match(seen, /^GET \/desc\.xml HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n\r\n$/)
    await fake.close()
  })

  it('times out on a body that never ends', async () => {
    const fake = await server((socket) => { socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n') })
    await assert.rejects(get(fake.url, { timeout: 100 }), TimeoutError)
    await fake.close()
  })

  it('rejects with AbortError when the caller aborts', async () => {
    const fake = await server(() => {})
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 30)
    await assert.rejects(get(fake.url, { signal: controller.signal }), AbortError)
    await fake.close()
  })

  it('rejects a refused connection with NetworkError', async () => {
    const fake = await server(() => {})
    await fake.close()
    await assert.rejects(get(fake.url), NetworkError)
  })

  it('rejects a connection closed without an answer with MalformedMessageError', async () => {
    const fake = await server((socket) => { socket.end() })
    await assert.rejects(get(fake.url), MalformedMessageError)
    await fake.close()
  })
})
