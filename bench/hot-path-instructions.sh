#!/usr/bin/env bash
# The warm hot path counted in instructions instead of timed: each server runs under
# valgrind's callgrind, wrk sends it a fixed load, and the script divides the instructions the
# server executed (all threads, user space only) by the requests it answered. Unlike req/s on a
# shared VM, the counts barely move between runs (±1%), so they tell a real 3% from noise.
# Subjects, same Rust hello component, one instance reused:
#   `wasmtime serve --max-instance-reuse-count 1000`, sent the four headers Updraft adds for
#   its guest (so both guests parse the same request); Updraft warm with metering and logs on
#   (the defaults); the same with both off.
# What callgrind cannot see (system calls, page faults, cache misses) is what hot-path.sh's
# timings add. The pooling allocator is off for every subject (its address-space reservation
# does not fit under valgrind).
#
#   bench/hot-path-instructions.sh          # ~4 minutes
#   WRITE_RESULTS=1 bench/hot-path-instructions.sh
source "$(dirname "$0")/lib.sh"
need_wasmtime

if ! command -v valgrind >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
  else log "valgrind is required (apt-get install valgrind)"; exit 1; fi
fi

WARMUP=${WARMUP:-5s}
DURATION=${DURATION:-15s}
GUEST_HEADERS=(
  -H "x-updraft-request-id: 019acb6e5f2a4c1d9e8b7a6f5e4d3c2b"
  -H "x-updraft-version: 1"
  -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
  -H "x-updraft-route: /hello"
)

mkdir -p "$OUT/app"
printf '[app]\nname = "bench"\n[[functions]]\nname = "warm"\ncomponent = "%s"\ninstance_reuse = "warm"\nmax_reuse = 1000\n[[functions.http]]\nroute = "/hello"\n' \
  "$HELLO" >"$OUT/app/updraft.toml"
printf '' >"$OUT/on.toml"
printf '[metering]\nenabled = false\n[logs]\nenabled = false\n' >"$OUT/off.toml"

# Runs "$@" under callgrind, waits for $url, loads it for WARMUP, zeroes the counters, loads it
# for DURATION, dumps; prints instructions per request.
count() { # name url health-url command...
  local name=$1 url=$2 health=$3; shift 3
  local port=${url#http://127.0.0.1:}
  port=${port%%/*}
  # all-non-file: JIT code lives in anonymous memory that is reused for other code.
  (UPDRAFT_POOLING=0 valgrind --tool=callgrind --smc-check=all-non-file \
    --callgrind-out-file="$OUT/cg.$name.%p" "$@" >"$OUT/$name.log" 2>&1 &)
  for _ in $(seq 1 600); do curl -fsS -o /dev/null "$health" 2>/dev/null && break; sleep 0.1; done
  if [ "$name" != wasmtime ]; then
    "$UPDRAFT" deploy "$OUT/app" --no-build --server "${health%/v1/health}" \
      --data-dir "$OUT/$name" >/dev/null
  fi
  local pid
  pid=$(pgrep -f "valgrind.bin.*127.0.0.1:$port" | head -1)
  local args=()
  [ "$name" = wasmtime ] && args=("${GUEST_HEADERS[@]}")
  $CLIENT_CPU wrk -t1 -c4 -d"$WARMUP" "${args[@]}" "$url" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  local n
  n=$($CLIENT_CPU wrk -t1 -c4 -d"$DURATION" "${args[@]}" "$url" | awk '/requests in/ { print $1 }')
  callgrind_control -d "$pid" >/dev/null
  sleep 2
  kill "$pid"; sleep 1
  # The dump after zeroing is part 1 of each thread's file.
  cat "$OUT"/cg."$name".*.1* 2>/dev/null | awk -v n="$n" '/^summary:/ { s += $2 } END { printf "%.0f\n", s / n }'
}

log "wasmtime serve (reuse, under callgrind)"
WT=$(count wasmtime http://127.0.0.1:19195/hello http://127.0.0.1:19195/hello \
  "$WASMTIME" serve -Scli -O pooling-allocator=n --addr 127.0.0.1:19195 \
  --max-instance-reuse-count 1000 "$HELLO")
log "updraft warm, metering and logs on"
ON=$(count on http://127.0.0.1:19391/hello http://127.0.0.1:19392/v1/health \
  "$UPDRAFT" serve --data-dir "$OUT/on" --config "$OUT/on.toml" \
  --listen 127.0.0.1:19391 --control-listen 127.0.0.1:19392 --s3-listen 127.0.0.1:0)
log "updraft warm, metering and logs off"
OFF=$(count off http://127.0.0.1:19393/hello http://127.0.0.1:19394/v1/health \
  "$UPDRAFT" serve --data-dir "$OUT/off" --config "$OUT/off.toml" \
  --listen 127.0.0.1:19393 --control-listen 127.0.0.1:19394 --s3-listen 127.0.0.1:0)

k() { awk -v v="$1" 'BEGIN { printf "%.1fk", v / 1000 }'; }
TABLE=$(cat <<TBL
| subject | instructions / request | ratio to \`wasmtime serve\` (fewer is faster) |
| --- | ---: | ---: |
| \`wasmtime serve --max-instance-reuse-count 1000\` (reference) | $(k "$WT") | 1.00x |
| **updraft, \`instance_reuse = "warm"\`**, metering and logs on | $(k "$ON") | **$(ratio "$WT" "$ON")x** |
| updraft, warm, \`[metering]\` and \`[logs]\` off | $(k "$OFF") | $(ratio "$WT" "$OFF")x |

- Metering and logging cost: **$(awk -v on="$ON" -v off="$OFF" 'BEGIN { printf "%.1f", (1 - off / on) * 100 }')%** of the warm request's instructions (target ≤ 5%).

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL); valgrind $(valgrind --version | sed 's/valgrind-//'),
callgrind, all threads, user space only; wrk -t1 -c4, $WARMUP warm-up then $DURATION counted;
examples/hello (one log line per request). The pooling allocator is off for both servers;
\`wasmtime serve\` $WASMTIME_VERSION is sent the four headers Updraft adds for its guest.
TBL
)
printf '\n%s\n' "$TABLE"
write_results hot-path-instructions "$TABLE"
