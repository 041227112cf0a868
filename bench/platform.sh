#!/usr/bin/env bash
# Platform benchmark: start-up time and idle memory of the release server on SQLite, and
# /health/ throughput and latency over loopback (wrk). Loopback only; bounded in time.
#
#   bash bench/platform.sh            # results on stdout
#
# Server pinned to CPU 1, load generator to CPU 0 (a 2-core machine).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
cargo build --release -q -p saas-server
BIN=target/release/saas-server
LAB=$(mktemp -d)
PORT=18080
export DEBUG=false SECRET_KEY=bench-secret-key-0123456789 RUST_LOG=warn
export DATABASE_URL="sqlite://$LAB/app.db" BIND_ADDR="127.0.0.1:$PORT"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$LAB"' EXIT

now_ms() { date +%s%3N; }

wait_up() {
  for _ in $(seq 1 2000); do
    curl -fs "http://127.0.0.1:$PORT/health/" >/dev/null 2>&1 && return 0
    sleep 0.002
  done
  echo "server did not start" >&2; exit 1
}

"$BIN" migrate >/dev/null   # the database exists before we time start-up

echo "## start-up on an existing SQLite database (5 runs, ms from exec to first 200 on /health/)"
startups=()
for _ in 1 2 3 4 5; do
  t0=$(now_ms)
  taskset -c 1 "$BIN" serve >/dev/null 2>&1 &
  pid=$!
  wait_up
  startups+=($(( $(now_ms) - t0 )))
  kill -TERM $pid; wait $pid || true
done
printf 'start-up ms: %s\n' "${startups[*]}"
printf 'median: %s ms\n' "$(printf '%s\n' "${startups[@]}" | sort -n | sed -n 3p)"

taskset -c 1 "$BIN" serve >/dev/null 2>&1 &
pid=$!
wait_up
sleep 3
echo
echo "## idle RSS after start-up (worker and scheduler running)"
grep VmRSS /proc/$pid/status

echo
echo "## GET /health/ (database, jobs checks), wrk -t1 -c64 -d10s, 3 runs"
for run in 1 2 3; do
  taskset -c 0 wrk -t1 -c64 -d10s --latency "http://127.0.0.1:$PORT/health/" | grep -E "Requests/sec|  99%|  50%"
done
echo
echo "## RSS after load"
grep VmRSS /proc/$pid/status
kill -TERM $pid; wait $pid || true
