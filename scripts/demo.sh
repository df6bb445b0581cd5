#!/usr/bin/env bash
# The whole kore-notify loop on a fresh machine, with no Kore.ai account: start the built-in
# emulator on loopback, then validate, plan, apply and check the status of examples/ (a copy in a
# temporary directory, so the repository stays clean). Needs only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> building kore-notify (the first build compiles every dependency: about 3 minutes on 2 cores; later ones take seconds)" >&2
cargo build --locked
bin="$PWD/target/debug/kore-notify"
work=$(mktemp -d)
cp -R examples/. "$work/"
rm -rf "$work/.kore-notify"
log="$work/emulator.log"
"$bin" emulator --listen 127.0.0.1:0 --client-id cs-demo --client-secret demo-secret --job-ms 300 >"$log" 2>&1 &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do
  grep -q 'listening on' "$log" 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$log" | sed -n 1p)
[ -n "$url" ] || { cat "$log"; echo "emulator did not start" >&2; exit 1; }
export KORE_HOST="$url" KORE_CLIENT_ID=cs-demo KORE_CLIENT_SECRET=demo-secret
cd "$work"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
step kore-notify validate;                           "$bin" validate
step kore-notify plan;                               "$bin" plan
step kore-notify apply --auto-approve --wait;        "$bin" apply --auto-approve --wait
step kore-notify status;                             "$bin" status
step "kore-notify plan --detailed-exitcode   # nothing left to send: exit 0"
"$bin" plan --detailed-exitcode --quiet | tail -n 1
step "curl $url/_emulator/deliveries   # every recipient received exactly one message"
curl -s "$url/_emulator/deliveries" 2>/dev/null | head -c 300 || true
printf '\n\nDemo finished: every channel sent once through the emulator, and a second plan is empty.\n'
