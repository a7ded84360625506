#!/usr/bin/env bash
# bench-handler-ab.sh: compare the edge's POST /v1/offers handler (serve's BenchmarkHandler:
# decode, decide, encode with proofs, fasthttp's body copy) of two revisions on this machine,
# for the 1-device, 20-device and whole-PC requests. It builds the serve package's test
# binary at each revision and runs them in turn, ROUNDS times each, on one CPU (GOMAXPROCS=1,
# taskset), then prints min and median ns/op per benchmark, as bench-decide-ab.sh does.
#
# Needs: go, git, taskset (util-linux), and a release with request bodies in the
# environment, as BenchmarkHandler reads them: DRIVEWAY_BENCH_CATALOG (a release directory),
# DRIVEWAY_BENCH_KEY (its public key), DRIVEWAY_BENCH_REQ1, DRIVEWAY_BENCH_REQ20 and
# DRIVEWAY_BENCH_REQWHOLE (request files; `driveway bench gen-devices --whole-pc` writes whole
# PCs, one a line). Installs nothing.
# Usage: scripts/bench-handler-ab.sh OLD_REV [NEW_REV]   (NEW_REV: the working tree)
# Knobs (environment): ROUNDS=8 BENCHTIME=1s CPU=1 WORK=/tmp/driveway-handler-ab
#                      BENCH='BenchmarkHandler/(1device|20devices|wholepc)$'
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 1 ] || { echo "usage: $0 OLD_REV [NEW_REV]" >&2; exit 2; }
ROUNDS=${ROUNDS:-8}
BENCHTIME=${BENCHTIME:-1s}
CPU=${CPU:-1}
WORK=${WORK:-/tmp/driveway-handler-ab}
BENCH=${BENCH:-'BenchmarkHandler/(1device|20devices|wholepc)$'}
for tool in go git taskset; do
  command -v "$tool" >/dev/null || { echo "bench-handler-ab: needs $tool" >&2; exit 2; }
done
for v in DRIVEWAY_BENCH_CATALOG DRIVEWAY_BENCH_KEY DRIVEWAY_BENCH_REQ1 DRIVEWAY_BENCH_REQ20 DRIVEWAY_BENCH_REQWHOLE; do
  [ -n "${!v:-}" ] || { echo "bench-handler-ab: set $v (see the header)" >&2; exit 2; }
done
mkdir -p "$WORK"

# testbin REV OUT: the serve test binary of a revision ("" for the working tree).
testbin() {
  if [ -z "$1" ]; then
    go test -c -o "$2" ./serve
    return
  fi
  local tree
  tree=$(mktemp -d)
  git worktree add -q --detach "$tree" "$1"
  (cd "$tree" && go test -c -o "$2" ./serve)
  git worktree remove --force "$tree"
}
testbin "$1" "$WORK/old.test"
testbin "${2:-}" "$WORK/new.test"
echo "old: $1   new: ${2:-working tree}   $ROUNDS rounds of $BENCHTIME on CPU $CPU" >&2

results=$WORK/results.txt
: >"$results"
for round in $(seq "$ROUNDS"); do
  for side in old new; do
    (cd serve && GOMAXPROCS=1 taskset -c "$CPU" "$WORK/$side.test" -test.run '^$' -test.bench "$BENCH" \
      -test.benchtime "$BENCHTIME" -test.benchmem) |
      awk -v side="$side" '/^Benchmark/ { a = "-"; for (i = 1; i <= NF; i++) if ($i == "allocs/op") a = $(i - 1); print side, $1, $3, a }' >>"$results"
  done
  echo "round $round of $ROUNDS done" >&2
done
awk '{ key = $2 " " $1; n[key]++; v[key, n[key]] = $3; al[key] = $4 }
END {
  for (key in n) {
    m = n[key]
    for (i = 1; i <= m; i++) a[i] = v[key, i]
    for (i = 2; i <= m; i++) { x = a[i]; j = i - 1; while (j > 0 && a[j] > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
    med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    printf "%-32s %-4s min %9.0f ns/op  median %9.0f ns/op  %s allocs/op (last run)  (%d runs)\n", substr(key, 1, index(key, " ") - 1), substr(key, index(key, " ") + 1), a[1], med, al[key], m
  }
}' "$results" | sort
