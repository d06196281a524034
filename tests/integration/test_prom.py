# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""taskmeter prom, the Prometheus exporter, run unprivileged (uid 65534) as
a client of the daemon's socket: its exposition passes promtool; a real
Prometheus scraping it sums to exactly what the test processes sent and
received, processes that exited long before included; 2,000 process names
with prom_max_series = 100 stay at 101 series per family with exact sums;
it survives the daemon restarting and clients that hang or hang up; every
metric the Grafana dashboard queries is in the exposition."""
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from tmtest import (Env, ROOT, TASKMETER, TRAFFIC, TestFailure, check, check_eq, clean_env,
                    have_ipv6, load_frames, sh, wait_for)

DASHBOARD = os.path.join(ROOT, "configs", "grafana-dashboard.json")
PROMETHEUS = "/usr/bin/prometheus"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
OPENMETRICS = "application/openmetrics-text;version=1.0.0"


# ---- the exporter ----
class Exporter:
    """build/taskmeter prom as uid 65534 on a free loopback port, with a
    config file of its own; its log goes to prom.log in the Env's dir."""

    def __init__(self, env, **keys):
        # The daemon's socket must be reachable for nobody: the Env's dir
        # is 0700; the socket is 0660 in group 65534 (socket_group), the
        # exporter's group: it reads the stream as a group member, no more.
        os.chmod(env.dir, 0o711)
        self.env = env
        self.conf = os.path.join(env.dir, "prom.conf")
        with open(self.conf, "w") as f:
            f.write(f"socket_path = {env.sock}\nprom_listen = 127.0.0.1:0\n")
            for k, v in keys.items():
                f.write(f'{k} = "{v}"\n')
        os.chmod(self.conf, 0o644)
        self.log_path = os.path.join(env.dir, "prom.log")
        self.log = open(self.log_path, "w")
        self.start()

    def start(self):
        self.proc = subprocess.Popen(NOBODY + [TASKMETER, "prom", "--config", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.env.children.append(self.proc)
        self.port = None
        deadline = time.time() + 10
        while self.port is None:
            # it writes whole lines: once readable, readline does not block
            ready = select.select([self.proc.stderr], [], [], max(0, deadline - time.time()))
            check(ready[0], "taskmeter prom did not start serving")
            line = self.proc.stderr.readline()
            self.log.write(line)
            self.log.flush()
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line)
            if m:
                self.port = int(m.group(1))
            check(line, "taskmeter prom exited: " + open(self.log_path).read())
        # keep draining its stderr so that it never blocks on a full pipe
        threading.Thread(target=self._drain, daemon=True).start()
        uid = [ln.split()[1] for ln in open(f"/proc/{self.proc.pid}/status")
               if ln.startswith("Uid:")][0]
        check_eq(uid, "65534", "uid of taskmeter prom")

    def _drain(self):
        for line in self.proc.stderr:
            self.log.write(line)
            self.log.flush()

    def url(self, path="/metrics"):
        return f"http://127.0.0.1:{self.port}{path}"

    def scrape(self, accept=None, timeout=5):
        req = urllib.request.Request(self.url(), headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.headers["Content-Type"], r.read().decode()

    def metrics(self):
        return parse_exposition(self.scrape()[1])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=10)
        check_eq(rc, 0, "taskmeter prom exit status")


def parse_labels(s):
    """The inside of {...}: name="value" pairs, values unescaped."""
    labels, i = {}, 0
    while i < len(s):
        eq = s.index("=", i)
        name = s[i:eq]
        check(s[eq + 1] == '"', f"label {name} not quoted in {s!r}")
        i, value = eq + 2, []
        while s[i] != '"':
            if s[i] == "\\":
                value.append({"n": "\n", "\\": "\\", '"': '"'}[s[i + 1]])
                i += 2
            else:
                value.append(s[i])
                i += 1
        labels[name] = "".join(value)
        i += 1
        if i < len(s) and s[i] == ",":
            i += 1
    return labels


def parse_exposition(text):
    """{sample name: [(labels, value)]} of a text-format exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        check(m is not None, f"exposition line does not parse: {line!r}")
        out.setdefault(m.group(1), []).append((parse_labels(m.group(2) or ""),
                                               float(m.group(3))))
    return out


def total(metrics, name, **match):
    """Sum of the samples of name whose labels include match."""
    return sum(v for labels, v in metrics.get(name, [])
               if all(labels.get(k) == want for k, want in match.items()))


def promtool_check(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    check_eq(p.returncode, 0, f"promtool check metrics ({p.stdout}{p.stderr})")


# ---- Prometheus ----
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Prometheus:
    """A real Prometheus scraping targets every second, its data in the
    Env's dir (removed with it), killed at the end of the test."""

    def __init__(self, env, target_port):
        self.env = env
        self.dir = tempfile.mkdtemp(prefix="prometheus-", dir=env.dir)
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: taskmeter\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n")
        for _ in range(5):  # the free port may be taken before we bind it
            self.port = free_port()
            self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={self.dir}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=self.log, stderr=subprocess.STDOUT)
            env.children.append(self.proc)
            if self._ready():
                return
        raise TestFailure("prometheus did not start: "
                          + open(os.path.join(self.dir, "prometheus.log")).read()[-2000:])

    def _ready(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready",
                                            timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def query(self, q):
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=10) as r:
            res = json.load(r)
        check_eq(res["status"], "success", f"query {q}")
        return res["data"]["result"]

    def by(self, q, label):
        """{label value: float} of an instant vector query."""
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in self.query(q)}

    def scrapes_since(self, t):
        """Whether a scrape that started after t was stored."""
        res = self.query('timestamp(up{job="taskmeter"})')
        return bool(res) and float(res[0]["value"][1]) > t

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def after_frames(exp, n=2):
    """The exposition once the exporter has read n more frames (what the
    collector counted until now is in it)."""
    read = "taskmeter_exporter_frames_read_total"
    start = total(exp.metrics(), read)
    wait_for(lambda: total(exp.metrics(), read) >= start + n, f"{n} more frames read")
    return exp.metrics()


def records_with(env, pred):
    """Process records of the last frame the dump has whole, that pred likes."""
    frames = load_frames(env.dump_path, partial=True)
    return [r for r in (frames[-1]["records"] if frames else [])
            if r.get("kind") == "PROCESS" and pred(r)]


def has_service(tag):
    return lambda r: any(e.get("name") == "SERVICE_NAME" and e.get("value") == tag
                         for e in r.get("env", []))


# ---- ground truth ----
class Truth:
    """What the test processes say they moved: payload they sent plus their
    TCP retransmissions; received plus the peers' retransmissions (every
    peer here is another test process)."""

    def __init__(self):
        self.tx = self.rx = 0
        self.pids = set()

    def add(self, *reports):
        for r in reports:
            self.tx += r["sent"]
            self.rx += r["received"]
            self.pids.add(r["pid"])


def exchange(env, truth, tag, addr, port, i):
    """TCP both ways, UDP echo, and short-lived senders, all tagged."""
    penv = clean_env(SERVICE_NAME=tag)
    srv = env.spawn([TRAFFIC, "tcp-serve", addr, str(port), str(50_000 + 17 * i), "srv"],
                    env=penv)
    cli = env.run([TRAFFIC, "tcp-send", addr, str(port), str(300_000 + 1001 * i), "cli"],
                  env=penv)
    truth.add(cli, env.finish(srv))
    usrv = env.spawn([TRAFFIC, "udp-recv", addr, str(port + 1), "20", "usrv"], env=penv)
    truth.add(env.run([TRAFFIC, "udp-send", addr, str(port + 1), "20", str(500 + i), "ucli"],
                      env=penv), env.finish(usrv))
    sink = env.spawn([TRAFFIC, "udp-sink", addr, str(port + 2), "10"], env=penv)
    for k in range(10):
        truth.add(env.run([TRAFFIC, "udp-once", addr, str(port + 2), str(100 + k)], env=penv))
    truth.add(env.finish(sink))


PAYLOAD_BY_DIR = ('sum by (network_io_direction) '
                  '(taskmeter_process_network_payload_bytes_total{{env_SERVICE_NAME="{tag}"}})')


def test_prometheus_exact():
    """Processes move known bytes in two rounds; each round's processes exit
    and their records leave the stream (exited_ttl=1) long before the last
    scrape. Prometheus' sums equal the ground truth exactly, never went
    above it, and no series ever reset."""
    with Env(daemon_args=["--set", "socket_group=65534", "--set", "exited_ttl=1"],
             interval="200ms") as env:
        tag = f"tmprom-{env.id}"
        exp = Exporter(env, prom_labels="service, comm, env_SERVICE_NAME")
        prom = Prometheus(env, exp.port)
        t0 = time.time()
        truth = Truth()
        for rnd in range(2):
            # the address families are incidental here: without IPv6, two of IPv4's
            for i, addr in enumerate(("127.0.0.1", "::1" if have_ipv6() else "127.0.0.2")):
                exchange(env, truth, tag, addr, 6000 + 10 * i, 2 * rnd + i)
            # gone from the stream: the exporter keeps their bytes
            wait_for(lambda: not records_with(env, has_service(tag)),
                     f"round {rnd}: records of the test processes to leave the stream")
            gone = time.time()
            wait_for(lambda: prom.scrapes_since(gone + 1), "two scrapes after they left")
        want = {"transmit": truth.tx, "receive": truth.rx}
        q = PAYLOAD_BY_DIR.format(tag=tag)
        got = prom.by(q, "network_io_direction")
        window = f"{int(time.time() - t0) + 30}s"
        most = prom.by(f"max_over_time(({q})[{window}:1s])", "network_io_direction")
        resets = prom.query("sum(resets(taskmeter_process_network_payload_bytes_total"
                            f'{{env_SERVICE_NAME="{tag}"}}[{window}]))')
        up = prom.query('up{job="taskmeter"}')
        samples = prom.query('scrape_samples_scraped{job="taskmeter"}')
        # the exporter's own view, and promtool on it
        ctype, text = exp.scrape()
        mine = parse_exposition(text)
        om_type, om_text = exp.scrape(accept=OPENMETRICS)
        prom.stop()
        exp.stop()
        env.stop()

    print(f"{len(truth.pids)} processes; ground truth tx {truth.tx} rx {truth.rx}; "
          f"Prometheus {got}; max over time {most}")
    check_eq(got, want, "Prometheus: payload bytes of the test processes by direction")
    check_eq(most, want, "Prometheus: highest sum over the test (never above the truth)")
    check_eq(float(resets[0]["value"][1]) if resets else None, 0.0, "counter resets")
    check_eq(up[0]["value"][1], "1", "up (Prometheus parsed the OpenMetrics exposition)")
    check(float(samples[0]["value"][1]) > 50, f"samples per scrape: {samples}")
    for d in ("transmit", "receive"):
        check_eq(total(mine, "taskmeter_process_network_payload_bytes_total",
                       env_SERVICE_NAME=tag, network_io_direction=d), want[d],
                 f"exporter's own {d} payload")
    check_eq(ctype, "text/plain; version=0.0.4; charset=utf-8", "text Content-Type")
    check(om_type.startswith("application/openmetrics-text; version=1.0.0"), om_type)
    check(om_text.endswith("# EOF\n"), "OpenMetrics exposition ends with # EOF")
    promtool_check(text)


def test_cardinality_cap():
    """2,000 processes, each with a comm of its own, label set = comm,
    prom_max_series = 100: at most 100 label sets plus "other", so 101
    series per family (each label set here uses one direction x transport
    x type), and the sums are still the ground truth."""
    n, size = 2000, 100
    payload = "taskmeter_process_network_payload_bytes_total"
    with Env(daemon_args=["--set", "socket_group=65534", "--set", "exited_ttl=1"],
             interval="200ms") as env:
        exp = Exporter(env, prom_labels="comm", prom_max_series=100)
        sink = env.spawn([TRAFFIC, "udp-sink", "127.0.0.1", "7100", str(n + 1)], env=clean_env())
        # The sink's label set first (it only receives): otherwise it could
        # land in "other", which would then have a receive series besides
        # its transmit one.
        reps = env.run([TRAFFIC, "name-storm", "127.0.0.1", "7100", "1", str(size), "warm"],
                       env=clean_env(), all_reports=True)
        wait_for(lambda: total(exp.metrics(), payload, comm="tm_traffic"), "the sink's series")
        reps += env.run([TRAFFIC, "name-storm", "127.0.0.1", "7100", str(n), str(size), "tmc"],
                        env=clean_env(), all_reports=True, timeout=300)
        rx = env.finish(sink)
        sent = sum(r["sent"] for r in reps)
        check_eq((len(reps), sent, rx["received"]), (n + 3, (n + 1) * size, (n + 1) * size),
                 "ground truth (reports, bytes sent, bytes the sink got)")
        wait_for(lambda: total(exp.metrics(), payload, network_io_direction="transmit") >= sent
                 and not records_with(env, lambda r: True),
                 "the children's bytes in the exposition, their records gone", timeout=60)
        _, text = exp.scrape()
        exp.stop()
        env.stop()

    m = parse_exposition(text)
    counts = {name: len(v) for name, v in m.items() if name.startswith("taskmeter_process_")}
    comms = {lb.get("comm") for lb, _ in m[payload]}
    folded = total(m, "taskmeter_exporter_label_sets_folded_total")
    print(f"series per family: {counts}; {len(comms)} comm values; folded {folded:.0f}, "
          f"label sets {total(m, 'taskmeter_exporter_label_sets'):.0f}")
    check(counts.get(payload), "no process series")
    for name, c in counts.items():
        check(c <= 101, f"{name}: {c} series")
    check_eq(len(comms), 101, "distinct comm values (100 label sets and other)")
    check("other" in comms, "no series with comm=other")
    check_eq(total(m, payload, network_io_direction="transmit"), sent, "transmit payload")
    check_eq(total(m, payload, network_io_direction="receive"), rx["received"],
             "receive payload")
    check(folded >= n + 2 - 100, f"label sets folded: {folded}")
    check_eq(total(m, "taskmeter_exporter_label_sets"), 100, "label sets kept")
    promtool_check(text)


def series_values(text):
    """{(name, labels): value} of the counters in an exposition."""
    return {(name, tuple(sorted(lb.items()))): v
            for name, samples in parse_exposition(text).items() if name.endswith("_total")
            for lb, v in samples}


class Scraper(threading.Thread):
    """Scrapes every 50 ms and records every counter going backwards or
    disappearing between two scrapes."""

    def __init__(self, exp):
        super().__init__(daemon=True)
        self.exp, self.stop_flag, self.bad, self.n, self.errors = exp, False, [], 0, []

    def run(self):
        last = None
        while not self.stop_flag:
            try:
                cur = series_values(self.exp.scrape()[1])
            except OSError as e:
                self.errors.append(repr(e))
                continue
            self.n += 1
            for k, v in (last or {}).items():
                if k[0].startswith("taskmeter_exporter_"):
                    continue
                if k not in cur or cur[k] < v:
                    self.bad.append((k, v, cur.get(k)))
            last = cur
            time.sleep(0.05)


def test_daemon_restart():
    """The daemon stops and starts again (new counter state, so a new
    counters_id): the exporter reconnects, no counter goes backwards or
    disappears, and after the restart the sums are the old ones plus the
    new traffic exactly."""
    with Env(daemon_args=["--set", "socket_group=65534", "--set", "exited_ttl=1"],
             interval="200ms") as env:
        tag = f"tmrestart-{env.id}"
        exp = Exporter(env, prom_labels="env_SERVICE_NAME")
        scraper = Scraper(exp)
        scraper.start()
        truth = Truth()
        exchange(env, truth, tag, "127.0.0.1", 6100, 1)
        payload = "taskmeter_process_network_payload_bytes_total"
        wait_for(lambda: total(exp.metrics(), payload, env_SERVICE_NAME=tag,
                               network_io_direction="transmit") == truth.tx, "round 1 exported")
        env.stop()
        wait_for(lambda: total(exp.metrics(), "taskmeter_exporter_stream_connected") == 0,
                 "the exporter to see the daemon go")
        env.start_daemon()
        wait_for(lambda: total(exp.metrics(), "taskmeter_exporter_stream_connected") == 1,
                 "the exporter to reconnect")
        exchange(env, truth, tag, "127.0.0.1", 6110, 2)
        wait_for(lambda: total(exp.metrics(), payload, env_SERVICE_NAME=tag,
                               network_io_direction="transmit") >= truth.tx, "round 2 exported")
        m = after_frames(exp)
        scraper.stop_flag = True
        scraper.join(10)
        exp.stop()
        env.stop()

    print(f"{scraper.n} scrapes during the test; reconnects "
          f"{total(m, 'taskmeter_exporter_reconnects_total'):.0f}, counting restarts "
          f"{total(m, 'taskmeter_exporter_counting_restarts_total'):.0f}")
    check_eq(scraper.errors, [], "failed scrapes")
    check_eq(scraper.bad, [], "counters that went backwards or vanished")
    check(scraper.n > 20, f"only {scraper.n} scrapes")
    for d, want in (("transmit", truth.tx), ("receive", truth.rx)):
        check_eq(total(m, payload, env_SERVICE_NAME=tag, network_io_direction=d), want,
                 f"{d} payload across the restart")
    check_eq(total(m, "taskmeter_exporter_reconnects_total"), 1, "reconnects")
    check_eq(total(m, "taskmeter_exporter_counting_restarts_total"), 1, "counting restarts")


def hang_up(port, how):
    """A client that asks for /metrics and then misbehaves."""
    s = socket.socket()
    if how != "silent":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect(("127.0.0.1", port))
    if how == "silent":
        return s  # connects, never sends a request
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    if how == "reset":
        s.recv(100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST mid-response
        return None
    return s  # "hung": never reads another byte


def test_bad_clients():
    """Clients that never read, that reset the connection mid-response, and
    that never send a request: the exporter keeps reading frames (the
    daemon drops none for it), serves others, and exits cleanly."""
    with Env(daemon_args=["--set", "socket_group=65534"], interval="100ms") as env:
        exp = Exporter(env, prom_labels="pid")
        # many series, so that a response is far larger than socket buffers
        sink = env.spawn([TRAFFIC, "udp-sink", "127.0.0.1", "7200", "1500"], env=clean_env())
        env.run([TRAFFIC, "fork-storm", "127.0.0.1", "7200", "1500", "10"], env=clean_env())
        env.finish(sink)
        wait_for(lambda: len(exp.scrape()[1]) > 400_000, "a large exposition")
        before = exp.metrics()
        held = [hang_up(exp.port, how) for how in ["hung"] * 5 + ["silent"] * 5]
        for _ in range(20):
            hang_up(exp.port, "reset")
        times = []
        for _ in range(10):
            t = time.time()
            exp.scrape(timeout=5)
            times.append(time.time() - t)
            time.sleep(0.3)
        after = exp.metrics()
        for s in held:
            s.close()
        check(exp.proc.poll() is None, "taskmeter prom died")
        exp.stop()
        env.stop()

    read = (total(before, "taskmeter_exporter_frames_read_total"),
            total(after, "taskmeter_exporter_frames_read_total"))
    print(f"scrapes with 10 bad clients held: max {max(times) * 1000:.0f} ms; "
          f"frames read {read[0]:.0f} -> {read[1]:.0f}")
    check(read[1] >= read[0] + 20, f"frames read while clients hung: {read}")
    check_eq(total(after, "taskmeter_exporter_frames_missed_total"), 0,
             "frames the daemon dropped for the exporter")
    check(max(times) < 2, f"scrape times {times}")


def dashboard_metrics():
    exprs = []

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("expr", "query") and isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(json.load(open(DASHBOARD)))
    return exprs, sorted({n for e in exprs for n in re.findall(r"\btaskmeter_[a-z0-9_]+", e)})


def test_dashboard_metrics_exist():
    """Every metric name the Grafana dashboard queries has samples in the
    exposition of an exporter watching a veth pair (so that the interface
    families are there), and the dashboard's reconciliation holds: per
    interface and direction, the records' bytes grew as much as the kernel's
    counter over a quiet window."""
    exprs, names = dashboard_metrics()
    check(len(names) >= 10, f"dashboard queries only {names}")
    with Env(daemon_args=["--set", "socket_group=65534", "--set", "interfaces=*"],
             interval="200ms") as env:
        peer = env.add_netns("peer")
        sh("ip", "link", "add", "tmd0", "netns", env.ns, "type", "veth", "peer", "name", "tmd1",
           "netns", peer)
        for ns, dev, ip in ((env.ns, "tmd0", "10.78.0.1/24"), (peer, "tmd1", "10.78.0.2/24")):
            # no IPv6: its router solicitations and MLD reports would go out
            # at moments of their own, maybe between two counter reads
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
            sh("ip", "-n", ns, "addr", "add", ip, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        exp = Exporter(env)
        sink = env.spawn([TRAFFIC, "udp-sink", "10.78.0.2", "7300", "50"], env=clean_env(),
                         ns=peer)
        wait_for(lambda: any(lb.get("interface") == "tmd0" for lb, _ in exp.metrics().get(
            "taskmeter_interface_kernel_packets_total", [])), "the veth in the exposition")
        m0 = after_frames(exp)
        env.run([TRAFFIC, "udp-blast", "10.78.0.2", "7300", "50", "1000"], env=clean_env())
        env.finish(sink)
        m1 = after_frames(exp)
        exp.stop()
        env.stop()

    missing = [n for n in names if n not in m1]
    print(f"dashboard queries {len(names)} metrics in {len(exprs)} expressions")
    check_eq(missing, [], "metrics the dashboard queries that have no samples")
    for d in ("transmit", "receive"):
        grew = [total(m, "taskmeter_interface_io_bytes_total", interface="tmd0",
                      network_io_direction=d) for m in (m0, m1)]
        kern = [total(m, "taskmeter_interface_kernel_io_bytes_total", interface="tmd0",
                      network_io_direction=d) for m in (m0, m1)]
        print(f"tmd0 {d}: records +{grew[1] - grew[0]:.0f}, kernel +{kern[1] - kern[0]:.0f}")
        check_eq(grew[1] - grew[0], kern[1] - kern[0], f"tmd0 {d}: records vs kernel growth")
    check(total(m1, "taskmeter_interface_io_bytes_total", interface="tmd0",
                network_io_direction="transmit", owner="process") >= 50 * 1000,
          "the blast on tmd0, owned by a process")


def test_http_paths_and_config():
    """An index page, 404 elsewhere, 405 for POST; --help tells the truth;
    a bad key exits 2."""
    with Env(daemon_args=["--set", "socket_group=65534"], interval="200ms") as env:
        exp = Exporter(env)
        with urllib.request.urlopen(exp.url("/"), timeout=5) as r:
            check("/metrics" in r.read().decode(), "index page links /metrics")
        for path, method, code in (("/nope", "GET", 404), ("/metrics", "POST", 405)):
            try:
                urllib.request.urlopen(urllib.request.Request(exp.url(path), method=method,
                                                              data=b"" if method == "POST"
                                                              else None), timeout=5)
                raise TestFailure(f"{method} {path} succeeded")
            except urllib.error.HTTPError as e:
                check_eq(e.code, code, f"{method} {path}")
        head = urllib.request.urlopen(urllib.request.Request(exp.url(), method="HEAD"),
                                      timeout=5)
        check_eq(head.status, 200, "HEAD /metrics")
        exp.stop()
        env.stop()
    helptext = subprocess.run([TASKMETER, "prom", "--help"], capture_output=True, text=True)
    check_eq(helptext.returncode, 0, "prom --help exit status")
    for opt in ("--config", "--listen", "--socket", "--set"):
        check(opt in helptext.stdout, f"--help lacks {opt}")
    bad = subprocess.run([TASKMETER, "prom", "--set", "prom_max_series=0"], capture_output=True,
                         text=True)
    check_eq(bad.returncode, 2, "exit status of a bad key")
    check("prom_max_series" in bad.stderr, f"message names the key: {bad.stderr!r}")
    bad = subprocess.run([TASKMETER, "prom", "--listen", "localhost:1"], capture_output=True,
                         text=True)
    check_eq(bad.returncode, 2, "exit status of a bad --listen")
