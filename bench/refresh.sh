#!/usr/bin/env bash
# Refresh benchmark against the built-in emulator (budgets in the README). A repository of
# NOTIFICATIONS:RECIPIENTS (default 1000:1000000: a thousand requests of a thousand recipients,
# each notification with its CSV audience) is applied, then:
#
#   raised   limits out of the way (emulator and config at 1,000,000 a minute), LATENCY ms per
#            request: `status --refresh --parallelism PARALLELISM`, wall time and max RSS, next to
#            calls × latency / parallelism (budget: within 1.2×); the snapshot before and after
#            (budget: 45 MB); a second refresh (nothing new: the files are left byte for byte);
#            then `plan` over the refreshed state (best of 3; budget 3 s and 1 GiB) next to
#            reading and hashing the files it reads (sha256sum, one core);
#   default  Kore.ai's default limits (600 a minute, 18,000 an hour) on both sides: after the
#            apply, the window is left to empty, then the refresh next to the rolling window's
#            floor for its calls (request k can start at floor(k / 600) minutes at the earliest;
#            budget: within 1.10×). Takes about four minutes.
#
#   bench/refresh.sh [raised|default|all] [NOTIFICATIONS:RECIPIENTS]
#
# Environment: LATENCY (ms, default 50), PARALLELISM (default 4).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
size=${2:-1000:1000000}
LATENCY=${LATENCY:-50}
PARALLELISM=${PARALLELISM:-4}
n=${size%%:*}
r=${size##*:}
# shellcheck source=bench/emulator.sh
. bench/emulator.sh
bench_workspace

repo=$work/repo
state=$repo/.kore-notify/state.json
stat() { curl -s "$KORE_HOST/_emulator/deliveries" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
mb() { awk -v b="$(wc -c <"$1")" 'BEGIN{printf "%.1f", b / 1e6}'; }

# Runs kore-notify on the repository, timed: "seconds max-RSS-MB CPU-seconds" (user + system).
timed() {
  /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$bin" --config "$repo/kore-notify.yaml" "$@" >"$work/out" 2>&1 ||
    { [ $? -eq 3 ] || { cat "$work/out" >&2; exit 1; }; }
  read -r t m u s <"$work/time"
  echo "$t $((m / 1024)) $(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.1f", u + s}')"
}
# The state's files but the lock (whose holder line every writer rewrites).
files_sum() { sha256sum "$state" "$state.backup" "$state.serial" 2>/dev/null; [ ! -e "$state.journal" ] || echo journal; }

prepare() {
  "$gen" "$repo" "$n" "$r" >/dev/null
  printf 'rateLimits:\n  perMinute: %s\n  perHour: %s\n' "$1" "$2" >>"$repo/kore-notify.yaml"
  read -r at am _ < <(timed apply --auto-approve --quiet --parallelism 16)
  before=$(mb "$state")
  echo "apply: $at s, $am MB; $(stat requests) requests; snapshot $before MB"
}

if [ "$what" = all ] || [ "$what" = raised ]; then
  echo "== limits raised: $n requests of $((r / n)) recipients, ${LATENCY} ms latency, --parallelism $PARALLELISM"
  start_emulator --latency-ms "$LATENCY" --per-minute 1000000 --per-hour 100000000 --job-ms 0
  prepare 1000000 100000000
  calls_before=$(stat requests)
  read -r rt rss rc < <(timed status --refresh --quiet --parallelism "$PARALLELISM")
  calls=$(($(stat requests) - calls_before))
  ideal=$(awk -v c="$calls" -v l="$LATENCY" -v p="$PARALLELISM" 'BEGIN{printf "%.2f", c * l / 1000 / p}')
  ratio=$(awk -v i="$ideal" -v t="$rt" 'BEGIN{printf "%.2f", t / i}')
  after=$(mb "$state")
  printf 'refresh: %s status calls in %s s (calls × latency / parallelism: %s s; %s×), max RSS %s MB, CPU %s s\n' \
    "$calls" "$rt" "$ideal" "$ratio" "$rss" "$rc"
  printf 'snapshot: %s MB before the refresh, %s MB after (%s lines)\n' "$before" "$after" "$(wc -l <"$state")"
  sum=$(files_sum)
  read -r st sm _ < <(timed status --refresh --quiet --parallelism "$PARALLELISM")
  [ "$sum" = "$(files_sum)" ] || { echo "a second refresh changed the state files" >&2; exit 1; }
  printf 'second refresh (everything terminal): %s s, %s MB, files unchanged\n' "$st" "$sm"
  best_t="" best_m=""
  for _ in 1 2 3; do
    read -r t m _ < <(timed plan --quiet)
    if [ -z "$best_t" ] || awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t; best_m=$m; fi
  done
  /usr/bin/time -f '%e' -o "$work/hash" sha256sum "$repo"/notifications/*.yaml "$repo"/audiences/*.csv "$state" >/dev/null
  printf 'plan over the refreshed state: %s s, %s MB (best of 3); read+hash of its files: %s s\n' \
    "$best_t" "$best_m" "$(cat "$work/hash")"
fi

if [ "$what" = all ] || [ "$what" = default ]; then
  echo "== default limits (600/min, 18,000/h on both sides): $n requests of $((r / n)) recipients"
  start_emulator --job-ms 0
  prepare 600 18000
  sleep 61 # the sends leave the minute's window
  calls_before=$(stat requests)
  limited_before=$(stat rateLimited)
  read -r rt rss rc < <(timed status --refresh --quiet --parallelism "$PARALLELISM")
  calls=$(($(stat requests) - calls_before))
  # Whole minutes on purpose: request k can start at floor(k / 600) minutes.
  # shellcheck disable=SC2017
  floor=$(( (calls - 1) / 600 * 60 ))
  ratio=$(awk -v f="$floor" -v t="$rt" 'BEGIN{printf "%.3f", (f > 0 ? t / f : 0)}')
  printf 'refresh: %s status calls in %s s, rolling-window floor %s s (%s×), max RSS %s MB, CPU %s s, 429 answers: %s\n' \
    "$calls" "$rt" "$floor" "$ratio" "$rss" "$rc" "$(($(stat rateLimited) - limited_before))"
fi
