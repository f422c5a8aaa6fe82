// Runs on the WAN host: opens one TCP connection to ADDRESS:PORT (a LAN echo service through a
// mapping) and keeps it open. Each "ping" line on stdin sends a token over that same connection
// and reports "pong" when it comes back, or "ping-failed" after TIMEOUT ms; "closed" reports the
// connection ending. Usage: wan-connection.ts '{"address":"11.77.0.1","port":8080,"timeout":3000}'
import net from 'node:net'
import { createInterface } from 'node:readline'
import { agentConfig, describeError, report } from './agent-io.js'

const { address, port, timeout } = agentConfig<{ address: string, port: number, timeout: number }>()
const socket = net.connect({ host: address, port })
let received = ''
let pending: { token: string, timer: NodeJS.Timeout } | undefined
socket.on('connect', () => { report('connected', { localPort: socket.localPort }) })
socket.on('data', (data) => {
  received += data.toString()
  if (pending !== undefined && received.includes(pending.token)) {
    clearTimeout(pending.timer)
    report('pong', { token: pending.token })
    pending = undefined
    received = ''
  }
})
socket.on('error', (error) => { report('connection-error', { error: describeError(error) }) })
socket.on('close', () => { report('closed') })

let sent = 0
const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  if (line === 'ping' && pending === undefined) {
    const token = `ping-${process.pid}-${++sent};`
    pending = { token, timer: setTimeout(() => { report('ping-failed', { token }); pending = undefined }, timeout) }
    socket.write(token)
  } else if (line === 'exit') {
    break
  }
}
if (pending !== undefined) clearTimeout(pending.timer)
socket.destroy()
