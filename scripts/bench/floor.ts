/**
 * The floor: the same exchanges natmapper makes, over a bare UDP socket, with packets built by
 * hand and no library around them (no retransmission, no validation beyond matching the opcode).
 * Whatever natmapper costs above this is the library's own overhead.
 */
import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import net from 'node:net'

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

/**
 * What a bare program does to find its gateway on Linux: read /proc/net/route once and take the
 * default route's next hop (hex, host byte order: little-endian here).
 */
function gatewayFromRouteTable (): string {
  for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
    const fields = line.split(/\s+/)
    const hex = fields[2]
    if (fields[1] === '00000000' && fields[7] === '00000000' && hex !== undefined) return [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join('.')
  }
  throw new Error('floor: no default route')
}

/**
 * The floor's gateway and our address: given, or (`route`) read from the route table, with our
 * address taken from the connected socket, as a bare program would.
 */
async function locate (gateway: string, clientAddress: string, route: boolean): Promise<{ socket: dgram.Socket, clientAddress: string }> {
  const socket = await connected(route ? gatewayFromRouteTable() : gateway)
  return { socket, clientAddress: route ? socket.address().address : clientAddress }
}

/**
 * PCP: ANNOUNCE, then MAP (and, untimed, the delete). Returns ms for discover and for discover +
 * map. `route`: find the gateway in the route table first.
 */
export async function pcpFloor (gateway: string, givenClientAddress: string, port: number, route = false): Promise<{ discover: number, map: number }> {
  const started = performance.now()
  const { socket, clientAddress } = await locate(gateway, givenClientAddress, route)
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
export async function natPmpFloor (gateway: string, port: number, route = false): Promise<{ discover: number, map: number }> {
  const started = performance.now()
  const { socket } = await locate(gateway, '', route)
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

/** Reads a whole HTTP/1.1 exchange over a fresh TCP connection (the server closes it). */
async function httpExchange (host: string, port: number, request: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => { socket.end(request) })
    let response = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { response += chunk })
    socket.on('end', () => { resolve(response) })
    socket.on('error', reject)
  })
}

function soapRequest (url: URL, serviceType: string, action: string, args: string): string {
  const body = `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:${action} xmlns:u="${serviceType}">${args}</u:${action}></s:Body></s:Envelope>`
  return `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: text/xml; charset="utf-8"\r\nSOAPAction: "${serviceType}#${action}"\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}

/**
 * UPnP: an M-SEARCH (unicast to the gateway and to the multicast group, as natmapper sends), the
 * description GET, then AddPortMapping; the delete is untimed.
 */
export async function upnpFloor (gateway: string, clientAddress: string, port: number): Promise<{ discover: number, map: number }> {
  const started = performance.now()
  const socket = dgram.createSocket('udp4')
  const location = await new Promise<string>((resolve) => {
    socket.on('message', (message) => {
      const match = /^location:\s*(\S+)/im.exec(message.toString())
      if (match?.[1] !== undefined) resolve(match[1])
    })
    socket.bind(0, clientAddress, () => {
      const search = 'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n\r\n'
      socket.send(search, 1900, gateway)
      socket.send(search, 1900, '239.255.255.250')
    })
  })
  socket.close()
  const { discover, map } = await upnpMapAt(new URL(location), clientAddress, port, started)
  return { discover, map }
}

/**
 * UPnP with the description URL already known (what a remembered gateway saves): the description
 * GET, then AddPortMapping; the delete is untimed. Times are from `started`.
 */
export async function upnpMapAt (description: URL, clientAddress: string, port: number, started = performance.now()): Promise<{ discover: number, map: number }> {
  const xml = await httpExchange(description.hostname, Number(description.port), `GET ${description.pathname} HTTP/1.1\r\nHost: ${description.host}\r\nConnection: close\r\n\r\n`)
  const service = /<serviceType>(urn:schemas-upnp-org:service:WANIPConnection:\d)<\/serviceType>[\s\S]*?<controlURL>([^<]+)<\/controlURL>/.exec(xml)
  if (service?.[1] === undefined || service[2] === undefined) throw new Error('floor: no WANIPConnection in the description')
  const control = new URL(service[2], description)
  const discover = performance.now() - started
  const add = await httpExchange(control.hostname, Number(control.port), soapRequest(control, service[1], 'AddPortMapping',
    `<NewRemoteHost></NewRemoteHost><NewExternalPort>${port}</NewExternalPort><NewProtocol>TCP</NewProtocol><NewInternalPort>${port}</NewInternalPort><NewInternalClient>${clientAddress}</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>floor</NewPortMappingDescription><NewLeaseDuration>60</NewLeaseDuration>`))
  if (!add.startsWith('HTTP/1.1 200')) throw new Error(`floor: AddPortMapping failed: ${add.slice(0, 200)}`)
  const map = performance.now() - started
  await httpExchange(control.hostname, Number(control.port), soapRequest(control, service[1], 'DeletePortMapping',
    `<NewRemoteHost></NewRemoteHost><NewExternalPort>${port}</NewExternalPort><NewProtocol>TCP</NewProtocol>`))
  return { discover, map }
}

/**
 * The "no NAT" floor where nothing listens: a PCP ANNOUNCE from a connected UDP socket, until the
 * kernel reports the gateway's ICMP port unreachable as ECONNREFUSED. Returns ms.
 */
export async function refusedFloor (gateway: string, clientAddress: string): Promise<number> {
  const started = performance.now()
  const socket = await connected(gateway)
  await new Promise<void>((resolve, reject) => {
    socket.on('message', () => { reject(new Error('floor: the gateway answered on 5351; it should refuse')) })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolve()
      else reject(error)
    })
    socket.send(pcpHeader(0, 0, clientAddress, 24))
  })
  const elapsed = performance.now() - started
  socket.close()
  return elapsed
}

/**
 * The CPU floor of a renewal: `count` PCP MAP exchanges for one mapping (the same nonce, as a
 * renewal sends) over a bare connected socket, each started by its own timer and spread over
 * `spreadMs`, as renewals are; then the delete. Returns the process CPU time (user + system) per
 * exchange, in ms, wake-ups included.
 */
export async function pcpRenewalFloor (gateway: string, clientAddress: string, port: number, count: number, spreadMs: number): Promise<{ exchanges: number, cpuMsPerExchange: number, used: NodeJS.CpuUsage, wallMs: number }> {
  const socket = await connected(gateway)
  const map = pcpHeader(1, 600, clientAddress, 60)
  randomBytes(12).copy(map, 24)
  map[36] = 6
  map.writeUInt16BE(port, 40)
  map.writeUInt16BE(port, 42)
  map.writeUInt16BE(0xffff, 54)
  await exchange(socket, map, 0x81) // created: what follows are renewals
  // Every reply is for this one mapping: each goes to the oldest exchange still waiting.
  const waiting: Array<() => void> = []
  socket.on('message', () => { waiting.shift()?.() })
  const cpu = process.cpuUsage()
  const wall = performance.now()
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    await new Promise((resolve) => setTimeout(resolve, i * spreadMs / count))
    await new Promise<void>((resolve) => {
      waiting.push(resolve)
      socket.send(map)
    })
  }))
  const used = process.cpuUsage(cpu)
  const wallMs = performance.now() - wall
  socket.removeAllListeners('message')
  map.writeUInt32BE(0, 4)
  await exchange(socket, map, 0x81)
  socket.close()
  return { exchanges: count, cpuMsPerExchange: (used.user + used.system) / 1000 / count, used, wallMs }
}
