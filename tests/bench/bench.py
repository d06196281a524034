#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""make bench: what taskmeter costs, measured against baselines taken in the
same run (this machine is shared and noisy: absolute numbers drift, ratios
hold better).

1. per-packet program cost (build/bench_prog: BPF_PROG_TEST_RUN, added ns over
   an empty program of the same type, medians of alternated runs);
2. throughput over a veth pair between two network namespaces: one TCP
   stream (iperf3) and 64-byte UDP (iperf3 -u -l 64), with nothing attached,
   with taskmeter fully attached (its default config, and with XDP forced
   in skb mode), and with nethogs watching instead, interleaved, median
   ratios; the agents' CPU, in their process and in their BPF programs;
3. kernel cost per program under that load (kernel.bpf_stats_enabled);
4. collector cost with 1,000 and 10,000 live processes sending traffic, and
   that of the Prometheus exporter (taskmeter prom) reading the same stream
   and scraped every second: its series, CPU, memory and scrape time.

Prints one table and writes it to BENCHMARKS.md (with date, kernel, CPU).
Everything runs in network namespaces and a cgroup of its own (tmtest.Env).
"""
import datetime
import json
import os
import signal
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import tmtest  # noqa: E402
from tmtest import BUILD, ROOT, TRAFFIC, Env, sh  # noqa: E402
from test_prom import Exporter, parse_exposition, total  # noqa: E402

REPS = int(os.environ.get("TM_BENCH_REPS", "5"))
SECONDS = int(os.environ.get("TM_BENCH_SECONDS", "3"))
TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK  # utime + stime


def status_kib(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# ---- 1. per-packet cost ----
def bench_programs():
    log("[1/4] per-packet program cost (BPF_PROG_TEST_RUN) ...")
    out = subprocess.run([os.path.join(BUILD, "bench_prog"), "--json"], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


# ---- 2./3. throughput ----
class Pair:
    """Two namespaces joined by a veth pair: client a0 10.77.0.1, server b0 10.77.0.2."""

    def __init__(self, env):
        self.env = env
        self.a, self.b = env.add_netns("a"), env.add_netns("b")
        sh("ip", "link", "add", "a0", "netns", self.a, "type", "veth", "peer", "name", "b0",
           "netns", self.b)
        for ns, dev, ip in ((self.a, "a0", "10.77.0.1/24"), (self.b, "b0", "10.77.0.2/24")):
            sh("ip", "-n", ns, "addr", "add", ip, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        self.server = subprocess.Popen(env._argv(["iperf3", "-s", "-i", "0"], ns=self.b),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env.children.append(self.server)
        time.sleep(0.5)

    def iperf(self, *extra):
        argv = ["iperf3", "-c", "10.77.0.2", "-t", str(SECONDS), "-J"] + list(extra)
        for _ in range(3):  # the server is busy for a moment after each test
            p = subprocess.run(self.env._argv(argv, ns=self.a), capture_output=True, text=True)
            if p.returncode == 0:
                return json.loads(p.stdout)["end"]
            time.sleep(0.3)
        raise RuntimeError(f"iperf3 failed: {p.stdout[-300:]} {p.stderr[-300:]}")

    def tcp_gbps(self):
        return self.iperf()["sum_received"]["bits_per_second"] / 1e9

    def udp_kpps(self):
        end = self.iperf("-u", "-l", "64", "-b", "0")["sum"]
        return (end["packets"] - end["lost_packets"]) / end["seconds"] / 1e3


def prog_stats():
    """run_time_ns and run_cnt of taskmeter's programs, by name."""
    progs = json.loads(sh("bpftool", "-j", "prog", "show"))
    out = {}
    for p in progs:
        if p.get("name", "").startswith("tm_") and "run_cnt" in p:
            t, c = out.get(p["name"], (0, 0))
            out[p["name"]] = (t + p.get("run_time_ns", 0), c + p["run_cnt"])
    return out


ARMS = ("none", "taskmeter", "taskmeter+xdp", "taskmeter-sockets", "nethogs")


class Agent:
    """No agent; taskmeterd fully attached with its default config (TC on
    veth), with XDP forced (skb mode), or with the socket layer alone
    (interfaces = ""); or nethogs on the server's veth."""

    def __init__(self, kind, env, pair):
        self.kind, self.env, self.pair, self.proc = kind, env, pair, None

    def __enter__(self):
        if self.kind.startswith("taskmeter"):
            mode = {"taskmeter": [], "taskmeter+xdp": ["--set", "xdp_mode=skb"],
                    "taskmeter-sockets": ["--set", "interfaces="]}[self.kind]
            self.env.start_daemon(extra=["--set", f"netns={self.pair.a},{self.pair.b}",
                                         "--set", "interfaces=*", "--interval", "1s"] + mode)
            self.proc = self.env.daemon
        elif self.kind == "nethogs":
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.pair.b, "nethogs", "-t",
                                          "-d", "1", "b0"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            self.env.children.append(self.proc)
        time.sleep(1.0)
        self.cpu0 = cpu_seconds(self.proc.pid) if self.proc else 0
        self.t0 = time.time()
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.cpu = (cpu_seconds(self.proc.pid) - self.cpu0) / (time.time() - self.t0)
        if self.kind.startswith("taskmeter"):
            self.env.stop()
        elif self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        return False


def kernel_pass(env, pair, kind):
    """One TCP and one UDP run with kernel.bpf_stats_enabled: per-program
    ns/run and the share of a core the programs took. Apart from the
    throughput rounds: bpf_stats itself adds two clock reads to every run."""
    old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    kernel = {}
    try:
        sh("sysctl", "-qw", "kernel.bpf_stats_enabled=1")
        with Agent(kind, env, pair):
            before, t0 = prog_stats(), time.time()
            pair.tcp_gbps()
            pair.udp_kpps()
            wall = time.time() - t0
            for name, (t, c) in prog_stats().items():
                t0n, c0 = before.get(name, (0, 0))
                kernel[name] = (t - t0n, c - c0)
    finally:
        sh("sysctl", "-qw", f"kernel.bpf_stats_enabled={old}")
    return kernel, sum(t for t, _ in kernel.values()) / 1e9 / wall


def bench_throughput():
    log(f"[2/4] throughput: {REPS} x ({', '.join(ARMS)}), TCP and 64-byte UDP, "
        f"{SECONDS} s each ...")
    res = {k: {"tcp": [], "udp": [], "cpu": [], "kernel": []} for k in ARMS}
    with Env(start=False) as env:
        pair = Pair(env)
        for rep in range(REPS):
            for kind in ARMS:
                with Agent(kind, env, pair) as agent:
                    res[kind]["tcp"].append(pair.tcp_gbps())
                    res[kind]["udp"].append(pair.udp_kpps())
                if agent.proc:
                    res[kind]["cpu"].append(agent.cpu)
            log(f"  round {rep + 1}: tcp " + ", ".join(
                f"{k} {res[k]['tcp'][-1]:.2f}" for k in res) + " Gbit/s; udp " + ", ".join(
                f"{k} {res[k]['udp'][-1]:.0f}" for k in res) + " kpps")
        log("[3/4] kernel cost per program (bpf_stats) ...")
        kernel, share = kernel_pass(env, pair, "taskmeter")
        res["taskmeter"]["kernel"].append(share)
        res["taskmeter+xdp"]["kernel"].append(kernel_pass(env, pair, "taskmeter+xdp")[1])
    return res, kernel


def ratio(res, kind, metric):
    return statistics.median(a / b for a, b in zip(res[kind][metric], res["none"][metric]))


# ---- 4. collector cost ----
def complete_frames(path):
    """The frames written so far; a line caught half-written is not one."""
    return tmtest.load_frames(path, partial=True)


def scrape_for(exp, seconds):
    """Scrapes once a second (as Prometheus would) for that long; returns
    the scrape times in ms and the last exposition."""
    times, text = [], ""
    end = time.time() + seconds
    while time.time() < end:
        t = time.time()
        text = exp.scrape(timeout=30)[1]
        times.append(1000 * (time.time() - t))
        time.sleep(max(0.0, 1 - (time.time() - t)))
    return times, text


def exporter_result(exp, cpu, times, text):
    m = parse_exposition(text)
    return {"series": total(m, "taskmeter_exporter_series"),
            "label_sets": total(m, "taskmeter_exporter_label_sets"),
            "cpu_pct": 100 * cpu, "rss_mib": status_kib(exp.proc.pid, "VmRSS") / 1024,
            "hwm_mib": status_kib(exp.proc.pid, "VmHWM") / 1024,
            "scrape_ms_median": statistics.median(times), "scrape_ms_max": max(times),
            "render_ms": 1000 * total(m, "taskmeter_exporter_render_seconds"),
            "bytes": len(text)}


def bench_collector(n, window=10):
    log(f"[4/4] collector and exporter with {n} live processes, each sending every second ...")
    with Env(interval="1s", daemon_args=["--set", f"counter_entries={max(65536, 4 * n)}",
                                         "--set", f"meta_entries={max(16384, 2 * n)}",
                                         "--set", "socket_mode=0666"]) as env:
        # The exporter's worst case: one label set per process (pid), none
        # folded, so its series grow with the processes.
        exp = Exporter(env, prom_labels="comm, pid", prom_max_series=max(1000, 2 * n))
        sink = env.spawn([TRAFFIC, "udp-drain", "127.0.0.1", "7777"])
        swarm = env.spawn([TRAFFIC, "swarm", "127.0.0.1", "7777", str(n), "1000"],
                          ready="ready", stdin=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:  # every member seen, with its metadata
            time.sleep(1)
            frames = complete_frames(env.dump_path)
            live = frames[-1]["stats"]["records_live"] if frames else 0
            if live >= n:
                break
        time.sleep(2)
        pid, epid = env.daemon.pid, exp.proc.pid
        cpu0, ecpu0, t0, f0 = cpu_seconds(pid), cpu_seconds(epid), time.time(), env.count_frames()
        times, text = scrape_for(exp, window)
        wall = time.time() - t0
        cpu, ecpu = (cpu_seconds(pid) - cpu0) / wall, (cpu_seconds(epid) - ecpu0) / wall
        rss, hwm = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
        exporter = exporter_result(exp, ecpu, times, text)
        frames = complete_frames(env.dump_path)[f0:]
        swarm.stdin.close()
        swarm.wait(timeout=60)
        sink.kill()
        exp.stop()
        env.stop()
    build = [f["stats"]["frame_build_ns"] / 1e6 for f in frames]
    recs = [len(f["records"]) for f in frames]
    return {"n": n, "cpu_pct": 100 * cpu, "rss_mib": rss / 1024, "hwm_mib": hwm / 1024,
            "build_ms_median": statistics.median(build), "build_ms_max": max(build),
            "records": statistics.median(recs), "exporter": exporter}


# ---- report ----
def machine():
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "unknown")
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, "
            f"kernel {platform.release()}, {cpu}, {os.cpu_count()} CPUs")


def table(progs, res, kernel, coll, memory):
    L = [f"# taskmeter benchmarks", "", f"Measured {machine()}.", "",
         "Produced by `make bench` (tests/bench/bench.py); numbers drift on this shared",
         "machine, ratios against baselines measured in the same run hold better.", "",
         "## 1. Per-packet program cost (BPF_PROG_TEST_RUN, 1,000,000 repeats)", "",
         "Added ns/packet over an empty program of the same type, median of 5",
         "alternated runs. Targets (owner found): XDP and TC <= 25 ns, cgroup_skb <= 40 ns.", "",
         "| program | size | family | proto | owner | added ns | prog ns | empty ns |",
         "|---|---|---|---|---|---|---|---|"]
    for p in progs:
        L.append(f"| {p['prog']} | {p['size']} | {p['family']} | {p['proto']} | {p['owner']} "
                 f"| {p['added_ns']:.1f} | {p['prog_ns']:.1f} | {p['empty_ns']:.1f} |")
    L += ["", "## 2. Throughput over a veth pair (iperf3), interleaved, medians", "",
          f"{REPS} rounds of (no agent, taskmeter, nethogs), {SECONDS} s per run; the ratio",
          "is the median of per-round ratios to that round's no-agent run. Targets:",
          "TCP >= 98%, 64-byte UDP >= 95%, below nethogs' cost.", "",
          "Agent CPU: user + system time of the agent's process; for taskmeter also the",
          "time its BPF programs ran in the kernel (from a separate bpf_stats pass, since",
          "bpf_stats slows every program down), both in % of one core.", "",
          "| agent | TCP Gbit/s | TCP ratio | UDP 64 B kpps | UDP ratio | agent process CPU | BPF programs CPU |",
          "|---|---|---|---|---|---|---|"]
    for k in ARMS:
        cpu = f"{100 * statistics.median(res[k]['cpu']):.1f}%" if res[k]["cpu"] else "-"
        kern = f"{100 * statistics.median(res[k]['kernel']):.1f}%" if res[k]["kernel"] else "-"
        L.append(f"| {k} | {statistics.median(res[k]['tcp']):.2f} | "
                 f"{100 * ratio(res, k, 'tcp'):.1f}% | {statistics.median(res[k]['udp']):.0f} | "
                 f"{100 * ratio(res, k, 'udp'):.1f}% | {cpu} | {kern} |")
    L += ["", "## 3. Kernel cost under that load (kernel.bpf_stats_enabled)", "",
          "Default config (no XDP on veth), one TCP and one UDP run. Includes the timing",
          "overhead bpf_stats adds to each run.", "",
          "| program | runs | ns/run |", "|---|---|---|"]
    for name, (t, c) in sorted(kernel.items()):
        if c:
            L.append(f"| {name} | {c} | {t / c:.1f} |")
    L += ["", "## 4. Collector cost (1 s interval, each process sends a datagram a second)",
          "", "Targets: <= 1% of a core and <= 32 MiB at 1,000; <= 5% and <= 128 MiB at",
          "10,000; frame build <= 10 ms at 10,000.", "",
          "| processes | records/frame | CPU % of a core | RSS MiB | peak RSS MiB | frame build ms (median / max) |",
          "|---|---|---|---|---|---|"]
    for c in coll:
        L.append(f"| {c['n']} | {c['records']:.0f} | {c['cpu_pct']:.2f} | {c['rss_mib']:.1f} | "
                 f"{c['hwm_mib']:.1f} | {c['build_ms_median']:.2f} / {c['build_ms_max']:.2f} |")
    L += ["", "## 5. Exporter cost (taskmeter prom on the same stream, scraped every second)",
          "", "prom_labels = comm, pid: one label set per process, none folded (the worst",
          "case; the default labels give a handful). CPU and memory of the exporter",
          "process; scrape time as the scraping client saw it (a render after every",
          "frame, since every frame changes the counters).", "",
          "| processes | series (all families) | label sets | CPU % of a core | RSS MiB | peak RSS MiB | scrape ms (median / max) | render ms | exposition KiB |",
          "|---|---|---|---|---|---|---|---|---|"]
    for c in coll:
        e = c["exporter"]
        L.append(f"| {c['n']} | {e['series']:.0f} | {e['label_sets']:.0f} | {e['cpu_pct']:.2f} | "
                 f"{e['rss_mib']:.1f} | {e['hwm_mib']:.1f} | {e['scrape_ms_median']:.1f} / "
                 f"{e['scrape_ms_max']:.1f} | {e['render_ms']:.1f} | {e['bytes'] / 1024:.0f} |")
    L += ["", "BPF map memory with the default config (`taskmeterd --print-memory`): " + memory,
          ""]
    return "\n".join(L)


def interrupted(signum, frame):
    """SIGTERM/SIGHUP unwind like Ctrl-C: every Env removes what it made."""
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    t0 = time.time()
    memory = sh(os.path.join(BUILD, "taskmeterd"), "--print-memory").strip()
    progs = bench_programs()
    res, kernel = bench_throughput()
    coll = [bench_collector(1000), bench_collector(10000)]
    text = table(progs, res, kernel, coll, memory)
    print(text)
    with open(os.path.join(ROOT, "BENCHMARKS.md"), "w") as f:
        f.write(text)
    log(f"done in {time.time() - t0:.0f} s; written to BENCHMARKS.md")


if __name__ == "__main__":
    main()
