/**
 * The protocols natmapper speaks and how each one's code is loaded: the one module that knows
 * them all, above the core (which sees only a ProbeRegistry) and the protocol folders.
 *
 * PCP and NAT-PMP are small and answer within a millisecond or two, so they load with the
 * package. UPnP (SSDP, HTTP, SOAP, the XML parser) is most of the code and waits ~50 ms for the
 * router's SSDP answer anyway: its probe's start loads only the SSDP search (upnp/probe.ts, a
 * small chunk), and the rest loads when a gateway answers (see there), so a program whose PCP
 * or NAT-PMP gateway answers first never compiles it.
 */
import type { ProbeContext, ProbeRegistry, ProtocolProbe } from './core/gateway-client.js'
import { natPmpProbe } from './natpmp/client.js'
import { pcpProbe } from './pcp/client.js'
import { loadOnce } from './load-once.js'
import { readInterfaceAddresses6 } from './net/default-gateway6.js'

/** A probe whose module is imported on the first call (once: later calls share the import). */
function onFirstUse (load: () => Promise<ProtocolProbe>): ProtocolProbe {
  const loaded = loadOnce(load)
  return async (context: ProbeContext) => await (await loaded())(context)
}

const upnpProbe = onFirstUse(async () => (await import('./upnp/probe.js')).upnpProbe)
// The facts that an IPv6 LOCATION names the gateway's own address: this host's addresses, from
// the module that loads with the package (the probe importing it would split it into a chunk).
const upnpPinholeProbe = onFirstUse(async () => (await import('./upnp/probe.js')).createUpnpPinholeProbe({ sameRouter: { addresses: readInterfaceAddresses6 } }))

/** IPv6 UPnP is WANIPv6FirewallControl pinholes, not port mappings. */
export const protocolProbes: ProbeRegistry = (protocol, family) => {
  switch (protocol) {
    case 'pcp': return pcpProbe
    case 'nat-pmp': return natPmpProbe
    case 'upnp': return family === 'IPv6' ? upnpPinholeProbe : upnpProbe
  }
}
