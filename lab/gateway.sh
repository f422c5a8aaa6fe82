#!/usr/bin/env bash
# Control the lab gateway (miniupnpd in nm-gw).
#
#   lab/gateway.sh start              start miniupnpd with the current config, wait until ready
#   lab/gateway.sh stop [--flush]     stop it (--flush: also drop its nft rules + lease file)
#   lab/gateway.sh restart [--flush]  stop + start; without --flush miniupnpd re-creates the
#                                     mappings from its lease file, with --flush they are gone
#   lab/gateway.sh status             "running PID" / "stopped" (exit 0 / 3) + mode
#   lab/gateway.sh rules              raw nft listing of miniupnpd's 3 chains
#   lab/gateway.sh mappings           one line per DNAT rule: "PROTO EPORT IADDR IPORT"
#   lab/gateway.sh leases             miniupnpd lease file (PROTO:EPORT:IADDR:IPORT:EXPIRY:DESC)
#   lab/gateway.sh log [-n N|-f]      miniupnpd log (whole file by default)
#   lab/gateway.sh set-wan-ip A/PLEN  replace the WAN address of nm-gw (address-change tests)
#   lab/gateway.sh block              drop LAN->gateway UDP 5351, UDP 1900, TCP 5000 (miniupnpd
#                                     keeps running, mapped traffic keeps flowing); idempotent
#   lab/gateway.sh unblock            remove exactly that; idempotent
#   lab/gateway.sh drop-mapping tcp|udp EPORT
#                                     delete the nft rules of that mapping behind miniupnpd's
#                                     back (it still believes it exists); exit 1 if none matched
#   lab/gateway.sh drop-forward tcp|udp EPORT
#                                     delete only its forward accept: the DNAT rule stays, so
#                                     miniupnpd lists it, but nothing reaches the host
#   lab/gateway.sh flush-chains       flush miniupnpd's 3 chains while it runs (a firewall
#                                     reload on the router); it answers from its rule cache
#   lab/gateway.sh set-http-port PORT restart miniupnpd serving HTTP (description, control URLs)
#                                     on PORT instead (a router back from a reboot on another
#                                     port); up.sh restores the lab.env port
#   lab/gateway.sh --gw2 CMD ...      same commands for the second gateway (= lab/gateway2.sh)
#   lab/gateway.sh --vpn CMD ...      same commands for the VPN server nm-vpn (= lab/vpn.sh CMD)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lab_require_root

gwname=$LAB_NS_GW upcmd=lab/up.sh
if [[ ${1:-} == --gw2 ]]; then
  lab_use_gw2
  gwname=$LAB_NS_GW2 upcmd="lab/gateway2.sh up"
  shift
elif [[ ${1:-} == --vpn ]]; then
  lab_use_vpn
  gwname=$LAB_NS_VPN upcmd="lab/vpn.sh up"
  shift
fi
cmd=${1:-}
shift || true
flush=0
parse_flush() {
  while (($#)); do
    case $1 in --flush) flush=1 ;; *) lab_die "unknown option '$1'" ;; esac
    shift
  done
}
need_lab() { lab_ns_exists "$LAB_NS_GW" || lab_die "$gwname is not up (run $upcmd)"; }

# Forget all mappings: rules in nft and the lease file it would reload them from.
do_flush() { lab_flush_rules; rm -f "$LAB_LEASES"; }

case $cmd in
  start)
    parse_flush "$@"; lab_lock; need_lab
    if ((flush)); then do_flush; fi
    lab_start_miniupnpd
    ;;
  stop)
    parse_flush "$@"; lab_lock; need_lab
    lab_stop_miniupnpd
    if ((flush)); then do_flush; fi
    ;;
  restart)
    parse_flush "$@"; lab_lock; need_lab
    lab_stop_miniupnpd
    if ((flush)); then do_flush; fi
    lab_start_miniupnpd
    ;;
  set-http-port)
    port=${1:-}
    [[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || lab_die "usage: gateway.sh set-http-port PORT"
    lab_lock; need_lab
    lab_stop_miniupnpd
    sed -i "s/^http_port=.*/http_port=$port/" "$LAB_CONF"
    lab_start_miniupnpd
    ;;
  status)
    pid=$(lab_miniupnpd_pid)
    if [[ -n $pid ]]; then echo "running $pid mode=$(lab_mode) profile=$(lab_profile)"; else echo "stopped mode=$(lab_mode) profile=$(lab_profile)"; exit 3; fi
    ;;
  rules)
    need_lab
    # -n: numeric output (never print 8080 as "http-alt")
    gw nft -n list chain "$LAB_NFT_FAMILY" "$LAB_NFT_NAT_TABLE" "$LAB_NFT_NAT_CHAIN"
    gw nft -n list chain "$LAB_NFT_FAMILY" "$LAB_NFT_TABLE" "$LAB_NFT_FORWARD_CHAIN"
    gw nft -n list chain "$LAB_NFT_FAMILY" "$LAB_NFT_NAT_TABLE" "$LAB_NFT_POSTROUTING_CHAIN"
    ;;
  mappings)
    need_lab
    # miniupnpd writes raw payload matches, e.g.
    #   iif "gw-wan" @nh,72,8 0x6 th dport 8080 dnat ip to 192.168.77.2:8080
    # (@nh,72,8 = IPv4 protocol: 0x6 tcp, 0x11 udp)
    gw nft -n list chain "$LAB_NFT_FAMILY" "$LAB_NFT_NAT_TABLE" "$LAB_NFT_NAT_CHAIN" |
      perl -ne 'next unless /dnat/;
        my ($p) = /\@nh,72,8 (0x[0-9a-f]+|\d+)/; $p = defined $p ? hex($p) : -1;
        my %n = (6 => "tcp", 17 => "udp"); my $proto = $n{$p} // (/\b(tcp|udp)\b/ ? $1 : "proto$p");
        my ($ep) = /dport (\d+)/; my ($ia, $ip) = /dnat (?:ip )?to ([\d.]+):(\d+)/;
        print "$proto $ep $ia $ip\n" if defined $ep && defined $ia;'
    ;;
  leases)
    cat "$LAB_LEASES" 2>/dev/null || true
    ;;
  log)
    [[ -f $LAB_LOG ]] || exit 0
    case ${1:-} in
      -n) tail -n "${2:?-n needs a count}" "$LAB_LOG" ;;
      -f) exec tail -f "$LAB_LOG" ;;
      '') cat "$LAB_LOG" ;;
      *) lab_die "usage: $0 log [-n N|-f]" ;;
    esac
    ;;
  set-wan-ip)
    addr=${1:?usage: $0 set-wan-ip ADDR/PLEN}
    [[ $addr == */* ]] || lab_die "give ADDR/PLEN, e.g. 11.77.0.9/24"
    lab_lock; need_lab
    # Drop the WAN host's /32 route to the old address (added below by an
    # earlier set-wan-ip), so old addresses do not pile up there.
    for old in $(gw ip -4 -o addr show dev "$LAB_GW_WAN_IF" | awk '{print $4}'); do
      ip -n "$LAB_NS_WAN" route del "${old%/*}/32" dev "$LAB_WAN_IF" 2>/dev/null || true
    done
    # Replace (not add): miniupnpd reads the first IPv4 address of ext_ifname
    # and notices the change through its netlink RTM_DELADDR/NEWADDR watch
    # (it multicasts NAT-PMP/PCP announcements to 224.0.0.1:5350 on the LAN).
    gw ip -4 addr flush dev "$LAB_GW_WAN_IF"
    gw ip addr add "$addr" dev "$LAB_GW_WAN_IF"
    # Keep gateway <-> WAN host reachable even if the new address is in
    # another subnet: on-link /32 routes both ways over the veth (ARP does
    # not care about subnets). Harmless when the subnet is unchanged.
    gw ip route replace "$LAB_WAN_IP/32" dev "$LAB_GW_WAN_IF"
    ip -n "$LAB_NS_WAN" route replace "${addr%/*}/32" dev "$LAB_WAN_IF"
    ;;
  block)
    lab_lock; need_lab
    lab_block_on
    ;;
  unblock)
    lab_lock; need_lab
    lab_block_off
    ;;
  drop-mapping|drop-forward)
    proto=${1:-} eport=${2:-}
    [[ $proto =~ ^(tcp|udp)$ && $eport =~ ^[0-9]+$ ]] || lab_die "usage: $0 $cmd tcp|udp EPORT"
    lab_lock; need_lab
    only=all; [[ $cmd == drop-forward ]] && only=forward-only
    lab_drop_mapping "$proto" "$eport" "$only" || lab_die "no nft rule for $proto/$eport in $gwname"
    ;;
  flush-chains)
    lab_lock; need_lab
    lab_flush_chains
    ;;
  *)
    sed -n '2,29p' "$0" >&2
    exit 2
    ;;
esac
