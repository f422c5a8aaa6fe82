#!/usr/bin/env python3
"""TCP server that answers each connection with the peer's address "IP:PORT"
(used to check the gateway's masquerade): tcp_whoami.py BIND_IP PORT"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    c, a = s.accept()
    c.sendall(f"{a[0]}:{a[1]}\n".encode())
    c.close()
