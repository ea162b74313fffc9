#!/usr/bin/env bash
# Object storage: PUT and GET of 4 KiB and 1 MiB objects, against `dd` on the same disk, and a
# 1 GiB object's round trip with the server's peak memory.
#
# - PUT: wrk PUTs to the control API's object route (`/v1/buckets/bench/objects/k<n>`, 1,000
#   keys overwritten in turn). Every PUT is durable before its 201: the blob is written, fsynced
#   and renamed, its directory fsynced, and its row committed to data.db (synchronous = FULL).
#   wrk cannot sign SigV4, so this is the plain-HTTP route onto the same store and code path as
#   S3's PutObject, without the signature check. Reference: `dd oflag=dsync` writing blocks of
#   the same size to the same disk (one synchronous write each).
# - GET: wrk GETs one object anonymously from a public-read bucket on the S3 listener (s3s
#   parsing, the access check, a metadata read, a file read). Reference: `dd` reading the same
#   bytes from a file in the page cache.
# - 1 GiB: curl PUTs and GETs a 1 GiB object (streamed); the server's peak RSS before and after.
#
#   bench/objects.sh
#   ROUNDS=5 DURATION=20s WRITE_RESULTS=1 bench/objects.sh
source "$(dirname "$0")/lib.sh"

S3=http://127.0.0.1:18083
start_updraft
TOKEN=$(cat "$OUT/data/admin-token")
AUTH="Authorization: Bearer $TOKEN"
curl -fsS -o /dev/null -H "$AUTH" -H 'content-type: application/json' \
  -d '{"name": "bench", "public_read": true}' "$CONTROL/v1/buckets"
head -c 4096 /dev/urandom >"$OUT/4k.bin"
head -c 1048576 /dev/urandom >"$OUT/1m.bin"
for size in 4k 1m; do
  curl -fsS -o /dev/null -H "$AUTH" -X PUT --data-binary "@$OUT/$size.bin" \
    "$CONTROL/v1/buckets/bench/objects/obj-$size"
  # It works: the S3 listener serves the same bytes.
  cmp <(curl -fsS "$S3/bench/obj-$size") "$OUT/$size.bin"
done

put_script() { # size file
  cat >"$OUT/put-$1.lua" <<LUA
local f = io.open("$2", "rb")
wrk.body = f:read("*all")
f:close()
wrk.method = "PUT"
wrk.headers["Authorization"] = "Bearer $TOKEN"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/buckets/bench/objects/k" .. (n % 1000))
end
LUA
}
put_script 4k "$OUT/4k.bin"
put_script 1m "$OUT/1m.bin"

# MiB/s from req/s and the object size in bytes.
mibs() { awk -v r="$1" -v b="$2" 'BEGIN { printf "%.1f", r * b / 1048576 }'; }
# dd's bytes/s (from its last line) for the given arguments.
dd_rate() {
  dd "$@" 2>&1 | awk '/bytes/ { for (i = 1; i <= NF; i++) if ($i == "s,") { print $1 / $(i-1); exit } }'
}

log "dd references"
DD_W4=$(dd_rate if=/dev/zero of="$OUT/dd.bin" bs=4k count=2000 oflag=dsync)
DD_W1=$(dd_rate if=/dev/zero of="$OUT/dd.bin" bs=1M count=200 oflag=dsync)
head -c 268435456 /dev/urandom >"$OUT/read.bin"
cat "$OUT/read.bin" >/dev/null
DD_R4=$(dd_rate if="$OUT/read.bin" of=/dev/null bs=4k)
DD_R1=$(dd_rate if="$OUT/read.bin" of=/dev/null bs=1M)
rm -f "$OUT/dd.bin" "$OUT/read.bin"

log "PUT 4 KiB"
PUT4=$(run_rounds "$CONTROL/" "$CONNECTIONS" -s "$OUT/put-4k.lua")
log "PUT 1 MiB"
PUT1=$(run_rounds "$CONTROL/" 8 -s "$OUT/put-1m.lua")
log "GET 4 KiB"
GET4=$(run_rounds "$S3/bench/obj-4k")
log "GET 1 MiB"
GET1=$(run_rounds "$S3/bench/obj-1m" 8)

log "1 GiB round trip"
head -c 1073741824 /dev/urandom >"$OUT/1g.bin"
BEFORE=$(awk '/^VmHWM/ { print $2 }' "/proc/$UD_PID/status")
START=$(date +%s.%N)
curl -fsS -o /dev/null -H "$AUTH" -X PUT -T "$OUT/1g.bin" "$CONTROL/v1/buckets/bench/objects/gib"
MID=$(date +%s.%N)
curl -fsS "$S3/bench/gib" | cmp - "$OUT/1g.bin"
END=$(date +%s.%N)
AFTER=$(awk '/^VmHWM/ { print $2 }' "/proc/$UD_PID/status")
rm -f "$OUT/1g.bin"
GIB_PUT=$(awk -v a="$START" -v b="$MID" 'BEGIN { printf "%.0f", 1024 / (b - a) }')
GIB_GET=$(awk -v a="$MID" -v b="$END" 'BEGIN { printf "%.0f", 1024 / (b - a) }')
stop_updraft

row() { # label "rps p50 p99" bytes dd_bytes_per_s
  local label=$1 rps p50 p99 bytes=$3 dd=$4 ddops
  read -r rps p50 p99 <<<"$2"
  ddops=$(awk -v d="$dd" -v b="$bytes" 'BEGIN { printf "%.0f", d / b }')
  printf '| %s | %s | %s | %s µs | %s µs | %s ops/s, %s MiB/s | %sx |\n' "$label" "$rps" \
    "$(mibs "$rps" "$bytes")" "$p50" "$p99" "$ddops" "$(mibs "$ddops" "$bytes")" \
    "$(ratio "$rps" "$ddops")"
}
TABLE=$(
  printf '| request | req/s | MiB/s | p50 | p99 | `dd` reference | vs dd |\n'
  printf '| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'
  row "PUT 4 KiB (durable; vs dd oflag=dsync bs=4k)" "$PUT4" 4096 "$DD_W4"
  row "PUT 1 MiB (durable, 8 connections; vs dd oflag=dsync bs=1M)" "$PUT1" 1048576 "$DD_W1"
  row "GET 4 KiB (S3, anonymous; vs dd read bs=4k, page cache)" "$GET4" 4096 "$DD_R4"
  row "GET 1 MiB (S3, anonymous, 8 connections; vs dd read bs=1M)" "$GET1" 1048576 "$DD_R1"
  printf '\n1 GiB object: PUT %s MiB/s, GET %s MiB/s (curl, streamed); server peak RSS %s KiB before, %s KiB after (+%s KiB).\n' \
    "$GIB_PUT" "$GIB_GET" "$BEFORE" "$AFTER" "$((AFTER - BEFORE))"
  printf '\n%s, %s cores (%s), %s, median of %s x %s per row.\n' "$(date +%F)" "$(nproc)" \
    "$CPU_MODEL" "${PINNING:-no pinning}" "$ROUNDS" "$DURATION"
)
printf '\n%s\n' "$TABLE"
write_results objects "$TABLE"
