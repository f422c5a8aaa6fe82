import type dgram from 'node:dgram'

let loaded: typeof dgram | undefined

/**
 * node:dgram, loaded on the first socket rather than with the package: importing natmapper
 * should cost only what importing it needs (node:dgram takes ~1 ms to load).
 */
export async function loadDgram (): Promise<typeof dgram> {
  loaded ??= (await import('node:dgram')).default
  return loaded
}
