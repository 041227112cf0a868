#!/usr/bin/env bash
# Fuzzes, for a bounded time each, the Stripe-Signature parser, JWT decoding and the chat
# socket's client frames (the checks are in checks.rs):
#
#   bash fuzz/run.sh                      # 60 s per target
#   FUZZ_SECONDS=600 bash fuzz/run.sh     # longer
#
# Needs the nightly toolchain; cargo-fuzz is installed from crates.io when missing. The
# corpus starts from seeds/ and grows in corpus/ (not committed). An input that fails a
# check is copied to regressions/<target>/: examples/server's `fuzz_regressions` test replays
# every seed and regression on each `cargo test`, so fix the code and commit the file.
set -euo pipefail
cd "$(dirname "$0")"
PER_TARGET=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
status=0
for target in webhook_signature jwt_decode chat_frame; do
  mkdir -p "corpus/$target"
  cp -n "seeds/$target/"* "corpus/$target/"
  echo "== $target: ${PER_TARGET} s"
  if ! cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$PER_TARGET" -rss_limit_mb=2048; then
    status=1
    mkdir -p "regressions/$target"
    for found in "artifacts/$target/"*; do
      [ -e "$found" ] && cp "$found" "regressions/$target/" && echo "kept regressions/$target/$(basename "$found")"
    done
  fi
done
exit "$status"
