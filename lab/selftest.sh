#!/usr/bin/env bash
# Self-test of the lab with the reference clients (natpmpc, upnpc) and the
# small python helpers in lab/tools. Everything runs inside the lab
# namespaces. Prints one line per check; exit 1 if any check failed.
#
#   lab/selftest.sh [MODE...]      (default: all pmp upnp upnp-igd1 silent closed)
#   LAB_SELFTEST_SLOW=1            also wait for a 2 s PCP lifetime to expire
set -euo pipefail
LAB="$(cd "$(dirname "$0")" && pwd)"
source "$LAB/lib.sh"
T="$LAB/tools"
modes=("$@")
((${#modes[@]})) || modes=(all pmp upnp upnp-igd1 silent closed)

fails=0
ok() { printf '  ok   %s\n' "$1"; }
ko() { printf '  FAIL %s\n' "$1"; [[ -n ${2:-} ]] && printf '%s\n' "$2" | sed 's/^/       | /'; fails=$((fails + 1)); }
# check NAME CMD... : pass if CMD exits 0
check() { local n=$1 out; shift; if out=$("$@" 2>&1); then ok "$n"; else ko "$n" "$out"; fi; }
lan() { ip netns exec "$LAB_NS_LAN" "$@"; }
wan() { ip netns exec "$LAB_NS_WAN" "$@"; }
maps() { "$LAB/gateway.sh" mappings; }
has_map() { maps | grep -qx "$1"; }
no_map() { ! maps | grep -q "^$1 $2 "; }
# wait (max ~2 s) until a TCP/UDP listener is up in nm-lan
wait_listen() { local i; for ((i = 0; i < 100; i++)); do lan ss -Hln"$1" "sport = :$2" | grep -q . && return 0; sleep 0.02; done; return 1; }

# Listeners in nm-lan used for WAN->LAN reachability (they die with lab/down.sh
# or the next lab/up.sh, which end every process in the lab namespaces).
WWW=$(mktemp -d); echo hello-from-lan >"$WWW/index.html"
trap 'rm -rf "$WWW"' EXIT
start_listeners() {
  local p
  for p in 8080 8081; do
    setsid ip netns exec "$LAB_NS_LAN" python3 -m http.server "$p" --bind "$LAB_LAN_IP" --directory "$WWW" </dev/null >/dev/null 2>&1 &
  done
  setsid ip netns exec "$LAB_NS_LAN" python3 "$T/udp_echo.py" "$LAB_LAN_IP" 8081 </dev/null >/dev/null 2>&1 &
  setsid ip netns exec "$LAB_NS_WAN" python3 "$T/tcp_whoami.py" "$LAB_WAN_IP" 7000 </dev/null >/dev/null 2>&1 &
  wait_listen t 8080 && wait_listen t 8081 && wait_listen u 8081 &&
    ip netns exec "$LAB_NS_WAN" bash -c 'for i in {1..100}; do ss -Hlnt "sport = :7000" | grep -q . && exit 0; sleep 0.02; done; exit 1'
}
# LAN -> WAN through the gateway; the WAN host must see the gateway's address
masq() { local r; r=$(lan python3 -c "
import socket; s=socket.create_connection(('$LAB_WAN_IP',7000),2); print(s.recv(100).decode().split(':')[0])"); [[ $r == "$1" ]] || { echo "WAN host saw $r"; return 1; }; }
wan_http() { [[ "$(wan curl -sS -m 3 "http://$LAB_GW_WAN_IP:$1/")" == hello-from-lan ]]; }
wan_http_fails() { ! wan curl -sS -m 2 "http://$LAB_GW_WAN_IP:$1/" >/dev/null 2>&1; }
wan_udp() { [[ "$(wan python3 "$T/udp_send.py" "$LAB_GW_WAN_IP" "$1" 2)" == echo:ping ]]; }

pmp_checks() {
  check "natpmpc -g: public IP $LAB_GW_WAN_IP" bash -c "ip netns exec $LAB_NS_LAN natpmpc -g $LAB_GW_LAN_IP | grep -x 'Public IP address : $LAB_GW_WAN_IP'"
  check "natpmpc map tcp 8080" bash -c "ip netns exec $LAB_NS_LAN natpmpc -g $LAB_GW_LAN_IP -a 8080 8080 tcp 60 | grep 'Mapped public port 8080 protocol TCP to local port 8080'"
  check "nft DNAT tcp 8080 -> $LAB_LAN_IP:8080" has_map "tcp 8080 $LAB_LAN_IP 8080"
  check "WAN host reaches LAN:8080 via $LAB_GW_WAN_IP:8080" wan_http 8080
  check "natpmpc delete (-a 0 8080 tcp 0)" bash -c "ip netns exec $LAB_NS_LAN natpmpc -g $LAB_GW_LAN_IP -a 0 8080 tcp 0 | grep 'liftime 0'"
  check "nft rule for 8080 gone" no_map tcp 8080
  check "WAN host no longer reaches 8080" wan_http_fails 8080
  check "PCP MAP udp 8082 lifetime 2 honoured (min_lifetime)" bash -c "ip netns exec $LAB_NS_LAN python3 $T/pcp_map.py --proto udp --iport 8082 --lifetime 2 | grep 'result=0(SUCCESS) lifetime=2 .* eport=8082 eip=$LAB_GW_WAN_IP'"
  check "nft DNAT udp 8082" has_map "udp 8082 $LAB_LAN_IP 8082"
  if [[ ${LAB_SELFTEST_SLOW:-0} == 1 ]]; then
    sleep 3.5
    check "PCP mapping expired after 3.5 s" no_map udp 8082
  fi
  check "PCP ANNOUNCE answered" bash -c "ip netns exec $LAB_NS_LAN python3 $T/pcp_map.py --announce | grep 'opcode=0x80 result=0'"
}

upnp_checks() {
  local igd=$1
  check "upnpc -s finds IGD, ExternalIPAddress $LAB_GW_WAN_IP" bash -c "ip netns exec $LAB_NS_LAN upnpc -s | grep -E '^Found valid IGD : http://$LAB_GW_LAN_IP:$LAB_HTTP_PORT/ctl/IPConn' && ip netns exec $LAB_NS_LAN upnpc -s | grep -x 'ExternalIPAddress = $LAB_GW_WAN_IP'"
  check "rootDesc.xml is InternetGatewayDevice:$igd + WANIPConnection:$igd" bash -c "d=\$(ip netns exec $LAB_NS_LAN curl -sS -m 3 $LAB_ROOTDESC_URL); grep -q 'device:InternetGatewayDevice:$igd<' <<<\"\$d\" && grep -q 'service:WANIPConnection:$igd<' <<<\"\$d\""
  check "upnpc map TCP 8081" bash -c "ip netns exec $LAB_NS_LAN upnpc -e test -a $LAB_LAN_IP 8081 8081 TCP | grep 'TCP is redirected to internal $LAB_LAN_IP:8081'"
  check "upnpc map UDP 8081" bash -c "ip netns exec $LAB_NS_LAN upnpc -e testu -a $LAB_LAN_IP 8081 8081 UDP | grep 'UDP is redirected to internal $LAB_LAN_IP:8081'"
  check "nft DNAT tcp+udp 8081" bash -c "$LAB/gateway.sh mappings | grep -x 'tcp 8081 $LAB_LAN_IP 8081' && $LAB/gateway.sh mappings | grep -x 'udp 8081 $LAB_LAN_IP 8081'"
  check "WAN host reaches LAN TCP 8081" wan_http 8081
  check "WAN host reaches LAN UDP 8081 (echo)" wan_udp 8081
  check "secure_mode: nm-lan cannot map for $LAB_LAN2_IP (718)" bash -c "ip netns exec $LAB_NS_LAN upnpc -a $LAB_LAN2_IP 8095 8095 TCP 2>&1 | grep 'failed with code 718'"
  check "denied eport $LAB_DENIED_EPORT (606)" bash -c "ip netns exec $LAB_NS_LAN upnpc -a $LAB_LAN_IP $LAB_DENIED_EPORT $LAB_DENIED_EPORT TCP 2>&1 | grep 'failed with code 606'"
  check "upnpc -d 8081 TCP/UDP" bash -c "ip netns exec $LAB_NS_LAN upnpc -d 8081 TCP | grep 'returned : 0' && ip netns exec $LAB_NS_LAN upnpc -d 8081 UDP | grep 'returned : 0'"
  check "nft rules for 8081 gone" bash -c "! $LAB/gateway.sh mappings | grep -q ' 8081 '"
  check "WAN host no longer reaches TCP 8081" wan_http_fails 8081
}

port_5351() { # expected: reply|refused|timeout [gateway ip]
  local r
  r=$(lan python3 "$T/udp_probe.py" "${2:-$LAB_GW_LAN_IP}" "$LAB_PMP_PORT" 1 || true)
  [[ $r == "$1"* ]] || { echo "got: $r"; return 1; }
}
tcp_http_port() { # expected: open|refused|timeout [gateway ip]
  local r
  r=$(lan python3 -c "
import socket,sys
s=socket.socket(); s.settimeout(1)
try: s.connect(('${2:-$LAB_GW_LAN_IP}',$LAB_HTTP_PORT)); print('open')
except ConnectionRefusedError: print('refused')
except socket.timeout: print('timeout')")
  [[ $r == "$1" ]] || { echo "got: $r"; return 1; }
}
no_ssdp_reply() { lan python3 "$T/ssdp_search.py" --mx 1 | grep -qx '0 replies'; }
# soap ACTION [ARGS_XML]: raw WANIPConnection:2 call from nm-lan, prints the body
soap() {
  lan curl -sS -m 3 -H 'Content-Type: text/xml; charset="utf-8"' \
    -H "SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:2#$1\"" \
    --data "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:$1 xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\">${2:-}</u:$1></s:Body></s:Envelope>" \
    "http://$LAB_GW_LAN_IP:$LAB_HTTP_PORT/ctl/IPConn"
}
# ssdp_from IP...: one M-SEARCH gets at least one reply from each IP (counts
# vary: a dual-stack miniupnpd may answer twice)
ssdp_from() { local r ip; r=$(lan python3 "$T/ssdp_search.py" --mx 1); for ip; do grep -q " from $ip:" <<<"$r" || { echo "$r"; return 1; }; done; }

block_checks() {
  lan natpmpc -g "$LAB_GW_LAN_IP" -a 8080 8080 tcp 600 >/dev/null 2>&1
  check "gateway.sh block (twice: idempotent)" bash -c "$LAB/gateway.sh block && $LAB/gateway.sh block"
  check "blocked: UDP 5351 -> timeout" port_5351 timeout
  check "blocked: TCP $LAB_HTTP_PORT -> timeout" tcp_http_port timeout
  check "blocked: no SSDP reply" no_ssdp_reply
  check "blocked: miniupnpd still running" "$LAB/gateway.sh" status
  check "blocked: WAN host still reaches mapped 8080" wan_http 8080
  check "gateway.sh unblock (twice: idempotent)" bash -c "$LAB/gateway.sh unblock && $LAB/gateway.sh unblock"
  check "unblocked: UDP 5351 answers" port_5351 reply
  check "unblocked: TCP $LAB_HTTP_PORT open" tcp_http_port open
  check "unblocked: SSDP answers" ssdp_from "$LAB_GW_LAN_IP"
  check "unblocked: lab_block table gone" bash -c "! ip netns exec $LAB_NS_GW nft list table inet $LAB_NFT_BLOCK_TABLE >/dev/null 2>&1"
}

# drop-mapping removes the nft rules behind miniupnpd's back (after making it
# cache its view of the rules). NAT-PMP and PCP renewals delete + re-add, so
# they re-install the rules; an UPnP AddPortMapping renewal only updates the
# lease of what miniupnpd's cache still shows, until miniupnpd itself changes
# a rule (which makes it re-read the ruleset).
fwd_rule() { ip netns exec "$LAB_NS_GW" nft -n list chain "$LAB_NFT_FAMILY" "$LAB_NFT_TABLE" "$LAB_NFT_FORWARD_CHAIN" | grep -q "dport $1 "; }
soap_has_entry() { soap GetSpecificPortMappingEntry "<NewRemoteHost></NewRemoteHost><NewExternalPort>$2</NewExternalPort><NewProtocol>$1</NewProtocol>" | grep -q '<NewInternalClient>'; }
rules_gone() { no_map "$1" "$2" && ! fwd_rule "$2"; }
rules_back() { has_map "$1 $2 $LAB_LAN_IP $2" && fwd_rule "$2"; }
dropmap_checks() {
  local nonce=6c61622d6e6f6e63652d3031
  lan natpmpc -g "$LAB_GW_LAN_IP" -a 8080 8080 tcp 600 >/dev/null 2>&1
  check "drop-mapping tcp 8080" "$LAB/gateway.sh" drop-mapping tcp 8080
  check "DNAT and forward rule for 8080 gone" rules_gone tcp 8080
  check "WAN host no longer reaches 8080" wan_http_fails 8080
  check "lease for 8080 still listed" bash -c "$LAB/gateway.sh leases | grep -q '^TCP:8080:'"
  check "drop-mapping tcp 8080 again -> exit 1" bash -c "! $LAB/gateway.sh drop-mapping tcp 8080 2>/dev/null"
  lan natpmpc -g "$LAB_GW_LAN_IP" -a 8080 8080 tcp 600 >/dev/null 2>&1
  check "NAT-PMP renewal re-installs DNAT + forward rule" rules_back tcp 8080
  check "WAN host reaches 8080 again" wan_http 8080
  lan python3 "$T/pcp_map.py" --proto udp --iport 8082 --lifetime 600 --nonce $nonce >/dev/null
  check "drop-mapping udp 8082 (PCP MAP)" bash -c "$LAB/gateway.sh drop-mapping udp 8082"
  check "DNAT and forward rule for udp 8082 gone" rules_gone udp 8082
  lan python3 "$T/pcp_map.py" --proto udp --iport 8082 --lifetime 600 --nonce $nonce >/dev/null
  check "PCP renewal (same nonce) re-installs DNAT + forward rule" rules_back udp 8082
  lan upnpc -e d -a "$LAB_LAN_IP" 8081 8081 TCP >/dev/null 2>&1
  check "drop-mapping tcp 8081 (UPnP)" "$LAB/gateway.sh" drop-mapping tcp 8081
  check "DNAT and forward rule for 8081 gone" rules_gone tcp 8081
  check "UPnP GetSpecificPortMappingEntry 8081 still answers (stale view)" soap_has_entry TCP 8081
  lan upnpc -e d -a "$LAB_LAN_IP" 8081 8081 TCP >/dev/null 2>&1
  check "UPnP AddPortMapping renewal does NOT re-install" rules_gone tcp 8081
  lan natpmpc -g "$LAB_GW_LAN_IP" -a 8083 8083 tcp 60 >/dev/null 2>&1 # any rule change by miniupnpd
  lan upnpc -e d -a "$LAB_LAN_IP" 8081 8081 TCP >/dev/null 2>&1
  check "... but does after miniupnpd changed another rule" rules_back tcp 8081
  check "PCP PEER -> SNAT rule; drop-mapping tcp 8090 removes it" bash -c "ip netns exec $LAB_NS_LAN python3 $T/pcp_map.py --peer $LAB_WAN_IP:7000 --iport 8090 | grep -q 'opcode=0x82 result=0' && $LAB/gateway.sh rules | grep -q 'snat ip to $LAB_GW_WAN_IP:8090' && $LAB/gateway.sh drop-mapping tcp 8090 && ! $LAB/gateway.sh rules | grep -q snat"
  lan upnpc -d 8081 TCP >/dev/null 2>&1 || true
  lan natpmpc -g "$LAB_GW_LAN_IP" -a 0 8083 tcp 0 >/dev/null 2>&1 || true
}
flush_checks() {
  lan natpmpc -g "$LAB_GW_LAN_IP" -a 8080 8080 tcp 600 >/dev/null 2>&1 || lan upnpc -e f -a "$LAB_LAN_IP" 8080 8080 TCP >/dev/null 2>&1
  check "mapping present before restart" has_map "tcp 8080 $LAB_LAN_IP 8080"
  check "gateway.sh restart (no flush) keeps mapping (lease file reload)" bash -c "$LAB/gateway.sh restart && $LAB/gateway.sh mappings | grep -x 'tcp 8080 $LAB_LAN_IP 8080'"
  check "gateway.sh restart --flush drops mappings" bash -c "$LAB/gateway.sh restart --flush && [[ -z \$($LAB/gateway.sh mappings) ]] && $LAB/gateway.sh status"
}

wanip_checks() {
  lan natpmpc -g "$LAB_GW_LAN_IP" -a 8080 8080 tcp 600 >/dev/null 2>&1
  check "gateway.sh set-wan-ip 11.77.0.9/24" "$LAB/gateway.sh" set-wan-ip 11.77.0.9/24
  check "natpmpc -g reports 11.77.0.9" bash -c "for i in {1..50}; do ip netns exec $LAB_NS_LAN natpmpc -g $LAB_GW_LAN_IP | grep -qx 'Public IP address : 11.77.0.9' && exit 0; sleep 0.1; done; exit 1"
  check "PCP MAP returns eip 11.77.0.9" bash -c "ip netns exec $LAB_NS_LAN python3 $T/pcp_map.py --iport 9000 --lifetime 30 | grep 'eip=11.77.0.9'"
  check "existing mapping reachable at 11.77.0.9:8080" bash -c "[[ \$(ip netns exec $LAB_NS_WAN curl -sS -m 3 http://11.77.0.9:8080/) == hello-from-lan ]]"
  check "masquerade now uses 11.77.0.9" masq 11.77.0.9
  check "set-wan-ip back to $LAB_GW_WAN_IP/$LAB_WAN_PREFIX" "$LAB/gateway.sh" set-wan-ip "$LAB_GW_WAN_IP/$LAB_WAN_PREFIX"
}

soap_ext_ip_is() { local r; r=$(soap GetExternalIPAddress); grep -q "<NewExternalIPAddress>$1</NewExternalIPAddress>" <<<"$r" || { echo "$r"; return 1; }; }
# Shared/CGN WAN address (RFC 6598): miniupnpd refuses to map on it.
cgn_checks() {
  check "gateway.sh set-wan-ip 100.64.0.1/24 (CGN)" "$LAB/gateway.sh" set-wan-ip 100.64.0.1/24
  check "CGN: natpmpc -g -> network failure (result 3)" bash -c "for i in {1..50}; do ip netns exec $LAB_NS_LAN natpmpc -g $LAB_GW_LAN_IP 2>&1 | grep -q 'failed : network failure' && exit 0; sleep 0.1; done; exit 1"
  check "CGN: PCP MAP -> NO_RESOURCES" bash -c "ip netns exec $LAB_NS_LAN python3 $T/pcp_map.py --iport 9001 | grep -q 'result=8(NO_RESOURCES)'"
  check "CGN: SOAP GetExternalIPAddress -> empty NewExternalIPAddress" soap_ext_ip_is ""
  check "CGN: upnpc AddPortMapping -> 501" bash -c "ip netns exec $LAB_NS_LAN upnpc -u $LAB_ROOTDESC_URL -a $LAB_LAN_IP 9002 9002 TCP 2>&1 | grep -q 'failed with code 501'"
  check "set-wan-ip back to $LAB_GW_WAN_IP/$LAB_WAN_PREFIX; natpmpc -g works" bash -c "$LAB/gateway.sh set-wan-ip $LAB_GW_WAN_IP/$LAB_WAN_PREFIX && for i in {1..50}; do ip netns exec $LAB_NS_LAN natpmpc -g $LAB_GW_LAN_IP | grep -qx 'Public IP address : $LAB_GW_WAN_IP' && exit 0; sleep 0.1; done; exit 1"
}

lan_default_via() { [[ "$(ip -n "$LAB_NS_LAN" -4 route show default)" == "default via $1 "* ]]; }
gw2_checks() {
  local t0 out
  t0=$(date +%s%3N)
  if ! out=$("$LAB/gateway2.sh" up 2>&1); then ko "gateway2.sh up" "$out"; return; fi
  ok "gateway2.sh up ($(($(date +%s%3N) - t0)) ms): $out"
  setsid ip netns exec "$LAB_NS_WAN" python3 "$T/tcp_whoami.py" "$LAB_WAN_IP2" 7000 </dev/null >/dev/null 2>&1 &
  check "natpmpc -g $LAB_GW2_LAN_IP: public IP $LAB_GW2_WAN_IP (epoch < 5)" bash -c "o=\$(ip netns exec $LAB_NS_LAN natpmpc -g $LAB_GW2_LAN_IP); grep -qx 'Public IP address : $LAB_GW2_WAN_IP' <<<\"\$o\" && [[ \$(sed -n 's/^epoch = //p' <<<\"\$o\") -lt 5 ]]"
  check "SSDP: both gateways answer" ssdp_from "$LAB_GW_LAN_IP" "$LAB_GW2_LAN_IP"
  check "lan-route.sh gw2 (twice)" bash -c "$LAB/lan-route.sh $LAB_GW2_LAN_IP && $LAB/lan-route.sh gw2"
  check "nm-lan default via $LAB_GW2_LAN_IP" lan_default_via "$LAB_GW2_LAN_IP"
  check "natpmpc -g $LAB_GW2_LAN_IP map tcp 8080" bash -c "ip netns exec $LAB_NS_LAN natpmpc -g $LAB_GW2_LAN_IP -a 8080 8080 tcp 60 | grep 'Mapped public port 8080 protocol TCP to local port 8080'"
  check "gateway2.sh mappings: tcp 8080" bash -c "$LAB/gateway2.sh mappings | grep -x 'tcp 8080 $LAB_LAN_IP 8080'"
  check "WAN host reaches LAN:8080 via $LAB_GW2_WAN_IP:8080" bash -c "[[ \$(ip netns exec $LAB_NS_WAN curl -sS -m 3 http://$LAB_GW2_WAN_IP:8080/) == hello-from-lan ]]"
  check "LAN->WAN via gw2 (WAN host $LAB_WAN_IP2 sees $LAB_GW2_WAN_IP)" bash -c "r=\$(ip netns exec $LAB_NS_LAN python3 -c \"import socket; s=socket.create_connection(('$LAB_WAN_IP2',7000),2); print(s.recv(100).decode().split(':')[0])\"); [[ \$r == $LAB_GW2_WAN_IP ]]"
  check "upnpc -u gw2 rootDesc: ExternalIPAddress $LAB_GW2_WAN_IP" bash -c "ip netns exec $LAB_NS_LAN upnpc -u $LAB_GW2_ROOTDESC_URL -s | grep -x 'ExternalIPAddress = $LAB_GW2_WAN_IP'"
  check "gateway2.sh block: gw2 5351 silent, gw 5351 still answers" bash -c "$LAB/gateway2.sh block && ip netns exec $LAB_NS_LAN python3 $T/udp_probe.py $LAB_GW2_LAN_IP $LAB_PMP_PORT 1 | grep -qx timeout && ip netns exec $LAB_NS_LAN python3 $T/udp_probe.py $LAB_GW_LAN_IP $LAB_PMP_PORT 1 | grep -q '^reply' && $LAB/gateway2.sh unblock"
  check "gateway2.sh down (twice) removes $LAB_NS_GW2, its veths and miniupnpd" bash -c "$LAB/gateway2.sh down && $LAB/gateway2.sh down && [[ ! -e /run/netns/$LAB_NS_GW2 ]] && ! ip -n $LAB_NS_GW link show $LAB_GW_LAN_PORT3 2>/dev/null && ! ip -n $LAB_NS_WAN link show $LAB_WAN2_IF 2>/dev/null && ! $LAB/gateway2.sh status >/dev/null"
  check "gateway2.sh down put nm-lan back on $LAB_GW_LAN_IP" lan_default_via "$LAB_GW_LAN_IP"
  check "LAN->WAN via gw again" masq "$LAB_GW_WAN_IP"
  # leave gw2 up so the teardown checks cover its removal by down.sh
  check "gateway2.sh up again (for the teardown check)" bash -c "$LAB/gateway2.sh up >/dev/null"
}

root_state() { { ip -br link; ip route; ip -6 route; nft list ruleset; sysctl net.ipv4.ip_forward net.ipv4.icmp_ratelimit; } 2>&1 | grep -v '^$'; }
root_before=$(root_state)

for mode in "${modes[@]}"; do
  echo "== mode $mode"
  t0=$(date +%s%3N)
  if ! out=$("$LAB/up.sh" --mode "$mode" 2>&1); then ko "up.sh --mode $mode" "$out"; continue; fi
  ok "up.sh --mode $mode ($(($(date +%s%3N) - t0)) ms): $out"
  check "listeners in nm-lan / nm-wan" start_listeners
  check "LAN->WAN masquerade (WAN host sees $LAB_GW_WAN_IP)" masq "$LAB_GW_WAN_IP"
  case $mode in
    all)
      pmp_checks; upnp_checks 2
      check "UDP 5351 answers" port_5351 reply
      block_checks
      dropmap_checks
      flush_checks
      wanip_checks
      cgn_checks
      gw2_checks ;;
    pmp)
      pmp_checks
      check "no UPnP: TCP $LAB_HTTP_PORT refused" tcp_http_port refused
      check "no UPnP: no SSDP reply" no_ssdp_reply
      flush_checks ;;
    upnp)
      upnp_checks 2
      check "UDP 5351 -> ICMP port unreachable (refused)" port_5351 refused
      check "10 probes in a row all refused (no ICMP rate limit)" bash -c "for i in \$(seq 10); do ip netns exec $LAB_NS_LAN python3 $T/udp_probe.py $LAB_GW_LAN_IP $LAB_PMP_PORT 0.5 | grep -qx refused || exit 1; done"
      flush_checks ;;
    upnp-igd1)
      upnp_checks 1
      check "UDP 5351 -> refused" port_5351 refused ;;
    silent)
      check "UDP 5351 -> no answer (timeout)" port_5351 timeout
      check "TCP $LAB_HTTP_PORT -> timeout" tcp_http_port timeout
      check "no SSDP reply" no_ssdp_reply
      ;;
    closed)
      check "UDP 5351 -> refused" port_5351 refused
      check "TCP $LAB_HTTP_PORT -> refused" tcp_http_port refused
      check "no SSDP reply" no_ssdp_reply ;;
  esac
done

echo "== teardown"
"$LAB/down.sh"
check "no lab namespace left" bash -c "! ip netns list | grep -q '^nm-'"
check "no miniupnpd left" bash -c "! pgrep -x miniupnpd >/dev/null || ! pgrep -x miniupnpd | xargs -r ps -o stat= -p | grep -qv Z"
check "no runtime dir" test ! -e "$LAB_RUN_DIR"
root_after=$(root_state)
if [[ $root_before == "$root_after" ]]; then ok "root namespace links/routes/nftables/sysctls unchanged"; else ko "root namespace changed" "$(diff <(echo "$root_before") <(echo "$root_after"))"; fi

echo "== $fails failure(s)"
((fails == 0))
