#!/usr/bin/env bash
# Warm HTTP throughput: hello-world components under `updraft serve` and under `wasmtime serve`
# (the reference), measured in the same run on loopback with wrk, for each instance mode:
#   - Rust hello (examples/hello): a fresh instance per request, and instance reuse;
#   - componentize-py hello (test-programs/py-hello): fresh, and reuse (Updraft's
#     `instance_reuse = "warm"`, wasmtime's `--max-instance-reuse-count`).
# Ratios are against `wasmtime serve` with default flags on the same component.
#
#   bench/http-hello.sh                    # 3 rounds x 10 s per subject
#   ROUNDS=5 DURATION=20s CONNECTIONS=64 bench/http-hello.sh
#   WRITE_RESULTS=1 bench/http-hello.sh    # also rewrite the section in bench/RESULTS.md
source "$(dirname "$0")/lib.sh"
need_wasmtime

REUSE=1000
ROWS=""
row() { ROWS+="| $1 | $2 | $3 µs | $4 µs | $5 |"$'\n'; }

wasmtime_serve() { # label component [flags...] -> prints "rps p50 p99"
  local label=$1 component=$2; shift 2
  log "wasmtime serve: $label"
  $SERVER_CPU "$WASMTIME" serve -Scli --addr 127.0.0.1:18080 "$@" "$component" >"$OUT/wasmtime.log" 2>&1 &
  local pid=$!
  wait_for http://127.0.0.1:18080/hello
  run_rounds http://127.0.0.1:18080/hello
  kill $pid; wait $pid 2>/dev/null || true
}

read -r WT_R WT_R50 WT_R99 < <(wasmtime_serve "Rust, default" "$HELLO")
read -r WT_RR WT_RR50 WT_RR99 < <(wasmtime_serve "Rust, reuse" "$HELLO" --max-instance-reuse-count $REUSE)
if [ -n "$PY_HELLO" ]; then
  read -r WT_P WT_P50 WT_P99 < <(wasmtime_serve "Python, default" "$PY_HELLO")
  read -r WT_PR WT_PR50 WT_PR99 < <(wasmtime_serve "Python, reuse" "$PY_HELLO" --max-instance-reuse-count $REUSE)
fi

mkdir -p "$OUT/app"
{
  printf '[app]\nname = "bench"\n'
  printf '[[functions]]\nname = "rust-fresh"\ncomponent = "%s"\n[[functions.http]]\nroute = "/rust-fresh"\n' "$HELLO"
  printf '[[functions]]\nname = "rust-warm"\ncomponent = "%s"\ninstance_reuse = "warm"\nmax_reuse = %s\n[[functions.http]]\nroute = "/rust-warm"\n' "$HELLO" $REUSE
  if [ -n "$PY_HELLO" ]; then
    printf '[[functions]]\nname = "py-fresh"\ncomponent = "%s"\n[[functions.http]]\nroute = "/py-fresh"\n' "$PY_HELLO"
    printf '[[functions]]\nname = "py-warm"\ncomponent = "%s"\ninstance_reuse = "warm"\nmax_reuse = %s\n[[functions.http]]\nroute = "/py-warm"\n' "$PY_HELLO" $REUSE
  fi
} >"$OUT/app/updraft.toml"
start_updraft
deploy "$OUT/app"
log "updraft serve: Rust, fresh"; read -r UD_R UD_R50 UD_R99 < <(run_rounds $DATA/rust-fresh)
log "updraft serve: Rust, warm"; read -r UD_RR UD_RR50 UD_RR99 < <(run_rounds $DATA/rust-warm)
if [ -n "$PY_HELLO" ]; then
  log "updraft serve: Python, fresh"; read -r UD_P UD_P50 UD_P99 < <(run_rounds $DATA/py-fresh)
  log "updraft serve: Python, warm"; read -r UD_PR UD_PR50 UD_PR99 < <(run_rounds $DATA/py-warm)
fi
stop_updraft

row "\`wasmtime serve\`, Rust hello, default (reference)" "$WT_R" "$WT_R50" "$WT_R99" "1.00x"
row "\`wasmtime serve\`, Rust hello, \`--max-instance-reuse-count $REUSE\`" "$WT_RR" "$WT_RR50" "$WT_RR99" "$(ratio "$WT_RR" "$WT_R")x"
row "**updraft, Rust hello, fresh instance per request** (target ≥ 3.5x)" "$UD_R" "$UD_R50" "$UD_R99" "**$(ratio "$UD_R" "$WT_R")x**"
row "updraft, Rust hello, \`instance_reuse = \"warm\"\`" "$UD_RR" "$UD_RR50" "$UD_RR99" "$(ratio "$UD_RR" "$WT_R")x"
if [ -n "$PY_HELLO" ]; then
  row "\`wasmtime serve\`, componentize-py hello, default (reference)" "$WT_P" "$WT_P50" "$WT_P99" "1.00x"
  row "\`wasmtime serve\`, componentize-py hello, \`--max-instance-reuse-count $REUSE\`" "$WT_PR" "$WT_PR50" "$WT_PR99" "$(ratio "$WT_PR" "$WT_P")x"
  row "updraft, componentize-py hello, fresh" "$UD_P" "$UD_P50" "$UD_P99" "$(ratio "$UD_P" "$WT_P")x"
  row "**updraft, componentize-py hello, \`instance_reuse = \"warm\"\`** (target ≥ 10x)" "$UD_PR" "$UD_PR50" "$UD_PR99" "**$(ratio "$UD_PR" "$WT_P")x**"
fi

TABLE=$(cat <<TBL
| subject | req/s | p50 | p99 | vs \`wasmtime serve\` default, same component |
| --- | ---: | ---: | ---: | ---: |
${ROWS%$'\n'}

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL), wrk -t1 -c$CONNECTIONS -d$DURATION on loopback,
median of $ROUNDS rounds after a warm-up${PINNING:+, $PINNING}. \`wasmtime serve\` $WASMTIME_VERSION
with its defaults (pooling allocator, fresh instance per request); Updraft with its defaults
(pooling allocator, 64 KiB of each memory kept resident). GET of a hello-world response.
TBL
)
printf '\n%s\n' "$TABLE"
write_results http-hello "$TABLE"
