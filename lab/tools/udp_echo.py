#!/usr/bin/env python3
"""UDP echo server for reachability checks: udp_echo.py BIND_IP PORT
Replies "echo:<payload>" to every datagram. Runs until killed."""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"echo:" + d, a)
