#!/usr/bin/env bash
# Plan benchmark: wall time and peak memory (max RSS) of `kore-notify plan` over synthetic
# repositories, to show how the cost grows with notifications and recipients.
#
#   bench/plan.sh                 # the default sizes (below)
#   bench/plan.sh 10000:1000000   # one size: NOTIFICATIONS:RECIPIENTS
#   bench/plan.sh --inline 10000:1000000   # recipients written inline in the YAML manifests
#
# Each size is measured three times: with an empty state (everything is "send"), with a state in
# which every recipient was already sent (everything is "no-op", and the state file has to be
# read and verified too), and with that state after `status --refresh` recorded every
# recipient's delivery with Kore.ai's comment (the steady state in CI, which refreshes after each
# apply). Budget: 10,000 notifications / 1,000,000 recipients in at most 3 s and 1 GiB on a
# 2-core machine, for each.
#
# With --inline, the audiences are in the manifests (an email, a customMessage and two parameters
# a recipient: 150 MB of YAML for 1,000,000), and each size also shows the floor: reading and
# hashing the files the plan reads (sha256sum, one core): the manifests, and the state file when
# there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
inline=""
if [ "${1:-}" = --inline ]; then
  inline="--inline"
  shift
fi
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1:100 100:100 100:10000 1000:10000 1000:1000000 10000:1000000)
cargo build --release --locked --quiet --bin kore-notify --example bench-gen
bin="$PWD/target/release/kore-notify"
gen="$PWD/target/release/examples/bench-gen"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KORE_CLIENT_ID=unused KORE_CLIENT_SECRET=unused KORE_NOTIFY_NOW=2026-11-24T09:00:00Z
printf '%-14s %-12s %-10s %10s %12s %14s %14s\n' notifications recipients state "time (s)" "max RSS (MB)" "state file (MB)" "read+hash (s)"
for size in "${sizes[@]}"; do
  n=${size%%:*}
  r=${size##*:}
  for kind in empty sent refreshed; do
    flag=""
    [ "$kind" = sent ] && flag="--sent"
    [ "$kind" = refreshed ] && flag="--refreshed"
    # shellcheck disable=SC2086 # flag is empty or one word
    "$gen" "$work/repo" "$n" "$r" $flag $inline >/dev/null
    sync # do not measure the kernel writing the generated files back
    state_mb=0
    [ -f "$work/repo/.kore-notify/state.json" ] &&
      state_mb=$(awk -v b="$(wc -c <"$work/repo/.kore-notify/state.json")" 'BEGIN{printf "%.1f", b / 1e6}')
    best_t=""
    best_m=""
    for _ in 1 2 3; do
      set +e
      /usr/bin/time -f '%e %M' -o "$work/time" "$bin" --config "$work/repo/kore-notify.yaml" plan --quiet >/dev/null 2>"$work/err"
      rc=$?
      set -e
      if [ "$rc" -ne 0 ]; then
        echo "plan failed (exit $rc):" >&2
        cat "$work/err" >&2
        exit 1
      fi
      read -r t m <"$work/time"
      if [ -z "$best_t" ] || awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t; best_m=$m; fi
    done
    read_files=("$work"/repo/notifications/*.yaml)
    [ -f "$work/repo/.kore-notify/state.json" ] && read_files+=("$work/repo/.kore-notify/state.json")
    /usr/bin/time -f '%e' -o "$work/hash" sha256sum "${read_files[@]}" >/dev/null
    read -r hash_t <"$work/hash"
    printf '%-14s %-12s %-10s %10s %12s %14s %14s\n' "$n" "$r" "$kind" "$best_t" "$((best_m / 1024))" "$state_mb" "$hash_t"
  done
done
echo "(best of 3 runs; $(nproc) cores; $(uname -m))"
