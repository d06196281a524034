# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The interface layer: XDP and TC on every interface of a client — router —
server topology of network namespaces. Every byte an interface carries is in
a record (a process's, or a bucket: forwarded, local without owner, non-IP),
and per interface and direction the records add up to the kernel's own
counters exactly."""
import json
import os
import time

from tmtest import (Env, TRAFFIC, BUILD, TestFailure, check, check_eq, clean_env,
                    parse_report, payload, records_of_pid, sh, wait_for)

CAPTURE = os.path.join(BUILD, "tools", "tm_capture")


class Topology:
    """client (c) 10.1.0.1 — 10.1.0.254 router (r) 10.2.0.254 — 10.2.0.1 server (s),
    and the same in IPv6 (fd01::/64, fd02::/64); the router forwards."""

    def __init__(self, env):
        self.env = env
        self.c, self.r, self.s = (env.add_netns(x) for x in "crs")
        for ns in (self.c, self.r, self.s):
            for key in ("accept_dad=0", "router_solicitations=0"):
                env_sysctl(ns, f"net.ipv6.conf.default.{key}")
        sh("ip", "link", "add", "vc0", "netns", self.c, "type", "veth", "peer", "name", "vr0",
           "netns", self.r)
        sh("ip", "link", "add", "vr1", "netns", self.r, "type", "veth", "peer", "name", "vs0",
           "netns", self.s)
        self.addr(self.c, "vc0", "10.1.0.1/24", "fd01::1/64")
        self.addr(self.r, "vr0", "10.1.0.254/24", "fd01::fe/64")
        self.addr(self.r, "vr1", "10.2.0.254/24", "fd02::fe/64")
        self.addr(self.s, "vs0", "10.2.0.1/24", "fd02::1/64")
        sh("ip", "-n", self.c, "route", "add", "default", "via", "10.1.0.254")
        sh("ip", "-n", self.s, "route", "add", "default", "via", "10.2.0.254")
        sh("ip", "-n", self.c, "-6", "route", "add", "default", "via", "fd01::fe")
        sh("ip", "-n", self.s, "-6", "route", "add", "default", "via", "fd02::fe")
        env_sysctl(self.r, "net.ipv4.ip_forward=1")
        env_sysctl(self.r, "net.ipv6.conf.all.forwarding=1")

    @staticmethod
    def addr(ns, dev, v4, v6):
        sh("ip", "-n", ns, "addr", "add", v4, "dev", dev)
        sh("ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad")
        sh("ip", "-n", ns, "link", "set", dev, "up")

    def daemon_args(self):
        return ["--set", f"netns={self.c},{self.r},{self.s}", "--set", "interfaces=*"]

    def quiet(self):
        quiet(self.c, self.r, self.s)


def quiet(*namespaces, timeout=8.0):
    """Wait until no interface's counters move for a second (link-up
    chatter: neighbour discovery, MLD reports)."""
    last, since = None, time.time()
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = [sh("ip", "-n", ns, "-s", "-j", "link", "show") for ns in namespaces]
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= 1.0:
            return
        time.sleep(0.1)
    raise TestFailure("the interfaces never went quiet")


def env_sysctl(ns, kv):
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", kv)


def netns_inode(ns):
    return os.stat(f"/run/netns/{ns}").st_ino


def kernel_links(namespaces):
    """The kernel's own counters, read here (ip -s -j link, rtnetlink's
    IFLA_STATS64), not by taskmeterd: {(netns inode, name): {"rx": (packets,
    bytes), "tx": (...), "tx_dropped": n}}, loopback left out."""
    out = {}
    for ns in namespaces:
        for link in json.loads(sh("ip", "-n", ns, "-s", "-j", "link", "show")):
            if link["ifname"] == "lo":
                continue
            st = link["stats64"]
            out[(netns_inode(ns), link["ifname"])] = {
                "rx": (st["rx"]["packets"], st["rx"]["bytes"]),
                "tx": (st["tx"]["packets"], st["tx"]["bytes"]),
                "tx_dropped": st["tx"]["dropped"]}
    return out


def latest_records(frames):
    """Every record's latest state, buckets included (counts are totals
    since the record appeared, so a record's latest state holds all of it)."""
    out = {}
    for f in frames:
        for r in f["records"]:
            out[(r.get("kind"), r.get("pid", 0), r.get("start_time_ns", 0),
                 r.get("exec_seq", 0))] = r
    return out


def record_totals(frames):
    """What the records say each interface carried: {(netns, name):
    {"rx": (packets, bytes), "tx": ...}}, summed here over the XDP and TC
    entries of every record (the DROP layer is what was not carried)."""
    out = {}
    for r in latest_records(frames).values():
        for t in r.get("traffic", []):
            if t.get("layer") not in ("XDP", "TC"):
                continue
            d = "rx" if t["direction"] == "INGRESS" else "tx"
            per = out.setdefault((t.get("netns", 0), t.get("ifname", "")), {})
            pkts, byts = per.get(d, (0, 0))
            per[d] = (pkts + t["total"].get("packets", 0), byts + t["total"].get("bytes", 0))
    return out


def delta(a, b):
    return tuple(y - x for x, y in zip(a, b))


class Window:
    """A stretch of traffic over which the records must add up to the
    kernel's interface counters: opened and closed on quiet interfaces,
    the kernel read by the test at both ends, the records from frames that
    came after each read."""

    def __init__(self, env, namespaces):
        self.env, self.namespaces = env, namespaces
        quiet(*namespaces)
        self.k0 = kernel_links(namespaces)
        env.wait_frames(2)
        self.r0 = record_totals(env.all_frames())

    def close(self):
        quiet(*self.namespaces)
        self.k1 = kernel_links(self.namespaces)
        self.env.wait_frames(2)
        self.r1 = record_totals(self.env.all_frames())

    def kernel(self, ns, dev, d):
        key = (netns_inode(ns), dev)
        return delta(self.k0[key][d], self.k1[key][d])

    def records(self, ns, dev, d):
        key = (netns_inode(ns), dev)
        zero = {"rx": (0, 0), "tx": (0, 0)}
        return delta(self.r0.get(key, zero).get(d, (0, 0)), self.r1.get(key, zero).get(d, (0, 0)))

    def check(self, mode="", idle=()):
        """Per interface and direction: records = kernel, packets and bytes.
        idle: (name, direction) pairs the window's traffic may not use."""
        for (inode, dev) in sorted(self.k1):
            ns = next(n for n in self.namespaces if netns_inode(n) == inode)
            for d in ("rx", "tx"):
                rec, ker = self.records(ns, dev, d), self.kernel(ns, dev, d)
                print(f"{dev} {d}: records {rec[0]} pkts {rec[1]} B, kernel {ker[0]} pkts "
                      f"{ker[1]} B {mode}")
                check_eq(rec, ker, f"{dev} {d} records vs kernel (packets, bytes) {mode}")
                if (dev, d) not in idle:
                    check(ker[0] > 0, f"{dev} {d}: no traffic in the window")


def if_payload(rec, ifname, direction, layer, protocol=None):
    return sum(t["total"].get("payload_bytes", 0) for t in rec.get("traffic", [])
               if t.get("ifname") == ifname and t["direction"] == direction
               and t.get("layer") == layer and (protocol is None or t["protocol"] == protocol))


def bucket(frames, kind):
    recs = [r for r in frames[-1]["records"] if r.get("kind") == kind]
    check_eq(len(recs), 1, f"{kind} records")
    return recs[0]


def test_topology_reconciles():
    """The default on veth: TCX both ways (XDP stays off veth, see README)."""
    reconcile([], rx_layer="TC")


def test_topology_reconciles_skb_xdp():
    """XDP in skb (generic) mode counts the receive side."""
    reconcile(["--set", "xdp_mode=skb"])


def test_topology_reconciles_native_xdp_clsact():
    """The other attach paths: native (driver) XDP, TC as clsact filters."""
    reconcile(["--set", "xdp_mode=native", "--set", "tc_attach=clsact"], l2_short=14)


class Capture:
    """build/tools/tm_capture on one interface: what it really carried,
    counted without taskmeter (snap() between the test's steps)."""

    def __init__(self, env, ns, dev, port=0):
        self.dev = dev
        self.p = env.spawn([CAPTURE, dev, str(port)], stdin=-1, ns=ns)
        self.snaps = []

    def snap(self):
        self.p.stdin.write("snap\n")
        self.p.stdin.flush()
        self.snaps.append(parse_report(self.p.stdout.readline()))

    def frames(self, d):
        a, b = self.snaps[-2], self.snaps[-1]
        return (b[f"{d}_frames"] - a[f"{d}_frames"], b[f"{d}_bytes"] - a[f"{d}_bytes"])

    def end(self, env):
        env.finish(self.p, stdin="")


def check_l2_shortfall(w, ns, cap, short):
    """What the kernel counts of the frames the capture saw: all of them,
    or, where the receiving end runs native XDP, 14 bytes less per frame
    (the veth queue counts from the network header). taskmeterd corrects
    for it; this checks that the kernel really does it, independently."""
    for d, k in (("out", "tx"), ("in", "rx")):
        frames, byts = cap.frames(d)
        check_eq(w.kernel(ns, cap.dev, k), (frames, byts - short * frames),
                 f"{cap.dev} {k}: kernel vs capture ({short} bytes short per frame)")
        print(f"{cap.dev} {k}: captured {frames} frames {byts} B, kernel "
              f"{w.kernel(ns, cap.dev, k)}")


def reconcile(extra, rx_layer="XDP", l2_short=0):
    with Env(start=False) as env:
        topo = Topology(env)
        env.start_daemon(extra=topo.daemon_args() + extra)
        caps = [(topo.c, Capture(env, topo.c, "vc0")), (topo.s, Capture(env, topo.s, "vs0"))]
        w = Window(env, (topo.c, topo.r, topo.s))
        for _, cap in caps:
            cap.snap()
        srv = env.spawn([TRAFFIC, "tcp-serve", "10.2.0.1", "6001", "30000"], env=clean_env(),
                        ns=topo.s)
        cli = env.run([TRAFFIC, "tcp-send", "10.2.0.1", "6001", "200000"], env=clean_env(),
                      ns=topo.c)
        srv_rep = env.finish(srv)
        srv6 = env.spawn([TRAFFIC, "udp-recv", "fd02::1", "6002", "20"], env=clean_env(),
                         ns=topo.s)
        cli6 = env.run([TRAFFIC, "udp-send", "fd02::1", "6002", "20", "900"], env=clean_env(),
                       ns=topo.c)
        env.finish(srv6)
        closed = env.run([TRAFFIC, "udp-blast", "10.2.0.1", "6999", "10", "333"],
                         env=clean_env(), ns=topo.c)
        w.close()
        for ns, cap in caps:
            cap.snap()
            cap.end(env)
            check_l2_shortfall(w, ns, cap, l2_short)
        w.check(" ".join(extra))
        frames = env.stop()

        # per process, at the interface layer: what crossed its interface
        c = records_of_pid(frames, cli["pid"])[0]
        check_eq(if_payload(c, "vc0", "EGRESS", "TC", "TCP"), cli["sent"],
                 "client TCP payload leaving vc0")
        check_eq(if_payload(c, "vc0", "INGRESS", rx_layer, "TCP"),
                 cli["received"], "client TCP payload arriving on vc0")
        s = records_of_pid(frames, srv_rep["pid"])[0]
        check_eq(if_payload(s, "vs0", "INGRESS", rx_layer, "TCP"), cli["sent"],
                 "server TCP payload arriving on vs0")
        c6 = records_of_pid(frames, cli6["pid"])[0]
        check_eq(if_payload(c6, "vc0", "EGRESS", "TC", "UDP"), 20 * 900, "IPv6 UDP leaving vc0")

        # the router forwards both flows: its forwarded bucket has them all,
        # what the client sent again too (no socket there to tell it apart;
        # a loaded machine may drop at the server's queue, past the router)
        fwd = bucket(frames, "FORWARDED")
        wire = cli["sent"] + cli["retrans"]
        check_eq(if_payload(fwd, "vr0", "INGRESS", rx_layer, "TCP"), wire,
                 f"forwarded TCP payload into vr0 (sent + {cli['retrans']} sent again)")
        check_eq(if_payload(fwd, "vr1", "EGRESS", "TC", "TCP"), wire,
                 f"forwarded TCP payload out of vr1 (sent + {cli['retrans']} sent again)")
        check_eq(if_payload(fwd, "vr1", "INGRESS", rx_layer, "UDP"), 20 * 900,
                 "forwarded IPv6 UDP echo payload into vr1")

        # a closed port: received by the host, owned by nobody
        local = bucket(frames, "LOCAL_NO_OWNER")
        check_eq(if_payload(local, "vs0", "INGRESS", rx_layer, "UDP"), closed["sent"],
                 "UDP payload to a closed port")


def test_flow_cache_after_bind():
    """A flow classified at the interface through a bound socket is
    cached; a bind anywhere makes every cached classification stale. The
    flow's next packets are classified again and are still the owner's:
    a stale cache entry is renewed, not left standing in the way."""
    with Env(start=False) as env:
        topo = Topology(env)
        env.start_daemon(extra=topo.daemon_args())
        sink = env.spawn([TRAFFIC, "udp-sink", "10.2.0.1", "6400", "40"], env=clean_env(),
                         ns=topo.s)
        cli = env.spawn([TRAFFIC, "udp-send-wait", "10.2.0.1", "6400", "20", "500"],
                        env=clean_env(), ready="sent", stdin=-1, ns=topo.c)
        # a bind in the server's namespace: the bind epoch moves
        other = env.spawn([TRAFFIC, "udp-bind", "10.2.0.1", "6401", "10"], env=clean_env(),
                          ns=topo.s)
        env.finish(other)
        sent = env.finish(cli, stdin="go\n")
        rep = env.finish(sink)
        check_eq(rep["received"], sent["sent"], "ground truth: the sink got all")
        frames = env.stop()
        s = records_of_pid(frames, rep["pid"])[0]
        check_eq(if_payload(s, "vs0", "INGRESS", "TC", "UDP"), sent["sent"],
                 "the owner's payload arriving on vs0, before and after the bind")


def nft(ns, *rules):
    for rule in rules:
        sh("ip", "netns", "exec", ns, "nft", rule)


def test_firewall_drop_per_owner():
    """Datagrams an nftables rule drops before they reach their socket: the
    interface saw them for the owner, the socket never did, the owner's DROP
    layer has them."""
    with Env(start=False) as env:
        topo = Topology(env)
        nft(topo.s, "add table inet tmtest",
            "add chain inet tmtest input { type filter hook input priority 0 ; }",
            "add rule inet tmtest input udp dport 7000 drop")
        env.start_daemon(extra=topo.daemon_args())
        bound = env.spawn([TRAFFIC, "udp-bind", "10.2.0.1", "7000", "2500"], env=clean_env(),
                          ns=topo.s)
        sent = env.run([TRAFFIC, "udp-blast", "10.2.0.1", "7000", "12", "444"],
                       env=clean_env(), ns=topo.c)
        rep = env.finish(bound)
        frames = env.stop()
        check_eq(rep["received"], 0, "ground truth: the socket got nothing")
        b = records_of_pid(frames, rep["pid"])[0]
        check_eq(if_payload(b, "vs0", "INGRESS", "TC", "UDP"), sent["sent"],
                 "payload the interface saw for the owner")
        check_eq(if_payload(b, "vs0", "INGRESS", "DROP", "UDP"), sent["sent"],
                 "payload dropped before the owner's socket")
        check_eq(sum(t["total"].get("payload_bytes", 0) for t in b.get("traffic", [])
                     if t.get("layer", "CGROUP_SKB") == "CGROUP_SKB"), 0,
                 "socket-layer payload")


def link_fds(pid):
    """TCX links the collector holds."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            n += "link_type:\ttcx" in open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            pass
    return n


def test_hotplug():
    """A veth pair added while the collector runs is attached within a
    second and counted; removed, it leaves nothing behind."""
    with Env(start=False) as env:
        c, s = env.add_netns("c"), env.add_netns("s")
        env.start_daemon(extra=["--set", f"netns={c},{s}", "--set", "interfaces=*"])
        base = link_fds(env.daemon.pid)
        sh("ip", "link", "add", "hc0", "netns", c, "type", "veth", "peer", "name", "hs0",
           "netns", s)
        added = time.time()
        # TC ingress and egress on both ends (no XDP on veth by default)
        wait_for(lambda: link_fds(env.daemon.pid) == base + 4, "TCX links on both ends")
        print(f"attached {time.time() - added:.3f} s after the link appeared")
        Topology.addr(c, "hc0", "10.9.0.1/24", "fd09::1/64")
        Topology.addr(s, "hs0", "10.9.0.2/24", "fd09::2/64")
        sink = env.spawn([TRAFFIC, "udp-sink", "10.9.0.2", "6100", "15"], env=clean_env(), ns=s)
        rep = env.run([TRAFFIC, "udp-blast", "10.9.0.2", "6100", "15", "700"], env=clean_env(),
                      ns=c)
        env.finish(sink)
        env.wait_frames(2)
        sh("ip", "-n", c, "link", "del", "hc0")
        wait_for(lambda: link_fds(env.daemon.pid) == base, "links released")
        env.wait_frames(2)
        frames = env.stop()
        rec = records_of_pid(frames, rep["pid"])[0]
        check_eq(if_payload(rec, "hc0", "EGRESS", "TC", "UDP"), 15 * 700,
                 "payload counted on the hot-plugged interface")
        names = {i["name"] for i in frames[-2].get("interfaces", [])}
        check("hc0" not in names and "hs0" not in names, f"removed interfaces still listed: {names}")


def bystander_count(ns, dev):
    """Packets the bystander TC program counted (its map, found from tc)."""
    filters = json.loads(sh("tc", "-n", ns, "-j", "filter", "show", "dev", dev, "ingress"))
    prog = [f["options"]["prog"]["id"] for f in filters if "options" in f
            and f["options"].get("prog", {}).get("name") == "tc_count"]
    check_eq(len(prog), 1, "bystander filters")
    info = json.loads(sh("bpftool", "-j", "prog", "show", "id", str(prog[0])))
    dump = json.loads(sh("bpftool", "-j", "map", "dump", "id", str(info["map_ids"][0])))
    entry = dump[0].get("formatted", dump[0])
    value = entry["value"]
    if isinstance(value, list):  # raw bytes, little endian
        return int.from_bytes(bytes(int(b, 16) for b in value), "little")
    return int(value)


def rx_packets(ns, dev):
    return kernel_links((ns,))[(netns_inode(ns), dev)]["rx"][0]


def coexist(tc_attach):
    with Env(start=False) as env:
        c, s = env.add_netns("c"), env.add_netns("s")
        for ns in (c, s):
            env_sysctl(ns, "net.ipv6.conf.default.router_solicitations=0")
        sh("ip", "link", "add", "xc0", "netns", c, "type", "veth", "peer", "name", "xs0",
           "netns", s)
        Topology.addr(c, "xc0", "10.8.0.1/24", "fd08::1/64")
        Topology.addr(s, "xs0", "10.8.0.2/24", "fd08::2/64")
        sh("tc", "-n", s, "qdisc", "add", "dev", "xs0", "clsact")
        sh("ip", "netns", "exec", s, "tc", "filter", "add", "dev", "xs0", "ingress", "bpf", "da",
           "obj", os.path.join(BUILD, "tests", "tc_count.bpf.o"), "sec", "tc")

        def burst(port, n):
            sink = env.spawn([TRAFFIC, "udp-sink", "10.8.0.2", str(port), str(n)],
                             env=clean_env(), ns=s)
            env.run([TRAFFIC, "udp-blast", "10.8.0.2", str(port), str(n), "100"],
                    env=clean_env(), ns=c)
            return env.finish(sink)  # each datagram past both TC programs by now

        def counted_alongside(port):
            quiet(c, s)
            before, rx0 = bystander_count(s, "xs0"), rx_packets(s, "xs0")
            sink = burst(port, 20)
            got, rx = bystander_count(s, "xs0") - before, rx_packets(s, "xs0") - rx0
            check_eq(got, rx, "bystander counted every received packet")
            return got, sink

        counted_alongside(6200)
        env.start_daemon(extra=["--set", f"netns={c},{s}", "--set", "interfaces=*",
                                "--set", f"tc_attach={tc_attach}"])
        # taskmeter's own counts on the shared hook, too: = the kernel's,
        # and the sink's datagrams, exactly, at TC ingress of xs0
        window = Window(env, (c, s))
        during, sink = counted_alongside(6201)
        window.close()
        window.check(f"alongside a bystander ({tc_attach})", idle=(("xc0", "rx"), ("xs0", "tx")))
        frames = env.stop()
        recs = records_of_pid(frames, sink["pid"])
        check_eq(len(recs), 1, "records of the sink")
        check_eq(if_payload(recs[0], "xs0", "INGRESS", "TC"), 20 * 100,
                 "the sink's payload at TC ingress of xs0")
        after, _ = counted_alongside(6202)
        check(during >= 20 and after >= 20, "bystander saw the bursts")
        tc_modes = {i["name"]: i["tc_mode"] for i in frames[-1]["interfaces"]}
        check_eq(tc_modes.get("xs0"), tc_attach, "taskmeter's TC mode on xs0")
        qdiscs = sh("tc", "-n", s, "qdisc", "show", "dev", "xs0")
        check("clsact" in qdiscs, "the bystander's clsact qdisc was removed")
        left = sh("tc", "-n", s, "filter", "show", "dev", "xs0", "ingress")
        check("taskmeter" not in left and "tc_count" in left, f"filters left: {left}")


def test_coexistence_tcx():
    coexist("tcx")


def test_coexistence_clsact():
    coexist("clsact")


GRO_LINKS = (("c", "vc0"), ("r", "vr0"), ("r", "vr1"), ("s", "vs0"))


def napi_mode(topo, gso="off"):
    """Every veth of the topology in NAPI mode: GRO on where it receives,
    TSO and GSO off where it sends (veth hands a sender's skb to the peer's
    NAPI queue only when the sender has no TSO), so the wire carries small
    segments and TC ingress sees GRO super-packets made of them."""
    for n, dev in GRO_LINKS:
        ns = getattr(topo, n)
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", "on", "tso", "off",
           "gso", gso)


def reconcile_gro(extra, rx_layer, gso="off"):
    """A TCP transfer through veths in NAPI mode (GRO on): per interface
    and direction the records are the kernel's counters, and the payload
    is the application's."""
    with Env(start=False) as env:
        topo = Topology(env)
        napi_mode(topo, gso)
        env.start_daemon(extra=topo.daemon_args() + extra)
        w = Window(env, (topo.c, topo.r, topo.s))
        srv = env.spawn([TRAFFIC, "tcp-serve", "10.2.0.1", "6001", "300000"], env=clean_env(),
                        ns=topo.s)
        cli = env.run([TRAFFIC, "tcp-send", "10.2.0.1", "6001", "3000000"], env=clean_env(),
                      ns=topo.c)
        srv_rep = env.finish(srv)
        w.close()
        w.check(" ".join(["gro"] + extra))
        frames = env.stop()
        s = records_of_pid(frames, srv_rep["pid"])[0]
        check_eq(if_payload(s, "vs0", "INGRESS", rx_layer, "TCP"), cli["sent"],
                 "server TCP payload arriving on vs0")
        c = records_of_pid(frames, cli["pid"])[0]
        check_eq(if_payload(c, "vc0", "INGRESS", rx_layer, "TCP"), cli["received"],
                 "client TCP payload arriving on vc0")


def test_gro_reconciles():
    """veth in NAPI mode, TC ingress: the device counts the segments GRO
    merged, from the network header."""
    reconcile_gro([], "TC")


def test_gro_reconciles_gso():
    """GSO on, TSO off on the sender: TC egress sees GSO skbs, segmented
    before veth_xmit, each segment then through the peer's queue."""
    reconcile_gro([], "TC", gso="on")


def test_gro_reconciles_native_xdp():
    """The same with native XDP on every veth: XDP sees each skb in the
    NAPI queue before GRO merges them."""
    reconcile_gro(["--set", "xdp_mode=native"], "XDP")


def test_gro_reconciles_skb_xdp():
    """The same with skb-mode XDP: the kernel skips GRO on a device with a
    generic XDP program (netif_elide_gro), but the skbs still come through
    the NAPI queue, which counts them from the network header."""
    reconcile_gro(["--set", "xdp_mode=skb"], "XDP")


def refused(env, c, s, dev_c):
    """Datagrams from c that dev_c's peer refuses (refuse() set up how):
    per interface records = kernel counters (the refused ones in neither
    tx_packets nor tx_bytes), and the refused ones in the sender's tx_dropped
    and in its owner's DROP layer, egress, not at the interface."""
    w = Window(env, (c, s))
    d0 = kernel_links((c,))[(netns_inode(c), dev_c)]["tx_dropped"]
    sink = env.spawn([TRAFFIC, "udp-sink", "10.7.0.2", "6300", "10"], env=clean_env(), ns=s)
    small = env.run([TRAFFIC, "udp-blast", "10.7.0.2", "6300", "10", "200"], env=clean_env(),
                    ns=c)
    env.finish(sink)
    big = env.run([TRAFFIC, "udp-blast", "10.7.0.2", "6301", "7", "4000"], env=clean_env(),
                  ns=c)
    back = env.run([TRAFFIC, "udp-blast", "10.7.0.1", "6302", "5", "100"], env=clean_env(),
                   ns=s)
    w.close()
    d1 = kernel_links((c,))[(netns_inode(c), dev_c)]["tx_dropped"]
    check_eq(d1 - d0, 7, f"{dev_c} tx_dropped: the kernel refused the big datagrams")
    w.check("refused")
    frames = env.stop()
    b = records_of_pid(frames, big["pid"])[0]
    check_eq(if_payload(b, dev_c, "EGRESS", "TC", "UDP"), 0, "refused payload counted as sent")
    check_eq(if_payload(b, dev_c, "EGRESS", "DROP", "UDP"), big["sent"],
             "refused payload in the owner's DROP layer")
    check_eq(if_payload(records_of_pid(frames, small["pid"])[0], dev_c, "EGRESS", "TC", "UDP"),
             small["sent"], "the small datagrams sent")
    check(back["sent"] == 500, "reverse traffic")


def mtu_pair(env, mtu_c=9000):
    c, s = env.add_netns("c"), env.add_netns("s")
    for ns in (c, s):
        for key in ("accept_dad=0", "router_solicitations=0"):
            env_sysctl(ns, f"net.ipv6.conf.default.{key}")
    sh("ip", "link", "add", "mc0", "netns", c, "mtu", str(mtu_c), "type", "veth", "peer", "name",
       "ms0", "netns", s, "mtu", "1500")
    Topology.addr(c, "mc0", "10.7.0.1/24", "fd07::1/64")
    Topology.addr(s, "ms0", "10.7.0.2/24", "fd07::2/64")
    return c, s


def test_refused_mtu():
    """Sender MTU 9000, its peer's 1500: a 4028-byte IP packet leaves the
    sender whole and the peer refuses it (veth_xmit: tx_dropped)."""
    with Env(start=False) as env:
        c, s = mtu_pair(env)
        env.start_daemon(extra=["--set", f"netns={c},{s}", "--set", "interfaces=*"])
        refused(env, c, s, "mc0")


def test_refused_peer_down():
    """The peer is down: the sender's frames go nowhere (no carrier; its
    neighbour entry is static so that they are sent at all). What TC egress
    saw must not be in tx; records = kernel for the sender's tx, and the
    datagrams are in their owner's DROP layer."""
    with Env(start=False) as env:
        c, s = mtu_pair(env)
        mac = json.loads(sh("ip", "-n", s, "-j", "link", "show", "dev", "ms0"))[0]["address"]
        sh("ip", "-n", c, "neigh", "replace", "10.7.0.2", "lladdr", mac, "dev", "mc0", "nud",
           "permanent")
        env.start_daemon(extra=["--set", f"netns={c},{s}", "--set", "interfaces=*"])
        quiet(c, s)
        sh("ip", "-n", s, "link", "set", "ms0", "down")
        quiet(c, s)
        k0 = kernel_links((c,))[(netns_inode(c), "mc0")]
        env.wait_frames(2)
        r0 = record_totals(env.all_frames()).get((netns_inode(c), "mc0"), {}).get("tx", (0, 0))
        big = env.run([TRAFFIC, "udp-blast", "10.7.0.2", "6301", "6", "300"], env=clean_env(),
                      ns=c)
        quiet(c, s)
        k1 = kernel_links((c,))[(netns_inode(c), "mc0")]
        env.wait_frames(2)
        r1 = record_totals(env.all_frames()).get((netns_inode(c), "mc0"), {}).get("tx", (0, 0))
        print(f"mc0 tx: kernel {delta(k0['tx'], k1['tx'])}, dropped "
              f"{k1['tx_dropped'] - k0['tx_dropped']}, records {delta(r0, r1)}")
        check_eq(delta(r0, r1), delta(k0["tx"], k1["tx"]), "mc0 tx records vs kernel, peer down")
        frames = env.stop()
        b = records_of_pid(frames, big["pid"])[0]
        check_eq(if_payload(b, "mc0", "EGRESS", "TC", "UDP"), 0, "refused payload counted as sent")
        check_eq(if_payload(b, "mc0", "EGRESS", "DROP", "UDP"), big["sent"],
                 "refused payload in the owner's DROP layer")


def test_hotplug_peer_later_native_xdp():
    """A veth whose peer starts in a namespace nobody watches and is moved
    into a watched one later, native XDP on both ends: the first end's peer
    changes without a link event of its own, and the 14 bytes the receiving
    end's queue does not count must still come off its tx."""
    with Env(start=False) as env:
        c, s, x = env.add_netns("c"), env.add_netns("s"), env.add_netns("x")
        for ns in (c, s, x):
            for key in ("accept_dad=0", "router_solicitations=0"):
                env_sysctl(ns, f"net.ipv6.conf.default.{key}")
        env.start_daemon(extra=["--set", f"netns={c},{s}", "--set", "interfaces=*",
                                "--set", "xdp_mode=native"])
        sh("ip", "link", "add", "pc0", "netns", c, "type", "veth", "peer", "name", "ps0",
           "netns", x)
        # both ends up (carrier on) before the move, as a CNI plugin does it
        Topology.addr(c, "pc0", "10.6.0.1/24", "fd06::1/64")
        sh("ip", "-n", x, "link", "set", "ps0", "up")
        time.sleep(0.5)
        sh("ip", "-n", x, "link", "set", "ps0", "netns", s)
        Topology.addr(s, "ps0", "10.6.0.2/24", "fd06::2/64")

        def attached():
            f = env.all_frames()
            modes = {i["name"]: i.get("xdp_mode") for i in f[-1].get("interfaces", [])} if f else {}
            return modes.get("pc0") == "native" and modes.get("ps0") == "native"
        wait_for(attached, "native XDP on both ends", timeout=5)
        w = Window(env, (c, s))
        srv = env.spawn([TRAFFIC, "udp-recv", "10.6.0.2", "6500", "20"], env=clean_env(), ns=s)
        env.run([TRAFFIC, "udp-send", "10.6.0.2", "6500", "20", "700"], env=clean_env(), ns=c)
        env.finish(srv)
        w.close()
        w.check("peer later, native XDP")
        env.stop()


def fragments(v6, extra=(), rx_layer="TC"):
    """UDP datagrams of 3000 bytes over MTU 1500: three fragments each on
    the wire, the first with the UDP header, every one with the IP header
    (and IPv6's fragment header). Payload at every layer = what the
    application sent and received; records = kernel per interface."""
    dst, port = ("fd07::2", "6600") if v6 else ("10.7.0.2", "6601")
    fam = "IPV6" if v6 else "IPV4"
    with Env(start=False) as env:
        c, s = mtu_pair(env, mtu_c=1500)
        env.start_daemon(extra=["--set", f"netns={c},{s}", "--set", "interfaces=*", *extra])
        w = Window(env, (c, s))
        sink = env.spawn([TRAFFIC, "udp-sink", dst, port, "8"], env=clean_env(), ns=s)
        sent = env.run([TRAFFIC, "udp-blast", dst, port, "8", "3000"], env=clean_env(), ns=c)
        rep = env.finish(sink)
        back = env.run([TRAFFIC, "udp-blast", "10.7.0.1", "6602", "3", "100"],
                       env=clean_env(), ns=s)
        w.close()
        check_eq(rep["received"], sent["sent"], "ground truth: the sink got every datagram")
        check(back["sent"] == 300, "reverse traffic")
        w.check(f"fragments {fam}")
        frames = env.stop()
        snd = records_of_pid(frames, sent["pid"])[0]
        rcv = records_of_pid(frames, rep["pid"])[0]
        check_eq(payload(snd, "EGRESS", "UDP", fam), sent["sent"], "sender's socket layer")
        check_eq(payload(rcv, "INGRESS", "UDP", fam), sent["sent"], "receiver's socket layer")
        check_eq(if_payload(snd, "mc0", "EGRESS", "TC", "UDP"), sent["sent"],
                 "sender's fragments leaving mc0")
        check_eq(if_payload(rcv, "ms0", "INGRESS", rx_layer, "UDP"), sent["sent"],
                 "receiver's fragments arriving on ms0")


def test_fragments_ipv6():
    fragments(True)


def test_fragments_ipv4():
    fragments(False)


def test_fragments_ipv6_skb_xdp():
    fragments(True, ("--set", "xdp_mode=skb"), "XDP")


# An injector of hand-made frames on an interface (run in its namespace):
# argv dev count frame-hex. This kernel has no 8021q module, so no VLAN
# device can make tagged traffic; the peer receives these as any NIC would.
INJECT = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
frame = bytes.fromhex(sys.argv[3])
for _ in range(int(sys.argv[2])):
    s.send(frame)
"""


def tagged_frame(tags, payload_len):
    """An Ethernet frame with VLAN tags (TPIDs, outermost first) around an
    IPv4/UDP datagram of payload_len bytes to 10.9.9.2:7777."""
    import struct
    eth = bytes.fromhex("02000000bb02") + bytes.fromhex("02000000aa01")
    for i, tpid in enumerate(tags):
        eth += struct.pack("!HH", tpid, 100 + i)
    udp_len = 8 + payload_len
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0, 64, 17, 0,
                     bytes([10, 9, 9, 1]), bytes([10, 9, 9, 2]))
    csum = sum(struct.unpack("!10H", ip))
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
    udp = struct.pack("!HHHH", 40000, 7777, udp_len, 0) + b"v" * payload_len
    return eth + struct.pack("!H", 0x0800) + ip + udp


def test_vlan_and_qinq_frames():
    """Frames with one VLAN tag (802.1Q) and with two (802.1ad + 802.1Q)
    received on a veth: the records equal the kernel's counters, with the
    tags counted as the device counts them (TC ingress sees the outer tag
    moved out of the data)."""
    with Env(start=False) as env:
        c, s = env.add_netns("c"), env.add_netns("s")
        for ns in (c, s):
            env_sysctl(ns, "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "link", "add", "vt0", "netns", c, "type", "veth", "peer", "name", "vt1",
           "netns", s)
        for ns, dev in ((c, "vt0"), (s, "vt1")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", s, "link", "set", "vt1", "address", "02:00:00:00:bb:02")
        env.start_daemon(extra=["--set", f"netns={c},{s}", "--set", "interfaces=*"])
        window = Window(env, (c, s))
        for tags in ((0x8100,), (0x88a8, 0x8100)):
            sh("ip", "netns", "exec", c, "/usr/bin/python3", "-c", INJECT, "vt0", "25",
               tagged_frame(tags, 300).hex())
        window.close()
        window.check("tagged frames", idle=(("vt0", "rx"), ("vt1", "tx")))
        rx = window.kernel(s, "vt1", "rx")
        check_eq(rx[0], 50, "frames the kernel counted on vt1")
        env.stop()
