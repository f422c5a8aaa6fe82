// What every lab agent shares: it checks it runs inside a lab namespace, reads its JSON config
// from argv[2], and reports events as one JSON line each on stdout (the Agent class reads them).
import { assertInLabNamespace } from '../../helpers/netns.js'

/** Refuses to run outside the lab, then returns the agent's config. */
export function agentConfig<T> (): T {
  assertInLabNamespace()
  return JSON.parse(process.argv[2] ?? '{}') as T
}

/** One event on stdout, stamped with the ms since the process started. */
export function report (event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ event, t: Math.round(performance.now()), ...fields }) + '\n')
}

/** An error as plain JSON fields: name, code, message, and a gateway refusal's own code and name. */
export function describeError (error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) }
  const { code, protocol, resultCode, resultName } = error as { code?: string, protocol?: string, resultCode?: number, resultName?: string }
  return { name: error.name, code, message: error.message, ...(resultCode === undefined ? {} : { protocol, resultCode, resultName }) }
}
