#!/usr/bin/env bash
# bench-decide-ab.sh: compare the offer path (decode + decide + encode, BenchmarkDecide) of
# two revisions on this machine. It builds the offer package's test binary at each revision
# and runs them in turn, ROUNDS times each, on one CPU (GOMAXPROCS=1, taskset), over one
# generated catalog kept in WORK, then prints min and median ns/op per benchmark. Taking
# turns spreads the host's drift over both; the minimum is the steadiest figure on a shared
# machine, the median says how often that is reached.
#
# Needs: go, git, taskset (util-linux). Installs nothing.
# Usage: scripts/bench-decide-ab.sh OLD_REV [NEW_REV]   (NEW_REV: the working tree)
# Knobs (environment): LABELS=100000 ROUNDS=8 BENCHTIME=1s CPU=1 WORK=/tmp/driveway-decide-ab
# The first run generates and builds the catalog (about a minute for 100,000 labels).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 1 ] || { echo "usage: $0 OLD_REV [NEW_REV]" >&2; exit 2; }
LABELS=${LABELS:-100000}
ROUNDS=${ROUNDS:-8}
BENCHTIME=${BENCHTIME:-1s}
CPU=${CPU:-1}
WORK=${WORK:-/tmp/driveway-decide-ab}
for tool in go git taskset; do
  command -v "$tool" >/dev/null || { echo "bench-decide-ab: needs $tool" >&2; exit 2; }
done
mkdir -p "$WORK"

# testbin REV OUT: the offer test binary of a revision ("" for the working tree).
testbin() {
  if [ -z "$1" ]; then
    go test -c -o "$2" ./offer
    return
  fi
  local tree
  tree=$(mktemp -d)
  git worktree add -q --detach "$tree" "$1"
  (cd "$tree" && go test -c -o "$2" ./offer)
  git worktree remove --force "$tree"
}
testbin "$1" "$WORK/old.test"
testbin "${2:-}" "$WORK/new.test"
echo "old: $1   new: ${2:-working tree}   $LABELS labels, $ROUNDS rounds of $BENCHTIME on CPU $CPU" >&2

results=$WORK/results.txt
: >"$results"
for round in $(seq "$ROUNDS"); do
  for side in old new; do
    (cd offer && GOMAXPROCS=1 DRIVEWAY_BENCH_DIR="$WORK/workload" DRIVEWAY_BENCH_LABELS="$LABELS" \
      taskset -c "$CPU" "$WORK/$side.test" -test.run '^$' -test.bench 'BenchmarkDecide$' -test.benchtime "$BENCHTIME") |
      awk -v side="$side" '/^Benchmark/ { print side, $1, $3 }' >>"$results"
  done
  echo "round $round of $ROUNDS done" >&2
done
awk '{ key = $2 " " $1; n[key]++; v[key, n[key]] = $3 }
END {
  for (key in n) {
    m = n[key]
    for (i = 1; i <= m; i++) a[i] = v[key, i]
    # insertion sort: m is small
    for (i = 2; i <= m; i++) { x = a[i]; j = i - 1; while (j > 0 && a[j] > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
    med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    printf "%-28s %-4s min %9.0f ns/op  median %9.0f ns/op  (%d runs)\n", substr(key, 1, index(key, " ") - 1), substr(key, index(key, " ") + 1), a[1], med, m
  }
}' "$results" | sort
