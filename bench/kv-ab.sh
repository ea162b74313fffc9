#!/usr/bin/env bash
# Two builds of the key-value path, paired: the `bench/kv.sh` guest (noop against one get + one
# set) on a base binary and on this tree's build, both servers up at once on the server core,
# rounds alternating base noop, base touch, new noop, new touch. The two builds' ratios (touch /
# noop) in one round are measured seconds apart, so a change worth a few percent shows in the
# medians and in how many rounds it wins, where two separate kv.sh runs drift by more than that.
# Run with BASE set to this tree's own binary, it measures the machine's noise (this VM: medians
# 0.64x and 0.60x, single 3 s rounds 0.43x-1.00x).
#
#   cp target/release/updraft /tmp/updraft-base    # before the change
#   BASE=/tmp/updraft-base bench/kv-ab.sh
#   BASE=/tmp/updraft-base NEW_ENV="UPDRAFT_LOG=warn" ROUNDS=12 DURATION=3s bench/kv-ab.sh
ROUNDS=${ROUNDS:-10}
DURATION=${DURATION:-3s}
source "$(dirname "$0")/lib.sh"

: "${BASE:?set BASE to the updraft binary to compare against (e.g. a copy of an older build)}"
[ -x "$BASE" ] || { log "BASE=$BASE is not an executable"; exit 1; }

write_kv_app

PIDS=()
# Starts one server (lib.sh's start_server) with its environment ("VAR=value ..."), its output
# in $OUT/<name>.log, and deploys the guest: name binary first-port environment.
start_one() {
  local name=$1 bin=$2 port=$3
  # The environment goes through a one-line wrapper that execs the server (same process).
  printf '#!/bin/sh\nexec env %s "%s" "$@"\n' "$4" "$bin" >"$OUT/$name.sh"
  chmod +x "$OUT/$name.sh"
  start_server "$OUT/$name.sh" "$OUT/$name" "$OUT/$name.log" "$port"
  PIDS+=("$UD_PID")
  "$bin" deploy "$OUT/app" --no-build --server "http://127.0.0.1:$((port + 1))" \
    --data-dir "$OUT/$name" >&2
}
start_one base "$BASE" 18081 "${BASE_ENV:-}"
start_one new "$UPDRAFT" 18091 "${NEW_ENV:-}"

rps() { local line; line=$(measure "$1" "$CONNECTIONS" -s "$OUT/post.lua"); echo "${line%% *}"; }
log "warming both servers up"
for port in 18081 18091; do
  for path in kv/noop kv/touch/k; do rps "http://127.0.0.1:$port/$path" >/dev/null; done
done
log "$ROUNDS rounds of $DURATION per request, alternating"
for r in $(seq 1 "$ROUNDS"); do
  row=""
  for port in 18081 18091; do
    noop=$(rps "http://127.0.0.1:$port/kv/noop")
    touch=$(rps "http://127.0.0.1:$port/kv/touch/k")
    row="$row $noop $touch"
  done
  echo "$row" >>"$OUT/rounds.txt"
  log "round $r: $row"
done
kill -INT "${PIDS[@]}"
wait "${PIDS[@]}" 2>/dev/null || true

python3 - "$OUT/rounds.txt" "$BASE" "$CONNECTIONS" "$DURATION" "$CPU_MODEL" "${PINNING:-}" <<'PY'
import statistics, sys
path, base, conns, duration, cpu, pinning = sys.argv[1:]
rows = [[float(x) for x in line.split()] for line in open(path)]
b = [r[1] / r[0] for r in rows]
n = [r[3] / r[2] for r in rows]
print("| build | noop req/s | touch req/s | touch / noop (median) | range | rounds won |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for name, ratios, cols in (("base", b, (0, 1)), ("new", n, (2, 3))):
    won = sum((x > y) for x, y in zip(ratios, n if name == "base" else b))
    print(f"| {name} | {statistics.median(r[cols[0]] for r in rows):.0f} "
          f"| {statistics.median(r[cols[1]] for r in rows):.0f} "
          f"| **{statistics.median(ratios):.2f}x** | {min(ratios):.2f}-{max(ratios):.2f}x "
          f"| {won} of {len(rows)} |")
print(f"\nbase: {base}; {len(rows)} rounds of {duration} per request, wrk -c{conns}, "
      f"{cpu}{', ' + pinning if pinning else ''}")
PY
