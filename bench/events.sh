#!/usr/bin/env bash
# Event throughput: events per second from queue send to function ack. examples/hello
# (`instance_reuse = "warm"`) consumes queue `bench`; a sender posts N messages in batches of
# 100 (each batch one durable transaction) while the consumer runs, and the clock stops when the
# queue is empty again (every event delivered, the function answered 2xx, the message deleted).
# Measured with `batch_size = 1` (one invocation per event, CloudEvents binary mode) and
# `batch_size = 10` (batched mode). The reference, measured in the same run, is the same
# function's warm HTTP throughput on the same server (wrk), i.e. what the dispatcher does
# without the event log.
#
#   bench/events.sh
#   EVENTS=50000 ROUNDS=3 WRITE_RESULTS=1 bench/events.sh
source "$(dirname "$0")/lib.sh"
EVENTS=${EVENTS:-20000}

app() { # batch_size
  mkdir -p "$OUT/app-$1"
  printf '[app]\nname = "bench"\n[[functions]]\nname = "hello"\ncomponent = "%s"\ninstance_reuse = "warm"\nmax_reuse = 1000000\n[[functions.http]]\nroute = "/hello"\n[[functions.queue]]\nqueue = "bench"\nbatch_size = %s\n' \
    "$HELLO" "$1" >"$OUT/app-$1/updraft.toml"
  echo "$OUT/app-$1"
}

# Sends $EVENTS messages and waits until the queue is empty; prints events/s.
drain() {
  python3 - "$CONTROL" "$(cat "$OUT/data/admin-token")" "$EVENTS" <<'PY'
import json, sys, time, urllib.request
base, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": "Bearer " + token, "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
start = time.monotonic()
for i in range(0, n, 100):
    call("POST", "/v1/queues/bench/messages/batch",
         {"messages": [{"body": json.dumps({"n": i + j})} for j in range(min(100, n - i))]})
sent = time.monotonic()
while call("GET", "/v1/queues/bench")["depth"] > 0:
    time.sleep(0.01)
done = time.monotonic()
print(f"{n / (done - start):.0f} {n / (sent - start):.0f}")
PY
}

declare -A RATE SEND
for batch in 1 10; do
  : >"$OUT/b$batch.txt"
  for _ in $(seq 1 "$ROUNDS"); do
    start_updraft
    deploy "$(app "$batch")"
    drain >>"$OUT/b$batch.txt"
    # Every event ran the function once (at least once: a retry would show here).
    INVOCATIONS=$(curl -fsS -H "authorization: Bearer $(cat "$OUT/data/admin-token")" \
      "$CONTROL/v1/usage?since=1h" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["invocations"])')
    log "  batch_size $batch: $(tail -1 "$OUT/b$batch.txt") (events/s, sends/s); invocations $INVOCATIONS"
    stop_updraft
  done
  RATE[$batch]=$(cut -d' ' -f1 "$OUT/b$batch.txt" | median)
  SEND[$batch]=$(cut -d' ' -f2 "$OUT/b$batch.txt" | median)
done

log "reference: warm HTTP throughput of the same function"
start_updraft
deploy "$(app 1)"
read -r HTTP _ _ < <(run_rounds "$DATA/hello")
stop_updraft

TABLE=$(cat <<TBL
| subject | events/s (send → ack) | sends/s (durable, 100 per request) | vs reference |
| --- | ---: | ---: | ---: |
| warm HTTP requests to the same function (reference, wrk -c$CONNECTIONS) | $HTTP req/s | | 1.00x |
| queue trigger, \`batch_size = 1\` (one invocation per event) | ${RATE[1]} | ${SEND[1]} | **$(ratio "${RATE[1]}" "$HTTP")x** |
| queue trigger, \`batch_size = 10\` (CloudEvents batched mode) | ${RATE[10]} | ${SEND[10]} | **$(ratio "${RATE[10]}" "$HTTP")x** |

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL)${PINNING:+, $PINNING}, examples/hello (Rust,
\`instance_reuse = "warm"\`), $EVENTS events per round sent while the consumer runs, median of
$ROUNDS rounds (server restarted each round); events/s is $EVENTS / (first send → queue empty).
TBL
)
printf '\n%s\n' "$TABLE"
write_results events "$TABLE"
