# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Two processes with distinctive argv exchange known amounts over TCP and
UDP, IPv4 and IPv6; each record must show exactly the payload bytes each
process sent and received, in both directions. Every case runs in both
metadata modes: task_work (in-task reads) and procfs (the fallback for
kernels without the kfunc, forced here)."""
import json
import os
import subprocess
import sys

from tmtest import (Env, TRAFFIC, check, check_eq, clean_env, need_ipv6, payload,
                    records_of_pid, traffic_entries)

CAPTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pktcap.py")
# lo's MTU in the TCP tests' namespace: segments of a known size (1448 bytes
# of payload with timestamps), so that the stack's 64 KiB GSO packets are
# dozens of wire packets each, and counting them as one would show
LO_MTU = 1500

IP_HDR = {"IPV4": 20, "IPV6": 40}

MODES = {
    "task_work": ([], "SOURCE_TASK_WORK", {}),
    # /proc is read when the owner appears: keep the processes alive a while
    # without task_work: read by the process's own first send, else from /proc
    "procfs": (["--metadata", "procfs"], ("SOURCE_IN_PROCESS", "SOURCE_PROCFS"),
               {"TM_LINGER_MS": "300"}),
}


def tcp_exchange(env, addr, up, down, tag, penv):
    srv = env.spawn([TRAFFIC, "tcp-serve", addr, "5001", str(down), f"server-{tag}"],
                    env=clean_env(**penv))
    cli = env.run([TRAFFIC, "tcp-send", addr, "5001", str(up), f"client-{tag}"],
                  env=clean_env(**penv))
    rep = env.finish(srv)
    check_eq((cli["sent"], rep["received"]), (up, up), "ground truth upstream")
    return rep, cli


def check_process(frames, report, marker, protocol, family, source):
    recs = records_of_pid(frames, report["pid"])
    check_eq(len(recs), 1, f"records of pid {report['pid']} ({marker})")
    rec = recs[0]
    check(marker in rec.get("argv", []), f"argv {rec.get('argv')} lacks {marker}")
    check(rec.get("metadata_source") in (source if isinstance(source, tuple) else (source,)),
          f"{marker} metadata source {rec.get('metadata_source')}, want {source}")
    check_eq(payload(rec, "EGRESS", protocol, family), report["sent"], f"{marker} tx payload")
    check_eq(payload(rec, "INGRESS", protocol, family), report["received"],
             f"{marker} rx payload")
    # nothing of this process's traffic landed under another protocol/family
    check_eq(payload(rec, "EGRESS"), report["sent"], f"{marker} tx payload, all protocols")
    check_eq(payload(rec, "INGRESS"), report["received"], f"{marker} rx payload, all protocols")
    print(f"{marker}: sent {report['sent']} attributed {payload(rec, 'EGRESS')}, "
          f"received {report['received']} attributed {payload(rec, 'INGRESS')}")
    return rec


def start_capture(env, port):
    """pktcap.py on lo of the test's namespace (not in its cgroup)."""
    p = subprocess.Popen(["ip", "netns", "exec", env.ns, sys.executable, CAPTURE, "lo",
                          str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    env.children.append(p)
    line = p.stdout.readline()
    check(line.strip() == "listening", f"capture did not start: {line!r}")
    return p


def finish_capture(p):
    """What the capture counted, once the traffic is over (every packet was
    queued to it as it left)."""
    out, _ = p.communicate(input="", timeout=30)
    check_eq(p.returncode, 0, "capture exit status")
    counts = json.loads(out.splitlines()[-1])
    check_eq(counts["drops"], 0, "packets the capture dropped")
    return counts


def wire(rec, direction):
    """(packets, IP bytes, payload + retransmitted) of a record's socket layer."""
    t = [e["total"] for e in traffic_entries(rec, direction)]
    return (sum(x.get("packets", 0) for x in t), sum(x.get("bytes", 0) for x in t),
            sum(x.get("payload_bytes", 0) + x.get("retrans_bytes", 0) for x in t))


def check_wire(rec, marker, out, into):
    """The socket layer's packets (segments) and IP bytes, both ways, are
    what the capture saw on lo; payload and retransmissions add up to the
    TCP payload it saw."""
    for direction, c in (("EGRESS", out), ("INGRESS", into)):
        check_eq(wire(rec, direction), (c["packets"], c["bytes"], c["payload"]),
                 f"{marker} {direction.lower()} (packets, IP bytes, payload + retransmitted) "
                 f"vs the capture's ({c['skbs']} GSO packets)")


def run_tcp(mode, addr, family, up, down):
    args, source, penv = MODES[mode]
    with Env(daemon_args=args) as env:
        tag = family.lower()
        env.netns_exec("ip", "link", "set", "lo", "mtu", str(LO_MTU))
        cap = start_capture(env, 5001)
        srv, cli = tcp_exchange(env, addr, up, down, tag, penv)
        seen = finish_capture(cap)
        frames = env.stop()
        s = check_process(frames, srv, f"server-{tag}", "TCP", family, source)
        c = check_process(frames, cli, f"client-{tag}", "TCP", family, source)
        print(f"capture: to the server {seen['to']}, from it {seen['from']}")
        check(seen["to"]["packets"] > 2 * seen["to"]["skbs"], "the client's data went as GSO "
              f"packets of many segments: {seen['to']}")
        check_wire(c, f"client-{tag}", seen["to"], seen["from"])
        check_wire(s, f"server-{tag}", seen["from"], seen["to"])


def run_udp(mode, addr, family, count, size):
    args, source, penv = MODES[mode]
    with Env(daemon_args=args) as env:
        srv = env.spawn([TRAFFIC, "udp-recv", addr, "5002", str(count), "udp-server"],
                        env=clean_env(**penv))
        cli = env.run([TRAFFIC, "udp-send", addr, "5002", str(count), str(size), "udp-client"],
                      env=clean_env(**penv))
        rep = env.finish(srv)
        frames = env.stop()
        for report, marker in ((rep, "udp-server"), (cli, "udp-client")):
            rec = check_process(frames, report, marker, "UDP", family, source)
            # UDP: IP bytes are payload + IP and UDP header, per datagram
            for t in traffic_entries(rec, "EGRESS"):
                check_eq(t["total"]["packets"], count, f"{marker} datagrams")
                check_eq(t["total"]["bytes"], count * (size + IP_HDR[family] + 8),
                         f"{marker} IP bytes")


def test_tcp_ipv4():
    run_tcp("task_work", "127.0.0.1", "IPV4", 1_000_000, 123_457)


def test_tcp_ipv6():
    need_ipv6()
    run_tcp("task_work", "::1", "IPV6", 777_777, 4_321)


def test_udp_ipv4():
    run_udp("task_work", "127.0.0.1", "IPV4", 50, 1200)


def test_udp_ipv6():
    need_ipv6()
    run_udp("task_work", "::1", "IPV6", 40, 999)


def test_procfs_tcp_ipv4():
    run_tcp("procfs", "127.0.0.1", "IPV4", 1_000_000, 123_457)


def test_procfs_tcp_ipv6():
    need_ipv6()
    run_tcp("procfs", "::1", "IPV6", 777_777, 4_321)


def test_procfs_udp_ipv4():
    run_udp("procfs", "127.0.0.1", "IPV4", 50, 1200)


def test_procfs_udp_ipv6():
    need_ipv6()
    run_udp("procfs", "::1", "IPV6", 40, 999)
