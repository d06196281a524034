# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""`taskmeter top` in a real terminal: a private tmux server per test runs
it against a collector in the test's namespace and cgroup; processes with
distinct names send known amounts; keys change the view; capture-pane
reads the screen, whose rows must show exactly what each process reports
it sent and received. Also: every line fits the terminal, the header
stays, the collector going away gives exit status 3 and a message (or,
with --wait, a reconnect), and dump does the same."""
import os
import random
import re
import shlex
import signal
import subprocess
import time
import unicodedata

from tmtest import (Env, TASKMETER, TRAFFIC, TestFailure, check, check_eq, clean_env, sh)

WAIT = 15


def width(text):
    """Columns on the terminal (East Asian wide characters take two)."""
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class Tmux:
    """One detached session of a tmux server of our own (its own socket,
    no config); the command's exit status and stderr land in files."""

    def __init__(self, env, cols, rows, args, extra_env=None):
        self.env = env
        self.cols, self.rows = cols, rows
        self.name = f"tmtop-{os.getpid()}-{random.randrange(1 << 30):x}"
        self.rc_path = os.path.join(env.dir, f"{self.name}.rc")
        self.err_path = os.path.join(env.dir, f"{self.name}.err")
        envs = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        envs.update(extra_env or {})
        # env(1) inside the pane: tmux sets TERM itself
        argv = ["env"] + [f"{k}={v}" for k, v in envs.items()] + \
            [TASKMETER, "top", "--socket", env.sock] + args
        script = (" ".join(shlex.quote(a) for a in argv) +
                  f" 2>{shlex.quote(self.err_path)}; echo $? >{shlex.quote(self.rc_path)}")
        self.tmux("new-session", "-d", "-x", str(cols), "-y", str(rows), "-s", "top",
                  "sh", "-c", script)

    def tmux(self, *args, check_rc=True):
        p = subprocess.run(["tmux", "-u", "-L", self.name, "-f", "/dev/null"] + list(args),
                           capture_output=True, text=True)
        if check_rc and p.returncode:
            raise TestFailure(f"tmux {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "top", *keys)

    def screen(self, escapes=False):
        """The pane's lines; wrapped lines joined, so a line that wrapped
        shows as one wider than the terminal."""
        out = self.tmux("capture-pane", "-p", "-J", *(["-e"] if escapes else []), "-t", "top")
        return out.split("\n")[:-1] if out.endswith("\n") else out.split("\n")

    def stable_screen(self):
        """A capture can catch top in the middle of a redraw: take one that
        two captures in a row agree on."""
        lines = self.screen()
        for _ in range(50):
            time.sleep(0.03)
            again = self.screen()
            if again == lines:
                return lines
            lines = again
        return lines

    def wait(self, pred, what, timeout=WAIT):
        deadline = time.time() + timeout
        lines = []
        while time.time() < deadline:
            if os.path.exists(self.rc_path):
                raise TestFailure(f"top exited ({self.status()}) waiting for {what}: "
                                  f"{self.stderr()}")
            lines = self.stable_screen()
            try:
                if pred(lines):
                    return lines
            except TestFailure:  # not drawn yet
                pass
            time.sleep(0.1)
        raise TestFailure(f"screen never showed {what}:\n" + "\n".join(lines))

    def exit_status(self, timeout=WAIT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.rc_path):
                txt = open(self.rc_path).read().strip()
                if txt:
                    return int(txt)
            time.sleep(0.05)
        raise TestFailure("top did not exit:\n" + "\n".join(self.screen()))

    def status(self):
        return open(self.rc_path).read().strip() if os.path.exists(self.rc_path) else None

    def stderr(self):
        return open(self.err_path).read() if os.path.exists(self.err_path) else ""

    def close(self):
        self.tmux("kill-server", check_rc=False)
        # a server that exits leaves its socket file: remove ours
        sock = os.path.join(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}",
                            self.name)
        if os.path.exists(sock):
            os.unlink(sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---- reading the screen ----
def check_fits(t, lines):
    check(len(lines) <= t.rows, f"{len(lines)} lines on a {t.rows}-line terminal")
    for line in lines:
        check(width(line) <= t.cols, f"line wider than {t.cols} columns: {line!r}")


def header(lines):
    for i, line in enumerate(lines):
        if re.match(r"\s*(PID|PROCS|RX )", line):
            return i
    raise TestFailure("no table header on screen:\n" + "\n".join(lines))


def columns(head):
    """label -> (start, end) of every column label of a header line."""
    labels = ["PID", "S", "USER", "COMM", "PROCS", "CMDLINE", "SERVICE", "CONTAINER",
              "CGROUP"] + [f"{d} {u}{r}" for d in ("RX", "TX") for u in ("IP", "PAY")
                           for r in ("/s", "")]
    out = {}
    for lab in labels:
        m = re.search(rf"(?<!\S){re.escape(lab)}(?!\S)", head)
        if m:
            out[lab] = (m.start(), m.end())
    return out


def cell(row, cols, label):
    """A right-aligned column ends where its label ends; a left-aligned one
    starts where its label starts (a name: one word here)."""
    start, end = cols[label]
    if label in ("COMM", "USER", "S", "CMDLINE", "SERVICE", "CONTAINER", "CGROUP"):
        rest = row[start:].split()
        return rest[0] if rest and (label != "S" or row[start] != " ") else ""
    words = row[:end].split()
    return words[-1] if words and (end == len(row) or row[end] == " ") else ""


def table(lines):
    """The rows under the header: [{label: text}], the total row first."""
    h = header(lines)
    cols = columns(lines[h])
    rows = []
    for line in lines[h + 1:]:
        if not line.strip() or line.startswith(("interfaces since", "h help", "filter:")):
            break
        rows.append({lab: cell(line, cols, lab) for lab in cols} | {"line": line})
    return rows


def rows_by(lines, key):
    return {r[key]: r for r in table(lines)[1:]}


def status_line(lines):
    return lines[1]


# ---- known traffic ----
class Proc:
    """A process of the scenario: its name (comm), its report."""

    def __init__(self, name, rep):
        self.name, self.rx, self.tx = name, rep["received"], rep["sent"] + rep["retrans"]
        self.pid = rep["pid"]


def named(env, name):
    """tm_traffic under another name: comm comes from the file name."""
    os.chmod(env.dir, 0o755)  # for the processes that run as nobody
    path = os.path.join(env.dir, name)
    if not os.path.exists(path):
        os.symlink(TRAFFIC, path)
    return path


def lingering(**kw):
    # alive for the whole test: exited processes are hidden by default
    return clean_env(TM_LINGER_MS="120000", **kw)


def report_of(p):
    line = p.stdout.readline()
    m = re.match(r"pid=(\d+) sent=(\d+) received=(\d+) retrans=(\d+)", line)
    if not m:
        raise TestFailure(f"no report: {line!r} {p.stderr.read() if p.poll() is not None else ''}")
    pid, sent, received, retrans = map(int, m.groups())
    return {"pid": pid, "sent": sent, "received": received, "retrans": retrans}


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def tcp_pair(env, srv, cli, port, up, down, cgroup=None, user=()):
    s = env.spawn(list(user) + [named(env, srv), "tcp-serve", "127.0.0.1", str(port), str(down)],
                  env=lingering(), cgroup=cgroup)
    c = env.spawn(list(user) + [named(env, cli), "tcp-send", "127.0.0.1", str(port), str(up),
                                "tag-" + cli], env=lingering(), ready=None, cgroup=cgroup)
    crep = report_of(c)
    return Proc(srv, report_of(s)), Proc(cli, crep)


def udp_pair(env, srv, cli, port, count, size, cgroup=None, user=()):
    s = env.spawn(list(user) + [named(env, srv), "udp-recv", "127.0.0.1", str(port), str(count)],
                  env=lingering(), cgroup=cgroup)
    c = env.spawn(list(user) + [named(env, cli), "udp-send", "127.0.0.1", str(port), str(count),
                                str(size)], env=lingering(), ready=None, cgroup=cgroup)
    crep = report_of(c)
    return Proc(srv, report_of(s)), Proc(cli, crep)


CONTAINER = "docker-" + "c0ffee12" * 8 + ".scope"


def scenario(env, hostile=False):
    """Three TCP pairs, one UDP pair (as nobody), one process that exits,
    in cgroups that name two services and a container; and a swarm of
    50 small senders (64 bytes a second each) that outnumber the
    terminal's rows."""
    web = env.add_cgroup("web.service")
    db = env.add_cgroup("db.service")
    box = env.add_cgroup(CONTAINER)
    procs = []
    procs += tcp_pair(env, "alpha", "bravo", 5001, 300_000, 40_000, cgroup=web)
    procs += tcp_pair(env, "charlie", "delta", 5002, 120_000, 9_999, cgroup=db)
    procs += tcp_pair(env, "echo", "foxtrot", 5003, 77_777, 1_234, cgroup=box)
    srv, cli = udp_pair(env, "golf", "hotel", 5004, 20, 1000, user=NOBODY)
    procs += [srv, cli]
    gone = env.run([named(env, "india"), "udp-once", "127.0.0.1", "5009", "555"],
                   env=clean_env())
    exited = Proc("india", gone)
    if hostile:
        s = env.spawn([named(env, "juliet"), "tcp-serve", "127.0.0.1", "5005", "2222"],
                      env=lingering())
        c = env.spawn([named(env, "kilo"), "tcp-send", "127.0.0.1", "5005", "3333",
                       "\x1b[2J\x1b[H\x1b]0;pwned\x07", "日本語のテキスト" * 8, "\u202eevil"],
                      env=lingering(), ready=None)
        krep = report_of(c)
        procs += [Proc("juliet", report_of(s)), Proc("kilo", krep)]
    # to a closed port: no receiver whose total could outgrow the known rows
    env.spawn([named(env, "swarm"), "swarm", "127.0.0.1", "5010", "50", "1000"],
              ready="ready", stdin=subprocess.PIPE)
    return procs, exited


def check_rows(rows, procs, what, rx="RX PAY", tx="TX PAY"):
    for p in procs:
        check(p.name in rows, f"{what}: no row for {p.name}")
        r = rows[p.name]
        check_eq((int(r[rx]), int(r[tx])), (p.rx, p.tx),
                 f"{what}: {p.name} (pid {p.pid}) {rx}, {tx}")
        if "PID" in r:
            check_eq(int(r["PID"]), p.pid, f"{what}: {p.name} pid")


def shows_rows(names):
    return lambda lines: all(n in rows_by(lines, "COMM") for n in names)


def rows_match(procs, rx="RX PAY", tx="TX PAY"):
    """The screen shows every report exactly (a frame read before the
    last bytes were counted may come first)."""
    def pred(lines):
        rows = rows_by(lines, "COMM")
        return all(p.name in rows and (int(rows[p.name][rx]), int(rows[p.name][tx])) ==
                   (p.rx, p.tx) for p in procs)
    return pred


def by_total(procs, key):
    # ties (the two ends of a TCP pair) go by name, as top breaks them
    return [p.name for p in sorted(procs, key=lambda p: (-key(p), p.name))]


def stage_cumulative(t, procs):
    """Payload, exact counts, cumulative sort: the rows are the reports,
    the top talkers first, the table filling the screen under its header."""
    room = t.rows - 5
    t.keys("p", "u", "c")
    # (the swarm's 50 records may take a frame or two to appear)
    lines = t.wait(lambda ls: "sort rx+tx total" in status_line(ls) and
                   "payload" in status_line(ls) and shows_rows([p.name for p in procs])(ls)
                   and len(table(ls)) - 1 == room, "payload, exact, cumulative")
    check_fits(t, lines)
    shown = table(lines)[1:]
    check_eq([r["COMM"] for r in shown[:len(procs)]], by_total(procs, lambda p: p.rx + p.tx),
             "rows in rx+tx total order")
    check_rows(rows_by(lines, "COMM"), procs, "process view")
    check(lines[0].startswith("taskmeter "), f"title line: {lines[0]!r}")
    check(re.search(rf"rows 1-{room} of \d+", status_line(lines)), status_line(lines))
    check("india" not in rows_by(lines, "COMM"), "an exited process shown by default")
    check("1 exited hidden" in status_line(lines), status_line(lines))
    print("\n".join(lines))


def stage_sorts(t, procs):
    for key, sort, total in (("t", "tx total", lambda p: p.tx), ("r", "rx total", lambda p: p.rx)):
        t.keys(key)
        lines = t.wait(lambda ls: f"sort {sort}" in status_line(ls), f"sort {sort}")
        got = [r["COMM"] for r in table(lines)[1:]][:len(procs)]
        check_eq(got, by_total(procs, total), f"rows in {sort} order")
    t.keys("b")


def stage_filter(t, procs):
    """One process, and the total is its own; Esc puts the old filter back."""
    t.keys("/", "bravo", "Enter")
    lines = t.wait(lambda ls: 'filter "bravo"' in status_line(ls) and len(table(ls)) == 2,
                   "the filter")
    tab = table(lines)
    bravo = next(p for p in procs if p.name == "bravo")
    check_eq((tab[1]["COMM"], int(tab[0]["RX PAY"]), int(tab[0]["TX PAY"])),
             ("bravo", bravo.rx, bravo.tx), "filtered row and total")
    t.keys("/", "C-u", "Enter")
    t.wait(lambda ls: "filter" not in status_line(ls), "no filter")
    t.keys("/", "zzz")
    t.wait(lambda ls: 'filter "zzz"' in status_line(ls) and ls[-1].startswith("filter: zzz"),
           "the filter being typed")
    t.keys("Escape")
    t.wait(lambda ls: "filter" not in status_line(ls) and len(table(ls)) > 2, "Esc: no filter")


def stage_help(t):
    t.keys("h")
    t.wait(lambda ls: ls[0].startswith("taskmeter top: keys"), "the help screen")
    t.keys("Space")
    t.wait(lambda ls: ls[0].startswith("taskmeter "), "back from help")


def stage_exited(t, exited):
    t.keys("x")
    t.wait(lambda ls: "exited shown" in status_line(ls), "exited shown")
    t.keys("/", "india", "Enter")
    lines = t.wait(lambda ls: "india" in rows_by(ls, "COMM"), "the exited process")
    row = rows_by(lines, "COMM")["india"]
    check_eq((row["S"], int(row["TX PAY"]), int(row["PID"])), ("x", exited.tx, exited.pid),
             "exited row")
    t.keys("/", "C-u", "Enter", "x")
    t.wait(lambda ls: "exited hidden" in status_line(ls) and "filter" not in status_line(ls),
           "exited hidden again")


def group_check(t, key, label, expect):
    """g to the next grouping; each expected group sums its members."""
    t.keys("g")
    lines = t.wait(lambda ls: f"group {key}" in status_line(ls), f"group {key}")
    check_fits(t, lines)
    groups = {r[label]: r for r in table(lines)[1:]}
    for name, members in expect.items():
        match = [k for k in groups if k.endswith(name)]  # cut names keep their end
        check(match, f"group {key}: no row {name}: {sorted(groups)}")
        r = groups[match[0]]
        check_eq((int(r["PROCS"]), int(r["RX PAY"]), int(r["TX PAY"])),
                 (len(members), sum(p.rx for p in members), sum(p.tx for p in members)),
                 f"group {key} {name}")
    print("\n".join(lines))


def stage_groups(t, procs):
    by = {p.name: p for p in procs}
    web, db = [by["alpha"], by["bravo"]], [by["charlie"], by["delta"]]
    box = [by["echo"], by["foxtrot"]]
    group_check(t, "service", "SERVICE", {"web.service": web, "db.service": db})
    group_check(t, "container", "CONTAINER", {"docker:c0ffee12c0ff": box})
    group_check(t, "cgroup", "CGROUP", {"/web.service": web, CONTAINER[-20:]: box})
    group_check(t, "user", "USER", {"nobody": [by["golf"], by["hotel"]]})
    t.keys("g")
    t.wait(lambda ls: "group process" in status_line(ls), "group process")


def stage_ip_bytes(t):
    """IP bytes: UDP datagrams are exact, payload + 28 each."""
    t.keys("p")
    lines = t.wait(lambda ls: "IP bytes" in status_line(ls) and
                   {"golf", "hotel"} <= set(rows_by(ls, "COMM")), "IP bytes")
    for name in ("golf", "hotel"):
        r = rows_by(lines, "COMM")[name]
        check_eq((int(r["RX IP"]), int(r["TX IP"])), (20 * 1028, 20 * 1028), f"{name} IP bytes")


def stage_scroll_resize(t):
    """The header stays while the rows scroll; the screen follows a resize
    (SIGWINCH, KEY_RESIZE)."""
    def at_end(ls):
        m = re.search(r"rows (\d+)-(\d+) of (\d+)", status_line(ls))
        return m and int(m[1]) > 1 and m[2] == m[3]
    t.keys("End")
    lines = t.wait(at_end, "scrolled to the end")
    check_fits(t, lines)
    header(lines)
    t.keys("Home")
    t.cols, t.rows = t.cols + 40, t.rows + 10  # still fewer rows than processes
    t.tmux("resize-window", "-t", "top", "-x", str(t.cols), "-y", str(t.rows))
    lines = t.wait(lambda ls: len(ls) == t.rows and f"rows 1-{t.rows - 5} of" in status_line(ls),
                   "the resized screen")
    check_fits(t, lines)
    check_eq(len(table(lines)) - 1, t.rows - 5, "rows after the resize")


def run_screen(cols, rows, hostile=False):
    with Env(daemon_args=["--set", "exited_ttl=120"]) as env:
        procs, exited = scenario(env, hostile)
        with Tmux(env, cols, rows, []) as t:
            # The defaults: rate sort, IP bytes, human units.
            lines = t.wait(lambda ls: "swarm" in rows_by(ls, "COMM"), "the swarm")
            check_fits(t, lines)
            check("RX IP/s" in lines[header(lines)], f"header: {lines[header(lines)]!r}")
            stage_cumulative(t, procs)
            stage_sorts(t, procs)
            stage_filter(t, procs)
            stage_help(t)
            stage_exited(t, exited)
            stage_groups(t, procs)
            stage_ip_bytes(t)
            stage_scroll_resize(t)
            t.keys("q")
            check_eq(t.exit_status(), 0, "exit status after q")
            check_eq(t.stderr(), "", "stderr after q")
        env.stop()


def test_screen_80x24():
    run_screen(80, 24)


def test_screen_200x50_hostile_names():
    run_screen(200, 50, hostile=True)


def test_interfaces_panel():
    """A veth pair to a peer namespace: per interface the records gain
    what the kernel counts; the buckets are there by name."""
    with Env(start=False) as env:
        peer = env.add_netns("peer")
        sh("ip", "link", "add", "tv0", "netns", env.ns, "type", "veth", "peer", "name", "tv1",
           "netns", peer)
        for ns, dev, addr in ((env.ns, "tv0", "10.9.0.1/24"), (peer, "tv1", "10.9.0.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        env.start_daemon(extra=["--set", f"netns={env.ns},{peer}", "--set", "interfaces=*"])
        with Tmux(env, 80, 24, ["--interfaces", "--exact"]) as t:
            t.wait(lambda ls: any(l.startswith("tv0 ") for l in ls), "the interfaces")
            srv = env.spawn([named(env, "papa"), "tcp-serve", "10.9.0.2", "6001", "50000"],
                            env=clean_env(), ns=peer)
            env.run([named(env, "quebec"), "tcp-send", "10.9.0.2", "6001", "250000"],
                    env=clean_env())
            env.finish(srv)
            env.run([TRAFFIC, "udp-blast", "10.9.0.2", "6999", "5", "300"], env=clean_env())
            env.wait_frames(3)

            def reconciled(ls):
                ifs = [l.split() for l in ls if l.startswith(("tv0 ", "tv1 "))]
                return len(ifs) == 2 and all(f[-1] == "ok" and int(f[-5]) > 250000 or
                                             f[-1] == "ok" and int(f[-3]) > 250000
                                             for f in ifs)
            lines = t.wait(reconciled, "tv0 and tv1 reconciled")
            check_fits(t, lines)
            print("\n".join(lines))
            head = next(l for l in lines if l.startswith("IFACE")).rstrip()
            check(head.endswith("RX REC RX KERNEL TX REC TX KERNEL REC-KERNEL"), head)
            for l in lines:
                if l.startswith(("tv0 ", "tv1 ")):
                    f = l.split()
                    # RX REC = RX KERNEL, TX REC = TX KERNEL
                    check_eq((f[-5], f[-3]), (f[-4], f[-2]), f"records vs kernel: {l!r}")
            for name in ("forwarded", "local without owner", "non-IP", "malformed",
                         "overflow", "unattributed"):
                check(any(l.startswith(name) for l in lines), f"bucket {name} not shown")
            # closed-port datagrams, received on tv1 with no owner
            local = next(l for l in lines if l.startswith("local without owner")).split()
            check(local[3] == "iface" and int(local[-2]) >= 5 * (300 + 28),
                  f"closed-port datagrams: {local}")
            t.keys("q")
            check_eq(t.exit_status(), 0, "exit status after q")
        # The text dump names the buckets and shows the interfaces.
        p = subprocess.run([TASKMETER, "dump", "--socket", env.sock, "--count", "1"],
                           capture_output=True, text=True, timeout=20)
        check_eq(p.returncode, 0, "dump --count 1")
        for want in ("  interface tv0 netns ", "  interface tv1 netns ", "- (local without owner)",
                     "- (non-IP)"):
            check(want in p.stdout, f"dump lacks {want!r}:\n{p.stdout}")
        env.stop()


def test_daemon_stops_under_top():
    with Env() as env:
        with Tmux(env, 80, 24, []) as t:
            t.wait(lambda ls: ls and ls[0].startswith("taskmeter "), "the first frame")
            env.stop()
            check_eq(t.exit_status(), 3, "top's exit status when taskmeterd stops")
            err = t.stderr()
            check("taskmeterd closed the stream" in err, f"top's stderr: {err!r}")


def test_wait_reconnects_to_restarted_daemon():
    with Env() as env:
        with Tmux(env, 100, 30, ["--wait", "30", "--exact", "--payload", "--sort", "cum"]) as t:
            t.wait(lambda ls: ls and ls[0].startswith("taskmeter "), "the first frame")
            env.stop()
            t.wait(lambda ls: "RECONNECTING" in ls[0], "RECONNECTING")
            env.start_daemon()
            srv = env.spawn([named(env, "romeo"), "tcp-serve", "127.0.0.1", "5001", "4321"],
                            env=lingering())
            cli = env.spawn([named(env, "sierra"), "tcp-send", "127.0.0.1", "5001", "65432"],
                            env=lingering(), ready=None)
            crep, srep = report_of(cli), report_of(srv)
            procs = [Proc("romeo", srep), Proc("sierra", crep)]
            try:
                lines = t.wait(rows_match(procs), "traffic after the restart")
            except TestFailure:
                lines = t.stable_screen()
                check_rows(rows_by(lines, "COMM"), procs, "after reconnecting")
                raise
            check("RECONNECTING" not in lines[0], lines[0])
            t.keys("q")
            check_eq(t.exit_status(), 0, "exit status after q")
        env.stop()


def test_wait_gives_up():
    with Env() as env:
        with Tmux(env, 80, 24, ["--wait", "1"]) as t:
            t.wait(lambda ls: ls and ls[0].startswith("taskmeter "), "the first frame")
            env.stop()
            check_eq(t.exit_status(timeout=10), 3, "exit status when nobody came back")
            check("no taskmeterd came back within 1 s" in t.stderr(), t.stderr())


def test_no_color():
    with Env() as env:
        for args, extra, colored in (([], {}, True), (["--no-color"], {}, False),
                                     ([], {"NO_COLOR": "1"}, False),
                                     ([], {"TERM": "dumb"}, False)):
            with Tmux(env, 80, 24, args, extra_env=extra) as t:
                t.wait(lambda ls: any(l.startswith("taskmeter ") for l in ls), "a frame")
                raw = "\n".join(t.screen(escapes=True))
                # SGR colors: 30-37/40-47 (and 38/48 extended)
                has = bool(re.search(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|4[0-8])[;m]", raw))
                check_eq(has, colored, f"colors with {args} {extra}")
                if extra.get("TERM") == "dumb":
                    # no curses at all: plain snapshots, one per frame
                    check("\x1b[7m" not in raw, "TERM=dumb: reverse video")
        env.stop()


def test_once_batch_fits_width():
    with Env() as env:
        srv = env.spawn([named(env, "tango"), "tcp-serve", "127.0.0.1", "5001", "1111"],
                        env=lingering())
        cli = env.spawn([named(env, "uniform"), "tcp-send", "127.0.0.1", "5001", "22222",
                         "x" * 300], env=lingering(), ready=None)
        crep, srep = report_of(cli), report_of(srv)
        env.wait_frames(2)
        for w in (40, 60, 132):
            p = subprocess.run([TASKMETER, "top", "--socket", env.sock, "--once", "--width", str(w),
                                "-p", "-e", "--sort", "cum", "-i"],
                               capture_output=True, text=True, timeout=20)
            check_eq((p.returncode, p.stderr), (0, ""), f"--once --width {w}")
            lines = p.stdout.splitlines()
            for line in lines:
                check(width(line) <= w, f"--width {w}: {line!r}")
            check("\x1b" not in p.stdout, "escape sequences in batch output")
            if w >= 60:
                check_rows(rows_by(lines, "COMM"), [Proc("tango", srep), Proc("uniform", crep)],
                           f"--once --width {w}")
            print(p.stdout)
        p = subprocess.run([TASKMETER, "top", "--help"], capture_output=True, text=True)
        check_eq(p.returncode, 0, "top --help")
        for word in ("keys:", "exit status:", "--once", "--wait", "RECONNECTING", "payload"):
            check(word in p.stdout, f"top --help lacks {word!r}")
        p = subprocess.run([TASKMETER, "dump", "--help"], capture_output=True, text=True)
        check("exit status:" in p.stdout and "  3  " in p.stdout, "dump --help: exit status")
        p = subprocess.run([TASKMETER, "top", "--sort", "bogus"], capture_output=True, text=True)
        check_eq(p.returncode, 2, "top --sort bogus")
        env.stop()


def test_dump_daemon_dies():
    """SIGKILL: no final frame, no goodbye; dump says so and exits 3."""
    with Env() as env:
        err_path = os.path.join(env.dir, "dump2.err")
        dump = subprocess.Popen([TASKMETER, "dump", "--socket", env.sock],
                                stdout=subprocess.DEVNULL, stderr=open(err_path, "w"))
        env.children.append(dump)
        env.wait_frames(2)
        env.daemon.send_signal(signal.SIGKILL)
        env.daemon.wait()
        check_eq(dump.wait(timeout=10), 3, "dump's exit status when taskmeterd is killed")
        err = open(err_path).read()
        check("taskmeterd" in err and "stream" in err, f"dump's stderr: {err!r}")
        check_eq(env.dump.wait(timeout=10), 3, "dump --json exit status")
        env.dump = None
        # killed, the collector leaves its programs counting for the next one
        check("tm_cgskb" in sh("bpftool", "cgroup", "show", env.cg), "programs gone at kill -9")
        env.start_daemon(dump_path=env.dump_path + ".2")
        env.stop()


def test_dump_wait_reconnects():
    with Env() as env:
        out_path = os.path.join(env.dir, "dump2.jsonl")
        err_path = os.path.join(env.dir, "dump2.err")
        dump = subprocess.Popen([TASKMETER, "dump", "--json", "--wait", "30", "--socket",
                                 env.sock], stdout=open(out_path, "w"),
                                stderr=open(err_path, "w"))
        env.children.append(dump)
        env.wait_frames(2)
        env.stop()
        env.start_daemon()
        deadline = time.time() + WAIT
        seqs = []
        while time.time() < deadline:
            seqs = [int(m) for m in re.findall(r'"seq":"?(\d+)', open(out_path).read())]
            if any(b < a for a, b in zip(seqs, seqs[1:])) and seqs[-1] >= 2:
                break
            time.sleep(0.1)
        check(any(b < a for a, b in zip(seqs, seqs[1:])), f"no frames after the restart: {seqs}")
        err = open(err_path).read()
        check("reconnecting for up to 30 s" in err and "reconnected to" in err, err)
        dump.send_signal(signal.SIGINT)
        check_eq(dump.wait(timeout=10), 0, "dump exit status after SIGINT")
        env.stop()
