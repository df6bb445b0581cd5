#!/usr/bin/env bash
# Hostile files benchmark: every kind of file kore-notify reads, made hostile (a sparse file of
# NUL bytes just under its size limit, random bytes, text that never ends a row or a string), and
# the time and peak memory (max RSS) of the command that refuses it. Budget: every rejection within
# 5 s and 500 MB on a 2-core machine (release build). The tests check each refusal and its message
# through the binary (tests/hostile.rs); time and memory are measured here, never asserted there.
#
#   bench/hostile.sh            # every case
#   bench/hostile.sh csv        # the cases whose name contains "csv"
set -euo pipefail
cd "$(dirname "$0")/.."
filter="${1:-}"
cargo build --release --locked --quiet --bin kore-notify
bin="$PWD/target/release/kore-notify"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
MB=$((1000 * 1000))
MIB=$((1024 * 1024))

# A fresh repository: one notification taking its message from a file and its audience from a CSV.
fresh() {
  rm -rf "$work/r"
  mkdir -p "$work/r/notifications" "$work/r/audiences" "$work/r/messages"
  # shellcheck disable=SC2016 # a literal ${S} for the config
  printf 'host: https://kore.example.com\nbotId: st-bench\nclientId: x\nclientSecret: ${S}\nstate: .kore-notify/state.json\n' >"$work/r/kore-notify.yaml"
  printf 'key: k\nchannel: ivr\ncontent: {type: text, valueFile: ../messages/m.txt}\nidentitiesFrom: ../audiences/a.csv\n' >"$work/r/notifications/n.yaml"
  printf 'Hello {name}\n' >"$work/r/messages/m.txt"
  printf 'email,name\na@x.com,Ann\n' >"$work/r/audiences/a.csv"
}

# sparse FILE SIZE: FILE becomes SIZE bytes of holes (NUL bytes that take no disk space).
sparse() {
  mkdir -p "$(dirname "$1")"
  rm -f "$1"
  truncate -s "$2" "$1"
}

# endless FILE SIZE HEAD WORD [lines]: HEAD, then WORD repeated up to SIZE bytes (real bytes on
# disk), one WORD per line with `lines`, else all on one line.
endless() {
  mkdir -p "$(dirname "$1")"
  local keep='\n'
  [ "${5:-}" = lines ] && keep=''
  # Written by one program that stops by itself (no reader that stops early under pipefail).
  python3 - "$1" "$2" "$3" "$4" "$keep" <<'PY'
import sys
path, size, head, word, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode().decode("unicode_escape"), sys.argv[4], sys.argv[5]
unit = (word if keep else word + "\n").encode()
with open(path, "wb") as f:
    f.write(head.encode())
    left = size - len(head.encode())
    block = unit * max(1, (1 << 20) // len(unit))
    while left > 0:
        chunk = block[:left]
        f.write(chunk)
        left -= len(chunk)
PY
}

printf '%-44s %-20s %8s %13s  %s\n' case command "time (s)" "max RSS (MB)" "exit"
run() { # run NAME ARGS...: the command in the repository, measured
  local name="$1"
  shift
  (cd "$work/r" && S=x KORE_NOTIFY_NOW=2026-11-24T09:00:00Z /usr/bin/time -f '%e %M' -o "$work/time" \
    "$bin" "$@" >/dev/null 2>"$work/err") && code=0 || code=$?
  read -r secs kb < <(tail -1 "$work/time")
  printf '%-44s %-20s %8s %13s  %s  %s\n' "$name" "$*" "$secs" "$((kb * 1024 / MB))" "$code" \
    "$(grep -m1 -E '^error' "$work/err" | cut -c1-110)"
}
case_() { [[ -z "$filter" || "$1" == *"$filter"* ]]; }

if case_ csv-sparse; then fresh; sparse "$work/r/audiences/a.csv" $((510 * MB)); run "csv-sparse 510 MB of NUL" validate; fi
if case_ csv-random; then fresh; head -c $((510 * MB)) /dev/urandom >"$work/r/audiences/a.csv"; run "csv-random 510 MB" validate; fi
if case_ csv-row; then fresh; endless "$work/r/audiences/a.csv" $((500 * MB)) 'email,name\na@x.com,' x; run "csv-row: one row of 500 MB" validate; fi
if case_ csv-quote; then fresh; endless "$work/r/audiences/a.csv" $((500 * MB)) 'email,name\na@x.com,"' x lines; run "csv-quote: never closed, 500 MB" validate; fi
if case_ manifest; then fresh; sparse "$work/r/notifications/bin.yaml" $((16 * MIB - 1)); run "manifest 16 MiB of NUL" validate; fi
if case_ valuefile; then fresh; sparse "$work/r/messages/m.txt" $((MIB - 1)); run "valuefile 1 MiB of NUL" validate; fi
if case_ config; then fresh; sparse "$work/r/kore-notify.yaml" $((MIB - 1)); run "config 1 MiB of NUL" validate; fi
if case_ plan-sparse; then
  fresh; sparse "$work/r/plan.json" $((255 * MIB))
  run "plan-sparse 255 MiB of NUL" show plan.json
  run "plan-sparse 255 MiB of NUL" apply plan.json --auto-approve
fi
if case_ plan-string; then
  fresh; endless "$work/r/plan.json" $((255 * MIB)) '{"formatVersion": 1, "binding": "' x
  run "plan-string: one string of 255 MiB" show plan.json
fi
if case_ plan-spaces; then
  fresh; endless "$work/r/plan.json" $((255 * MIB)) '{' ' '
  run "plan-spaces: 255 MiB of JSON whitespace" show plan.json
fi
if case_ state-sparse; then fresh; sparse "$work/r/.kore-notify/state.json" $((2048 * MIB - 1)); run "state-sparse 2 GiB of NUL" plan; fi
if case_ journal-sparse; then
  fresh; sparse "$work/r/.kore-notify/state.json.journal" $((2048 * MIB - 1))
  run "journal-sparse 2 GiB of NUL" plan
fi
