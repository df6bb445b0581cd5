#!/usr/bin/env bash
# Apply benchmarks against the built-in emulator on loopback (budgets in the README):
#
#   1. throughput: BATCHES requests with LATENCY ms injected per request, at several
#      --parallelism values, compared with the ideal `batches × latency / parallelism`
#      (budget: within 90% of it, i.e. ideal / measured >= 0.90);
#   2. rate-limited: more requests than a (lowered) per-minute limit allows at once, with the
#      limit known to the client; compared with the fastest schedule the rolling window allows
#      (budget: at least 95% of the allowed rate) and with zero 429 answers.
#
#   bench/apply.sh                # both (the rate-limited part takes about two minutes)
#   bench/apply.sh throughput     # only the first
#   bench/apply.sh ratelimit      # only the second
#
# Environment: BATCHES (default 200), LATENCY (ms, default 100), PARALLELISM (default "1 4 8 16"),
# PER_MINUTE (default 20) and RL_REQUESTS (default 41) for the rate-limited run.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
BATCHES=${BATCHES:-200}
LATENCY=${LATENCY:-100}
PARALLELISM=${PARALLELISM:-"1 4 8 16"}
PER_MINUTE=${PER_MINUTE:-20}
RL_REQUESTS=${RL_REQUESTS:-41}
# shellcheck source=bench/emulator.sh
. bench/emulator.sh
bench_workspace

stat() { curl -s "$KORE_HOST/_emulator/deliveries" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# Runs apply on the repository in $work/repo; prints its wall time in seconds.
timed_apply() {
  /usr/bin/time -f '%e' -o "$work/time" "$bin" --config "$work/repo/kore-notify.yaml" apply --auto-approve --quiet "$@" \
    >"$work/apply.out" 2>&1 || { cat "$work/apply.out" >&2; exit 1; }
  cat "$work/time"
}

if [ "$what" = all ] || [ "$what" = throughput ]; then
  echo "== throughput: $BATCHES requests (1 batch of 10 recipients each), ${LATENCY} ms latency per request"
  printf '%-12s %10s %12s %10s %8s\n' parallelism "ideal (s)" "measured (s)" "ratio" "429s"
  for p in $PARALLELISM; do
    start_emulator --latency-ms "$LATENCY"
    "$gen" "$work/repo" "$BATCHES" $((BATCHES * 10)) >/dev/null
    t=$(timed_apply --parallelism "$p")
    ideal=$(awk -v b="$BATCHES" -v l="$LATENCY" -v p="$p" 'BEGIN{printf "%.2f", b * l / 1000 / p}')
    ratio=$(awk -v i="$ideal" -v t="$t" 'BEGIN{printf "%.2f", i / t}')
    [ "$(stat requests)" -eq "$BATCHES" ] || { echo "expected $BATCHES requests, emulator saw $(stat requests)" >&2; exit 1; }
    printf '%-12s %10s %12s %10s %8s\n' "$p" "$ideal" "$t" "$ratio" "$(stat rateLimited)"
  done
fi

if [ "$what" = all ] || [ "$what" = ratelimit ]; then
  echo "== rate-limited: $RL_REQUESTS requests, limit $PER_MINUTE per minute on both sides"
  start_emulator --per-minute "$PER_MINUTE" --job-ms 50
  "$gen" "$work/repo" "$RL_REQUESTS" $((RL_REQUESTS * 10)) >/dev/null
  printf 'rateLimits:\n  perMinute: %s\n' "$PER_MINUTE" >>"$work/repo/kore-notify.yaml"
  t=$(timed_apply --parallelism 8)
  # With a rolling window of one minute, request number k (from 0) can start at floor(k / limit)
  # minutes at the earliest: that is the allowed rate.
  minutes=$(( (RL_REQUESTS - 1) / PER_MINUTE ))
  allowed=$(( minutes * 60 ))
  ratio=$(awk -v a="$allowed" -v t="$t" 'BEGIN{printf "%.3f", a / t}')
  printf 'fastest allowed: %ss  measured: %ss  share of allowed rate: %s  429 answers: %s  requests: %s\n' \
    "$allowed" "$t" "$ratio" "$(stat rateLimited)" "$(stat requests)"
fi
