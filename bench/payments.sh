#!/usr/bin/env bash
# Payments benchmark on PostgreSQL (loopback only, bounded in time):
#  - signed Stripe webhooks processed per second: payments-load starts the app in-process
#    (auth + payments with its job worker, no cron) on a fresh database, with a fake Stripe;
#    creates N pending orders through PaymentsService::create_order (half direct with a payee:
#    3 ledger postings when paid; half escrow: 1 posting and a hold), then C senders POST one
#    signed payment_intent.succeeded per order (new event ids, signed at send time) to
#    /api/v1/payments/webhooks/stripe/. Timed from the first send until every event is stored
#    `processed`; every order must end settled or held and the ledger sum to 0 per currency,
#    or the tool fails. 3 runs on fresh orders, median.
#  - Ledger::balance read time: 10,000 sequential reads on the empty ledger, then again with
#    1,000,000 ledger entries (inserted in one statement).
# Load comes from target/release/payments-load (bench/src/bin/payments-load.rs).
#
#   bash bench/payments.sh [payments-load options: --var JOB_CONCURRENCY=8, --profile, …]
#     PG_ADMIN=…        postgres://postgres@127.0.0.1:5432/postgres (the tool creates a fresh
#                       database there and drops it at exit; so does this script if the tool
#                       was killed)
#     ORDERS=5000 CONCURRENCY=32 RUNS=3 TIME_LIMIT=1800 (seconds, the tool's run only)
# The job store is the app's PostgreSQL database (SAAS_TEST_REDIS_URL is ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
ORDERS=${ORDERS:-5000}
CONCURRENCY=${CONCURRENCY:-32}
RUNS=${RUNS:-3}
TIME_LIMIT=${TIME_LIMIT:-1800}
LAB=$(mktemp -d)

cleanup() {
  local db
  db=$(sed -n 's/^payments-load: database=\([a-z0-9_]*\)$/\1/p' "$LAB/load.err" 2>/dev/null | head -n 1)
  if [ -n "$db" ] && [ "$(psql "$PG_ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" 2>/dev/null)" = 1 ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$LAB"
}
trap cleanup EXIT

pg_up() { psql "$PG_ADMIN" -qtAc 'SELECT 1' >/dev/null 2>&1; }
command -v psql >/dev/null || { echo "psql is needed" >&2; exit 1; }
if ! pg_up; then
  # A local Debian cluster that is down: start it.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | awk '$4 != "online" {print $1, $2}' | while read -r version cluster; do
      pg_ctlcluster "$version" "$cluster" start || true
    done
    for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
  fi
  pg_up || { echo "PostgreSQL not reachable at $PG_ADMIN" >&2; exit 1; }
fi

cargo build --release -q -p saas-bench --bin payments-load
LOAD=$ROOT/target/release/payments-load

echo "# Payments benchmark — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "PostgreSQL $(psql "$PG_ADMIN" -qtAc 'SHOW server_version'); $ORDERS orders per run, $CONCURRENCY senders, $RUNS runs"
echo

: >"$LAB/load.err"
status=0
timeout -k 10 "$TIME_LIMIT" env -u SAAS_TEST_REDIS_URL SAAS_TEST_DATABASE_URL="$PG_ADMIN" \
  "$LOAD" --orders "$ORDERS" --concurrency "$CONCURRENCY" --runs "$RUNS" "$@" \
  2> >(tee -a "$LAB/load.err" >&2) || status=$?
if [ "$status" = 124 ]; then
  echo "payments-load did not finish within ${TIME_LIMIT} s" >&2
fi
exit "$status"
