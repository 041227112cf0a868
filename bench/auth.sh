#!/usr/bin/env bash
# Accounts benchmark, side by side in one run (loopback only, bounded in time):
#  - authenticated GET /api/v1/auth/user/ and GET /health/ of the release server, on SQLite
#    and on PostgreSQL, against the Django peer (../shared/peers/django) under gunicorn
#    (2 sync workers) and under uvicorn (2 workers), the faster of the two counting;
#  - login requests/s against the machine's bare Argon2id verify rate;
#  - peak RSS of the server during a burst of 64 concurrent logins.
#
#   bash bench/auth.sh            (PEER=/path/to/peers/django to override)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEER=${PEER:-$ROOT/../shared/peers/django}
LAB=$(mktemp -d)
PORT=18081
DJANGO_PORT=18000
ASGI_PORT=18001
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$LAB"' EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
cargo build --release -q -p saas-server -p saas-bench
BIN=$ROOT/target/release/saas-server

wrk_line() { # url [extra wrk args...] -> "rps p50 p99"
  local url=$1; shift
  wrk -t1 -c64 -d10s --latency --timeout 5s "$@" "$url" |
    awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print r, p50, p99}'
}

median3() { sort -n | sed -n 2p; }

start_server() { # database url
  DEBUG=false SECRET_KEY=bench-secret-key-0123456789 RUST_LOG=warn DATABASE_URL=$1 \
    BIND_ADDR=127.0.0.1:$PORT AUTH_RATE_LIMIT_PER_MINUTE=100000000 "$BIN" serve >"$LAB/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 500); do curl -fs "http://127.0.0.1:$PORT/health/" >/dev/null 2>&1 && return 0; sleep 0.02; done
  echo "server did not start" >&2; cat "$LAB/server.log" >&2; exit 1
}

stop_server() { kill -TERM "$SERVER"; wait "$SERVER" || true; }

token_for() { # -> access token of runner@example.com (registered on first call)
  curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/v1/auth/registration/" \
    -d '{"email":"runner@example.com","password":"bench-password-123"}' >/dev/null
  curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/v1/auth/login/" \
    -d '{"email":"runner@example.com","password":"bench-password-123"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}

echo "# Accounts benchmark — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"

echo "bare argon2id verify rate (before anything else runs): $("$ROOT/target/release/argon2-rate" 5)"

echo "## Django peer (gunicorn, 2 sync workers; uvicorn, 2 workers)"
python3 -m venv "$LAB/venv"
"$LAB/venv/bin/pip" install -q -r "$PEER/requirements.txt"
export PEER_DB=$LAB/django.sqlite3 PYTHONDONTWRITEBYTECODE=1
(cd "$PEER" && "$LAB/venv/bin/python" manage.py migrate -v 0 && "$LAB/venv/bin/python" manage.py seed_bench > "$LAB/django-token.txt")
DJANGO_TOKEN=$(tail -n 1 "$LAB/django-token.txt")
(cd "$PEER" && exec "$LAB/venv/bin/gunicorn" peer.wsgi:application -b 127.0.0.1:$DJANGO_PORT -w 2 --log-level warning) &
DJANGO=$!
(cd "$PEER" && exec "$LAB/venv/bin/uvicorn" peer.asgi:application --host 127.0.0.1 --port $ASGI_PORT --workers 2 \
  --no-access-log --log-level warning) &
ASGI=$!
for port in $DJANGO_PORT $ASGI_PORT; do
  for _ in $(seq 1 200); do curl -fs -o /dev/null -H "Authorization: Bearer $DJANGO_TOKEN" "http://127.0.0.1:$port/api/v1/auth/user/" && break; sleep 0.1; done
done

results=()
for db in sqlite postgres; do
  if [ $db = sqlite ]; then url="sqlite://$LAB/bench.db"; else
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS saas_bench" -qc "CREATE DATABASE saas_bench" >/dev/null
    url="${PG_ADMIN%/*}/saas_bench"
  fi
  start_server "$url"
  TOKEN=$(token_for)
  user=(); health=(); django=(); asgi=()
  for run in 1 2 3; do
    user+=("$(wrk_line "http://127.0.0.1:$PORT/api/v1/auth/user/" -H "Authorization: Bearer $TOKEN")")
    health+=("$(wrk_line "http://127.0.0.1:$PORT/health/")")
    django+=("$(wrk_line "http://127.0.0.1:$DJANGO_PORT/api/v1/auth/user/" -H "Authorization: Bearer $DJANGO_TOKEN")")
    asgi+=("$(wrk_line "http://127.0.0.1:$ASGI_PORT/api/v1/auth/user/" -H "Authorization: Bearer $DJANGO_TOKEN")")
  done
  pick() { printf '%s\n' "$@" | sort -n -k1 | sed -n 2p; }
  u=$(pick "${user[@]}"); h=$(pick "${health[@]}"); g=$(pick "${django[@]}"); a=$(pick "${asgi[@]}")
  echo "### $db (median of 3 × 10 s, 64 connections: rps p50 p99)"
  echo "saas GET /api/v1/auth/user/             $u"
  echo "saas GET /health/                       $h"
  echo "django gunicorn GET /api/v1/auth/user/  $g"
  echo "django uvicorn GET /api/v1/auth/user/   $a"
  awk -v u="${u%% *}" -v h="${h%% *}" -v g="${g%% *}" -v a="${a%% *}" 'BEGIN {
    peer = (g > a) ? g : a
    printf "user/health %.0f %% (target >= 50 %%); user/fastest peer %.1fx (target >= 20x)\n", 100 * u / h, u / peer }'
  if [ $db = sqlite ]; then
    echo "### login (16 connections, 10 s): rps p50 p99"
    cat > "$LAB/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"runner@example.com","password":"bench-password-123"}'
LUA
    login=$(wrk -t1 -c16 -d10s --latency --timeout 30s -s "$LAB/login.lua" "http://127.0.0.1:$PORT/api/v1/auth/login/" | awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print r, p50, p99}')
    echo "saas login   $login"
    echo "bare argon2id verify rate right after: $("$ROOT/target/release/argon2-rate" 5)"
    echo "django login $(wrk -t1 -c16 -d10s --latency --timeout 30s -s "$PEER/bench/login.lua" "http://127.0.0.1:$DJANGO_PORT/api/v1/auth/login/" | awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print r, p50, p99}')"
    sleep 8   # let the peer finish the logins still queued, so the burst below runs alone
    echo "### burst of 64 concurrent logins: server RSS"
    echo "before: $(grep VmRSS /proc/$SERVER/status | awk '{print $2}') kB"
    peak=0
    ( wrk -t1 -c64 -d8s --timeout 60s -s "$LAB/login.lua" "http://127.0.0.1:$PORT/api/v1/auth/login/" >/dev/null ) &
    load=$!
    while kill -0 $load 2>/dev/null; do
      rss=$(grep VmRSS /proc/$SERVER/status | awk '{print $2}'); [ "$rss" -gt "$peak" ] && peak=$rss; sleep 0.05
    done
    echo "peak during the burst: $peak kB; after: $(grep VmRSS /proc/$SERVER/status | awk '{print $2}') kB"
  fi
  stop_server
done
kill "$DJANGO" "$ASGI" 2>/dev/null || true
