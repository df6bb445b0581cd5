# shellcheck shell=bash
# Sourced by the benchmarks. `bench_workspace` builds the release binary and bench-gen, sets $bin,
# $gen, $work and `emulator`, exports the benchmarks' credentials, and on exit stops the emulator,
# runs `bench_on_exit` when the caller defines one, and removes $work. `start_emulator [flags…]`
# (re)starts the built-in emulator on a free loopback port with those credentials and exports
# KORE_HOST.

# shellcheck disable=SC2034 # bin, gen and work are the sourcing benchmark's
bench_workspace() {
  cargo build --release --locked --quiet --bin kore-notify --example bench-gen
  bin="$PWD/target/release/kore-notify"
  gen="$PWD/target/release/examples/bench-gen"
  work=$(mktemp -d)
  emulator=""
  trap bench_cleanup EXIT
  export KORE_CLIENT_ID=cs-bench KORE_CLIENT_SECRET=bench-secret
}

bench_cleanup() {
  [ -z "$emulator" ] || kill "$emulator" 2>/dev/null || true
  if declare -F bench_on_exit >/dev/null; then bench_on_exit; fi
  rm -rf "$work"
}

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
