/**
 * Where the CLI writes: lines on stdout and stderr, and on a terminal one live status line that
 * is rewritten in place. A line printed while the status shows clears it first and redraws it
 * after, so the two never mix.
 */

/** The part of a stream the CLI uses (process.stdout, or a fake in tests). */
export interface TextSink {
  write: (text: string, callback?: (error?: Error | null) => void) => boolean
  isTTY?: boolean
  columns?: number
}

const CLEAR_LINE = '\r\u001b[2K'

export class Output {
  readonly #stdout: TextSink
  readonly #stderr: TextSink
  #status: string | undefined

  constructor (stdout: TextSink, stderr: TextSink) {
    this.#stdout = stdout
    this.#stderr = stderr
  }

  /** True when stdout is a terminal: the status line is drawn in place. */
  get live (): boolean {
    return this.#stdout.isTTY === true
  }

  /** Terminal width, to keep the status line on one row. */
  get columns (): number {
    const columns = this.#stdout.columns
    // A pseudo-terminal without a size (script(1), some CI runners) reports 0.
    return columns === undefined || columns <= 0 ? 100 : Math.max(20, columns - 1)
  }

  out (line: string): void {
    this.#around(() => { this.#stdout.write(line + '\n') })
  }

  err (line: string): void {
    this.#around(() => { this.#stderr.write(line + '\n') })
  }

  /** Draws (or redraws) the status line; a no-op unless stdout is a terminal. */
  status (text: string): void {
    if (!this.live) return
    this.#stdout.write(CLEAR_LINE + text)
    this.#status = text
  }

  clearStatus (): void {
    if (this.#status === undefined) return
    this.#stdout.write(CLEAR_LINE)
    this.#status = undefined
  }

  /** Resolves once everything written so far has been handed to the OS (before process.exit). */
  async flush (): Promise<void> {
    await Promise.all([this.#stdout, this.#stderr].map(async (sink) => {
      await new Promise<void>((resolve) => { sink.write('', () => { resolve() }) })
    }))
  }

  #around (write: () => void): void {
    const status = this.#status
    if (status !== undefined) this.#stdout.write(CLEAR_LINE)
    write()
    if (status !== undefined) this.#stdout.write(status)
  }
}
