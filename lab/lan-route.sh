#!/usr/bin/env bash
# Set the default route of a LAN host (network-change tests). Idempotent.
#
#   lab/lan-route.sh GATEWAY_IP|gw|gw2 [lan|lan2]
#
#   gw  = 192.168.77.1 (nm-gw), gw2 = 192.168.77.254 (nm-gw2, lab/gateway2.sh up)
#   host: nm-lan (default) or nm-lan2. Prints nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lab_require_root

(($# >= 1 && $# <= 2)) || lab_die "usage: $0 GATEWAY_IP|gw|gw2 [lan|lan2]"
case $1 in
  gw) via=$LAB_GW_LAN_IP ;;
  gw2) via=$LAB_GW2_LAN_IP ;;
  *) via=$1 ;;
esac
case ${2:-lan} in
  lan | "$LAB_NS_LAN") ns=$LAB_NS_LAN dev=$LAB_LAN_IF ;;
  lan2 | "$LAB_NS_LAN2") ns=$LAB_NS_LAN2 dev=$LAB_LAN2_IF ;;
  *) lab_die "host must be lan or lan2" ;;
esac
lab_lock
lab_ns_exists "$ns" || lab_die "namespace $ns does not exist; run lab/up.sh"
# replace = add or change, so running it twice is harmless. ip itself refuses
# a gateway that is not on the LAN subnet.
ip -n "$ns" route replace default via "$via" dev "$dev"
