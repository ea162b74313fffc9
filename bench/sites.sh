#!/usr/bin/env bash
# Static sites: Updraft serving a deployed `[site]` against nginx serving the same files from
# disk, on the same machine and core, with the same client.
#
# - 4 KiB HTML page, identity (no compression asked): the site lookup, headers (strong ETag,
#   Cache-Control, type) and a file read, vs nginx's `sendfile`.
# - 1 MiB binary asset, 8 connections: streaming a file.
# - 64 KiB JavaScript with `Accept-Encoding: gzip`: Updraft gzips on the fly (flate2, level 6,
#   no cache), nginx too (`gzip on`, level 6, `gzip_types text/javascript`).
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
head -c 3000 /dev/urandom | base64 -w 100 | head -c 4000 | sed '1s/^/<html><body><pre>/' >"$APP/public/index.html"
head -c 1048576 /dev/urandom >"$APP/public/assets/big.bin"
for i in $(seq 1 1200); do printf 'export const value%d = "%s";\n' "$i" "$(printf '%040d' "$i")"; done \
  | head -c 65536 >"$APP/public/assets/app.3f9a1c2b.js"

start_updraft
deploy "$APP"
NG=http://127.0.0.1:18090
mkdir -p "$OUT/nginx/logs"
cat >"$OUT/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $OUT/nginx/logs/error.log warn;
pid $OUT/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  types { text/javascript js; }
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  gzip on;
  gzip_comp_level 6;
  gzip_min_length 1024;
  gzip_types text/javascript;
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
for p in /index.html /assets/big.bin /assets/app.3f9a1c2b.js; do
  cmp <(curl -fsS "$DATA$p") <(curl -fsS "$NG$p")
done
curl -fsS -H 'accept-encoding: gzip' "$DATA/assets/app.3f9a1c2b.js" | gunzip | cmp - "$APP/public/assets/app.3f9a1c2b.js"

GZ=(-H "Accept-Encoding: gzip")
log "updraft: 4 KiB page";   U_SMALL=$(run_rounds "$DATA/index.html")
log "nginx: 4 KiB page";     N_SMALL=$(run_rounds "$NG/index.html")
log "updraft: 1 MiB asset";  U_BIG=$(run_rounds "$DATA/assets/big.bin" 8)
log "nginx: 1 MiB asset";    N_BIG=$(run_rounds "$NG/assets/big.bin" 8)
log "updraft: 64 KiB gzip";  U_GZ=$(run_rounds "$DATA/assets/app.3f9a1c2b.js" "$CONNECTIONS" "${GZ[@]}")
log "nginx: 64 KiB gzip";    N_GZ=$(run_rounds "$NG/assets/app.3f9a1c2b.js" "$CONNECTIONS" "${GZ[@]}")
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
  row "GET 1 MiB asset (8 connections)" "$U_BIG" "$N_BIG"
  row "GET 64 KiB JS, gzip on the fly ($CONNECTIONS connections)" "$U_GZ" "$N_GZ"
  printf '\n%s, %s cores (%s), %s, median of %s x %s per row; nginx %s, 1 worker.\n' "$(date +%F)" \
    "$(nproc)" "$CPU_MODEL" "${PINNING:-no pinning}" "$ROUNDS" "$DURATION" \
    "$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
)
printf '\n%s\n' "$TABLE"
write_results sites "$TABLE"
