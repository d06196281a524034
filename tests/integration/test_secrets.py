# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Only allowlisted environment variables leave the collector: processes with
secrets in their environment get their SERVICE_NAME and POD_NAME reported,
and neither the secrets' values nor their names show up in the raw stream,
the client's JSON or the daemon's verbose log; nor do they when a process
rewrote its argv so that /proc/PID/cmdline runs into its environment. Both
metadata modes."""
import io
import os
import signal
import subprocess
import time
from unittest import mock

import tmtest
from tmtest import (Env, TRAFFIC, check, check_eq, clean_env, decode_stream, load_frame, pb2,
                    records_of_pid)


def decode_raw(raw):
    """The frames of a captured stream, as decode_stream.py prints them."""
    stream = decode_stream.FrameStream(BytesSocket(raw), time.monotonic() + 10)
    out = []
    while True:
        body = stream.next_body()  # DecodeError if raw ends inside a frame
        if body is None:
            return out
        out.append(load_frame(decode_stream.frame_to_json(pb2(), body)))


class BytesSocket:
    """Enough of a socket for decode_stream.FrameStream to read bytes."""

    def __init__(self, data):
        self.f = io.BytesIO(data)

    def settimeout(self, t):
        pass

    def recv(self, n):
        return self.f.read(n)


def run_mode(daemon_args, want_source, want_mode, extra_env):
    secret_token = "tmsecret-" + os.urandom(16).hex()
    aws_secret = "tmaws-" + os.urandom(16).hex()
    near_names = {  # names that share a prefix with an allowlisted one
        "SERVICE_NAME_OVERRIDE": "tmnear1-" + os.urandom(8).hex(),
        "POD_NAM": "tmnear2-" + os.urandom(8).hex(),
        "XPOD_NAME": "tmnear3-" + os.urandom(8).hex(),
    }
    # every name but POD_NAM, which is part of POD_NAME (its value is checked)
    secret_names = ["SECRET_TOKEN", "AWS_SECRET_ACCESS_KEY", "SERVICE_NAME_OVERRIDE",
                    "XPOD_NAME"]
    secret_values = [secret_token, aws_secret] + list(near_names.values())
    penv = clean_env(SERVICE_NAME="billing-api", POD_NAME="pod-7", SECRET_TOKEN=secret_token,
                     AWS_SECRET_ACCESS_KEY=aws_secret, **near_names, **extra_env)

    with Env(daemon_args=daemon_args) as env:
        srv = env.spawn([TRAFFIC, "udp-recv", "127.0.0.1", "5004", "3", "secrets-server"],
                        env=penv)
        cli = env.run([TRAFFIC, "udp-send", "127.0.0.1", "5004", "3", "200", "secrets-client"],
                      env=penv)
        rep = env.finish(srv)
        env.wait_frames(2)
        frames = env.stop()
        raw = env.raw_recorders[-1].stream()
        dump_text = open(env.dump_path, "rb").read()
        log = open(env.log, "rb").read()

    check_eq((cli["sent"], rep["received"]), (600, 600), "ground truth")
    for f in frames:
        check_eq(f["metadata_mode"], want_mode, f"metadata_mode of frame {f['seq']}")
    for report, marker in ((rep, "secrets-server"), (cli, "secrets-client")):
        recs = records_of_pid(frames, report["pid"])
        check_eq(len(recs), 1, f"records of {marker} (pid {report['pid']})")
        rec = recs[0]
        check_eq(rec["argv"][-1], marker, f"{marker} argv")
        check(rec["metadata_source"] in want_source,
              f"{marker} metadata source {rec['metadata_source']}, want {want_source}")
        # exactly the two allowlisted variables, each once, as name/value pairs
        # (order is the process's environ order, which the shells in between
        # may change: compare as a sorted list)
        check_eq(sorted((e["name"], e["value"]) for e in rec.get("env", [])),
                 [("POD_NAME", "pod-7"), ("SERVICE_NAME", "billing-api")], f"{marker} env")
        check_eq({tuple(sorted(e)) for e in rec["env"]}, {("name", "value")},
                 f"{marker} EnvVar fields")

    # The raw stream holds whole frames, the same as the dump subscriber's
    # from the one it connected for up to the final one.
    decoded = decode_raw(raw)
    dump = {f["seq"]: f for f in frames}
    check(len(decoded) >= 2, f"raw subscriber got {len(decoded)} frames")
    check_eq(decoded[-1]["seq"], frames[-1]["seq"], "last seq of the raw subscriber")
    for d in decoded:
        check(d == dump.get(d["seq"]), f"raw frame {d['seq']} differs from the dump's")
    check(len(raw) > 0 and b"billing-api" in raw and b"pod-7" in raw,
          "the allowlisted values are not in the raw stream")
    check(b"billing-api" in dump_text and b"pod-7" in dump_text,
          "the allowlisted values are not in the dump JSON")
    for what, blob in (("raw stream", raw), ("dump JSON", dump_text), ("daemon log", log)):
        for s in secret_values + secret_names:
            check(s.encode() not in blob, f"{s} found in the {what}")
    print(f"{want_source}: {len(raw)} raw bytes, {len(frames)} frames, {len(log)} log bytes: "
          "no secret")


def test_task_work():
    run_mode([], ("SOURCE_TASK_WORK",), "MODE_TASK_WORK", {})


def test_procfs():
    # procfs mode reads /proc when the process first shows up: keep both
    # processes alive that long after their traffic.
    run_mode(["--metadata", "procfs"], ("SOURCE_IN_PROCESS", "SOURCE_PROCFS"), "MODE_PROCFS",
             {"TM_LINGER_MS": "1500"})



def no_ptrace_daemon(env):
    """An executable that runs taskmeterd without CAP_SYS_PTRACE (a setting
    it supports, with a warning): /proc hides other users' argv regions and
    environment from it."""
    path = os.path.join(env.dir, "taskmeterd-no-ptrace")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec setpriv --bounding-set=-sys_ptrace {tmtest.TASKMETERD} "$@"\n')
    os.chmod(path, 0o755)
    return path


def run_proctitle(daemon_args, want_source, no_ptrace=False):
    """Processes that rewrote their argv setproctitle-style (argument NULs
    made blanks), so that /proc/PID/cmdline runs on past the arguments into
    the environment, AWS_SECRET_ACCESS_KEY first there. One gets its first
    datagram while the ring buffer is full (the collector stopped, held
    senders filling a 64 KiB ring): its metadata event is lost and the
    collector reads /proc, in task_work mode too. The other's metadata is
    read in the process (task_work, or the receiving hook). Both argvs are
    the blanked argument region and nothing past it; the secret's bytes are
    nowhere in the raw stream or the JSON. no_ptrace: the collector lacks
    CAP_SYS_PTRACE and the processes are another user's, so /proc/PID/stat
    hides their argv region: no argv at all from /proc (flagged
    argv_truncated), the rest of the metadata still."""
    aws_secret = "tmaws-" + os.urandom(16).hex()
    penv = clean_env(AWS_SECRET_ACCESS_KEY=aws_secret, SERVICE_NAME="title-svc",
                     TM_ENV_FIRST="AWS_SECRET_ACCESS_KEY")
    argvs = [[TRAFFIC, "proctitle", "127.0.0.1", str(port), "2", f"proctitle-{port}"]
             for port in (5006, 5007)]
    titles = [" ".join(a) + " " for a in argvs]  # the last NUL became a blank too
    user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if no_ptrace else []

    def send(port, size):
        env.run([TRAFFIC, "udp-once", "127.0.0.1", str(port), str(size), "title-sender"],
                env=penv)

    def record(pid, cond, what):
        deadline = time.monotonic() + 15
        while True:
            recs = records_of_pid(env.all_frames(), pid)
            if recs and cond(recs[-1]):
                return recs[-1]
            check(time.monotonic() < deadline, f"pid {pid}: {what}")
            time.sleep(0.05)

    with Env(daemon_args=daemon_args + ["--set", "ringbuf_kib=64"], interval="200ms",
             start=False) as env:
        with mock.patch.object(tmtest, "TASKMETERD",
                               no_ptrace_daemon(env) if no_ptrace else tmtest.TASKMETERD):
            env.start_daemon()
        srvs = [env.spawn(user + a, env=penv) for a in argvs]
        pids = [p.pid for p in srvs]  # sh, ip netns exec and tm_traffic's re-exec keep it
        for pid in pids:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
            check(aws_secret.encode() in cmdline,
                  f"the kernel's cmdline does not run into the environment: {cmdline!r}")
        env.daemon.send_signal(signal.SIGSTOP)
        try:
            filler = env.spawn([TRAFFIC, "hold-send", "127.0.0.1", "9", "400", "10", "fill"],
                               env=clean_env(), ready="ready", stdin=subprocess.PIPE)
            send(5006, 33)  # its metadata event finds the ring full
        finally:
            env.daemon.send_signal(signal.SIGCONT)
        via_proc = record(pids[0], lambda r: r.get("metadata_source") == "SOURCE_PROCFS",
                          "metadata from /proc after the event was lost")
        env.finish(filler)
        send(5007, 44)
        in_proc = record(pids[1], lambda r: r.get("metadata_source") == want_source,
                         f"metadata from {want_source}")
        send(5006, 55)
        send(5007, 66)
        reps = [env.finish(p) for p in srvs]
        env.wait_frames(2)
        frames = env.stop()
        raw = env.raw_recorders[-1].stream()
        dump_text = open(env.dump_path, "rb").read()

    check_eq([r["received"] for r in reps], [88, 110], "ground truth")
    drops = frames[-1]["stats"]["ringbuf_drops"]
    check(drops > 0, "the ring buffer never overflowed")
    for i, (pid, title, seen) in enumerate(zip(pids, titles, (via_proc, in_proc))):
        final = records_of_pid(frames, pid)[-1]
        check_eq(final["metadata_source"], seen["metadata_source"], f"pid {pid}: source")
        hidden = no_ptrace and i == 0  # from /proc, which hides argv region and environ
        for what, rec in (("first seen", seen), ("at the end", final)):
            check_eq(rec.get("argv", []), [] if hidden else [title], f"pid {pid}: argv {what}")
            check_eq(rec.get("argv_truncated", False), hidden, f"pid {pid}: argv_truncated")
            env_got = [(e["name"], e["value"]) for e in rec.get("env", [])]
            if hidden:  # environ may or may not be readable then: only allowlisted names
                check(set(env_got) <= {("SERVICE_NAME", "title-svc")}, f"pid {pid}: env {what}")
            else:
                check_eq(env_got, [("SERVICE_NAME", "title-svc")], f"pid {pid}: env {what}")
            check_eq((rec.get("comm"), rec.get("uid")), ("tm_traffic", 65534 if no_ptrace else 0),
                     f"pid {pid}: comm and uid {what}")
    for what, blob in (("raw stream", raw), ("dump JSON", dump_text)):
        check(aws_secret.encode() not in blob, f"the secret is in the {what}")
        check(b"AWS_SECRET" not in blob, f"the secret's name is in the {what}")
    print(f"proctitle: {len(raw)} raw bytes, {drops} events lost; metadata from /proc and "
          f"from {want_source}, argv the blanked arguments only: no secret")


def test_proctitle_task_work():
    run_proctitle([], "SOURCE_TASK_WORK")


def test_proctitle_procfs():
    run_proctitle(["--metadata", "procfs"], "SOURCE_IN_PROCESS")


def test_proctitle_no_ptrace():
    run_proctitle([], "SOURCE_TASK_WORK", no_ptrace=True)
