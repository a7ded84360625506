#!/usr/bin/env bash
# bench-edge.sh: load-test `driveway serve` on loopback with wrk, side by side with the same
# fasthttp server answering a fixed 500-byte body (`driveway bench fixed-answer --bytes 500`: the
# ceiling of this machine), for a 1-device and a 20-device request against a release of
# bench's generator (100,000 labels by default). Prints one table: requests/s and p50/p99 at
# several connection counts, the edge's p99 at half of its own maximum, its resident memory
# with the release mapped, and the swap delay of a control-only build.
#
# Needs: go, wrk (Debian: apt-get install wrk), curl. Installs nothing.
# Usage: scripts/bench-edge.sh            (from the repository root; about 3 minutes, plus
#                                          about 2 minutes the first time to make the data)
# Knobs (environment): WORK=/tmp/driveway-bench LABELS=100000 DURATION=8 CONNS="16 64 256"
#                      HALF_DELAY_MS=1 PORT=18080
# The label tree, key and release are kept in WORK and reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/driveway-bench}
LABELS=${LABELS:-100000}
DURATION=${DURATION:-8}
CONNS=${CONNS:-"16 64 256"}
HALF_DELAY_MS=${HALF_DELAY_MS:-1}
PORT=${PORT:-18080}
FIXED_PORT=$((PORT + 1))
EDGE="http://127.0.0.1:$PORT"
FIXED="http://127.0.0.1:$FIXED_PORT"

for tool in go wrk curl; do
  command -v "$tool" >/dev/null || { echo "bench-edge: needs $tool (Debian: apt-get install $tool)" >&2; exit 2; }
done
mkdir -p "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== binaries" >&2
go build -o "$WORK/driveway" ./cmd/driveway
go build -o "$WORK/benchedge" ./scripts/benchedge
DW="$WORK/driveway"

if [ ! -f "$WORK/labels/catalog.json" ]; then
  echo "== generating $LABELS labels (bench.GenerateLabels)" >&2
  rm -rf "$WORK/labels"
  "$WORK/benchedge" labels --out "$WORK/labels" --labels "$LABELS"
fi
[ -f "$WORK/key.pub" ] || "$DW" keygen --unencrypted --out "$WORK/key" >&2
if [ ! -f "$WORK/catalog/manifest" ]; then
  echo "== building the release" >&2
  "$DW" build --labels "$WORK/labels" --out "$WORK/catalog" --key "$WORK/key.key" --quiet
fi
[ -s "$WORK/req1.json" ] || "$WORK/benchedge" request --labels "$WORK/labels" --devices 1 > "$WORK/req1.json"
[ -s "$WORK/req20.json" ] || "$WORK/benchedge" request --labels "$WORK/labels" --devices 20 > "$WORK/req20.json"

cat > "$WORK/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local d = tonumber(os.getenv("DELAY_MS") or "0")
if d > 0 then
  function delay() return d end
end
EOF

waitfor() { # url
  for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench-edge: $1 did not come up" >&2; exit 1
}

echo "== starting the edge and the fixed-answer baseline" >&2
"$DW" serve --catalog "$WORK/catalog" --key "$WORK/key.pub" --listen "127.0.0.1:$PORT" 2> "$WORK/edge.log" &
EDGE_PID=$!; PIDS+=("$EDGE_PID")
"$DW" bench fixed-answer --bytes 500 --listen "127.0.0.1:$FIXED_PORT" 2> "$WORK/fixed.log" &
PIDS+=("$!")
waitfor "$EDGE/readyz"
waitfor "$FIXED/healthz"
LOAD_MS=$(grep -o '"load_ms":[0-9.]*' "$WORK/edge.log" | head -1 | cut -d: -f2)

# run NAME URL BODY CONNS [DELAY_MS]: one wrk run; prints "rps p50_ms p99_ms".
run() {
  local out
  out=$(BODY="$3" DELAY_MS="${5:-0}" wrk -t2 -c"$4" -d"${DURATION}s" --timeout 5s --latency -s "$WORK/post.lua" "$2/v1/offers")
  local rps p50 p99
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then echo "bench-edge: $1: non-2xx answers" >&2; grep "Non-2xx" <<<"$out" >&2; fi
  echo "$rps $(ms "$p50") $(ms "$p99")"
}
ms() { # wrk duration (123.45us, 1.2ms, 3s) -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.3f", n }'
}

# Warm-up: page in the mapping and fill the block cache.
BODY="$WORK/req20.json" wrk -t2 -c16 -d3s -s "$WORK/post.lua" "$EDGE/v1/offers" >/dev/null
BODY="$WORK/req1.json" wrk -t2 -c16 -d2s -s "$WORK/post.lua" "$FIXED/v1/offers" >/dev/null

declare -A MAX
ROWS=()
for c in $CONNS; do
  for target in fixed edge-1 edge-20; do
    case $target in
      fixed) url=$FIXED; body="$WORK/req1.json" ;;
      edge-1) url=$EDGE; body="$WORK/req1.json" ;;
      edge-20) url=$EDGE; body="$WORK/req20.json" ;;
    esac
    echo "== $target, $c connections" >&2
    read -r rps p50 p99 < <(run "$target" "$url" "$body" "$c")
    ROWS+=("$(printf '| %-28s | %5s | %9s | %8s | %8s |' "$target" "$c" "$rps" "$p50" "$p99")")
    if [ "${MAX[$target]:-0}" -lt "$rps" ]; then MAX[$target]=$rps; fi
  done
done

# Half of the edge's own maximum: connections that each wait HALF_DELAY_MS between requests
# (wrk's delay hook). A short calibration run corrects the connection count once, since the
# time a request takes adds to the delay.
HALF=()
for target in edge-1 edge-20; do
  body="$WORK/req1.json"; [ "$target" = edge-20 ] && body="$WORK/req20.json"
  want=$((MAX[$target] / 2))
  conns=$(( (want * HALF_DELAY_MS + 999) / 1000 ))
  [ "$conns" -lt 1 ] && conns=1
  saved=$DURATION; DURATION=3
  read -r rps _ _ < <(run "$target" "$EDGE" "$body" "$conns" "$HALF_DELAY_MS")
  DURATION=$saved
  if [ "${rps:-0}" -gt 0 ]; then
    conns=$(awk -v c="$conns" -v w="$want" -v r="$rps" 'BEGIN { n = int(c * w / r + 0.5); if (n > 4 * c) n = 4 * c; if (n < 1) n = 1; print n }')
  fi
  echo "== $target at about $want req/s ($conns connections, ${HALF_DELAY_MS} ms apart)" >&2
  read -r rps p50 p99 < <(run "$target" "$EDGE" "$body" "$conns" "$HALF_DELAY_MS")
  HALF+=("$(printf '| %-28s | %5s | %9s | %8s | %8s |' "$target @ half max ($want/s)" "$conns" "$rps" "$p50" "$p99")")
done

RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$EDGE_PID/status")
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$EDGE_PID/status")

echo "== swap: a control-only build while the edge serves" >&2
SWAP=$("$WORK/benchedge" swap --url "$EDGE" -- "$DW" build --control-only --labels "$WORK/labels" --out "$WORK/catalog" --key "$WORK/key.key" --quiet)
SWAP_LOAD_MS=$(grep '"release swapped in"' "$WORK/edge.log" | tail -1 | grep -o '"load_ms":[0-9.]*' | cut -d: -f2)

MANIFEST=$(stat -c %s "$WORK/catalog/manifest")
SHARDS=$(du -sb "$WORK/catalog/shards" | cut -f1)
echo
echo "driveway edge on $(nproc) cores, $(date -u +%Y-%m-%d); release: $LABELS labels generated, $((SHARDS / 1048576)) MiB of shards, manifest $((MANIFEST / 1024)) KiB; wrk -t2, ${DURATION} s per row"
echo
echo "| target                       | conns |     req/s | p50 (ms) | p99 (ms) |"
echo "|------------------------------|------:|----------:|---------:|---------:|"
printf '%s\n' "${ROWS[@]}" "${HALF[@]}"
echo
ratio1=$(awk -v a="${MAX[edge-1]}" -v b="${MAX[fixed]}" 'BEGIN {printf "%.0f", 100 * a / b}')
ratio20=$(awk -v a="${MAX[edge-20]}" -v b="${MAX[fixed]}" 'BEGIN {printf "%.0f", 100 * a / b}')
echo "max req/s: fixed ${MAX[fixed]}, edge 1 device ${MAX[edge-1]} (${ratio1}% of fixed), edge 20 devices ${MAX[edge-20]} (${ratio20}%)"
echo "edge RSS with the release mapped, after the runs: $((RSS_KB / 1024)) MiB (peak $((HWM_KB / 1024)) MiB)"
echo "first load of the release (verify: signature, every shard's sha256 and structure): ${LOAD_MS} ms"
echo "swap: $SWAP; the edge's load of it: ${SWAP_LOAD_MS} ms"
