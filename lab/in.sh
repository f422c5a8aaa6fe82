#!/usr/bin/env bash
# Run a command inside a lab namespace:  lab/in.sh nm-lan|nm-lan2|nm-gw|nm-wan CMD...
# (short aliases: lan, lan2, gw, wan)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
(($# >= 2)) || lab_die "usage: $0 NS CMD..."
ns=$1; shift
case $ns in
  lan) ns=$LAB_NS_LAN ;; lan2) ns=$LAB_NS_LAN2 ;; gw) ns=$LAB_NS_GW ;; wan) ns=$LAB_NS_WAN ;;
esac
[[ " ${LAB_NAMESPACES[*]} " == *" $ns "* ]] || lab_die "not a lab namespace: $ns"
lab_ns_exists "$ns" || lab_die "namespace $ns does not exist; run lab/up.sh"
exec ip netns exec "$ns" "$@"
