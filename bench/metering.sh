#!/usr/bin/env bash
# What metering and logging cost: warm hello-world throughput (examples/hello, which prints one
# log line per request, `instance_reuse = "warm"`) with metering + logs on (the default: an
# invocation record, metrics, quotas checked, the guest's line stored) against the same server
# with `[metering] enabled = false` and `[logs] enabled = false`. The budget is 5%.
# Rounds alternate between the two servers (restarted each round) so drift hits both alike.
#
#   bench/metering.sh
#   ROUNDS=5 DURATION=20s WRITE_RESULTS=1 bench/metering.sh
source "$(dirname "$0")/lib.sh"

mkdir -p "$OUT/app"
printf '[app]\nname = "bench"\n[[functions]]\nname = "hello"\ncomponent = "%s"\ninstance_reuse = "warm"\nmax_reuse = 100000\n[[functions.http]]\nroute = "/hello"\n' \
  "$HELLO" >"$OUT/app/updraft.toml"
printf '' >"$OUT/on.toml"
printf '[metering]\nenabled = false\n[logs]\nenabled = false\n' >"$OUT/off.toml"

round() { # on|off -> appends "rps p50 p99" to $OUT/<mode>.txt
  start_updraft --config "$OUT/$1.toml"
  deploy "$OUT/app"
  measure $DATA/hello >/dev/null # warm-up
  measure $DATA/hello >>"$OUT/$1.txt"
  if [ "$1" = on ]; then
    # Every request left a record: count them (the writer may still be flushing the last ones).
    sleep 0.3
    RECORDS=$(curl -fsS -H "authorization: Bearer $(cat "$OUT/data/admin-token")" \
      "$CONTROL/v1/usage?since=1h" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["invocations"])')
    log "  records written this round: $RECORDS"
  fi
  stop_updraft
}

log "updraft serve: metering + logs on, and off, alternating"
for _ in $(seq 1 "$ROUNDS"); do round on; round off; done
medians() { for f in 1 2 3; do cut -d' ' -f$f "$1" | median; done | paste -sd' '; }
read -r ON ON50 ON99 < <(medians "$OUT/on.txt")
read -r OFF OFF50 OFF99 < <(medians "$OUT/off.txt")
COST=$(awk -v on="$ON" -v off="$OFF" 'BEGIN { printf "%.1f", (1 - on/off) * 100 }')

TABLE=$(cat <<TBL
| subject | req/s | p50 | p99 | vs reference |
| --- | ---: | ---: | ---: | ---: |
| metering and logs **off** (reference) | $OFF | $OFF50 µs | $OFF99 µs | 1.00x |
| **metering and logs on** (record + metrics + quota check + 1 stored log line per request) | $ON | $ON50 µs | $ON99 µs | **$(ratio "$ON" "$OFF")x** |

Cost of metering and logging: **${COST}%** of warm throughput (budget: 5%).

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL)${PINNING:+, $PINNING}, examples/hello (Rust,
\`instance_reuse = "warm"\`), wrk -c$CONNECTIONS, median of $ROUNDS x $DURATION per subject, rounds
alternating between them (server restarted each round).
TBL
)
printf '\n%s\n' "$TABLE"
write_results metering "$TABLE"
