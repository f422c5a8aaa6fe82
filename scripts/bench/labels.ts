/** Names of the benchmark's tables and rows, shared by the agent that measures and the report. */

export const GROUP = {
  all: 'All protocols (gateway mode all: PCP + NAT-PMP + UPnP IGDv2)',
  pcp: 'PCP only (gateway mode pmp)',
  natPmp: 'NAT-PMP only (gateway mode pmp)',
  upnp: 'UPnP only (gateway mode upnp: IGDv2, UDP 5351 closed)'
} as const

export const CLIENT = {
  pcpFloor: 'floor: bare UDP socket, PCP ANNOUNCE + MAP',
  natPmpFloor: 'floor: bare UDP socket, NAT-PMP address + map',
  pcpRouteFloor: 'floor: /proc/net/route read, then PCP ANNOUNCE + MAP',
  natPmpRouteFloor: 'floor: /proc/net/route read, then NAT-PMP address + map',
  upnpFloor: 'floor: bare sockets, M-SEARCH + GET description + AddPortMapping',
  upnpKnownFloor: 'floor: bare sockets, description URL known: GET description + AddPortMapping',
  natmapperDefaults: 'natmapper, default options (default route, all protocols)',
  natmapperAllGateway: 'natmapper, all protocols, gateway given',
  natmapperPcp: 'natmapper, protocols [pcp], gateway given',
  natmapperPcpRoute: 'natmapper, protocols [pcp], default route',
  natmapperNatPmp: 'natmapper, protocols [nat-pmp], gateway given',
  natmapperNatPmpRoute: 'natmapper, protocols [nat-pmp], default route',
  natmapperUpnp: 'natmapper, protocols [upnp], gateway given',
  natmapperUpnpRoute: 'natmapper, protocols [upnp], default route',
  natmapperUpnpRemembered: 'natmapper, protocols [upnp], gateway given, gateway remembered from the run before',
  achingbrainPmp: '@achingbrain/nat-port-mapper pmpNat()',
  achingbrainUpnp: '@achingbrain/nat-port-mapper upnpNat()',
  natpmpc: 'natpmpc (whole process)',
  upnpc: 'upnpc (whole process)'
} as const

export const NO_NAT = {
  floor: 'floor: connected UDP socket, PCP ANNOUNCE until ECONNREFUSED',
  defaults: 'natmapper, default options (all protocols)',
  binary: 'natmapper, protocols [pcp, nat-pmp]',
  natpmpc: 'natpmpc (whole process)'
} as const

export const PROCESS = {
  nodeFloor: 'node -e 0',
  cliPcp: 'natmapper map tcp P --once --protocol pcp --gateway GW',
  cliNatPmp: 'natmapper map tcp P --once --protocol nat-pmp --gateway GW',
  cliDefaults: 'natmapper map tcp P --once (default route, all protocols)',
  natpmpc: 'natpmpc -g GW -a P P tcp 60',
  cliVersion: 'natmapper --version (start-up alone, no network)',
  nonceFloor: 'node -e "crypto.getRandomValues(new Uint8Array(12))" (the runtime\'s floor for a PCP nonce)',
  importIndex: 'import natmapper (in-process)',
  importProcess: 'node --input-type=module -e "await import(natmapper)"',
  emptyModuleProcess: 'node --input-type=module -e ""',
  rssEmptyModule: 'node --input-type=module -e "" (the ESM loader, no natmapper)',
  rssBareSockets: 'floor: bare sockets holding one PCP mapping (route read, dgram, crypto nonce)',
  rssBareSocketsModule: 'the same floor as an ES module file, imported by URL as natmapper is',
  rssImportOnly: 'import natmapper, nothing else',
  rssOneMapping: 'one mapping held (default options: PCP)',
  rssOneUpnpMapping: 'one UPnP mapping held (mode upnp)'
} as const

/**
 * Who measures in which process: the floors, natmapper, the in-process reference client
 * (@achingbrain/nat-port-mapper) and the whole-process ones (natpmpc, upnpc, spawned) each get an
 * agent of their own. A client that allocates a lot leaves the garbage collector a debt that
 * whichever client runs next in the same process pays (a scavenge in the middle of its exchange).
 */
export const CLIENT_FAMILIES = ['floor', 'natmapper', 'reference', 'process'] as const
export type ClientFamily = typeof CLIENT_FAMILIES[number]
