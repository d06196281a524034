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

--strict FILE... checks captured streams with protobuf's pure-Python
decoder, which rejects a string field that is not valid UTF-8 (as the
protobuf spec requires of string fields; the C++ backend only logs it):
one JSON summary line per file, exit 1 if any message is rejected.

Run with /usr/bin/python3: that is the interpreter python3-protobuf serves.
"""

import argparse
import hashlib
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
FIELD_RECORDS = 4  # Frame.records
BACKEND_VAR = "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"


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


# ---- strict decoding of captured streams ----

def read_varint(buf, i):
    """(value, index after it) of the varint at buf[i]."""
    value = 0
    for n in range(VARINT_MAX):
        if i >= len(buf):
            raise DecodeError("varint cut at the end of its buffer")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << (7 * n)
        if not byte & 0x80:
            return value, i
    raise DecodeError("varint longer than %d bytes" % VARINT_MAX)


def split_stream(data):
    """The message bodies of a captured stream, and the size of an
    incomplete last message (the collector was killed while writing it).
    DecodeError for a length that is no varint anywhere but at the end."""
    view, bodies, i = memoryview(data), [], 0
    while i < len(data):
        try:
            length, start = read_varint(data, i)
        except DecodeError:
            if len(data) - i >= VARINT_MAX:  # not a length cut by the end: corrupt
                raise
            break
        if length > FRAME_MAX:
            raise DecodeError("message %d: %d bytes, over the %d limit"
                              % (len(bodies), length, FRAME_MAX))
        if start + length > len(data):
            break
        bodies.append(view[start:start + length])
        i = start + length
    return bodies, len(data) - i


def split_records(body):
    """A Frame body as (its fields but records, [each record's bytes]),
    walking the top-level fields the way the wire format defines them."""
    rest, records, i = bytearray(), [], 0
    while i < len(body):
        start = i
        tag, i = read_varint(body, i)
        wire = tag & 7
        if wire == 0:
            _, i = read_varint(body, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            length, i = read_varint(body, i)
            if tag >> 3 == FIELD_RECORDS:
                records.append(bytes(body[i:i + length]))
            i += length
        else:
            raise DecodeError("wire type %d at byte %d" % (wire, start))
        if i > len(body):
            raise DecodeError("field at byte %d runs past the message" % start)
        if tag >> 3 != FIELD_RECORDS or wire != 2:
            rest += body[start:i]
    return bytes(rest), records


def strict_check(pb2, data, full=False):
    """Every message of a captured stream through the decoder of this
    process (strict only with the pure-Python backend, see python_backend()).
    A message is decoded as its fields but records, then each record. A
    record's bytes seen before are not decoded again (unchanged records go
    out as the same cached bytes frame after frame; same bytes, same
    verdict) unless full, which parses each message whole. Returns a summary
    with the rejected messages, their seq and the decoder's error."""
    bodies, cut = split_stream(data)
    out = {"bytes": len(data), "messages": len(bodies), "frames": 0, "records": 0,
           "records_decoded": 0, "largest": max((len(b) for b in bodies), default=0),
           "cut": cut, "rejected": []}
    seen = set()
    for n, body in enumerate(bodies):
        frame = pb2.Frame()
        try:
            if full:
                frame.ParseFromString(bytes(body))
                out["records"] += len(frame.records)
                out["records_decoded"] += len(frame.records)
            else:
                rest, records = split_records(body)
                frame.ParseFromString(rest)
                for rec in records:
                    out["records"] += 1
                    key = hashlib.blake2b(rec, digest_size=16).digest()
                    if key not in seen:
                        pb2.ProcessRecord().ParseFromString(rec)
                        seen.add(key)
                        out["records_decoded"] += 1
            out["frames"] += not frame.more_parts
        except Exception as e:  # noqa: BLE001 (UnicodeDecodeError, DecodeError, ...)
            out["rejected"].append({"message": n, "seq": frame.seq if frame.HasField("seq")
                                    else None, "error": "%s: %s" % (type(e).__name__, e)})
    return out


def python_backend():
    """Is this process's protobuf the pure-Python one (set by BACKEND_VAR
    before google.protobuf is imported)?"""
    from google.protobuf.internal import api_implementation
    return api_implementation.Type() == "python"


def strict_backend():
    """Makes this process strict: run again with the pure-Python backend
    if it has another (the C++ one accepts invalid UTF-8 in proto2)."""
    if python_backend():
        return
    if os.environ.get(BACKEND_VAR) == "python":
        sys.exit("decode_stream: the pure-Python protobuf backend is not available")
    os.execve(sys.executable, [sys.executable] + sys.argv,
              dict(os.environ, **{BACKEND_VAR: "python"}))


def strict_main(paths, pb2, full=False):
    """--strict: one JSON summary line per captured stream; 1 if any
    message was rejected."""
    bad = 0
    for path in paths:
        with open(path, "rb") as f:
            out = strict_check(pb2, f.read(), full)
        out["file"] = path
        bad += len(out["rejected"])
        print(json.dumps(out), flush=True)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--socket", default="/run/taskmeter/taskmeter.sock")
    ap.add_argument("--count", type=int, help="frames to read, then exit 0")
    ap.add_argument("--proto-out", help="where protoc writes taskmeter_pb2 (default: temp dir)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds for connecting and reading all frames (default 30)")
    ap.add_argument("--strict", nargs="+", metavar="FILE",
                    help="check captured streams with the pure-Python decoder instead")
    ap.add_argument("--full", action="store_true",
                    help="with --strict: parse each message whole, records seen before too")
    args = ap.parse_args()
    if args.count is None and not args.strict:
        ap.error("--count or --strict is required")
    if args.strict:
        strict_backend()

    tmp = None
    out_dir = args.proto_out
    if not out_dir:
        tmp = tempfile.TemporaryDirectory(prefix="taskmeter-pb2-")
        out_dir = tmp.name
    try:
        pb2 = load_schema(out_dir)
        if args.strict:
            return strict_main(args.strict, pb2, args.full)
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
