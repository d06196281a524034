#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Writes the binary seeds of tests/fuzz/corpus (frame, render, sockdiag).

The text seeds (config, set, procfs, cgroup) are written by hand; these are
protobuf frames and netlink messages, so they are generated, each from a
few lines below that say what it is. Run from anywhere with /usr/bin/python3
(python3-protobuf); it rewrites only the files it names.
"""

import importlib
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "proto")
CORPUS = os.path.join(HERE, "corpus")

HEX = "0123456789abcdef" * 4


def load_pb(tmp):
    subprocess.run(["protoc", "--python_out=" + tmp, "--proto_path=" + PROTO_DIR,
                    "taskmeter.proto"], check=True)
    sys.path.insert(0, tmp)
    return importlib.import_module("taskmeter_pb2")


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def counters(pb, c, packets, nbytes, payload=None):
    c.packets = packets
    c.bytes = nbytes
    if payload is not None:
        c.payload_bytes = payload


def process_frame(pb):
    """A frame as taskmeterd sends it: a curl process, the buckets, lo."""
    f = pb.Frame(seq=42, timestamp_ns=1700000000123456789, interval_ns=1000000000,
                 hostname="host-1", metadata_mode=pb.MODE_TASK_WORK, counters_id=7)
    r = f.records.add(kind=pb.PROCESS, pid=4242, start_time_ns=123456789, exec_seq=1,
                      comm="curl", uid=1000, gid=1000, ppid=1, cgroup_id=9876,
                      metadata_source=pb.SOURCE_TASK_WORK,
                      cgroup_path="/system.slice/docker-" + HEX + ".scope",
                      container_id=HEX, container_runtime="docker",
                      service="web.service", netns=4026531840)
    r.argv.extend(["curl", "-s", "http://example.com/"])
    r.env.add(name="SERVICE_NAME", value="web")
    t = r.traffic.add(direction=pb.EGRESS, protocol=pb.TCP, family=pb.IPV4,
                      layer=pb.CGROUP_SKB)
    counters(pb, t.total, 10, 5200, 4680)
    counters(pb, t.delta, 2, 1040, 936)
    counters(pb, r.tx_total, 10, 5200, 4680)
    counters(pb, r.tx_delta, 2, 1040, 936)
    counters(pb, r.rx_total, 12, 90000, 89376)
    f.records.add(kind=pb.UNATTRIBUTED)
    o = f.records.add(kind=pb.OVERFLOW)
    counters(pb, o.rx_total, 1, 60)
    i = f.interfaces.add(netns=4026531840, ifindex=1, name="lo", xdp_mode="off",
                         tc_mode="tcx")
    counters(pb, i.rx_kernel, 22, 95200)
    f.stats.task_work_scheduled = 3
    f.stats.subscribers = 1
    return f


def hostile_frame(pb):
    """What a process controls, at its worst: escapes, bad UTF-8, huge numbers."""
    f = pb.Frame(seq=2**64 - 1, interval_ns=1, hostname="h\x1b]0;pwned\x07",
                 metadata_mode=pb.MODE_PROCFS)
    r = f.records.add(kind=pb.PROCESS, pid=2**32 - 1, comm="\x1b[2J\x1b[31mx",
                      exited=True, exit_code=-9, argv_truncated=True)
    r.argv.extend(["\u009b31m", "caf\u00e9 \u2713 \U0001f600", "", "a\tb\nc\"d\\e",
                   "x" * 300])
    r.env.add(name="POD_NAME", value="\u202e\u0000")
    counters(pb, r.rx_delta, 2**64 - 1, 2**64 - 1, 2**64 - 1)
    counters(pb, r.tx_total, 2**63, 2**63)
    data = bytearray(f.SerializeToString())
    # Invalid UTF-8 in comm: protobuf's Python API refuses it, the wire does not.
    data += b"\x22\x06" + b"\x08\x01" + b"\x2a\x02\xff\xc3"  # records { kind, comm }
    return bytes(data)


def frames(pb):
    small = pb.Frame(seq=1)
    full = process_frame(pb).SerializeToString()
    stream = varint(len(full)) + full + varint(0)
    # frame seeds start with the most bytes one read(2) returns (0: no limit)
    return {
        # the stream: prefix || frame, an empty frame, the frame again
        "frame/two-frames": b"\0" + stream + varint(len(full)) + full,
        "frame/two-frames-7-byte-reads": b"\x07" + stream + varint(len(full)) + full,
        "frame/one-small-1-byte-reads": b"\x01" + varint(len(small.SerializeToString()))
        + small.SerializeToString(),
        "frame/empty-frame": b"\0" + varint(0),
        "frame/eof-in-body": b"\x10" + varint(len(full)) + full[:-3],
        "frame/eof-in-prefix": b"\x01\x80\x80",
        "frame/prefix-too-big": b"\0" + varint((64 << 20) + 1),
        "frame/varint-11-bytes": b"\x03" + b"\x80" * 10 + b"\x01",
        "frame/bad-body": b"\0\x02\x08\x80",
        # render takes the message alone
        "render/process": full,
        "render/hostile": hostile_frame(pb),
        "render/unknown-enum": pb.Frame(seq=3).SerializeToString()
        + b"\x22\x02\x08\x63",  # records { kind: 99 }
    }


NLMSG_DONE, NLMSG_ERROR, SOCK_DIAG_BY_FAMILY = 3, 2, 20
NLM_F_MULTI = 2


def nlmsg(mtype, payload, flags=NLM_F_MULTI, seq=0, pid=0):
    pad = (-len(payload)) % 4
    return struct.pack("=IHHII", 16 + len(payload), mtype, flags, seq, pid) + payload + b"\0" * pad


def diag_msg(family, state, inode, cookie, sport=80, dport=0):
    """struct inet_diag_msg: family, state, timer, retrans, sockid, expires..inode."""
    sockid = struct.pack(">HH", sport, dport) + b"\0" * 32 + struct.pack("=I", 0) \
        + struct.pack("=II", cookie & 0xFFFFFFFF, cookie >> 32)
    return struct.pack("=BBBB", family, state, 0, 0) + sockid + struct.pack("=IIIII", 0, 0, 0, 0, inode)


def sockdiag():
    v4 = nlmsg(SOCK_DIAG_BY_FAMILY, diag_msg(2, 10, 4000000001, 0x0123456789ABCDEF))
    v6 = nlmsg(SOCK_DIAG_BY_FAMILY, diag_msg(10, 1, 12345, 7, 443, 50000))
    tw = nlmsg(SOCK_DIAG_BY_FAMILY, diag_msg(2, 6, 0, 99))  # TIME_WAIT: no inode
    done = nlmsg(NLMSG_DONE, struct.pack("=i", 0))
    err = nlmsg(NLMSG_ERROR, struct.pack("=i", -2) + b"\0" * 16)
    return {
        "sockdiag/dump-v4-v6-done": v4 + v6 + tw + done,
        "sockdiag/short-message": v4[:-8],
        "sockdiag/unix-family": nlmsg(SOCK_DIAG_BY_FAMILY, diag_msg(1, 1, 5, 5)),
        "sockdiag/error-enoent": err,
        "sockdiag/link": b"socket:[4000000001]",
        "sockdiag/link-max": b"socket:[18446744073709551615]",
        "sockdiag/link-pipe": b"pipe:[123]",
    }


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_pb(tmp)
        seeds = {**frames(pb), **sockdiag()}
    for name, data in seeds.items():
        path = os.path.join(CORPUS, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        print(f"{len(data):6d} {name}")


if __name__ == "__main__":
    main()
