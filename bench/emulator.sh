# shellcheck shell=bash
# Sourced by the benchmarks: `start_emulator [flags…]` (re)starts the built-in emulator on a free
# loopback port with the benchmarks' credentials and exports KORE_HOST; $bin, $work and the
# variable `emulator` (its pid, for the caller's cleanup) are shared with the caller.

# shellcheck disable=SC2154 # bin and work are set by the sourcing benchmark
start_emulator() {
  if [ -n "$emulator" ]; then
    kill "$emulator" 2>/dev/null || true
    wait "$emulator" 2>/dev/null || true
  fi
  "$bin" emulator --listen 127.0.0.1:0 --client-id cs-bench --client-secret bench-secret "$@" >"$work/emulator.log" 2>&1 &
  emulator=$!
  for _ in $(seq 1 100); do
    grep -q 'listening on' "$work/emulator.log" 2>/dev/null && break
    sleep 0.05
  done
  KORE_HOST=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/emulator.log" | sed -n 1p)
  [ -n "$KORE_HOST" ] || { cat "$work/emulator.log" >&2; exit 1; }
  export KORE_HOST
}
