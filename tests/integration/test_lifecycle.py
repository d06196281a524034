# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Short-lived processes and execve."""
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
