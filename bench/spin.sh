#!/usr/bin/env bash
# Spinning guests: twice as many guests spinning in pure compute as the machine has cores, each
# with a 1 s timeout, started at once. Reports when each one's 504 arrives (its deadline is 1 s)
# and how long the control API's health check takes meanwhile. Reference: the same health
# check on the idle server, in the same run.
#
#   bench/spin.sh                      # prints the figures
#   WRITE_RESULTS=1 bench/spin.sh      # also updates the spin section of bench/RESULTS.md
source "$(dirname "$0")/lib.sh"

MISBEHAVE=$(guest http-misbehave)
LOOPS=$((2 * $(nproc)))
mkdir -p "$OUT/app"
cp "$MISBEHAVE" "$OUT/app/spin.wasm"
printf '[app]\nname = "spin"\n[[functions]]\nname = "spin"\ncomponent = "spin.wasm"\ntimeout = "1s"\nmax_concurrency = %s\n[[functions.http]]\nroute = "/spin"\n' \
  "$LOOPS" >"$OUT/app/updraft.toml"
SERVER_CPU=""
start_updraft
deploy "$OUT/app"
curl -fsS -o /dev/null "$DATA/spin"

health() { curl -s -o /dev/null -w '%{time_total}\n' "$CONTROL/v1/health"; }
IDLE=$(for _ in 1 2 3 4 5; do health; done | median)
PIDS=()
for i in $(seq 1 "$LOOPS"); do
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$DATA/spin?loop" >"$OUT/loop$i.txt" &
  PIDS+=($!)
done
sleep 0.3
BUSY=$(for _ in 1 2 3 4 5; do health; sleep 0.05; done | median)
wait "${PIDS[@]}"
cat "$OUT"/loop*.txt >"$OUT/loops.txt"
BAD=$(awk '$1 != 504' "$OUT/loops.txt" | wc -l)
FIRST=$(cut -d' ' -f2 "$OUT/loops.txt" | sort -n | head -1)
LAST=$(cut -d' ' -f2 "$OUT/loops.txt" | sort -n | tail -1)
ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }

TABLE=$(cat <<EOF
| | figure |
| --- | ---: |
| spinning guests at once (1 s timeout each) | $LOOPS |
| their 504s arrived after | $(ms "$FIRST")-$(ms "$LAST") ms |
| answers other than 504 | $BAD |
| \`/v1/health\` while they spin (median of 5) | $(ms "$BUSY") ms |
| \`/v1/health\` on the idle server (reference) | $(ms "$IDLE") ms |

$(date +%F), $(nproc) cores ($CPU_MODEL), nothing pinned; release build; curl timings.
EOF
)
printf '%s\n' "$TABLE"
write_results spin "$TABLE"
