/**
 * A cursor over a received message that reads big-endian (network byte order) fields, shared by
 * the NAT-PMP and PCP codecs. Every read is checked against the end of the message first, so a
 * truncated or lying message fails with a `MalformedMessageError` naming the field and offset,
 * never with `undefined` or a `RangeError` from below.
 */

import { MalformedMessageError } from '../errors.js'
import type { WireProtocol } from '../errors.js'

export class ByteReader {
  readonly #protocol: WireProtocol
  readonly #bytes: Uint8Array
  readonly #view: DataView
  #offset: number

  /** @param protocol names the protocol in the errors this reader throws */
  constructor (protocol: WireProtocol, bytes: Uint8Array) {
    this.#protocol = protocol
    this.#bytes = bytes
    // byteOffset matters: a received datagram is often a view into a larger pooled buffer.
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.#offset = 0
  }

  /** Where the next read starts, from the beginning of the message. */
  get offset (): number {
    return this.#offset
  }

  /** Bytes left after the cursor. */
  get remaining (): number {
    return this.#bytes.length - this.#offset
  }

  uint8 (field: string): number {
    return this.#view.getUint8(this.#claim(1, field))
  }

  uint16 (field: string): number {
    return this.#view.getUint16(this.#claim(2, field))
  }

  uint32 (field: string): number {
    return this.#view.getUint32(this.#claim(4, field))
  }

  /** A copy of the next `length` bytes, so the result does not alias the (reused) receive buffer. */
  bytes (length: number, field: string): Uint8Array {
    const start = this.#claim(length, field)
    return this.#bytes.slice(start, start + length)
  }

  /** Steps over reserved or padding bytes, which the RFCs say receivers ignore. */
  skip (length: number, field: string): void {
    this.#claim(length, field)
  }

  /** Checks that `length` bytes remain, advances past them and returns where they start. */
  #claim (length: number, field: string): number {
    if (!Number.isInteger(length) || length < 0) {
      throw new MalformedMessageError(this.#protocol, `${field}: invalid length ${length}`)
    }
    if (length > this.remaining) {
      throw new MalformedMessageError(this.#protocol,
        `${field} (${length} bytes at offset ${this.#offset}) runs past the end of the ${this.#bytes.length}-byte message`)
    }
    const start = this.#offset
    this.#offset += length
    return start
  }
}
