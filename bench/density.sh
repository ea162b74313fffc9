#!/usr/bin/env bash
# Density: resident memory of `updraft serve` with 1, 100 and 1,000 deployed functions, right
# after the deploy (code loaded) and once they are idle and scaled to zero. All functions run
# `examples/hello` under different names (each loads its own copy of the compiled code).
#
#   bench/density.sh
#   WRITE_RESULTS=1 bench/density.sh
source "$(dirname "$0")/lib.sh"

ROWS=""
declare -A LOADED IDLE
for n in 0 1 100 1000; do
  mkdir -p "$OUT/app-$n"
  {
    printf '[app]\nname = "density"\n'
    for i in $(seq 1 "$n"); do
      printf '[[functions]]\nname = "f%s"\ncomponent = "%s"\nidle_timeout = "1s"\n' "$i" "$HELLO"
    done
  } >"$OUT/app-$n/updraft.toml"
  start_updraft
  if [ "$n" -gt 0 ]; then deploy "$OUT/app-$n"; fi
  sleep 0.5
  LOADED[$n]=$(rss_kib "$UD_PID")
  sleep 2.5
  IDLE[$n]=$(rss_kib "$UD_PID")
  stop_updraft
  log "$n functions: loaded ${LOADED[$n]} KiB, idle ${IDLE[$n]} KiB"
  ROWS+="| $n | $(( ${LOADED[$n]} / 1024 )) MiB | $(( ${IDLE[$n]} / 1024 )) MiB |"$'\n'
done
per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) / 999 }'; }

TABLE=$(cat <<TBL
| deployed functions | RSS after deploy (code loaded) | RSS when idle (scaled to zero) |
| ---: | ---: | ---: |
${ROWS%$'\n'}

**Per function: $(per "${IDLE[1000]}" "${IDLE[1]}") KiB idle (scaled to zero), $(per "${LOADED[1000]}" "${LOADED[1]}") KiB loaded**
(difference between 1,000 and 1 functions, divided by 999).
$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL); examples/hello (256 KiB component) deployed
under 1,000 names, \`idle_timeout = "1s"\`; RSS from /proc after 0.5 s and after 3 s.
TBL
)
printf '\n%s\n' "$TABLE"
write_results density "$TABLE"
