# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Only allowlisted environment variables leave the collector: processes with
secrets in their environment get their SERVICE_NAME and POD_NAME reported,
and neither the secrets' values nor their names show up in the raw stream,
the client's JSON or the daemon's verbose log. Both metadata modes."""
import io
import os
import socket
import threading
import time

from tmtest import (Env, TRAFFIC, check, check_eq, clean_env, decode_stream, load_frame, pb2,
                    records_of_pid)


class RawSubscriber:
    """Connects now and keeps every byte of the stream until the collector
    closes it."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(30)
        self.data = bytearray()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return
                self.data += chunk
        except OSError as e:
            self.error = e

    def wait_eof(self):
        self.thread.join(30)
        check(not self.thread.is_alive(), "raw subscriber: no EOF after the collector stopped")
        check(self.error is None, f"raw subscriber: {self.error}")
        self.sock.close()
        return bytes(self.data)


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
        raw_sub = RawSubscriber(env.sock)
        srv = env.spawn([TRAFFIC, "udp-recv", "127.0.0.1", "5004", "3", "secrets-server"],
                        env=penv)
        cli = env.run([TRAFFIC, "udp-send", "127.0.0.1", "5004", "3", "200", "secrets-client"],
                      env=penv)
        rep = env.finish(srv)
        env.wait_frames(2)
        frames = env.stop()
        raw = raw_sub.wait_eof()
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
        check_eq(rec["metadata_source"], want_source, f"{marker} metadata source")
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
    run_mode([], "SOURCE_TASK_WORK", "MODE_TASK_WORK", {})


def test_procfs():
    # procfs mode reads /proc when the process first shows up: keep both
    # processes alive that long after their traffic.
    run_mode(["--metadata", "procfs"], "SOURCE_PROCFS", "MODE_PROCFS", {"TM_LINGER_MS": "1500"})
