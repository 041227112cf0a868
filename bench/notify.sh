#!/usr/bin/env bash
# Notifications benchmark on PostgreSQL + Redis, side by side in one run (loopback only,
# bounded in time):
#  - `notify` calls/s end to end: notify-load calls NotifyService::notify("new_message") from
#    C tasks, with its own context on the server's database and Redis; each call renders,
#    stores the inbox entry, its websocket delivery row and the unread counter, and publishes
#    the frames; a call counts as delivered when its `notification.new` frame reaches the
#    recipient's socket on the running server (K users, one socket each). 3 runs, median.
#  - GET /api/v1/notifications/unread-count/ with 1,000,000 notifications in the table
#    (100,000 unread of the benchmark user, the rest over 10,000 other recipients) against
#    GET /health/ of the same server, wrk -t1 -c64 -d10s, alternating A B A B A B; medians and
#    the ratio.
#  - the server's RSS afterwards, and the warnings/errors of its log.
# Load comes from target/release/notify-load (bench/src/bin/notify-load.rs).
#
#   bash bench/notify.sh
#     PG_ADMIN=…      postgres://postgres@127.0.0.1:5432/postgres (a fresh database is created
#                     and dropped at exit)
#     REDIS_URL=…     redis://127.0.0.1:6379 (keys under a prefix unique to this run)
#     USERS=50 CONCURRENCY=32 RUN_SECONDS=10 TOTAL=1000000
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
USERS=${USERS:-50}
CONCURRENCY=${CONCURRENCY:-32}
RUN_SECONDS=${RUN_SECONDS:-10}
TOTAL=${TOTAL:-1000000}
USER_ROWS=100000
LAB=$(mktemp -d)
PORT=18085
PG_DB=saas_notify_bench_$$
PG_CREATED=0
REDIS_PREFIX="notify-bench-$$-$(date +%s):"
SERVER=

cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  if [ "$PG_CREATED" = 1 ]; then
    sleep 1
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 ||
      psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
  fi
  if command -v redis-cli >/dev/null; then # the jobs and cache keys of this run only
    redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*" 2>/dev/null |
      xargs -r -n 500 redis-cli -u "$REDIS_URL" DEL >/dev/null 2>&1 || true
  fi
  rm -rf "$LAB"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

redis_hostport=${REDIS_URL#redis://}; redis_hostport=${redis_hostport##*@}; redis_hostport=${redis_hostport%%/*}
if ! command -v psql >/dev/null || ! psql "$PG_ADMIN" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  echo "PostgreSQL not reachable at $PG_ADMIN (or no psql)" >&2; exit 1
fi
if ! (exec 3<>"/dev/tcp/${redis_hostport%:*}/${redis_hostport##*:}") 2>/dev/null; then
  echo "Redis not reachable at $REDIS_URL" >&2; exit 1
fi

cargo build --release -q -p saas-server -p saas-bench
BIN=$ROOT/target/release/saas-server
LOAD=$ROOT/target/release/notify-load

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

field() { # "k=v k=v …" key -> v
  awk -v k="$2" '{for (i = 1; i <= NF; i++) {n = index($i, "="); if (substr($i, 1, n - 1) == k) {print substr($i, n + 1); exit}}}' <<<"$1"
}

wrk_line() { # url [extra wrk args...] -> "rps p50 p99 non2xx socket_errors"
  local url=$1; shift
  wrk -t1 -c64 -d10s --latency --timeout 5s "$@" "$url" |
    awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
         /Socket errors/ {sub(/.*Socket errors: /, ""); gsub(/ /, ""); err=$0}
         END {print r, p50, p99, "non2xx=" (bad ? bad : 0), "socket_errors=" (err ? err : "none")}'
}

median3() { printf '%s\n' "$@" | sort -n -k1 | sed -n 2p; }

echo "# Notifications benchmark — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "PostgreSQL $(psql "$PG_ADMIN" -qtAc 'SHOW server_version'), Redis $(redis-cli -u "$REDIS_URL" INFO server 2>/dev/null | awk -F: '/^redis_version/ {print $2}' | tr -d '\r' || echo '?')"

psql "$PG_ADMIN" -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $PG_DB" \
  -c "CREATE DATABASE $PG_DB" >/dev/null
PG_CREATED=1
PG_URL="${PG_ADMIN%/*}/$PG_DB"

# env execs, so $! is the server's own pid (its /proc/<pid>/status is read below).
env DEBUG=false SECRET_KEY=bench-secret-key-0123456789 RUST_LOG=warn DATABASE_URL="$PG_URL" \
  REDIS_URL="$REDIS_URL" REDIS_PREFIX="$REDIS_PREFIX" BIND_ADDR=127.0.0.1:$PORT \
  AUTH_RATE_LIMIT_PER_MINUTE=100000000 JWT_ACCESS_TTL_SECONDS=86400 \
  EMAIL_BACKEND=file EMAIL_FILE_PATH="$LAB/mail" "$BIN" serve >"$LAB/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 1500); do
  curl -fs "http://127.0.0.1:$PORT/health/" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { echo "server exited" >&2; cat "$LAB/server.log" >&2; exit 1; }
  sleep 0.02
done
curl -fs "http://127.0.0.1:$PORT/health/" >/dev/null || { echo "server did not start" >&2; cat "$LAB/server.log" >&2; exit 1; }
echo "server RSS idle: $(rss_kb $SERVER) kB"

echo
echo "## notify() end to end: $USERS users with a socket each, $CONCURRENCY concurrent callers, ${RUN_SECONDS} s, 3 runs"
runs=()
for run in 1 2 3; do
  if out=$("$LOAD" throughput --node "http://127.0.0.1:$PORT" --database-url "$PG_URL" --redis-url "$REDIS_URL" \
      --redis-prefix "$REDIS_PREFIX" --users "$USERS" --concurrency "$CONCURRENCY" --seconds "$RUN_SECONDS" \
      2>"$LAB/load.err"); then
    echo "run $run: $out"
    runs+=("$(field "$out" calls_per_s) $out")
  else
    echo "run $run: notify-load failed: $(tail -n 3 "$LAB/load.err")"
    runs+=("0 failed")
  fi
  [ -s "$LAB/load.err" ] && sed 's/^/  notify-load: /' "$LAB/load.err" | head -n 5
done
NOTIFY_MEDIAN=$(median3 "${runs[@]}" | cut -d' ' -f2-)
echo "median (by calls_per_s): $NOTIFY_MEDIAN"
echo "server RSS after the notify runs: $(rss_kb $SERVER) kB"

echo
echo "## unread-count with $TOTAL seeded notifications"
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/v1/auth/registration/" \
  -d '{"email":"runner@example.com","password":"bench-password-123"}'
LOGIN=$(curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/v1/auth/login/" \
  -d '{"email":"runner@example.com","password":"bench-password-123"}')
TOKEN=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])' <<<"$LOGIN")
USER_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["id"])' <<<"$LOGIN")
echo "seed: $("$LOAD" seed --database-url "$PG_URL" --user "$USER_ID" --total "$TOTAL" --user-rows $USER_ROWS)"
echo "GET unread-count once: $(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/notifications/unread-count/")"

health=(); unread=()
for run in 1 2 3; do
  health+=("$(wrk_line "http://127.0.0.1:$PORT/health/")")
  unread+=("$(wrk_line "http://127.0.0.1:$PORT/api/v1/notifications/unread-count/" -H "Authorization: Bearer $TOKEN")")
done
echo "### wrk -t1 -c64 -d10s, alternating /health/ and unread-count (rps p50 p99)"
for run in 0 1 2; do
  echo "run $((run + 1)): health ${health[$run]} | unread-count ${unread[$run]}"
done
H=$(median3 "${health[@]}"); U=$(median3 "${unread[@]}")
echo "median GET /health/                              $H"
echo "median GET /api/v1/notifications/unread-count/   $U"
echo "unread-count / health: $(awk -v u="${U%% *}" -v h="${H%% *}" 'BEGIN {printf "%.1f%%", (h > 0 ? 100 * u / h : 0)}') (target >= 50%)"

echo
echo "## server memory after everything"
echo "RSS $(rss_kb $SERVER) kB, peak (VmHWM) $(hwm_kb $SERVER) kB"

kill -TERM "$SERVER" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true

echo
echo "## server log (RUST_LOG=warn): $(wc -l <"$LAB/server.log") lines"
if [ -s "$LAB/server.log" ]; then
  sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z//; s/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uuid>/g' \
    "$LAB/server.log" | sort | uniq -c | sort -rn | head -n 20
fi

echo
echo "## Summary"
echo "| measure | result | target |"
echo "|---|---|---|"
echo "| notify() calls/s (median of 3) | $(field "$NOTIFY_MEDIAN" calls_per_s) | >= 2000 |"
echo "| notification.new delivered/s, lost | $(field "$NOTIFY_MEDIAN" delivered_per_s), $(field "$NOTIFY_MEDIAN" lost) lost | |"
echo "| delivery latency p50 / p99 ms | $(field "$NOTIFY_MEDIAN" p50_ms) / $(field "$NOTIFY_MEDIAN" p99_ms) | |"
echo "| GET /health/ rps (median) | ${H%% *} | |"
echo "| GET unread-count rps (median, $TOTAL rows) | ${U%% *} | |"
echo "| unread-count / health | $(awk -v u="${U%% *}" -v h="${H%% *}" 'BEGIN {printf "%.1f%%", (h > 0 ? 100 * u / h : 0)}') | >= 50% |"
