#!/usr/bin/env bash
# Benchmarks with the state in PostgreSQL (budgets in the README), against a throwaway local
# server (scripts/pg-throwaway.sh: installed if missing, fsync on, removed afterwards):
#
#   1. plan over NOTIFICATIONS:RECIPIENTS (default 10000:1000000) with every recipient already sent,
#      then with every delivery reported as `status --refresh` records it (Kore.ai's success
#      comment), the state migrated into PostgreSQL (`state migrate`): best of 3, wall time and
#      max RSS, next to the same plan with the file state;
#   2. recording one batch of 1,000 recipients (intent + answer) with 10 and 10,000 notifications
#      of state (`bench-record --postgres`);
#   3. apply throughput against the emulator (BATCHES requests, LATENCY ms each, PARALLELISM),
#      file store vs PostgreSQL.
#
#   bench/pg.sh [plan|record|apply|all] [NOTIFICATIONS:RECIPIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
size=${2:-10000:1000000}
BATCHES=${BATCHES:-200}
LATENCY=${LATENCY:-100}
PARALLELISM=${PARALLELISM:-"4 16"}
# shellcheck source=scripts/pg-throwaway.sh
. scripts/pg-throwaway.sh
work=$(mktemp -d)
emulator=""
cleanup() {
  [ -z "$emulator" ] || kill "$emulator" 2>/dev/null || true
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release --locked --quiet --bin kore-notify --example bench-gen --example bench-record
bin="$PWD/target/release/kore-notify"
gen="$PWD/target/release/examples/bench-gen"
pg_throwaway -c fsync=on
db_url=${PG_ADMIN_URL%/postgres}/bench
reset_db() {
  "$PG_PSQL" -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS bench WITH (FORCE)" -c "CREATE DATABASE bench" >/dev/null
}
export KORE_CLIENT_ID=cs-bench KORE_CLIENT_SECRET=bench-secret KORE_NOTIFY_NOW=2026-11-24T09:00:00Z

# Best of 3 `plan` runs: "seconds max-RSS-MB".
best_plan() {
  local best_t="" best_m="" t m
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" --config "$work/repo/kore-notify.yaml" plan --quiet >/dev/null 2>"$work/err" ||
      { cat "$work/err" >&2; exit 1; }
    read -r t m <"$work/time"
    if [ -z "$best_t" ] || awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t; best_m=$m; fi
  done
  echo "$best_t $((best_m / 1024))"
}

if [ "$what" = all ] || [ "$what" = plan ]; then
  n=${size%%:*}
  r=${size##*:}
  printf '%-10s %-12s %10s %14s\n' state store "time (s)" "max RSS (MB)"
  for kind in sent refreshed; do
    "$gen" "$work/repo" "$n" "$r" "--$kind" >/dev/null
    sync
    read -r ft fm < <(best_plan)
    reset_db
    # (migrate takes the password as a reference, never on the command line)
    pw=${PG_ADMIN_URL#postgres://kore:}
    ref_url="postgres://kore:\${KN_BENCH_PW}@${db_url#*@}"
    KN_BENCH_PW=${pw%%@*} /usr/bin/time -f '%e' -o "$work/migrate" "$bin" --config "$work/repo/kore-notify.yaml" \
      state migrate --to "$ref_url" >/dev/null
    read -r mt <"$work/migrate"
    read -r pt pm < <(KORE_NOTIFY_STATE_URL=$db_url best_plan)
    printf '%-10s %-12s %10s %14s\n' "$kind" file "$ft" "$fm" "$kind" postgres "$pt" "$pm"
    echo "($n notifications, $r recipients; state migrate into PostgreSQL, once: $mt s)"
  done
fi

if [ "$what" = all ] || [ "$what" = record ]; then
  echo "== recording one batch of 1,000 recipients"
  reset_db
  target/release/examples/bench-record --postgres "$db_url" 10 10000
fi

# shellcheck source=bench/emulator.sh
. bench/emulator.sh

if [ "$what" = all ] || [ "$what" = apply ]; then
  echo "== apply: $BATCHES requests (10 recipients each), ${LATENCY} ms latency"
  printf '%-12s %-10s %10s %12s\n' parallelism store "time (s)" "pg / file"
  for p in $PARALLELISM; do
    declare -A took=()
    for store in file postgres; do
      start_emulator --latency-ms "$LATENCY"
      "$gen" "$work/repo" "$BATCHES" $((BATCHES * 10)) >/dev/null
      url=""
      if [ "$store" = postgres ]; then reset_db; url=$db_url; fi
      KORE_NOTIFY_STATE_URL=$url /usr/bin/time -f '%e' -o "$work/time" "$bin" --config "$work/repo/kore-notify.yaml" \
        apply --auto-approve --quiet --parallelism "$p" >"$work/apply.out" 2>&1 || { cat "$work/apply.out" >&2; exit 1; }
      took[$store]=$(cat "$work/time")
    done
    ratio=$(awk -v f="${took[file]}" -v g="${took[postgres]}" 'BEGIN{printf "%.2f", f / g}')
    printf '%-12s %-10s %10s\n' "$p" file "${took[file]}"
    printf '%-12s %-10s %10s %12s\n' "$p" postgres "${took[postgres]}" "$ratio"
  done
  echo "(pg / file: the file store's time over PostgreSQL's; budget >= 0.90)"
fi
