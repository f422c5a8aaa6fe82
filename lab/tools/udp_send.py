#!/usr/bin/env python3
"""Send one datagram and print the reply: udp_send.py HOST PORT [TIMEOUT]
Exit 0 on reply, 1 refused, 2 timeout."""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[3]) if len(sys.argv) > 3 else 2.0)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"ping")
try:
    print(s.recv(2048).decode(errors="replace"))
except ConnectionRefusedError:
    print("refused"); sys.exit(1)
except socket.timeout:
    print("timeout"); sys.exit(2)
