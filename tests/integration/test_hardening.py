# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Issue 14, hardening: records that end whatever was full or lost, ring-buffer
events sized by what they carry, no accept spin without file descriptors,
frames over 64 MiB sent in parts a client reads with bounded daemon memory,
only well-formed UTF-8 in string fields (checked by a strict decoder), files
at the socket path that are not ours left alone, and config errors that name
their line and key. Ground truth comes from the test processes themselves."""
import codecs
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from unittest import mock

import tmtest
from tmtest import (DECODE_STREAM, Env, TASKMETER, TASKMETERD, TRAFFIC, check, check_eq,
                    clean_env, decode_stream, parse_report, pb2, sh, wait_for, log_text)

MIB = 1 << 20


# ---- helpers ----

def procs(frame, pids=None):
    """{pid: record} of the frame's process records (of pids, if given)."""
    return {r["pid"]: r for r in frame["records"]
            if r.get("kind") == "PROCESS" and (pids is None or r["pid"] in pids)}


def tx_payload(rec):
    return sum(t["total"].get("payload_bytes", 0) for t in rec.get("traffic", [])
               if t["direction"] == "EGRESS" and t.get("layer", "CGROUP_SKB") == "CGROUP_SKB")


def stat_of(frame, name):
    return frame.get("stats", {}).get(name, 0)


def spawn_held(env, n, size, tag, extra_env=None, timeout=120):
    """tm_traffic hold-send: n children that each sent one size-byte datagram
    and live until release(). Returns (process, their pids)."""
    p = env.spawn([TRAFFIC, "hold-send", "127.0.0.1", "9", str(n), str(size), tag],
                  env=clean_env(**(extra_env or {})), ready=None, stdin=subprocess.PIPE)
    line = p.stdout.readline()  # after all of them sent
    if line.strip() != "ready":
        p.kill()
        raise tmtest.TestFailure(f"hold-send did not start: {line!r} {p.stderr.read()}")
    pids = [parse_report(p.stdout.readline())["pid"] for _ in range(n)]
    check_eq(len(set(pids)), n, "distinct pids of the held children")
    return p, set(pids)


def release(env, p):
    """The held children exit (hold-send's stdin closes); returns when all
    of them are gone."""
    env.finish(p, timeout=120)


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_bytes(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise tmtest.TestFailure("no VmRSS")


def stop_daemon_only(env):
    """Like Env.stop() for a stream too big to load as JSON: SIGINT, exit 0,
    the dump subscriber told the stream ended, nothing left behind."""
    env.daemon.send_signal(signal.SIGINT)
    check_eq(env.daemon.wait(timeout=60), 0, "taskmeterd exit status")
    rc = env.dump.wait(timeout=60)
    env.dump = None
    check_eq(rc, 3, "taskmeter dump exit status after taskmeterd stopped")
    env.check_nothing_left()


# ---- 1. records that never expire ----

def expiry_figures(env, pids, last, what, bound):
    """Waits (up to bound s) for a frame without any record of pids, and
    checks each pid's final record: exited, with its exact bytes. last:
    {pid: latest record seen}, updated. Returns the time it took."""
    t0 = time.monotonic()
    deadline = t0 + bound
    live = len(pids)
    while live:
        for f in env.new_frames():
            mine = procs(f, pids)
            last.update(mine)
            live = len(mine)
            if not live:
                break
        if live:
            check(time.monotonic() < deadline,
                  f"{what}: {live} of {len(pids)} records of exited processes still in the "
                  f"stream {bound:.0f} s after their exit")
            time.sleep(0.05)
    took = time.monotonic() - t0
    check_eq(set(last), pids, f"{what}: processes seen in the stream")
    wrong = {pid: tx_payload(r) for pid, r in last.items() if tx_payload(r) != 100}
    check_eq(wrong, {}, f"{what}: processes whose final record is not exactly 100 bytes")
    check_eq([pid for pid, r in last.items() if not r.get("exited")], [],
             f"{what}: processes whose last record is not flagged exited")
    return took


def settle(env, base, what, timeout):
    """A frame whose records_live and counter_entries are back to base."""
    return env.wait_frame(lambda f: (stat_of(f, "records_live"), stat_of(f, "counter_entries"))
                     == base, f"{what}: records_live and counter_entries back to {base}",
                     timeout)


def test_expiry_meta_map_full():
    """meta_entries = 1024 and 1500 live senders: 476 owners get no metadata
    slot, so no exit event. After they all exit, every record leaves the
    stream within exited_ttl plus one scan of the reaper (256 records per
    frame), its final record flagged exited with its exact bytes; the owners
    found gone count in exits_inferred, and the collector's records and
    counter entries return to what they were."""
    n, interval = 1500, 0.5
    with Env(daemon_args=["--set", "meta_entries=1024", "--set", "exited_ttl=1"],
             interval="500ms") as env:
        first = env.wait_frame(lambda f: True, "a frame")
        base = (stat_of(first, "records_live"), stat_of(first, "counter_entries"))
        p, pids = spawn_held(env, n, 100, "expiry-meta-full")
        last = {}
        f = env.wait_frame(lambda f: last.update(procs(f, pids)) or len(last) == n and
                      all(tx_payload(r) == 100 for r in last.values()),
                      "every held sender's record with its 100 bytes", 60)
        full = stat_of(f, "meta_map_full")
        inferred0 = stat_of(f, "exits_inferred")
        check(full >= n - 1024, f"meta_map_full {full}: the map did not fill")
        release(env, p)
        bound = 1 + (n // 256 + 4) * interval + 10
        took = expiry_figures(env, pids, last, "meta map full", bound)
        inferred = [pid for pid, r in last.items() if "exit_code" not in r]
        f = settle(env, base, "meta map full", 30)
        check_eq(stat_of(f, "exits_inferred") - inferred0, len(inferred),
                 "exits_inferred vs final records without exit_code")
        check(len(inferred) >= n - 1024,
              f"{len(inferred)} exits inferred, want at least the {n - 1024} slotless owners")
        print(f"meta map full: {n} senders, meta_map_full {full}, {len(inferred)} exits "
              f"inferred; all {n} records left the stream {took:.1f} s after the last exit "
              f"(bound {bound:.0f} s); records_live {f['stats'].get('records_live', 0)}")
        env.stop()


def test_expiry_ringbuf_drops():
    """The collector stopped (SIGSTOP) while 1500 short-lived senders run
    with a 64 KiB ring buffer: most of their metadata and exit events are
    lost (ringbuf_drops). After SIGCONT every record still leaves the stream
    in bounded time, flagged exited, with exactly its bytes."""
    n, interval = 1500, 0.5
    with Env(daemon_args=["--set", "ringbuf_kib=64", "--set", "exited_ttl=1"],
             interval="500ms") as env:
        first = env.wait_frame(lambda f: True, "a frame")
        base = (stat_of(first, "records_live"), stat_of(first, "counter_entries"))
        stopped = time.monotonic()
        env.daemon.send_signal(signal.SIGSTOP)
        try:
            reps = env.run([TRAFFIC, "name-storm", "127.0.0.1", "9", str(n), "100", "rbst"],
                           env=clean_env(), all_reports=True, timeout=300)
        finally:
            env.daemon.send_signal(signal.SIGCONT)
        stopped = time.monotonic() - stopped
        pids = {r["pid"] for r in reps if r["sent"] == 100}
        check_eq(len(pids), n, "senders of the storm")
        last = {}
        took = expiry_figures(env, pids, last, "ring buffer drops", 1 + (n // 256 + 4) *
                              interval + 10)
        f = settle(env, base, "ring buffer drops", 30)
        drops = stat_of(f, "ringbuf_drops")
        check(drops > n, f"ringbuf_drops {drops}: the ring buffer did not overflow")
        sources = {}
        for r in last.values():
            sources[r.get("metadata_source", "SOURCE_NONE")] = \
                sources.get(r.get("metadata_source", "SOURCE_NONE"), 0) + 1
        print(f"ring buffer drops: collector stopped {stopped:.1f} s under {n} senders, "
              f"{drops} events lost, sources {sources}, exits inferred "
              f"{stat_of(f, 'exits_inferred')}; all records left the stream {took:.1f} s "
              f"after SIGCONT")
        env.stop()


# ---- 2. ring-buffer events sized by what they carry ----

RB_LOG = re.compile(r"ring buffer: (\d+) KiB, room for (\d+) metadata events of (\d+) bytes "
                    r"\(argv and environment of 512\)")


def test_ringbuf_capacity():
    """ringbuf_kib = 64: the daemon says how many metadata events with 512
    bytes of argv and environment the ring holds. That many owners whose
    argv and environment are exactly 512 bytes, all appearing while the
    collector is stopped, lose nothing; twice as many lose exactly the
    excess (ringbuf_drops)."""
    with Env(daemon_args=["--set", "ringbuf_kib=64"], interval="200ms") as env:
        m = RB_LOG.search(log_text(env))
        check(m, "no 'ring buffer: ... room for N metadata events' line in the log")
        kib, room, size = (int(x) for x in m.groups())
        check_eq(kib, 64, "ring buffer size logged")
        env.wait_frame(lambda f: True, "a frame")

        def batch(count, tag):
            drops0 = stat_of(env.last_frame, "ringbuf_drops")
            env.daemon.send_signal(signal.SIGSTOP)
            try:
                p, pids = spawn_held(env, count, 64, tag, {"TM_REGION_BYTES": "512"})
            finally:
                env.daemon.send_signal(signal.SIGCONT)
            seen = {}
            f = env.wait_frame(lambda f: seen.update(procs(f, pids)) or len(seen) == count,
                          f"{tag}: records of all {count} owners", 30)
            lost = stat_of(f, "ringbuf_drops") - drops0
            by_tw = sum(r.get("metadata_source") == "SOURCE_TASK_WORK" for r in seen.values())
            release(env, p)
            # their exit events are in: the ring is empty again
            env.wait_frame(lambda f: all(r.get("exited") for r in procs(f, pids).values()),
                      f"{tag}: exits", 30)
            return lost, by_tw

        lost1, tw1 = batch(room, "rb-fits")
        lost2, tw2 = batch(2 * room, "rb-over")
        print(f"ring buffer: {kib} KiB, room for {room} events of {size} bytes "
              f"({room * 1024 // kib} per MiB): {room} owners -> {lost1} lost "
              f"({tw1} by task_work), {2 * room} owners -> {lost2} lost ({tw2} by task_work)")
        check_eq((lost1, tw1), (0, room), f"{room} owners: events lost, read by task_work")
        check_eq((lost2, tw2), (room, room),
                 f"{2 * room} owners: events lost, read by task_work")
        env.stop()


# ---- 3. no accept spin on EMFILE ----

class Client:
    """A subscriber that reads in a thread: how many bytes it got, and
    whether the collector closed it."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.got = 0
        self.eof = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    break
                self.got += len(chunk)
        except OSError:
            pass
        self.eof.set()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.eof.wait(5)


REFUSED_LOG = re.compile(r"refused (\d+) connection\(s\) \(([^)]*)\)")


def test_emfile_no_spin():
    """With 3 file descriptors to spare (prlimit on the running collector)
    and 20 clients: 3 are served, 17 are refused and closed at once, each
    counted once in subscribers_refused; the collector spends under 5% of a
    core over 5 s with them connected, logs at most one line per frame about
    it, with the count, keeps streaming to its subscribers, and accepts new
    clients once the first ones leave."""
    spare, n = 3, 20
    with Env(interval="200ms") as env:
        env.wait_frame(lambda f: True, "a frame")
        pid = env.daemon.pid
        # the limit bounds fd numbers: the one leaving exactly `spare`
        # numbers free below it, holes in the table counted
        used, limit = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}, 0
        while limit - len([fd for fd in used if fd < limit]) < spare:
            limit += 1
        sh("prlimit", f"--pid={pid}", f"--nofile={limit}:{limit}")
        log0 = len(log_text(env))
        clients = [Client(env.sock) for _ in range(n)]
        wait_for(lambda: sum(c.eof.is_set() for c in clients) >= n - spare,
                 f"{n - spare} clients refused")
        t0, cpu0 = time.monotonic(), cpu_ticks(pid)
        seq0 = env.wait_frame(lambda f: True, "a frame")["seq"]
        time.sleep(5)  # the measurement window: the clients stay connected
        cpu = (cpu_ticks(pid) - cpu0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0)
        f = env.wait_frame(lambda f: True, "a frame")
        served = [c for c in clients if not c.eof.is_set()]
        check_eq(len(served), spare, "clients served")
        wait_for(lambda: all(c.got > 0 for c in served), "frames to the served clients")
        refused = stat_of(f, "subscribers_refused")
        check_eq(refused, n - spare, "subscribers_refused")
        lines = REFUSED_LOG.findall(log_text(env)[log0:])
        logged = sum(int(k) for k, _ in lines)
        frames = f["seq"] - seq0 + 1
        print(f"EMFILE: {n} clients, {spare} fds spare: {len(served)} served, {refused} "
              f"refused; collector CPU {cpu * 100:.1f}% of a core over 5 s; {len(lines)} log "
              f"lines ({lines[:2]}) for {logged} refusals")
        check(cpu < 0.05, f"collector CPU {cpu * 100:.1f}% of a core with clients refused")
        check_eq(logged, refused, "refusals the log lines count")
        check(len(lines) <= frames + 1, f"{len(lines)} log lines over {frames} frames")
        check(all("file descriptor" in why for _, why in lines), f"log says why: {lines}")
        for c in clients:
            c.close()
        # the fds are free again: new clients are served
        wait_for(lambda: stat_of(env.wait_frame(lambda f: True, "a frame"), "subscribers")
                 == 1 + len(env.raw_recorders), "the clients' disconnects")
        again = [Client(env.sock) for _ in range(spare)]
        wait_for(lambda: all(c.got > 0 for c in again), "frames to the new clients")
        check(not any(c.eof.is_set() for c in again), "a new client was refused")
        for c in again:
            c.close()
        frames = env.stop()
    seqs = [f["seq"] for f in frames]
    check_eq(seqs, list(range(seqs[0], seqs[0] + len(seqs))), "dump subscriber's seqs")


def test_max_subscribers():
    """max_subscribers = 3 (the dump, the raw recorder and one more): the
    other clients are closed at once and counted; a freed place is taken."""
    with Env(daemon_args=["--set", "max_subscribers=3"], interval="200ms") as env:
        env.wait_frame(lambda f: True, "a frame")
        check_eq(len(env.raw_recorders), 1, "raw recorders")
        clients = [Client(env.sock) for _ in range(5)]
        wait_for(lambda: sum(c.eof.is_set() for c in clients) == 4, "4 clients refused")
        f = env.wait_frame(lambda f: stat_of(f, "subscribers_refused") == 4, "4 refusals counted")
        check_eq(stat_of(f, "subscribers"), 3, "subscribers")
        wait_for(lambda: "max_subscribers = 3" in log_text(env), "the refusal logged")
        # the refused client says so: exit 1, not "taskmeterd stopped"
        # (3); with --wait it retries once a second, then gives up
        for wait, most in ((None, 1), ("2", 4)):
            t0 = time.monotonic()
            p = subprocess.run([TASKMETER, "dump", "--count", "1", "--socket", env.sock]
                               + (["--wait", wait] if wait else []),
                               capture_output=True, text=True, timeout=30)
            took = time.monotonic() - t0
            print(f"refused dump (--wait {wait}): exit {p.returncode} after {took:.1f} s: "
                  f"{p.stderr.strip()[-200:]}")
            check_eq(p.returncode, 1, f"exit status of a refused dump (--wait {wait})")
            check("refused it" in p.stderr, f"refused dump's stderr: {p.stderr!r}")
            tries = 1 + p.stderr.count("reconnecting")
            check(tries <= most, f"{tries} connections in {took:.1f} s (--wait {wait})")
        for c in clients:
            c.close()
        env.wait_frame(lambda f: stat_of(f, "subscribers") == 2, "the served client gone")
        c = Client(env.sock)
        wait_for(lambda: c.got > 0, "frames to a new client")
        c.close()
        env.stop()


# ---- 4. frames over 64 MiB ----

class PartsReader:
    """A subscriber that reads every message and keeps, per frame, how many
    messages and bytes it took, and the record bytes of the last whole
    frame (top-level fields walked, not decoded: cheap enough to keep up)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.stream = decode_stream.FrameStream(self.sock, time.monotonic() + 600)
        self.frames = []   # [(seq, messages, bytes, largest message)]
        self.whole = None  # (seq, [record bytes]) of the last whole frame
        self.error = None
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        parts, recs, seq = 0, [], None
        size = largest = 0
        try:
            while True:
                body = self.stream.next_body()
                if body is None:
                    return
                rest, records = decode_stream.split_records(body)
                hdr = pb2().Frame.FromString(rest)
                if seq is not None and hdr.seq != seq:
                    raise tmtest.TestFailure(f"frame {seq} cut by frame {hdr.seq}")
                seq, parts, size = hdr.seq, parts + 1, size + len(body)
                largest = max(largest, len(body))
                recs += records
                if not hdr.more_parts:
                    with self.lock:
                        self.frames.append((seq, parts, size, largest))
                        self.whole = (seq, recs)
                    parts, recs, seq, size, largest = 0, [], None, 0, 0
        except Exception as e:  # noqa: BLE001 (shown by the test)
            self.error = e

    def latest(self):
        with self.lock:
            return self.whole


def test_frames_over_64mib():
    """9000 live processes with 8 KiB argv (argv_max = 8192): a frame of
    over 64 MiB of records. It goes out as messages of at most 8 MiB of
    records each (no message over the 64 MiB the proto promises), `taskmeter
    dump` reads every frame, and a subscriber that never reads costs the
    daemon at most what subscriber_queue_mib (or one frame, which always
    fits an empty queue) allows."""
    n, queue_mib = 9000, 16
    with Env(daemon_args=["--set", "argv_max=8192", "--set", "exited_ttl=1",
                          "--set", f"subscriber_queue_mib={queue_mib}"],
             interval="2s") as env:
        reader = PartsReader(env.sock)
        text_path = os.path.join(env.dir, "dump.txt")
        text = subprocess.Popen([TASKMETER, "dump", "--socket", env.sock],
                                stdout=open(text_path, "w"), stderr=subprocess.PIPE, text=True)
        env.children.append(text)
        p, pids = spawn_held(env, n, 100, "big", {"TM_ARGV_BYTES": "8192"}, timeout=300)
        deadline = time.monotonic() + 120
        while True:
            check(reader.error is None, f"parts reader: {reader.error!r}")
            whole = reader.latest()
            if whole and len(whole[1]) >= n:
                recs = [pb2().ProcessRecord.FromString(r) for r in whole[1]]
                full = {r.pid for r in recs if r.pid in pids and sum(map(len, r.argv)) >=
                        8192 - len(r.argv)}
                if full == pids:
                    break
            check(time.monotonic() < deadline, "no frame with all 9000 records and their argv")
            time.sleep(0.5)
        big_seq = whole[0]
        rec_bytes = sum(len(r) for r in whole[1])

        def peak_rss(frames):
            """The daemon's largest RSS over the next frames (sampled)."""
            until, peak = reader.frames[-1][0] + frames, 0
            while reader.frames[-1][0] < until:
                check(reader.error is None, f"parts reader: {reader.error!r}")
                peak = max(peak, rss_bytes(env.daemon.pid))
                time.sleep(0.1)
            return peak
        base_rss = peak_rss(2)
        # a subscriber that never reads: its queue fills at the first frame
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        idle.connect(env.sock)
        peak = peak_rss(3)
        idle.close()
        big = [fr for fr in reader.frames if fr[0] >= big_seq]
        largest_msg = max(fr[3] for fr in reader.frames)
        largest_frame = max(fr[2] for fr in big)
        bound = max(queue_mib * MIB, largest_frame) + 32 * MIB
        print(f"frames over 64 MiB: {n} records, {rec_bytes / MIB:.1f} MiB of records in "
              f"frame {big_seq}; frames of {largest_frame / MIB:.1f} MiB in "
              f"{big[0][1]}..{max(fr[1] for fr in big)} messages, largest message "
              f"{largest_msg / MIB:.2f} MiB; daemon RSS {base_rss / MIB:.0f} MiB, "
              f"{peak / MIB:.0f} MiB with an idle subscriber (+{(peak - base_rss) / MIB:.0f}, "
              f"bound +{bound / MIB:.0f})")
        check(rec_bytes > 64 * MIB, f"the frame carries only {rec_bytes / MIB:.1f} MiB")
        check(largest_msg <= decode_stream.FRAME_MAX,
              f"a message of {largest_msg} bytes, over {decode_stream.FRAME_MAX}")
        check(all(fr[1] > 1 for fr in big), "a big frame in one message")
        check(peak - base_rss <= bound,
              f"RSS grew by {(peak - base_rss) / MIB:.0f} MiB with an idle subscriber")
        release(env, p)
        stop_daemon_only(env)
        _, err = text.communicate(timeout=60)
        check_eq(text.returncode, 3, f"taskmeter dump exit status ({err.strip()})")
        check("malformed" not in err, f"taskmeter dump: {err.strip()}")
        seqs = [int(m.group(1)) for m in re.finditer(r"(?m)^frame (\d+) ", open(text_path).read())]
        check(seqs and seqs == list(range(seqs[0], seqs[-1] + 1)),
              f"taskmeter dump's frames: {seqs[:3]}..{seqs[-3:]}")
        check(big_seq in seqs, f"taskmeter dump did not print frame {big_seq}")
        reader.sock.close()


# ---- 5. strict UTF-8 ----

BAD = [b"\xed\xa0\x80",          # a surrogate (U+D800)
       b"\xf4\x90\x80\x80",      # above U+10FFFF
       b"\xe0\x80\x80",          # overlong (3 bytes for U+0000)
       b"\xc0\xaf",              # overlong '/'
       b"\x80",                  # a lone continuation byte
       b"\xbf\xbf",
       b"\xf8\x88\x80\x80\x80",  # a 5-byte form
       b"\xff\xfe",              # bytes that never appear in UTF-8
       b"\xe2\x82"]              # a sequence cut short


def qmark(err):
    return "?" * (err.end - err.start), err.end


codecs.register_error("tm-qmark", qmark)


def exported(raw):
    """What the collector exports for raw bytes: every byte of an invalid
    subpart becomes '?' (the same maximal subparts Python's decoder finds)."""
    return raw.decode("utf-8", "tm-qmark")


def strict_decode(path, full=True):
    """decode_stream.py --strict on a capture, whole messages at a time."""
    p = subprocess.run(["/usr/bin/python3", DECODE_STREAM, "--strict", path]
                       + (["--full"] if full else []), capture_output=True, text=True,
                       env=dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python"))
    check(p.stdout.strip(), f"decode_stream --strict: {p.stderr.strip()}")
    return json.loads(p.stdout.splitlines()[0]), p.returncode


def uts_wrapper(env, hostname):
    """An executable that starts taskmeterd in a UTS namespace of its own
    whose hostname is hostname (bytes): only the collector sees it."""
    path = os.path.join(env.dir, "taskmeterd-uts")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                "exec unshare --uts /usr/bin/python3 -c 'import os, socket, sys; "
                "socket.sethostname(bytes.fromhex(sys.argv[1])); "
                "os.execv(sys.argv[2], sys.argv[2:])' "
                f"{hostname.hex()} {TASKMETERD} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def test_strict_utf8():
    """Process names, argv, allowlisted environment values, cgroup paths,
    an interface name and the hostname, all carrying byte sequences that are
    not UTF-8 (surrogates, above U+10FFFF, overlong, lone continuation
    bytes, cut sequences): every message of the raw stream passes protobuf's
    pure-Python decoder, which rejects a string field that is not UTF-8, and
    each value reads as its bytes with every invalid byte made '?'."""
    bad_all = b"".join(BAD)
    with Env(start=False, interval="200ms") as env:
        # an interface named with bytes >= 0x80 (no 0xa0: the kernel takes
        # it for a space), to a second namespace
        peer_ns = env.add_netns("peer")
        ifname = b"tm\xf4\x90\x80\x80\xc0\xaf\xff"
        sh("ip", "-n", env.ns, "link", "add", ifname.decode("utf-8", "surrogateescape"),
           "type", "veth", "peer", "name", "tmpeer0", "netns", peer_ns)
        sh("ip", "-n", env.ns, "addr", "add", "10.77.0.1/24", "dev",
           ifname.decode("utf-8", "surrogateescape"))
        sh("ip", "-n", env.ns, "link", "set", ifname.decode("utf-8", "surrogateescape"), "up")
        sh("ip", "-n", peer_ns, "addr", "add", "10.77.0.2/24", "dev", "tmpeer0")
        sh("ip", "-n", peer_ns, "link", "set", "tmpeer0", "up")
        hostname = b"host-\xed\xa0\x80-\xe0\x80\x80"
        with mock.patch.object(tmtest, "TASKMETERD", uts_wrapper(env, hostname)):
            env.start_daemon()
        raw_path = env.raw_recorders[-1].path
        # comm: the name the program is run by; cgroup: a directory name
        comm_raw = b"tm\xed\xa0\x80\xf4\x90\x80\x80x"
        link = os.path.join(env.dir, os.fsdecode(comm_raw))
        os.symlink(TRAFFIC, link)
        cg_raw = b"cg-\xe0\x80\x80\xc0\xaf-\x80"
        cg = env.add_cgroup(os.fsdecode(cg_raw))
        tags = [b"bad-" + b for b in BAD] + [b"all-" + bad_all]
        penv = {b"PATH": b"/usr/sbin:/usr/bin:/sbin:/bin", b"SERVICE_NAME": b"svc-" + bad_all,
                b"POD_NAME": b"pod-\xed\xa0\x80", b"SECRET_TOKEN": b"x-\xff"}
        reps = [env.run([link, "udp-once", "10.77.0.2", "9", "100"] + tags, env=penv,
                        cgroup=cg),
                env.run([TRAFFIC, "udp-once", "127.0.0.1", "9", "50"] + tags, env=penv)]
        # quiet now: unchanged records keep their cached encoding (a name
        # that is not UTF-8 must not look new every frame)
        env.wait_frame(lambda f: stat_of(f, "records_encoded") == 0 and f["records"],
                  "a frame that re-encoded no record", 10)
        frames = env.stop()
        out, rc = strict_decode(raw_path)
    print(f"strict decoder, whole messages: {out['messages']} messages, {out['bytes']} bytes, "
          f"{len(out['rejected'])} rejected {out['rejected'][:2]}")
    check_eq((rc, out["rejected"]), (0, []), "messages the strict decoder rejected")
    check(out["messages"] >= 3, f"only {out['messages']} messages captured")

    by_pid = {}
    for f in frames:
        by_pid.update(procs(f, {r["pid"] for r in reps}))
    check_eq(set(by_pid), {r["pid"] for r in reps}, "records of the test processes")
    want_tags = [exported(t) for t in tags]
    for rep in reps:
        rec = by_pid[rep["pid"]]
        check_eq(rec["argv"][5:], want_tags, f"pid {rep['pid']}: argv")
        check_eq(sorted((e["name"], e["value"]) for e in rec.get("env", [])),
                 [("POD_NAME", exported(penv[b"POD_NAME"])),
                  ("SERVICE_NAME", exported(penv[b"SERVICE_NAME"]))], f"pid {rep['pid']}: env")
    linked = by_pid[reps[0]["pid"]]
    check_eq(linked.get("comm"), exported(comm_raw), "comm of the process run by a bad name")
    check(linked.get("cgroup_path", "").endswith("/" + exported(cg_raw)),
          f"cgroup_path {linked.get('cgroup_path')!r}")
    ifnames = {t.get("ifname") for t in linked.get("traffic", []) if t.get("ifindex")}
    check_eq(ifnames, {exported(ifname)}, "ifname of the interface-layer traffic")
    names = {i.get("name") for f in frames for i in f.get("interfaces", [])}
    check(exported(ifname) in names, f"interface names {names}")
    check_eq({f["hostname"] for f in frames}, {exported(hostname)}, "hostname")


# ---- 8. files at the socket path that are not ours ----

def daemon(env, sock, timeout=30, config=None):
    """A second taskmeterd on env's cgroup (its own instance) on socket sock
    (None: the config's): exit status and stderr, for one that must not
    start."""
    argv = [TASKMETERD, "--cgroup", env.cg_rel, "--interval", "200ms",
            "--set", f"pin_root={env.bpffs}", "--instance", env.instance + "-2",
            "--set", f"netns={env.ns}"]
    argv += ["--socket", sock] if sock else []
    argv += ["-c", config] if config else []
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    print(f"taskmeterd on {sock or 'the configured socket'}: exit {p.returncode}: "
          f"{p.stderr.strip()}")
    return p.returncode, p.stderr


def attached(env):
    return sh("bpftool", "cgroup", "show", env.cg).strip()


def test_socket_path_not_ours():
    """A regular file or a directory at socket_path is refused (exit 2, the
    config's line, what is in the way) and left as it was; a stale socket
    (nothing listens) is replaced."""
    with Env(start=False) as env:
        conf = os.path.join(env.dir, "tm.conf")
        in_way = os.path.join(env.dir, "in-the-way")
        for kind in ("file", "directory"):
            if kind == "file":
                with open(in_way, "w") as f:
                    f.write("precious\n")
            else:
                os.mkdir(in_way)
            with open(conf, "w") as f:
                f.write(f"# test\nsocket_path = {in_way}\n")
            rc, err = daemon(env, None, config=conf)
            check_eq(rc, 2, f"exit status with a {kind} at socket_path")
            check("another taskmeterd" not in err, f"{kind} taken for a collector: {err!r}")
            want = "not a socket" if kind == "file" else "a directory is in the way"
            check(want in err, f"stderr does not say {want!r}: {err!r}")
            check(in_way in err, f"stderr does not name {in_way}: {err!r}")
            if kind == "file":
                check_eq(open(in_way).read(), "precious\n", "the file at socket_path")
                os.unlink(in_way)
            else:
                check(os.path.isdir(in_way), "the directory at socket_path")
                os.rmdir(in_way)
            check_eq(attached(env), "", "programs attached")
        # a stale socket: bound, nobody listening
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(env.sock)
        stale.close()
        env.start_daemon()  # it serves on the path: the stale socket was replaced
        env.stop()


def test_busy_socket_not_taken():
    """A running taskmeterd that does not accept (SIGSTOPped, its backlog
    full): a second one refuses its socket ('another taskmeterd') and the
    first keeps serving it, and removes it when it stops."""
    with Env(interval="200ms") as env:
        ino = os.stat(env.sock).st_ino
        before = attached(env)
        env.daemon.send_signal(signal.SIGSTOP)
        fill = []
        try:
            while True:  # connect until the listener's backlog is full
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(env.sock)
                except BlockingIOError:
                    s.close()
                    break
                fill.append(s)
                check(len(fill) < 10000, "the backlog never filled")
            rc, err = daemon(env, env.sock)
        finally:
            env.daemon.send_signal(signal.SIGCONT)
        print(f"backlog full after {len(fill)} connections")
        check(rc != 0, "the second taskmeterd started")
        check("another taskmeterd" in err, f"second taskmeterd's stderr: {err!r}")
        check_eq(os.stat(env.sock).st_ino, ino, "socket file after the second try")
        check_eq(attached(env), before, "programs attached")
        for s in fill:
            s.close()
        env.wait_frames(2)
        c = Client(env.sock)
        wait_for(lambda: c.got > 0, "frames to a new client")
        c.close()
        env.stop()  # checks the socket is gone: the first removed its own


# ---- 9. config errors that name their line and key ----

def test_config_errors_named():
    """A FIFO as the config file: an error at once, not a hang. A netns
    that does not exist and a socket directory that is a regular file: exit
    2 with 'file:line: key:' and nothing attached."""
    with Env(start=False) as env:
        fifo = os.path.join(env.dir, "fifo.conf")
        os.mkfifo(fifo)
        t0 = time.monotonic()
        rc, err = daemon(env, env.sock, config=fifo, timeout=10)
        took = time.monotonic() - t0
        check_eq(rc, 2, "exit status with a FIFO as config")
        check(f"{fifo}: not a regular file" in err, f"stderr: {err!r}")
        check(took < 5, f"took {took:.1f} s")

        conf = os.path.join(env.dir, "tm.conf")
        with open(conf, "w") as f:
            f.write("# test\ninterval = 1s\nnetns = taskmeter-no-such-netns-%d\n" % os.getpid())
        p = subprocess.run([TASKMETERD, "-c", conf, "--cgroup", env.cg_rel, "--socket",
                            env.sock, "--set", f"pin_root={env.bpffs}", "--instance",
                            env.instance], capture_output=True, text=True, timeout=60)
        print(f"missing netns: exit {p.returncode}: {p.stderr.strip()}")
        check_eq(p.returncode, 2, "exit status with a missing netns")
        check(re.search(re.escape(conf) + r":3: netns: .*No such file or directory", p.stderr),
              f"stderr: {p.stderr!r}")
        check_eq(attached(env), "", "programs attached")
        check(not os.path.exists(env.sock), "socket left behind")

        plain = os.path.join(env.dir, "plain")
        open(plain, "w").close()
        with open(conf, "w") as f:
            f.write(f"# test\nsocket_path = {plain}/tm.sock\n")
        rc, err = daemon(env, None, config=conf)
        check_eq(rc, 2, "exit status with a socket directory that is a file")
        check(re.search(re.escape(conf) + r":2: socket_path: .*Not a directory", err),
              f"stderr: {err!r}")
        check_eq(os.path.getsize(plain), 0, "the file in the way")
        check_eq(attached(env), "", "programs attached")
