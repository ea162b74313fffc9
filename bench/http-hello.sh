#!/usr/bin/env bash
# Warm HTTP throughput and latency: the examples/hello component under `updraft serve` and under
# `wasmtime serve` (the reference), measured in the same run on loopback with wrk.
#
#   bench/http-hello.sh            # 3 rounds x 10 s per server, prints a table and the ratio
#   ROUNDS=5 DURATION=20s CONNECTIONS=64 bench/http-hello.sh
#   WRITE_RESULTS=1 bench/http-hello.sh   # also rewrite the section in bench/RESULTS.md
#
# Installs what it needs outside the repo: wasmtime-cli (cargo install, into
# ${UPDRAFT_BENCH_TOOLS:-~/.cache/updraft-bench}) and wrk (apt, when run as root).
# On a machine with >= 2 cores the servers are pinned to core 0 and wrk to core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

WASMTIME_VERSION=48.0.8
TOOLS=${UPDRAFT_BENCH_TOOLS:-$HOME/.cache/updraft-bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

log() { printf '%s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else log "wrk is required (apt-get install wrk)"; exit 1; fi
fi
WASMTIME=$TOOLS/bin/wasmtime
if ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
  log "installing wasmtime-cli $WASMTIME_VERSION into $TOOLS (one-off, several minutes)"
  cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked --root "$TOOLS" \
    --target-dir "$TOOLS/target" >&2
fi

# --- build -------------------------------------------------------------------------------------
log "building updraft (release) and the hello component"
cargo build --release --locked -p updraft-cli >&2
(cd examples/hello && cargo build --release --target wasm32-wasip2 >&2)
UPDRAFT=${CARGO_TARGET_DIR:-$ROOT/target}/release/updraft
HELLO=$ROOT/examples/hello/target/wasm32-wasip2/release/hello.wasm

SERVER_CPU=""; CLIENT_CPU=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU="taskset -c 0"; CLIENT_CPU="taskset -c 1"
fi

wait_for() { # url
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  log "server at $1 never answered"; exit 1
}

# One wrk run: prints "req_per_sec p50_us p99_us".
measure() { # url
  $CLIENT_CPU wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$1" >"$OUT/wrk.txt"
  awk '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
    /Requests\/sec/ { rps=$2 }
    $1=="50%" { p50=us($2) }
    $1=="99%" { p99=us($2) }
    /Non-2xx/ { bad=$NF }
    END { if (bad > 0) { print "non-2xx responses: " bad > "/dev/stderr"; exit 1 } printf "%.0f %.0f %.0f\n", rps, p50, p99 }
  ' "$OUT/wrk.txt"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_rounds() { # name url
  for _ in $(seq 1 "$ROUNDS"); do measure "$2"; done >"$OUT/$1.txt"
  printf '%s %s %s\n' \
    "$(cut -d' ' -f1 "$OUT/$1.txt" | median)" \
    "$(cut -d' ' -f2 "$OUT/$1.txt" | median)" \
    "$(cut -d' ' -f3 "$OUT/$1.txt" | median)"
}

# --- wasmtime serve ------------------------------------------------------------------------------
log "wasmtime serve $WASMTIME_VERSION"
$SERVER_CPU "$WASMTIME" serve -Scli --addr 127.0.0.1:18080 "$HELLO" >"$OUT/wasmtime.log" 2>&1 &
WT_PID=$!
wait_for http://127.0.0.1:18080/hello
measure http://127.0.0.1:18080/hello >/dev/null  # warm-up
read -r WT_RPS WT_P50 WT_P99 < <(run_rounds wasmtime http://127.0.0.1:18080/hello)
kill $WT_PID; wait $WT_PID 2>/dev/null || true

# --- updraft -------------------------------------------------------------------------------------
log "updraft serve"
$SERVER_CPU "$UPDRAFT" serve --data-dir "$OUT/data" --listen 127.0.0.1:18081 \
  --control-listen 127.0.0.1:18082 >"$OUT/updraft.log" 2>&1 &
UD_PID=$!
wait_for http://127.0.0.1:18082/v1/health
"$UPDRAFT" deploy examples/hello --no-build --server http://127.0.0.1:18082 --data-dir "$OUT/data" >&2
wait_for http://127.0.0.1:18081/hello
measure http://127.0.0.1:18081/hello >/dev/null  # warm-up
read -r UD_RPS UD_P50 UD_P99 < <(run_rounds updraft http://127.0.0.1:18081/hello)
kill -INT $UD_PID; wait $UD_PID 2>/dev/null || true

RATIO=$(awk -v a="$UD_RPS" -v b="$WT_RPS" 'BEGIN { printf "%.2f", a/b }')
CPU=$(awk -F: '/model name/ { sub(/^ /, "", $2); print $2; exit }' /proc/cpuinfo)
PINNING=${SERVER_CPU:+server on core 0, wrk on core 1}
TABLE=$(cat <<TBL
| server | req/s | p50 | p99 |
| --- | ---: | ---: | ---: |
| \`wasmtime serve\` $WASMTIME_VERSION (reference) | $WT_RPS | ${WT_P50} µs | ${WT_P99} µs |
| \`updraft serve\` | $UD_RPS | ${UD_P50} µs | ${UD_P99} µs |
| **ratio updraft / wasmtime** | **${RATIO}x** | | |

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU), wrk -t1 -c$CONNECTIONS -d$DURATION on loopback,
median of $ROUNDS rounds after a warm-up${PINNING:+, $PINNING}; both servers use a fresh instance
per request and the pooling allocator. Component: examples/hello (Rust, wstd), GET /hello.
TBL
)
printf '\n%s\n' "$TABLE"

if [ "${WRITE_RESULTS:-0}" = 1 ]; then
  python3 - "$ROOT/bench/RESULTS.md" "$TABLE" <<'PY'
import sys, re
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
start, end = "<!-- http-hello:start -->", "<!-- http-hello:end -->"
new = f"{start}\n{table}\n{end}"
text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: new, text, flags=re.S)
open(path, "w").write(text)
PY
  log "updated bench/RESULTS.md"
fi
