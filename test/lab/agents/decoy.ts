// A decoy for the LOCATION trust tests (home.test.ts), in one of two roles:
// - `ssdp` (in the gateway's namespace, where nft sends the LAN's searches to its port instead of
//   miniupnpd's): answers every M-SEARCH as an IGD would, with `location` as LOCATION;
// - `http` (on another host): counts the connections and bytes it receives on [::]:port and
//   answers nothing. A client that refuses the host may connect (to learn its link-layer address)
//   but must send no request.
// Reports `ready`, then `connection` and `data` events; ends on stdin's end.
import dgram from 'node:dgram'
import net from 'node:net'
import { agentConfig, report } from './agent-io.js'

const config = agentConfig<{ role: 'ssdp', port: number, location: string } | { role: 'http', port: number }>()

if (config.role === 'ssdp') {
  const socket = dgram.createSocket({ type: 'udp6', reuseAddr: true })
  socket.on('message', (message, remote) => {
    const text = message.toString('latin1')
    const searchTarget = /\r\nST:[ \t]*(.*)\r\n/i.exec(text)?.[1]?.trim()
    if (!text.startsWith('M-SEARCH') || searchTarget === undefined) return
    const answer = 'HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n' +
      `ST: ${searchTarget}\r\nUSN: uuid:6e61746d-6170-7065-722d-6c6162000001::${searchTarget}\r\nEXT:\r\n` +
      `SERVER: Debian UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: ${config.location}\r\n\r\n`
    socket.send(Buffer.from(answer, 'latin1'), remote.port, remote.address)
    report('search', { from: remote.address })
  })
  socket.bind(config.port, '::', () => { report('ready') })
  process.stdin.on('end', () => { socket.close() }).resume()
} else {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    report('connection', { from: socket.remoteAddress })
    socket.on('data', (data: Buffer) => { report('data', { bytes: data.length }) })
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(config.port, '::', () => { report('ready') })
  process.stdin.on('end', () => {
    for (const socket of sockets) socket.destroy()
    server.close()
  }).resume()
}
