import { readFileSync } from 'node:fs'

/**
 * KEY=VALUE pairs from lab/lab.env, with NATMAPPER_LAB_INSTANCE applied as lab/lib.sh applies it:
 * a second lab on the same machine has suffixed namespace names and runtime paths, and the same
 * addresses (they live inside the namespaces).
 */
export function readLabEnv (): Record<string, string> {
  let text: string
  try { text = readFileSync(new URL('../../lab/lab.env', import.meta.url), 'utf8') } catch { return {} }
  const env: Record<string, string> = Object.fromEntries(
    text.split('\n')
      .map((line) => /^\s*([A-Z0-9_]+)=["']?([^"'#\s]*)["']?/.exec(line))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => [match[1] ?? '', match[2] ?? ''])
  )
  const instance = labInstance()
  if (instance === '') return env
  for (const key of Object.keys(env)) {
    if (key.startsWith('LAB_NS_')) env[key] = `${env[key] ?? ''}-${instance}`
  }
  if (env.LAB_RUN_DIR !== undefined) env.LAB_RUN_DIR += `-${instance}`
  if (env.LAB_LOCK_FILE !== undefined) env.LAB_LOCK_FILE = env.LAB_LOCK_FILE.replace(/\.lock$/, '') + `-${instance}.lock`
  return env
}

/** The lab instance this process works with ('' for the default lab). */
export function labInstance (): string {
  const instance = process.env.NATMAPPER_LAB_INSTANCE ?? ''
  if (instance !== '' && !/^[a-z0-9]{1,4}$/.test(instance)) {
    throw new Error(`NATMAPPER_LAB_INSTANCE must be 1-4 lowercase letters or digits, not '${instance}'`)
  }
  return instance
}
