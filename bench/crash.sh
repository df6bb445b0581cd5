#!/usr/bin/env bash
# Crash trials beyond the 50 in the test suite: kill -9 `apply` at random points, rerun it, and
# check after every trial that no recipient got a message twice (without --retry-unknown) and
# that every request the emulator accepted is in the state, as sent or as unknown.
#
#   bench/crash.sh          # 500 trials
#   bench/crash.sh 2000     # any number
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-500}
start=$(date +%s)
KORE_NOTIFY_CRASH_TRIALS=$trials cargo test --release --locked --test lib -- --ignored --exact apply::crash_safety_many
echo "$trials crash trials passed in $(( $(date +%s) - start )) s"
