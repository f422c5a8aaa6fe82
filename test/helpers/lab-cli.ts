/**
 * The real `natmapper` executable run inside a lab namespace, for the CLI lab suites: its output
 * lines as they come, its exit, and a TCP echo service for the WAN host to reach.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { createInterface } from 'node:readline'
import { gatewayLog, lab, ROOT } from './lab.js'

const CLI = ['--import', 'tsx', `${ROOT}src/cli/main.ts`]
export const BUILT_CLI = `${ROOT}dist/cli/main.js`

/** One natmapper process in a lab namespace: its output lines as they come, and its exit. */
export class Cli {
  readonly stdout: string[] = []
  readonly stderr: string[] = []
  readonly #child: ChildProcessWithoutNullStreams
  readonly #exited: Promise<number | null>
  readonly #args: string[]
  readonly #inLab: boolean
  #wake: Array<() => void> = []

  /**
   * `namespace` null: in this process's own namespace (unit tests, on loopback: give `script` the
   * network guard). `env`: the process's environment (default this one's).
   */
  constructor (args: string[], { namespace = lab.lanNamespace, script = CLI, env = process.env }: { namespace?: string | null, script?: string[], env?: NodeJS.ProcessEnv } = {}) {
    this.#args = args
    this.#inLab = namespace !== null
    this.#child = namespace === null
      ? spawn(process.execPath, [...script, ...args], { cwd: ROOT, env })
      : spawn('ip', ['netns', 'exec', namespace, process.execPath, ...script, ...args], { cwd: ROOT, env })
    const collect = (lines: string[]) => (line: string): void => {
      lines.push(line)
      for (const wake of this.#wake.splice(0)) wake()
    }
    createInterface({ input: this.#child.stdout }).on('line', collect(this.stdout))
    createInterface({ input: this.#child.stderr }).on('line', collect(this.stderr))
    this.#exited = new Promise((resolve) => this.#child.on('close', (code) => {
      resolve(code)
      for (const wake of this.#wake.splice(0)) wake()
    }))
  }

  /** stdout lines parsed as JSON (every line must be one object). */
  get events (): Array<Record<string, unknown>> {
    return this.stdout.map((line) => JSON.parse(line) as Record<string, unknown>)
  }

  /** Waits (generously) until `condition` holds on what was printed so far. */
  async until (what: string, condition: () => boolean, timeout = 30_000): Promise<void> {
    const deadline = Date.now() + timeout
    while (!condition()) {
      if (Date.now() > deadline || this.#child.exitCode !== null) throw new Error(`natmapper ${this.#args.join(' ')}: never ${what}\n${this.transcript()}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250)
        this.#wake.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  async event (name: string, count = 1): Promise<Record<string, unknown>> {
    await this.until(`printed ${count} "${name}" event(s)`, () => this.events.filter((e) => e.event === name).length >= count)
    return this.events.filter((e) => e.event === name)[count - 1] ?? {}
  }

  signal (signal: NodeJS.Signals): void {
    // `ip netns exec` execs node in place (no fork), so the signal reaches natmapper itself.
    this.#child.kill(signal)
  }

  /** The exit code, once the process ends by itself (it is killed, and the test fails, after `timeout`). */
  async exit (timeout = 30_000): Promise<number | null> {
    const timer = new Promise<'hung'>((resolve) => { setTimeout(() => { resolve('hung') }, timeout).unref() })
    const result = await Promise.race([this.#exited, timer])
    if (result === 'hung') {
      this.#child.kill('SIGKILL')
      throw new Error(`natmapper ${this.#args.join(' ')} did not exit within ${timeout} ms\n${this.transcript()}`)
    }
    return result
  }

  kill (): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL')
  }

  transcript (): string {
    const gateway = this.#inLab ? `\ngateway log:\n${gatewayLog().slice(-2000)}` : ''
    return `stdout:\n${this.stdout.join('\n')}\nstderr:\n${this.stderr.join('\n')}${gateway}`
  }
}

/** The environment without a cache file for the CLI (no HOME, no XDG_CACHE_HOME): PCP nonces stay random. */
export function withoutCacheFile (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'HOME' && name !== 'XDG_CACHE_HOME'))
}

/** Runs natmapper to its end. */
export async function natmapper (args: string[], options: { namespace?: string | null, script?: string[], env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null, stdout: string, stderr: string, cli: Cli }> {
  const cli = new Cli(args, options)
  try {
    const code = await cli.exit()
    return { code, stdout: cli.stdout.join('\n'), stderr: cli.stderr.join('\n'), cli }
  } finally {
    cli.kill()
  }
}

/** A TCP (or UDP) echo service on the LAN host, for the WAN host to reach through the mapping. */
export function echoService (port: number, protocol: 'tcp' | 'udp' = 'tcp'): ChildProcessWithoutNullStreams {
  // No host: node listens on '::', dual-stack, so IPv4 and IPv6 both reach it.
  const code = protocol === 'tcp'
    ? `require('net').createServer((s) => { s.on('error', () => {}); s.pipe(s) }).listen(${port}, () => console.log('listening'))`
    : `const s = require('dgram').createSocket('udp6'); s.on('message', (m, r) => s.send(m, r.port, r.address)); s.bind(${port}, '::', () => console.log('listening'))`
  return spawn('ip', ['netns', 'exec', lab.lanNamespace, process.execPath, '-e', code], { cwd: ROOT })
}

export async function listening (child: ChildProcessWithoutNullStreams): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => { resolve() })
    child.once('close', (code) => { reject(new Error(`echo service exited (${code})`)) })
  })
}

