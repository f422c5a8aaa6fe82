/**
 * A pause before every timed part of a discovery row, the same for every client, floors included:
 * the gateway done with what came before it (the last row's deletes, a search's answers still
 * due), so that no client is timed while miniupnpd still works for another.
 */
const GATEWAY_QUIET_MS = 50

export async function gatewayQuiet (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, GATEWAY_QUIET_MS))
}
