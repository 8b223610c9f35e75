#!/usr/bin/env bash
# The cost of pthread locking under `lockdep run`, against raw pthread, Helgrind and TSan's
# deadlock detector, measured in one run on this machine: the table of docs/PERFORMANCE.md
# ("C programs: lockdep run"). Times are CPU time per lock/unlock pair (see pthread_bench.c).
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
