# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Integration-test environment for taskmeter.

Each Env gets its own network namespace, cgroup v2 directory and run
directory, all named with a unique id so that two copies of the suite can run
at once. taskmeterd is attached to that cgroup only; processes started with
Env.run()/Env.spawn() are placed in the cgroup and the namespace. On exit the
Env checks that the collector left nothing behind and removes what it made.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
TASKMETERD = os.path.join(BUILD, "taskmeterd")
TASKMETER = os.path.join(BUILD, "taskmeter")
TRAFFIC = os.path.join(BUILD, "tools", "tm_traffic")


class TestFailure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def check_eq(got, want, what):
    if got != want:
        raise TestFailure(f"{what}: got {got!r}, want {want!r}")


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4].replace("\\040", " ")
    raise TestFailure("no cgroup2 mount")


def sh(*argv, check_rc=True):
    p = subprocess.run(argv, capture_output=True, text=True)
    if check_rc and p.returncode:
        raise TestFailure(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


class Env:
    def __init__(self, daemon_args=(), interval="200ms", start=True):
        self.id = f"{os.getpid()}-{random.randrange(1 << 30):x}"
        self.ns = f"taskmeter-{self.id}"
        self.cg_rel = f"taskmeter-test-{self.id}"
        self.cg = os.path.join(cgroup2_mount(), self.cg_rel)
        self.dir = tempfile.mkdtemp(prefix="taskmeter-test-")
        self.sock = os.path.join(self.dir, "tm.sock")
        self.daemon_args = list(daemon_args)
        self.start = start
        self.interval = interval
        self.daemon = None
        self.dump = None
        self.children = []
        self.extra_ns = []
        self.sub_cgroups = []
        self.frames = None
        self.log = os.path.join(self.dir, "taskmeterd.log")
        self.dump_path = os.path.join(self.dir, "frames.jsonl")

    # ---- lifecycle ----
    def __enter__(self):
        try:
            sh("ip", "netns", "add", self.ns)
            sh("ip", "-n", self.ns, "link", "set", "lo", "up")
            os.mkdir(self.cg)
            if self.start:
                self.start_daemon()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:  # shown by the runner with the failure
            for path in (self.log, self.dump_path + ".err"):
                if os.path.exists(path):
                    print(f"--- {os.path.basename(path)} (last 40 lines)")
                    print("".join(open(path).readlines()[-40:]))
        self.cleanup()
        return False

    def start_daemon(self, extra=()):
        # interfaces: only those of the test's own namespaces, never the host's
        argv = [TASKMETERD, "--cgroup", self.cg_rel, "--socket", self.sock,
                "--interval", self.interval, "--set", f"netns={self.ns}", "-v"] \
            + self.daemon_args + list(extra)
        self.daemon = subprocess.Popen(argv, stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        self.wait_socket()
        self.dump = subprocess.Popen([TASKMETER, "dump", "--json", "--socket", self.sock],
                                     stdout=open(self.dump_path, "w"),
                                     stderr=open(self.dump_path + ".err", "w"))
        self.wait_frames(1)

    def wait_socket(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.daemon.poll() is not None:
                raise TestFailure(f"taskmeterd exited with {self.daemon.returncode}:\n"
                                  + open(self.log).read())
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(self.sock)
                return
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        raise TestFailure("taskmeterd did not open its socket")

    def wait_frames(self, n, timeout=10):
        """Wait until the dump subscriber has written n more frames."""
        start = self.count_frames()
        deadline = time.time() + timeout
        while self.count_frames() < start + n:
            if time.time() > deadline:
                raise TestFailure("no frames from taskmeterd")
            time.sleep(0.05)

    def count_frames(self):
        try:
            with open(self.dump_path) as f:
                return sum(1 for line in f if line.endswith("\n"))
        except FileNotFoundError:
            return 0

    def stop(self):
        """SIGINT the collector (it sends a final frame), collect frames."""
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGINT)
            rc = self.daemon.wait(timeout=20)
            check_eq(rc, 0, "taskmeterd exit status")
        if self.dump:
            rc = self.dump.wait(timeout=10)
            # the stream ended under it: exit status 3 and a message saying so
            check_eq(rc, 3, "taskmeter dump exit status after taskmeterd stopped")
            err = open(self.dump_path + ".err").read()
            check("taskmeterd closed the stream" in err, f"taskmeter dump's stderr: {err!r}")
            self.dump = None
        self.frames = [json.loads(line) for line in open(self.dump_path) if line.strip()]
        self.check_nothing_left()
        return self.frames

    def check_nothing_left(self):
        attached = sh("bpftool", "cgroup", "show", self.cg).strip()
        check(attached == "", f"programs still attached to {self.cg}:\n{attached}")
        check(not os.path.exists(self.sock), "export socket left behind")

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        for proc in (self.dump, self.daemon):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
        for cg in list(reversed(self.sub_cgroups)) + [self.cg]:
            remove_cgroup(cg)
        for ns in [self.ns] + self.extra_ns:
            sh("ip", "netns", "del", ns, check_rc=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- more namespaces and cgroups, removed with the Env ----
    def add_netns(self, suffix):
        ns = f"{self.ns}-{suffix}"
        sh("ip", "netns", "add", ns)
        self.extra_ns.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def add_cgroup(self, rel):
        """A cgroup below the test's own (rel may be nested: a/b)."""
        path = self.cg
        for part in rel.split("/"):
            path = os.path.join(path, part)
            if not os.path.isdir(path):
                os.mkdir(path)
                self.sub_cgroups.append(path)
        return path

    # ---- processes inside the test's cgroup and namespace ----
    def _argv(self, argv, cgroup=None, ns=None):
        return ["sh", "-c",
                'echo $$ > "$0/cgroup.procs" && ns="$1" && shift && exec ip netns exec "$ns" "$@"',
                cgroup or self.cg, ns or self.ns] + list(argv)

    def run(self, argv, env=None, timeout=60, all_reports=False, cgroup=None, ns=None):
        """Run to completion; returns the parsed 'pid= sent= received=' report
        (all of them, in order, with all_reports). cgroup: a path from
        add_cgroup(); ns: a name from add_netns()."""
        p = subprocess.run(self._argv(argv, cgroup, ns), capture_output=True, text=True,
                           env=env, timeout=timeout)
        if p.returncode:
            raise TestFailure(f"{argv}: exit {p.returncode}: {p.stderr}")
        return parse_reports(p.stdout) if all_reports else parse_report(p.stdout)

    def netns_exec(self, *argv):
        """Run a command in the test's network namespace (not its cgroup)."""
        return sh("ip", "netns", "exec", self.ns, *argv)

    def spawn(self, argv, env=None, ready="listening", stdin=None, cgroup=None, ns=None):
        """Start a process; returns after it printed its ready line (at once
        with ready=None)."""
        p = subprocess.Popen(self._argv(argv, cgroup, ns), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, stdin=stdin)
        self.children.append(p)
        if ready is None:
            return p
        line = p.stdout.readline()
        if line.strip() != ready:
            p.wait(timeout=5)
            raise TestFailure(f"{argv} did not start: {line!r} {p.stderr.read()}")
        return p

    def finish(self, p, timeout=60, all_reports=False, stdin=None):
        out, err = p.communicate(input=stdin, timeout=timeout)
        if p.returncode:
            raise TestFailure(f"server exit {p.returncode}: {err}")
        return parse_reports(out) if all_reports else parse_report(out)


def remove_cgroup(path):
    if not os.path.isdir(path):
        return
    try:
        for pid in open(os.path.join(path, "cgroup.procs")).read().split():
            os.kill(int(pid), signal.SIGKILL)
    except (OSError, ValueError):
        pass
    for _ in range(100):
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.05)


def parse_reports(text):
    reps = [{k: int(v) for k, v in (f.split("=") for f in line.split())}
            for line in text.splitlines() if line.startswith("pid=")]
    if not reps:
        raise TestFailure(f"no report in output: {text!r}")
    return reps


def parse_report(text):
    return parse_reports(text)[0]


def clean_env(**kw):
    """A minimal, known environment for a test process."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update(kw)
    return env


# ---- reading frames ----
def final_records(frames):
    """Latest state of every process record: {(pid, start, exec_seq): record}."""
    out = {}
    for f in frames:
        for r in f["records"]:
            if r.get("kind") == "PROCESS":
                out[(r["pid"], r["start_time_ns"], r.get("exec_seq", 0))] = r
    return out


def records_of_pid(frames, pid):
    return [r for k, r in sorted(final_records(frames).items()) if k[0] == pid]


def payload(rec, direction, protocol=None, family=None, layer="CGROUP_SKB", field="payload_bytes"):
    """Sum of a record's traffic[] totals; by default its socket layer, the
    per-process truth (the interface layers see the same bytes again)."""
    total = 0
    for t in rec.get("traffic", []):
        if t["direction"] != direction or t.get("layer", "CGROUP_SKB") != layer:
            continue
        if protocol and t["protocol"] != protocol:
            continue
        if family and t["family"] != family:
            continue
        total += t["total"].get(field, 0)
    return total


def traffic_entries(rec, direction, layer="CGROUP_SKB"):
    return [t for t in rec.get("traffic", [])
            if t["direction"] == direction and t.get("layer", "CGROUP_SKB") == layer]
