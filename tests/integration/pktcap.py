#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""An independent count of what one TCP port's packets carried over an
interface: an AF_PACKET capture (run inside the test's network namespace),
not taskmeter. Each packet the interface sends is seen once (PACKET_OUTGOING:
on lo that is every packet), with its virtio-net header (PACKET_VNET_HDR),
which says whether the stack handed it over as a GSO packet and its segment
size: a GSO packet of P payload bytes in segments of S is ceil(P / S) packets
on the wire, each with the IP and TCP headers of the one captured.

    pktcap.py DEV PORT

prints "listening" once it captures, then, when stdin closes (the traffic is
over), one JSON line: per direction ("to", packets to PORT, and "from") the
skbs, wire packets (segments), IP bytes (headers of every segment included)
and TCP payload; and the socket's drop count, which must be 0 for the counts
to be whole.
"""
import json
import os
import select
import socket
import struct
import sys

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_OUTGOING = 4
PACKET_STATISTICS = 6
PACKET_VNET_HDR = 15
SO_RCVBUFFORCE = 33
VNET_HDR = struct.Struct("=BBHHHH")  # flags gso_type hdr_len gso_size csum_start csum_offset
GSO_TCP = (1, 4)                      # VIRTIO_NET_HDR_GSO_TCPV4, _TCPV6
ETH_HLEN = 14


def tcp_of(frame):
    """(sport, dport, IP header length, TCP header length, payload) of an
    IPv4 or IPv6 TCP frame, or None."""
    l3 = frame[ETH_HLEN:]
    if len(l3) < 1:
        return None
    if l3[0] >> 4 == 4 and len(l3) >= 20 and l3[9] == socket.IPPROTO_TCP:
        iphl = (l3[0] & 0xf) * 4
    elif l3[0] >> 4 == 6 and len(l3) >= 40 and l3[6] == socket.IPPROTO_TCP:
        iphl = 40  # the tests' TCP carries no extension headers
    else:
        return None
    tcp = l3[iphl:]
    if len(tcp) < 20:
        return None
    sport, dport = struct.unpack("!HH", tcp[:4])
    return sport, dport, iphl, (tcp[12] >> 4) * 4


def main():
    dev, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 256 << 20)
    s.bind((dev, 0))
    print("listening", flush=True)
    # headers are enough: MSG_TRUNC gives each packet's whole length
    buf = bytearray(VNET_HDR.size + 256)
    counts = {d: {"skbs": 0, "packets": 0, "bytes": 0, "payload": 0} for d in ("to", "from")}
    stdin_open = True
    while True:
        ready = select.select([s] + ([sys.stdin] if stdin_open else []), [], [],
                              None if stdin_open else 0)[0]
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            stdin_open = False  # drain what is queued, then report
            continue
        if s not in ready:
            if not stdin_open:
                break
            continue
        n, addr = s.recvfrom_into(buf, len(buf), socket.MSG_TRUNC)
        if addr[2] != PACKET_OUTGOING:
            continue
        _, gso_type, _, gso_size, _, _ = VNET_HDR.unpack_from(buf)
        t = tcp_of(bytes(buf[VNET_HDR.size:]))
        if not t or port not in t[:2]:
            continue
        sport, dport, iphl, tcphl = t
        payload = n - VNET_HDR.size - ETH_HLEN - iphl - tcphl
        segs = -(-payload // gso_size) if gso_type & 0x7f in GSO_TCP and gso_size else 1
        c = counts["to" if dport == port else "from"]
        c["skbs"] += 1
        c["packets"] += segs
        c["bytes"] += payload + segs * (iphl + tcphl)
        c["payload"] += payload
    _, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    print(json.dumps(dict(counts, drops=drops)), flush=True)


if __name__ == "__main__":
    main()
