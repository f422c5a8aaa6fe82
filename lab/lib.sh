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

LAB_NAMESPACES=("$LAB_NS_LAN" "$LAB_NS_LAN2" "$LAB_NS_GW" "$LAB_NS_WAN")
LAB_CONF="$LAB_RUN_DIR/miniupnpd.conf"
LAB_PIDFILE="$LAB_RUN_DIR/miniupnpd.pid"
LAB_LOG="$LAB_RUN_DIR/miniupnpd.log"
LAB_LEASES="$LAB_RUN_DIR/miniupnpd.leases"
LAB_MODE_FILE="$LAB_RUN_DIR/mode"
LAB_MODES="all pmp upnp upnp-igd1 silent closed"

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
lab_flush_rules() {
  lab_ns_exists "$LAB_NS_GW" || return 0
  gw nft flush chain "$LAB_NFT_FAMILY" "$LAB_NFT_NAT_TABLE" "$LAB_NFT_NAT_CHAIN" 2>/dev/null || true
  gw nft flush chain "$LAB_NFT_FAMILY" "$LAB_NFT_NAT_TABLE" "$LAB_NFT_POSTROUTING_CHAIN" 2>/dev/null || true
  gw nft flush chain "$LAB_NFT_FAMILY" "$LAB_NFT_TABLE" "$LAB_NFT_FORWARD_CHAIN" 2>/dev/null || true
}

# ---------------------------------------------------------------- teardown
lab_teardown() {
  local ns pids
  lab_stop_miniupnpd kill
  # Anything else still running inside a lab namespace (listeners started by
  # tests, a stray upnpc ...) would keep the namespace alive after `ip netns
  # del`, so end those processes by pid first.
  for ns in "${LAB_NAMESPACES[@]}"; do
    lab_ns_exists "$ns" || continue
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
    lab_kill_pids 2000 "${pids[@]}"
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$LAB_RUN_DIR"
}

# ---------------------------------------------------------------- build
lab_build_topology() {
  local ns
  for ns in "${LAB_NAMESPACES[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done

  # LAN: one bridge in the gateway, each LAN host on its own veth port.
  # Multicast snooping off: there is no IGMP querier, keep SSDP flooding simple.
  ip -n "$LAB_NS_GW" link add "$LAB_GW_LAN_IF" type bridge mcast_snooping 0
  ip -n "$LAB_NS_GW" link add "$LAB_GW_LAN_PORT1" type veth peer name "$LAB_LAN_IF" netns "$LAB_NS_LAN"
  ip -n "$LAB_NS_GW" link add "$LAB_GW_LAN_PORT2" type veth peer name "$LAB_LAN2_IF" netns "$LAB_NS_LAN2"
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
  # - forwarding for the NAT gateway;
  # - no ICMP rate limiting, otherwise after a burst of ~6 probes to a closed
  #   port the kernel stops sending port-unreachable and "closed" looks
  #   like "silent";
  # - bridged LAN<->LAN frames must not traverse the inet forward hook.
  gw sysctl -qw net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000
  local k
  for k in iptables ip6tables arptables; do
    [[ -e /proc/sys/net/bridge/bridge-nf-call-$k ]] && gw sysctl -qw "net.bridge.bridge-nf-call-$k=0" || true
  done
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
lab_write_config() {
  local mode=$1 upnp=yes pmp=yes igd1=no
  case $mode in
    all | silent | closed) ;; # silent/closed: config kept for `gateway.sh start`
    pmp) upnp=no ;;
    upnp) pmp=no ;;
    upnp-igd1) pmp=no igd1=yes ;;
    *) lab_die "unknown mode '$mode' (one of: $LAB_MODES)" ;;
  esac
  mkdir -p "$LAB_RUN_DIR"
  cat >"$LAB_CONF" <<EOF
# generated by lab/up.sh --mode $mode ($(date -u +%FT%TZ))
ext_ifname=$LAB_GW_WAN_IF
listening_ip=$LAB_GW_LAN_IF
# ext_ip deliberately unset: read from ext_ifname (tests change it).
ipv6_disable=yes
http_port=$LAB_HTTP_PORT
enable_upnp=$upnp
# One switch for both NAT-PMP and PCP in 2.3.1 (no separate PCP option).
enable_natpmp=$pmp
force_igd_desc_v1=$igd1
secure_mode=yes
system_uptime=${LAB_SYSTEM_UPTIME:-yes}
uuid=$LAB_UUID
friendly_name=natmapper lab gateway
notify_interval=60
# 0 = never garbage-collect idle mappings behind the tests' back
clean_ruleset_interval=0
lease_file=$LAB_LEASES
# PCP lifetimes are clamped to [min_lifetime, max_lifetime] (default min 120)
min_lifetime=$LAB_MIN_LIFETIME
max_lifetime=$LAB_MAX_LIFETIME
pcp_allow_thirdparty=no
upnp_table_name=$LAB_NFT_TABLE
upnp_nat_table_name=$LAB_NFT_NAT_TABLE
upnp_forward_chain=$LAB_NFT_FORWARD_CHAIN
upnp_nat_chain=$LAB_NFT_NAT_CHAIN
upnp_nat_postrouting_chain=$LAB_NFT_POSTROUTING_CHAIN
# first match wins
deny $LAB_DENIED_EPORT 0.0.0.0/0 0-65535
allow 1-65535 $LAB_LAN_SUBNET 1-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
  echo "$mode" >"$LAB_MODE_FILE"
}

# Is miniupnpd listening on everything the configured mode needs?
lab_miniupnpd_ready() {
  local upnp pmp out
  upnp=$(sed -n 's/^enable_upnp=//p' "$LAB_CONF")
  pmp=$(sed -n 's/^enable_natpmp=//p' "$LAB_CONF")
  out=$(gw ss -Hlnptu 2>/dev/null) || return 1
  if [[ $pmp == yes ]]; then
    grep -Eq "^udp .*:$LAB_PMP_PORT .*miniupnpd" <<<"$out" || return 1
  fi
  if [[ $upnp == yes ]]; then
    grep -Eq "^tcp .*:$LAB_HTTP_PORT .*miniupnpd" <<<"$out" || return 1
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
