#!/usr/bin/env bash
# Documents: a get by id and an indexed query over DOCS documents (default 100,000), against
# the key-value API's get of one key (the same data path without documents) measured in the
# same run; then live-change fan-out: SUBS subscribers (default 1,000) on one collection, a
# write every 20 ms, the delay from commit to each subscriber's receipt (p50/p99).
#
#   bench/docs.sh
#   DOCS=100000 SUBS=1000 WRITES=100 WRITE_RESULTS=1 bench/docs.sh
source "$(dirname "$0")/lib.sh"
DOCS=${DOCS:-100000}
SUBS=${SUBS:-1000}
WRITES=${WRITES:-100}
ulimit -n 65536 2>/dev/null || true

mkdir -p "$OUT/app"
cat >"$OUT/app/updraft.toml" <<TOML
[app]
name = "bench"
[[functions]]
name = "hello"
component = "$HELLO"
[[functions.http]]
route = "/hello"
[[collections]]
name = "items"
indexes = ["cat", "n"]
composite_indexes = [["cat", "n"]]
TOML
start_updraft
deploy "$OUT/app"
TOKEN=$(cat "$OUT/data/admin-token")
H="Authorization: Bearer $TOKEN"
API=$DATA/_updraft/db/v1/collections/items/docs

log "loading $DOCS documents"
LOAD_RATE=$(python3 "$ROOT/bench/docs_client.py" load "$API" "$TOKEN" "$DOCS")
curl -fsS -X PUT -H "$H" "$DATA/_updraft/kv/v1/stores/bench" >/dev/null
curl -fsS -X PUT -H "$H" --data-binary '{"cat":"c1","n":1}' "$DATA/_updraft/kv/v1/stores/bench/keys/k" >/dev/null
# It works: the query returns its page of 20 from the 1,000 documents of one category.
[ "$(curl -fsS -H "$H" "$API?where=cat%20%3D%3D%20%22c7%22&limit=20" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["docs"]))')" = 20 ]

cat >"$OUT/byid.lua" <<LUA
math.randomseed(7)
request = function()
  return wrk.format("GET", string.format("/_updraft/db/v1/collections/items/docs/d%06d", math.random(0, $DOCS - 1)))
end
LUA
# Three shapes: equality (index-ordered by id), a range sorted on its own field, and equality
# sorted on another field (served by the composite index `cat, n`: no sort).
query_lua() { # file query (with %d for a random number below $3)
  cat >"$1" <<LUA
math.randomseed(11)
request = function()
  return wrk.format("GET", string.format("/_updraft/db/v1/collections/items/docs?$2", math.random(0, $3 - 1)))
end
LUA
}
query_lua "$OUT/eq.lua" 'where=cat%%20%%3D%%3D%%20%%22c%d%%22&limit=20' 100
query_lua "$OUT/range.lua" 'where=n%%20%%3E%%3D%%20%d&order=n&limit=20' "$DOCS"
query_lua "$OUT/eqsort.lua" 'where=cat%%20%%3D%%3D%%20%%22c%d%%22&order=n:desc&limit=20' 100
log "get by id, indexed queries, key-value get (reference), alternating"
for _ in $(seq 1 "$ROUNDS"); do
  measure "$DATA/_updraft/kv/v1/stores/bench/keys/k" "$CONNECTIONS" -H "$H" >>"$OUT/kv.txt"
  for q in byid eq range eqsort; do
    measure "$DATA/" "$CONNECTIONS" -H "$H" -s "$OUT/$q.lua" >>"$OUT/$q.txt"
  done
done
medians() { for f in 1 2 3; do cut -d' ' -f$f "$1" | median; done | paste -sd' '; }
read -r KV KV50 KV99 < <(medians "$OUT/kv.txt")
read -r ID ID50 ID99 < <(medians "$OUT/byid.txt")
read -r EQ EQ50 EQ99 < <(medians "$OUT/eq.txt")
read -r RG RG50 RG99 < <(medians "$OUT/range.txt")
read -r ES ES50 ES99 < <(medians "$OUT/eqsort.txt")

log "fan-out: $SUBS subscribers, $WRITES writes"
python3 "$ROOT/bench/docs_client.py" fanout "$DATA" "$TOKEN" "$SUBS" "$WRITES" >"$OUT/fanout.txt"
DELIVERED=$(wc -l <"$OUT/fanout.txt")
F50=$(percentile 50 <"$OUT/fanout.txt"); F99=$(percentile 99 <"$OUT/fanout.txt")
RSS=$(rss_kib "$UD_PID")
stop_updraft

TABLE=$(cat <<TBL
| request (over $DOCS documents) | req/s | p50 | p99 | vs key-value get |
| --- | ---: | ---: | ---: | ---: |
| key-value \`GET\` of one key (reference) | $KV | $KV50 µs | $KV99 µs | 1.00x |
| document \`GET\` by id (random of $DOCS) | $ID | $ID50 µs | $ID99 µs | $(ratio "$ID" "$KV")x |
| query \`where=cat == "cN"&limit=20\` ($((DOCS / 100)) matches each) | $EQ | $EQ50 µs | $EQ99 µs | $(ratio "$EQ" "$KV")x |
| query \`where=n >= N&order=n&limit=20\` | $RG | $RG50 µs | $RG99 µs | $(ratio "$RG" "$KV")x |
| query \`where=cat == "cN"&order=n:desc&limit=20\` (composite index \`cat, n\`) | $ES | $ES50 µs | $ES99 µs | $(ratio "$ES" "$KV")x |

| live changes | figure |
| --- | ---: |
| subscribers on one collection | $SUBS |
| writes (20 ms apart) | $WRITES |
| events delivered (of $((SUBS * WRITES))) | $DELIVERED |
| commit to receipt, p50 | $F50 ms |
| commit to receipt, p99 | $F99 ms |
| server RSS with the subscribers open | $((RSS / 1024)) MiB |

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL)${PINNING:+, $PINNING}; $DOCS documents of ~140
bytes loaded at $LOAD_RATE/s (16 writers, each write durable); wrk -c$CONNECTIONS with the
admin key, median of $ROUNDS x $DURATION per row, alternating. Fan-out: Python asyncio
subscribers on the same machine (the client shares the cores), latency from the change's commit
time to its receipt.
TBL
)
printf '\n%s\n' "$TABLE"
write_results docs "$TABLE"
