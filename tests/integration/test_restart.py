# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Running unattended: a collector killed mid-transfer is replaced by one that
adopts the pinned state, so that the bytes sent while none ran are counted;
reloads and kept state lose nothing; a clean stop leaves nothing attached;
one collector per instance; state from another build is never read."""
import os
import re
import signal
import subprocess
import time

from tmtest import (Env, TASKMETERD, TRAFFIC, bpftool_json, cgroup2_mount, check, check_eq,
                    clean_env, records_of_pid, payload, sh, log_text, wait_for)

BYTES = 240_000
REPLY = 4321


def paced_transfer(env, port, ms=40, chunk=2000):
    """A client sending BYTES over about BYTES/chunk*ms ms to a server."""
    server = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", str(port), str(REPLY)],
                       env=clean_env())
    client = env.spawn([TRAFFIC, "tcp-send", "127.0.0.1", str(port), str(BYTES)],
                       env=clean_env(TM_PACE_MS=str(ms), TM_PACE_BYTES=str(chunk)), ready=None)
    return server, client


def finish_transfer(env, server, client):
    c = env.finish(client)
    s = env.finish(server)
    check_eq((c["sent"], c["received"], s["received"], s["sent"]), (BYTES, REPLY, BYTES, REPLY),
             "ground truth of the transfer")
    return c, s


def check_exact(frames, c, s, what):
    cl = records_of_pid(frames, c["pid"])
    sv = records_of_pid(frames, s["pid"])
    check_eq(len(cl), 1, f"{what}: client records")
    check_eq(len(sv), 1, f"{what}: server records")
    got = (payload(cl[0], "EGRESS"), payload(cl[0], "INGRESS"),
           payload(sv[0], "INGRESS"), payload(sv[0], "EGRESS"))
    print(f"{what}: client tx/rx {got[0]}/{got[1]}, server rx/tx {got[2]}/{got[3]}")
    check_eq(got, (BYTES, REPLY, BYTES, REPLY), f"{what}: payload counted")


def test_kill9_restart_loses_nothing():
    """kill -9 in the middle of a transfer; a second later a new collector
    starts: it adopts the maps, so the bytes sent while none ran are in the
    totals; the counting (counters_id) is the same."""
    with Env() as env:
        server, client = paced_transfer(env, 5101)
        time.sleep(1.0)
        env.kill_daemon(signal.SIGKILL)
        first = env.all_frames()
        time.sleep(1.0)  # bytes flow while no collector runs
        check(client.poll() is None, "the transfer ended before the restart: too fast")
        env.start_daemon(dump_path=env.dump_path + ".2")
        c, s = finish_transfer(env, server, client)
        frames = env.stop()
        check("adopted the pinned state" in log_text(env), "second collector did not adopt")
        ids = {f.get("counters_id") for f in first + frames}
        check_eq(len(ids), 1, f"counters_id across the restart: {ids}")
        check_exact(frames, c, s, "after kill -9 and restart")


def test_kill9_restart_clsact_and_xdp():
    """The same with clsact filters and skb-mode XDP, which are not links on
    every kernel: after the replacement's clean stop no filter, qdisc or XDP
    program is left on the interfaces."""
    with Env(daemon_args=["--set", "tc_attach=clsact", "--set", "xdp_mode=skb"]) as env:
        veth_pair(env)

        def both_attached(f):
            modes = {i.get("name"): (i.get("xdp_mode"), i.get("tc_mode"))
                     for i in f.get("interfaces", [])}
            return all(modes.get(d) == ("skb", "clsact") for d in ("tmr0", "tmr1"))

        env.wait_frame(both_attached, "tmr0 and tmr1 with skb-mode XDP and clsact", timeout=10)
        env.kill_daemon(signal.SIGKILL)
        env.start_daemon(dump_path=env.dump_path + ".2")
        check("adopted the pinned state" in log_text(env), "second collector did not adopt")
        out = sh("ip", "-n", env.ns, "-d", "link", "show", "tmr0")
        check("xdp" in out, f"no XDP on tmr0 while running: {out}")
        env.stop()
        out = sh("ip", "-n", env.ns, "-d", "link", "show", "tmr0")
        check("xdp" not in out.replace("xdp_", ""), f"XDP left on tmr0: {out}")
        qd = sh("tc", "-n", env.ns, "qdisc", "show", "dev", "tmr0")
        check("clsact" not in qd, f"clsact left on tmr0: {qd}")


def veth_pair(env):
    sh("ip", "-n", env.ns, "link", "add", "tmr0", "type", "veth", "peer", "name", "tmr1")
    for dev in ("tmr0", "tmr1"):
        sh("ip", "-n", env.ns, "link", "set", dev, "up")
    deadline = time.time() + 5
    while "tmr0" not in log_text(env):
        check(time.time() < deadline, "tmr0 not attached")
        time.sleep(0.05)


def test_reload_with_a_missing_netns_refused():
    """A reloaded config naming a network namespace that is not there is
    refused as a whole: the interfaces stay attached and counted (it used
    to detach every interface: none could be attached any more)."""
    with Env(start=False) as env:
        conf = os.path.join(env.dir, "tm.conf")
        with open(conf, "w") as f:
            f.write(f"netns = {env.ns}\n")
        env.daemon_args = ["-c", conf]
        env.start_daemon(netns_set=False)
        veth_pair(env)
        with open(conf, "w") as f:
            f.write(f"netns = {env.ns}, {env.ns}-not-there\n")
        env.daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload: the running configuration stays" in log_text(env),
                 "the reload refused in the log")
        check(env.daemon.poll() is None, "taskmeterd died on SIGHUP")
        log = log_text(env)
        check(f"{env.ns}-not-there" in log, "the missing netns is not named")
        check("re-attaching" not in log, "interfaces re-attached on a refused reload")
        env.new_frames()
        after = env.wait_frame(lambda f: True, "a frame after the reload")
        modes = {i.get("name"): i.get("tc_mode") for i in after.get("interfaces", [])}
        check_eq((modes.get("tmr0"), modes.get("tmr1")), ("tcx", "tcx"),
                 "TC on the veth pair after the refused reload")
        env.stop()


def test_sighup_reload_loses_nothing():
    """SIGHUP mid-transfer re-reads the config file: a live key changes, a
    key the programs were built with is reported and kept, no byte is lost."""
    with Env(start=False) as env:
        conf = os.path.join(env.dir, "tm.conf")
        with open(conf, "w") as f:
            f.write("socket_mode = 0660\n")
        env.daemon_args = ["-c", conf]
        env.start_daemon()
        server, client = paced_transfer(env, 5102)
        time.sleep(0.8)
        with open(conf, "w") as f:
            f.write("socket_mode = 0640\ncounter_entries = 131072\n")
        env.daemon.send_signal(signal.SIGHUP)
        c, s = finish_transfer(env, server, client)
        check(env.daemon.poll() is None, "taskmeterd died on SIGHUP")
        mode_after = os.stat(env.sock).st_mode & 0o777
        frames = env.stop()
        log = log_text(env)
        check("reloaded" in log, "no reload in the log")
        check(re.search(r"need a restart.*counter_entries", log), "counter_entries not reported")
        check_eq(oct(mode_after), "0o640", "socket mode after the reload")
        check_exact(frames, c, s, "across SIGHUP")


def test_keep_state_then_adopt():
    """SIGUSR2 stops keeping the state: the programs go on counting; the next
    collector adopts it; its clean stop removes everything."""
    with Env() as env:
        server, client = paced_transfer(env, 5103)
        time.sleep(0.6)
        env.kill_daemon(signal.SIGUSR2)
        check_eq(env.daemon.returncode, 0, "exit status after SIGUSR2")
        check(os.path.isdir(env.state_dir), "state removed despite SIGUSR2")
        check("state kept" in log_text(env), "no 'state kept' in the log")
        cg = sh("bpftool", "cgroup", "show", env.cg)
        check("tm_cgskb" in cg, f"programs detached despite SIGUSR2: {cg}")
        time.sleep(0.8)
        env.start_daemon(dump_path=env.dump_path + ".2")
        c, s = finish_transfer(env, server, client)
        frames = env.stop()
        check_exact(frames, c, s, "across a kept state")


def test_one_collector_per_instance():
    """A second collector for the same instance (another socket) refuses and
    changes nothing; another instance on another cgroup runs beside it."""
    with Env() as env:
        other_sock = os.path.join(env.dir, "other.sock")
        base = [TASKMETERD, "--cgroup", env.cg_rel, "--set", f"pin_root={env.bpffs}",
                "--set", f"netns={env.ns}"]
        p = subprocess.run(base + ["--socket", other_sock, "--instance", env.instance],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode != 0, "second collector of the instance started")
        check("run by another taskmeterd" in p.stderr, f"message: {p.stderr!r}")
        check(not os.path.exists(other_sock), "second collector left a socket")
        sub = env.add_cgroup("second")
        rel = os.path.relpath(sub, cgroup2_mount())
        q = subprocess.Popen(base[:1] + ["--cgroup", rel, "--socket", other_sock,
                                         "--set", f"pin_root={env.bpffs}", "--set", "interfaces=",
                                         "--instance", env.instance + "-b"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 15
        while not os.path.exists(other_sock):
            check(q.poll() is None and time.time() < deadline, "second instance did not start")
            time.sleep(0.05)
        q.send_signal(signal.SIGTERM)
        check_eq(q.wait(timeout=20), 0, "second instance's exit status")
        check(not os.path.exists(os.path.join(env.bpffs, "taskmeter", env.instance + "-b")),
              "second instance left its state")
        env.stop()


def test_incompatible_state_starts_clean():
    """State whose stamp names another map layout is detached, removed and
    replaced, never read: the new collector says so and counts anew."""
    with Env() as env:
        env.kill_daemon(signal.SIGKILL)
        first = env.all_frames()
        old_progs = set(env.bpf_progs)
        state = os.path.join(env.state_dir, "state")
        info = bpftool_json("map", "dump", "pinned", state)
        value = info[0]["value"]
        value = value if isinstance(value, list) else [f"0x{b:02x}" for b in
                                                       bytes.fromhex(value.replace(" ", ""))]
        raw = [int(b, 16) for b in value]
        raw[8] ^= 0xff  # the map layout hash
        sh("bpftool", "map", "update", "pinned", state, "key", "0", "0", "0", "0",
           "value", *[str(b) for b in raw])
        env.start_daemon(dump_path=env.dump_path + ".2")
        check("incompatible build" in log_text(env), "no message about the incompatible state")
        frames = env.stop()
        check(first[-1]["counters_id"] != frames[-1]["counters_id"],
              "counters_id kept across an incompatible state")
        still = old_progs & {p["id"] for p in bpftool_json("prog", "show")}
        check(not still, f"programs of the old state still loaded: {sorted(still)}")


def test_interface_moved_and_renamed():
    """An interface with XDP moved to another watched namespace and renamed:
    its old XDP link is detached (not left counting twice beside TC), it is
    attached anew there, and after the stop nothing of ours is on it."""
    with Env(start=False) as env:
        other = env.add_netns("b")
        env.daemon_args = ["--set", "xdp_mode=skb", "--set", f"netns={env.ns},{other}"]
        env.start_daemon()
        veth_pair(env)
        sh("ip", "-n", env.ns, "link", "set", "tmr0", "netns", other)
        sh("ip", "-n", other, "link", "set", "tmr0", "name", "tmr9")
        sh("ip", "-n", other, "link", "set", "tmr9", "up")
        deadline = time.time() + 5
        while "is now called tmr9" not in log_text(env):
            check(time.time() < deadline, "tmr9 not attached in the second namespace")
            time.sleep(0.05)
        check(f"{other}/tmr0" in log_text(env), "not attached in the second namespace")
        out = sh("ip", "-n", other, "-d", "link", "show", "tmr9")
        check(out.count("prog/xdp") <= 1, f"more than one XDP program on tmr9: {out}")
        env.stop()
        out = sh("ip", "-n", other, "-d", "link", "show", "tmr9")
        check("prog/xdp" not in out, f"XDP left on the moved interface: {out}")
