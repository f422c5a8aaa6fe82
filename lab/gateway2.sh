#!/usr/bin/env bash
# Second lab gateway nm-gw2 (network-change tests): its LAN side is a port of
# br-lan (same LAN segment as nm-gw, 192.168.77.254), its WAN side a second
# veth to nm-wan (11.78.0.1 <-> 11.78.0.2). Own miniupnpd (mode all: UPnP +
# NAT-PMP + PCP), own uuid and files in /run/natmapper-lab/gw2. Needs the lab
# (lab/up.sh); lab/up.sh and lab/down.sh remove it too.
#
#   lab/gateway2.sh up [--uptime daemon|system]
#                          (re)build nm-gw2 and start its miniupnpd; one summary line.
#                          Default --uptime daemon: its epoch starts at 0 on each start.
#   lab/gateway2.sh down   remove nm-gw2 + its miniupnpd; LAN hosts whose default route
#                          pointed at it are moved back to nm-gw. Idempotent.
#   lab/gateway2.sh start|stop|restart [--flush]|status|rules|mappings|leases|log [-n N|-f]
#                   set-wan-ip A/PLEN|block|unblock|drop-mapping tcp|udp EPORT
#                          as lab/gateway.sh, for nm-gw2
#
# Move the LAN host to it with `lab/lan-route.sh 192.168.77.254` (or gw2).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lab_require_root

cmd=${1:-}
shift || true
case $cmd in
  up)
    LAB_SYSTEM_UPTIME=no
    while (($#)); do
      case $1 in
        --uptime)
          case ${2:-} in system) LAB_SYSTEM_UPTIME=yes ;; daemon) LAB_SYSTEM_UPTIME=no ;; *) lab_die "--uptime system|daemon" ;; esac
          shift 2 ;;
        *) lab_die "unknown argument '$1'" ;;
      esac
    done
    lab_lock
    lab_ns_exists "$LAB_NS_GW" || lab_die "lab is not up (run lab/up.sh first)"
    start_ms=$(date +%s%3N)
    lab_teardown_gw2
    # A failed build must not leave half a gateway plugged into the LAN.
    trap 'rc=$?; if ((rc)); then lab_err "gateway2.sh up failed (rc=$rc), removing $LAB_NS_GW2"; lab_teardown_gw2; fi' EXIT
    lab_build_gw2
    lab_use_gw2
    lab_build_nft all
    lab_write_config all
    lab_start_miniupnpd
    trap - EXIT
    echo "gw2 up: lan=$LAB_GW2_LAN_IP wan=$LAB_GW2_WAN_IP miniupnpd pid $(lab_miniupnpd_pid) ($(($(date +%s%3N) - start_ms)) ms)"
    ;;
  down)
    (($# == 0)) || lab_die "usage: $0 down"
    lab_lock
    lab_teardown_gw2
    # A LAN host left routing via a gateway that no longer exists would
    # break every later test; put it back on nm-gw.
    for ns in "$LAB_NS_LAN" "$LAB_NS_LAN2"; do
      lab_ns_exists "$ns" || continue
      if ip -n "$ns" -4 route show default | grep -q "via $LAB_GW2_LAN_IP "; then
        ip -n "$ns" route replace default via "$LAB_GW_LAN_IP"
      fi
    done
    ;;
  '' | -h | --help)
    sed -n '2,17p' "$0" >&2
    exit 2
    ;;
  *)
    exec "$LAB_DIR/gateway.sh" --gw2 "$cmd" "$@"
    ;;
esac
