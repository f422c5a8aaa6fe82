/**
 * `npm run demo`: natmapper end to end, in a lab built from network namespaces (a LAN host, a
 * gateway running the real miniupnpd, a WAN host standing in for the internet). A web service on
 * the LAN host is mapped with the natmapper CLI and fetched from the WAN host at the external
 * address; then the CLI is stopped and the mapping is gone. Everything the demo starts is stopped
 * and the lab torn down at the end, on Ctrl-C and on failure too.
 *
 * This process sends no packet itself: every one comes from a process inside a lab namespace.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { acquireLabLock, lab, labEnv, labUnavailableReason, releaseLabLock, ROOT, runLabScript } from '../test/helpers/lab.js'

const SERVICE_PORT = 8080
const CLI = `${ROOT}dist/cli/main.js`
const STEP_LIMIT_MS = 30_000

const bold = (text: string): string => process.stdout.isTTY === true ? `\u001b[1m${text}\u001b[0m` : text
/** Set on Ctrl-C: steps still finishing in the background print nothing more. */
let interrupted = false
const say = (text = ''): void => { if (!interrupted) console.log(text) }
const quote = (text: string): void => { for (const line of text.trimEnd().split('\n')) say(`    | ${line}`) }
let stepNumber = 0
const step = (title: string, proving: string): void => {
  say()
  say(bold(`${++stepNumber}. ${title}`))
  say(`   ${proving}`)
}
const result = (text: string): void => { say(`   => ${text}`) }

// ---------------------------------------------------------------------------------------------
// What the demo starts, so that it can all be stopped whatever happens.

const children = new Set<ChildProcessWithoutNullStreams>()
let labUp = false
let lockHeld = false
let cleaning: Promise<void> | undefined

function inNamespace (namespace: string, args: string[]): ChildProcessWithoutNullStreams {
  // Its own process group: a Ctrl-C at the terminal reaches only the demo, which then stops each
  // child once (a second SIGINT would make natmapper exit without deleting its mapping).
  const child = spawn('ip', ['netns', 'exec', namespace, ...args], { cwd: ROOT, detached: true })
  children.add(child)
  child.on('close', () => children.delete(child))
  return child
}

/** Runs a short command in a namespace to its end. */
async function runIn (namespace: string, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = inNamespace(namespace, args)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (data: Buffer) => { stdout += data.toString() })
  child.stderr.on('data', (data: Buffer) => { stderr += data.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, STEP_LIMIT_MS)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Lines of a long-running child's stdout, awaited one condition at a time. */
function lineReader (child: ChildProcessWithoutNullStreams): (what: string, match: (line: string) => boolean) => Promise<string> {
  const lines: string[] = []
  let wake: (() => void) | undefined
  let closed = false
  createInterface({ input: child.stdout }).on('line', (line) => { lines.push(line); wake?.() })
  child.on('close', () => { closed = true; wake?.() })
  let next = 0
  return async (what, match) => {
    const deadline = Date.now() + STEP_LIMIT_MS
    while (true) {
      while (next < lines.length) {
        const line = lines[next++] ?? ''
        if (match(line)) return line
      }
      if (closed) throw new Error(`${what}: the process ended first`)
      if (Date.now() > deadline) throw new Error(`${what}: nothing within ${STEP_LIMIT_MS / 1000} s`)
      await new Promise<void>((resolve) => { const timer = setTimeout(resolve, 250); wake = () => { clearTimeout(timer); resolve() } })
    }
  }
}

/** The `natmapper map` families the lab has: natmapper prints one mapping's lines per family. */
const FAMILIES = ['IPv4', 'IPv6'] as const

/**
 * Quotes `natmapper map` lines until each family printed a line that matches `settles`, and returns
 * that line per family.
 */
async function untilEachFamily (cliLine: ReturnType<typeof lineReader>, settles: RegExp): Promise<Map<string, string>> {
  const settled = new Map<string, string>()
  while (settled.size < FAMILIES.length) {
    const line = await cliLine('natmapper map', (text) => { quote(text); return settles.test(text) })
    const family = FAMILIES.find((name) => line.includes(` ${name}: `))
    if (family !== undefined && !settled.has(family)) settled.set(family, line)
  }
  return settled
}

async function cleanUp (): Promise<void> {
  cleaning ??= (async () => {
    // Give natmapper its chance to delete its mapping, then make sure nothing is left.
    for (const child of children) child.kill('SIGINT')
    const deadline = Date.now() + 5_000
    while (children.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    for (const child of children) child.kill('SIGKILL')
    if (labUp) {
      try { runLabScript('down.sh', []) } catch (error) { console.error(`demo: lab/down.sh failed: ${(error as Error).message}`) }
      labUp = false
    }
    if (lockHeld) releaseLabLock()
    lockHeld = false
  })()
  await cleaning
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) return
    interrupted = true
    console.log(`\n${signal}: stopping the demo${labUp ? ' and tearing the lab down' : ''}...`)
    void cleanUp().then(() => { console.log('stopped: nothing left behind.'); process.exit(130) })
  })
}

// ---------------------------------------------------------------------------------------------
// The service on the LAN host and the client on the WAN host: node one-liners, nothing to install.

const SERVICE = `
const http = require('node:http')
http.createServer((request, response) => {
  response.end('hello from the web service on the LAN host ' + request.socket.localAddress + ':' + request.socket.localPort +
    '; you are ' + request.socket.remoteAddress + '\\n')
}).listen(${SERVICE_PORT}, '0.0.0.0', () => console.log('listening'))`

const HTTP_GET = `
const [host, port] = process.argv.slice(1)
const request = require('node:http').get({ host, port, path: '/', timeout: 3000 }, (response) => {
  let body = ''
  response.on('data', (chunk) => { body += chunk })
  response.on('end', () => { console.log(body.trim()) })
})
request.on('timeout', () => { request.destroy(new Error('no answer within 3 s')) })
request.on('error', (error) => { console.log(error.code ?? error.message); process.exitCode = 1 })`

async function httpGetFromWan (address: string, port: number): Promise<{ ok: boolean, text: string }> {
  const { code, stdout, stderr } = await runIn(lab.wanNamespace, [process.execPath, '-e', HTTP_GET, address, String(port)])
  return { ok: code === 0, text: (stdout + stderr).trim() }
}

function gatewayMappings (): string {
  return runLabScript('gateway.sh', ['mappings']).trim()
}

// ---------------------------------------------------------------------------------------------

async function demo (): Promise<void> {
  say(bold('natmapper demo: make a web service on a LAN host reachable from the internet, then close it again'))

  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" (npm run demo does)`)

  step('Build the lab', 'Three network namespaces: a LAN host, a NAT gateway running miniupnpd (UPnP IGD, NAT-PMP, PCP), and a WAN host playing the internet.')
  // The lab is shared with the test suites and the benchmark: one user at a time.
  const locking = acquireLabLock()
  let waitTimer: NodeJS.Timeout | undefined
  const waiting = new Promise<'waiting'>((resolve) => { waitTimer = setTimeout(() => { resolve('waiting') }, 1_000) })
  if (await Promise.race([locking.then(() => 'locked' as const), waiting]) === 'waiting') result('another run (tests or the benchmark) holds the lab: waiting for it...')
  clearTimeout(waitTimer)
  await locking
  lockHeld = true
  labUp = true
  const summary = runLabScript('up.sh', ['--mode', 'all']).trim()
  quote(summary)
  result(`LAN host ${lab.lanAddress} behind gateway ${lab.gatewayLanAddress}; the gateway's external (WAN) address is ${lab.gatewayWanAddress}; WAN host ${labEnv.LAB_WAN_IP ?? ''}`)

  step(`Start a web service on the LAN host, port ${SERVICE_PORT}`, 'A plain node HTTP server inside the LAN namespace.')
  const service = inNamespace(lab.lanNamespace, [process.execPath, '-e', SERVICE])
  await lineReader(service)('the web service', (line) => line === 'listening')
  result(`listening on ${lab.lanAddress}:${SERVICE_PORT}`)

  step('Before mapping: try it from the WAN host', `An HTTP GET from the WAN host to the gateway's external address ${lab.gatewayWanAddress}:${SERVICE_PORT}.`)
  const before = await httpGetFromWan(lab.gatewayWanAddress, SERVICE_PORT)
  quote(before.text)
  if (before.ok) throw new Error('the service answered before any mapping existed: the lab is not isolating the LAN')
  result('unreachable, as expected: the NAT lets nothing in')

  step('natmapper discover, on the LAN host', `Which gateway, which protocols answer, and the external address. ($ natmapper discover)`)
  const discovered = await runIn(lab.lanNamespace, [process.execPath, CLI, 'discover'])
  quote(discovered.stdout + discovered.stderr)
  if (discovered.code !== 0) throw new Error(`natmapper discover exited ${discovered.code}`)
  result('the gateway answers, and its external address is public')

  step(`natmapper map tcp ${SERVICE_PORT}, on the LAN host`, 'Maps the service on the gateway and holds the mapping, renewing it, until stopped. ($ natmapper map tcp 8080)')
  const cli = inNamespace(lab.lanNamespace, [process.execPath, CLI, 'map', 'tcp', String(SERVICE_PORT)])
  let cliStderr = ''
  cli.stderr.on('data', (data: Buffer) => { cliStderr += data.toString() })
  const cliExit = new Promise<number | null>((resolve) => cli.on('close', resolve))
  const cliLine = lineReader(cli)
  // One mapping per family (the lab has both): every line is quoted until each family is established
  // (a failed attempt is quoted too, and natmapper tries again, within the step's time limit).
  const settled = await untilEachFamily(cliLine, / established: /)
    .catch((error: Error) => { throw new Error(`${error.message}${cliStderr === '' ? '' : `: ${cliStderr.trim()}`}`) })
  const granted = / established: tcp (\S+):(\d+) -> /.exec(settled.get('IPv4') ?? '')
  if (granted === null) throw new Error(`natmapper did not establish the IPv4 mapping: ${settled.get('IPv4') ?? ''}`)
  const address = granted[1] ?? ''
  const port = Number(granted[2])
  const pinhole = / established: tcp (\S+):(\d+) -> /.exec(settled.get('IPv6') ?? '')
  if (pinhole === null) throw new Error(`natmapper did not open the IPv6 pinhole: ${settled.get('IPv6') ?? ''}`)
  result(`mapped: ${address}:${port} on the internet now leads to ${lab.lanAddress}:${SERVICE_PORT}, and a pinhole opens [${pinhole[1] ?? ''}]:${pinhole[2] ?? ''} to it on IPv6`)

  step('The gateway\'s forwarding rules', 'What miniupnpd wrote into nftables: protocol, external port, internal address and port. ($ lab/gateway.sh mappings)')
  const rules = gatewayMappings()
  quote(rules === '' ? '(none)' : rules)
  if (!rules.split('\n').some((line) => line.startsWith(`tcp ${port} `))) throw new Error(`the gateway holds no rule for tcp ${port}`)
  result(`the gateway forwards tcp ${port}`)

  step('After mapping: try it from the WAN host again', `The same HTTP GET, to ${address}:${port}, the address natmapper printed.`)
  const after = await httpGetFromWan(address, port)
  quote(after.text)
  if (!after.ok || !after.text.startsWith('hello')) throw new Error('the WAN host could not reach the service through the mapping')
  result('reachable: the LAN service answered the WAN host through the gateway')

  step('Stop natmapper with Ctrl-C (SIGINT)', 'natmapper deletes both mappings at the gateway before it exits.')
  cli.kill('SIGINT')
  const code = await Promise.race([cliExit, new Promise<'hung'>((resolve) => { setTimeout(() => { resolve('hung') }, STEP_LIMIT_MS).unref() })])
  await untilEachFamily(cliLine, / deleted at the gateway$| did not confirm/).catch(() => undefined)
  if (code !== 0) throw new Error(`natmapper exited with ${String(code)}${cliStderr === '' ? '' : `: ${cliStderr.trim()}`}`)
  result('natmapper exited with code 0')

  step('The gateway\'s forwarding rules, and the WAN host, once more', 'The rule is gone, and the service is unreachable again.')
  const rulesAfter = gatewayMappings()
  quote(rulesAfter === '' ? '(no rules)' : rulesAfter)
  if (rulesAfter.split('\n').some((line) => line.startsWith(`tcp ${port} `))) throw new Error(`the gateway still holds tcp ${port}`)
  const closed = await httpGetFromWan(address, port)
  quote(closed.text)
  if (closed.ok) throw new Error('the service is still reachable after the mapping was deleted')
  result('nothing left open on the gateway')

  step('Tear the lab down', 'Stops every process in the lab namespaces and deletes them. ($ lab/down.sh)')
  service.kill('SIGKILL')
  await cleanUp()
  const labNamespaces = Object.entries(labEnv).filter(([key]) => key.startsWith('LAB_NS_')).map(([, name]) => name)
  const leftovers = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n')
    .filter((line) => labNamespaces.includes(line.split(' ')[0] ?? ''))
  if (leftovers.length > 0) throw new Error(`namespaces left behind: ${leftovers.join(', ')}`)
  result('no lab namespace and no demo process left')
  say()
  say(bold('Demo complete: natmapper mapped a LAN service, the WAN host reached it, and Ctrl-C closed it again.'))
}

// Before anything else: without root or the lab tools, one line that says what to run instead.
const unavailable = labUnavailableReason()
if (unavailable !== undefined) {
  console.error(`natmapper demo: cannot build the lab: ${unavailable}; run on Debian as root: bash lab/install.sh && npm ci && npm run demo`)
  process.exit(2)
}
// Built here rather than in the npm script, so that the check above comes first.
const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, encoding: 'utf8' })
if (build.status !== 0) {
  console.error(`natmapper demo: npm run build failed:\n${build.stdout}${build.stderr}`)
  process.exit(1)
}

try {
  await demo()
} catch (error) {
  if (!interrupted) {
    console.error()
    console.error(`demo FAILED${stepNumber > 0 ? ` at step ${stepNumber}` : ''}: ${(error as Error).message}`)
    await cleanUp()
    process.exit(1)
  }
}
