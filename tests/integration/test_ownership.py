# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Ownership in the hard cases. The rule (README, "Ownership"): a socket
belongs to the process that last sent or received on it in process context;
a packet counts for the owner at the moment it crosses the hook; a socket
accepted from a listener belongs to the first process that uses it.
Every test compares exact payload bytes with what the processes report."""
import json
import os
import re
import signal
import struct
import subprocess
import time

from tmtest import (BUILD, Env, TRAFFIC, bpftool_json, check, check_eq, clean_env, need_ipv6,
                    payload, records_of_pid)


def only_record(frames, pid, what):
    recs = records_of_pid(frames, pid)
    check_eq(len(recs), 1, f"records of {what} (pid {pid})")
    return recs[0]


def check_exact(frames, rep, what, protocol=None, family=None):
    """Payload is what the process sent and received, exactly: TCP
    retransmissions are counted apart (retrans_bytes), never as payload."""
    rec = only_record(frames, rep["pid"], what)
    want = (rep["sent"], rep["received"])
    got = (payload(rec, "EGRESS", protocol, family), payload(rec, "INGRESS", protocol, family))
    check_eq(got, want, f"{what} payload (tx, rx)")
    print(f"{what}: tx {got[0]}/{want[0]} rx {got[1]}/{want[1]}, retransmitted tx "
          f"{payload(rec, 'EGRESS', field='retrans_bytes')}")
    return rec


def test_prefork_workers():
    """A master listens and forks 3 workers that accept: each worker's bytes,
    including the requests that arrived before it called accept(), are its
    own; the master has none."""
    with Env() as env:
        master = env.spawn([TRAFFIC, "prefork", "127.0.0.1", "5010", "3", "2", "7000"],
                           env=clean_env())
        clients = [env.run([TRAFFIC, "tcp-send", "127.0.0.1", "5010", str(10_000 + 1111 * i)],
                           env=clean_env()) for i in range(6)]
        reps = env.finish(master, all_reports=True)
        frames = env.stop()
        workers, master_rep = reps[:-1], reps[-1]
        check_eq(len(workers), 3, "worker reports")
        check_eq(sum(w["received"] for w in workers), sum(c["sent"] for c in clients),
                 "ground truth: requests")
        for w in workers:
            check_exact(frames, w, f"worker {w['pid']}", "TCP", "IPV4")
        for c in clients:
            check_exact(frames, c, f"client {c['pid']}", "TCP", "IPV4")
        # the master owns the listener, so the handshakes (SYN and ACK in,
        # SYN-ACK out, per connection) and not a byte of payload
        m = only_record(frames, master_rep["pid"], "the master")
        check_eq((payload(m, "EGRESS"), payload(m, "INGRESS")), (0, 0),
                 "payload of the master (its workers' bytes are theirs)")
        check_eq((payload(m, "INGRESS", "TCP", field="packets"),
                  payload(m, "EGRESS", "TCP", field="packets")), (2 * len(clients), len(clients)),
                 "the master's packets: the handshakes of its listener (in, out)")


def test_fork_shared_socket():
    """Parent sends, forks; the child sends on the inherited socket; the
    parent then reads the reply: each is billed for its own bytes."""
    with Env() as env:
        srv = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5011", "3333"], env=clean_env())
        child, parent = env.run([TRAFFIC, "fork-send", "127.0.0.1", "5011", "4000", "6000"],
                                env=clean_env(), all_reports=True)
        srv_rep = env.finish(srv)
        frames = env.stop()
        check_eq(srv_rep["received"], 10_000, "ground truth: server received")
        check_exact(frames, parent, "parent", "TCP")
        check_exact(frames, child, "forked child", "TCP")
        check_exact(frames, srv_rep, "server", "TCP")


def test_scm_rights_passing():
    """A socket passed over SCM_RIGHTS to a process that did not exist when
    it was created: traffic after the hand-over is the receiver's."""
    with Env() as env:
        srv = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5012", "2500"], env=clean_env())
        reps = env.run([TRAFFIC, "scm-send", "127.0.0.1", "5012", "3000", "9000"],
                       env=clean_env(), all_reports=True)
        srv_rep = env.finish(srv)
        frames = env.stop()
        receiver, sender = reps
        check_exact(frames, sender, "sender", "TCP")
        check_exact(frames, receiver, "fd receiver", "TCP")
        check_exact(frames, srv_rep, "server", "TCP")


def test_preexisting_connection():
    """A connection opened before taskmeterd started is attributed from its
    first counted packet (seeded from sock_diag and /proc/<pid>/fd)."""
    with Env(start=False) as env:
        srv = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5013", "4444"], env=clean_env())
        cli = env.spawn([TRAFFIC, "tcp-send-wait", "127.0.0.1", "5013", "55555"],
                        env=clean_env(), ready="connected", stdin=subprocess.PIPE)
        env.start_daemon()
        cli_rep = env.finish(cli, stdin="go\n")
        srv_rep = env.finish(srv)
        frames = env.stop()
        check_exact(frames, cli_rep, "client (pre-existing socket)", "TCP", "IPV4")
        check_exact(frames, srv_rep, "server (pre-existing listener)", "TCP", "IPV4")


def xmit_by_task(env, dev):
    """{(tgid of current, sport, dport): (packets, payload)} that the
    observer on dev's TC egress (tests/bpf/xmit_task.bpf.c) counted."""
    filters = json.loads(env.netns_exec("tc", "-j", "filter", "show", "dev", dev, "egress"))
    progs = [f["options"]["prog"]["id"] for f in filters
             if f.get("options", {}).get("prog", {}).get("name") == "xmit_task_count"]
    check_eq(len(progs), 1, f"observer programs on {dev}")
    info = bpftool_json("prog", "show", "id", str(progs[0]))
    out = {}
    for e in bpftool_json("map", "dump", "id", str(info["map_ids"][0])):
        if "formatted" in e:
            k, v = e["formatted"]["key"], e["formatted"]["value"]
            out[(k["tgid"], k["sport"], k["dport"])] = (v["packets"], v["payload"])
        else:  # raw little-endian bytes
            kb, vb = (bytes(int(b, 16) for b in e[x]) for x in ("key", "value"))
            tgid, sport, dport = struct.unpack("<IHH", kb)
            out[(tgid, sport, dport)] = struct.unpack("<QQ", vb)
    return out


def socket_info(env, port):
    """`ss -ti` of the established TCP sockets with local or peer port
    `port`: [(local, peer, Recv-Q, {"notsent": "N", ...})]."""
    out = []
    for line in env.netns_exec("ss", "-Htni", "state", "established").splitlines():
        if not line[:1].isspace():  # Recv-Q Send-Q Local Peer
            f = line.split()
            head = (f[2], f[3], int(f[0])) if len(f) >= 4 else None
        elif head and (head[0].endswith(f":{port}") or head[1].endswith(f":{port}")):
            out.append(head + (dict(m.groups() for m in re.finditer(r"(\w+):(\d+)", line)),))
    return out


def test_softirq_sends():
    """The server is stopped before it accepts, so its receive window
    closes and the client's 8 MB wait in its send queue; when the server
    goes on and reads, the ACKs that reopen the window carry the client's
    data out from softirq, on whatever task they interrupted (the server,
    mostly). An observer on lo's TC egress records which task was current
    for each of the client's packets: some of the client's bytes must have
    left with another task current, and they are the client's all the
    same: bytes follow the socket, never current."""
    with Env() as env:
        env.netns_exec("tc", "qdisc", "add", "dev", "lo", "clsact")
        env.netns_exec("tc", "filter", "add", "dev", "lo", "egress", "bpf", "da", "obj",
                       os.path.join(BUILD, "tests", "xmit_task.bpf.o"), "sec", "tc")
        srv = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5014", "1000"], env=clean_env())
        os.kill(srv.pid, signal.SIGSTOP)  # sh exec'd ip, which exec'd tm_traffic
        cli = env.spawn([TRAFFIC, "tcp-send", "127.0.0.1", "5014", str(8 << 20)],
                        env=clean_env(), ready=None)
        deadline = time.time() + 30
        while not any(p.endswith(":5014") and int(kv.get("notsent", 0)) > 0
                      for _, p, _, kv in socket_info(env, 5014)):
            check(time.time() < deadline, f"the client's data never queued behind a closed "
                  f"window: {socket_info(env, 5014)}")
            time.sleep(0.01)
        os.kill(srv.pid, signal.SIGCONT)
        cli_rep = env.finish(cli)
        srv_rep = env.finish(srv)
        seen = xmit_by_task(env, "lo")
        frames = env.stop()
        data = {k[0]: v for k, v in seen.items() if k[2] == 5014 and v[1]}
        total = sum(v[1] for v in data.values())
        others = sum(v[1] for t, v in data.items() if t != cli_rep["pid"])
        print(f"client {cli_rep['pid']}: {total} payload bytes left lo, {others} of them with "
              f"another task current: {sorted(data.items())}; retransmitted {cli_rep['retrans']}")
        check_eq(total, cli_rep["sent"] + cli_rep["retrans"], "the client's payload on lo")
        check(others > 0, "none of the client's bytes left with another task current")
        check_exact(frames, cli_rep, "client", "TCP")
        check_exact(frames, srv_rep, "server", "TCP")


def test_pid_reuse():
    """A process exits and a new one gets its pid: two records, never merged,
    each with its own bytes. The second process is given the first one's
    pid by clone3's set_tid (tm_traffic pid-reuse), so the reuse is certain
    and nothing host-wide (kernel.ns_last_pid) is written."""
    with Env() as env:
        sink = env.spawn([TRAFFIC, "udp-sink", "127.0.0.1", "5015", "2"], env=clean_env())
        first, second = env.run([TRAFFIC, "pid-reuse", "127.0.0.1", "5015", "111", "222"],
                                env=clean_env(), all_reports=True)
        check_eq(second["pid"], first["pid"], "pid of the second process (set_tid)")
        check_eq((first["sent"], second["sent"]), (111, 222), "ground truth")
        env.finish(sink)
        frames = env.stop()
        recs = records_of_pid(frames, first["pid"])  # in start time order
        check_eq(len(recs), 2, "records for the reused pid")
        check(recs[0]["start_time_ns"] < recs[1]["start_time_ns"],
              f"start times {[r['start_time_ns'] for r in recs]}")
        check_eq([payload(r, "EGRESS", "UDP") for r in recs], [111, 222],
                 "payload of the first and the second process")
        check_eq([payload(r, "INGRESS") for r in recs], [0, 0], "received")
        check_eq([bool(r.get("exited")) for r in recs], [True, True], "both exited")


def test_threads_aggregate():
    """Traffic of 8 threads, each on its own socket, is one process record."""
    with Env() as env:
        sink = env.spawn([TRAFFIC, "udp-sink", "127.0.0.1", "5017", str(8 * 25)],
                         env=clean_env())
        rep = env.run([TRAFFIC, "threads", "127.0.0.1", "5017", "8", "25000"], env=clean_env())
        env.finish(sink)
        frames = env.stop()
        check_eq(rep["sent"], 8 * 25_000, "ground truth")
        check_exact(frames, rep, "threaded process", "UDP", "IPV4")


def udp_unconnected(addr, family):
    """One unconnected socket, sendto/recvfrom with three echo peers: every
    byte of it is its own, and each peer's its own."""
    with Env() as env:
        peers = [env.spawn([TRAFFIC, "udp-recv", addr, str(5020 + i), "30"], env=clean_env())
                 for i in range(3)]
        rep = env.run([TRAFFIC, "udp-multi", addr, "5020", "3", "30", "700"], env=clean_env())
        peer_reps = [env.finish(p) for p in peers]
        frames = env.stop()
        check_exact(frames, rep, "sendto/recvfrom client", "UDP", family)
        for p in peer_reps:
            check_exact(frames, p, f"peer {p['pid']}", "UDP", family)


def test_udp_unconnected_many_peers():
    udp_unconnected("127.0.0.1", "IPV4")


def test_udp_unconnected_many_peers_v6():
    need_ipv6()
    udp_unconnected("::1", "IPV6")


def test_v4_mapped_is_ipv4():
    """An AF_INET6 socket talking to ::ffff:127.0.0.1 carries IPv4 packets
    and is reported as IPv4."""
    need_ipv6()  # an AF_INET6 socket
    with Env() as env:
        srv = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5018", "1234"], env=clean_env())
        cli = env.run([TRAFFIC, "tcp-send", "::ffff:127.0.0.1", "5018", "4321"], env=clean_env())
        env.finish(srv)
        frames = env.stop()
        rec = check_exact(frames, cli, "v4-mapped client", "TCP", "IPV4")
        check_eq(payload(rec, "EGRESS", family="IPV6"), 0, "IPv6 payload of a v4-mapped flow")


def ping_socket(addr, count, size, family):
    with Env() as env:
        # ping sockets are IPv4's setting for both families
        env.netns_exec("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
        rep = env.run([TRAFFIC, "ping", addr, str(count), str(size)], env=clean_env())
        frames = env.stop()
        check_eq((rep["sent"], rep["received"]), (count * size, count * size), "ground truth")
        check_exact(frames, rep, f"ping socket {family}", "ICMP", family)


def test_icmp_ping_sockets():
    ping_socket("127.0.0.1", 20, 56, "IPV4")


def test_icmp_ping_sockets_v6():
    need_ipv6()
    ping_socket("::1", 10, 100, "IPV6")


def test_icmp_raw_socket():
    with Env() as env:
        rep = env.run([TRAFFIC, "raw-ping", "127.0.0.1", "15", "200"], env=clean_env())
        frames = env.stop()
        # a raw socket also receives its own requests as they arrive on lo
        check_eq((rep["sent"], rep["received"]), (15 * 200, 2 * 15 * 200), "ground truth")
        check_exact(frames, rep, "raw ICMP socket", "ICMP", "IPV4")


# Container cgroups as the runtimes make them (below the test's own cgroup),
# with what the records must say: (what, cgroup, container id, runtime, pod UID).
POD_UID = "1b2c3d4e-5f60-4a1b-9c2d-3e4f5a6b7c8d"
POD_UID2 = "9f8e7d6c-5b4a-4392-8170-a1b2c3d4e5f6"
CONTAINERS = [
    ("containerd, Kubernetes pod, systemd driver",
     "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
     f"{POD_UID.replace('-', '_')}.slice/cri-containerd-{'a1' * 32}.scope",
     "a1" * 32, "containerd", POD_UID),
    ("cri-o, Kubernetes pod, systemd driver",
     f"kubepods.slice/kubepods-pod{POD_UID2.replace('-', '_')}.slice/crio-{'b2' * 32}.scope",
     "b2" * 32, "cri-o", POD_UID2),
    ("Kubernetes pod, cgroupfs driver", f"kubepods/besteffort/pod{POD_UID}/{'c3' * 32}",
     "c3" * 32, "containerd", POD_UID),
    ("cri-o", f"machine.slice/crio-{'d4' * 32}.scope", "d4" * 32, "cri-o", ""),
    ("podman", f"machine.slice/libpod-{'e5' * 32}.scope", "e5" * 32, "podman", ""),
    ("docker", f"system.slice/docker-{'f6' * 32}.scope", "f6" * 32, "docker", ""),
]


def ns_inode(pid, ns):
    return os.stat(f"/proc/{pid}/ns/{ns}").st_ino


def container_process(env, cg, port):
    """In cgroup cg and a pid namespace of its own (unshare --pid --fork
    --mount-proc, as a runtime starts a container's first process), a TCP
    client that connects and waits. Returns the Popen (of unshare), its
    pid in the initial pid namespace, what the host knows of it (parent's
    pid, namespaces) read while it lives, and the port of its server."""
    srv = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", str(port), "777"], env=clean_env())
    cli = env.spawn(["unshare", "--pid", "--fork", "--mount-proc", TRAFFIC, "tcp-send-wait",
                     "127.0.0.1", str(port), str(4000 + port)], env=clean_env(),
                    ready="connected", stdin=subprocess.PIPE, cgroup=cg)
    # in cgroup.procs: unshare, and its child, pid 1 of the new namespace
    inner = []
    for pid in open(os.path.join(cg, "cgroup.procs")).read().split():
        nspid = re.search(r"^NSpid:\s+(.*)$", open(f"/proc/{pid}/status").read(), re.M)
        if nspid and len(nspid.group(1).split()) == 2:
            inner.append((int(pid), nspid.group(1).split()))
    check_eq(len(inner), 1, f"processes of {cg} in a pid namespace below the host's")
    pid, nspids = inner[0]
    check_eq(nspids, [str(pid), "1"], f"pid {pid}: NSpid")
    known = {"ppid": int(re.search(r"^PPid:\s+(\d+)", open(f"/proc/{pid}/status").read(),
                                   re.M).group(1)),
             "pidns": ns_inode(pid, "pid"), "mntns": ns_inode(pid, "mnt"),
             "netns": ns_inode(pid, "net")}
    check(known["pidns"] != ns_inode("self", "pid"), f"pid {pid} is in the host's pid namespace")
    check_eq(known["ppid"], cli.pid, f"parent of pid {pid} (unshare)")
    return srv, cli, pid, known


def test_containers():
    """Processes in container cgroups laid out as containerd, cri-o, podman,
    docker and the kubelet (both cgroup drivers) make them, each in a pid
    namespace of its own: every record carries the container id, runtime
    and pod UID the cgroup path says, its cgroup path and id, the pid in the
    initial pid namespace (the proto's pid, never the 1 the process sees),
    the host's pid of its parent, and its own pid and mount namespaces, not
    the host's; its bytes exact."""
    with Env() as env:
        procs = []
        for i, (what, rel, *_) in enumerate(CONTAINERS):
            cg = env.add_cgroup(rel)
            srv, cli, pid, known = container_process(env, cg, 5030 + i)
            cli_rep = env.finish(cli, stdin="go\n")
            srv_rep = env.finish(srv)
            check_eq(cli_rep["pid"], 1, f"{what}: the pid the process sees")
            procs.append((cg, pid, known, dict(cli_rep, pid=pid), srv_rep))
        frames = env.stop()
        check_eq(records_of_pid(frames, 1), [], "records of pid 1 (a pid of another namespace)")
        for (what, rel, cid, runtime, pod), (cg, pid, known, cli_rep, srv_rep) in \
                zip(CONTAINERS, procs):
            c = check_exact(frames, cli_rep, f"{what} (pid {pid})", "TCP", "IPV4")
            check_exact(frames, srv_rep, f"server of the {what} process", "TCP", "IPV4")
            got = {k: c.get(k, "") for k in ("container_id", "container_runtime", "pod_uid",
                                            "cgroup_path")}
            check_eq(got, {"container_id": cid, "container_runtime": runtime, "pod_uid": pod,
                           "cgroup_path": f"/{env.cg_rel}/{rel}"}, f"{what}: container")
            check_eq(c.get("cgroup_id"), os.stat(cg).st_ino, f"{what}: cgroup id")
            check_eq({k: c.get(k) for k in known}, known,
                     f"{what}: parent's pid and namespaces")
            print(f"{what}: pid {pid} (1 inside), {got}, {known}")


def test_services_and_namespaces():
    """A process in a systemd service's cgroup has that service and no
    container; one in a network namespace of its own has that netns; both
    are in the host's pid namespace."""
    with Env() as env:
        svc_cg = env.add_cgroup("system.slice/billing.service")
        other_ns = env.add_netns("b")
        sink = env.spawn([TRAFFIC, "udp-sink", "127.0.0.1", "5030", "1"], env=clean_env(),
                         cgroup=svc_cg)
        in_service = env.run([TRAFFIC, "udp-once", "127.0.0.1", "5030", "400"],
                             env=clean_env(), cgroup=svc_cg)
        sink_rep = env.finish(sink)
        sink_b = env.spawn([TRAFFIC, "udp-sink", "127.0.0.1", "5031", "1"], env=clean_env(),
                           ns=other_ns)
        in_ns_b = env.run([TRAFFIC, "udp-once", "127.0.0.1", "5031", "500"], env=clean_env(),
                          ns=other_ns)
        env.finish(sink_b)
        frames = env.stop()
        netns = {n: os.stat(f"/run/netns/{n}").st_ino for n in (env.ns, other_ns)}
        s = check_exact(frames, in_service, "process in a service", "UDP")
        check_eq(s.get("service"), "billing.service", "systemd service")
        check_eq(s.get("cgroup_path"), f"/{env.cg_rel}/system.slice/billing.service",
                 "cgroup path")
        check_eq(s.get("cgroup_id"), os.stat(svc_cg).st_ino, "cgroup id")
        check("container_id" not in s, "a service is not a container")
        check_eq(s.get("netns"), netns[env.ns], "netns of the service process")
        check_exact(frames, sink_rep, "sink in the service", "UDP")
        b = check_exact(frames, in_ns_b, "process in the second netns", "UDP")
        check_eq(b.get("netns"), netns[other_ns], "netns of the second namespace")
        for rec in (s, b):
            check_eq(rec.get("pidns"), ns_inode("self", "pid"), "pid namespace (the host's)")
