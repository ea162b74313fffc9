#!/usr/bin/env bash
# What versions and canaries cost on the request path, and what a rollback does to traffic.
# `examples/hello` (Rust) is deployed as two functions: `plain` (one version, `live` only) and
# `split` (version 1 plus version 2 as a guarded 10% canary, so every request draws a version
# and both versions record their health for the guard). The reference is `plain`, measured in
# the same run. Then wrk drives `split` while `updraft rollback split` runs mid-way: the
# rollback's own latency, and the non-2xx responses wrk saw (must be 0).
#
#   bench/canary.sh
#   ROUNDS=5 DURATION=20s WRITE_RESULTS=1 bench/canary.sh
source "$(dirname "$0")/lib.sh"

mkdir -p "$OUT/app"
manifest() { # greeting of split's version
  printf '[app]\nname = "canary"\n'
  printf '[[functions]]\nname = "plain"\ncomponent = "%s"\n[[functions.http]]\nroute = "/plain"\n' "$HELLO"
  printf '[[functions]]\nname = "split"\ncomponent = "%s"\nenv = { V = "%s" }\n[[functions.http]]\nroute = "/split"\n' "$HELLO" "$1"
}
manifest one >"$OUT/app/updraft.toml"
start_updraft
deploy "$OUT/app"
manifest two >"$OUT/app/updraft.toml"
"$UPDRAFT" deploy "$OUT/app" --no-build --server "$CONTROL" --data-dir "$OUT/data" \
  --canary 10 --auto-rollback >&2

# Rounds alternate between the two subjects so that drift on the machine hits both alike.
log "updraft serve: plain (reference) and the 90/10 guarded canary, alternating"
measure $DATA/plain >/dev/null; measure $DATA/split >/dev/null
for _ in $(seq 1 "$ROUNDS"); do
  measure $DATA/plain >>"$OUT/plain.txt"
  measure $DATA/split >>"$OUT/split.txt"
done
medians() { for f in 1 2 3; do cut -d' ' -f$f "$1" | median; done | paste -sd' '; }
read -r P P50 P99 < <(medians "$OUT/plain.txt")
read -r S S50 S99 < <(medians "$OUT/split.txt")

log "rollback under load"
$CLIENT_CPU wrk -t1 -c"$CONNECTIONS" -d6s --latency $DATA/split >"$OUT/wrk-rollback.txt" &
WRK=$!
sleep 3
START=$(date +%s%N)
"$UPDRAFT" rollback split --server "$CONTROL" --data-dir "$OUT/data" >&2
ROLLBACK_MS=$(awk -v ns=$(( $(date +%s%N) - START )) 'BEGIN { printf "%.1f", ns / 1e6 }')
wait $WRK
BAD=$(awk '/Non-2xx/ { print $NF }' "$OUT/wrk-rollback.txt"); BAD=${BAD:-0}
SERVED=$(awk '/requests in/ { print $1 }' "$OUT/wrk-rollback.txt")
stop_updraft

TABLE=$(cat <<TBL
| subject | req/s | p50 | p99 | vs reference |
| --- | ---: | ---: | ---: | ---: |
| one version, \`live\` only (reference) | $P | $P50 µs | $P99 µs | 1.00x |
| **90/10 guarded canary** (version drawn per request, health recorded) | $S | $S50 µs | $S99 µs | **$(ratio "$S" "$P")x** |

Rollback of \`split\` under wrk -c$CONNECTIONS: \`updraft rollback\` took **${ROLLBACK_MS} ms** end to end
(CLI process included); wrk saw **$BAD non-2xx** of $SERVED responses.

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL)${PINNING:+, $PINNING}, examples/hello (Rust,
fresh instance per request), wrk -c$CONNECTIONS, median of $ROUNDS x $DURATION per subject, rounds
alternating between them.
TBL
)
printf '\n%s\n' "$TABLE"
write_results canary "$TABLE"
