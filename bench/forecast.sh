#!/usr/bin/env bash
# The plan's forecast against measured applies on the emulator, at lowered limits (budgets in the
# README: the measured time within 10% of the forecast):
#
#   1. sizes: SIZES requests (one recipient each, batchSize 1) at PER_MINUTE a minute on both
#      sides; the forecast's `seconds` (when the last request can leave) against apply's wall time;
#   2. a delivery window: WINDOW_REQUESTS recipients in a window (UTC) that opens at a whole
#      minute at least 20 s ahead, on the real clock; scheduled runs every 2 s (as a frequent cron
#      would) until everyone is sent; the forecast's `laterLastLeavesAt` against when the last
#      run finished, both from the moment the plan was made.
#
#   bench/forecast.sh             # both (about five minutes)
#   bench/forecast.sh sizes       # only the first
#   bench/forecast.sh window      # only the second
#
# Environment: SIZES (default "61 121"), PER_MINUTE (default 60), WINDOW_REQUESTS (default 61).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
SIZES=${SIZES:-"61 121"}
PER_MINUTE=${PER_MINUTE:-60}
WINDOW_REQUESTS=${WINDOW_REQUESTS:-61}
# shellcheck source=bench/emulator.sh
. bench/emulator.sh
bench_workspace
unset KORE_NOTIFY_NOW

stat() { curl -s "$KORE_HOST/_emulator/deliveries" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
json() { python3 -c "import json,sys; v=json.load(sys.stdin)['forecast']; print(v.get('$1', ''))"; }

# A repository of $1 slack recipients, one request each, with manifest lines $2 (a window).
repo() {
  rm -rf "$work/repo" && mkdir -p "$work/repo/notifications"
  # shellcheck disable=SC2016 # ${KORE_CLIENT_ID} is for kore-notify to expand
  printf 'host: %s\nbotId: st-bench\nclientId: ${KORE_CLIENT_ID}\nclientSecret: ${KORE_CLIENT_SECRET}\nbatchSize: 1\nrateLimits: {perMinute: %s, perHour: 100000}\n' \
    "$KORE_HOST" "$PER_MINUTE" >"$work/repo/kore-notify.yaml"
  {
    printf 'key: bench\nchannel: slack\ncontent: {type: text, value: hello}\n%s' "$2"
    printf 'identities:\n'
    for i in $(seq 1 "$1"); do printf '  - u%s@example.com\n' "$i"; done
  } >"$work/repo/notifications/bench.yaml"
}

plan_json() { "$bin" --config "$work/repo/kore-notify.yaml" plan --format json; }
apply() { "$bin" --config "$work/repo/kore-notify.yaml" apply --auto-approve --quiet >"$work/apply.out" 2>&1 || { cat "$work/apply.out" >&2; exit 1; }; }
report() { awk -v f="$2" -v m="$3" -v n="$1" 'BEGIN{r=m/f; d=(r>1?r-1:1-r); printf "%-28s %12.1f %12.1f %8.3f %s\n", n, f, m, r, (d<=0.10?"within 10%":"OVER BUDGET")}'; }

printf '%-28s %12s %12s %8s\n' case "forecast (s)" "measured (s)" ratio
if [ "$what" = all ] || [ "$what" = sizes ]; then
  for n in $SIZES; do
    start_emulator --per-minute "$PER_MINUTE" --per-hour 100000 --job-ms 50
    repo "$n" ""
    forecast=$(plan_json | json seconds)
    start=$(date +%s.%N)
    apply
    end=$(date +%s.%N)
    [ "$(stat requests)" -eq "$n" ] || { echo "expected $n requests, the emulator saw $(stat requests)" >&2; exit 1; }
    report "$n requests at $PER_MINUTE/min" "$forecast" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')"
  done
fi

if [ "$what" = all ] || [ "$what" = window ]; then
  start_emulator --per-minute "$PER_MINUTE" --per-hour 100000 --job-ms 50
  # The next whole minute at least 20 s ahead, and ten minutes of window.
  now=$(date -u +%s)
  open=$(( (now + 20 + 59) / 60 * 60 ))
  from=$(date -u -d "@$open" +%H:%M)
  to=$(date -u -d "@$((open + 600))" +%H:%M)
  repo "$WINDOW_REQUESTS" "deliveryWindow: {from: \"$from\", to: \"$to\", timezone: UTC}
"
  planned=$(date +%s.%N)
  last=$(plan_json | json laterLastLeavesAt)
  [ -n "$last" ] || { echo "the plan has no later requests (is the window open already?)" >&2; exit 1; }
  forecast=$(awk -v a="$planned" -v b="$(date -u -d "$last" +%s)" 'BEGIN{print b-a}')
  while [ "$(stat accepted)" -lt "$WINDOW_REQUESTS" ]; do
    apply
    sleep 2
  done
  end=$(date +%s.%N)
  # The loop's last sleep is not part of the send.
  report "window at $from UTC, $WINDOW_REQUESTS req" "$forecast" "$(awk -v a="$planned" -v b="$end" 'BEGIN{print b-a-2}')"
fi
