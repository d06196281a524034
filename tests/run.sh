#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The whole test suite: unit tests (plain and under ASan+UBSan), packet
# tests of the XDP/TC programs, then the integration tests, which load BPF
# inside network namespaces and cgroups of their own. Needs root. Ends with one line "N passed, N failed, N skipped".
# An argument selects tests by name (substring).
set -u
cd "$(dirname "$0")/.."
sel=${1:-}
passed=0 failed=0 skipped=0

if [ "$(id -u)" != 0 ]; then
	echo "tests/run.sh: the tests load BPF programs and create namespaces: run as root" >&2
	exit 1
fi

# Add a runner's "N passed, N failed[, N skipped]" line to the totals.
tally() {
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n1)
	if [ -z "$line" ]; then
		echo "$2: no summary line (crashed?)"
		failed=$((failed + 1))
		return
	fi
	set -- $line
	passed=$((passed + $1)) failed=$((failed + $3))
	[ $# -ge 6 ] && skipped=$((skipped + $5))
	return 0
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "== unit tests"
build/unit_tests "$sel" | tee "$out"
tally "$out" unit_tests

echo "== unit tests under ASan+UBSan"
if make --no-print-directory -s BUILD=build/asan \
	CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	build/asan/unit_tests >"$out" 2>&1; then
	build/asan/unit_tests "$sel" | tee "$out" | grep -v ':OK$'
	tally "$out" asan_unit_tests
else
	cat "$out"
	echo "ASan build failed"
	failed=$((failed + 1))
fi

echo "== packet tests (the BPF programs through BPF_PROG_TEST_RUN)"
build/packet_tests "$sel" | tee "$out" | grep -v ':OK$'
tally "$out" packet_tests

echo "== integration tests"
/usr/bin/python3 tests/integration/run.py "$sel" | tee "$out"
tally "$out" integration

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
