import dgram from 'node:dgram'
import net from 'node:net'

/** A server that echoes what it receives, so the WAN host can prove it reached this host. */
export interface EchoServer { close: () => Promise<void> }

export async function startEcho (protocol: 'tcp' | 'udp', port: number, host = '0.0.0.0'): Promise<EchoServer> {
  if (protocol === 'tcp') {
    const connections = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      connections.add(socket)
      socket.on('close', () => connections.delete(socket))
      socket.on('error', () => {})
      socket.pipe(socket)
    })
    await new Promise<void>((resolve, reject) => { server.once('error', reject).listen(port, host, resolve) })
    return {
      close: async () => {
        for (const socket of connections) socket.destroy()
        await new Promise<void>((resolve) => server.close(() => { resolve() }))
      }
    }
  }
  // '::' gives a dual-stack socket: the IPv6 lab tests reach it on the LAN host's IPv6 address.
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
  socket.on('message', (message, remote) => { socket.send(message, remote.port, remote.address) })
  await new Promise<void>((resolve, reject) => { socket.once('error', reject).bind(port, host, resolve) })
  return { close: async () => { await new Promise<void>((resolve) => socket.close(() => { resolve() })) } }
}

/** Sends a token and waits for it to come back; rejects when it does not within `timeout`. */
export async function roundTrip (protocol: 'tcp' | 'udp', address: string, port: number, timeout: number): Promise<void> {
  const token = `natmapper-${process.pid}-${Date.now()}`
  if (protocol === 'tcp') {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: address, port, timeout })
      let received = ''
      socket.on('connect', () => socket.write(token))
      socket.on('data', (data) => {
        received += data.toString()
        if (received.includes(token)) { socket.destroy(); resolve() }
      })
      socket.on('timeout', () => { socket.destroy(); reject(new Error(`tcp ${address}:${port}: no echo within ${timeout} ms`)) })
      socket.on('error', (error) => { socket.destroy(); reject(error) })
    })
    return
  }
  await new Promise<void>((resolve, reject) => {
    const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4')
    const done = (error?: Error): void => {
      clearTimeout(timer)
      clearInterval(resend)
      socket.close()
      if (error === undefined) resolve()
      else reject(error)
    }
    const timer = setTimeout(() => { done(new Error(`udp ${address}:${port}: no echo within ${timeout} ms`)) }, timeout)
    // UDP may be lost; resend a few times within the limit.
    const resend = setInterval(() => { socket.send(token, port, address) }, 250)
    socket.on('message', (message) => { if (message.toString() === token) done() })
    socket.on('error', (error) => { done(error) })
    socket.send(token, port, address)
  })
}
