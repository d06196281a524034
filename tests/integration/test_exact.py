# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Exactness where the path is not clean: loss and duplication in a router
between client and server (nftables in its namespace), datagrams read by
another process than the one that bound the socket, receive buffers that
overflow, IPv6 fragments. Ground truth never comes from taskmeter: the
applications' own counts, tcp_info once everything is acknowledged, and
AF_PACKET captures (build/tools/tm_capture) on the interfaces."""
import os

from tmtest import (Env, BUILD, TRAFFIC, check, check_eq, clean_env, payload, records_of_pid,
                    sh)
from test_interfaces import Topology

CAPTURE = os.path.join(BUILD, "tools", "tm_capture")


def no_offloads(ns, dev):
    """One skb per wire segment, so that segments counted by a capture and
    by taskmeter are the same things."""
    sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off")


def lossy_router(ns, loss=0, dup=0):
    """The router loses loss% of the TCP data segments it forwards and
    sends dup% of the TCP packets twice, both ways (what it did before is
    replaced). Pure ACKs are never lost: a lost ACK makes the sender repeat
    data after the receiver's socket has become a TIME_WAIT minisocket,
    which no process holds, and the capture could not tell those apart.
    (netfilter, not netem: kernels built without sch_netem, this one among
    them, have nftables' numgen and dup.)"""
    rules = ["flush ruleset"]
    for fam, srv, cli in (("ip", "10.2.0.1", "10.1.0.1"), ("ip6", "fd02::1", "fd01::1")):
        rules.append(f"""table {fam} tm_lossy {{
  chain transit {{
    type filter hook forward priority 0; policy accept;
    meta l4proto tcp {fam} length > 200 numgen random mod 100 < {loss} drop
    {fam} daddr {srv} meta l4proto tcp numgen random mod 100 < {dup} dup to {srv} device "vr1"
    {fam} daddr {cli} meta l4proto tcp numgen random mod 100 < {dup} dup to {cli} device "vr0"
  }}
}}""")
    sh("ip", "netns", "exec", ns, "nft", "\n".join(rules))


def settled(env):
    """The frames so far, once two more came after what the test did
    (every counter is read once per frame)."""
    env.wait_frames(2)
    return env.all_frames()


def drops(rec):
    return [t for t in rec.get("traffic", []) if t.get("layer") == "DROP"]


def check_side(rec, who, app_sent, app_received, sent_again, dups, dev, layer_in):
    """One process of a lossy transfer, at the socket layer and on its
    interface: payload is what the application moved, retransmitted bytes
    and segments what its TCP sent again (tx) and what arrived a second
    time (rx)."""
    tx = payload(rec, "EGRESS", "TCP")
    rx = payload(rec, "INGRESS", "TCP")
    tx_re = payload(rec, "EGRESS", "TCP", field="retrans_bytes")
    rx_re = payload(rec, "INGRESS", "TCP", field="retrans_bytes")
    tx_rp = payload(rec, "EGRESS", "TCP", field="retrans_packets")
    rx_rp = payload(rec, "INGRESS", "TCP", field="retrans_packets")
    print(f"{who}: payload tx {tx}/{app_sent} rx {rx}/{app_received}; retransmitted tx "
          f"{tx_re} B {tx_rp} segs (tcp_info {sent_again[0]} B, capture {sent_again[1]} segs), "
          f"rx {rx_re} B {rx_rp} segs (capture {dups[0]} B {dups[1]} segs)")
    check_eq((tx, rx), (app_sent, app_received), f"{who} payload (tx, rx)")
    check_eq((tx_re, tx_rp), sent_again, f"{who} retransmitted (bytes, segments) sent")
    check_eq((rx_re, rx_rp), dups, f"{who} duplicates (bytes, segments) received")
    for direction, layer, want, re in (("EGRESS", "TC", app_sent, sent_again[0]),
                                       ("INGRESS", layer_in, app_received, dups[0])):
        got = (payload(rec, direction, "TCP", layer=layer),
               payload(rec, direction, "TCP", layer=layer, field="retrans_bytes"))
        check_eq(got, (want, re), f"{who} {dev} {direction} {layer} (payload, retransmitted)")
    check_eq(drops(rec), [], f"{who}: DROP entries (nothing was dropped on its host)")


def test_loss_and_duplicates():
    """TCP over a router that loses packets, then over one that duplicates
    them, both ways, IPv4 and IPv6: payload stays exactly what the
    applications sent and received; retransmitted bytes and segments are
    what tcp_info says the sender sent again and what the receiver's
    capture saw arrive a second time. (Loss and duplication at once can
    make a duplicate overlap part of data the receiver holds out of order;
    the stack trims that part silently: see README, Accuracy.)"""
    with Env(start=False) as env:
        topo = Topology(env)
        for ns, dev in ((topo.c, "vc0"), (topo.r, "vr0"), (topo.r, "vr1"), (topo.s, "vs0")):
            no_offloads(ns, dev)
        env.start_daemon(extra=topo.daemon_args())
        runs = []
        for addr, port, family, loss, dup in (("10.2.0.1", 6100, "IPV4", 5, 0),
                                              ("fd02::1", 6101, "IPV6", 5, 0),
                                              ("10.2.0.1", 6102, "IPV4", 0, 4),
                                              ("fd02::1", 6103, "IPV6", 0, 4)):
            lossy_router(topo.r, loss, dup)
            family = f"{family} {'loss' if loss else 'duplicates'}"
            caps = [env.spawn([CAPTURE, dev, str(port)], stdin=-1, ns=ns)
                    for ns, dev in ((topo.c, "vc0"), (topo.s, "vs0"))]
            srv = env.spawn([TRAFFIC, "tcp-serve", addr, str(port), "400000"],
                            env=clean_env(), ns=topo.s)
            cli = env.run([TRAFFIC, "tcp-send", addr, str(port), "2000000"], env=clean_env(),
                          ns=topo.c)
            rep = env.finish(srv)
            cap_c, cap_s = (env.finish(p, stdin="") for p in caps)
            check_eq((cli["sent"], rep["received"], rep["sent"], cli["received"]),
                     (2000000, 2000000, 400000, 400000), f"{family} ground truth")
            # the two witnesses of what was sent again agree
            check_eq((cap_c["out_dup"], cap_s["out_dup"]), (cli["retrans"], rep["retrans"]),
                     f"{family} retransmitted bytes: captures vs tcp_info")
            check(cli["retrans"] > 0 if loss else cap_s["in_dup"] > 0,
                  f"{family}: the router caused no retransmission or duplicate")
            runs.append((family, cli, rep, cap_c, cap_s))
        frames = env.stop()
        for family, cli, rep, cap_c, cap_s in runs:
            c = records_of_pid(frames, cli["pid"])[0]
            s = records_of_pid(frames, rep["pid"])[0]
            check_side(c, f"{family} client", cli["sent"], cli["received"],
                       (cli["retrans"], cap_c["out_dup_segs"]),
                       (cap_c["in_dup"], cap_c["in_dup_segs"]), "vc0", "TC")
            check_side(s, f"{family} server", rep["sent"], rep["received"],
                       (rep["retrans"], cap_s["out_dup_segs"]),
                       (cap_s["in_dup"], cap_s["in_dup_segs"]), "vs0", "TC")


UDP_HDR = {"IPV4": 28, "IPV6": 48}  # IP + UDP headers, bytes per datagram


def socket_layer(rec, direction):
    """(packets, bytes, payload) of a record's UDP socket layer."""
    return tuple(payload(rec, direction, "UDP", field=f)
                 for f in ("packets", "bytes", "payload_bytes"))


def drop_entries(rec):
    """{ifindex: (packets, bytes, payload)} of a record's DROP layer."""
    out = {}
    for t in drops(rec):
        c = t["total"]
        got = out.get(t.get("ifindex", 0), (0, 0, 0))
        out[t.get("ifindex", 0)] = tuple(
            g + c.get(f, 0) for g, f in zip(got, ("packets", "bytes", "payload_bytes")))
    return out


def test_udp_read_by_another_process():
    """The rule: a received datagram belongs to the process that reads it.
    A socket bound by one process and read by its child (pre-fork
    servers, hand-offs): every datagram queued before the child's first
    read is the child's; the binder, which never reads, received nothing.
    In a SO_REUSEPORT group each reader has exactly what it read."""
    with Env() as env:
        for addr, family in (("127.0.0.1", "IPV4"), ("::1", "IPV6")):
            reader = env.spawn([TRAFFIC, "udp-reader", addr, "6200", "0", "1000", "1"],
                               stdin=-1)
            sent = env.run([TRAFFIC, "udp-blast", addr, "6200", "40", "700"])
            child, binder = env.finish(reader, stdin="go\n", all_reports=True)
            check_eq(child["received"], sent["sent"], f"{family}: what the child read")
            group = [env.spawn([TRAFFIC, "udp-reader", addr, "6201", "0", "1000", "0"],
                               stdin=-1) for _ in range(2)]
            storm = env.run([TRAFFIC, "fork-storm", addr, "6201", "60", "500"])
            members = [env.finish(p, stdin="go\n") for p in group]
            check_eq(sum(m["received"] for m in members), storm["sent"],
                     f"{family}: what the group read")
            check(all(m["received"] for m in members),
                  f"{family}: SO_REUSEPORT gave one member nothing: {members}")
            frames = settled(env)
            for rep, who in ((child, "child"), (binder, "binder")) + tuple(
                    (m, f"group member {i}") for i, m in enumerate(members)):
                recs = records_of_pid(frames, rep["pid"])
                if who == "binder" and not recs:
                    continue  # no traffic, no record: nothing was charged to it
                check_eq(len(recs), 1, f"{family} {who}: records")
                rec = recs[0]
                n = rep["received"] // (700 if who in ("child", "binder") else 500)
                check_eq(socket_layer(rec, "INGRESS"),
                         (n, rep["received"] + n * UDP_HDR[family], rep["received"]),
                         f"{family} {who}: received (datagrams, IP bytes, payload)")
                check_eq(drop_entries(rec), {}, f"{family} {who}: DROP entries")
        env.stop()


def udp_snmp(env, key):
    """A counter of the Udp line of /proc/net/snmp in the test's netns."""
    lines = [ln.split() for ln in env.netns_exec("cat", "/proc/net/snmp").splitlines()
             if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index(key)])


def test_udp_receive_buffer_drops():
    """Datagrams a full receive buffer refused and datagrams still queued
    when the socket closed were never delivered: the socket layer has only
    what the process read, the DROP layer the rest, on the interface they
    came in by (refused: the kernel's own RcvbufErrors counts them) or on
    none (unread at close), with IP bytes and payload as every layer
    counts them."""
    with Env() as env:
        before = udp_snmp(env, "RcvbufErrors")
        reader = env.spawn([TRAFFIC, "udp-reader", "127.0.0.1", "6300", "16384", "3", "0"],
                           stdin=-1)
        sent = env.run([TRAFFIC, "udp-blast", "127.0.0.1", "6300", "100", "700"])
        rep = env.finish(reader, stdin="go\n")
        refused = udp_snmp(env, "RcvbufErrors") - before
        got = rep["received"] // 700
        unread = sent["sent"] // 700 - got - refused
        check(refused > 0 and unread > 0, f"refused {refused}, unread {unread}: not the case")
        frames = settled(env)
        rec = records_of_pid(frames, rep["pid"])[0]
        print(f"read {got} datagrams, {refused} refused (RcvbufErrors), {unread} unread at close")
        check_eq(socket_layer(rec, "INGRESS"), (got, got * 728, got * 700),
                 "received: what was read")
        check_eq(drop_entries(rec), {1: (refused, refused * 728, refused * 700),
                                     0: (unread, unread * 728, unread * 700)},
                 "DROP: refused on lo (ifindex 1), unread at close (no interface)")
        env.stop()
