#!/usr/bin/env bash
# A VPN server beside the lab, and the routing layouts of a LAN host that policy routing and VPN
# clients leave behind (issue 19: the route the kernel uses, not only the main table).
#
#   lab/vpn.sh up      build nm-vpn: a point-to-point tun link nm-lan wg0 10.2.0.2 <-> nm-vpn vpn0
#                      10.2.0.1 (no link layer, no next hop: what wireguard-go or OpenVPN give a
#                      host), its own WAN veth vpn-wan 11.79.0.1 <-> nm-wan wan2 11.79.0.2, NAT
#                      out of vpn-wan, and miniupnpd (NAT-PMP + PCP, stock rules) answering on
#                      10.2.0.1 as ProtonVPN's servers do. nm-lan's routes are not changed.
#                      One summary line. Needs the lab (lab/up.sh).
#   lab/vpn.sh down    remove nm-vpn (and wg0 with it) and put nm-lan back to `layout main`.
#                      Idempotent. up.sh/down.sh remove nm-vpn too.
#   lab/vpn.sh layout main|policy|wg|via
#                      nm-lan's routing, IPv4 and IPv6:
#                      main    the lab's own: default via the gateway in the main table, no rules
#                      policy  nothing in main; default via the gateway in table 100, chosen by
#                              `ip rule add table 100` (multi-WAN set-ups, some VPN clients)
#                      wg      wg-quick's layout (needs `up`): main keeps its default via the
#                              gateway; table 51820 has `default dev wg0`; rules
#                              `not fwmark 51820 table 51820` and `table main suppress_prefixlength 0`
#                      via     as wg, but table 51820 has `default via 10.2.0.1 dev wg0`: a policy
#                              table whose route has a next hop on another interface (multi-WAN, a
#                              VPN client naming its server's tunnel address)
#                      Idempotent, silent.
#   lab/vpn.sh start|stop|restart|status|rules|mappings|leases|log   as lab/gateway.sh, for nm-vpn
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lab_require_root

lan() { ip -n "$LAB_NS_LAN" "$@"; }

# Back to the lab's own routing: no rules, no extra tables, default via the gateway in main.
layout_main() {
  local v
  for v in -4 -6; do
    while lan "$v" rule del table "$LAB_VPN_TABLE" 2>/dev/null; do :; done
    while lan "$v" rule del table main suppress_prefixlength 0 2>/dev/null; do :; done
    while lan "$v" rule del table "$LAB_POLICY_TABLE" 2>/dev/null; do :; done
    lan "$v" route flush table "$LAB_VPN_TABLE" 2>/dev/null || true
    lan "$v" route flush table "$LAB_POLICY_TABLE" 2>/dev/null || true
  done
  lan route replace default via "$LAB_GW_LAN_IP" dev "$LAB_LAN_IF"
  lan -6 route replace default via "$LAB_GW_LAN_IP6" dev "$LAB_LAN_IF"
}

layout_policy() {
  layout_main
  lan route del default
  lan -6 route del default
  lan route add default via "$LAB_GW_LAN_IP" dev "$LAB_LAN_IF" table "$LAB_POLICY_TABLE"
  lan -6 route add default via "$LAB_GW_LAN_IP6" dev "$LAB_LAN_IF" table "$LAB_POLICY_TABLE"
  lan -4 rule add table "$LAB_POLICY_TABLE"
  lan -6 rule add table "$LAB_POLICY_TABLE"
}

# What wg-quick up does for AllowedIPs = 0.0.0.0/0, ::/0 (wg-quick(8), add_default): the rules in
# its order, priorities left to the kernel as wg-quick leaves them.
# layout_wg [via]: with `via`, table 51820's IPv4 default route goes via the VPN server's address.
layout_wg() {
  lan link show "$LAB_VPN_CLIENT_IF" >/dev/null 2>&1 || lab_die "no $LAB_VPN_CLIENT_IF in $LAB_NS_LAN: run lab/vpn.sh up first"
  layout_main
  local v
  for v in -4 -6; do
    if [[ ${1:-} == via && $v == -4 ]]; then
      lan -4 route add default via "$LAB_VPN_IP" dev "$LAB_VPN_CLIENT_IF" table "$LAB_VPN_TABLE"
    else
      lan "$v" route add default dev "$LAB_VPN_CLIENT_IF" table "$LAB_VPN_TABLE"
    fi
    lan "$v" rule add not fwmark "$LAB_VPN_TABLE" table "$LAB_VPN_TABLE"
    lan "$v" rule add table main suppress_prefixlength 0
  done
}

teardown_vpn() {
  (lab_use_vpn && lab_stop_miniupnpd kill)
  lab_del_ns "$LAB_NS_VPN"
  rm -rf "$LAB_VPN_RUN_DIR"
}

vpn_up() {
  lab_ns_exists "$LAB_NS_LAN" || lab_die "lab is not up (run lab/up.sh first)"
  local start_ms i
  start_ms=$(date +%s%3N)
  lab_ns_exists "$LAB_NS_LAN" && layout_main
  teardown_vpn
  trap 'rc=$?; if ((rc)); then lab_err "vpn.sh up failed (rc=$rc), removing $LAB_NS_VPN"; teardown_vpn; fi' EXIT
  mkdir -p "$LAB_VPN_RUN_DIR"
  ip netns add "$LAB_NS_VPN"
  ip -n "$LAB_NS_VPN" link set lo up
  # The tunnel: a tun interface on each side, joined by a relay that lives in nm-vpn (so that
  # deleting the namespace ends it, and wg0 goes with it).
  setsid "$LAB_PYTHON" "$LAB_DIR/tools/tun_link.py" "$LAB_NS_LAN" "$LAB_VPN_CLIENT_IF" "$LAB_NS_VPN" "$LAB_VPN_IF" \
    </dev/null >"$LAB_VPN_RUN_DIR/tun_link.log" 2>&1 {LAB_LOCK_FD}>&- &
  for ((i = 0; ; i++)); do
    ip -n "$LAB_NS_VPN" link show "$LAB_VPN_IF" >/dev/null 2>&1 && lan link show "$LAB_VPN_CLIENT_IF" >/dev/null 2>&1 && break
    ((i * 20 < LAB_READY_TIMEOUT_MS)) || lab_die "tun link not up: $(cat "$LAB_VPN_RUN_DIR/tun_link.log")"
    sleep 0.02
  done
  lan addr add "$LAB_VPN_CLIENT_IP/32" peer "$LAB_VPN_IP" dev "$LAB_VPN_CLIENT_IF"
  lan -6 addr add "$LAB_VPN_CLIENT_IP6/128" dev "$LAB_VPN_CLIENT_IF" nodad
  lan link set "$LAB_VPN_CLIENT_IF" up
  ip -n "$LAB_NS_VPN" addr add "$LAB_VPN_IP/32" peer "$LAB_VPN_CLIENT_IP" dev "$LAB_VPN_IF"
  ip -n "$LAB_NS_VPN" -6 addr add "$LAB_VPN_IP6/128" dev "$LAB_VPN_IF" nodad
  ip -n "$LAB_NS_VPN" link set "$LAB_VPN_IF" up
  ip -n "$LAB_NS_VPN" -6 route add "$LAB_VPN_CLIENT_IP6/128" dev "$LAB_VPN_IF"
  # The server's own way out.
  lab_add_wan_leg "$LAB_NS_VPN" "$LAB_VPN_WAN_IF" "$LAB_VPN_WAN_IP" "$LAB_VPN_WAN_PREFIX" "$LAB_WAN3_IF" "$LAB_WAN_IP3"
  lab_use_vpn
  lab_build_nft pmp
  lab_write_config pmp stock
  # The tunnel addresses are /32 with a peer: named by interface, miniupnpd would take the LAN to
  # be 10.2.0.1/32 and ignore the client ("not from a LAN"). A VPN server names its client range.
  sed -i "s|^listening_ip=.*|listening_ip=$LAB_VPN_IP/${LAB_VPN_SUBNET#*/}|" "$LAB_CONF"
  lab_start_miniupnpd
  trap - EXIT
  echo "vpn up: $LAB_VPN_CLIENT_IF $LAB_VPN_CLIENT_IP in $LAB_NS_LAN <-> $LAB_VPN_IF $LAB_VPN_IP, wan=$LAB_VPN_WAN_IP miniupnpd pid $(lab_miniupnpd_pid) ($(($(date +%s%3N) - start_ms)) ms)"
}

cmd=${1:-}
shift || true
case $cmd in
  up)
    (($# == 0)) || lab_die "usage: $0 up"
    lab_lock
    vpn_up
    ;;
  down)
    (($# == 0)) || lab_die "usage: $0 down"
    lab_lock
    teardown_vpn
    if lab_ns_exists "$LAB_NS_LAN"; then layout_main; fi
    ;;
  layout)
    (($# == 1)) || lab_die "usage: $0 layout main|policy|wg|via"
    lab_lock
    lab_ns_exists "$LAB_NS_LAN" || lab_die "lab is not up (run lab/up.sh first)"
    case $1 in
      main) layout_main ;;
      policy) layout_policy ;;
      wg) layout_wg ;;
      via) layout_wg via ;;
      *) lab_die "unknown layout '$1' (main, policy, wg or via)" ;;
    esac
    ;;
  '' | -h | --help)
    sed -n '2,25p' "$0" >&2
    exit 2
    ;;
  *)
    exec "$LAB_DIR/gateway.sh" --vpn "$cmd" "$@"
    ;;
esac
