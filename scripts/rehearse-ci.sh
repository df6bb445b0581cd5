#!/usr/bin/env bash
# A local rehearsal of the CI protocol (scripts/ci-apply.sh, as the reusable workflow runs it)
# against a local bare "origin" and the emulator, step by step:
#
#   1. adopt: a team that applied by hand and committed its state adopts CI: nothing is re-sent;
#   2. merges: two merges applied back to back from checkouts of different ages: each message once;
#   3. schedule: a notification with notBefore is skipped until the window opens, then sent once
#      by a scheduled run (the clock is moved with KORE_NOTIFY_NOW);
#   4. cancel: a run cancelled mid-apply (SIGTERM) records what it sent and clears its marker; the
#      rerun, from the same checkout, sends the rest;
#   5. recover: a run killed outright (SIGKILL) leaves its marker; the next run refuses; `recover`
#      restores the run's state artifact and absorbs its journal; the unknown request is settled
#      with `resolve`; nobody receives anything twice;
#   6. the state lives at a non-default path (state: state/notifications.json) throughout, and
#      max-recipients is exported empty, as the workflow does when it keeps its default;
#   7. targets: a second repository with two targets, staging and production (promoteFrom:
#      staging), each its own bot (its own emulator), applied one target at a time as the
#      workflow's matrix does (KN_TARGET): production applied before staging sends nothing;
#      staging, then production, sends each recipient once per bot; production's run reads
#      staging's state read-only and never writes it back; both states live on the one state
#      branch under their own paths; a marker names its target and stops both.
#
#   scripts/rehearse-ci.sh            # builds kore-notify (debug) and rehearses
#   KN_BIN=path/to/kore-notify scripts/rehearse-ci.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [ -z "${KN_BIN:-}" ]; then
  cargo build --locked --quiet
  KN_BIN="$root/target/debug/kore-notify"
fi
bin=$KN_BIN
work=$(mktemp -d)
emus=()
# shellcheck disable=SC2317 # called by the EXIT trap
stop() { for e in "${emus[@]}"; do kill "$e" 2>/dev/null || true; done; rm -rf "$work"; }
trap stop EXIT
# Starts an emulator (a bot) logging to LOG, and prints its URL.
emulator() {
  "$bin" emulator --listen 127.0.0.1:0 --client-id cs-rehearse --client-secret rehearse-secret --latency-ms "$2" --job-ms 50 >"$1" 2>&1 &
  emus+=("$!")
  for _ in $(seq 1 100); do grep -q 'listening on' "$1" 2>/dev/null && break; sleep 0.1; done
}
emulator "$work/emulator.log" 400
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/emulator.log" | sed -n 1p)
[ -n "$url" ] || { echo "FAIL: the emulator did not start"; exit 1; }
export KORE_CLIENT_ID=cs-rehearse KORE_CLIENT_SECRET=rehearse-secret KN_BIN=$bin KN_DEFAULT_BRANCH=main
export KORE_NOTIFY_MAX_RECIPIENTS="" KORE_NOTIFY_NOW=2026-11-24T09:00:00Z
export GIT_AUTHOR_NAME=dev GIT_AUTHOR_EMAIL=dev@example.com GIT_COMMITTER_NAME=dev GIT_COMMITTER_EMAIL=dev@example.com

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }
stats() { curl -s "$url/_emulator/deliveries"; }
# Deliveries of one recipient (channel:identity), 0 when none.
got() { stats | python3 -c "import json,sys; print(json.load(sys.stdin)['deliveries'].get('$1', 0))"; }
max_got() { stats | python3 -c "import json,sys; d=json.load(sys.stdin)['deliveries']; print(max(d.values(), default=0))"; }
total() { stats | python3 -c "import json,sys; print(sum(json.load(sys.stdin)['deliveries'].values()))"; }
expect() { [ "$(got "$1")" = "$2" ] || fail "$1 received $(got "$1") message(s), expected $2"; }
# Every one of PREFIX-1 … PREFIX-N received exactly one message.
all_once() {
  stats | python3 -c "
import json, sys
d = json.load(sys.stdin)['deliveries']
bad = [(i, d.get(f'slack:$1-{i}@example.com', 0)) for i in range(1, $2 + 1) if d.get(f'slack:$1-{i}@example.com', 0) != 1]
sys.exit(f'FAIL: not exactly once: {bad[:10]}' if bad else 0)"
}
no_duplicates() {
  [ "$(max_got)" -le 1 ] || fail "someone received a message twice: $(stats | python3 -c "import json,sys; print({k: v for k, v in json.load(sys.stdin)['deliveries'].items() if v > 1})")"
}
ci() { (cd "$1" && shift && env "$@" "$root/scripts/ci-apply.sh"); }
marker_on_branch() { git -C "$work/dev" fetch --quiet origin kore-notify-state && git -C "$work/dev" cat-file -e origin/kore-notify-state:APPLY_IN_PROGRESS 2>/dev/null; }
audience() { # audience FILE KEY N: a slack notification to N people
  { printf 'key: %s\nchannel: slack\ncontent: {type: text, value: "%s"}\nidentities:\n' "$2" "$2"
    seq 1 "$3" | sed "s/^/  - $2-/; s/\$/@example.com/"; } >"$1"
}

git init --quiet --bare -b main "$work/origin.git"
git clone --quiet "$work/origin.git" "$work/dev" 2>/dev/null
cd "$work/dev"
cat >kore-notify.yaml <<YAML
host: $url
botId: st-rehearsal
clientId: \${KORE_CLIENT_ID}
clientSecret: \${KORE_CLIENT_SECRET}
state: state/notifications.json
batchSize: 5
YAML
mkdir notifications

step "1. adopt: a state applied by hand and committed is adopted, nothing is re-sent"
audience notifications/a.yaml hand 3
"$bin" apply --auto-approve >/dev/null 2>&1
git add -A && git commit --quiet -m "applied by hand" && git push --quiet origin HEAD:main
ci "$work/dev" || fail "adopting run failed"
expect slack:hand-1@example.com 1
git -C "$work/dev" fetch --quiet origin kore-notify-state
git -C "$work/dev" cat-file -e origin/kore-notify-state:state/notifications.json || fail "state not at its configured path on the branch"
# From now on the state lives on the branch only.
git rm --quiet -r --cached state && rm -rf state && printf 'state/\n' >.gitignore
git add -A && git commit --quiet -m "state on the branch" && git push --quiet origin HEAD:main

step "2. merges: back to back, from checkouts of different ages"
audience notifications/b.yaml merge-one 2
git add -A && git commit --quiet -m "merge 1" && git push --quiet origin HEAD:main
git clone --quiet "$work/origin.git" "$work/runner-1"
audience notifications/c.yaml merge-two 2
git add -A && git commit --quiet -m "merge 2" && git push --quiet origin HEAD:main
git clone --quiet "$work/origin.git" "$work/runner-2"
ci "$work/runner-2" || fail "run for merge 2 failed"
ci "$work/runner-1" || fail "run for merge 1 failed"
expect slack:merge-one-1@example.com 1
expect slack:merge-two-2@example.com 1
no_duplicates

step "3. schedule: notBefore is honoured by scheduled runs"
audience notifications/d.yaml later 2
echo "notBefore: 2026-11-24T10:00:00Z" >>notifications/d.yaml
git add -A && git commit --quiet -m "scheduled" && git push --quiet origin HEAD:main
ci "$work/runner-1" || fail "run before the window failed"
expect slack:later-1@example.com 0
ci "$work/runner-1" KORE_NOTIFY_NOW=2026-11-24T10:15:00Z || fail "scheduled run failed"
expect slack:later-1@example.com 1
ci "$work/runner-1" KORE_NOTIFY_NOW=2026-11-24T10:30:00Z || fail "next scheduled run failed"
expect slack:later-2@example.com 1

step "4. cancel: SIGTERM mid-apply records what was sent; the rerun sends the rest"
audience notifications/e.yaml cancel 200
git add -A && git commit --quiet -m "big one" && git push --quiet origin HEAD:main
before=$(total)
set +e
(cd "$work/runner-1" && KN_STATUS=0 exec "$root/scripts/ci-apply.sh" </dev/null) &
run=$!
# Cancel once the run has sent something (a loaded machine may take a while to get there).
for _ in $(seq 1 200); do [ "$(total)" -gt "$before" ] && break; sleep 0.1; done
sleep 0.3
kill -TERM "$run"
wait "$run"
code=$?
set -e
[ "$code" = 143 ] || fail "a cancelled run exits 143, got $code"
marker_on_branch && fail "a cancelled run left its marker"
sent=$(( $(total) - before ))
if [ "$sent" -le 0 ] || [ "$sent" -ge 200 ]; then fail "expected a partial send before the cancel, got $sent"; fi
echo "   cancelled after $sent of 200 recipients"
ci "$work/runner-1" || fail "rerun after the cancel failed"
all_once cancel 200
no_duplicates

step "5. recover: a run killed outright leaves its marker; recover absorbs its journal"
audience notifications/f.yaml killed 200
git add -A && git commit --quiet -m "another big one" && git push --quiet origin HEAD:main
before=$(total)
set +e
(cd "$work/runner-1" && KN_STATUS=0 exec setsid "$root/scripts/ci-apply.sh") &
run=$!
sleep 1.5
# Everything in the run's session, kore-notify included (it has its own process group), and
# nothing else: other kore-notify processes on this machine are left alone.
pkill -KILL -s "$run" 2>/dev/null || kill -KILL "$run"
wait "$run" 2>/dev/null
set -e
while pgrep -s "$run" >/dev/null 2>&1; do sleep 0.1; done
marker_on_branch || fail "a killed run must leave its marker"
if ci "$work/runner-1" 2>/dev/null; then fail "a run went ahead despite the marker"; fi
# The workflow downloads the killed run's artifact (its state files) for `recover`.
mkdir -p "$work/artifact" && cp -R "$work/runner-1/state/." "$work/artifact/"
# An artifact that does not continue the branch's state (here: another lineage) is refused.
mkdir -p "$work/wrong"
(cd "$work/wrong" && cp "$work/dev/kore-notify.yaml" . && mkdir notifications && audience notifications/w.yaml elsewhere 1 && "$bin" apply --auto-approve >/dev/null 2>&1)
if ci "$work/runner-1" KN_ACTION=recover KN_RECOVER_FROM="$work/wrong/state" 2>/dev/null; then fail "recover took a wrong artifact"; fi
marker_on_branch || fail "a refused recover must leave the marker"
# An artifact holding no state (expired, another run's) and a run id that is not one are refused.
mkdir -p "$work/no-state"
if ci "$work/runner-1" KN_ACTION=recover KN_RECOVER_FROM="$work/no-state" 2>/dev/null; then fail "recover took an empty artifact"; fi
if ci "$work/runner-1" KN_ACTION=recover KN_RECOVER_FROM="$work/artifact" KN_RECOVER_RUN_ID='.*' 2>/dev/null; then fail "recover took a pattern for a run id"; fi
marker_on_branch || fail "a refused recover must leave the marker"
ci "$work/runner-1" KN_ACTION=recover KN_RECOVER_FROM="$work/artifact" || fail "recover failed"
marker_on_branch && fail "recover left the marker"
(cd "$work/runner-1" && "$bin" plan) >"$work/plan.txt" 2>&1 || true
unknown=$(sed -n 's/.*unknown request #\([0-9]*\).*/\1/p' "$work/plan.txt" | sed -n 1p)
# Dispatch inputs are data, never options.
if [ -n "$unknown" ] && ci "$work/runner-1" KN_ACTION=resolve KN_KEY=killed KN_REQUEST=--all KN_DECISION=sent 2>/dev/null; then
  fail "a request input that is an option was accepted"
fi
while [ -n "$unknown" ]; do
  # Decide as an operator would, from what Kore.ai shows (here: the emulator's deliveries).
  first=$(cd "$work/runner-1" && "$bin" state resolve killed "$unknown" --show-recipients | sed -n 's/^    \([^ ]*@example.com\)$/\1/p' | sed -n 1p)
  decision=not-sent
  [ "$(got "slack:$first")" -ge 1 ] && decision=sent
  echo "   unknown request #$unknown of killed ($first …): $decision"
  ci "$work/runner-1" KN_ACTION=resolve KN_KEY=killed KN_REQUEST="$unknown" KN_DECISION=$decision || fail "resolve failed"
  (cd "$work/runner-1" && "$bin" plan) >"$work/plan.txt" 2>&1 || true
  unknown=$(sed -n 's/.*unknown request #\([0-9]*\).*/\1/p' "$work/plan.txt" | sed -n 1p)
done
ci "$work/runner-1" || fail "apply after recovery failed"
all_once killed 200
no_duplicates
echo "   200 recipients, $(( $(total) - before )) deliveries"

step "6. idle runs commit nothing; a moved state path is refused, not re-sent"
ci "$work/runner-1" || fail "idle run failed"   # records the last delivery statuses
git -C "$work/dev" fetch --quiet origin kore-notify-state
commits=$(git -C "$work/dev" rev-list --count origin/kore-notify-state)
ci "$work/runner-1" || fail "idle run failed"
git -C "$work/dev" fetch --quiet origin kore-notify-state
[ "$(git -C "$work/dev" rev-list --count origin/kore-notify-state)" = "$commits" ] || fail "an idle run committed to the state branch"
sed -i 's|state: state/notifications.json|state: moved/state.json|' kore-notify.yaml
git add -A && git commit --quiet -m "move the state" && git push --quiet origin HEAD:main
before=$(total)
if ci "$work/runner-1" 2>/dev/null; then fail "a moved state path was not refused"; fi
[ "$(total)" = "$before" ] || fail "a moved state path re-sent"

step "7. targets: staging before production, one target at a time, each state at its own path"
emulator "$work/staging.log" 20
emulator "$work/production.log" 20
staging=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/staging.log" | sed -n 1p)
production=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/production.log" | sed -n 1p)
if [ -z "$staging" ] || [ -z "$production" ]; then fail "the targets' emulators did not start"; fi
# bot URL → "deliveries recipients most-to-one-recipient"
bot() { curl -s "$1/_emulator/deliveries" | python3 -c "import json,sys; d=json.load(sys.stdin)['deliveries']; print(sum(d.values()), len(d), max(d.values(), default=0))"; }
git init --quiet --bare -b main "$work/targets.git"
git clone --quiet "$work/targets.git" "$work/targets" 2>/dev/null
cd "$work/targets"
target() { # target NAME URL: one target of kore-notify.yaml, its state at state/NAME.json
  cat <<YAML
  $1:
    host: $2
    botId: st-$1
    clientId: \${KORE_CLIENT_ID}
    clientSecret: \${KORE_CLIENT_SECRET}
    state: state/$1.json
    batchSize: 5
YAML
}
{ echo "targets:"; target staging "$staging"; target production "$production"; echo "    promoteFrom: staging"; } >kore-notify.yaml
printf 'state/\n' >.gitignore
mkdir notifications && audience notifications/w.yaml welcome 12
git add -A && git commit --quiet -m "two targets" && git push --quiet origin HEAD:main
git clone --quiet "$work/targets.git" "$work/targets-runner"
runner="$work/targets-runner"
# Without a target, a config with several refuses and names them.
if ci "$runner" 2>"$work/no-target.log"; then fail "a run without KN_TARGET went ahead on a config with two targets"; fi
grep -q 'staging, production' "$work/no-target.log" || fail "the refusal does not list the targets: $(cat "$work/no-target.log")"
# Out of order: production first sends nothing (its promotion gate has no evidence yet).
ci "$runner" KN_TARGET=production || fail "production's run failed"
[ "$(bot "$production")" = "0 0 0" ] || fail "production sent before staging: $(bot "$production")"
ci "$runner" KN_TARGET=staging || fail "staging's run failed"
[ "$(bot "$staging")" = "12 12 1" ] || fail "staging: expected 12 recipients once each, got $(bot "$staging")"
git -C "$runner" fetch --quiet origin kore-notify-state
staged=$(git -C "$runner" rev-parse origin/kore-notify-state:state/staging.json) || fail "staging's state is not at state/staging.json on the branch"
ci "$runner" KN_TARGET=production || fail "production's run after staging failed"
[ "$(bot "$production")" = "12 12 1" ] || fail "production: expected 12 recipients once each, got $(bot "$production")"
# (Its mode: `test -w` is true for root whatever the mode.)
[ -z "$(find "$runner/state/staging.json" -perm /222)" ] || fail "production's run restored staging's state writable"
git -C "$runner" fetch --quiet origin kore-notify-state
git -C "$runner" cat-file -e origin/kore-notify-state:state/production.json || fail "production's state is not at state/production.json on the branch"
[ "$(git -C "$runner" rev-parse origin/kore-notify-state:state/staging.json)" = "$staged" ] || fail "production's run changed staging's state on the branch"
# The next merge, in the workflow's order: each bot sends the new one once, nobody twice.
audience notifications/n.yaml news 3
git add -A && git commit --quiet -m "news" && git push --quiet origin HEAD:main
ci "$runner" KN_TARGET=staging || fail "staging's second run failed"
ci "$runner" KN_TARGET=production || fail "production's second run failed"
if [ "$(bot "$staging")" != "15 15 1" ] || [ "$(bot "$production")" != "15 15 1" ]; then
  fail "second merge: staging $(bot "$staging"), production $(bot "$production")"
fi
# A marker names its target and stops both; only that target's recover may clear it.
wt="$work/targets-marker"
git -C "$runner" worktree add --quiet --detach "$wt" origin/kore-notify-state
printf 'https://github.com/o/r/actions/runs/77\ntarget staging\n' >"$wt/APPLY_IN_PROGRESS"
git -C "$wt" add -A && git -C "$wt" commit --quiet -m marker && git -C "$wt" push --quiet origin HEAD:kore-notify-state
if ci "$runner" KN_TARGET=production 2>/dev/null; then fail "production went ahead despite staging's marker"; fi
mkdir -p "$work/production-artifact/state" && cp "$runner/state/production.json" "$work/production-artifact/state/"
if ci "$runner" KN_TARGET=production KN_ACTION=recover KN_RECOVER_FROM="$work/production-artifact" KN_RECOVER_RUN_ID=77 2>"$work/wrong-target.log"; then
  fail "production's recover cleared staging's marker"
fi
grep -q 'recover with target staging' "$work/wrong-target.log" || fail "the refusal does not name the marker's target: $(cat "$work/wrong-target.log")"
if [ "$(bot "$staging")" != "15 15 1" ] || [ "$(bot "$production")" != "15 15 1" ]; then
  fail "a refused run sent: staging $(bot "$staging"), production $(bot "$production")"
fi
cd "$work"

echo
echo "PASS: adopt, back-to-back merges, schedule, cancel, recover, idle runs, a moved state and two targets in order kept every promise."
