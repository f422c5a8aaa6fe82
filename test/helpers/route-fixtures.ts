import { readFileSync } from 'node:fs'

/**
 * A route command's output from test/fixtures/routes/, as the command printed it: without the
 * header comment ("# " lines) that says where a fixture comes from.
 */
export function recorded (name: string): string {
  return readFileSync(new URL(`../fixtures/routes/${name}`, import.meta.url), 'utf8').replace(/^(# .*\r?\n)+/, '')
}
