#!/usr/bin/env bash
# Build the natmapper lab from scratch (always tears down the previous one
# first, so it is idempotent) and start miniupnpd if the mode needs it.
#
#   lab/up.sh [--mode all|pmp|upnp|upnp-igd1|silent|closed] [--profile permissive|stock|stock-igd1|home]
#             [--uptime system|daemon] [--verbose]
#
#   all        UPnP IGDv2 + NAT-PMP + PCP                 (default)
#   pmp        NAT-PMP + PCP, UPnP off
#   upnp       UPnP IGDv2 only; UDP 5351 closed (ICMP port unreachable)
#   upnp-igd1  UPnP only, rootDesc.xml says IGDv1 (SSDP still answers v2 STs!)
#   silent     no miniupnpd; gateway drops all LAN TCP/UDP to itself
#   closed     no miniupnpd; closed ports answer ICMP port unreachable
#
#   --profile permissive  (default) every port, PCP lifetimes down to 1 s
#   --profile stock       allow 1024-65535 <LAN> 1024-65535, deny the rest, PCP min_lifetime 120
#                         (miniupnpd's sample config, OpenWrt, pfSense/OPNsense); see lab/README.md
#   --profile stock-igd1  stock as IGDv1 with NAT-PMP/PCP off (implies --mode upnp-igd1)
#   --profile home        stock, on a home network's IPv6: radvd advertises a global and a ULA
#                         prefix, the LAN hosts use SLAAC with temporary addresses and route via
#                         the gateway's link-local address (~2-3 s more: DAD and SLAAC)
#
# Quiet except for one summary line on stdout; errors on stderr; exit != 0
# on failure.
#   --uptime system  (default) NAT-PMP/PCP epoch = host uptime: it does NOT go
#                    back to 0 when gateway.sh restarts miniupnpd
#   --uptime daemon  epoch restarts at 0 on every miniupnpd (re)start, so
#                    clients can detect the restart (RFC 6886/6887 epoch check)
#   (env LAB_SYSTEM_UPTIME=yes|no is equivalent)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mode='' profile=permissive verbose=0
while (($#)); do
  case $1 in
    --mode) mode=${2:?--mode needs a value}; shift 2 ;;
    --mode=*) mode=${1#--mode=}; shift ;;
    --profile) profile=${2:?--profile needs a value}; shift 2 ;;
    --profile=*) profile=${1#--profile=}; shift ;;
    --uptime)
      case ${2:-} in system) LAB_SYSTEM_UPTIME=yes ;; daemon) LAB_SYSTEM_UPTIME=no ;; *) lab_die "--uptime system|daemon" ;; esac
      shift 2 ;;
    -v | --verbose) verbose=1; shift ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) lab_die "unknown argument '$1'" ;;
  esac
done
[[ " $LAB_PROFILES " == *" $profile "* ]] || lab_die "unknown profile '$profile' (one of: $LAB_PROFILES)"
if [[ $profile == stock-igd1 ]]; then
  [[ -z $mode || $mode == upnp-igd1 ]] || lab_die "profile stock-igd1 is UPnP IGDv1 only (mode upnp-igd1), not mode '$mode'"
  mode=upnp-igd1
fi
mode=${mode:-all}
[[ " $LAB_MODES " == *" $mode "* ]] || lab_die "unknown mode '$mode' (one of: $LAB_MODES)"
((verbose)) && set -x

lab_require_root
lab_lock
start_ms=$(date +%s%3N)

lab_teardown
# If a build step fails, do not leave a half-built lab behind.
trap 'rc=$?; if ((rc)); then lab_err "up.sh failed (rc=$rc), tearing down"; [[ -f $LAB_LOG ]] && tail -n 20 "$LAB_LOG" >&2; lab_teardown; fi' EXIT

lab_build_topology "$profile"
lab_build_nft "$mode"
lab_write_config "$mode" "$profile"
if lab_mode_runs_gateway "$mode"; then
  lab_start_miniupnpd
  gwstate="miniupnpd pid $(lab_miniupnpd_pid)"
else
  gwstate="miniupnpd not running"
fi
trap - EXIT
echo "lab up: mode=$mode profile=$profile gw=$LAB_GW_LAN_IP wan=$LAB_GW_WAN_IP lan=$LAB_LAN_IP,$LAB_LAN2_IP $gwstate ($(($(date +%s%3N) - start_ms)) ms)"
