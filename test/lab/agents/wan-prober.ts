// Runs on the WAN host for as long as its stdin is open: each line is a probe request
// {"id":1,"protocol":"tcp","address":"11.77.0.1","port":8080,"timeout":1000}, answered with one
// JSON line {"id":1,"ok":true,"ms":3} or {"id":1,"ok":false,"error":"..."}. One process serves
// a whole test or soak, so a probe costs a round trip, not a process start.
import { createInterface } from 'node:readline'
import { assertInLabNamespace } from '../../helpers/netns.js'
import { roundTrip } from './echo.js'

interface ProbeRequest { id: number, protocol: 'tcp' | 'udp', address: string, port: number, timeout: number }

assertInLabNamespace()
const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  let request: ProbeRequest
  try { request = JSON.parse(line) as ProbeRequest } catch { return }
  const started = performance.now()
  roundTrip(request.protocol, request.address, request.port, request.timeout).then(
    () => { process.stdout.write(JSON.stringify({ id: request.id, ok: true, ms: Math.round(performance.now() - started) }) + '\n') },
    (error: unknown) => { process.stdout.write(JSON.stringify({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) }) + '\n') }
  )
})
