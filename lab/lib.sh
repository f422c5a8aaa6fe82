# shellcheck shell=bash
# Shared helpers for the natmapper lab scripts. Sourced, not executed.
#
# Everything here acts ONLY inside the lab network namespaces (nm-*).
# Nothing touches the root namespace's interfaces, routes, nftables or
# sysctls: veths are created directly inside the namespaces (`ip -n NS link
# add ... peer ... netns NS2`) so they never appear in the root namespace.

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lab.env
source "$LAB_DIR/lab.env"
lab_apply_instance() {
  # NATMAPPER_LAB_INSTANCE=x builds a second, independent lab beside the first (parallel work on
  # one machine): namespace names and runtime paths get a suffix; addresses stay the same, since
  # they live inside the namespaces. test/helpers/lab-env.ts applies the same rule.
  local inst=${NATMAPPER_LAB_INSTANCE:-}
  [[ -n $inst ]] || return 0
  if [[ ! $inst =~ ^[a-z0-9]{1,4}$ ]]; then
    echo "lab: NATMAPPER_LAB_INSTANCE must be 1-4 lowercase letters or digits, not '$inst'" >&2
    exit 2
  fi
  local var
  for var in LAB_NS_LAN LAB_NS_LAN2 LAB_NS_GW LAB_NS_WAN LAB_NS_GW2 LAB_NS_VPN; do printf -v "$var" '%s-%s' "${!var}" "$inst"; done
  LAB_RUN_DIR="$LAB_RUN_DIR-$inst"
  LAB_LOCK_FILE="${LAB_LOCK_FILE%.lock}-$inst.lock"
}
lab_apply_instance

LAB_NAMESPACES=("$LAB_NS_LAN" "$LAB_NS_LAN2" "$LAB_NS_GW" "$LAB_NS_WAN")
LAB_CONF="$LAB_RUN_DIR/miniupnpd.conf"
LAB_PIDFILE="$LAB_RUN_DIR/miniupnpd.pid"
LAB_LOG="$LAB_RUN_DIR/miniupnpd.log"
LAB_LEASES="$LAB_RUN_DIR/miniupnpd.leases"
LAB_MODE_FILE="$LAB_RUN_DIR/mode"
LAB_RADVD_CONF="$LAB_RUN_DIR/radvd.conf"
LAB_RADVD_LOG="$LAB_RUN_DIR/radvd.log"
LAB_MODES="all pmp upnp upnp-igd1 silent closed"
# Gateway profiles (lab/README.md, "Gateway profiles"): what the permission rules and lifetimes
# look like. permissive = the lab's own (every port, 1 s PCP lifetimes); stock = miniupnpd's
# sample config as OpenWrt, pfSense and OPNsense ship it; stock-igd1 = stock as IGDv1, UPnP only;
# stock-insecure = stock with secure_mode=no (any LAN host may map, and delete, for any other).
# home = stock's rules on a home network's IPv6: router advertisements (radvd) with a global and a
# ULA prefix, SLAAC with temporary addresses on the LAN hosts, default route via the router's
# link-local address.
LAB_PROFILES="permissive stock stock-igd1 stock-insecure home"
LAB_FRIENDLY_NAME="natmapper lab gateway"
# For the few python one-liners here: a pyenv shim first on PATH costs
# ~0.2 s per call, the system python3 ~10 ms.
LAB_PYTHON=python3
[[ -x /usr/bin/python3 ]] && LAB_PYTHON=/usr/bin/python3
# Second gateway (gateway2.sh): not built by up.sh, but torn down with the lab.
LAB_GW2_RUN_DIR="$LAB_RUN_DIR/gw2"
# VPN server (vpn.sh): likewise.
LAB_VPN_RUN_DIR="$LAB_RUN_DIR/vpn"

# Point the gateway helpers below (gw, lab_*miniupnpd*, lab_build_nft,
# lab_write_config, lab_flush_rules, lab_block_*, lab_drop_mapping) at the
# second gateway nm-gw2 instead of nm-gw: they all read these variables, so
# both gateways share one implementation. Safe to call twice.
lab_use_gw2() {
  LAB_NS_GW=$LAB_NS_GW2
  LAB_GW_LAN_IF=$LAB_GW2_LAN_IF
  LAB_GW_LAN_IP=$LAB_GW2_LAN_IP
  LAB_GW_WAN_IF=$LAB_GW2_WAN_IF
  LAB_GW_WAN_IP=$LAB_GW2_WAN_IP
  LAB_WAN_IF=$LAB_WAN2_IF
  LAB_WAN_IP=$LAB_WAN_IP2
  LAB_UUID=$LAB_GW2_UUID
  LAB_FRIENDLY_NAME="natmapper lab gateway 2"
  LAB_CONF="$LAB_GW2_RUN_DIR/miniupnpd.conf"
  LAB_PIDFILE="$LAB_GW2_RUN_DIR/miniupnpd.pid"
  LAB_LOG="$LAB_GW2_RUN_DIR/miniupnpd.log"
  LAB_LEASES="$LAB_GW2_RUN_DIR/miniupnpd.leases"
  LAB_MODE_FILE="$LAB_GW2_RUN_DIR/mode"
}

lab_err() { echo "lab: $*" >&2; }
lab_die() { lab_err "$@"; exit 1; }

lab_require_root() {
  [[ $EUID -eq 0 ]] || lab_die "must run as root (ip netns / nft)"
}

# Serialise lab scripts: tests may call up/down/gateway from parallel
# workers; two concurrent builds would corrupt each other. The lock fd is
# closed for miniupnpd (see lab_start_miniupnpd) so it never holds the lock.
lab_lock() {
  exec {LAB_LOCK_FD}>"$LAB_LOCK_FILE"
  flock -w 30 "$LAB_LOCK_FD" || lab_die "timeout waiting for $LAB_LOCK_FILE"
}

lab_ns_exists() { [[ -e "/run/netns/$1" ]]; }

gw() { ip netns exec "$LAB_NS_GW" "$@"; }

lab_mode() { cat "$LAB_MODE_FILE" 2>/dev/null || echo none; }
lab_profile() { cat "${LAB_MODE_FILE%mode}profile" 2>/dev/null || echo none; }

# pid of the running miniupnpd, or nothing. Verifies the pid really is a
# miniupnpd (pid files can be stale after a crash / pid reuse).
lab_miniupnpd_pid() {
  local pid
  pid=$(cat "$LAB_PIDFILE" 2>/dev/null) || return 0
  [[ -n $pid ]] && lab_pid_alive "$pid" || return 0
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == miniupnpd ]] || return 0
  echo "$pid"
}

# Running (not gone, not a zombie waiting for pid 1 to reap it)?
lab_pid_alive() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

# lab_kill_pids GRACE_MS PID...: TERM, wait up to GRACE_MS, then KILL the
# survivors (GRACE_MS=0: KILL at once).
lab_kill_pids() {
  local grace=$1 p i alive
  shift
  local pids=("$@")
  ((${#pids[@]})) || return 0
  if ((grace == 0)); then
    kill -KILL "${pids[@]}" 2>/dev/null || true
  else
    kill -TERM "${pids[@]}" 2>/dev/null || true
  fi
  for ((i = 0; i * 20 < grace || i < 10; i++)); do
    alive=()
    for p in "${pids[@]}"; do lab_pid_alive "$p" && alive+=("$p"); done
    ((${#alive[@]})) || return 0
    sleep 0.02
  done
  kill -KILL "${alive[@]}" 2>/dev/null || true
  sleep 0.05
}

# Graceful stop (SIGTERM) by default, like a router daemon being stopped:
# miniupnpd 2.3.1 sends SSDP byebye and needs ~1.5 s to exit; it does NOT
# remove its nft rules (mappings keep forwarding while it is down).
# lab_stop_miniupnpd kill: SIGKILL at once (teardown: the namespace goes anyway).
lab_stop_miniupnpd() {
  local pid grace=5000
  [[ ${1:-} == kill ]] && grace=0
  pid=$(lab_miniupnpd_pid)
  [[ -n $pid ]] && lab_kill_pids "$grace" "$pid"
  rm -f "$LAB_PIDFILE" "$LAB_PIDFILE.daemon"
}

# Empty the three chains miniupnpd fills (DNAT, filter accepts, PCP PEER SNAT).
# lab_flush_chains: a firewall reload on the router, behind a running
# miniupnpd's back: its rule cache is filled first (as its own clients' requests
# do), then its three chains are flushed. It goes on answering from the cache:
# GetSpecificPortMappingEntry still finds every mapping, and an AddPortMapping
# renewal only updates the lease, while nothing is forwarded any more.
lab_flush_chains() {
  lab_prime_rule_cache tcp 9
  lab_flush_rules
}

lab_flush_rules() {
  lab_ns_exists "$LAB_NS_GW" || return 0
  gw nft flush chain "$LAB_NFT_FAMILY" "$LAB_NFT_NAT_TABLE" "$LAB_NFT_NAT_CHAIN" 2>/dev/null || true
  gw nft flush chain "$LAB_NFT_FAMILY" "$LAB_NFT_NAT_TABLE" "$LAB_NFT_POSTROUTING_CHAIN" 2>/dev/null || true
  gw nft flush chain "$LAB_NFT_FAMILY" "$LAB_NFT_TABLE" "$LAB_NFT_FORWARD_CHAIN" 2>/dev/null || true
}

# ---------------------------------------------------------------- faults
# Gateway silent to the LAN for the mapping protocols while miniupnpd keeps
# running: drop (no ICMP/RST, so clients see timeouts) NAT-PMP/PCP, SSDP and
# the UPnP HTTP port arriving from the LAN. A table of our own, so unblock
# removes exactly this and never touches miniupnpd's chains. Input hook
# only: DNAT'ed/forwarded traffic of existing mappings is unaffected.
lab_block_on() {
  lab_input_table "$LAB_NFT_BLOCK_TABLE" -10 \
    "iifname \"$LAB_GW_LAN_IF\" udp dport { $LAB_PMP_PORT, $LAB_SSDP_PORT } drop" \
    "iifname \"$LAB_GW_LAN_IF\" tcp dport $LAB_HTTP_PORT drop"
}

# Counts the NAT-PMP/PCP datagrams the gateway receives from the LAN (UDP 5351 on br-lan): a
# counter rule in a table of our own, ahead of everything (priority -20, before lab_block's drop).
# lab_count_reset creates it at 0 (or zeroes it), lab_count_read prints the count.
lab_count_reset() {
  lab_input_table "$LAB_NFT_COUNT_TABLE" -20 "iifname \"$LAB_GW_LAN_IF\" udp dport $LAB_PMP_PORT counter"
}

# lab_input_table NAME PRIORITY RULE...: (re)creates the gateway's table inet NAME with one
# input chain at PRIORITY holding the RULEs. "table X; delete table X; table X {...}" in one
# transaction is atomic and idempotent (create if missing, then replace).
lab_input_table() {
  local name=$1 priority=$2
  shift 2
  {
    printf 'table inet %s\ndelete table inet %s\ntable inet %s {\n  chain input {\n' "$name" "$name" "$name"
    printf '    type filter hook input priority %s; policy accept;\n' "$priority"
    printf '    %s\n' "$@"
    printf '  }\n}\n'
  } | gw nft -f -
}

lab_count_read() {
  gw nft list table inet "$LAB_NFT_COUNT_TABLE" | sed -n 's/.* counter packets \([0-9]*\) .*/\1/p'
}

lab_block_off() {
  printf 'table inet %s\ndelete table inet %s\n' "$LAB_NFT_BLOCK_TABLE" "$LAB_NFT_BLOCK_TABLE" | gw nft -f -
}

# miniupnpd's nft backend keeps a cache of the rules it reads back from the
# kernel, and re-reads only after a rule change of its own. Make it read now,
# with a read-only request sent from the gateway itself (over lo, so
# `block`/silent mode do not drop it): after we then delete rules behind its
# back, its view is stale in a known way (it still "has" the mapping until its
# next own rule change), instead of depending on whatever request came last.
lab_prime_rule_cache() {
  local proto=$1 eport=$2 upnp pmp p
  [[ -n "$(lab_miniupnpd_pid)" ]] || return 0
  upnp=$(sed -n 's/^enable_upnp=//p' "$LAB_CONF")
  pmp=$(sed -n 's/^enable_natpmp=//p' "$LAB_CONF")
  if [[ $pmp == yes ]]; then
    # NAT-PMP "delete the TCP mapping of internal port 9" for the gateway's
    # own address: it matches nothing, but miniupnpd lists its rules for it.
    # shellcheck disable=SC2016
    gw "$LAB_PYTHON" -c '
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.bind((sys.argv[1], 0)); s.connect((sys.argv[1], int(sys.argv[2])))
s.send(struct.pack("!BBHHHI", 0, 2, 0, 9, 0, 0)); s.recv(16)' "$LAB_GW_LAN_IP" "$LAB_PMP_PORT" ||
      lab_die "miniupnpd did not answer the NAT-PMP request that refreshes its rule cache"
  elif [[ $upnp == yes ]]; then
    # GetSpecificPortMappingEntry reads the rules (answer: the entry or 714).
    p=${proto^^}
    gw curl -sS -m 2 -o /dev/null -H 'Content-Type: text/xml; charset="utf-8"' \
      -H 'SOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:1#GetSpecificPortMappingEntry"' \
      --data "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:GetSpecificPortMappingEntry xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\"><NewRemoteHost></NewRemoteHost><NewExternalPort>$eport</NewExternalPort><NewProtocol>$p</NewProtocol></u:GetSpecificPortMappingEntry></s:Body></s:Envelope>" \
      "http://$LAB_GW_LAN_IP:$LAB_HTTP_PORT/ctl/IPConn" ||
      lab_die "miniupnpd did not answer the SOAP request that refreshes its rule cache"
  fi
}

# lab_drop_mapping PROTO EPORT [forward-only]: delete, behind miniupnpd's back,
# the rules it installed for external port EPORT/PROTO: the DNAT rule(s) in
# the nat chain, for each one the first matching forward accept (daddr=iaddr,
# dport=iport), and PCP PEER SNAT rules whose "to ...:EPORT" matches. With
# forward-only, only the forward accept(s): the DNAT rule stays, so miniupnpd
# still lists the mapping, but nothing reaches the host (a router that lists a
# mapping and no longer forwards it). The lease file and miniupnpd's own state
# are left alone. Deletes by handle, in one nft transaction. Returns 1 if
# nothing matched.
lab_drop_mapping() {
  local proto=$1 eport=$2 only=${3:-all} cmds
  lab_prime_rule_cache "$proto" "$eport"
  # (nat and filter chains live in one table, see lab_build_nft)
  cmds=$(gw nft -a -n list table "$LAB_NFT_FAMILY" "$LAB_NFT_TABLE" | perl -e '
    my ($proto, $eport, $fam, $tbl, $nat, $fwd, $post, $only) = @ARGV;
    my %num = (tcp => 6, udp => 17);
    my ($chain, @nat, @fwd, @post, @del, %used);
    sub ip2n { my @o = split /\./, shift; ($o[0] << 24) | ($o[1] << 16) | ($o[2] << 8) | $o[3] }
    sub num { my $v = shift; $v =~ /^0x/ ? hex($v) : $v }
    while (<STDIN>) {
      if (/^\s*chain (\S+) \{/) { $chain = $1; next }
      my ($h) = /# handle (\d+)\s*$/ or next;
      # IPv4 protocol: raw payload match @nh,72,8 (what 2.3.1 writes) or readable forms
      my $p = /\@nh,72,8 (0x[0-9a-f]+|\d+)/ ? num($1)
            : /\b(?:ip protocol|meta l4proto) (tcp|udp)\b/ ? $num{$1}
            : /\b(tcp|udp) [sd]port\b/ ? $num{$1} : -1;
      next unless $p == $num{$proto};
      my %r = (h => $h);
      ($r{dport}) = /dport (\d+)/;
      # IPv4 destination address: @nh,128,32 or "ip daddr"
      $r{daddr} = /\@nh,128,32 (0x[0-9a-f]+|\d+)/ ? num($1) : /ip daddr ([\d.]+)/ ? ip2n($1) : undef;
      @r{qw(to_ip to_port)} = /[ds]nat (?:ip )?to ([\d.]+):(\d+)/;
      push @nat, \%r if $chain eq $nat && /dnat/;
      push @fwd, \%r if $chain eq $fwd;
      push @post, \%r if $chain eq $post && /snat/;
    }
    my $all = $only ne "forward-only";
    for my $d (grep { defined $_->{dport} && $_->{dport} == $eport } @nat) {
      push @del, [$nat, $d->{h}] if $all;
      next unless defined $d->{to_ip};
      my ($f) = grep { !$used{$_->{h}} && defined $_->{dport} && $_->{dport} == $d->{to_port}
                       && defined $_->{daddr} && $_->{daddr} == ip2n($d->{to_ip}) } @fwd;
      if ($f) { $used{$f->{h}} = 1; push @del, [$fwd, $f->{h}] }
    }
    push @del, map { [$post, $_->{h}] } grep { $all && defined $_->{to_port} && $_->{to_port} == $eport } @post;
    print "delete rule $fam $tbl $_->[0] handle $_->[1]\n" for @del;
  ' "$proto" "$eport" "$LAB_NFT_FAMILY" "$LAB_NFT_TABLE" "$LAB_NFT_NAT_CHAIN" "$LAB_NFT_FORWARD_CHAIN" "$LAB_NFT_POSTROUTING_CHAIN" "$only")
  [[ -n $cmds ]] || return 1
  gw nft -f - <<<"$cmds"
}

# ---------------------------------------------------------------- teardown
# As lab_use_gw2, for the VPN server nm-vpn (vpn.sh): its "LAN" is the tunnel, its WAN the vpn-wan veth.
lab_use_vpn() {
  LAB_NS_GW=$LAB_NS_VPN
  LAB_GW_LAN_IF=$LAB_VPN_IF
  LAB_GW_LAN_IP=$LAB_VPN_IP
  LAB_GW_WAN_IF=$LAB_VPN_WAN_IF
  LAB_GW_WAN_IP=$LAB_VPN_WAN_IP
  LAB_LAN_SUBNET=$LAB_VPN_SUBNET
  LAB_UUID=6e61746d-6170-7065-722d-6c6162000003
  LAB_FRIENDLY_NAME="natmapper lab VPN server"
  LAB_CONF="$LAB_VPN_RUN_DIR/miniupnpd.conf"
  LAB_PIDFILE="$LAB_VPN_RUN_DIR/miniupnpd.pid"
  LAB_LOG="$LAB_VPN_RUN_DIR/miniupnpd.log"
  LAB_LEASES="$LAB_VPN_RUN_DIR/miniupnpd.leases"
  LAB_MODE_FILE="$LAB_VPN_RUN_DIR/mode"
}

# Anything still running inside a namespace (listeners started by tests, a
# stray upnpc ...) would keep it alive after `ip netns del`, so end those
# processes by pid first.
lab_del_ns() {
  local pids
  lab_ns_exists "$1" || return 0
  mapfile -t pids < <(ip netns pids "$1" 2>/dev/null)
  lab_kill_pids 2000 "${pids[@]}"
  ip netns del "$1" 2>/dev/null || true
}

# Second gateway only. Its miniupnpd gets SIGKILL first (SIGTERM would cost
# ~1.5 s and the namespace goes anyway). Deleting nm-gw2 also deletes the
# peers of its veths (br-lan port gw-lan3 in nm-gw, wan1 in nm-wan).
lab_teardown_gw2() {
  (lab_use_gw2 && lab_stop_miniupnpd kill)
  lab_del_ns "$LAB_NS_GW2"
  rm -rf "$LAB_GW2_RUN_DIR"
}

lab_teardown() {
  local ns
  lab_teardown_gw2
  # The VPN server (vpn.sh): its miniupnpd and tun relay end with its namespace.
  lab_del_ns "$LAB_NS_VPN"
  lab_stop_miniupnpd kill
  for ns in "${LAB_NAMESPACES[@]}"; do lab_del_ns "$ns"; done
  rm -rf "$LAB_RUN_DIR"
}

# ---------------------------------------------------------------- build
# lab_build_topology [PROFILE]: namespaces, links, IPv4, and IPv6 as PROFILE has it (home: by
# router advertisements, see lab_build_home6; any other: static addresses and routes).
lab_build_topology() {
  local ns profile=${1:-permissive}
  for ns in "${LAB_NAMESPACES[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  if [[ $profile == home ]]; then
    # As a desktop has it (GNOME/KDE's NetworkManager, Windows, macOS): privacy addresses
    # (RFC 8981) preferred for outgoing connections. Set before the LAN links exist, so that
    # they start with it.
    for ns in "$LAB_NS_LAN" "$LAB_NS_LAN2"; do
      ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.use_tempaddr=2 net.ipv6.conf.default.accept_ra=1 net.ipv6.conf.default.autoconf=1
    done
  fi

  # LAN: one bridge in the gateway, each LAN host on its own veth port.
  # Multicast snooping off: there is no IGMP querier, keep SSDP flooding simple.
  ip -n "$LAB_NS_GW" link add "$LAB_GW_LAN_IF" type bridge mcast_snooping 0
  ip -n "$LAB_NS_GW" link add "$LAB_GW_LAN_PORT1" type veth peer name "$LAB_LAN_IF" netns "$LAB_NS_LAN"
  ip -n "$LAB_NS_GW" link add "$LAB_GW_LAN_PORT2" type veth peer name "$LAB_LAN2_IF" netns "$LAB_NS_LAN2"
  # Fixed link-layer addresses: the gateway's link-local address (fe80::ff:fe77:1, the LAN hosts'
  # IPv6 next hop in the home profile) and the LAN hosts' SLAAC addresses (EUI-64) are then known.
  ip -n "$LAB_NS_GW" link set "$LAB_GW_LAN_IF" address "$LAB_GW_LAN_MAC"
  ip -n "$LAB_NS_LAN" link set "$LAB_LAN_IF" address "$LAB_LAN_MAC"
  ip -n "$LAB_NS_LAN2" link set "$LAB_LAN2_IF" address "$LAB_LAN2_MAC"
  ip -n "$LAB_NS_GW" link set "$LAB_GW_LAN_PORT1" master "$LAB_GW_LAN_IF" up
  ip -n "$LAB_NS_GW" link set "$LAB_GW_LAN_PORT2" master "$LAB_GW_LAN_IF" up
  ip -n "$LAB_NS_GW" link set "$LAB_GW_LAN_IF" up
  ip -n "$LAB_NS_GW" addr add "$LAB_GW_LAN_IP/$LAB_LAN_PREFIX" dev "$LAB_GW_LAN_IF"
  # SSDP NOTIFYs from the gateway must leave on the LAN side (no default route).
  ip -n "$LAB_NS_GW" route add 239.0.0.0/8 dev "$LAB_GW_LAN_IF"

  # WAN: point-to-point veth to the WAN host.
  ip -n "$LAB_NS_GW" link add "$LAB_GW_WAN_IF" type veth peer name "$LAB_WAN_IF" netns "$LAB_NS_WAN"
  ip -n "$LAB_NS_GW" addr add "$LAB_GW_WAN_IP/$LAB_WAN_PREFIX" dev "$LAB_GW_WAN_IF"
  ip -n "$LAB_NS_GW" link set "$LAB_GW_WAN_IF" up
  ip -n "$LAB_NS_WAN" addr add "$LAB_WAN_IP/$LAB_WAN_PREFIX" dev "$LAB_WAN_IF"
  ip -n "$LAB_NS_WAN" link set "$LAB_WAN_IF" up

  # LAN hosts: default route via the gateway; explicit multicast route so
  # SSDP M-SEARCH leaves on the LAN interface.
  local pair
  for pair in "$LAB_NS_LAN:$LAB_LAN_IF:$LAB_LAN_IP" "$LAB_NS_LAN2:$LAB_LAN2_IF:$LAB_LAN2_IP"; do
    IFS=: read -r ns dev ip <<<"$pair"
    ip -n "$ns" addr add "$ip/$LAB_LAN_PREFIX" dev "$dev"
    ip -n "$ns" link set "$dev" up
    ip -n "$ns" route add default via "$LAB_GW_LAN_IP" dev "$dev"
    ip -n "$ns" route add 239.0.0.0/8 dev "$dev"
  done

  # Per-namespace sysctls (these never affect the root namespace):
  # - forwarding for the NAT gateway (set before any IPv6 address: a router takes no
  #   advertisements, not even its own);
  # - no ICMP rate limiting, otherwise after a burst of ~6 probes to a closed
  #   port the kernel stops sending port-unreachable and "closed" looks
  #   like "silent";
  # - bridged LAN<->LAN frames must not traverse the inet forward hook.
  gw sysctl -qw net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000
  gw sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.icmp.ratelimit=0
  local k
  for k in iptables ip6tables arptables; do
    [[ -e /proc/sys/net/bridge/bridge-nf-call-$k ]] && gw sysctl -qw "net.bridge.bridge-nf-call-$k=0" || true
  done

  # IPv6, no translation. The WAN host reaches the LAN prefix via the gateway's WAN address.
  if [[ $profile == home ]]; then
    lab_build_home6
  else
    # nodad: usable at once (no 1-2 s tentative state). Routes are explicit (no router
    # advertisements): LAN hosts default via the gateway's global address.
    ip -n "$LAB_NS_GW" addr add "$LAB_GW_LAN_IP6/$LAB_LAN_PREFIX6" dev "$LAB_GW_LAN_IF" nodad
    ip -n "$LAB_NS_GW" addr add "$LAB_GW_WAN_IP6/$LAB_WAN_PREFIX6" dev "$LAB_GW_WAN_IF" nodad
    ip -n "$LAB_NS_WAN" addr add "$LAB_WAN_IP6/$LAB_WAN_PREFIX6" dev "$LAB_WAN_IF" nodad
    for pair in "$LAB_NS_LAN $LAB_LAN_IF $LAB_LAN_IP6" "$LAB_NS_LAN2 $LAB_LAN2_IF $LAB_LAN2_IP6"; do
      read -r ns dev ip <<<"$pair"
      ip -n "$ns" addr add "$ip/$LAB_LAN_PREFIX6" dev "$dev" nodad
      ip -n "$ns" -6 route add default via "$LAB_GW_LAN_IP6" dev "$dev"
    done
  fi
  ip -n "$LAB_NS_WAN" route add "$LAB_LAN_SUBNET6" via "$LAB_GW_WAN_IP6" dev "$LAB_WAN_IF"
}

# IPv6 of the home profile, as a home router and a desktop have it: the gateway's addresses go
# through duplicate address detection (no nodad); radvd on br-lan advertises the global and the
# ULA prefix (on-link, autonomous); the LAN hosts autoconfigure a stable (EUI-64) and a temporary
# address in each, and take the default route from the advertisement: via the gateway's
# link-local address. Returns once all of that is usable (lab_wait_home6).
lab_build_home6() {
  local ns dev
  ip -n "$LAB_NS_GW" addr add "$LAB_GW_LAN_IP6/$LAB_LAN_PREFIX6" dev "$LAB_GW_LAN_IF"
  ip -n "$LAB_NS_GW" addr add "$LAB_GW_LAN_ULA_IP6/$LAB_LAN_PREFIX6" dev "$LAB_GW_LAN_IF"
  ip -n "$LAB_NS_GW" addr add "$LAB_GW_WAN_IP6/$LAB_WAN_PREFIX6" dev "$LAB_GW_WAN_IF"
  ip -n "$LAB_NS_WAN" addr add "$LAB_WAN_IP6/$LAB_WAN_PREFIX6" dev "$LAB_WAN_IF"
  # radvd sends from the gateway's link-local address, which must have passed DAD.
  lab_wait_for "the gateway's IPv6 addresses to pass duplicate address detection" lab_no_tentative "$LAB_NS_GW"
  mkdir -p "$LAB_RUN_DIR"
  cat >"$LAB_RADVD_CONF" <<EOF
# generated by lab/$(basename "$0") (profile home): a home router's advertisements
interface $LAB_GW_LAN_IF {
  AdvSendAdvert on;
  MinRtrAdvInterval 30;
  MaxRtrAdvInterval 100;
  AdvDefaultLifetime 1800;
  prefix $LAB_LAN_SUBNET6 { AdvOnLink on; AdvAutonomous on; };
  prefix $LAB_LAN_ULA_SUBNET6 { AdvOnLink on; AdvAutonomous on; };
};
EOF
  # -m stderr: no syslog (see lab_start_miniupnpd on /dev/console). It ends with the namespace.
  setsid ip netns exec "$LAB_NS_GW" radvd -n -m stderr -C "$LAB_RADVD_CONF" -p "$LAB_RUN_DIR/radvd.pid" \
    </dev/null >>"$LAB_RADVD_LOG" 2>&1 {LAB_LOCK_FD}>&- &
  lab_wait_for "radvd to start" lab_radvd_running
  lab_wait_home6
}

lab_radvd_running() { [[ -s $LAB_RUN_DIR/radvd.pid ]]; }

# No IPv6 address in namespace $1 is still tentative (duplicate address detection done).
lab_no_tentative() { [[ -z $(ip -n "$1" -6 addr show tentative) ]]; }

# A home LAN host is ready: its stable global address (EUI-64), a temporary global address, both
# past DAD, and its default route via the gateway's link-local address, learnt from an RA.
lab_home_host_ready() {
  local ns=$1 dev=$2 stable=$3 addrs
  lab_no_tentative "$ns" || return 1
  addrs=$(ip -n "$ns" -6 addr show dev "$dev" scope global)
  grep -q "inet6 $stable/64 .*mngtmpaddr" <<<"$addrs" || return 1
  grep -q "inet6 ${LAB_LAN_SUBNET6%::/64}:.* temporary" <<<"$addrs" || return 1
  ip -n "$ns" -6 route show default | grep -q "^default via $LAB_GW_LAN_LL6 dev $dev proto ra"
}

lab_wait_home6() {
  lab_wait_for "$LAB_NS_LAN's SLAAC addresses and default route" lab_home_host_ready "$LAB_NS_LAN" "$LAB_LAN_IF" "$LAB_LAN_SLAAC_IP6"
  lab_wait_for "$LAB_NS_LAN2's SLAAC addresses and default route" lab_home_host_ready "$LAB_NS_LAN2" "$LAB_LAN2_IF" "$LAB_LAN2_SLAAC_IP6"
  lab_wait_for "the gateway's IPv6 addresses to pass DAD" lab_no_tentative "$LAB_NS_GW"
  lab_wait_for "the WAN host's IPv6 address to pass DAD" lab_no_tentative "$LAB_NS_WAN"
}

# lab_wait_for WHAT CMD...: runs CMD every 50 ms until it succeeds, for at most LAB_HOME6_TIMEOUT_MS.
lab_wait_for() {
  local what=$1 i
  shift
  for ((i = 0; i * 50 < LAB_HOME6_TIMEOUT_MS; i++)); do
    "$@" && return 0
    sleep 0.05
  done
  lab_die "timed out after ${LAB_HOME6_TIMEOUT_MS} ms waiting for $what"
}

# Second gateway nm-gw2, plugged into the existing lab (run with the nm-gw
# variables, i.e. before lab_use_gw2): its LAN veth is a new port of br-lan
# in nm-gw, its WAN veth goes to nm-wan on LAB_GW2_WAN_SUBNET.
lab_build_gw2() {
  ip netns add "$LAB_NS_GW2"
  ip -n "$LAB_NS_GW2" link set lo up
  # A bridge whose MAC was never set takes the lowest MAC of its ports, so
  # adding/removing gw-lan3 could change br-lan's MAC, and the LAN hosts'
  # ARP entries for the gateway would point at a dead MAC for up to ~30 s.
  # Setting it explicitly (to its current value) pins it.
  local mac
  mac=$(ip -n "$LAB_NS_GW" -br link show "$LAB_GW_LAN_IF" | awk '{print $3}')
  ip -n "$LAB_NS_GW" link set "$LAB_GW_LAN_IF" address "$mac"
  ip -n "$LAB_NS_GW" link add "$LAB_GW_LAN_PORT3" type veth peer name "$LAB_GW2_LAN_IF" netns "$LAB_NS_GW2"
  ip -n "$LAB_NS_GW" link set "$LAB_GW_LAN_PORT3" master "$LAB_GW_LAN_IF" up
  ip -n "$LAB_NS_GW2" addr add "$LAB_GW2_LAN_IP/$LAB_LAN_PREFIX" dev "$LAB_GW2_LAN_IF"
  ip -n "$LAB_NS_GW2" link set "$LAB_GW2_LAN_IF" up
  # SSDP NOTIFYs must leave on the LAN side (no default route), as in nm-gw.
  ip -n "$LAB_NS_GW2" route add 239.0.0.0/8 dev "$LAB_GW2_LAN_IF"
  lab_add_wan_leg "$LAB_NS_GW2" "$LAB_GW2_WAN_IF" "$LAB_GW2_WAN_IP" "$LAB_GW2_WAN_PREFIX" "$LAB_WAN2_IF" "$LAB_WAN_IP2"
}

# lab_add_wan_leg NS IF ADDRESS PREFIX WAN_IF WAN_ADDRESS: another gateway's own veth to nm-wan
# (nm-gw2, the VPN server), and what makes NS a NAT gateway: forwarding, no ICMP rate limit (as in
# nm-gw).
lab_add_wan_leg() {
  local ns=$1 dev=$2 ip=$3 prefix=$4 wan_dev=$5 wan_ip=$6
  ip -n "$ns" link add "$dev" type veth peer name "$wan_dev" netns "$LAB_NS_WAN"
  ip -n "$ns" addr add "$ip/$prefix" dev "$dev"
  ip -n "$ns" link set "$dev" up
  ip -n "$LAB_NS_WAN" addr add "$wan_ip/$prefix" dev "$wan_dev"
  ip -n "$LAB_NS_WAN" link set "$wan_dev" up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000
}

# nftables skeleton miniupnpd expects (same layout as miniupnpd's
# nft_init.sh: one inet table holding filter and nat chains). miniupnpd
# 2.3.1 only adds/deletes rules in the *_miniupnpd chains; the hook chains
# that jump to them are ours.
lab_build_nft() {
  local silent_rules=""
  if [[ $1 == silent ]]; then
    # No answer at all from the gateway to LAN TCP/UDP (incl. SSDP multicast).
    silent_rules="
table inet lab_silent {
  chain input {
    type filter hook input priority -10; policy accept;
    iifname \"$LAB_GW_LAN_IF\" meta l4proto { tcp, udp } drop
  }
}"
  fi
  gw nft -f - <<EOF
table $LAB_NFT_FAMILY $LAB_NFT_TABLE {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "$LAB_GW_LAN_IF" oifname "$LAB_GW_WAN_IF" accept
    iifname "$LAB_GW_LAN_IF" oifname "$LAB_GW_LAN_IF" accept
    jump $LAB_NFT_FORWARD_CHAIN
  }
  chain $LAB_NFT_FORWARD_CHAIN {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump $LAB_NFT_NAT_CHAIN
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump $LAB_NFT_POSTROUTING_CHAIN
    oifname "$LAB_GW_WAN_IF" ip saddr $LAB_LAN_SUBNET masquerade
  }
  chain $LAB_NFT_NAT_CHAIN {
  }
  chain $LAB_NFT_POSTROUTING_CHAIN {
  }
}
$silent_rules
EOF
}

# ---------------------------------------------------------------- miniupnpd
# lab_write_config MODE [PROFILE]: the miniupnpd config for MODE under PROFILE (default permissive).
lab_write_config() {
  local mode=$1 profile=${2:-permissive} upnp=yes pmp=yes igd1=no secure=yes policy
  case $mode in
    all | silent | closed) ;; # silent/closed: config kept for `gateway.sh start`
    pmp) upnp=no ;;
    upnp) pmp=no ;;
    upnp-igd1) pmp=no igd1=yes ;;
    *) lab_die "unknown mode '$mode' (one of: $LAB_MODES)" ;;
  esac
  case $profile in
    permissive)
      policy="# profile permissive: the lab's own. Every port, PCP lifetimes down to 1 s (tests that
# renew every second), idle mappings never garbage-collected.
clean_ruleset_interval=0
min_lifetime=$LAB_MIN_LIFETIME
max_lifetime=$LAB_MAX_LIFETIME
# first match wins
deny $LAB_DENIED_EPORT 0.0.0.0/0 0-65535
allow 1-65535 $LAB_LAN_SUBNET 1-65535
deny 0-65535 0.0.0.0/0 0-65535" ;;
    stock | stock-igd1 | stock-insecure | home)
      # stock-insecure: the user turned secure mode off (OpenWrt's "secure_mode 0"), so UPnP lets
      # any LAN host add or delete a mapping whatever its internal client (issue 20).
      [[ $profile == stock-insecure ]] && secure=no
      # Everything not set here is miniupnpd's default (min_lifetime 120 is its default too,
      # written out because the permissive profile changes it).
      policy="# profile $profile: the permission rules of miniupnpd's sample miniupnpd.conf, OpenWrt's
# /etc/config/upnpd and pfSense/OPNsense: LAN hosts may map their own ports >= 1024 to
# external ports >= 1024, nothing else. secure_mode=$secure (above), PCP min_lifetime 120.
clean_ruleset_threshold=10
clean_ruleset_interval=600
min_lifetime=120
max_lifetime=86400
allow 1024-65535 $LAB_LAN_SUBNET 1024-65535
deny 0-65535 0.0.0.0/0 0-65535" ;;
    *) lab_die "unknown profile '$profile' (one of: $LAB_PROFILES)" ;;
  esac
  mkdir -p "$(dirname "$LAB_CONF")"
  cat >"$LAB_CONF" <<EOF
# generated by lab/$(basename "$0") (mode $mode, profile $profile, $(date -u +%FT%TZ))
ext_ifname=$LAB_GW_WAN_IF
listening_ip=$LAB_GW_LAN_IF
# ext_ip deliberately unset: read from ext_ifname (tests change it).
# IPv6: PCP on the LAN IPv6 address, WANIPv6FirewallControl pinholes (the
# nft backend writes them into upnp_forward_chain, like the IPv4 accepts).
ext_ifname6=$LAB_GW_WAN_IF
http_port=$LAB_HTTP_PORT
enable_upnp=$upnp
# One switch for both NAT-PMP and PCP in 2.3.1 (no separate PCP option).
enable_natpmp=$pmp
force_igd_desc_v1=$igd1
secure_mode=$secure
system_uptime=${LAB_SYSTEM_UPTIME:-yes}
uuid=$LAB_UUID
friendly_name=$LAB_FRIENDLY_NAME
notify_interval=60
lease_file=$LAB_LEASES
pcp_allow_thirdparty=no
upnp_table_name=$LAB_NFT_TABLE
upnp_nat_table_name=$LAB_NFT_NAT_TABLE
upnp_forward_chain=$LAB_NFT_FORWARD_CHAIN
upnp_nat_chain=$LAB_NFT_NAT_CHAIN
upnp_nat_postrouting_chain=$LAB_NFT_POSTROUTING_CHAIN
$policy
EOF
  echo "$mode" >"$LAB_MODE_FILE"
  echo "$profile" >"${LAB_MODE_FILE%mode}profile"
}

# Is miniupnpd listening on everything the configured mode needs?
lab_miniupnpd_ready() {
  local upnp pmp http out
  upnp=$(sed -n 's/^enable_upnp=//p' "$LAB_CONF")
  pmp=$(sed -n 's/^enable_natpmp=//p' "$LAB_CONF")
  # gateway.sh set-http-port may have moved it from LAB_HTTP_PORT.
  http=$(sed -n 's/^http_port=//p' "$LAB_CONF")
  out=$(gw ss -Hlnptu 2>/dev/null) || return 1
  if [[ $pmp == yes ]]; then
    grep -Eq "^udp .*:$LAB_PMP_PORT .*miniupnpd" <<<"$out" || return 1
  fi
  if [[ $upnp == yes ]]; then
    grep -Eq "^tcp .*:${http:-$LAB_HTTP_PORT} .*miniupnpd" <<<"$out" || return 1
    grep -Eq "^udp .*:$LAB_SSDP_PORT .*miniupnpd" <<<"$out" || return 1
  fi
  return 0
}

lab_start_miniupnpd() {
  [[ -f $LAB_CONF ]] || lab_die "no lab config; run lab/up.sh first"
  lab_ns_exists "$LAB_NS_GW" || lab_die "namespace $LAB_NS_GW missing; run lab/up.sh"
  [[ -z "$(lab_miniupnpd_pid)" ]] || lab_die "miniupnpd already running (pid $(lab_miniupnpd_pid))"
  rm -f "$LAB_PIDFILE"
  # -d: stay in the foreground and log (LOG_DEBUG included) to stderr, which
  #     goes to the log file; without -d it would log to syslog (none here).
  # setsid + </dev/null + log redirect: fully detached, so a test runner that
  #     waits for our stdout/stderr to close does not hang, and Ctrl-C in the
  #     caller's process group does not kill the gateway.
  # /dev/console: miniupnpd always opens syslog with LOG_CONS; there is no
  #     /dev/log here, so glibc would copy EVERY log line to the machine's
  #     (slow, 9600 baud) console, spamming it and stalling miniupnpd. In a
  #     private mount namespace (not visible to the host) /dev/console is
  #     bound to /dev/null; the copy on stderr (-d) still reaches the log.
  # ip netns exec, unshare (without --fork) and sh all exec(), so $! is
  #     miniupnpd's own pid.
  # shellcheck disable=SC2016
  setsid ip netns exec "$LAB_NS_GW" unshare --mount --propagation private \
    sh -c 'mount --bind /dev/null /dev/console && exec miniupnpd "$@"' miniupnpd \
    -d -f "$LAB_CONF" -P "$LAB_PIDFILE.daemon" \
    </dev/null >>"$LAB_LOG" 2>&1 {LAB_LOCK_FD}>&- &
  echo $! >"$LAB_PIDFILE"
  local pid=$! i
  for ((i = 0; ; i++)); do
    if ! lab_pid_alive "$pid"; then
      lab_err "miniupnpd exited during startup; log tail:"
      tail -n 30 "$LAB_LOG" >&2
      return 1
    fi
    lab_miniupnpd_ready && return 0
    if ((i * 20 > LAB_READY_TIMEOUT_MS)); then
      lab_err "miniupnpd not ready after ${LAB_READY_TIMEOUT_MS}ms; log tail:"
      tail -n 30 "$LAB_LOG" >&2
      return 1
    fi
    sleep 0.02
  done
}

lab_mode_runs_gateway() { [[ $1 != silent && $1 != closed ]]; }
