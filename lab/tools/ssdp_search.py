#!/usr/bin/env python3
"""Send one SSDP M-SEARCH and print every reply with its delay.

Run inside a lab namespace, e.g.
  lab/in-lan.sh python3 lab/tools/ssdp_search.py --st ssdp:all --mx 1
Lab self-test helper only (the library's tests use their own client).
"""
import argparse, socket, time

ap = argparse.ArgumentParser()
ap.add_argument("--st", default="urn:schemas-upnp-org:device:InternetGatewayDevice:1")
ap.add_argument("--mx", type=int, default=1)
ap.add_argument("--timeout", type=float, default=None, help="seconds (default mx+0.5)")
a = ap.parse_args()
timeout = a.timeout if a.timeout is not None else a.mx + 0.5

msg = ("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
       'MAN: "ssdp:discover"\r\n'
       f"MX: {a.mx}\r\nST: {a.st}\r\n\r\n").encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
t0 = time.monotonic()
s.sendto(msg, ("239.255.255.250", 1900))
n = 0
while True:
    left = timeout - (time.monotonic() - t0)
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data, src = s.recvfrom(4096)
    except socket.timeout:
        break
    n += 1
    hdr = {}
    for line in data.decode(errors="replace").split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdr[k.strip().upper()] = v.strip()
    print(f"{(time.monotonic()-t0)*1000:7.1f}ms from {src[0]}:{src[1]} "
          f"ST={hdr.get('ST')} LOCATION={hdr.get('LOCATION')}")
print(f"{n} replies")
