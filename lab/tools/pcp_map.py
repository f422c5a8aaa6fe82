#!/usr/bin/env python3
"""Minimal PCP (RFC 6887) MAP/PEER client for lab self-tests.

  pcp_map.py [--server 192.168.77.1] [--client 192.168.77.2] [--proto tcp|udp]
             [--iport 8080] [--eport 8080] [--lifetime 60] [--nonce HEX24]
             [--version 2] [--announce] [--peer RHOST:RPORT]
Prints: result code, lifetime, epoch, external ip:port. Exit 0 if result 0.
--nonce fixes the mapping nonce (renewals must reuse it; random otherwise).
--peer sends a PEER request (opcode 2) for that remote peer instead of MAP;
miniupnpd 2.3.1 installs it as an SNAT rule in postrouting_miniupnpd.
Lifetime 0 deletes the mapping (same nonce required by RFC; miniupnpd
2.3.1 matches on internal ip/port/proto).
"""
import argparse, os, socket, struct, sys, ipaddress

RESULTS = {0: "SUCCESS", 1: "UNSUPP_VERSION", 2: "NOT_AUTHORIZED", 3: "MALFORMED_REQUEST",
           4: "UNSUPP_OPCODE", 5: "UNSUPP_OPTION", 6: "MALFORMED_OPTION", 7: "NETWORK_FAILURE",
           8: "NO_RESOURCES", 9: "UNSUPP_PROTOCOL", 10: "USER_EX_QUOTA",
           11: "CANNOT_PROVIDE_EXTERNAL", 12: "ADDRESS_MISMATCH", 13: "EXCESSIVE_REMOTE_PEERS"}

def v4mapped(a):
    return ipaddress.IPv6Address("::ffff:" + a).packed

ap = argparse.ArgumentParser()
ap.add_argument("--server", default="192.168.77.1")
ap.add_argument("--client", default="192.168.77.2")
ap.add_argument("--proto", default="tcp")
ap.add_argument("--iport", type=int, default=8080)
ap.add_argument("--eport", type=int, default=None)
ap.add_argument("--eip", default="0.0.0.0", help="suggested external address")
ap.add_argument("--lifetime", type=int, default=60)
ap.add_argument("--nonce", default=None)
ap.add_argument("--version", type=int, default=2)
ap.add_argument("--announce", action="store_true")
ap.add_argument("--peer", default=None, help="RHOST:RPORT (PEER opcode)")
ap.add_argument("--timeout", type=float, default=1.0)
a = ap.parse_args()

op = 0 if a.announce else 2 if a.peer else 1
hdr = struct.pack("!BBHI", a.version, op, 0, 0 if a.announce else a.lifetime) + v4mapped(a.client)
body = b""
if not a.announce:
    nonce = bytes.fromhex(a.nonce) if a.nonce else os.urandom(12)
    proto = {"tcp": 6, "udp": 17, "all": 0}[a.proto]
    eport = a.iport if a.eport is None else a.eport
    body = nonce + struct.pack("!B3xHH", proto, a.iport, eport) + v4mapped(a.eip)
    if a.peer:
        rhost, rport = a.peer.rsplit(":", 1)
        body += struct.pack("!H2x", int(rport)) + v4mapped(rhost)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(a.timeout)
s.connect((a.server, 5351))
s.send(hdr + body)
try:
    r = s.recv(1100)
except ConnectionRefusedError:
    print("refused"); sys.exit(3)
except socket.timeout:
    print("timeout"); sys.exit(4)
ver, ropc, _, res, life, epoch = struct.unpack("!BBBBII", r[:12])
out = f"version={ver} opcode=0x{ropc:02x} result={res}({RESULTS.get(res, '?')}) lifetime={life} epoch={epoch}"
if len(r) >= 60 and (ropc & 0x7f) in (1, 2):
    proto, iport, eport = struct.unpack("!B3xHH", r[36:44])
    eip = ipaddress.IPv6Address(r[44:60])
    eip = eip.ipv4_mapped or eip
    out += f" nonce={r[24:36].hex()} proto={proto} iport={iport} eport={eport} eip={eip}"
print(out)
sys.exit(0 if res == 0 else 1)
