#!/usr/bin/env bash
# Static sites: Updraft serving a deployed `[site]` against nginx serving the same files from
# disk, on the same machine and core, with the same client.
#
# - 4 KiB HTML page, identity (no compression asked): the site lookup, headers (strong ETag,
#   Cache-Control, type) and the bytes (from Updraft's file cache), vs nginx's `sendfile`.
# - 1 MiB asset (the largest Updraft keeps in memory) and a 4 MiB one (streamed from disk),
#   8 connections.
# - 64 KiB JavaScript with a deployed `.gz` sibling and `Accept-Encoding: gzip`: both send the
#   precompressed file (nginx: `gzip_static on`). Like with like.
# - 64 KiB JavaScript gzipped on the fly (flate2 / nginx `gzip on`, level 6): NOT like with
#   like, and labelled so: Updraft compresses a file once and keeps the result (files never
#   change under their digest), nginx compresses every response.
#
# nginx (Debian's package) is installed if missing when run as root; it runs as one worker on
# the server core, like Updraft's runtime pinned there. Neither logs requests.
#
#   bench/sites.sh
#   ROUNDS=5 DURATION=20s WRITE_RESULTS=1 bench/sites.sh
source "$(dirname "$0")/lib.sh"

NGINX=$(command -v nginx || true)
if [ -z "$NGINX" ] && [ "$(id -u)" = 0 ]; then
  log "installing nginx (Debian package)"
  # Keep the package from starting a system service.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  rm -f /usr/sbin/policy-rc.d
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
[ -x "$NGINX" ] || { log "nginx is required (apt-get install nginx)"; exit 1; }

APP=$OUT/app
mkdir -p "$APP/public/assets"
printf '[app]\nname = "site"\n\n[site]\ndir = "public"\n' >"$APP/updraft.toml"
# (No `| head` in pipelines: with pipefail, the writer's SIGPIPE would end the script.)
{ printf '<html><body><pre>'; head -c 2980 /dev/urandom | base64 -w 100; } >"$APP/public/index.html"
head -c 1048576 /dev/urandom >"$APP/public/assets/big.bin"
head -c 4194304 /dev/urandom >"$APP/public/assets/huge.bin"
awk 'BEGIN { for (i = 1; i <= 1150; i++) printf "export const value%d = \"%040d\";\n", i, i }' \
  >"$APP/public/assets/app.3f9a1c2b.js"
cp "$APP/public/assets/app.3f9a1c2b.js" "$APP/public/assets/pre.3f9a1c2b.js"
gzip -6 -k "$APP/public/assets/pre.3f9a1c2b.js"

start_updraft
deploy "$APP"
NG=http://127.0.0.1:18090
mkdir -p "$OUT/nginx/logs"
cat >"$OUT/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
user $(id -un);
error_log $OUT/nginx/logs/error.log warn;
pid $OUT/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  gzip on;
  gzip_comp_level 6;
  gzip_min_length 1024;
  gzip_types application/javascript text/javascript;
  gzip_static on;
  client_body_temp_path $OUT/nginx/body;
  proxy_temp_path $OUT/nginx/proxy;
  fastcgi_temp_path $OUT/nginx/fastcgi;
  uwsgi_temp_path $OUT/nginx/uwsgi;
  scgi_temp_path $OUT/nginx/scgi;
  server {
    listen 127.0.0.1:18090;
    root $APP/public;
  }
}
CONF
$SERVER_CPU "$NGINX" -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" &
NG_PID=$!
wait_for "$NG/index.html"

# Both serve the same bytes.
for p in /index.html /assets/big.bin /assets/huge.bin /assets/app.3f9a1c2b.js; do
  cmp <(curl -fsS "$DATA$p") <(curl -fsS "$NG$p")
done
curl -fsS -H 'accept-encoding: gzip' "$DATA/assets/app.3f9a1c2b.js" | gunzip | cmp - "$APP/public/assets/app.3f9a1c2b.js"

GZ=(-H "Accept-Encoding: gzip")
# Each row: Updraft and nginx in alternating rounds.
pair() { # path [connections [wrk arguments...]]
  local path=$1
  shift
  run_alternating "$DATA$path" "$NG$path" "$@" >"$OUT/pair.txt"
  U=$(sed -n 1p "$OUT/pair.txt"); N=$(sed -n 2p "$OUT/pair.txt")
}
log "4 KiB page";  pair /index.html;                   U_SMALL=$U; N_SMALL=$N
log "1 MiB asset"; pair /assets/big.bin 8;             U_BIG=$U;   N_BIG=$N
log "4 MiB asset"; pair /assets/huge.bin 8;            U_HUGE=$U;  N_HUGE=$N
log "64 KiB .gz";  pair /assets/pre.3f9a1c2b.js "$CONNECTIONS" "${GZ[@]}"; U_PRE=$U; N_PRE=$N
log "64 KiB gzip"; pair /assets/app.3f9a1c2b.js "$CONNECTIONS" "${GZ[@]}"; U_GZ=$U;  N_GZ=$N
kill "$NG_PID"; wait "$NG_PID" 2>/dev/null || true
stop_updraft

row() { # label updraft nginx
  local ur up50 up99 nr np50 np99
  read -r ur up50 up99 <<<"$2"
  read -r nr np50 np99 <<<"$3"
  printf '| %s | %s | %s / %s µs | %s | %s / %s µs | %sx |\n' "$1" "$ur" "$up50" "$up99" \
    "$nr" "$np50" "$np99" "$(ratio "$ur" "$nr")"
}
TABLE=$(
  printf '| request | Updraft req/s | p50 / p99 | nginx req/s | p50 / p99 | vs nginx |\n'
  printf '| --- | ---: | ---: | ---: | ---: | ---: |\n'
  row "GET 4 KiB HTML ($CONNECTIONS connections)" "$U_SMALL" "$N_SMALL"
  row "GET 1 MiB asset (8 connections; Updraft from memory)" "$U_BIG" "$N_BIG"
  row "GET 4 MiB asset (8 connections; both from disk)" "$U_HUGE" "$N_HUGE"
  row "GET 64 KiB JS, precompressed .gz sibling ($CONNECTIONS connections)" "$U_PRE" "$N_PRE"
  row "GET 64 KiB JS, gzip on the fly: Updraft once per file, nginx every time (not like with like)" "$U_GZ" "$N_GZ"
  printf '\n%s, %s cores (%s), %s, median of %s x %s per subject in alternating rounds; nginx %s, 1 worker.\n' "$(date +%F)" \
    "$(nproc)" "$CPU_MODEL" "${PINNING:-no pinning}" "$ROUNDS" "$DURATION" \
    "$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
)
printf '\n%s\n' "$TABLE"
write_results sites "$TABLE"
