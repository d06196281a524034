#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Independent decoder of the taskmeterd export stream, for integration tests.

Shares no code with the C client: the Python classes come from protoc and the
varint framing is decoded here, so a framing or schema bug on the C side shows
up as a mismatch instead of being reproduced on both sides.

Prints each frame as one compact JSON line: proto field names, enums by name,
64-bit integers as decimal strings and 32-bit ones as numbers (protobuf's
canonical JSON mapping, json_format.MessageToDict, which `taskmeter dump
--json` follows too), "records" always present. Exits 1 with a message on
stderr if anything does not decode.

from_json() turns such JSON back into Python ints, keyed by the schema's
field types; the tests load every dump line through it.

Run with /usr/bin/python3: that is the interpreter python3-protobuf serves.
"""

import argparse
import importlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

try:
    from google.protobuf import json_format
    from google.protobuf.descriptor import FieldDescriptor
    from google.protobuf.message import DecodeError as PbDecodeError
except ImportError:
    sys.exit("decode_stream: google.protobuf missing; run it with /usr/bin/python3")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_DIR = os.path.join(REPO, "proto")
FRAME_MAX = 64 << 20  # TM_FRAME_MAX: the collector never writes more
VARINT_MAX = 10


class DecodeError(Exception):
    pass


def load_schema(out_dir):
    """Generates taskmeter_pb2 into out_dir with protoc and imports it."""
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run(["protoc", "--python_out=" + out_dir, "--proto_path=" + PROTO_DIR,
                    os.path.join(PROTO_DIR, "taskmeter.proto")], check=True)
    sys.path.insert(0, out_dir)
    return importlib.import_module("taskmeter_pb2")


def connect(path, deadline):
    """Connects, retrying while the collector is still starting."""
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


class FrameStream:
    """Reads varint(len) || Frame records from a stream socket."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()

    def _fill(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out waiting for data")
        self.sock.settimeout(left)
        chunk = self.sock.recv(1 << 16)
        self.buf += chunk
        return bool(chunk)

    def _prefix(self):
        """Returns (length, prefix size), or None on EOF before any byte."""
        value = 0
        for i in range(VARINT_MAX):
            while i >= len(self.buf):
                if not self._fill():
                    if not self.buf:
                        return None
                    raise DecodeError("stream ended inside a length prefix")
            byte = self.buf[i]
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return value, i + 1
        raise DecodeError("length prefix longer than %d bytes" % VARINT_MAX)

    def next_body(self):
        """Returns the next frame's bytes, or None on a clean EOF."""
        prefix = self._prefix()
        if prefix is None:
            return None
        length, used = prefix
        if length > FRAME_MAX:
            raise DecodeError("frame of %d bytes is over the %d limit" % (length, FRAME_MAX))
        while len(self.buf) < used + length:
            if not self._fill():
                raise DecodeError("stream ended inside a frame (%d of %d bytes)"
                                  % (len(self.buf) - used, length))
        body = bytes(self.buf[used:used + length])
        del self.buf[:used + length]
        return body


INT64_TYPES = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64,
               FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_FIXED64,
               FieldDescriptor.TYPE_SFIXED64}


def fix_string(value, bad):
    """A string field holding invalid UTF-8 comes back as bytes (protobuf
    logs an error but parses it). Replace like the C client does, once per
    maximal invalid subpart, and remember it happened."""
    if isinstance(value, bytes):
        bad.append(value)
        return value.decode("utf-8", "replace")
    return value


def fix_strings(desc, obj, bad):
    """Walks the descriptor and replaces invalid UTF-8 in string fields."""
    for name, value in obj.items():
        field = desc.fields_by_name.get(name)
        if field is None:
            continue
        values = value if isinstance(value, list) else [value]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for v in values:
                fix_strings(field.message_type, v, bad)
            continue
        if field.type == FieldDescriptor.TYPE_STRING:
            values = [fix_string(v, bad) for v in values]
            obj[name] = values if isinstance(value, list) else values[0]
    return obj


def int64_field(field, v):
    """A 64-bit field in canonical JSON: a string of decimal digits."""
    if not isinstance(v, str) or not v.lstrip("-").isdigit():
        raise DecodeError("64-bit field %s is %r, not a decimal string" % (field.full_name, v))
    return int(v)


def from_json(desc, obj, extra=None):
    """The JSON object of a desc message with its 64-bit fields made ints,
    in place. Which fields those are comes from the schema, never from what
    a value looks like: a string field holding digits stays a string, and a
    64-bit field written as a bare number is an error. extra: a descriptor
    for top-level names desc does not have (a record line's frame fields)."""
    for name, value in obj.items():
        field = desc.fields_by_name.get(name)
        if field is None and extra is not None:
            field = extra.fields_by_name.get(name)
        if field is None:
            raise DecodeError("%s has no field %r" % (desc.full_name, name))
        values = value if isinstance(value, list) else [value]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for v in values:
                from_json(field.message_type, v)
            continue
        if field.type in INT64_TYPES:
            values = [int64_field(field, v) for v in values]
            obj[name] = values if isinstance(value, list) else values[0]
    return obj


def frame_from_json(pb2, line):
    """One line of `taskmeter dump --json` (or of this script), ints restored."""
    return from_json(pb2.Frame.DESCRIPTOR, json.loads(line))


def record_from_json(pb2, line):
    """One line of `taskmeter dump --json --records`: a ProcessRecord plus its
    frame's seq, timestamp_ns and hostname."""
    return from_json(pb2.ProcessRecord.DESCRIPTOR, json.loads(line), pb2.Frame.DESCRIPTOR)


def frame_to_json(pb2, body):
    frame = pb2.Frame()
    try:
        frame.ParseFromString(body)
    except PbDecodeError as e:
        raise DecodeError("frame does not parse: %s" % e)
    obj = json_format.MessageToDict(frame, preserving_proto_field_name=True)
    bad = []
    fix_strings(frame.DESCRIPTOR, obj, bad)
    if bad:
        # proto string fields must be UTF-8; some decoders reject the frame.
        print("decode_stream: warning: frame %s: %d string(s) with invalid UTF-8, e.g. %r"
              % (obj.get("seq"), len(bad), bad[0]), file=sys.stderr)
    obj.setdefault("records", [])
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--socket", default="/run/taskmeter/taskmeter.sock")
    ap.add_argument("--count", type=int, required=True, help="frames to read, then exit 0")
    ap.add_argument("--proto-out", help="where protoc writes taskmeter_pb2 (default: temp dir)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds for connecting and reading all frames (default 30)")
    args = ap.parse_args()

    tmp = None
    out_dir = args.proto_out
    if not out_dir:
        tmp = tempfile.TemporaryDirectory(prefix="taskmeter-pb2-")
        out_dir = tmp.name
    try:
        pb2 = load_schema(out_dir)
        deadline = time.monotonic() + args.timeout
        sock = connect(args.socket, deadline)
        stream = FrameStream(sock, deadline)
        for n in range(args.count):
            body = stream.next_body()
            if body is None:
                raise DecodeError("stream ended after %d of %d frames" % (n, args.count))
            print(frame_to_json(pb2, body), flush=True)
        sock.close()
    except (DecodeError, OSError, subprocess.CalledProcessError) as e:
        print("decode_stream: %s" % e, file=sys.stderr)
        return 1
    finally:
        if tmp:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
