#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""make image-test: build docker/Dockerfile with Debian's tools and run it.

1. build: a bookworm base by mmdebstrap, imported into podman; the image
   built from it (build stage with the -dev packages, runtime stage with
   the libraries only); its size.
2. the image holds what it should and nothing of the toolchain.
3. taskmeterd in the image with exactly the DaemonSet's privileges (its
   capabilities, hostPID, no host network, read-only root, the bpffs,
   cgroup and socket mounts) counts the bytes of test processes on the
   host byte-exact, read through the mounted socket from the host and by an
   unprivileged container in the socket's group; a clean stop leaves
   nothing behind.
4. the systemd units under a real systemd (the image plus systemd, booted
   in a container): the collector runs with every hardening setting of
   taskmeterd.service, counts exactly, reloads, stops clean, and keeps its
   state across `systemctl kill -s USR2` + start as documented; a client in
   taskmeter-prom.service's sandbox reads the socket.

Each step prints '#N name:OK|FAIL|SKIP'; the last line is
'N passed, N failed, N skipped'. Every container, cgroup, namespace and
mount is removed; the images stay in CACHE's storage as the cache.
"""
import os
import random
import re
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import imgtest  # noqa: E402
import tmtest  # noqa: E402
from tmtest import (Env, TASKMETER, TRAFFIC, check, check_eq, clean_env,  # noqa: E402
                    payload, records_of_pid)

ROOT = imgtest.ROOT
DAEMONSET = os.path.join(ROOT, "docker", "taskmeter-daemonset.yaml")
TM_GID = 9479
BYTES, REPLY = 300_000, 7_000
# Image size ceiling: a bookworm slim base (~78 MB) and our ~5 MB. A
# toolchain left in the image would blow it.
SIZE_MAX = 120_000_000

pm = imgtest.Podman()
times = {}
run_id = f"{os.getpid()}-{random.randrange(1 << 30):x}"
# Containers' cgroups go under a parent of this run, removed at the end.
CG_PARENT = f"/taskmeter-imgtest-{run_id}"
containers = []


def log(msg):
    print(msg, flush=True)


# ---- podman helpers ----
def container_run(name, *args, detach=True):
    containers.append(name)
    argv = ["run", "--name", name, "--runtime", "runc", *imgtest.ULIMITS,
            "--cgroup-parent", CG_PARENT]
    argv += ["-d"] if detach else ["--rm"]
    return pm(*argv, *args)


def container_logs(name):
    p = pm("logs", name, check=False)
    return (p.stdout or "") + (p.stderr or "")


def container_exit_code(name, timeout=40):
    p = pm("wait", name, check=False, timeout=timeout)
    return int(p.stdout.strip()) if p.returncode == 0 and p.stdout.strip() else None


def remove_containers():
    for name in containers:
        pm("rm", "--force", "--time", "5", name, check=False)
    containers.clear()


def podman_cgroups():
    """The cgroups podman makes on its own: libpod_parent (conmon's, and the
    build's containers') in every hierarchy."""
    out = set()
    for hier in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", hier, "libpod_parent")
        if os.path.isdir(top):
            out |= {w[0] for w in os.walk(top)}
    return out


def remove_cgroups(before):
    """The per-run parent of the containers, then what podman made beside
    it during this run, deepest first; rmdir only: a cgroup in use stays."""
    dirs = set()
    for hier in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", hier, CG_PARENT.lstrip("/"))
        if os.path.isdir(top):
            dirs |= {w[0] for w in os.walk(top)}
    dirs |= podman_cgroups() - before
    for path in sorted(dirs, key=len, reverse=True):
        for attempt in range(50):  # conmon may take a moment to exit
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if attempt == 49:
                    log(f"cgroup {path} not removed: {e}")
                time.sleep(0.1)


def daemonset():
    import yaml
    docs = list(yaml.safe_load_all(open(DAEMONSET)))
    return next(d for d in docs if d and d.get("kind") == "DaemonSet")


def container_spec(name):
    ds = daemonset()
    return next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def wait_path(path, timeout=20, alive=None):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if alive and not alive():
            raise tmtest.TestFailure(f"gone before {path} appeared")
        check(time.time() < deadline, f"{path} did not appear")
        time.sleep(0.1)


def dump_from_host(env, sock, path):
    """A `taskmeter dump --json` subscriber on the host, like Env's."""
    env.dump_path = path
    env.dumps.append(path)
    env.dump = subprocess.Popen([TASKMETER, "dump", "--json", "--socket", sock],
                                stdout=open(path, "w"), stderr=open(path + ".err", "w"))
    env.wait_frames(1, timeout=20)


def add_veth(env):
    """A veth pair in the test's namespace: XDP/TC get attached to it."""
    tmtest.sh("ip", "-n", env.ns, "link", "add", "tmv0", "type", "veth", "peer", "name", "tmv1")
    for dev in ("tmv0", "tmv1"):
        tmtest.sh("ip", "-n", env.ns, "link", "set", dev, "up")


def check_attached(frames, what, xdp=None):
    """The collector attached TC (and XDP) to the veth (CAP_NET_ADMIN,
    netlink, libxdp)."""
    ifs = {i["name"]: i for f in frames for i in f.get("interfaces", [])}
    check("tmv0" in ifs and "tmv1" in ifs, f"{what}: veth not in the frames: {sorted(ifs)}")
    modes = {n: (ifs[n].get("tc_mode"), ifs[n].get("xdp_mode")) for n in ("tmv0", "tmv1")}
    check(all(m[0] in ("tcx", "clsact") for m in modes.values()), f"{what}: TC modes {modes}")
    if xdp:
        check(all(m[1] == xdp for m in modes.values()), f"{what}: XDP modes {modes}")
    log(f"{what}: (TC, XDP) on the veth pair: {modes}")


def host_lacks(cap):
    """Whether this machine grants nobody the capability (its bounding set)."""
    for line in open("/proc/self/status"):
        if line.startswith("CapBnd:"):
            return not int(line.split()[1], 16) & (1 << cap)
    return False


def expected_warning(line):
    """The one warning this machine causes whatever the test does: it grants
    CAP_SYS_RESOURCE to no process, containers included."""
    return "without CAP_SYS_RESOURCE" in line and host_lacks(24)


def nobody_argv(argv):
    """A test process as nobody: the collector then needs CAP_SYS_PTRACE and
    CAP_DAC_READ_SEARCH to read its /proc entries, as for any other user's."""
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + argv


def exact(frames, rep, what, tx, rx):
    recs = records_of_pid(frames, rep["pid"])
    check_eq(len(recs), 1, f"{what}: records of pid {rep['pid']}")
    got = (payload(recs[0], "EGRESS"), payload(recs[0], "INGRESS"))
    log(f"{what}: pid {rep['pid']} tx/rx payload {got[0]}/{got[1]} (sent {rep['sent']}, "
        f"received {rep['received']})")
    check_eq((rep["sent"], rep["received"]), (tx, rx), f"{what}: ground truth")
    check_eq(got, (tx, rx), f"{what}: payload counted")
    return recs[0]


# ---- 1. build ----
def test_build():
    os.makedirs(pm.cache, exist_ok=True)
    open(pm.log, "w").close()
    imgtest.build_base(pm, times)
    imgtest.build_image(pm, times)
    size = pm.size(imgtest.IMAGE)
    times["size"] = size
    log(f"base {times['base']:.0f} s, image {times['image']:.0f} s; "
        f"image size {size / 1e6:.1f} MB (base {pm.size(imgtest.BASE_IMAGE) / 1e6:.1f} MB)")
    check(size < SIZE_MAX, f"image is {size} bytes, more than {SIZE_MAX}")


# ---- 2. what the image holds ----
def test_image_contents():
    script = ("set -e; taskmeterd --version; taskmeter help >/dev/null; "
              "! ldd /usr/sbin/taskmeterd /usr/bin/taskmeter | grep 'not found'; "
              "for t in cc gcc clang make bpftool protoc-c; do "
              "  ! command -v $t || { echo toolchain: $t; exit 1; }; done; "
              "getent group taskmeter; id taskmeter; "
              "grep '^socket_group = taskmeter$' /etc/taskmeter/taskmeter.conf; "
              "taskmeterd --check-config; "
              "ls /usr/lib/systemd/system/taskmeterd.service /usr/lib/sysusers.d/taskmeter.conf")
    out = container_run(f"tm-contents-{run_id}", "--network", "none", imgtest.IMAGE,
                        "sh", "-c", script, detach=False)
    log(out)
    check(f"taskmeter:x:{TM_GID}:" in out, "taskmeter group is not gid 9479")
    check(f"uid={TM_GID}(taskmeter) gid={TM_GID}(taskmeter)" in out, "taskmeter user")


# ---- 3. the DaemonSet's privileges ----
def daemonset_args(spec):
    """podman options for what the DaemonSet's taskmeterd container gets."""
    sc = spec["securityContext"]
    check(not sc.get("privileged"), "the DaemonSet runs taskmeterd privileged")
    args = ["--pid=host", "--network=none", "--cap-drop=all"]
    args += [f"--cap-add=CAP_{c}" for c in sc["capabilities"]["add"]]
    if sc.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    return args


def test_daemonset_privileges_count_exactly():
    spec = container_spec("taskmeterd")
    mounts = {m["name"]: m for m in spec["volumeMounts"]}
    with Env(start=False) as env:
        rundir = os.path.join(env.dir, "run")
        os.mkdir(rundir)
        sock = os.path.join(rundir, "taskmeter.sock")
        env.sock = sock
        add_veth(env)
        # a connection older than the collector, between two of nobody's
        # processes: seeded from sock_diag and /proc/<pid>/fd
        srv = env.spawn(nobody_argv([TRAFFIC, "tcp-serve", "127.0.0.1", "5301", str(REPLY)]),
                        env=clean_env())
        old = env.spawn(nobody_argv([TRAFFIC, "tcp-send-wait", "127.0.0.1", "5301", str(BYTES)]),
                        env=clean_env(), ready="connected", stdin=subprocess.PIPE)
        name = f"tm-ds-{run_id}"
        # the test's namespace stands in for the node's /proc/1/ns/net
        args = [a for a in spec["args"]]
        check_eq(args, ["--set", "netns=/proc/1/ns/net"], "DaemonSet args")
        args[1] = f"netns=/proc/{srv.pid}/ns/net"
        container_run(name, *daemonset_args(spec),
                      "-v", f"{env.bpffs}:{mounts['bpffs']['mountPath']}",
                      "-v", f"/sys/fs/cgroup:{mounts['cgroup']['mountPath']}:ro",
                      "-v", f"{rundir}:{mounts['run']['mountPath']}",
                      imgtest.IMAGE, *spec["command"], *args,
                      "--cgroup", env.cg_rel, "--instance", env.instance,
                      "--interval", "200ms", "--set", "xdp_mode=skb", "-v")
        try:
            wait_path(sock, alive=lambda: pm("container", "exists", name,
                                             check=False).returncode == 0)
            dump_from_host(env, sock, os.path.join(env.dir, "frames.jsonl"))
            env.note_bpf_objects()
            old_rep = env.finish(old, stdin="go\n")
            srv_rep = env.finish(srv)
            # and one that starts now, UDP, as root
            sink = env.spawn([TRAFFIC, "udp-recv", "127.0.0.1", "5302", "20"], env=clean_env())
            udp = env.run([TRAFFIC, "udp-send", "127.0.0.1", "5302", "20", "1200"],
                          env=clean_env())
            sink_rep = env.finish(sink)
            env.wait_frames(3)
            consumers(rundir)
        except BaseException:
            print(container_logs(name))
            raise
        pm("stop", "--time", "30", name)  # SIGTERM, as the kubelet sends
        rc = container_exit_code(name)
        out = container_logs(name)
        if rc != 0:
            print(out)
        check_eq(rc, 0, "taskmeterd's exit status after SIGTERM")
        check("detached, exiting" in out, "no clean stop in the log")
        check_eq(env.dump.wait(timeout=10), 3, "taskmeter dump's exit status (stream ended)")
        env.dump = None
        frames = env.all_frames()
        exact(frames, old_rep, "pre-existing client (nobody)", BYTES, REPLY)
        exact(frames, srv_rep, "pre-existing server (nobody)", REPLY, BYTES)
        exact(frames, udp, "udp client", 20 * 1200, 20 * 1200)
        exact(frames, sink_rep, "udp server", 20 * 1200, 20 * 1200)
        check_attached(frames, "DaemonSet privileges", xdp="skb")
        # a privilege missing shows as a warning (an interface not attached)
        # or an error; libbpf's own EPERM lines are info (libxdp's dispatcher
        # is refused on this kernel by design, see DESIGN.md)
        bad = [line for line in out.splitlines() if re.search(r" (warn|error): ", line)
               and not expected_warning(line)]
        check(not bad, "warnings from the collector:\n" + "\n".join(bad))
        env.check_nothing_left()
        pm("rm", name)
        containers.remove(name)


def consumers(rundir):
    """Unprivileged readers of the mounted socket, as the exporter sidecar
    runs: the socket's group may read, anybody else may not."""
    prom = container_spec("prom")
    sc = prom["securityContext"]
    mount = prom["volumeMounts"][0]
    base = ["--network=none", "--cap-drop=all", "--read-only", "--security-opt",
            "no-new-privileges", "-v", f"{rundir}:{mount['mountPath']}:ro"]
    out = container_run(f"tm-reader-{run_id}", *base,
                        "--user", f"{sc['runAsUser']}:{sc['runAsGroup']}", imgtest.IMAGE,
                        "taskmeter", "dump", "--json", "--count", "2", detach=False)
    frames = [tmtest.load_frame(line) for line in out.splitlines() if line.strip()]
    check_eq(len(frames), 2, "frames read by the unprivileged reader")
    p = pm("run", "--rm", "--runtime", "runc", *imgtest.ULIMITS, "--cgroup-parent", CG_PARENT,
           *base, "--user", "65534:65534", imgtest.IMAGE, "taskmeter", "dump", "--count", "1",
           check=False)
    check(p.returncode != 0 and "Permission denied" in p.stderr,
          f"a reader outside the group was let in: rc {p.returncode} {p.stderr}")
    log(f"reader uid {sc['runAsUser']} in group {TM_GID}: 2 frames; uid 65534: refused")


# ---- 4. the systemd units under systemd ----
def sd_exec(name, *argv, check_rc=True, timeout=60):
    p = pm("exec", name, *argv, check=False, timeout=timeout)
    if check_rc and p.returncode:
        raise tmtest.TestFailure(f"{' '.join(argv)}: exit {p.returncode}: {p.stdout}{p.stderr}")
    return p.stdout


def sd_wait_booted(name, timeout=60):
    """systemd in the container has finished starting up."""
    deadline = time.time() + timeout
    while True:
        state = sd_exec(name, "systemctl", "is-system-running", check_rc=False).strip()
        if state in ("running", "degraded"):
            return state
        check(time.time() < deadline, f"systemd in the container: {state or 'not up'}")
        time.sleep(0.2)


def sd_wait_active(name, unit, want="active", timeout=20):
    deadline = time.time() + timeout
    while True:
        state = sd_exec(name, "systemctl", "is-active", unit, check_rc=False).strip()
        if state == want:
            return
        if time.time() > deadline:
            raise tmtest.TestFailure(f"{unit} is {state}, not {want}:\n"
                                     + sd_exec(name, "journalctl", "-u", unit, "--no-pager",
                                               check_rc=False))
        time.sleep(0.2)


def cap_mask(names):
    """CapBnd of a capability list, as /proc/<pid>/status shows it."""
    numbers = {"CAP_CHOWN": 0, "CAP_DAC_READ_SEARCH": 2, "CAP_NET_ADMIN": 12,
               "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24,
               "CAP_PERFMON": 38, "CAP_BPF": 39}
    return sum(1 << numbers[n] for n in names)


def unit_setting(unit_file, key):
    for line in open(unit_file):
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip()
    return None


def set_keys(text, **keys):
    """The config text with these keys' lines replaced."""
    out = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        out.append(f"{key} = {keys.pop(key)}" if key in keys else line)
    check_eq(keys, {}, "keys not in the config")
    return "\n".join(out) + "\n"


def test_systemd_units():
    imgtest.build_systemd_image(pm, times)
    unit = os.path.join(ROOT, "configs", "taskmeterd.service")
    caps = unit_setting(unit, "CapabilityBoundingSet").split()
    with Env(start=False) as env:
        conf = os.path.join(env.dir, "taskmeter.conf")
        # the installed config, pointed at the test's cgroup and netns
        with open(conf, "w") as f:
            f.write(set_keys(open(os.path.join(ROOT, "build", "taskmeter.conf.installed")).read(),
                             cgroup=env.cg_rel, netns=env.ns, instance=env.instance,
                             interval="200ms", xdp_mode="skb"))
        out = os.path.join(env.dir, "out")
        os.mkdir(out)
        add_veth(env)
        name = f"tm-systemd-{run_id}"
        container_run(name, "--privileged", "--network=none", "--systemd=always",
                      "-v", f"{env.bpffs}:/sys/fs/bpf", "-v", "/run/netns:/run/netns:ro",
                      "-v", f"{conf}:/etc/taskmeter/taskmeter.conf:ro",
                      "-v", f"{out}:/run/tm-out", imgtest.SYSTEMD_IMAGE)
        try:
            systemd_scenario(env, name, caps, out)
        except BaseException:
            print(sd_exec(name, "journalctl", "--no-pager", "-n", "80", check_rc=False))
            raise
        pm("stop", "--time", "20", name, check=False)
        env.check_nothing_left()


def systemd_scenario(env, name, caps, out):
    log(f"systemd in the container: {sd_wait_booted(name)}")
    sd_exec(name, "getent", "group", "taskmeter")
    # Type=notify: `systemctl start` returns once the socket takes clients
    sd_exec(name, "systemctl", "start", "taskmeterd.service")
    sd_exec(name, "test", "-S", "/run/taskmeter/taskmeter.sock")
    status = sd_exec(name, "systemctl", "show", "-P", "StatusText", "taskmeterd.service")
    check("streaming to /run/taskmeter/taskmeter.sock (new state)" in status,
          f"taskmeterd.service status: {status!r}")
    pid = sd_exec(name, "systemctl", "show", "-P", "MainPID", "taskmeterd.service").strip()
    status = sd_exec(name, "cat", f"/proc/{pid}/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    # what the unit allows of what the container has (this machine itself
    # runs without CAP_SYS_RESOURCE)
    have = sd_exec(name, "sh", "-c", "grep CapBnd /proc/1/status").split()[1]
    check_eq(int(fields["CapBnd"].strip(), 16), cap_mask(caps) & int(have, 16),
             "CapBnd of taskmeterd")
    check_eq(fields["NoNewPrivs"].strip(), "1", "NoNewPrivs")
    check_eq(fields["Seccomp"].strip(), "2", "seccomp filter mode")
    sock = sd_exec(name, "stat", "-c", "%a %U %G", "/run/taskmeter/taskmeter.sock").strip()
    check_eq(sock, "660 root taskmeter", "socket mode and owner")
    log(f"taskmeterd.service: pid {pid}, CapBnd {fields['CapBnd'].strip()}, "
        f"NoNewPrivs 1, seccomp on; socket {sock}")
    env.note_bpf_objects()
    consumer_unit(name)
    # traffic from the host, inside the test's cgroup and netns
    srv = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5311", str(REPLY)], env=clean_env())
    cli = env.run([TRAFFIC, "tcp-send", "127.0.0.1", "5311", str(BYTES)], env=clean_env())
    srv_rep = env.finish(srv)
    wait_frames_file(os.path.join(out, "frames.jsonl"), 3)
    sd_exec(name, "systemctl", "reload", "taskmeterd.service")
    sd_wait_journal(name, "taskmeterd.service", "reloaded")
    sd_wait_active(name, "taskmeterd.service")
    # the documented upgrade: stop keeping the state, start again, adopt
    sd_exec(name, "systemctl", "kill", "-s", "USR2", "--kill-who=main", "taskmeterd.service")
    sd_wait_active(name, "taskmeterd.service", want="inactive")
    result = sd_exec(name, "systemctl", "show", "-P", "Result", "taskmeterd.service").strip()
    check_eq(result, "success", "taskmeterd.service result after SIGUSR2")
    check(os.path.isdir(env.state_dir), "state removed by SIGUSR2")
    check("tm_cgskb" in tmtest.sh("bpftool", "cgroup", "show", env.cg),
          "programs detached by SIGUSR2")
    srv2 = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5312", str(REPLY)], env=clean_env())
    cli2 = env.run([TRAFFIC, "tcp-send", "127.0.0.1", "5312", str(BYTES)], env=clean_env())
    srv2_rep = env.finish(srv2)  # while no collector ran
    frames_path = os.path.join(out, "frames.jsonl")
    seen = count_frames(frames_path)
    sd_exec(name, "systemctl", "start", "taskmeterd.service")
    sd_wait_active(name, "taskmeterd.service")
    sd_wait_journal(name, "taskmeterd.service", "adopted the pinned state")
    # the consumer (--wait) reconnects by itself
    wait_frames_file(frames_path, seen + 3)
    sd_exec(name, "systemctl", "stop", "taskmeterd.service")  # SIGTERM: clean
    sd_wait_journal(name, "taskmeter-dump-test.service", "closed the stream")
    sd_exec(name, "systemctl", "stop", "taskmeter-dump-test.service")
    result = sd_exec(name, "systemctl", "show", "-P", "Result", "taskmeterd.service").strip()
    check_eq(result, "success", "taskmeterd.service result after stop")
    consumer = sd_exec(name, "systemctl", "show", "-P", "Result",
                       "taskmeter-dump-test.service").strip()
    check_eq(consumer, "success", "the consumer's result")
    warnings = [line for line in sd_exec(name, "journalctl", "-u", "taskmeterd", "-p", "warning",
                                         "--no-pager", "-q").splitlines()
                if not expected_warning(line)]
    check(not warnings, "taskmeterd logged warnings under the unit:\n" + "\n".join(warnings))
    frames = tmtest.load_frames(frames_path, partial=True)
    exact(frames, cli, "client", BYTES, REPLY)
    exact(frames, srv_rep, "server", REPLY, BYTES)
    exact(frames, cli2, "client while no collector ran", BYTES, REPLY)
    exact(frames, srv2_rep, "server while no collector ran", REPLY, BYTES)
    check_attached(frames, "taskmeterd.service", xdp="skb")


def consumer_unit(name):
    """taskmeter-prom.service's sandbox around `taskmeter dump --json`: the
    unit file as installed, only ExecStart changed, output to a file."""
    src = "/usr/lib/systemd/system/taskmeter-prom.service"
    script = (f"sed -e 's|^ExecStart=.*|ExecStart=/usr/bin/taskmeter dump --json --wait 60|' "
              "-e 's|^Type=.*|Type=simple|' "
              f"-e 's|^\\[Service\\]|[Service]\\nStandardOutput=append:/run/tm-out/frames.jsonl"
              f"\\nStandardError=journal|' "
              f"{src} > /etc/systemd/system/taskmeter-dump-test.service && "
              "systemctl daemon-reload && systemctl start taskmeter-dump-test.service")
    sd_exec(name, "sh", "-c", script)
    sd_wait_active(name, "taskmeter-dump-test.service")
    # the same sandbox as the real unit, but for ExecStart
    diff = sd_exec(name, "sh", "-c", f"diff {src} /etc/systemd/system/taskmeter-dump-test.service"
                   "| grep '^[<>]'", check_rc=False)
    check(all(re.search(r"ExecStart=|Type=|StandardOutput=|StandardError=", line)
              for line in diff.splitlines()),
          f"the test unit differs from taskmeter-prom.service in more than ExecStart "
          f"(and Type: dump does not notify):\n{diff}")
    user = sd_exec(name, "sh", "-c", "ps -o user=,group=,supgrp= -C taskmeter || "
                   "cat /proc/$(systemctl show -P MainPID taskmeter-dump-test)/status"
                   " | grep -E '^(Uid|Gid|Groups|CapEff)'", check_rc=False)
    log(f"consumer in taskmeter-prom.service's sandbox: {' '.join(user.split())}")


def test_prom_unit():
    """taskmeter-prom.service itself, where the image has `taskmeter prom`:
    it scrapes exact per-command totals from the collector's socket."""
    p = pm("run", "--rm", "--runtime", "runc", *imgtest.ULIMITS, "--cgroup-parent", CG_PARENT,
           "--network=none", imgtest.IMAGE, "taskmeter", "help", "prom", check=False)
    if p.returncode != 0:
        raise tmtest.Skip("this build has no `taskmeter prom`: taskmeter-prom.service was not "
                          "started (systemd_units ran a client in its sandbox)")
    imgtest.build_systemd_image(pm, times)
    port = 20000 + random.randrange(20000)
    with Env(start=False) as env:
        conf = os.path.join(env.dir, "taskmeter.conf")
        text = set_keys(open(os.path.join(ROOT, "build", "taskmeter.conf.installed")).read(),
                        cgroup=env.cg_rel, netns=env.ns, instance=env.instance,
                        interval="200ms", prom_listen=f"127.0.0.1:{port}", prom_labels="comm")
        with open(conf, "w") as f:
            f.write(text)
        name = f"tm-prom-{run_id}"
        container_run(name, "--privileged", "--network=none", "--systemd=always",
                      "-v", f"{env.bpffs}:/sys/fs/bpf", "-v", "/run/netns:/run/netns:ro",
                      "-v", f"{conf}:/etc/taskmeter/taskmeter.conf:ro", imgtest.SYSTEMD_IMAGE)
        try:
            sd_wait_booted(name)
            sd_exec(name, "systemctl", "start", "taskmeterd.service", "taskmeter-prom.service")
            sd_wait_active(name, "taskmeterd.service")
            sd_wait_active(name, "taskmeter-prom.service")
            env.note_bpf_objects()
            srv = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5321", str(REPLY)],
                            env=clean_env())
            env.run([TRAFFIC, "tcp-send", "127.0.0.1", "5321", str(BYTES)], env=clean_env())
            env.finish(srv)
            deadline = time.time() + 20
            while True:
                got = scrape_sum(name, port, "taskmeter_process_network_payload_bytes_total",
                                 comm="tm_traffic", network_io_direction="transmit")
                if got == BYTES + REPLY or time.time() > deadline:
                    break
                time.sleep(0.5)
            log(f"/metrics: tm_traffic transmit payload {got}")
            if got != BYTES + REPLY:
                print(scrape_lines(name, port, ""))
            check_eq(got, BYTES + REPLY, "payload bytes the exporter serves")
            sd_exec(name, "systemctl", "stop", "taskmeterd.service")
        except BaseException:
            print(sd_exec(name, "journalctl", "--no-pager", "-n", "60", check_rc=False))
            raise
        pm("stop", "--time", "20", name, check=False)
        env.check_nothing_left()


def scrape_lines(name, port, prefix):
    """The /metrics lines that start with prefix, scraped inside the
    container (bash's /dev/tcp: the image has no HTTP client)."""
    text = sd_exec(name, "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}; "
                   "printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3", check_rc=False)
    return "\n".join(ln for ln in text.splitlines() if ln.startswith(prefix))


def scrape_sum(name, port, metric, **labels):
    """Sum of a metric's samples with these labels."""
    total = 0
    for line in scrape_lines(name, port, metric + "{").splitlines():
        if not line.startswith(metric + "{"):
            continue
        lab, value = line[len(metric) + 1:].rsplit("} ", 1)
        if all(f'{k}="{v}"' in lab for k, v in labels.items()):
            total += int(float(value))
    return total


def count_frames(path):
    try:
        return sum(1 for line in open(path) if line.endswith("\n"))
    except FileNotFoundError:
        return 0


def sd_wait_journal(name, unit, text, timeout=20):
    deadline = time.time() + timeout
    while text not in sd_exec(name, "journalctl", "-u", unit, "--no-pager", "-q"):
        check(time.time() < deadline, f"no '{text}' from {unit}")
        time.sleep(0.2)


def wait_frames_file(path, n, timeout=20):
    deadline = time.time() + timeout
    while True:
        count = count_frames(path)
        if count >= n:
            return
        check(time.time() < deadline, f"{path}: {count} frames, want {n}")
        time.sleep(0.1)


TESTS = [test_build, test_image_contents, test_daemonset_privileges_count_exactly,
         test_systemd_units, test_prom_unit]


def main():
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt(f"signal {s}")))
    sel = sys.argv[1] if len(sys.argv) > 1 else ""
    counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
    t_all = time.time()
    built = True
    cgroups_before = podman_cgroups()
    try:
        for n, fn in enumerate(TESTS, 1):
            name = fn.__name__[5:]
            if sel and sel not in name and name != "build":
                continue
            t0 = time.time()
            try:
                if not built:
                    raise tmtest.Skip("the image was not built")
                fn()
                result = "OK"
            except tmtest.Skip as e:
                result = "SKIP"
                log(f"    skipped: {e}")
            except Exception:
                result = "FAIL"
                traceback.print_exc(file=sys.stdout)
                built = built and name != "build"
            finally:
                remove_containers()
            counts[result] += 1
            log(f"#{n} {name}:{result} ({time.time() - t0:.0f} s)")
    finally:
        remove_containers()
        remove_cgroups(cgroups_before)
    log(f"image-test: {time.time() - t_all:.0f} s in all; build times "
        + ", ".join(f"{k} {v:.0f} s" for k, v in times.items() if k != "size"))
    print(f"{counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
