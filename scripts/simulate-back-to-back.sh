#!/usr/bin/env bash
# Simulates two merges in quick succession and their two apply runs, from checkouts of different
# ages, against a local "origin" and the emulator, using the same scripts/ci-apply.sh as the
# reusable workflow. Shows that nobody receives a message twice, and that a run which could not
# record its state stops the next one.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --locked --quiet
bin="$root/target/debug/kore-notify"
work=$(mktemp -d)
emulog="$work/emulator.log"
"$bin" emulator --listen 127.0.0.1:0 --client-id cs-sim --client-secret sim-secret >"$emulog" 2>&1 &
emu=$!
trap 'kill $emu 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do grep -q 'listening on' "$emulog" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$emulog" | head -n 1)
export KORE_HOST=$url KORE_CLIENT_ID=cs-sim KORE_CLIENT_SECRET=sim-secret KN_BIN=$bin KN_DEFAULT_BRANCH=main
deliveries() { curl -s "$url/_emulator/deliveries"; }
total() { deliveries | sed -n 's/.*"accepted":\([0-9]*\).*/\1/p'; }

git init --quiet --bare -b main "$work/origin.git"
git clone --quiet "$work/origin.git" "$work/dev" 2>/dev/null
cd "$work/dev"
git config user.name dev; git config user.email dev@example.com
cp "$root/examples/kore-notify.yaml" .
mkdir notifications
cat >notifications/a.yaml <<'YAML'
key: merge-1/announcement
channel: msteams
content: {type: text, value: First merged notification}
identities: [ann@example.com, bob@example.com]
YAML
git add -A; git commit --quiet -m "merge 1"; git push --quiet origin main
git clone --quiet "$work/origin.git" "$work/runner-1"   # checkout taken at merge 1

cat >notifications/b.yaml <<'YAML'
key: merge-2/follow-up
channel: slack
content: {type: text, value: Second merged notification}
identities: [cat@example.com]
YAML
git add -A; git commit --quiet -m "merge 2"; git push --quiet origin main
git clone --quiet "$work/origin.git" "$work/runner-2"   # checkout taken at merge 2

echo "== run for merge 2 (newer checkout) applies first"
(cd "$work/runner-2" && "$root/scripts/ci-apply.sh")
echo "== run for merge 1 (older checkout, started earlier, finishes later)"
(cd "$work/runner-1" && "$root/scripts/ci-apply.sh")
echo "== emulator deliveries: $(deliveries)"
count=$(total)
[ "$count" = 2 ] || { echo "FAIL: expected 2 accepted requests, got $count"; exit 1; }
deliveries | grep -o '"deliveries":{[^}]*}' | grep -qE ':([2-9]|[1-9][0-9])' && { echo "FAIL: someone received a message twice"; exit 1; }

echo "== a run that could not record its state leaves the marker; the next run refuses"
git -C "$work/runner-1" fetch --quiet origin kore-notify-state
git clone --quiet -b kore-notify-state "$work/origin.git" "$work/state-edit"
(cd "$work/state-edit" && git config user.name sim && git config user.email sim@example.com &&
  echo "simulated crashed run" >APPLY_IN_PROGRESS && git add -A && git commit --quiet -m "crash" && git push --quiet origin kore-notify-state)
if (cd "$work/runner-1" && "$root/scripts/ci-apply.sh"); then
  echo "FAIL: apply ran despite the in-progress marker"; exit 1
fi
[ "$(total)" = "$count" ] || { echo "FAIL: something was sent"; exit 1; }
echo
echo "PASS: two back-to-back applies from checkouts of different ages sent each message once;"
echo "      an unrecorded run blocks the next apply instead of resending."
