/**
 * `npm run fuzz`: runs every wire decoder on mutated and random inputs, counting crashes (any
 * exception but the decoder's typed errors) and hangs (an input that takes longer than the limit).
 *
 *   npm run fuzz -- [--count N | --seconds S] [--seed S] [--target NAME,...] [--hang-ms MS]
 *   npm run fuzz -- --target soap --seed S --replay INDEX    (re-runs one input, prints it)
 *
 * Each target runs in a worker thread; the main thread watches its progress through shared
 * memory and terminates it when one input runs past --hang-ms (a synchronous decoder that loops
 * can only be stopped from outside). Input INDEX is a pure function of (seed, target, INDEX), so
 * every finding is replayed with the seed and the index printed. Exits 1 on any finding.
 */
import { Buffer } from 'node:buffer'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { parseArgs } from 'node:util'
import { generateInput } from './fuzz/mutate.js'
import { mixSeed, prng } from './lib/random.js'
import { TARGETS, type FuzzTarget } from './fuzz/targets.js'

interface WorkerJob { target: string, seed: number, from: number, count: number, deadline: number, progress: SharedArrayBuffer }
type WorkerMessage =
  | { kind: 'crash', index: number, error: string }
  | { kind: 'done', ran: number, slowestMs: number, slowestIndex: number, rejected: number }

/** Progress slots in shared memory: the input being decoded, and whether one is in progress. */
const CURRENT = 0
const BUSY = 1

function inputOf (target: FuzzTarget, corpus: Uint8Array[], seed: number, index: number): { input: Uint8Array, random: () => number } {
  const targetIndex = TARGETS.indexOf(target)
  return {
    input: generateInput(corpus, seed, targetIndex, index, { maxRandomBytes: target.maxRandomBytes }),
    random: prng(mixSeed(seed, targetIndex, index, 0x5eed))
  }
}

function targetNamed (name: string): FuzzTarget {
  const target = TARGETS.find((each) => each.name === name)
  if (target === undefined) throw new Error(`no fuzz target '${name}' (targets: ${TARGETS.map((each) => each.name).join(', ')})`)
  return target
}

/** Worker side: decodes inputs from..from+count (or until the deadline), reporting crashes. */
function work (job: WorkerJob): void {
  const target = targetNamed(job.target)
  const corpus = target.corpus()
  const progress = new Int32Array(job.progress)
  let slowestMs = 0
  let slowestIndex = -1
  let rejected = 0
  let ran = 0
  for (let index = job.from; index < job.from + job.count; index++) {
    if ((ran & 255) === 0 && Date.now() > job.deadline) break
    const { input, random } = inputOf(target, corpus, job.seed, index)
    Atomics.store(progress, CURRENT, index)
    Atomics.store(progress, BUSY, 1)
    const started = performance.now()
    try {
      target.run(input, random)
    } catch (error) {
      if (target.allowed(error)) rejected++
      else parentPort?.postMessage({ kind: 'crash', index, error: error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error) } satisfies WorkerMessage)
    }
    const ms = performance.now() - started
    Atomics.store(progress, BUSY, 0)
    if (ms > slowestMs) { slowestMs = ms; slowestIndex = index }
    ran++
  }
  parentPort?.postMessage({ kind: 'done', ran, slowestMs, slowestIndex, rejected } satisfies WorkerMessage)
}

interface TargetResult { target: string, inputs: number, rejected: number, crashes: Array<{ index: number, error: string }>, hangs: number[], slowestMs: number, slowestIndex: number, seconds: number }

/** Runs one worker over a range; resolves when it is done, or when it hangs (then it is terminated). */
async function runRange (job: Omit<WorkerJob, 'progress'>, hangMs: number, result: TargetResult): Promise<{ hungAt?: number, ran: number }> {
  const progress = new SharedArrayBuffer(8)
  const view = new Int32Array(progress)
  // A worker does not inherit the main thread's module hooks: it registers tsx itself.
  const bootstrap = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(import.meta.url)})`
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), { workerData: { ...job, progress } satisfies WorkerJob })
  return await new Promise((resolve, reject) => {
    let lastIndex = -1
    let since = Date.now()
    const watchdog = setInterval(() => {
      const index = Atomics.load(view, CURRENT)
      if (Atomics.load(view, BUSY) === 0 || index !== lastIndex) { lastIndex = index; since = Date.now(); return }
      if (Date.now() - since > hangMs) {
        clearInterval(watchdog)
        void worker.terminate()
        resolve({ hungAt: index, ran: index - job.from + 1 })
      }
    }, 20)
    worker.on('message', (message: WorkerMessage) => {
      if (message.kind === 'crash') {
        result.crashes.push({ index: message.index, error: message.error })
      } else {
        clearInterval(watchdog)
        result.rejected += message.rejected
        if (message.slowestMs > result.slowestMs) { result.slowestMs = message.slowestMs; result.slowestIndex = message.slowestIndex }
        resolve({ ran: message.ran })
      }
    })
    worker.on('error', (error) => { clearInterval(watchdog); reject(error) })
  })
}

async function fuzzTarget (target: FuzzTarget, options: { seed: number, count: number, seconds: number, hangMs: number }): Promise<TargetResult> {
  const result: TargetResult = { target: target.name, inputs: 0, rejected: 0, crashes: [], hangs: [], slowestMs: 0, slowestIndex: -1, seconds: 0 }
  const started = Date.now()
  const deadline = options.seconds > 0 ? started + options.seconds * 1_000 : Number.MAX_SAFE_INTEGER
  let from = 0
  while (from < options.count && Date.now() < deadline && result.crashes.length < 20) {
    const outcome = await runRange({ target: target.name, seed: options.seed, from, count: options.count - from, deadline }, options.hangMs, result)
    result.inputs += outcome.ran
    if (outcome.hungAt === undefined) break
    result.hangs.push(outcome.hungAt)
    from = outcome.hungAt + 1
  }
  result.seconds = (Date.now() - started) / 1_000
  return result
}

function replay (target: FuzzTarget, seed: number, index: number): void {
  const { input, random } = inputOf(target, target.corpus(), seed, index)
  console.log(`input ${index} of ${target.name}, seed ${seed}, ${input.length} bytes:`)
  console.log(JSON.stringify(Buffer.from(input).toString('latin1')))
  const started = performance.now()
  try {
    target.run(input, random)
    console.log(`decoded in ${(performance.now() - started).toFixed(2)} ms`)
  } catch (error) {
    console.log(`${target.allowed(error) ? 'rejected (typed error)' : 'CRASH'} in ${(performance.now() - started).toFixed(2)} ms:`, error)
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      target: { type: 'string' },
      'hang-ms': { type: 'string', default: '2000' },
      replay: { type: 'string' }
    }
  })
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed)
  const count = values.count === undefined ? (values.seconds === undefined ? 100_000 : Number.MAX_SAFE_INTEGER) : Number(values.count)
  const seconds = values.seconds === undefined ? 0 : Number(values.seconds)
  const hangMs = Number(values['hang-ms'])
  for (const [name, value] of [['seed', seed], ['count', count], ['seconds', seconds], ['hang-ms', hangMs]] as const) {
    if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a non-negative integer`)
  }
  const targets = values.target === undefined ? TARGETS : values.target.split(',').map(targetNamed)
  if (values.replay !== undefined) {
    for (const target of targets) replay(target, seed, Number(values.replay))
    return
  }
  console.log(`fuzz: seed ${seed}, ${values.seconds === undefined ? `${count} inputs` : `${seconds} s`} per target, hang limit ${hangMs} ms, node ${process.version}`)
  console.log('target        inputs   rejected  crashes  hangs  slowest (ms)  inputs/s')
  let findings = 0
  for (const target of targets) {
    const result = await fuzzTarget(target, { seed, count, seconds, hangMs })
    findings += result.crashes.length + result.hangs.length
    console.log(`${result.target.padEnd(12)} ${String(result.inputs).padStart(7)} ${String(result.rejected).padStart(10)} ${String(result.crashes.length).padStart(8)} ${String(result.hangs.length).padStart(6)} ${result.slowestMs.toFixed(1).padStart(13)} ${Math.round(result.inputs / Math.max(result.seconds, 0.001)).toString().padStart(9)}`)
    for (const crash of result.crashes.slice(0, 5)) console.log(`  CRASH at input ${crash.index} (replay: npm run fuzz -- --target ${target.name} --seed ${seed} --replay ${crash.index}):\n    ${crash.error.split('\n').slice(0, 4).join('\n    ')}`)
    for (const index of result.hangs) console.log(`  HANG at input ${index} (replay: npm run fuzz -- --target ${target.name} --seed ${seed} --replay ${index})`)
  }
  console.log(findings === 0 ? 'fuzz: no crashes, no hangs' : `fuzz: ${findings} finding(s)`)
  if (findings > 0) process.exitCode = 1
}

if (isMainThread) {
  await main()
} else {
  work(workerData as WorkerJob)
}
