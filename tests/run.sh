#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The whole test suite: unit tests (plain and under ASan+UBSan), a short
# run of every fuzzer (TM_FUZZ_SECS seconds each, default 4; `make fuzz`
# runs them longer), packet tests of the XDP/TC programs, then the
# integration tests, which load BPF inside network namespaces and cgroups
# of their own. Needs root. Ends with
# one line "N passed, N failed, N skipped"; exit status 0 only if nothing
# failed and at least one test ran.
#
# A runner fails the run by a failed test, by an exit status other than
# what its summary says (a crash, or a LeakSanitizer report, which comes
# after the summary), by a sanitizer report anywhere in its output (also
# from a child process), by no summary, or, without a filter, by running
# no test at all.
#
# An argument selects tests by name (substring); a name that selects no
# test in any runner fails the run.
#
# TM_TEST_NO_IPV6=1 runs the suite as on a host without IPv6: every
# namespace the tests make has IPv6 off, and the tests that need it are
# SKIPs (as they are on a kernel booted with ipv6.disable=1).
set -u
cd "$(dirname "$0")/.."
sel=${1:-}
fuzz_secs=${TM_FUZZ_SECS:-4}
passed=0 failed=0 skipped=0 selected=0

if [ "$(id -u)" != 0 ]; then
	echo "tests/run.sh: the tests load BPF programs and create namespaces: run as root" >&2
	exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# A problem with a runner as a whole counts as one failed test.
problem() {
	echo "$1: $2"
	failed=$((failed + 1))
}

# Add the "N passed, N failed[, N skipped]" line of a runner's output ($out)
# to the totals, and check it against the runner's exit status ($2).
tally() {
	local name=$1 rc=$2 line p f s report=

	if grep -qE 'ERROR: [A-Za-z]+Sanitizer|^SUMMARY: [A-Za-z]+Sanitizer|runtime error: ' "$out"; then
		report=" (a sanitizer report, above)"
	fi
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
	if [ -z "$line" ]; then
		problem "$name" "no summary line, exit status $rc$report"
		return
	fi
	set -- $line
	p=$1 f=$3 s=0
	[ $# -ge 6 ] && s=$5
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	selected=$((selected + p + f + s))
	# A report with no failed test to explain it counts once.
	if [ "$f" = 0 ] && [ "$rc" != 0 ]; then
		problem "$name" "exit status $rc after \"$line\"$report"
	elif [ "$f" = 0 ] && [ -n "$report" ]; then
		problem "$name" "$line, but with a sanitizer report (above)"
	elif [ "$rc" = 0 ] && [ "$f" != 0 ]; then
		problem "$name" "exit status 0 after \"$line\""
	fi
	if [ -z "$sel" ] && [ $((p + f + s)) = 0 ]; then
		problem "$name" "ran no test"
	fi
}

# Lines of a runner's output shown live: all, or all but passing tests.
show() {
	if [ "$1" = quiet ]; then grep -vE ':OK( \(.*\))?$'; else cat; fi
}

# run NAME all|quiet CMD...: run one runner, stdout and stderr together.
run() {
	local name=$1 mode=$2 rc

	shift 2
	"$@" 2>&1 | tee "$out" | show "$mode"
	rc=${PIPESTATUS[0]}
	tally "$name" "$rc"
}

echo "== unit tests"
run unit_tests all build/unit_tests ${sel:+"$sel"}

echo "== unit tests under ASan+UBSan"
if make --no-print-directory -s BUILD=build/asan \
	CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	build/asan/unit_tests >"$out" 2>&1; then
	ASAN_OPTIONS=detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS} \
	UBSAN_OPTIONS=print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS} \
		run asan_unit_tests quiet build/asan/unit_tests ${sel:+"$sel"}
else
	cat "$out"
	problem asan_unit_tests "ASan build failed"
fi

echo "== fuzzers, $fuzz_secs s each"
if make --no-print-directory -s fuzzers >"$out" 2>&1; then
	run fuzzers all tests/fuzz/run.sh -t "$fuzz_secs" ${sel:+"$sel"}
else
	cat "$out"
	problem fuzzers "fuzzer build failed"
fi

echo "== packet tests (the BPF programs through BPF_PROG_TEST_RUN)"
run packet_tests quiet build/packet_tests ${sel:+"$sel"}

echo "== integration tests"
run integration all /usr/bin/python3 tests/integration/run.py ${sel:+"$sel"}

if [ "$selected" = 0 ]; then
	problem tests/run.sh "no test name contains '$sel'"
fi
echo "the suite took $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
