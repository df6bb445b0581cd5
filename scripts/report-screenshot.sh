#!/usr/bin/env bash
# Makes docs/report.png, the README's picture of the HTML delivery report: examples/ (a copy in a
# temporary directory, with one recipient who cannot be reached, so the report shows a failure)
# sent to the emulator, statuses refreshed, `kore-notify report` rendered by headless Chromium.
# Needs chromium (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet
bin="$PWD/target/debug/kore-notify"
out="$PWD/docs/report.png"
work=$(mktemp -d)
cp -R examples/. "$work/"
rm -rf "$work/.kore-notify"
sed -i 's/^  - sam.smith@example.com$/  - sam.smith@example.com\n  - former.staff.invalid@example.com/' "$work/notifications/it-password-reset.yaml"
log="$work/emulator.log"
"$bin" emulator --listen 127.0.0.1:0 --client-id cs-demo --client-secret demo-secret --job-ms 300 >"$log" 2>&1 &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true; rm -rf "$work"' EXIT
url=""
for _ in $(seq 1 50); do
  url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$log")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$log"; echo "emulator did not start" >&2; exit 1; }
export KORE_HOST="$url" KORE_CLIENT_ID=cs-demo KORE_CLIENT_SECRET=demo-secret
(cd "$work" && "$bin" apply --auto-approve --wait --quiet) || true
(cd "$work" && "$bin" report --key it/password-reset-2026-12 --out "$work/report.html")
mkdir -p docs
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile" \
  --window-size=900,1700 --screenshot="$out" "file://$work/report.html" 2>/dev/null
echo "wrote $out" >&2
