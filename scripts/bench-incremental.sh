#!/usr/bin/env bash
# bench-incremental.sh: the build cache's figures, measured in one run on one tree (issue 19,
# docs/architecture.md "Incremental builds"). It builds the driveway binary of the working
# tree, generates a tree of LABELS labels (once, kept in WORK), and then times, with wall
# time and peak RSS from /usr/bin/time:
#
#   clean        a build with --no-cache (the baseline)
#   first        the first build with the cache (writes it)
#   unchanged    a rebuild of the same tree
#   one label    a rebuild after one label's name changed
#   one INF      a rebuild after one submission's driver metadata changed (DriverVersion)
#   the floor    listing and stat-ing every file of the tree (find -type f -printf), what
#                any rebuild that checks every file costs on this file system
#
# and checks that an incremental build and a clean one of the edited tree, at the same
# --now into empty directories, are byte-identical (diff -r).
#
# Needs: go, /usr/bin/time (GNU time), find, sed, diff. Installs nothing.
# Usage: scripts/bench-incremental.sh   Knobs: LABELS=100000 WORK=/tmp/driveway-incremental
set -euo pipefail
cd "$(dirname "$0")/.."
LABELS=${LABELS:-100000}
WORK=${WORK:-/tmp/driveway-incremental}
for tool in go find sed diff; do
  command -v "$tool" >/dev/null || { echo "bench-incremental: needs $tool" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "bench-incremental: needs GNU time at /usr/bin/time" >&2; exit 2; }
mkdir -p "$WORK"
DW="$WORK/driveway"
go build -o "$DW" ./cmd/driveway
TREE="$WORK/labels-$LABELS"
if [ ! -d "$TREE/products" ]; then
  rm -rf "$TREE"
  "$DW" bench gen-labels --out "$TREE" --labels "$LABELS" --compact >/dev/null 2>&1
fi
[ -f "$WORK/key.key" ] || "$DW" keygen --out "$WORK/key" --unencrypted >/dev/null 2>&1
rm -rf "$WORK/clean" "$WORK/inc" "$WORK/inc.build-cache" "$WORK/same-a" "$WORK/same-b" "$WORK"/*.json
sleep 3 # the tree's files leave the cache's racy window (two seconds), as an export's have

# step NAME OUT [build flags...]: one timed build; prints a row of the table.
step() {
  local name=$1 out=$2
  shift 2
  local rep="$WORK/$(echo "$name" | tr ' ' '-').json"
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$DW" build --labels "$TREE" --out "$out" --key "$WORK/key.key" --quiet --report "$rep" "$@" 2>"$WORK/stderr" ||
    { tail -5 "$WORK/stderr" >&2; exit 1; }
  read -r secs kb <"$WORK/time"
  local cache phases
  cache=$(sed -n 's/.*"reused": \([0-9]*\).*/\1/p' "$rep" | head -1)
  built=$(sed -n 's/.*"built": \([0-9]*\).*/\1/p' "$rep" | head -1)
  written=$(sed -n 's/.*"shardsWritten": \([0-9]*\).*/\1/p' "$rep" | head -1)
  phases=$(tr -d '\n ' <"$rep" | grep -o '"phases":\[[^]]*\]' | sed 's/"name":"\([a-z]*\)","seconds":\([0-9]*\.[0-9]\)[0-9]*/\1 \2/g; s/"phases":\[//; s/[]{}]//g')
  printf '| %-10s | %7.1f s | %6d MiB | %s | %s | %s | %s |\n' "$name" "$secs" $((kb / 1024)) "${cache:--}" "${built:--}" "$written" "$phases"
}

echo "tree: $LABELS labels, $(find "$TREE/" -type f | wc -l) files, $(du -sh --apparent-size "$TREE/" | cut -f1)"
echo
echo "| build | wall | peak RSS | products reused | products built | shards written | phases (s) |"
echo "|---|---|---|---|---|---|---|"
step clean "$WORK/clean" --no-cache
step first "$WORK/inc" --cache "$WORK/inc.build-cache"
step unchanged "$WORK/inc" --cache "$WORK/inc.build-cache"
label=$(find "$TREE/products" -path '*shippingLabels*' -name '*.json' | sort | sed -n 1p)
sed -i 's/"name":"/"name":"(fixed) /' "$label"
step "one label" "$WORK/inc" --cache "$WORK/inc.build-cache"
meta=$(find "$TREE/products" -name driverMetadata.json | sort | sed -n 2p)
sed -i 's/"DriverVersion":"\([0-9]*\)\./"DriverVersion":"9\1./' "$meta"
step "one INF" "$WORK/inc" --cache "$WORK/inc.build-cache"
start=$(date +%s.%N)
find "$TREE/" -type f -printf '%s %T@ %C@ %i\n' >/dev/null
echo "| the floor | $(awk -v a="$start" -v b="$(date +%s.%N)" "BEGIN{printf \"%7.1f\", b-a}") s | | | | | find -type f, a stat per file |"

# Identity: an incremental build of the edited tree and a clean one, same --now, empty outs.
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"$DW" build --labels "$TREE" --out "$WORK/same-a" --key "$WORK/key.key" --quiet --now "$now" --cache "$WORK/inc.build-cache" 2>/dev/null
"$DW" build --labels "$TREE" --out "$WORK/same-b" --key "$WORK/key.key" --quiet --now "$now" --no-cache 2>/dev/null
if diff -r "$WORK/same-a" "$WORK/same-b" >/dev/null; then
  echo; echo "identical: the incremental and the clean build of the edited tree are byte for byte the same"
else
  echo; echo "DIFFERENT: the incremental and the clean build of the edited tree differ" >&2; exit 1
fi
# Put the tree back as it was, for the next run.
sed -i 's/"name":"(fixed) /"name":"/' "$label"
sed -i 's/"DriverVersion":"9\([0-9]*\)\./"DriverVersion":"\1./' "$meta"
