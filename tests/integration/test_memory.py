# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""taskmeterd --print-memory against the maps a running collector really
has (bpftool): every map of every object it loads, and of its own, listed
once with its size and entries, each an upper bound of what the kernel
charges for it; and the documented defaults of the keys that size maps."""
import os
import re
import subprocess
import tempfile

from tmtest import ROOT, TASKMETERD, Env, bpftool_json, check, check_eq

CONFIG_EXAMPLE = os.path.join(ROOT, "configs", "taskmeter.conf")
LINE = re.compile(r"^\s+(\S+)\s+(\S+)\s+(\d+) bytes\s+(\d+) entries(.*)$")
# What a map may take beyond what the kernel charges: a page for its header
# and a few ring buffer pages, no more.
SLACK = 16384


def print_memory(args):
    """{(object, map): (bytes, entries, sized by)} and the total line."""
    p = subprocess.run([TASKMETERD, *args, "--print-memory"], capture_output=True, text=True,
                       timeout=30)
    check_eq(p.returncode, 0, f"taskmeterd --print-memory exit status ({p.stderr.strip()})")
    maps, total = {}, None
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        if m:
            key = re.search(r"\((\w+)\)", m.group(5))
            check((m.group(1), m.group(2)) not in maps, f"listed twice: {line}")
            maps[(m.group(1), m.group(2))] = (int(m.group(3)), int(m.group(4)),
                                              key.group(1) if key else None)
        elif line.startswith("BPF maps: at most"):
            total = int(line.split()[4])
    check(maps and total is not None, f"no map list in {p.stdout!r}")
    check_eq(total, sum(b for b, _, _ in maps.values()), "total of the per-map lines")
    return maps


def object_of(prog_name):
    if prog_name == "tm_xdp":
        return "xdp"
    return "tc" if prog_name.startswith("tm_tc_") else "taskmeter"


def live_maps(env):
    """[((object, map), bytes_memlock, max_entries)] of the maps the
    collector's programs use and the maps pinned in its state directory.
    A map no program uses is the collector's own; the sections of an
    object (.rodata, ...) belong to the object of the program using them."""
    env.note_bpf_objects()
    used = {}
    for p in bpftool_json("prog", "show"):
        if p["id"] in env.bpf_progs:
            for mid in p.get("map_ids", []):
                used.setdefault(mid, object_of(p["name"]))
    out = []
    for m in bpftool_json("map", "show"):
        if m["id"] not in used and m["id"] not in env.bpf_maps:
            continue
        name = m.get("name", "")
        obj = used.get(m["id"], "collector")
        if obj != "collector" and "." not in name:
            obj = "taskmeter"  # shared by every object: the main one's
        out.append(((obj, name), m.get("bytes_memlock", 0), m.get("max_entries", 0), m["type"]))
    return out


def test_print_memory_lists_every_map():
    sizes = ["--set", "counter_entries=4096", "--set", "flow_entries=2048",
             "--set", "meta_entries=1024", "--set", "ringbuf_kib=256", "--set", "xdp_mode=skb"]
    with Env(daemon_args=sizes, start=False) as env:
        # XDP and TC programs too: their objects have maps of their own
        env.netns_exec("ip", "link", "add", "tma", "type", "veth", "peer", "name", "tmb")
        env.netns_exec("ip", "link", "set", "tma", "up")
        env.netns_exec("ip", "link", "set", "tmb", "up")
        env.start_daemon()
        env.wait_frames(2)
        live = live_maps(env)
        printed = print_memory(sizes)
        print("printed:", sorted(printed))
        print("live:", sorted(set(k for k, _, _, _ in live)))
        objects = {k[0] for k, _, _, _ in live}
        check(objects == {"taskmeter", "xdp", "tc", "collector"},
              f"the test needs XDP, TC and the collector's own maps, found {sorted(objects)}")
        missing = sorted({k for k, _, _, _ in live} - set(printed))
        check(not missing, f"maps the collector has that --print-memory leaves out: {missing}")
        extra = sorted(set(printed) - {k for k, _, _, _ in live})
        check(not extra, f"maps --print-memory lists that the collector does not have: {extra}")
        for key, memlock, entries, kind in live:
            b, e, _ = printed[key]
            check_eq(e, entries, f"entries of {key}")
            if kind == "sk_storage":
                continue  # grows with the sockets: printed per socket
            check(memlock <= b <= memlock + SLACK,
                  f"{key}: --print-memory says {b} bytes, the kernel charges {memlock}")
        env.stop()


def test_print_memory_default_sizes():
    """With no config, the maps have the sizes configs/taskmeter.conf
    documents for the keys that set them."""
    documented = {}
    for line in open(CONFIG_EXAMPLE):
        m = re.match(r"^\s*(\w+)\s*=\s*(\d+)\s*$", line)
        if m:
            documented[m.group(1)] = int(m.group(2))
    with tempfile.NamedTemporaryFile("w", prefix="taskmeter-test-", suffix=".conf") as empty:
        printed = print_memory(["-c", empty.name])
    keyed = [(k, e, key) for k, (_, e, key) in printed.items() if key]
    check(keyed, "no map sized by a config key")
    for k, entries, key in keyed:
        check(key in documented, f"{key} (sizes {k}) is not in {CONFIG_EXAMPLE}")
        unit = 1024 if key.endswith("_kib") else 1
        check_eq(entries, documented[key] * unit, f"entries of {k} ({key})")
