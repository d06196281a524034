# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The export socket: a slow subscriber loses frames (and is told exactly how
many) without costing the others any; a subscriber that writes is dropped; an
independent decoder sees the same frames as `taskmeter dump`; the socket has
the configured mode and a second collector cannot take it over."""
import json
import os
import signal
import socket
import stat
import subprocess
import time

from tmtest import (Env, TASKMETERD, TASKMETER, TRAFFIC, check, check_eq, clean_env,
                    decode_stream, load_frame, load_frames, load_record, payload, pb2, records_of_pid,
                    sh, wait_for)

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECODE_STREAM = os.path.join(TESTS, "decode_stream.py")


class Subscriber:
    """A raw subscriber that reads only when told to; decodes frames itself."""

    def __init__(self, path, rcvbuf=None, timeout=20):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(path)
        self.stream = decode_stream.FrameStream(self.sock, time.monotonic() + timeout)
        self.frames = []  # [(Frame message, body bytes)]

    def read_while(self, want_more):
        """Reads frames while want_more(self.frames) is true."""
        while want_more(self.frames):
            body = self.stream.next_body()
            check(body is not None, f"stream ended after {len(self.frames)} frames")
            frame = pb2().Frame()
            frame.ParseFromString(body)
            self.frames.append((frame, body))
        return self.frames

    def close(self):
        self.sock.close()


def dump_frames(env):
    """Frames the dump subscriber has written so far, read while it writes:
    a line caught half-written is left for the next poll. (The assertions
    run on env.stop()'s frames, read after the subscriber exited.)"""
    try:
        return load_frames(env.dump_path, partial=True)
    except FileNotFoundError:
        return []


def check_gapless(frames, what):
    """Consecutive seqs and nothing dropped for this subscriber."""
    check(len(frames) >= 2, f"{what}: only {len(frames)} frames")
    seqs = [f["seq"] for f in frames]
    check_eq(seqs, list(range(seqs[0], seqs[0] + len(seqs))), f"{what}: frame seqs")
    check_eq({f.get("frames_dropped") for f in frames}, {0}, f"{what}: frames_dropped values")


def test_slow_subscriber():
    """subscriber_queue=2: a client that does not read loses frames, counted
    exactly in its frames_dropped; the dump subscriber loses none."""
    tag = "x" * 1500  # every process record carries ~1.6 KB of argv
    with Env(daemon_args=["--set", "subscriber_queue=2", "--set", "exited_ttl=60"],
             interval="100ms") as env:
        slow = Subscriber(env.sock, rcvbuf=1024)
        # The tiny SO_RCVBUF does not bound an AF_UNIX stream: what the kernel
        # holds is limited by the sender's (the collector's) SO_SNDBUF,
        # wmem_default (~208 KiB). With 30 such records a frame is ~50 KB, so
        # about four frames fill it, two more the queue, and the rest drop.
        pids = {env.run([TRAFFIC, "udp-once", "127.0.0.1", "9", "100", f"slow-{i}-{tag}"],
                        env=clean_env())["pid"] for i in range(30)}

        def daemon_dropped():
            fr = dump_frames(env)
            return fr[-1]["stats"]["frames_dropped"] if fr else 0
        # Twice: stall until the collector has dropped 4 more frames, then
        # read until caught up with the live stream.
        for stall in range(2):
            base = daemon_dropped()
            wait_for(lambda: daemon_dropped() >= base + 4, f"stall {stall}: 4 frames dropped")
            target = dump_frames(env)[-1]["seq"] + 3
            slow.read_while(lambda out: not out or out[-1][0].seq < target)
        slow.close()
        got = slow.frames
        frames = env.stop()

    check_gapless(frames, "dump subscriber")
    dump = {f["seq"]: f for f in frames}
    check_eq({r["pid"] for r in frames[-1]["records"] if r["kind"] == "PROCESS"}, pids,
             "processes in the last frame")

    seqs = [f.seq for f, _ in got]
    dropped = [f.frames_dropped for f, _ in got]
    print(f"slow subscriber: {len(got)} frames, seqs {seqs}, frames_dropped {dropped}")
    check(all(f.HasField("frames_dropped") for f, _ in got), "frame without frames_dropped")
    check_eq(dropped[0], 0, "frames_dropped of the first frame (queue was empty)")
    check(dropped[-1] > 0, "the slow subscriber was never told of a dropped frame")
    check(len(set(dropped)) >= 3, f"frames_dropped did not grow in both stalls: {dropped}")
    for (a, _), (b, _) in zip(got, got[1:]):
        check(b.seq > a.seq, f"seq {b.seq} after {a.seq}")
        check(b.frames_dropped >= a.frames_dropped,
              f"frames_dropped decreased: {a.frames_dropped} -> {b.frames_dropped}")
        check_eq(b.seq - a.seq - 1, b.frames_dropped - a.frames_dropped,
                 f"frames missed between seq {a.seq} and {b.seq} vs frames_dropped increase")
    for f, body in got:
        # The dump subscriber never dropped, so every drop the collector
        # counted before this frame was one of ours.
        check_eq(f.stats.frames_dropped, f.frames_dropped,
                 f"seq {f.seq}: CollectorStats.frames_dropped vs the slow subscriber's")
        # Same frame body as the dump subscriber's, bar the per-subscriber field.
        mine = load_frame(decode_stream.frame_to_json(pb2(), body))
        check(f.seq in dump, f"seq {f.seq} missing from the dump subscriber")
        theirs = dict(dump[f.seq])
        check_eq(theirs.pop("frames_dropped"), 0, f"dump frames_dropped at seq {f.seq}")
        check_eq(mine.pop("frames_dropped"), f.frames_dropped, f"decoded frames_dropped {f.seq}")
        check(mine == theirs, f"seq {f.seq}: slow subscriber's frame differs from the dump's")
    check(frames[-1]["stats"]["frames_dropped"] >= dropped[-1],
          f"CollectorStats.frames_dropped {frames[-1]['stats']['frames_dropped']} < "
          f"slow subscriber's {dropped[-1]}")


def test_garbage_client():
    """A subscriber that writes is disconnected; the others keep streaming."""
    with Env(interval="100ms") as env:
        sub = Subscriber(env.sock)
        first = sub.read_while(lambda out: not out)[0][0]  # a subscriber like any other
        g = sub.sock
        g.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)))
        t0 = time.monotonic()
        how = None
        try:
            # frames sent before the garbage was seen may come first
            while how is None and time.monotonic() < t0 + 5:
                g.settimeout(max(t0 + 5 - time.monotonic(), 0.01))
                if not g.recv(1 << 16):
                    how = "EOF"
        except ConnectionResetError:
            how = "ECONNRESET"
        except socket.timeout:
            pass
        took = time.monotonic() - t0
        g.close()
        check(how is not None, "garbage-sending client still connected after 5 s")
        print(f"garbage client: {how} after {took:.3f} s")
        env.wait_frames(3)
        others = len(env.raw_recorders)  # the Env's own raw subscriber
        frames = env.stop()
        log = open(env.log).read()

    check_gapless(frames, "dump subscriber")
    dump = {f["seq"]: f for f in frames}
    check(first.seq in dump, f"seq {first.seq} missing from the dump subscriber")
    check_eq(dump[first.seq]["stats"]["subscribers"], 2 + others,
             f"subscribers in frame {first.seq} (received by the garbage client)")
    check_eq(frames[-1]["stats"]["subscribers"], 1 + others, "subscribers after the disconnect")
    check_eq(frames[-1]["stats"]["frames_dropped"], 0, "frames dropped")
    check_eq(log.count("disconnected: sent data on a read-only stream"), 1,
             "log lines about the garbage client")


def test_independent_decoder():
    """tests/decode_stream.py (protoc classes, its own framing) and the C
    client print identical JSON for the frames both received."""
    # argv and env values that JSON has to escape or that are not ASCII
    odd = 'odd "quoted" back\\slash tab\t ctl\x01\x1f del\x7f ümlaut \u2603 \U0001F600'
    with Env(interval="100ms") as env:
        dec = subprocess.Popen(["/usr/bin/python3", DECODE_STREAM, "--socket", env.sock,
                                "--count", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        pids = []
        # a few exchanges per frame while the decoder reads its 5 frames
        # (bounded: thousands of records would only make the frames slow)
        for _ in range(40):
            if dec.poll() is not None:
                break
            time.sleep(0.05)
            srv = env.spawn([TRAFFIC, "udp-recv", "127.0.0.1", "5003", "2", odd],
                            env=clean_env(SERVICE_NAME=odd, POD_NAME="pod-\u00e9"))
            cli = env.run([TRAFFIC, "udp-send", "127.0.0.1", "5003", "2", "321", f"dec-{odd}"],
                          env=clean_env(SERVICE_NAME="svc"))
            pids += [env.finish(srv)["pid"], cli["pid"]]
        out, err = dec.communicate(timeout=20)
        check_eq(dec.returncode, 0, f"decode_stream exit status ({err.strip()})")
        frames = env.stop()

    check_eq(err, "", "decode_stream stderr")
    decoded = [load_frame(line) for line in out.splitlines()]
    check_eq(len(decoded), 5, "frames printed by decode_stream")
    dump = {f["seq"]: f for f in frames}
    seqs = [d["seq"] for d in decoded]
    check_eq(seqs, list(range(seqs[0], seqs[0] + 5)), "decode_stream seqs")
    check(sum(len(d["records"]) for d in decoded) > 0, "decoded frames carry no records")
    for d in decoded:
        check(d["seq"] in dump, f"seq {d['seq']} missing from the dump subscriber")
        # frames_dropped is per subscriber, but neither dropped any: compare all
        check(d == dump[d["seq"]],
              f"seq {d['seq']} differs:\n decode_stream: {json.dumps(d)}\n"
              f" dump:          {json.dumps(dump[d['seq']])}")
    # the odd strings made it through unchanged (both sides agree and are right)
    srv_pids = pids[0::2]
    for pid in pids:
        check_eq(len(records_of_pid(frames, pid)), 1, f"records of pid {pid}")
    for pid in srv_pids:
        rec = records_of_pid(frames, pid)[0]
        check_eq(rec["argv"][-1], odd, f"pid {pid}: argv with odd characters")
        check_eq(sorted((e["name"], e["value"]) for e in rec["env"]),
                 [("POD_NAME", "pod-\u00e9"), ("SERVICE_NAME", odd)],
                 f"pid {pid}: env with odd characters")


def test_connected_means_counting():
    """The socket takes connections only once the programs count: datagrams
    exchanged the moment a connection first succeeds are all in the records
    (it used to listen a second or two before the programs were attached,
    and such bytes were lost)."""
    count, size = 20, 321
    with Env(start=False) as env:
        echo = env.spawn([TRAFFIC, "udp-recv", "127.0.0.1", "5004", str(count)],
                         env=clean_env())
        cli = {}
        env.start_daemon(on_socket=lambda: cli.update(
            env.run([TRAFFIC, "udp-send", "127.0.0.1", "5004", str(count), str(size)],
                    env=clean_env())))
        srv = env.finish(echo)
        frames = env.stop()
    check_eq((cli["sent"], cli["received"]), (count * size, count * size),
             "ground truth: every datagram echoed")
    for pid in (cli["pid"], srv["pid"]):
        recs = records_of_pid(frames, pid)
        check_eq(len(recs), 1, f"records of pid {pid}")
        for d in ("EGRESS", "INGRESS"):
            check_eq(payload(recs[0], d), count * size, f"pid {pid}: {d} payload")


def bpftool_cgroup(cg):
    return sh("bpftool", "cgroup", "show", cg).strip()


def test_socket_mode_and_exclusive():
    """Socket mode 0660 by default (0640 when configured); a second collector
    on the same socket refuses to start and leaves the first one alone."""
    with Env(interval="100ms") as env:
        st = os.stat(env.sock)
        check(stat.S_ISSOCK(st.st_mode), f"{env.sock} is not a socket")
        check_eq(oct(stat.S_IMODE(st.st_mode)), oct(0o660), "default socket mode")
        attached = bpftool_cgroup(env.cg)
        check(len(attached.splitlines()) >= 2, f"nothing attached to {env.cg}: {attached!r}")

        p = subprocess.run([TASKMETERD, "--cgroup", env.cg_rel, "--socket", env.sock,
                            "--interval", "100ms", "--set", f"pin_root={env.bpffs}",
                            "--instance", env.instance + "-2"],
                           capture_output=True, text=True, timeout=30)
        print(f"second taskmeterd: exit {p.returncode}: {p.stderr.strip()}")
        check(p.returncode not in (0, None), f"second taskmeterd exit status {p.returncode}")
        check("another taskmeterd" in p.stderr, f"second taskmeterd stderr: {p.stderr!r}")
        check(env.sock in p.stderr, f"second taskmeterd does not name the socket: {p.stderr!r}")
        check_eq(bpftool_cgroup(env.cg), attached, "programs attached after the second try")
        check(os.path.exists(env.sock), "second taskmeterd removed the socket")
        check_eq(oct(stat.S_IMODE(os.stat(env.sock).st_mode)), oct(0o660), "socket mode after")

        # the first collector still serves: the running subscriber and a new one
        env.wait_frames(3)
        sub = Subscriber(env.sock)
        new = sub.read_while(lambda out: len(out) < 2)
        sub.close()
        check_eq(new[1][0].seq, new[0][0].seq + 1, "new subscriber's seqs")
        frames = env.stop()
    check_gapless(frames, "dump subscriber")

    with Env(daemon_args=["--set", "socket_mode=0640"], interval="100ms") as env:
        check_eq(oct(stat.S_IMODE(os.stat(env.sock).st_mode)), oct(0o640),
                 "socket mode with socket_mode=0640")
        env.stop()


def test_collectors_starting_together():
    """Two collectors (two instances) started on one socket path at once:
    the path appears only when one listens; the one stopped while it
    started finds the path taken when it goes on, exits saying so and
    removes only its own temporary socket; the other serves throughout."""
    with Env(start=False) as env:
        def collector(instance, log):
            return subprocess.Popen(
                [TASKMETERD, "--cgroup", env.cg_rel, "--socket", env.sock, "--interval",
                 "100ms", "--set", f"pin_root={env.bpffs}", "--instance", instance],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(env.dir, log), "w"))

        first = collector(env.instance + "-a", "first.log")
        temp = f"{env.sock}.{first.pid}"
        wait_for(lambda: os.path.exists(temp) or first.poll() is not None,
                 "the first collector's temporary socket")
        first.send_signal(signal.SIGSTOP)
        try:
            check(not os.path.exists(env.sock), "the path appeared before anything listened")
            second = collector(env.instance + "-b", "second.log")
            wait_for(lambda: os.path.exists(env.sock) or second.poll() is not None,
                     "the second collector's socket", timeout=30)
            check(second.poll() is None, "the second collector exited")
        finally:
            first.send_signal(signal.SIGCONT)
        rc = first.wait(timeout=30)
        log = open(os.path.join(env.dir, "first.log")).read()
        check(rc != 0, f"the first collector exit status {rc}")
        check("taken over by another collector" in log, f"first collector's log: {log}")
        check(not os.path.exists(temp), "the first collector left its temporary socket")
        sub = Subscriber(env.sock)
        got = sub.read_while(lambda out: len(out) < 2)
        sub.close()
        check_eq(got[1][0].seq, got[0][0].seq + 1, "the second collector's frames")
        second.send_signal(signal.SIGINT)
        check_eq(second.wait(timeout=30), 0, "the second collector's exit status")
        check(not os.path.exists(env.sock), "the socket left after the second stopped")


def test_dump_records():
    """dump --json --records: one line per record, each with its frame's seq,
    timestamp_ns and hostname, the same records as the frame lines; every
    64-bit field of both a decimal string (the loader checks it against the
    schema), so that a start_time_ns above 2^53 survives tools that hold
    numbers as doubles."""
    with Env(interval="100ms") as env:
        path = os.path.join(env.dir, "records.jsonl")
        with open(path, "w") as out:
            rec = subprocess.Popen([TASKMETER, "dump", "--json", "--records", "--socket",
                                    env.sock], stdout=out, stderr=subprocess.PIPE, text=True)
            env.children.append(rec)
            cli = env.run([TRAFFIC, "udp-once", "127.0.0.1", "9", "77", "records-mode"],
                          env=clean_env())
            env.wait_frames(3)
            frames = env.stop()
            rc = rec.wait(timeout=10)
        check_eq(rc, 3, f"dump --records exit status after taskmeterd stopped "
                 f"({rec.stderr.read().strip()})")
        raw = open(path).readlines()
    lines = [load_record(ln) for ln in raw]
    by_seq = {f["seq"]: f for f in frames}
    per_seq = {}
    for r in lines:
        seq = r.pop("seq")
        f = by_seq.get(seq)
        check(f is not None, f"record line of seq {seq} not in the frame dump")
        check_eq(r.pop("timestamp_ns"), f["timestamp_ns"], f"timestamp_ns of seq {seq}")
        check_eq(r.pop("hostname"), f["hostname"], f"hostname of seq {seq}")
        check(r in f["records"], f"record line of seq {seq} differs from its frame's records")
        per_seq[seq] = per_seq.get(seq, 0) + 1
    for seq, n in per_seq.items():
        check_eq(n, len(by_seq[seq]["records"]), f"record lines of seq {seq}")
    mine = [json.loads(ln) for ln in raw if json.loads(ln).get("pid") == cli["pid"]]
    check(mine, "the test process is in no record line")
    check(isinstance(mine[0]["seq"], str) and isinstance(mine[0]["start_time_ns"], str)
          and isinstance(mine[0]["pid"], int), f"64/32-bit field types in {mine[0]!r}")
    print(f"{len(lines)} record lines over {len(per_seq)} frames")
