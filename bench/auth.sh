#!/usr/bin/env bash
# What a route policy costs, and how long a sign-in takes. The same hello function (warm
# instances; its answer does not depend on the headers) is routed twice: `/pub` public and `/me` with `auth = "user"`; both are driven
# with the same `Authorization: Bearer <access token>` header, so the difference is the
# gateway verifying the ES256 token and handing over the user. The target is >= 0.95x.
# Rounds alternate between the two routes. Then ROUNDS x 20 sequential password sign-ins
# (Argon2id at OWASP's parameters) and refreshes are timed with curl's time_total.
#
#   bench/auth.sh
#   ROUNDS=5 DURATION=20s WRITE_RESULTS=1 bench/auth.sh
source "$(dirname "$0")/lib.sh"

mkdir -p "$OUT/app"
cat >"$OUT/app/updraft.toml" <<TOML
[app]
name = "bench"
[[functions]]
name = "hello"
component = "$HELLO"
instance_reuse = "warm"
max_reuse = 1000000
[[functions.http]]
route = "/pub"
methods = ["GET"]
[[functions.http]]
route = "/me"
methods = ["GET"]
auth = "user"
TOML
printf '[auth]\nper_ip_per_minute = 1000000\nper_account_per_hour = 1000000\n' >"$OUT/auth.toml"
start_updraft --config "$OUT/auth.toml"
deploy "$OUT/app"

AUTH=$DATA/_updraft/auth/v1
curl -fsS "$AUTH/signup" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"correct horse battery"}' >"$OUT/session.json"
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$OUT/session.json")
H="Authorization: Bearer $TOKEN"
# The token is accepted (and a request without it is not).
curl -fsS -o /dev/null -H "$H" "$DATA/me"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$DATA/me")" = 401 ]

log "public route vs auth = \"user\", alternating"
measure "$DATA/pub" "$CONNECTIONS" -H "$H" >/dev/null # warm-up
measure "$DATA/me" "$CONNECTIONS" -H "$H" >/dev/null
for _ in $(seq 1 "$ROUNDS"); do
  measure "$DATA/pub" "$CONNECTIONS" -H "$H" >>"$OUT/pub.txt"
  measure "$DATA/me" "$CONNECTIONS" -H "$H" >>"$OUT/user.txt"
done
medians() { for f in 1 2 3; do cut -d' ' -f$f "$1" | median; done | paste -sd' '; }
read -r PUB PUB50 PUB99 < <(medians "$OUT/pub.txt")
read -r USR USR50 USR99 < <(medians "$OUT/user.txt")

log "sign-in and refresh latency"
N=$((ROUNDS * 20))
REFRESH=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["refresh_token"])' "$OUT/session.json")
for _ in $(seq 1 "$N"); do
  curl -fsS -o /dev/null -w '%{time_total}\n' "$AUTH/token?grant_type=password" \
    -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"correct horse battery"}' >>"$OUT/signin.txt"
  curl -fsS -w '\n%{time_total}\n' "$AUTH/token?grant_type=refresh_token" \
    -H 'content-type: application/json' -d "{\"refresh_token\":\"$REFRESH\"}" >"$OUT/refresh.out"
  REFRESH=$(head -1 "$OUT/refresh.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
  tail -1 "$OUT/refresh.out" >>"$OUT/refresh.txt"
done
ms() { awk '{ printf "%.1f", $1 * 1000 }'; }
SIGN50=$(percentile 50 <"$OUT/signin.txt" | ms); SIGN99=$(percentile 99 <"$OUT/signin.txt" | ms)
REF50=$(percentile 50 <"$OUT/refresh.txt" | ms); REF99=$(percentile 99 <"$OUT/refresh.txt" | ms)
stop_updraft

TABLE=$(cat <<TBL
| route | req/s | p50 | p99 | vs public |
| --- | ---: | ---: | ---: | ---: |
| \`/pub\` public (reference) | $PUB | $PUB50 µs | $PUB99 µs | 1.00x |
| \`/me\` \`auth = "user"\` (token verified, remembered until it expires; user handed over) | $USR | $USR50 µs | $USR99 µs | **$(ratio "$USR" "$PUB")x** |

| operation (sequential, curl \`time_total\`) | p50 | p99 |
| --- | ---: | ---: |
| sign-in, \`grant_type=password\` (Argon2id, 19 MiB, t=2) | $SIGN50 ms | $SIGN99 ms |
| refresh, \`grant_type=refresh_token\` (rotation, one transaction) | $REF50 ms | $REF99 ms |

$(date -u +%Y-%m-%d), $(nproc) cores ($CPU_MODEL)${PINNING:+, $PINNING}, examples/hello
(\`instance_reuse = "warm"\`), both routes sent the same bearer token, wrk -c$CONNECTIONS, median
of $ROUNDS x $DURATION per route, alternating; $N sign-ins and refreshes.
TBL
)
printf '\n%s\n' "$TABLE"
write_results auth "$TABLE"
