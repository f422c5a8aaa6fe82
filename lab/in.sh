#!/usr/bin/env bash
# Run a command inside a lab namespace:  lab/in.sh nm-lan|nm-lan2|nm-gw|nm-wan|nm-gw2 CMD...
# (short aliases: lan, lan2, gw, wan, gw2)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
(($# >= 2)) || lab_die "usage: $0 NS CMD..."
ns=$1; shift
case $ns in
  lan) ns=$LAB_NS_LAN ;; lan2) ns=$LAB_NS_LAN2 ;; gw) ns=$LAB_NS_GW ;; wan) ns=$LAB_NS_WAN ;; gw2) ns=$LAB_NS_GW2 ;;
esac
[[ " ${LAB_NAMESPACES[*]} $LAB_NS_GW2 " == *" $ns "* ]] || lab_die "not a lab namespace: $ns"
lab_ns_exists "$ns" || lab_die "namespace $ns does not exist; run lab/up.sh (nm-gw2: lab/gateway2.sh up)"
exec ip netns exec "$ns" "$@"
