/** The help pages: one per command and one overview, all plain text. */
import { MAX_DURATION_SECONDS, MIN_DURATION_SECONDS, type HelpTopic } from './args.js'

const SYNOPSIS: Record<HelpTopic, string> = {
  discover: 'natmapper discover [options]',
  ip: 'natmapper ip [options]',
  map: 'natmapper map <tcp|udp> <internal-port> [--external-port N] [--duration S] [--description T] [--once] [options]',
  unmap: 'natmapper unmap <tcp|udp> <internal-port> [--external-port N] [--force] [options]',
  list: 'natmapper list [options]',
  serve: 'natmapper serve --config <file> [--metrics [host:]port] [options]',
  status: 'natmapper status [--json]'
}

const GLOBAL_OPTIONS = `Options for every command:
  --gateway <address>   the gateway's IP address (default: the default route's next hop)
  --protocol <names>    protocols to try: pcp, nat-pmp, upnp; repeat the flag or separate
                        with commas (default: all; PCP is preferred, then NAT-PMP, then UPnP)
  --upnp-url <url>      the UPnP gateway's description URL, for routers that ignore SSDP
                        searches (e.g. http://192.168.1.1:5000/rootDesc.xml); its host
                        must be the gateway's address
  --timeout <ms>        how long to wait for a gateway, and for each request (default: 2500
                        for discovery, 4000 for a request)
  --family <f>          ipv4, ipv6 or all (discover and map only): which address families
                        (default: the family of --gateway; else all for discover and map,
                        ipv4 for the others). On IPv6 there is no translation: natmapper
                        opens an inbound pinhole to this host's own global address
  --json                print one JSON object per line on stdout instead of text
  --verbose             print every request and reply, decoded, on stderr
  -h, --help            show help`

const EXIT_CODES = `Exit codes:
  0  success
  1  the gateway or the network said no: no gateway found, a refusal, a timeout
  2  bad usage: unknown command or option, or a bad value`

const OVERVIEW = `natmapper: find the NAT gateway in front of this host and open ports on it
(PCP, NAT-PMP and UPnP IGD).

Usage: natmapper <command> [arguments] [options]

Commands:
  discover                          the IPv4 NAT and the IPv6 gateway, which protocols
                                    answer and how fast, the external address and whether
                                    it is publicly routable, whether IPv6 pinholes work
  ip                                the external address alone
  map <tcp|udp> <internal-port>     map a port and hold the mapping, renewing it, until
                                    Ctrl-C (then it is deleted); --once maps and exits
  unmap <tcp|udp> <internal-port>   delete a mapping made by an earlier run or another program
  list                              the gateway's mapping table (UPnP IGD only)
  serve --config <file>             hold every mapping the file names, as a service
  status                            what a running serve holds, and its counters
  help [command]                    this text, or a command's

${GLOBAL_OPTIONS}
  --version             print natmapper's version

${EXIT_CODES}

Examples:
  natmapper discover
  natmapper map tcp 8080
  natmapper map udp 51820 --duration 3600 --once --json
  natmapper help map`

const DETAILS: Record<HelpTopic, string> = {
  discover: `Finds the gateway (from the default route unless --gateway is given), probes every
protocol at once and waits for each to answer or fail, then asks the gateway for its
external address. Shows each protocol's result and time, the protocol natmapper would
use, and whether the external address is publicly routable (a private or shared one
means another NAT is in front of this gateway: double NAT). Both families by default:
for IPv6, the gateway on the IPv6 default route and whether natmapper can open inbound
pinholes there (PCP or UPnP WANIPv6FirewallControl), or why not. Exits 0 when some family
has a gateway natmapper can use; with --json, one object per family, with "family".`,
  ip: 'Prints the gateway\'s external address, alone on a line (with --json, as an object).',
  map: `Maps <internal-port> on this host to an external port on the gateway and holds the
mapping: it is renewed before its lease runs out, and a status line follows it
(established, renewals, changes of port or address, errors). Ctrl-C or SIGTERM deletes
the mapping at the gateway, then natmapper exits. The gateway may grant another
external port than the one asked for: the one shown is the one granted. If the gateway
refuses the first attempt, map exits 1; later failures are shown and retried.
By default one mapping per family that works (--family all): a port mapping on the IPv4
NAT and a pinhole on the IPv6 gateway, each line named by its family; a family without
a gateway, or whose gateway refuses, is reported ("unavailable") and the other is held.
Routers commonly refuse ports below 1024 (their permission rules allow 1024-65535).

Options:
  --external-port <port>  the external port to ask for (default: the internal port)
  --duration <seconds>    the lease to ask for, ${MIN_DURATION_SECONDS} to ${MAX_DURATION_SECONDS} (default: 60); it is
                          renewed every third of it, or sooner if the gateway grants less
  --description <text>    the label UPnP routers show in their table (default: natmapper)
  --once                  create the mapping, print it and exit at once without deleting
                          it: the lease runs out by itself after --duration seconds

With --json, one object per event, each with its "family": discovered, established,
renewed, changed, failed, lost, external-address-changed, gateway-reset, gateway-changed,
unavailable, closing, closed (and left with --once).`,
  unmap: `Deletes a mapping that this process does not hold: one left by "map --once", an
earlier run or another program on this host. NAT-PMP deletes by protocol and internal
port, UPnP by external port (--external-port, default: the internal port). PCP deletes
only what natmapper made on this host (the mapping is bound to its creator's nonce, which
natmapper derives from its cache file): for other programs' mappings use --protocol nat-pmp
or --protocol upnp, or wait for the lease to run out. A NAT-PMP
gateway accepts a delete even when it held no such mapping (miniupnpd, for one, does
not delete a PCP mapping this way): "accepted" is all it says. A UPnP entry that maps
to another host is not deleted (exit 1, naming the host) unless --force.

Options:
  --external-port <port>  the mapping's external port (UPnP; default: the internal port)
  --force                 delete a UPnP entry even when it maps to another host`,
  serve: `Holds every mapping named in the config file (an INI file, one [section] per
mapping: protocol, port, external-port, description, family; see systemd/natmapper.conf
in the package), renewing each, until SIGTERM or SIGINT, which delete them all at the
gateway and exit 0. Runs in the foreground, as systemd expects (systemd/natmapper.service),
and prints one line per event (established, changed, failed, lost, gateway reset, ...),
with no colour and no status line; renewals are counted, not printed. A family without a
gateway is looked for again, every 5 s at first, then up to every 5 minutes.
SIGHUP rereads the file: mappings it no longer names are deleted, new ones are made, the
others are left untouched (same external ports). A bad file, at start or on SIGHUP, is one
line naming the line and what is wrong; on SIGHUP the mappings held stay as they were.
The state and the counters are served on the Unix socket natmapper.sock in
$RUNTIME_DIRECTORY (else /run/natmapper), which only the service's user may use:
"natmapper status" reads it. Exit codes: 2 for a bad file at start, 1 when the socket
cannot be made (another serve runs).

Options:
  --config <file>          the mappings to hold (required)
  --metrics [host:]port    serve Prometheus metrics at http://host:port/metrics (default:
                           off); a bare port listens on 127.0.0.1 only, another host must
                           be named (e.g. 0.0.0.0:9464)
  --gateway, --protocol, --timeout as for every command; --json prints one JSON object
  per event instead of text`,
  status: `Prints what a running "natmapper serve" holds: every mapping (external address and
port, family, protocol, lease left, last error), each family's gateway, and the counters
since the service started (requests, retransmissions, timeouts, answers by result code,
mappings established, renewed, changed, failed, lost and recovered, gateway resets and
changes, time since the last success). With --json, the service's status as one object.
It reads the service's socket: $RUNTIME_DIRECTORY/natmapper.sock, else
/run/natmapper/natmapper.sock; the service's user (or root) alone may read it.`,
  list: `Prints the gateway's mapping table. Only UPnP IGD gateways can list it; natmapper
says so and exits 1 when the protocol in use cannot (PCP, NAT-PMP): try --protocol upnp.`
}

/** The overview, or one command's page. */
export function helpText (topic?: HelpTopic): string {
  if (topic === undefined) return OVERVIEW
  return `Usage: ${SYNOPSIS[topic]}\n\n${DETAILS[topic]}\n\n${GLOBAL_OPTIONS}\n\n${EXIT_CODES}`
}

/** What follows a usage error's one line: the synopsis and where to read more. */
export function usageHint (topic?: HelpTopic): string {
  if (topic === undefined) {
    return `Usage: natmapper <command> [arguments] [options]  (commands: discover, ip, map, unmap, list, serve, status, help)\nRun "natmapper help" for more.`
  }
  return `Usage: ${SYNOPSIS[topic]}\nRun "natmapper help ${topic}" for more.`
}
