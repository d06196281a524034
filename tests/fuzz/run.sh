#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runs the libFuzzer harnesses built by `make fuzzers`, one after the other,
# each for SECONDS: the corpus starts from the seeds in tests/fuzz/corpus/<target>
# and what the fuzzer adds is kept in BUILD/corpus/<target> for the next run.
#
# Prints "#N fuzz_<target>:OK|FAIL" and its exec count per target, then
# "N passed, N failed, 0 skipped". A crash, sanitizer report, leak, timeout
# (10 s per input), memory blow-up (2 GiB) or broken promise (an abort in
# the harness) fails the target: the report is shown, the input is kept in
# BUILD/crashes/<target>/, with the command that reproduces it.
#
# usage: tests/fuzz/run.sh [-t SECONDS] [-b BUILD] [NAME-SUBSTRING]
set -u
cd "$(dirname "$0")/../.."
secs=60 build=build/fuzz
while getopts t:b: opt; do
	case $opt in
	t) secs=$OPTARG ;;
	b) build=$OPTARG ;;
	*) echo "usage: $0 [-t SECONDS] [-b BUILD] [NAME]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
sel=${1:-}
passed=0 failed=0 n=0

# The value of the last "stat::NAME: N" or "NAME: N" in a libFuzzer log.
stat() {
	grep -oE "$1:? +[0-9]+" "$2" | tail -n1 | grep -oE '[0-9]+$'
}

# fuzz BIN: one target; its log in $build/logs/<target>.log.
fuzz() {
	local bin=$1 name target work crashes log dict rc execs crash

	name=$(basename "$bin") target=${name#fuzz_}
	work=$build/corpus/$target crashes=$build/crashes/$target log=$build/logs/$target.log
	dict=tests/fuzz/$target.dict
	mkdir -p "$work" "$crashes" "$build/logs"
	[ -f "$dict" ] || dict=
	n=$((n + 1))
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$crashes/" ${dict:+-dict="$dict"} \
		"$work" "tests/fuzz/corpus/$target" >"$log" 2>&1
	rc=$?
	execs=$(stat stat::number_of_executed_units "$log")
	if [ "$rc" = 0 ] && [ -n "$execs" ]; then
		echo "#$n $name:OK"
		echo "    $execs execs in $secs s ($((execs / (secs > 0 ? secs : 1)))/s)," \
			"coverage $(stat cov "$log") edges, corpus $(ls "$work" | wc -l) inputs" \
			"(seed $(stat Seed "$log"))"
		passed=$((passed + 1))
		return
	fi
	echo "#$n $name:FAIL"
	grep -vE '^#[0-9]+|^INFO: |^MERGE|^ *$' "$log" | tail -n 60 | sed 's/^/    /'
	crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
	if [ -n "$crash" ]; then
		echo "    input kept in $crash; reproduce: $bin $crash"
	else
		echo "    exit status $rc, no input saved; log: $log"
	fi
	failed=$((failed + 1))
}

for bin in "$build"/fuzz_*; do
	[ -x "$bin" ] || continue
	case $(basename "$bin") in *"$sel"*) fuzz "$bin" ;; esac
done
[ "$n" = 0 ] && echo "$0: no harness in $build matches '$sel' (make fuzzers?)" >&2
echo "$passed passed, $failed failed, 0 skipped"
[ "$failed" = 0 ]
