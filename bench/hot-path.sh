#!/usr/bin/env bash
# The hot path's three ratios, measured in one run (issue 13's targets):
#   1. warm instance reuse: Updraft (`instance_reuse = "warm"`) vs
#      `wasmtime serve --max-instance-reuse-count 1000`, same Rust hello component (target >= 1.0x);
#   2. fresh instances: Updraft (a fresh instance per request, the default) vs `wasmtime serve`
#      with its defaults (target >= 1.3x);
#   3. metering and logging: Updraft warm with them on (the default) vs the same server with
#      `[metering]` and `[logs]` off (cost target <= 5%).
# Like with like: a guest behind Updraft sees four headers Updraft adds (request id, version,
# `traceparent`, matched route), and the wstd guest copies every header into its own map, which
# doubles its work per request. So the `wasmtime serve` references are sent the same four
# headers by the client; one more subject, `wasmtime serve` with reuse and no extra headers,
# shows what they cost the guest.
# Every subject runs at once (all servers pinned to core 0, idle ones cost nothing), and each
# round measures each subject once, in a rotating order, so drift in the machine's load hits
# every subject alike instead of showing up as a ratio.
#
#   bench/hot-path.sh                        # 5 rounds x 10 s per subject
#   ROUNDS=7 DURATION=20s WRITE_RESULTS=1 bench/hot-path.sh
ROUNDS=${ROUNDS:-5}
source "$(dirname "$0")/lib.sh"
need_wasmtime

REUSE=1000
declare -A URL PID

start_wasmtime() { # name port [flags...]
  local name=$1 port=$2; shift 2
  $SERVER_CPU "$WASMTIME" serve -Scli --addr "127.0.0.1:$port" "$@" "$HELLO" >"$OUT/$name.log" 2>&1 &
  PID[$name]=$!
  URL[$name]=http://127.0.0.1:$port/hello
  wait_for "${URL[$name]}"
}

start_server() { # name data_port control_port config_file
  local name=$1 data=$2 control=$3
  rm -rf "$OUT/$name"
  $SERVER_CPU "$UPDRAFT" serve --data-dir "$OUT/$name" --listen "127.0.0.1:$data" \
    --control-listen "127.0.0.1:$control" --s3-listen 127.0.0.1:0 --config "$4" >"$OUT/$name.log" 2>&1 &
  PID[$name]=$!
  wait_for "http://127.0.0.1:$control/v1/health"
  "$UPDRAFT" deploy "$OUT/app" --no-build --server "http://127.0.0.1:$control" \
    --data-dir "$OUT/$name" >&2
}

mkdir -p "$OUT/app"
{
  printf '[app]\nname = "bench"\n'
  printf '[[functions]]\nname = "fresh"\ncomponent = "%s"\n[[functions.http]]\nroute = "/fresh"\n' "$HELLO"
  printf '[[functions]]\nname = "warm"\ncomponent = "%s"\ninstance_reuse = "warm"\nmax_reuse = %s\n[[functions.http]]\nroute = "/warm"\n' "$HELLO" $REUSE
} >"$OUT/app/updraft.toml"
printf '' >"$OUT/on.toml"
printf '[metering]\nenabled = false\n[logs]\nenabled = false\n' >"$OUT/off.toml"

start_wasmtime wt_fresh 18080
start_wasmtime wt_reuse 18083 --max-instance-reuse-count $REUSE
start_server on 18081 18082 "$OUT/on.toml"
start_server off 18084 18085 "$OUT/off.toml"
URL[ud_fresh]=http://127.0.0.1:18081/fresh
URL[ud_warm]=http://127.0.0.1:18081/warm
URL[ud_warm_off]=http://127.0.0.1:18084/warm

URL[wt_reuse_plain]=${URL[wt_reuse]}

# What Updraft adds to every request the guest sees (same names, same value lengths).
GUEST_HEADERS=(
  -H "x-updraft-request-id: 019acb6e5f2a4c1d9e8b7a6f5e4d3c2b"
  -H "x-updraft-version: 1"
  -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
  -H "x-updraft-route: /hello"
)
wrk_args() { case $1 in wt_fresh | wt_reuse) printf '%s\0' "${GUEST_HEADERS[@]}" ;; esac; }
# Which server process serves each subject, for its CPU time.
declare -A SERVER_OF=([wt_fresh]=wt_fresh [ud_fresh]=on [wt_reuse]=wt_reuse
  [wt_reuse_plain]=wt_reuse [ud_warm]=on [ud_warm_off]=off)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
run() { # subject -> "req/s p50 p99 cpu-µs-per-request"
  local args=() pid=${PID[${SERVER_OF[$1]}]} t0 t1 m
  mapfile -d '' args < <(wrk_args "$1")
  t0=$(cpu_ticks "$pid")
  m=$(measure "${URL[$1]}" "$CONNECTIONS" "${args[@]}")
  t1=$(cpu_ticks "$pid")
  awk -v m="$m" -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v s="${DURATION%s}" \
    'BEGIN { split(m, f, " "); printf "%s %.1f\n", m, d / hz * 1e6 / (f[1] * s) }'
}

SUBJECTS=(wt_fresh ud_fresh wt_reuse ud_warm ud_warm_off wt_reuse_plain)
for s in "${SUBJECTS[@]}"; do run "$s" >/dev/null; done # warm-up
for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS"
  n=${#SUBJECTS[@]}
  for i in $(seq 0 $((n - 1))); do
    s=${SUBJECTS[$(((i + r) % n))]}
    run "$s" >>"$OUT/$s.txt"
  done
done
for s in "${!PID[@]}"; do kill -INT "${PID[$s]}" 2>/dev/null || true; done
wait 2>/dev/null || true

medians() { for f in 1 2 3 4; do cut -d' ' -f$f "$OUT/$1.txt" | median; done | paste -sd' '; }
declare -A RPS P50 P99 CPU
for s in "${SUBJECTS[@]}"; do read -r RPS[$s] P50[$s] P99[$s] CPU[$s] < <(medians "$s"); done

# Per-round ratios too: their spread says how much to trust the medians.
round_ratios() { paste -d' ' "$OUT/$1.txt" "$OUT/$2.txt" | awk '{ printf "%.2f ", $1 / $5 }'; }
WARM=$(ratio "${RPS[ud_warm]}" "${RPS[wt_reuse]}")
FRESH=$(ratio "${RPS[ud_fresh]}" "${RPS[wt_fresh]}")
COST=$(awk -v on="${RPS[ud_warm]}" -v off="${RPS[ud_warm_off]}" 'BEGIN { printf "%.1f", (1 - on/off) * 100 }')
row() { printf '| %s | %s | %s µs | %s µs | %s µs | %s |\n' "$1" "${RPS[$2]}" "${P50[$2]}" "${P99[$2]}" "${CPU[$2]}" "$3"; }
# The same comparison by the server's CPU time per request (user + system), which a busy
# neighbour on a shared machine disturbs less than throughput: reference / subject.
cpu_ratio() { awk -v a="${CPU[$2]}" -v b="${CPU[$1]}" 'BEGIN { printf "%.2f", a / b }'; }

TABLE=$(cat <<TBL
| subject | req/s | p50 | p99 | server CPU / request | ratio (req/s) |
| --- | ---: | ---: | ---: | ---: | ---: |
$(row "\`wasmtime serve\`, default: fresh instance per request (reference)" wt_fresh "1.00x")
$(row "**updraft, fresh instance per request** (target ≥ 1.3x)" ud_fresh "**${FRESH}x**")
$(row "\`wasmtime serve --max-instance-reuse-count $REUSE\` (reference)" wt_reuse "1.00x")
$(row "**updraft, \`instance_reuse = \"warm\"\`** (target ≥ 1.0x)" ud_warm "**${WARM}x**")
$(row "updraft, warm, \`[metering]\` and \`[logs]\` off" ud_warm_off "$(ratio "${RPS[ud_warm_off]}" "${RPS[wt_reuse]}")x")
$(row "\`wasmtime serve --max-instance-reuse-count $REUSE\`, without the four headers" wt_reuse_plain "$(ratio "${RPS[wt_reuse_plain]}" "${RPS[wt_reuse]}")x")

- Warm reuse vs \`wasmtime serve\` with reuse: **${WARM}x** (per round: $(round_ratios ud_warm wt_reuse)); by CPU per request: $(cpu_ratio ud_warm wt_reuse)x.
- Fresh instances vs \`wasmtime serve\` default: **${FRESH}x** (per round: $(round_ratios ud_fresh wt_fresh)); by CPU per request: $(cpu_ratio ud_fresh wt_fresh)x.
- Warm reuse vs \`wasmtime serve\` with reuse whose guest sees no extra headers: **$(ratio "${RPS[ud_warm]}" "${RPS[wt_reuse_plain]}")x** (the four headers' cost in the guest, not in the host).
- Metering and logging cost: **${COST}%** of warm throughput (target ≤ 5%; per-round on/off: $(round_ratios ud_warm ud_warm_off)); by CPU per request: $(awk -v on="${CPU[ud_warm]}" -v off="${CPU[ud_warm_off]}" 'BEGIN { printf "%.1f", (on / off - 1) * 100 }')% more.

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL)${PINNING:+, $PINNING}; examples/hello
(Rust, wstd; prints one log line per request, which Updraft stores and \`wasmtime serve\` writes
to its stdout file). The \`wasmtime serve\` references get, from the client, the four headers
Updraft adds to what its guest sees, unless noted. wrk -t1 -c$CONNECTIONS -d$DURATION per subject per round, median of $ROUNDS
rounds after a warm-up; all six subjects up at once, each round measuring them in a rotating
order. Server CPU is the server process's user + system time over the requests it served
(\`/proc/<pid>/stat\`). \`wasmtime serve\` $WASMTIME_VERSION with its defaults (pooling
allocator, glibc malloc); Updraft with its defaults (pooling allocator, mimalloc, metering and
logs on unless noted).
TBL
)
printf '\n%s\n' "$TABLE"
write_results hot-path "$TABLE"
