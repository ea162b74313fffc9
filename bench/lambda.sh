#!/usr/bin/env bash
# Lambda-compatible process functions (docs/lambda.md), three measurements:
# 1. warm invoke overhead: a Python handler called over HTTP, one request at a time, against the
#    same handler called in a bare loop in one Python process (the handler's own cost); the
#    difference is what Updraft adds per invocation (gateway, dispatcher, Runtime API, the
#    runtime client's loop; awslambdaric's own share measured apart). Target < 200 us. The Rust
#    lambda_runtime bootstrap over HTTP in the same way, for the platform with a fast client.
# 2. cold start per runtime: a request to a function whose process was reaped (idle timeout
#    100 ms), spawn to first response as the client sees it, init included.
# 3. throughput of the same "Hello, world!" as a Python handler, a Rust lambda_runtime
#    bootstrap and a wasm component (examples/hello), 4 processes / connections each.
#
#   bench/lambda.sh
#   N=50 WRITE_RESULTS=1 bench/lambda.sh
source "$(dirname "$0")/lib.sh"
N=${N:-30}
LAMBDA=$ROOT/test-programs/lambda

log "building the Rust lambda_runtime bootstrap (release)"
cargo build -q --release --locked --manifest-path "$LAMBDA/rust/Cargo.toml" \
  --target-dir "$TOOLS/lambda-target" >&2
BOOTSTRAP=$TOOLS/lambda-target/release/bootstrap

mkdir -p "$OUT/app/py" "$OUT/app/node" "$OUT/app/rs"
cp "$LAMBDA/python/app.py" "$OUT/app/py/"
cp "$LAMBDA/nodejs/index.mjs" "$OUT/app/node/"
cp "$BOOTSTRAP" "$OUT/app/rs/"
fn() { # name runtime-lines code route extra
  printf '[[functions]]\nname = "%s"\n%s\ncode = "%s"\nmax_concurrency = 4\n%s\n[[functions.http]]\nroute = "%s"\n' \
    "$1" "$2" "$3" "$5" "$4"
}
{
  printf '[app]\nname = "bench"\n'
  fn py 'runtime = "python"\nhandler = "app.handler"' py "/py/:op" ""
  fn rs 'runtime = "provided"' rs "/rs/:op" ""
  fn node 'runtime = "nodejs"\nhandler = "index.handler"' node "/node/:op" ""
  fn pycold 'runtime = "python"\nhandler = "app.handler"' py "/pycold/:op" 'idle_timeout = "100ms"'
  fn rscold 'runtime = "provided"' rs "/rscold/:op" 'idle_timeout = "100ms"'
  fn nodecold 'runtime = "nodejs"\nhandler = "index.handler"' node "/nodecold/:op" 'idle_timeout = "100ms"'
  printf '[[functions]]\nname = "wasm"\ncomponent = "%s"\nmax_concurrency = 4\n[[functions.http]]\nroute = "/hello"\n' "$HELLO"
} | sed 's/\\n/\n/g' >"$OUT/app/updraft.toml"
start_updraft
deploy "$OUT/app"
for u in py/hello rs/hello node/hello hello; do
  [ "$(curl -fsS "$DATA/$u")" = "Hello, world!" ] || { log "$u did not say hello"; exit 1; }
done
curl -fsS "$DATA/py/hello" >/dev/null

# 1. Warm invoke overhead.
log "warm invoke: one connection, ${ROUNDS} rounds of $DURATION, Python and Rust each against the wasm hello"
run_alternating "$DATA/py/hello" "$DATA/hello" 1 >"$OUT/warm.txt"
read -r PY1_RPS PY1_P50 PY1_P99 < <(sed -n 1p "$OUT/warm.txt")
read -r WASM1_RPS WASM1_P50 WASM1_P99 < <(sed -n 2p "$OUT/warm.txt")
run_alternating "$DATA/rs/hello" "$DATA/hello" 1 >"$OUT/warm-rs.txt"
read -r RS1_RPS RS1_P50 RS1_P99 < <(sed -n 1p "$OUT/warm-rs.txt")
log "bare loop: the same handler called in-process; then awslambdaric's own Python work per invocation"
# The second figure runs awslambdaric's per-invocation code (context, event JSON, handler,
# result JSON) with its HTTP calls left out: the runtime client's share of the overhead.
read -r BARE_US RIC_US < <(cd "$OUT/app/py" && AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 \
  PYTHONPATH="$(echo "$OUT"/data/process/clients/python-awslambdaric-*)" python3 - <<'PY'
import json, time, types, app
from awslambdaric import bootstrap
from awslambdaric.lambda_runtime_client import LambdaRuntimeClient
event = {"version": "2.0", "routeKey": "GET /py/:op", "rawPath": "/py/hello", "pathParameters": {"op": "hello"},
         "headers": {"host": "127.0.0.1"}, "requestContext": {"http": {"method": "GET", "path": "/py/hello"}}}
ctx = types.SimpleNamespace(aws_request_id="x", function_name="py")
def per_call(f, n=200000):
    for _ in range(n // 20): f()
    t = time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter() - t) / n * 1e6
class Client:  # awslambdaric's client with its two HTTP calls left out
    marshaller = LambdaRuntimeClient.marshaller
    def post_invocation_result(self, *_): pass
    def post_invocation_error(self, *_): pass
body, client = json.dumps(event).encode(), Client()
def ric():
    bootstrap.update_xray_env_variable("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    bootstrap.handle_event_request(client, app.handler, "id", body, "application/json", None, None,
        "arn:aws:lambda:us-east-1:000000000000:function:py", "1796038959090", None, None)
print(f"{per_call(lambda: app.handler(event, ctx)):.2f} {per_call(ric, 50000):.1f}")
PY
)
OVERHEAD=$(awk -v a="$PY1_P50" -v b="$BARE_US" 'BEGIN { printf "%.0f", a - b }')

# 2. Cold starts.
cold() { # route
  for _ in $(seq 1 "$N"); do
    sleep 0.35
    curl -fsS -o /dev/null -w '%{time_total}\n' "$DATA/$1"
  done | awk '{ printf "%.2f\n", $1 * 1000 }' >"$OUT/cold.txt"
  printf '%s %s\n' "$(percentile 50 <"$OUT/cold.txt")" "$(percentile 99 <"$OUT/cold.txt")"
}
log "cold starts: $N per runtime, each after the process was reaped"
read -r PYC50 PYC99 < <(cold pycold/hello)
read -r NODEC50 NODEC99 < <(cold nodecold/hello)
read -r RSC50 RSC99 < <(cold rscold/hello)

# 3. Throughput, like with like: 4 connections, 4 processes (or instances) at most; each
# runtime in rounds alternating with the wasm hello, its ratio from its own pair.
log "throughput: 4 connections, ${ROUNDS} alternating rounds of $DURATION each"
pair() { # route prefix
  run_alternating "$DATA/$1" "$DATA/hello" 4 >"$OUT/pair.txt"
  printf '%s %s\n' "$(sed -n 1p "$OUT/pair.txt")" "$(sed -n 2p "$OUT/pair.txt" | cut -d' ' -f1)"
}
read -r RS_RPS RS_P50 RS_P99 RS_WASM < <(pair rs/hello)
read -r PY_RPS PY_P50 PY_P99 PY_WASM < <(pair py/hello)
read -r NODE_RPS NODE_P50 NODE_P99 NODE_WASM < <(pair node/hello)
# What the sandbox enforced on this host, as the server reports it.
SANDBOX=$(curl -fsS -H "Authorization: Bearer $(cat "$OUT/data/admin-token")" "$CONTROL/v1/functions/py" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["sandbox"]["summary"])')
stop_updraft
log "raw: py1 $PY1_P50/$PY1_P99 bare $BARE_US ric $RIC_US rs1 $RS1_P50/$RS1_P99 wasm1 $WASM1_P50 cold py $PYC50/$PYC99 node $NODEC50/$NODEC99 rs $RSC50/$RSC99"
log "raw: rps rs $RS_RPS/$RS_WASM py $PY_RPS/$PY_WASM node $NODE_RPS/$NODE_WASM"

TABLE=$(cat <<TBL
| measurement | result |
| --- | ---: |
| Python handler over HTTP, one request at a time: p50 / p99 | ${PY1_P50} us / ${PY1_P99} us |
| the same handler in a bare loop in one Python process, per call | ${BARE_US} us |
| **warm invoke overhead, Python** (p50 minus the bare call; target < 200 us) | **${OVERHEAD} us** |
| of which awslambdaric's own Python work per invocation (its HTTP calls left out) | ${RIC_US} us |
| **Rust lambda_runtime bootstrap over HTTP, one request at a time: p50 / p99** (its handler's own cost, a few us, not subtracted) | **${RS1_P50} us** / ${RS1_P99} us |
| for scale: the wasm hello over HTTP, one request at a time, p50 / p99 | ${WASM1_P50} us / ${WASM1_P99} us |
| cold start, spawn to first response, p50 / p99: Python (awslambdaric) | ${PYC50} ms / ${PYC99} ms |
| cold start: Node.js | ${NODEC50} ms / ${NODEC99} ms |
| cold start: Rust (lambda_runtime bootstrap) | ${RSC50} ms / ${RSC99} ms |

| Hello, world! with 4 connections, 4 processes | req/s | p50 | p99 | wasm hello in the same rounds | vs wasm |
| --- | ---: | ---: | ---: | ---: | ---: |
| Rust lambda_runtime bootstrap | ${RS_RPS} | ${RS_P50} us | ${RS_P99} us | ${RS_WASM} | $(ratio "$RS_RPS" "$RS_WASM")x |
| Python handler (awslambdaric) | ${PY_RPS} | ${PY_P50} us | ${PY_P99} us | ${PY_WASM} | $(ratio "$PY_RPS" "$PY_WASM")x |
| Node.js handler | ${NODE_RPS} | ${NODE_P50} us | ${NODE_P99} us | ${NODE_WASM} | $(ratio "$NODE_RPS" "$NODE_WASM")x |

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL)${PINNING:+, $PINNING}, the function processes on the server's core; wrk over
loopback, medians of $ROUNDS rounds of $DURATION, each process runtime alternating round by round
with the wasm hello (examples/hello, at most 4 instances) it is compared with; every process in the sandbox
(${SANDBOX}). The Python handler and the wasm component return the same text; the Rust handler also
parses the event into the API Gateway v2 type of \`aws_lambda_events\`, as \`lambda_http\` does. Cold
starts: $N each, curl, one at a time, each after the 100 ms idle timeout reaped the process.
TBL
)
printf '\n%s\n' "$TABLE"
write_results lambda "$TABLE"
