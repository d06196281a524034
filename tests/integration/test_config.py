# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Configuration errors: exit 2 with the file, line, key and why, before
anything is attached or any socket is made; --check-config and --help."""
import contextlib
import os
import random
import re
import shutil
import subprocess
import tempfile

from tmtest import (ROOT, TASKMETERD, cgroup2_mount, check, check_eq, make_test_cgroup,
                    remove_test_cgroup, sh)

CONFIG_EXAMPLE = os.path.join(ROOT, "configs", "taskmeter.conf")


@contextlib.contextmanager
def scratch():
    """A cgroup of our own (no daemon is meant to attach to it, but if one
    does, it is not the host's) and a temp dir for config files and sockets."""
    rel, cg = make_test_cgroup(f"cfg-{os.getpid()}-{random.randrange(1 << 30):x}")
    tmp = tempfile.mkdtemp(prefix="taskmeter-test-")
    try:
        yield rel, cg, tmp
    finally:
        remove_test_cgroup(cg)
        shutil.rmtree(tmp, ignore_errors=True)


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def run_daemon(args, timeout=15):
    try:
        p = subprocess.run([TASKMETERD] + args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"taskmeterd {args} kept running: the error was not caught")
    print(f"taskmeterd {' '.join(args)}: exit {p.returncode}\n{p.stderr}")
    return p


def check_nothing_made(cg, sock):
    check_eq(sh("bpftool", "cgroup", "show", cg).strip(), "", f"programs attached to {cg}")
    check(not os.path.exists(sock), f"socket {sock} exists")


def check_config_error(args, cg, sock, want):
    """Exit 2, exactly `want` on stderr and nothing on stdout, nothing made."""
    p = run_daemon(args)
    check_eq(p.returncode, 2, f"exit status of taskmeterd {' '.join(args)}")
    check_eq(p.stderr, want + "\n", "stderr")
    check_eq(p.stdout, "", "stdout")
    check_nothing_made(cg, sock)


def test_bad_value_in_file():
    with scratch() as (cg_rel, cg, tmp):
        sock = os.path.join(tmp, "tm.sock")
        conf = write(tmp, "bad.conf", "# test config\nsocket_mode = 0600\ninterval = 5x\n"
                     "argv_max = 128\n")
        want = (f"taskmeterd: {conf}:3: interval: '5x' is not a duration "
                "(use 500ms, 2s or a number of seconds)")
        check_config_error(["-c", conf, "--cgroup", cg_rel, "--socket", sock], cg, sock, want)
        # the same with the cgroup given as an absolute path, and --check-config
        check_config_error(["-c", conf, "--cgroup", cg, "--socket", sock], cg, sock, want)
        check_config_error(["-c", conf, "--check-config"], cg, sock, want)


def test_unknown_and_duplicate_keys():
    with scratch() as (cg_rel, cg, tmp):
        sock = os.path.join(tmp, "tm.sock")
        common = ["--cgroup", cg_rel, "--socket", sock]
        conf = write(tmp, "unknown.conf", "interval = 1s\ncolour = blue\n")
        check_config_error(["-c", conf] + common, cg, sock,
                           f"taskmeterd: {conf}:2: colour: unknown key")
        conf = write(tmp, "dup.conf", "interval = 1s\nsocket_mode = 0600\n\n"
                     "  interval = 2s  # again\n")
        check_config_error(["-c", conf] + common, cg, sock,
                           f"taskmeterd: {conf}:4: interval: set twice (first on line 1)")


def test_bad_command_line_values():
    with scratch() as (cg_rel, cg, tmp):
        sock = os.path.join(tmp, "tm.sock")
        empty = write(tmp, "empty.conf", "")  # not /etc/taskmeter/taskmeter.conf
        common = ["-c", empty, "--cgroup", cg_rel, "--socket", sock]
        cases = [
            (["--set", "subscriber_queue=0"],
             "taskmeterd: command line: subscriber_queue: 0 is out of range (1..1024)"),
            (["--set", "ringbuf_kib=100"],
             "taskmeterd: command line: ringbuf_kib: 100 is not a power of two"),
            (["--set", "no_such_key=1"], "taskmeterd: command line: no_such_key: unknown key"),
            (["--set", "interval"], "taskmeterd: --set interval: expected KEY=VALUE"),
            (["--metadata", "kprobe"],
             "taskmeterd: command line: metadata: 'kprobe' is not one of task_work, procfs"),
            (["--metadata", ""], "taskmeterd: command line: metadata: empty value"),
            (["--interval", "50ms"],
             "taskmeterd: command line: interval: 50ms is out of range (100ms..3600s)"),
        ]
        for extra, want in cases:
            check_config_error(common + extra, cg, sock, want)
        # a valid file does not rescue a bad override
        good = write(tmp, "good.conf", "interval = 1s\n")
        check_config_error(["-c", good, "--cgroup", cg_rel, "--socket", sock,
                            "--metadata", "kprobe"], cg, sock,
                           "taskmeterd: command line: metadata: 'kprobe' is not one of "
                           "task_work, procfs")


def test_check_config_example():
    p = run_daemon(["-c", CONFIG_EXAMPLE, "--check-config"])
    check_eq((p.returncode, p.stdout, p.stderr), (0, "configuration OK\n", ""),
             "--check-config on configs/taskmeter.conf")


# What --help must document: the options the README and the units use.
DOCUMENTED = [
    ("-c", "--config", "FILE"), (None, "--cgroup", "PATH"), (None, "--socket", "PATH"),
    (None, "--interval", "DUR"), (None, "--metadata", "MODE"), (None, "--instance", "NAME"),
    (None, "--set", "KEY=VALUE"), (None, "--keep-state", None), (None, "--remove-state", None),
    (None, "--check-config", None), (None, "--print-memory", None), ("-v", "--verbose", None),
    ("-V", "--version", None), ("-h", "--help", None),
]
# A harmless argument for each option that takes one, to see it accepted.
SAMPLE_ARGS = {"FILE": CONFIG_EXAMPLE, "PATH": "/x", "DUR": "1s", "MODE": "procfs",
               "NAME": "x", "KEY=VALUE": "interval=2s"}


def test_help_lists_every_option():
    """--help shows every documented option, and every option it shows is one
    the daemon takes (checked by running it, not by reading its source)."""
    p = run_daemon(["--help"])
    check_eq((p.returncode, p.stderr), (0, ""), "--help exit status and stderr")
    text = p.stdout
    for short, long, arg in DOCUMENTED:
        shown = f"{short}, {long}" if short else long
        check(re.search(re.escape(shown) + (rf" {re.escape(arg)}\b" if arg else r"(\s|$)"), text),
              f"--help does not show {shown}{' ' + arg if arg else ''}")
    shown = set(re.findall(r"(?m)^\s+(?:-\w, )?(--[a-z-]+)(?: ([A-Z=]+))?", text))
    check(len(shown) >= len(DOCUMENTED), f"options found in --help: {sorted(shown)}")
    with tempfile.TemporaryDirectory() as not_bpffs:
        for long, arg in shown:
            argv = [long] + ([SAMPLE_ARGS[arg]] if arg else [])
            if long not in ("--help", "--version", "--remove-state", "--print-memory"):
                argv.append("--check-config")
            # --remove-state on a directory that is no bpffs: refused, host untouched
            p = run_daemon(argv + ["--set", f"pin_root={not_bpffs}"])
            check("unrecognized option" not in p.stderr and "--help" not in p.stderr,
                  f"{argv}: {p.stderr!r}")
            if long == "--remove-state":
                check(p.returncode != 0 and "bpffs" in p.stderr, f"{argv}: {p.stderr!r}")
    # the short forms --help shows do what their long forms do
    shorts = dict(re.findall(r"(?m)^\s+(-\w), (--[a-z-]+)", text))
    check_eq(sorted(shorts), sorted(sh for sh, _, _ in DOCUMENTED if sh), "short options shown")
    p = run_daemon(["-c", CONFIG_EXAMPLE, "--check-config"])
    check_eq((p.returncode, p.stdout), (0, "configuration OK\n"), "-c FILE --check-config")
    p = run_daemon(["-c", "/nonexistent/taskmeter.conf", "--check-config"])
    check(p.returncode == 2 and "/nonexistent/taskmeter.conf" in p.stderr,
          f"-c with a missing file: {p.returncode} {p.stderr!r}")
    p = run_daemon(["-v", "-c", CONFIG_EXAMPLE, "--check-config"])
    check_eq(p.returncode, 0, "-v --check-config")
    p = run_daemon(["-h"])
    check_eq((p.returncode, p.stdout), (0, text), "-h")
    p = run_daemon(["--version"])
    check(p.returncode == 0 and re.match(r"taskmeterd \d+\.\d+\.\d+ ", p.stdout),
          f"--version: {p.returncode} {p.stdout!r}")
    check_eq(run_daemon(["-V"]).stdout, p.stdout, "-V")
    p = run_daemon(["--no-such-option"])
    check(p.returncode == 2 and "unrecognized option '--no-such-option'" in p.stderr
          and "taskmeterd --help" in p.stderr and len(p.stderr.splitlines()) == 2,
          f"unknown option: {p.stderr!r}")


def test_missing_cgroup():
    with scratch() as (cg_rel, cg, tmp):
        sock = os.path.join(tmp, "tm.sock")
        empty = write(tmp, "empty.conf", "")
        missing = f"{cg_rel}-does-not-exist"
        missing_abs = os.path.join(cgroup2_mount(), missing)
        for given in (missing, missing_abs):
            p = run_daemon(["-c", empty, "--cgroup", given, "--socket", sock])
            check(p.returncode != 0, f"--cgroup {given}: exit status 0")
            check(f"opening cgroup {missing_abs}: No such file or directory" in p.stderr,
                  f"stderr does not name {missing_abs} and why: {p.stderr!r}")
            check(not os.path.exists(sock), f"socket {sock} left behind")
            check(not os.path.exists(missing_abs), f"{missing_abs} was created")
            check_eq(os.listdir(tmp), ["empty.conf"], f"files left in {tmp}")


def test_unprivileged_says_what_it_needs():
    """Without the privileges: one line naming the capabilities, exit 1,
    nothing created (not libbpf's 'Couldn't load trivial BPF program')."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        sock = os.path.join(tmp, "tm.sock")
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            TASKMETERD, "--socket", sock, "-c", CONFIG_EXAMPLE],
                           capture_output=True, text=True, timeout=30)
        print(p.stderr)
        check_eq(p.returncode, 1, "exit status without privileges")
        check("needs root, or the capabilities CAP_BPF" in p.stderr, f"stderr: {p.stderr!r}")
        check("trivial BPF program" not in p.stderr, "libbpf's probe message shown")
        check_eq(os.listdir(tmp), [], "files created without privileges")
