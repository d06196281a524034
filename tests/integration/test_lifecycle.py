# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Short-lived processes and execve."""
import time

from tmtest import (Env, TRAFFIC, check, check_eq, clean_env, final_records, payload,
                    records_of_pid)

RUNS = 100
SIZE = 321


def test_short_lived_udp():
    """100 processes that each send one datagram and exit at once: each must
    appear with its exact payload, pid and comm, and (the target) its argv
    read in-task by the task_work callback."""
    with Env() as env:
        sink = env.spawn([TRAFFIC, "udp-sink", "127.0.0.1", "5003", str(RUNS)], env=clean_env())
        reports = [env.run([TRAFFIC, "udp-once", "127.0.0.1", "5003", str(SIZE), f"once-{i}"],
                           env=clean_env())
                   for i in range(RUNS)]
        sink_rep = env.finish(sink)
        check_eq(sink_rep["received"], RUNS * SIZE, "datagrams the sink received")
        frames = env.stop()
        recs = final_records(frames)
        exact = with_argv = 0
        for i, rep in enumerate(reports):
            mine = [r for k, r in recs.items() if k[0] == rep["pid"]]
            check_eq(len(mine), 1, f"records of short-lived pid {rep['pid']}")
            rec = mine[0]
            check_eq(rec.get("comm"), "tm_traffic", f"comm of pid {rep['pid']}")
            check_eq(payload(rec, "EGRESS", "UDP", "IPV4"), SIZE, f"payload of pid {rep['pid']}")
            check_eq(payload(rec, "INGRESS"), 0, f"rx of pid {rep['pid']}")
            check(rec.get("exited"), f"pid {rep['pid']} not marked exited")
            exact += 1
            if (rec.get("metadata_source") == "SOURCE_TASK_WORK"
                    and rec.get("argv", [None])[-1] == f"once-{i}"):
                with_argv += 1
        print(f"short-lived: {exact}/{RUNS} exact payload, {with_argv}/{RUNS} argv via task_work")
        check_eq(with_argv, RUNS, "short-lived processes with argv via task_work")


def test_exec_refreshes_metadata():
    """Traffic before execve carries the old argv, traffic after the new one."""
    with Env() as env:
        s1 = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5004", "100"], env=clean_env())
        s2 = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5005", "200"], env=clean_env())
        p = env.run([TRAFFIC, "exec-send", "127.0.0.1", "5004", "1111",
                     TRAFFIC, "tcp-send", "127.0.0.1", "5005", "2222", "after-exec"],
                    env=clean_env())
        env.finish(s1)
        env.finish(s2)
        frames = env.stop()
        recs = records_of_pid(frames, p["pid"])
        check_eq(len(recs), 2, "records of the exec'ing pid (one per image)")
        before, after = recs
        check_eq((before["exec_seq"], after["exec_seq"]), (0, 1), "exec_seq")
        check_eq(before["start_time_ns"], after["start_time_ns"], "same process across exec")
        check(before["argv"][1] == "exec-send", f"argv before exec: {before['argv']}")
        check_eq(after["argv"][-1], "after-exec", "argv after exec")
        check_eq((payload(before, "EGRESS"), payload(before, "INGRESS")), (1111, 100),
                 "payload before exec (tx, rx)")
        check_eq((payload(after, "EGRESS"), payload(after, "INGRESS")), (2222, 200),
                 "payload after exec (tx, rx)")
        for rec in recs:
            check_eq(rec["metadata_source"], "SOURCE_TASK_WORK", "metadata source")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def storm(env, n, size, port):
    sink = env.spawn([TRAFFIC, "udp-sink", "127.0.0.1", str(port), str(n)], env=clean_env())
    rep = env.run([TRAFFIC, "fork-storm", "127.0.0.1", str(port), str(n), str(size)],
                  env=clean_env(), timeout=300)
    env.finish(sink)
    return rep


def test_exit_frees_state():
    """10,000 process lifetimes: each child's final bytes are reported, marked
    exited, and then the collector and the BPF maps let go of it: live
    records and counter entries return to what they were, and the
    collector's memory does not grow from the first 5,000 to the next."""
    n, size = 5000, 32
    with Env(daemon_args=["--set", "exited_ttl=1"]) as env:
        first = storm(env, n, size, 5040)
        time.sleep(2.5)  # past exited_ttl: state freed
        env.wait_frames(2)
        rss_after_first = rss_kib(env.daemon.pid)
        second = storm(env, n, size, 5041)
        time.sleep(2.5)
        env.wait_frames(2)
        rss_after_second = rss_kib(env.daemon.pid)
        frames = env.stop()
        recs = final_records(frames)
        for rep in (first, second):
            kids = [r for r in recs.values() if r.get("ppid") == rep["pid"]]
            check_eq(len(kids), n, f"children of storm {rep['pid']} reported")
            check_eq(sum(payload(r, "EGRESS", "UDP") for r in kids), n * size,
                     "their payload")
            check(all(r.get("exited") for r in kids), "every child marked exited")
        last = frames[-1]["stats"]
        print(f"records_live {last['records_live']}, counter_entries "
              f"{last['counter_entries']}, rss {rss_after_first} -> {rss_after_second} KiB, "
              f"peak records {max(f['stats']['records_live'] for f in frames)}")
        check(last["records_live"] <= 4, f"records still live: {last['records_live']}")
        check(last["counter_entries"] <= 8, f"counter entries left: {last['counter_entries']}")
        check(rss_after_second <= rss_after_first + 1024,
              f"collector RSS grew {rss_after_first} -> {rss_after_second} KiB")


def test_exit_codes_of_a_storm():
    """2,000 children exiting as fast as they fork, the collector running:
    each one's exit is read from its exit event (exit code 0), never
    inferred from /proc while that event waits in the ring buffer."""
    n, size = 2000, 16
    with Env() as env:
        sink = env.spawn([TRAFFIC, "udp-sink", "127.0.0.1", "5042", str(n)], env=clean_env())
        rep = env.run([TRAFFIC, "fork-storm", "127.0.0.1", "5042", str(n), str(size)],
                      env=clean_env(), timeout=300)
        env.finish(sink)
        frames = env.stop()
        kids = [r for r in final_records(frames).values() if r.get("ppid") == rep["pid"]]
        check_eq(len(kids), n, "children reported")
        codes = {}
        for r in kids:
            codes[r.get("exit_code", "none")] = codes.get(r.get("exit_code", "none"), 0) + 1
        check_eq(codes, {0: n}, "exit codes of the children (none: inferred)")
        check_eq(frames[-1]["stats"].get("exits_inferred", 0), 0, "exits inferred")


def test_exec_keeps_socket():
    """A socket created before execve and used after it: bytes before the
    exec count for the old image's record, bytes after it for the new one's."""
    with Env() as env:
        srv = env.spawn([TRAFFIC, "tcp-serve", "127.0.0.1", "5006", "777"], env=clean_env())
        before, after = env.run([TRAFFIC, "exec-keep", "127.0.0.1", "5006", "3333",
                                 TRAFFIC, "fd-finish", "4444", "new-image"],
                                env=clean_env(), all_reports=True)
        env.finish(srv)
        frames = env.stop()
        check_eq(before["pid"], after["pid"], "same process across exec")
        recs = records_of_pid(frames, before["pid"])
        check_eq([r["exec_seq"] for r in recs], [0, 1], "records (one per image)")
        old, new = recs
        check_eq((payload(old, "EGRESS"), payload(old, "INGRESS")), (3333, 0),
                 "payload before exec (tx, rx)")
        check_eq((payload(new, "EGRESS"), payload(new, "INGRESS")),
                 (4444, 777), "payload after exec (tx, rx)")
        check_eq(new["argv"][-1], "new-image", "argv after exec")
        check(old["argv"][1] == "exec-keep", f"argv before exec: {old['argv']}")
