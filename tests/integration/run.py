#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Run the integration tests: every test_*() in tests/integration/test_*.py.

Prints one line per test, '#N name:OK|FAIL|SKIP (seconds)', the captured output of the
failures, and a final 'N passed, N failed, N skipped'. An argument selects the
tests whose name contains it.
"""
import contextlib
import glob
import importlib.util
import io
import os
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tmtest  # noqa: E402


def discover():
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "test_*.py"))):
        name = os.path.basename(path)[:-3]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for attr in sorted(dir(mod)):
            if attr.startswith("test_") and callable(getattr(mod, attr)):
                yield f"{name[5:]}.{attr[5:]}", getattr(mod, attr)


def interrupted(signum, frame):
    """SIGTERM/SIGHUP unwind like Ctrl-C: every Env removes what it made."""
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    sel = sys.argv[1] if len(sys.argv) > 1 else ""
    counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
    n = 0
    for name, fn in discover():
        if sel not in name:
            continue
        n += 1
        buf = io.StringIO()
        start = time.monotonic()
        with contextlib.redirect_stdout(buf):
            try:
                fn()
                result = "OK"
            except tmtest.Skip as e:
                result = "SKIP"
                print(f"skipped: {e}")
            except Exception:
                result = "FAIL"
                traceback.print_exc(file=buf)
        counts[result] += 1
        print(f"#{n} {name}:{result} ({time.monotonic() - start:.1f} s)", flush=True)
        if result != "OK" or os.environ.get("TM_TEST_VERBOSE"):
            for line in buf.getvalue().splitlines():
                print(f"    {line}")
    print(f"{counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
