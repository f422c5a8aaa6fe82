/**
 * Builds a message of a known size from big-endian (network byte order) fields, shared by the
 * NAT-PMP and PCP codecs. Each value is checked against its field's width, and the error names
 * the field: the codecs pass the caller's option names, so this is also their argument validation.
 */

import { InvalidArgumentError } from '../errors.js'

export class ByteWriter {
  readonly #bytes: Uint8Array
  readonly #view: DataView
  #offset = 0

  /** @param length the exact size of the message; `finish()` checks every byte was written */
  constructor (length: number) {
    this.#bytes = new Uint8Array(length)
    this.#view = new DataView(this.#bytes.buffer)
  }

  uint8 (value: number, field: string): this {
    checkUnsigned(value, 8, field)
    this.#view.setUint8(this.#claim(1, field), value)
    return this
  }

  uint16 (value: number, field: string): this {
    checkUnsigned(value, 16, field)
    this.#view.setUint16(this.#claim(2, field), value)
    return this
  }

  uint32 (value: number, field: string): this {
    checkUnsigned(value, 32, field)
    this.#view.setUint32(this.#claim(4, field), value)
    return this
  }

  bytes (value: Uint8Array, field: string): this {
    this.#bytes.set(value, this.#claim(value.length, field))
    return this
  }

  /** Reserved fields and padding: the RFCs say senders set them to zero. */
  zeros (length: number, field: string): this {
    this.#claim(length, field)
    return this
  }

  /** The message; fails if fewer bytes were written than the length promised. */
  finish (): Uint8Array {
    if (this.#offset !== this.#bytes.length) {
      throw new InvalidArgumentError(`message is ${this.#bytes.length} bytes but only ${this.#offset} were written`)
    }
    return this.#bytes
  }

  /** Checks that `length` more bytes fit, advances past them and returns where they start. */
  #claim (length: number, field: string): number {
    if (this.#offset + length > this.#bytes.length) {
      throw new InvalidArgumentError(`${field} does not fit: the message is ${this.#bytes.length} bytes and ${this.#offset} are used`)
    }
    const start = this.#offset
    this.#offset += length
    return start
  }
}

/** Returns `value` if it is an integer that fits in `bits` unsigned bits, else throws naming `field`. */
export function checkUnsigned (value: number, bits: 8 | 16 | 32, field: string): number {
  const max = 2 ** bits - 1
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new InvalidArgumentError(`${field} must be an integer from 0 to ${max}, got ${String(value)}`)
  }
  return value
}
