#!/usr/bin/env python3
"""A point-to-point tun link between two network namespaces:
   tun_link.py NS_A IF_A NS_B IF_B

Creates tun interface IF_A in NS_A and IF_B in NS_B and copies every packet
from one to the other. Both are what a userspace VPN (wireguard-go, boringtun,
OpenVPN) gives its host: IFF_POINTOPOINT, no link layer, no ARP, so a route
through one has no next hop. This process stands in for the encrypted tunnel.
Prints "ready" once both exist; the interfaces vanish when it is killed."""
import ctypes, fcntl, os, select, struct, sys

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def enter(namespace):
    fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {namespace}")
    finally:
        os.close(fd)


def open_tun(name):
    # A tun device lives in the network namespace of the process that creates it.
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


ns_a, if_a, ns_b, if_b = sys.argv[1:5]
enter(ns_a)
a = open_tun(if_a)
enter(ns_b)
b = open_tun(if_b)
print("ready", flush=True)
peer = {a: b, b: a}
while True:
    for fd in select.select([a, b], [], [])[0]:
        packet = os.read(fd, 65535)
        try:
            os.write(peer[fd], packet)
        except OSError:
            pass  # the other side is down for a moment: a tunnel drops the packet
