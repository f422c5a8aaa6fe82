import { statSync } from 'node:fs'
import { readLabEnv } from './lab-env.js'

/** The lab's namespace names, from lab/lab.env (LAB_NS_*, for this lab instance). */
function labNamespaceNames (): string[] {
  return Object.entries(readLabEnv()).filter(([key]) => key.startsWith('LAB_NS_')).map(([, name]) => name)
}

/**
 * The lab namespace this process runs in, or undefined. A namespace is identified by the inode
 * of its handle, the same test `ip netns identify` makes: /proc/self/ns/net against the files
 * `ip netns add` bound under /run/netns.
 */
export function currentLabNamespace (): string | undefined {
  let own: number
  try {
    own = statSync('/proc/self/ns/net').ino
  } catch {
    return undefined
  }
  return labNamespaceNames().find((name) => {
    try { return statSync(`/run/netns/${name}`).ino === own } catch { return false }
  })
}

/**
 * True unless this process runs inside one of the lab's namespaces: anywhere else is treated as
 * the machine's own network, whose default gateway and multicast group belong to the workplace.
 */
export function inRootNetworkNamespace (): boolean {
  return currentLabNamespace() === undefined
}

/** Throws unless this process runs inside a lab namespace. Lab agents call it before discovering. */
export function assertInLabNamespace (): void {
  if (inRootNetworkNamespace()) {
    throw new Error('refusing to run gateway discovery outside the lab namespaces: run this inside the lab (lab/in.sh nm-lan ...)')
  }
}
