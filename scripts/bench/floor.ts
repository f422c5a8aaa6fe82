/**
 * The floor: the same exchanges natmapper makes, over a bare UDP socket, with packets built by
 * hand and no library around them (no retransmission, no validation beyond matching the opcode).
 * Whatever natmapper costs above this is the library's own overhead.
 */
import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'

async function exchange (socket: dgram.Socket, request: Buffer, responseOpcode: number): Promise<Buffer> {
  return await new Promise((resolve) => {
    const onMessage = (message: Buffer): void => {
      if (message[1] !== responseOpcode) return
      socket.off('message', onMessage)
      resolve(message)
    }
    socket.on('message', onMessage)
    socket.send(request)
  })
}

async function connected (gateway: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => { socket.connect(5351, gateway, resolve) })
  return socket
}

function pcpHeader (opcode: number, lifetime: number, clientAddress: string, length: number): Buffer {
  const packet = Buffer.alloc(length)
  packet[0] = 2
  packet[1] = opcode
  packet.writeUInt32BE(lifetime, 4)
  packet.writeUInt16BE(0xffff, 18) // IPv4-mapped client address
  clientAddress.split('.').forEach((octet, i) => { packet[20 + i] = Number(octet) })
  return packet
}

/** PCP: ANNOUNCE, then MAP (and, untimed, the delete). Returns ms for discover and for discover + map. */
export async function pcpFloor (gateway: string, clientAddress: string, port: number): Promise<{ discover: number, map: number }> {
  const started = performance.now()
  const socket = await connected(gateway)
  await exchange(socket, pcpHeader(0, 0, clientAddress, 24), 0x80)
  const discover = performance.now() - started
  const map = pcpHeader(1, 60, clientAddress, 60)
  const nonce = randomBytes(12)
  nonce.copy(map, 24)
  map[36] = 6
  map.writeUInt16BE(port, 40)
  map.writeUInt16BE(port, 42)
  map.writeUInt16BE(0xffff, 54)
  await exchange(socket, map, 0x81)
  const total = performance.now() - started
  map.writeUInt32BE(0, 4)
  await exchange(socket, map, 0x81)
  socket.close()
  return { discover, map: total }
}

/** NAT-PMP: external address request, then a TCP map request (and, untimed, the delete). */
export async function natPmpFloor (gateway: string, port: number): Promise<{ discover: number, map: number }> {
  const started = performance.now()
  const socket = await connected(gateway)
  await exchange(socket, Buffer.from([0, 0]), 128)
  const discover = performance.now() - started
  const map = Buffer.alloc(12)
  map[1] = 2
  map.writeUInt16BE(port, 4)
  map.writeUInt16BE(port, 6)
  map.writeUInt32BE(60, 8)
  await exchange(socket, map, 130)
  const total = performance.now() - started
  map.writeUInt16BE(0, 6)
  map.writeUInt32BE(0, 8)
  await exchange(socket, map, 130)
  socket.close()
  return { discover, map: total }
}
