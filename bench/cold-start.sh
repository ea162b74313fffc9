#!/usr/bin/env bash
# Cold start of an evicted function: `examples/hello` deployed with a 100 ms idle timeout, then
# requested N times, each after it has been evicted. Reports the load time Updraft measures
# inside the server (compiled code mapped from the disk cache + pre-instantiation, from its
# "cold start" log lines) and the request latency the client sees, next to a warm request's.
# The reference is `wasmtime serve` started from the same precompiled artifact: process spawn
# to first response (what a FaaS without an in-process cache pays per cold start).
#
#   bench/cold-start.sh                 # N=100
#   N=300 WRITE_RESULTS=1 bench/cold-start.sh
source "$(dirname "$0")/lib.sh"
need_wasmtime
N=${N:-100}

mkdir -p "$OUT/app"
printf '[app]\nname = "cold"\n[[functions]]\nname = "cold"\ncomponent = "%s"\nidle_timeout = "100ms"\n[[functions.http]]\nroute = "/cold"\n' \
  "$HELLO" >"$OUT/app/updraft.toml"
start_updraft
deploy "$OUT/app"
TOKEN=$(cat "$OUT/data/admin-token")

log "warm latency ($N requests back to back)"
for _ in $(seq 1 "$N"); do
  curl -fsS -o /dev/null -w '%{time_total}\n' $DATA/cold
done >"$OUT/warm.txt"

log "cold latency ($N requests, each after eviction)"
for _ in $(seq 1 "$N"); do
  sleep 0.35
  curl -fsS -o /dev/null -w '%{time_total}\n' $DATA/cold
done >"$OUT/cold.txt"
sleep 0.3
curl -fsS -H "authorization: Bearer $TOKEN" "$CONTROL/v1/functions/cold/logs?limit=100000" |
  python3 -c '
import json, re, sys
for l in json.load(sys.stdin)["lines"]:
    m = re.match(r"cold start: version [0-9]+ loaded from the compiled-code cache in ([0-9.]+) ms", l["line"])
    if m: print(m.group(1))' >"$OUT/load.txt"
stop_updraft
COLD_STARTS=$(wc -l <"$OUT/load.txt")
[ "$COLD_STARTS" -ge "$N" ] || { log "expected $N cold starts, saw $COLD_STARTS"; exit 1; }

ms() { awk '{ printf "%.2f\n", $1 * 1000 }'; }
LOAD50=$(percentile 50 <"$OUT/load.txt"); LOAD99=$(percentile 99 <"$OUT/load.txt")
COLD50=$(ms <"$OUT/cold.txt" | percentile 50); COLD99=$(ms <"$OUT/cold.txt" | percentile 99)
WARM50=$(ms <"$OUT/warm.txt" | percentile 50); WARM99=$(ms <"$OUT/warm.txt" | percentile 99)

log "reference: wasmtime serve spawn to first response, precompiled (20 runs)"
"$WASMTIME" compile "$HELLO" -o "$OUT/hello.cwasm"
for _ in $(seq 1 20); do
  start=$(date +%s%N)
  "$WASMTIME" serve -Scli --allow-precompiled --addr 127.0.0.1:18080 "$OUT/hello.cwasm" >/dev/null 2>&1 &
  pid=$!
  until curl -fsS -o /dev/null http://127.0.0.1:18080/hello 2>/dev/null; do sleep 0.001; done
  echo $(( ($(date +%s%N) - start) / 1000 ))
  kill $pid; wait $pid 2>/dev/null || true
done | awk '{ printf "%.2f\n", $1 / 1000 }' >"$OUT/spawn.txt"
SPAWN50=$(percentile 50 <"$OUT/spawn.txt"); SPAWN99=$(percentile 99 <"$OUT/spawn.txt")

TABLE=$(cat <<TBL
| measurement | p50 | p99 |
| --- | ---: | ---: |
| **load of an evicted function inside the server** (target < 5 ms p50) | **${LOAD50} ms** | ${LOAD99} ms |
| request to an evicted function, seen by the client | ${COLD50} ms | ${COLD99} ms |
| request to a warm function, seen by the client | ${WARM50} ms | ${WARM99} ms |
| reference: \`wasmtime serve\` process start to first response, precompiled | ${SPAWN50} ms | ${SPAWN99} ms |

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL), $N cold starts of examples/hello (Rust, wstd),
each after the 100 ms idle timeout evicted it; curl over loopback, one request at a time; no
compilation happened (the load is a memory map of the cached code plus a pre-instantiation).
TBL
)
printf '\n%s\n' "$TABLE"
write_results cold-start "$TABLE"
