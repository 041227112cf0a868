#!/usr/bin/env bash
# Chat (WebSocket) benchmark, side by side in one run (loopback only, bounded in time):
#  - fan-out in one group conversation: 100 clients, every client sends, every client receives
#    every message (its own included); 100, 500 and 1000 messages/s for 10 s on SQLite
#    (in-process pub/sub);
#  - 1000 messages/s on PostgreSQL + Redis with one node, then with two nodes (ports
#    18082/18083, clients alternating between them, Redis pub/sub carrying the messages across);
#  - server memory per idle connection with 1,000 and then 10,000 sockets held by one node
#    (SQLite, a fresh server process for each size);
#  - the Django Channels peer (../shared/peers/django: uvicorn, 1 worker, in-memory channel
#    layer) with the same fan-out at 100, 150 and 200 messages/s.
# Load comes from target/release/chat-load (bench/src/bin/chat-load.rs).
#
#   bash bench/chat.sh
#     PIN=1           server on CPU 1 (both nodes, in the two-node run), load tool on CPU 0, as
#                     platform.sh does. Off by default: 100 clients receiving up to 100,000
#                     frames/s can need more than one core in the tool, and a pinned tool would
#                     then be what is measured.
#     PEER=…          the Django peer (default ../shared/peers/django)
#     PG_ADMIN=…      postgres://postgres@127.0.0.1:5432/postgres (a fresh database is created)
#     REDIS_URL=…     redis://127.0.0.1:6379 (keys under a prefix unique to this run)
#     SECTIONS=…      which parts to run, of "sqlite pg idle django" (default: all)
#   The PostgreSQL + Redis part is skipped, with a note, when either is not reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEER=${PEER:-$ROOT/../shared/peers/django}
PIN=${PIN:-0}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
CLIENTS=100
SECTIONS=${SECTIONS:-sqlite pg idle django}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
RUN_SECONDS=10
LAB=$(mktemp -d)
PORT=18081
PORT_A=18082
PORT_B=18083
DJANGO_PORT=18000
PG_DB=saas_chat_bench_$$
PG_CREATED=0
REDIS_PREFIX="chat-bench-$$-$(date +%s):"

cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  if [ "$PG_CREATED" = 1 ]; then
    sleep 1
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 ||
      psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
  fi
  rm -rf "$LAB"
}
trap cleanup EXIT

command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
if [ "$PIN" = 1 ]; then command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux >/dev/null; }; fi

# Every socket is a descriptor, in the server and in the tool (children inherit this limit).
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then ulimit -n 1048576 2>/dev/null || true; else ulimit -n "$hard"; fi

cargo build --release -q -p saas-server -p saas-bench
BIN=$ROOT/target/release/saas-server
LOAD=$ROOT/target/release/chat-load

if [ "$PIN" = 1 ]; then SRV_PIN=(taskset -c 1); TOOL_PIN=(taskset -c 0); else SRV_PIN=(); TOOL_PIN=(); fi

start_node() { # port database_url redis_url("" for none) [serve args...]; sets LAST_PID
  local port=$1 db=$2 redis=$3; shift 3
  local envs=(DEBUG=false SECRET_KEY=bench-secret-key-0123456789 RUST_LOG=warn DATABASE_URL="$db"
    BIND_ADDR=127.0.0.1:"$port" AUTH_RATE_LIMIT_PER_MINUTE=100000000 JWT_ACCESS_TTL_SECONDS=86400
    EMAIL_BACKEND=file EMAIL_FILE_PATH="$LAB/mail")
  if [ -n "$redis" ]; then envs+=(REDIS_URL="$redis" REDIS_PREFIX="$REDIS_PREFIX"); fi
  # env and taskset exec, so $! is the server's own pid (its /proc/<pid>/status is read below).
  env "${envs[@]}" ${SRV_PIN[@]+"${SRV_PIN[@]}"} "$BIN" serve "$@" >"$LAB/server-$port.log" 2>&1 &
  LAST_PID=$!
  for _ in $(seq 1 1500); do
    curl -fs "http://127.0.0.1:$port/health/" >/dev/null 2>&1 && return 0
    kill -0 "$LAST_PID" 2>/dev/null || break
    sleep 0.02
  done
  echo "server on :$port did not start" >&2; cat "$LAB/server-$port.log" >&2; exit 1
}

stop_node() { # pid (TERM, then KILL after 10 s)
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

field() { # "k=v k=v …" key -> v
  awk -v k="$2" '{for (i = 1; i <= NF; i++) {n = index($i, "="); if (substr($i, 1, n - 1) == k) {print substr($i, n + 1); exit}}}' <<<"$1"
}

FANOUT_ROWS=()
fanout() { # label target rate node_url...
  local label=$1 target=$2 rate=$3; shift 3
  local nodes=() node out
  for node in "$@"; do nodes+=(--node "$node"); done
  if out=$(${TOOL_PIN[@]+"${TOOL_PIN[@]}"} "$LOAD" fanout --clients "$CLIENTS" --rate "$rate" \
      --seconds "$RUN_SECONDS" --target "$target" "${nodes[@]}" 2>"$LAB/load.err"); then
    echo "$label: $out"
  else
    echo "$label: chat-load failed: $(tail -n 3 "$LAB/load.err")"
    out="rate_in=$rate failed"
  fi
  FANOUT_ROWS+=("$label|$out")
}

IDLE_ROWS=()
idle() { # connections port pid
  local out
  out=$(${TOOL_PIN[@]+"${TOOL_PIN[@]}"} "$LOAD" idle --connections "$1" --node "http://127.0.0.1:$2" \
    --pid "$3" --hold-seconds 5 2>"$LAB/load.err") || echo "chat-load idle: $(tail -n 3 "$LAB/load.err")"
  echo "idle $1: ${out:-failed}"
  IDLE_ROWS+=("$1|$out")
}

echo "# Chat benchmark — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "open files: $(ulimit -n); pinning: $([ "$PIN" = 1 ] && echo 'server CPU 1, chat-load CPU 0' || echo off)"
echo "fan-out: $CLIENTS clients in one room, all sending, ${RUN_SECONDS} s per run, then up to 5 s for stragglers"

if want sqlite; then
echo "## saas-server, SQLite, one node"
start_node $PORT "sqlite://$LAB/chat.db" ""
SERVER=$LAST_PID
echo "server RSS idle: $(rss_kb $SERVER) kB"
for rate in 100 500 1000; do
  fanout "sqlite 1 node" rust $rate "http://127.0.0.1:$PORT"
done
echo "server RSS after: $(rss_kb $SERVER) kB"
stop_node $SERVER

fi

if want pg; then
echo "## saas-server, PostgreSQL + Redis"
redis_hostport=${REDIS_URL#redis://}; redis_hostport=${redis_hostport##*@}; redis_hostport=${redis_hostport%%/*}
if ! command -v psql >/dev/null || ! psql "$PG_ADMIN" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  echo "skipped: PostgreSQL not reachable at $PG_ADMIN (or no psql)"
elif ! (exec 3<>"/dev/tcp/${redis_hostport%:*}/${redis_hostport##*:}") 2>/dev/null; then
  echo "skipped: Redis not reachable at $REDIS_URL"
else
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" -qc "CREATE DATABASE $PG_DB" >/dev/null
  PG_CREATED=1
  PG_URL="${PG_ADMIN%/*}/$PG_DB"
  start_node $PORT_A "$PG_URL" "$REDIS_URL"
  NODE_A=$LAST_PID
  fanout "pg+redis 1 node" rust 1000 "http://127.0.0.1:$PORT_A"
  # The second node starts once the first has migrated; one job worker is enough.
  start_node $PORT_B "$PG_URL" "$REDIS_URL" --no-worker
  NODE_B=$LAST_PID
  fanout "pg+redis 2 nodes" rust 1000 "http://127.0.0.1:$PORT_A" "http://127.0.0.1:$PORT_B"
  echo "server RSS after: node A $(rss_kb $NODE_A) kB, node B $(rss_kb $NODE_B) kB"
  stop_node $NODE_B
  stop_node $NODE_A
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null && PG_CREATED=0
fi

fi

if want idle; then
echo "## saas-server, idle connections (SQLite, one node, fresh process per size)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
  echo "note: the open-files limit ($(ulimit -n)) is below 10,100; the 10,000-connection run will fall short"
fi
for conns in 1000 10000; do
  start_node $PORT "sqlite://$LAB/idle.db" ""
  SERVER=$LAST_PID
  sleep 2 # let start-up allocations settle before the baseline is read
  idle $conns $PORT $SERVER
  stop_node $SERVER
done

fi

if want django; then
echo "## Django peer (uvicorn, 1 worker, in-memory channel layer)"
python3 -m venv "$LAB/venv"
"$LAB/venv/bin/pip" install -q -r "$PEER/requirements.txt"
export PEER_DB=$LAB/django.sqlite3 PYTHONDONTWRITEBYTECODE=1
(cd "$PEER" && "$LAB/venv/bin/python" manage.py migrate -v 0)
(cd "$PEER" && exec ${SRV_PIN[@]+"${SRV_PIN[@]}"} "$LAB/venv/bin/uvicorn" peer.asgi:application --host 127.0.0.1 \
  --port $DJANGO_PORT --workers 1 --no-access-log --log-level warning) >"$LAB/django.log" 2>&1 &
DJANGO=$!
for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$DJANGO_PORT/api/v1/auth/user/" && break; sleep 0.1; done
echo "django RSS idle: $(rss_kb $DJANGO) kB"
for rate in 100 150 200; do
  fanout "django uvicorn 1 worker" django $rate "http://127.0.0.1:$DJANGO_PORT"
done
echo "django RSS after: $(rss_kb $DJANGO) kB"
stop_node $DJANGO

fi

echo
echo "## Summary"
echo "### Fan-out ($CLIENTS clients, one room, everyone sends; deliveries = messages × receivers)"
echo "| setup | msg/s in | sent | delivered / expected | lost | dup | deliveries/s | p50 ms | p99 ms | max ms | disconnects | error frames |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for row in "${FANOUT_ROWS[@]}"; do
  label=${row%%|*}; r=${row#*|}
  if [[ $r == *failed* ]]; then echo "| $label | $(field "$r" rate_in) | failed ||||||||||"; continue; fi
  echo "| $label | $(field "$r" rate_in) | $(field "$r" sent) | $(field "$r" delivered) / $(field "$r" expected)" \
    "| $(field "$r" lost) | $(field "$r" duplicates) | $(field "$r" delivered_per_s) | $(field "$r" p50_ms)" \
    "| $(field "$r" p99_ms) | $(field "$r" max_ms) | $(field "$r" disconnects) | $(field "$r" error_frames) |"
done
echo "### Idle connections (one node, SQLite)"
echo "| connections asked | open | failed | RSS before kB | RSS after kB | bytes / connection | ping → pong |"
echo "|---|---|---|---|---|---|---|"
for row in "${IDLE_ROWS[@]}"; do
  asked=${row%%|*}; r=${row#*|}
  echo "| $asked | $(field "$r" connections) | $(field "$r" failed) | $(field "$r" rss_before_kb)" \
    "| $(field "$r" rss_after_kb) | $(field "$r" per_connection_bytes) | $(field "$r" pongs) |"
done
