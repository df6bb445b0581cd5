#!/usr/bin/env bash
# Diagnostics benchmark: `kore-notify validate` over one manifest with N problems (unknown fields),
# in text (source snippets) and JSON. Rendering must stay linear in the number of problems: each
# file is read once for snippets, not once per diagnostic. Budget: 100,000 problems in one file
# rendered in under 2 s on a 2-core machine (release build).
#
#   bench/diagnostics.sh            # 1,000 / 10,000 / 100,000 problems
#   bench/diagnostics.sh 40000      # one size
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
cargo build --release --locked --quiet --bin kore-notify
bin="$PWD/target/release/kore-notify"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/notifications"
# shellcheck disable=SC2016 # a literal ${S} for the config
printf 'host: https://kore.example.com\nbotId: st-bench\nclientId: x\nclientSecret: ${S}\n' >"$work/kore-notify.yaml"
printf '%-10s %-6s %10s %12s\n' problems format "time (s)" "max RSS (MB)"
for n in "${sizes[@]}"; do
  {
    printf 'key: k\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n'
    seq 1 "$n" | sed 's/^/unknownField/; s/$/: 1/'
  } >"$work/notifications/n.yaml"
  for format in text json; do
    (cd "$work" && /usr/bin/time -f '%e %M' -o "$work/time" "$bin" validate --format "$format" >/dev/null 2>&1) || true
    read -r secs kb < <(tail -1 "$work/time")
    printf '%-10s %-6s %10s %12s\n' "$n" "$format" "$secs" "$((kb / 1024))"
  done
done
