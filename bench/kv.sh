#!/usr/bin/env bash
# What key-value calls cost a guest. The same wasi:keyvalue draft2 guest (test-programs/kv-draft2,
# warm instances) is routed once: `/kv/noop` answers without touching the store (the
# reference), `/kv/touch/<key>` does one get and one set of a 64-byte value (every set durable:
# group-committed to data.db with synchronous = FULL). Rounds alternate between the two; the
# target is touch >= 0.7x noop. A third row reads a key over the HTTP API for comparison. Both
# run twice: with the server's defaults, and with busy functions' runs kept on the main threads
# (`[sandbox] long_run_after = "1s"`); with one function busy the two should agree (a lone
# busy function is not moved to the idle-priority threads). The last two rows are a second
# pair: another guest (test-programs/http-misbehave) that awaits a 0 ms timer (ready at once:
# the guest never waits) and a 1 ms one, touching no store: what waiting about as long as a
# durable write costs a request by itself, like for like.
#
#   bench/kv.sh
#   ROUNDS=5 DURATION=20s WRITE_RESULTS=1 bench/kv.sh    (DURATION in whole seconds)
source "$(dirname "$0")/lib.sh"

write_kv_app
medians() { for f in 1 2 3 4; do cut -d' ' -f$f "$1" | median; done | paste -sd' '; }
# Server CPU time (user + system, in clock ticks) so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$UD_PID/stat"; }
# measure, plus the server's CPU µs per request over the run: "req/s p50 p99 cpu_us".
measure_cpu() { # url [wrk arguments...]
  local before after line
  before=$(cpu_ticks)
  line=$(measure "$@")
  after=$(cpu_ticks)
  awk -v l="$line" -v c=$((after - before)) -v t="$(getconf CLK_TCK)" -v d="${DURATION%s}" \
    'BEGIN { split(l, f, " "); printf "%s %.0f\n", l, c / t * 1e6 / (f[1] * d) }'
}

# One configuration: prints "noop touch api" medians, each "req/s p50 p99".
run_config() { # name server.toml-text
  printf '%b' "$2" >"$OUT/server.toml"
  start_updraft --config "$OUT/server.toml"
  deploy "$OUT/app"
  TOKEN=$(cat "$OUT/data/admin-token")
  # It works: a touch stores the body, and the API reads it back.
  curl -fsS -o /dev/null -X POST --data-binary 'first' "$DATA/kv/touch/k"
  [ "$(curl -fsS -H "Authorization: Bearer $TOKEN" "$DATA/_updraft/kv/v1/stores/default/keys/k")" = first ]
  log "$1: noop vs one get + one set, alternating"
  rm -f "$OUT/noop.txt" "$OUT/touch.txt" "$OUT/api.txt" "$OUT/wait.txt" "$OUT/ready.txt"
  measure "$DATA/kv/noop" "$CONNECTIONS" -s "$OUT/post.lua" >/dev/null # warm-up
  measure "$DATA/kv/touch/k" "$CONNECTIONS" -s "$OUT/post.lua" >/dev/null
  measure "$DATA/wait/w?sleep=1" "$CONNECTIONS" -s "$OUT/post.lua" >/dev/null
  measure "$DATA/wait/w?sleep=0" "$CONNECTIONS" -s "$OUT/post.lua" >/dev/null
  for _ in $(seq 1 "$ROUNDS"); do
    measure_cpu "$DATA/kv/noop" "$CONNECTIONS" -s "$OUT/post.lua" >>"$OUT/noop.txt"
    measure_cpu "$DATA/kv/touch/k" "$CONNECTIONS" -s "$OUT/post.lua" >>"$OUT/touch.txt"
    measure_cpu "$DATA/_updraft/kv/v1/stores/default/keys/k" "$CONNECTIONS" \
      -H "Authorization: Bearer $TOKEN" >>"$OUT/api.txt"
    measure_cpu "$DATA/wait/w?sleep=1" "$CONNECTIONS" -s "$OUT/post.lua" >>"$OUT/wait.txt"
    measure_cpu "$DATA/wait/w?sleep=0" "$CONNECTIONS" -s "$OUT/post.lua" >>"$OUT/ready.txt"
  done
  stop_updraft
  read -r NOOP NOOP50 NOOP99 NOOPCPU < <(medians "$OUT/noop.txt")
  read -r TOUCH TOUCH50 TOUCH99 TOUCHCPU < <(medians "$OUT/touch.txt")
  read -r API API50 API99 APICPU < <(medians "$OUT/api.txt")
  read -r WAITR WAIT50 WAIT99 WAITCPU < <(medians "$OUT/wait.txt")
  read -r READY READY50 READY99 READYCPU < <(medians "$OUT/ready.txt")
  cat <<ROWS
| $1 | \`/kv/noop\`: no key-value calls (reference) | $NOOP | $NOOP50 µs | $NOOP99 µs | $NOOPCPU µs | 1.00x |
| $1 | \`/kv/touch/k\`: one \`get\`, one \`set\` (64 bytes, durable) | $TOUCH | $TOUCH50 µs | $TOUCH99 µs | $TOUCHCPU µs | **$(ratio "$TOUCH" "$NOOP")x** |
| $1 | \`GET /_updraft/kv/v1/stores/default/keys/k\` (HTTP API) | $API | $API50 µs | $API99 µs | $APICPU µs | $(ratio "$API" "$NOOP")x |
| $1 | \`/wait/w?sleep=0\`: another guest, its 0 ms timer ready at once (second reference) | $READY | $READY50 µs | $READY99 µs | $READYCPU µs | $(ratio "$READY" "$NOOP")x |
| $1 | \`/wait/w?sleep=1\`: the same guest awaiting a 1 ms timer, no key-value calls | $WAITR | $WAIT50 µs | $WAIT99 µs | $WAITCPU µs | $(ratio "$WAITR" "$NOOP")x (**$(ratio "$WAITR" "$READY")x** of sleep=0; touch: $(ratio "$TOUCH" "$WAITR")x of it) |
ROWS
}
ROWS_DEFAULT=$(run_config "defaults" "")
ROWS_NOMOVE=$(run_config "long runs not moved" '[sandbox]\nlong_run_after = "1s"\n')

TABLE=$(cat <<TBL
| server config | request | req/s | p50 | p99 | server CPU per request | vs noop |
| --- | --- | ---: | ---: | ---: | ---: | ---: |
$ROWS_DEFAULT
$ROWS_NOMOVE

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL)${PINNING:+, $PINNING}, test-programs/kv-draft2
and test-programs/http-misbehave (\`instance_reuse = "warm"\`), wrk -c$CONNECTIONS POST with a 64-byte body, median of $ROUNDS x
$DURATION per row, alternating. "long runs not moved": \`[sandbox] long_run_after = "1s"\`, so a
busy function's runs stay on the main threads (see docs/runtime.md).
TBL
)
printf '\n%s\n' "$TABLE"
write_results kv "$TABLE"
