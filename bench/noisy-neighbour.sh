#!/usr/bin/env bash
# Noisy neighbour: the p99 of a quiet function alone, and while another function on the same
# server is flooded with slow requests far past its max_concurrency (most of them get 429).
#
#   bench/noisy-neighbour.sh
#   WRITE_RESULTS=1 bench/noisy-neighbour.sh
source "$(dirname "$0")/lib.sh"

mkdir -p "$OUT/app"
printf '[app]\nname = "noisy"\n[[functions]]\nname = "quiet"\ncomponent = "%s"\n[[functions.http]]\nroute = "/quiet"\n[[functions]]\nname = "noisy"\ncomponent = "%s"\nmax_concurrency = 8\n[[functions.http]]\nroute = "/noisy"\n' \
  "$ECHO" "$ECHO" >"$OUT/app/updraft.toml"
start_updraft
deploy "$OUT/app"

log "quiet alone"
read -r A_RPS A_P50 A_P99 < <(run_rounds $DATA/quiet 4)
log "quiet while noisy is flooded (wrk -c128, 50 ms requests)"
SECS=$(( (${DURATION%s} + 1) * (ROUNDS + 1) + 5 ))
$CLIENT_CPU wrk -t1 -c128 -d${SECS}s "$DATA/noisy?sleep=50" >"$OUT/flood.txt" 2>&1 &
FLOOD=$!
sleep 1
read -r F_RPS F_P50 F_P99 < <(run_rounds $DATA/quiet 4)
wait $FLOOD || true
stop_updraft
THROTTLED=$(awk '/Non-2xx/ { print $NF }' "$OUT/flood.txt")
NOISY_RPS=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$OUT/flood.txt")

TABLE=$(cat <<TBL
| quiet function | req/s | p50 | p99 |
| --- | ---: | ---: | ---: |
| alone | $A_RPS | ${A_P50} µs | ${A_P99} µs |
| while \`noisy\` is flooded | $F_RPS | ${F_P50} µs | ${F_P99} µs |
| **p99 ratio flooded / alone** | | | **$(ratio "$F_P99" "$A_P99")x** |

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL), quiet: wrk -t1 -c4 -d$DURATION, median of
$ROUNDS rounds${PINNING:+, $PINNING}. Flood: wrk -c128 on \`noisy\` (\`max_concurrency = 8\`, each
request sleeps 50 ms in the guest): $NOISY_RPS req/s answered, ${THROTTLED:-0} of them 429.
Both functions run test-programs/http-echo.
TBL
)
printf '\n%s\n' "$TABLE"
write_results noisy-neighbour "$TABLE"
