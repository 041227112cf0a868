#!/usr/bin/env bash
# Admin site benchmark: list pages of the users panel on PostgreSQL with USERS accounts
# (default one million) — the first page, a page deep in the list (keyset cursor), a search
# by email prefix, a filtered page, a user's detail page, and the dashboard — each with wrk
# (1 thread, 8 connections, 5 s) against the release server, signed in as staff.
#
#   bash bench/admin.sh          (USERS=200000 for a quicker run)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
USERS=${USERS:-1000000}
PORT=18082
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL=postgres://postgres@127.0.0.1:5432/saas_bench_admin
LAB=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$LAB"' EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p saas-server
BIN=$ROOT/target/release/saas-server
export DEBUG=false SECRET_KEY=bench-secret-key-0123456789 RUST_LOG=warn DATABASE_URL=$DB_URL \
  BIND_ADDR=127.0.0.1:$PORT AUTH_RATE_LIMIT_PER_MINUTE=100000000

psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS saas_bench_admin WITH (FORCE)" -qc "CREATE DATABASE saas_bench_admin" >/dev/null
"$BIN" migrate >/dev/null
echo "creating $USERS users…"
psql "$DB_URL" -q <<SQL
INSERT INTO auth_users (id, email, password_hash, is_email_verified, is_active, is_staff, date_joined)
SELECT gen_random_uuid(), 'user' || g || '@example.com', NULL, g % 3 = 0, g % 50 <> 0, false,
       now() - make_interval(secs => g)
FROM generate_series(1, $USERS) AS g;
ANALYZE auth_users;
SQL
"$BIN" createsuperuser --email staff@example.com --password 'correct horse battery 42' >/dev/null

"$BIN" serve --no-worker >"$LAB/server.log" 2>&1 &
for _ in $(seq 1 500); do curl -fs "http://127.0.0.1:$PORT/health/" >/dev/null 2>&1 && break; sleep 0.02; done

# Sign in through the form: its CSRF cookie and field, then the session cookie.
login=$(curl -s -D "$LAB/h1" "http://127.0.0.1:$PORT/admin/login/")
csrf=$(printf '%s' "$login" | sed -n 's/.*name="csrf_token" value="\([0-9a-f]*\)".*/\1/p' | head -n1)
curl -s -D "$LAB/h2" -o /dev/null -H "Cookie: saas_admin_csrf=$csrf" \
  --data-urlencode "csrf_token=$csrf" --data-urlencode email=staff@example.com \
  --data-urlencode 'password=correct horse battery 42' "http://127.0.0.1:$PORT/admin/login/"
session=$(sed -n 's/^set-cookie: saas_admin_session=\([0-9a-f]*\);.*/\1/Ip' "$LAB/h2" | head -n1)
[ -n "$session" ] || { echo "sign-in failed" >&2; cat "$LAB/h2" >&2; exit 1; }
COOKIE="Cookie: saas_admin_session=$session"

page() { curl -fs -H "$COOKIE" "http://127.0.0.1:$PORT$1"; }
# A cursor deep in the list: follow "Next page" links from a page 200 pages in, by keyset.
deep=$(page "/admin/users/" | sed -n 's/.*href="\([^"]*after=[^"]*\)".*/\1/p' | head -n1 | sed 's/&#x2f;/\//g; s/&amp;/\&/g')
for _ in $(seq 1 200); do
  deep=$(page "$deep" | sed -n 's/.*href="\([^"]*after=[^"]*\)".*/\1/p' | head -n1 | sed 's/&#x2f;/\//g; s/&amp;/\&/g')
done
some_user=$(psql "$DB_URL" -qtAc "SELECT id FROM auth_users WHERE email = 'user500000@example.com' OR email = 'user1@example.com' ORDER BY email DESC LIMIT 1")

measure() { # label path
  local out
  out=$(wrk -t1 -c8 -d5s --latency -H "$COOKIE" "http://127.0.0.1:$PORT$2" |
    awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {print r, p50, p99, bad+0}')
  read -r rps p50 p99 bad <<<"$out"
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "$bad"
}

echo "# Admin benchmark — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "PostgreSQL $(psql "$PG_ADMIN" -qtAc 'SHOW server_version'), $USERS users, 50 rows a page"
echo
echo "| page | requests/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
measure "users, first page" "/admin/users/"
measure "users, page 202 (keyset cursor)" "$deep"
measure "users, email prefix search" "/admin/users/?q=user4242"
measure "users, filtered (inactive)" "/admin/users/?active=false"
measure "a user's detail page" "/admin/users/$some_user/"
measure "dashboard (counts over all users)" "/admin/"
