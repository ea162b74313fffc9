#!/usr/bin/env bash
# Event throughput: events per second from queue send to function ack. examples/hello
# (`instance_reuse = "warm"`) consumes queue `bench`; a sender posts N messages in batches of
# 100 (each batch one durable transaction) while the consumer runs, and the clock stops when the
# queue is empty again (every event delivered, the function answered 2xx, the message deleted).
# Measured with `batch_size = 1` (one invocation per event, CloudEvents binary mode) and
# `batch_size = 10` (batched mode). Then a second queue is filled with N events first and the
# consumer deployed after: the drain rate, which the sender cannot limit. The reference,
# measured in the same run, is the same function's warm HTTP throughput on the same server
# (wrk), i.e. what the dispatcher does without the event log.
#
#   bench/events.sh
#   EVENTS=50000 ROUNDS=3 WRITE_RESULTS=1 bench/events.sh
source "$(dirname "$0")/lib.sh"
EVENTS=${EVENTS:-20000}

app() { # batch_size [queue]
  local dir="$OUT/app-$1-${2:-bench}"
  mkdir -p "$dir"
  printf '[app]\nname = "bench"\n[[functions]]\nname = "hello"\ncomponent = "%s"\ninstance_reuse = "warm"\nmax_reuse = 1000000\n[[functions.http]]\nroute = "/hello"\n[[functions.queue]]\nqueue = "%s"\nbatch_size = %s\n' \
    "$HELLO" "${2:-bench}" "$1" >"$dir/updraft.toml"
  echo "$dir"
}

# Sends $EVENTS messages to queue $1 and waits until it is empty; prints "events/s sends/s".
# With a second argument, deploys that app directory after sending and times only the drain.
drain() { # queue [app dir to deploy after sending]
  python3 - "$CONTROL" "$(cat "$OUT/data/admin-token")" "$EVENTS" "$1" "${2:-}" "$UPDRAFT" "$OUT/data" <<'PY'
import json, subprocess, sys, time, urllib.request
base, token, n, queue, app, updraft, data = sys.argv[1:8]
n = int(n)
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": "Bearer " + token, "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
if app:
    call("POST", "/v1/queues", {"name": queue})
start = time.monotonic()
for i in range(0, n, 100):
    call("POST", f"/v1/queues/{queue}/messages/batch",
         {"messages": [{"body": json.dumps({"n": i + j})} for j in range(min(100, n - i))]})
sent = time.monotonic()
send_rate = n / (sent - start)
if app:
    subprocess.run([updraft, "deploy", app, "--no-build", "--server", base, "--data-dir", data],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = sent
while call("GET", f"/v1/queues/{queue}")["depth"] > 0:
    time.sleep(0.01)
done = time.monotonic()
print(f"{n / (done - start):.0f} {send_rate:.0f}")
PY
}

declare -A RATE SEND DRAIN
for batch in 1 10; do
  : >"$OUT/b$batch.txt"
  : >"$OUT/d$batch.txt"
  for _ in $(seq 1 "$ROUNDS"); do
    start_updraft
    deploy "$(app "$batch")"
    drain bench >>"$OUT/b$batch.txt"
    drain prefilled "$(app "$batch" prefilled)" >>"$OUT/d$batch.txt"
    # Every event ran the function once (at least once: a retry would show here).
    INVOCATIONS=$(curl -fsS -H "authorization: Bearer $(cat "$OUT/data/admin-token")" \
      "$CONTROL/v1/usage?since=1h" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["invocations"])')
    log "  batch_size $batch: $(tail -1 "$OUT/b$batch.txt") (events/s, sends/s), drain $(tail -1 "$OUT/d$batch.txt" | cut -d' ' -f1)/s; invocations $INVOCATIONS"
    stop_updraft
  done
  RATE[$batch]=$(cut -d' ' -f1 "$OUT/b$batch.txt" | median)
  SEND[$batch]=$(cut -d' ' -f2 "$OUT/b$batch.txt" | median)
  DRAIN[$batch]=$(cut -d' ' -f1 "$OUT/d$batch.txt" | median)
done

log "reference: warm HTTP throughput of the same function"
start_updraft
deploy "$(app 1)"
read -r HTTP _ _ < <(run_rounds "$DATA/hello")
stop_updraft

TABLE=$(cat <<TBL
| subject | events/s, send → ack (sender running) | sends/s (durable, 100 per request) | events/s, draining a pre-filled queue | drain vs reference |
| --- | ---: | ---: | ---: | ---: |
| warm HTTP requests to the same function (reference, wrk -c$CONNECTIONS) | $HTTP req/s | | | 1.00x |
| queue trigger, \`batch_size = 1\` (one invocation per event) | ${RATE[1]} | ${SEND[1]} | ${DRAIN[1]} | **$(ratio "${DRAIN[1]}" "$HTTP")x** |
| queue trigger, \`batch_size = 10\` (CloudEvents batched mode) | ${RATE[10]} | ${SEND[10]} | ${DRAIN[10]} | **$(ratio "${DRAIN[10]}" "$HTTP")x** |

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL)${PINNING:+, $PINNING}, examples/hello (Rust,
\`instance_reuse = "warm"\`), $EVENTS events per round sent while the consumer runs, median of
$ROUNDS rounds (server restarted each round); events/s is $EVENTS / (first send → queue empty).
TBL
)
printf '\n%s\n' "$TABLE"
write_results events "$TABLE"
