#!/usr/bin/env python3
"""Send one NAT-PMP "public address" request (2 bytes: version 0, opcode 0)
on a *connected* UDP socket and report what happened:
  reply N bytes ...   the port answered
  refused             ICMP port unreachable (ConnectionRefusedError)
  timeout             nothing at all
Exit codes: 0 reply, 1 refused, 2 timeout.
  lab/in-lan.sh python3 lab/tools/udp_probe.py 192.168.77.1 5351
"""
import socket, sys

host = sys.argv[1] if len(sys.argv) > 1 else "192.168.77.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 5351
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(timeout)
s.connect((host, port))
s.send(b"\x00\x00")
try:
    data = s.recv(2048)
except ConnectionRefusedError:
    print("refused"); sys.exit(1)
except socket.timeout:
    print("timeout"); sys.exit(2)
print(f"reply {len(data)} bytes {data.hex()}"); sys.exit(0)
