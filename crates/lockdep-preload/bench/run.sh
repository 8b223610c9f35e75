#!/usr/bin/env bash
# The cost of pthread locking under `lockdep run`, against raw pthread, Helgrind and TSan's
# deadlock detector, measured in one run on this machine: the tables of docs/PERFORMANCE.md
# ("C programs: lockdep run"). Times are CPU time per lock/unlock pair (see pthread_bench.c);
# with valgrind installed, a second table counts instructions per iteration (callgrind).
#
#   crates/lockdep-preload/bench/run.sh            # N=5000000 iterations (200000 under helgrind/TSan)
#   N=1000000 SLOW_N=50000 crates/lockdep-preload/bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
N=${N:-5000000}
SLOW_N=${SLOW_N:-200000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cargo build --release -q -p lockdep-preload -p lockdep-cli
cc -O2 -g -pthread -o "$tmp/bench" crates/lockdep-preload/bench/pthread_bench.c

declare -A col
col[raw]=$("$tmp/bench" "$N")
col[lockdep]=$(target/release/lockdep run -- "$tmp/bench" "$N")
if command -v valgrind >/dev/null; then
	col[helgrind]=$(valgrind --tool=helgrind --track-lockorders=yes -q "$tmp/bench" "$SLOW_N")
fi
if cc -O2 -g -pthread -fsanitize=thread -o "$tmp/bench-tsan" crates/lockdep-preload/bench/pthread_bench.c 2>/dev/null; then
	col[tsan]=$(TSAN_OPTIONS=detect_deadlocks=1 "$tmp/bench-tsan" "$SLOW_N")
fi

value() { # column case
	printf '%s\n' "${col[$1]:-}" | awk -v c="$2" '$1 == c { print $2 }'
}

# Instructions per iteration (callgrind, which machine load does not change): the difference
# between runs of CG_N and 2*CG_N iterations of one loop, so start-up and the warm-up cancel out.
CG_N=${CG_N:-100000}
declare -A ins
if command -v valgrind >/dev/null; then
	lib=$(pwd)/target/release/liblockdep_preload.so
	count() { # preload(0|1) case iterations
		local env=()
		[ "$1" = 1 ] && env=(env "LD_PRELOAD=$lib")
		"${env[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$tmp/bench" "$3" "$2" 2>&1 |
			awk '/Collected :/ { print $NF }'
	}
	for c in uncontended nested; do
		for p in 0 1; do
			a=$(count "$p" "$c" "$CG_N")
			b=$(count "$p" "$c" $((2 * CG_N)))
			ins[$p.$c]=$(awk -v a="$a" -v b="$b" -v n="$CG_N" 'BEGIN { printf "%.1f", (b - a) / n }')
		done
	done
fi

echo "| case | raw pthread | lockdep run | helgrind | TSan detect_deadlocks=1 |"
echo "|---|---|---|---|---|"
for c in uncontended nested; do
	raw=$(value raw "$c")
	row="| $c | $raw ns |"
	for k in lockdep helgrind tsan; do
		v=$(value "$k" "$c")
		if [ -z "$v" ]; then
			row="$row n/a |"
		else
			row="$row $v ns ($(awk -v a="$v" -v b="$raw" 'BEGIN { printf "%.1f", a / b }')x) |"
		fi
	done
	echo "$row"
done
if [ -n "${ins[0.uncontended]:-}" ]; then
	echo
	echo "| case | raw pthread (instructions) | lockdep run (instructions) |"
	echo "|---|---|---|"
	for c in uncontended nested; do
		echo "| $c | ${ins[0.$c]} | ${ins[1.$c]} ($(awk -v a="${ins[1.$c]}" -v b="${ins[0.$c]}" 'BEGIN { printf "%.1f", a / b }')x) |"
	done
fi
