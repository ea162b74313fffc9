# Shared by the bench/*.sh scripts: tools, builds, servers, measurement. Source it; it sets
# ROOT, OUT (a temp dir removed on exit), UPDRAFT, WASMTIME, SERVER_CPU/CLIENT_CPU and the guest
# paths HELLO, ECHO, PY_HELLO (empty if Python was unavailable).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
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
# The scripts that compare with `wasmtime serve` call this first.
need_wasmtime() {
  if ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
    log "installing wasmtime-cli $WASMTIME_VERSION into $TOOLS (one-off, several minutes)"
    cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked --root "$TOOLS" \
      --target-dir "$TOOLS/target" >&2
  fi
}

# --- builds ------------------------------------------------------------------------------------
log "building updraft (release), examples/hello and the test guests"
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2 >&2
cargo build --release --locked -p updraft-cli >&2
(cd examples/hello && cargo build --release --target wasm32-wasip2 >&2)
UPDRAFT=${CARGO_TARGET_DIR:-$ROOT/target}/release/updraft
HELLO=$ROOT/examples/hello/target/wasm32-wasip2/release/hello.wasm
cargo run -q --locked -p updraft-test-guests --example guest-paths >"$OUT/guests.txt"
guest() { sed -n "s/^$1=//p" "$OUT/guests.txt"; }
ECHO=$(guest http-echo)
PY_HELLO=$(guest py-hello)

# Server on core 0 and wrk on core 1 when there are two or more; PIN=0 leaves both free to
# run on every core (a multi-threaded server, wrk competing with it).
SERVER_CPU=""; CLIENT_CPU=""
if [ "${PIN:-1}" != 0 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU="taskset -c 0"; CLIENT_CPU="taskset -c 1"
fi
CPU_MODEL=$(awk -F: '/model name/ { sub(/^ /, "", $2); print $2; exit }' /proc/cpuinfo)
PINNING=${SERVER_CPU:+server on core 0, wrk on core 1}
if [ "${PIN:-1}" = 0 ]; then PINNING="not pinned (PIN=0): server and wrk share every core"; fi

# --- servers -----------------------------------------------------------------------------------
wait_for() { # url
  for _ in $(seq 1 400); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  log "server at $1 never answered"; exit 1
}

# Starts `updraft serve` (the binary $1) on the server core with a fresh data dir $2 and its
# output in $3: data API on 127.0.0.1:$4, control on $4 + 1, S3 on $4 + 2, and any further
# serve arguments. Returns once it answers; sets UD_PID.
start_server() { # binary data-dir log port [serve arguments...]
  local bin=$1 dir=$2 out=$3 port=$4
  shift 4
  rm -rf "$dir"
  $SERVER_CPU "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" \
    --control-listen "127.0.0.1:$((port + 1))" --s3-listen "127.0.0.1:$((port + 2))" "$@" \
    >"$out" 2>&1 &
  UD_PID=$!
  wait_for "http://127.0.0.1:$((port + 1))/v1/health"
}
# This tree's server on 127.0.0.1:18081 (data) / :18082 (control) with data dir $OUT/data and
# optional extra arguments; sets UD_PID.
CONTROL=http://127.0.0.1:18082
DATA=http://127.0.0.1:18081
start_updraft() { start_server "$UPDRAFT" "$OUT/data" "$OUT/updraft.log" 18081 "$@"; }
stop_updraft() { kill -INT "$UD_PID"; wait "$UD_PID" 2>/dev/null || true; }
# Deploys the manifest in directory $1 without building.
deploy() { "$UPDRAFT" deploy "$1" --no-build --server "$CONTROL" --data-dir "$OUT/data" >&2; }
# Resident set size of a process, in KiB.
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# The key-value benches' app in $OUT/app (`kv`: test-programs/kv-draft2 on /kv/..., granted the
# `default` store; `wait`: test-programs/http-misbehave on /wait/...; both warm) and
# $OUT/post.lua (wrk: POST a 64-byte body).
write_kv_app() {
  local kv wait
  kv=$(guest kv-draft2)
  wait=$(guest http-misbehave)
  mkdir -p "$OUT/app"
  cat >"$OUT/app/updraft.toml" <<TOML
[app]
name = "bench"
[[functions]]
name = "kv"
component = "$kv"
key_value_stores = ["default"]
instance_reuse = "warm"
max_reuse = 1000000
max_concurrency = 1000
[[functions.http]]
route = "/kv/..."
[[functions]]
name = "wait"
component = "$wait"
instance_reuse = "warm"
max_reuse = 1000000
max_concurrency = 1000
[[functions.http]]
route = "/wait/..."
TOML
  cat >"$OUT/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 64)
LUA
}

# --- measurement -------------------------------------------------------------------------------
# One wrk run: prints "req_per_sec p50_us p99_us". Extra arguments go to wrk.
measure() { # url [connections [extra wrk arguments...]]
  local url=$1 conns=${2:-$CONNECTIONS}
  shift $(($# < 2 ? $# : 2))
  $CLIENT_CPU wrk -t1 -c"$conns" -d"$DURATION" --latency "$@" "$url" >"$OUT/wrk.txt"
  awk '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
    /Requests\/sec/ { rps=$2 }
    $1=="50%" { p50=us($2) }
    $1=="99%" { p99=us($2) }
    /Non-2xx/ { bad=$NF }
    END { if (bad > 0) { print "non-2xx responses: " bad " from " url > "/dev/stderr"; exit 1 } printf "%.0f %.0f %.0f\n", rps, p50, p99 }
  ' url="$url" "$OUT/wrk.txt" || {
    # What the server said about it (its warnings), before the script gives up. (None when
    # the failing server is a reference: nginx, wasmtime serve.)
    { grep -v ' INFO ' "$OUT/updraft.log" 2>/dev/null || true; } | tail -20 >&2
    return 1
  }
}

# Like measure, but paced: each connection waits $3 ms (default 5) after every answer, so the
# load is steady traffic well below saturation (open capacity left), not a throughput test.
measure_paced() { # url [connections [delay_ms]]
  local url=$1 conns=${2:-4} delay=${3:-5}
  printf 'function delay() return %s end\n' "$delay" >"$OUT/paced.lua"
  measure "$url" "$conns" -s "$OUT/paced.lua"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Percentile $1 (0-100) of numbers on stdin.
percentile() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; print a[i]}'; }

# ROUNDS wrk runs after a warm-up; prints the medians "req_per_sec p50_us p99_us".
run_rounds() { # url [connections]
  measure "$@" >/dev/null
  for _ in $(seq 1 "$ROUNDS"); do measure "$@"; done >"$OUT/rounds.txt"
  printf '%s %s %s\n' \
    "$(cut -d' ' -f1 "$OUT/rounds.txt" | median)" \
    "$(cut -d' ' -f2 "$OUT/rounds.txt" | median)" \
    "$(cut -d' ' -f3 "$OUT/rounds.txt" | median)"
}

# Two subjects in alternating rounds (a warm-up each, then A, B, A, B...): prints two lines of
# medians "req_per_sec p50_us p99_us", A's then B's. For ratios between servers in one run.
run_alternating() { # url_a url_b [connections [extra wrk arguments...]]
  local a=$1 b=$2
  shift 2
  measure "$a" "$@" >/dev/null
  measure "$b" "$@" >/dev/null
  : >"$OUT/alt-a.txt"; : >"$OUT/alt-b.txt"
  for _ in $(seq 1 "$ROUNDS"); do
    measure "$a" "$@" >>"$OUT/alt-a.txt"
    measure "$b" "$@" >>"$OUT/alt-b.txt"
  done
  for f in "$OUT/alt-a.txt" "$OUT/alt-b.txt"; do
    printf '%s %s %s\n' "$(cut -d' ' -f1 "$f" | median)" "$(cut -d' ' -f2 "$f" | median)" \
      "$(cut -d' ' -f3 "$f" | median)"
  done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a/b }'; }

# Replaces the section between <!-- $1:start --> and <!-- $1:end --> in RESULTS.md with $2,
# when WRITE_RESULTS=1.
write_results() { # section text
  [ "${WRITE_RESULTS:-0}" = 1 ] || return 0
  python3 - "$ROOT/bench/RESULTS.md" "$1" "$2" <<'PY'
import sys, re
path, section, table = sys.argv[1:4]
text = open(path).read()
start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
new = f"{start}\n{table}\n{end}"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: new, text, flags=re.S)
else:
    text += f"\n{new}\n"
open(path, "w").write(text)
PY
  log "updated the $1 section of bench/RESULTS.md"
}
