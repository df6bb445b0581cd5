#!/usr/bin/env bash
# Apply on merge, with the state kept on a dedicated git branch. The reusable workflow
# (.github/workflows/kore-notify.yml) runs exactly this script; scripts/simulate-back-to-back.sh
# runs it against a local "origin" to show that two merges in quick succession never resend.
#
# Persistence protocol (runs are also serialised by the workflow's `concurrency` group):
#  1. Check out the *tip* of the default branch, never the (possibly older) triggering commit:
#     a run started by an earlier merge applies the newest manifests, and a later run finds
#     nothing left to send.
#  2. Restore .kore-notify/ from the state branch. If it carries an APPLY_IN_PROGRESS marker, an
#     earlier run sent messages and did not record its state: refuse (a human restores the state
#     from that run's artifact, then deletes the marker).
#  3. Push the marker to the state branch *before* sending. If the push fails, nothing is sent.
#  4. kore-notify apply --auto-approve.
#  5. Always: commit .kore-notify/ (snapshot, and the journal if the run died) without the marker
#     and push. If this push fails, the marker stays and stops the next run (step 2).
#
# Environment: KN_BIN (kore-notify binary, default kore-notify), KN_STATE_BRANCH (default
# kore-notify-state), KN_DEFAULT_BRANCH (default main), KN_DIR (directory holding
# kore-notify.yaml, default .), KN_RUN_URL (shown in the marker), KN_APPLY_ARGS (extra args).
set -euo pipefail

bin=${KN_BIN:-kore-notify}
state_branch=${KN_STATE_BRANCH:-kore-notify-state}
default_branch=${KN_DEFAULT_BRANCH:-main}
dir=${KN_DIR:-.}
run_url=${KN_RUN_URL:-local run $$ on $(hostname)}
marker=APPLY_IN_PROGRESS
repo_root=$(git rev-parse --show-toplevel)
cd "$repo_root"

say() { printf 'kore-notify-ci: %s\n' "$*" >&2; }

git config user.name >/dev/null 2>&1 || git config user.name "kore-notify"
git config user.email >/dev/null 2>&1 || git config user.email "kore-notify@users.noreply.github.com"

# 1. The newest manifests.
git fetch --quiet origin "$default_branch"
git checkout --quiet --detach "origin/$default_branch"
say "applying $(git rev-parse --short HEAD) (tip of $default_branch)"

# 2. Restore the state.
state_dir="$dir/.kore-notify"
worktree=$(mktemp -d)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"; }
trap cleanup EXIT
if git fetch --quiet origin "$state_branch" 2>/dev/null; then
  git worktree add --quiet --detach "$worktree" "origin/$state_branch"
  git -C "$worktree" checkout --quiet -B "$state_branch"
else
  say "no $state_branch branch yet: starting from an empty state"
  git worktree add --quiet --detach "$worktree"
  git -C "$worktree" checkout --quiet --orphan "$state_branch"
  git -C "$worktree" rm -rf --quiet . >/dev/null 2>&1 || true
fi
if [ -e "$worktree/$marker" ]; then
  say "REFUSING: the state branch carries $marker: $(cat "$worktree/$marker")"
  say "an earlier apply may have sent messages without recording them; restore .kore-notify/ from"
  say "that run's artifact onto $state_branch and delete $marker, then re-run"
  exit 1
fi
rm -rf "$state_dir"
if [ -d "$worktree/.kore-notify" ]; then
  mkdir -p "$state_dir"
  cp -R "$worktree/.kore-notify/." "$state_dir/"
fi

# 3. Marker first: if it cannot be recorded, nothing is sent.
printf '%s\n' "$run_url" >"$worktree/$marker"
git -C "$worktree" add -A
git -C "$worktree" commit --quiet -m "kore-notify: apply in progress ($run_url)"
git -C "$worktree" push --quiet origin "HEAD:refs/heads/$state_branch"

# 4. Apply.
status=0
# shellcheck disable=SC2086 # KN_APPLY_ARGS is a list of flags
(cd "$dir" && "$bin" apply --auto-approve ${KN_APPLY_ARGS:-}) || status=$?

# 5. Record the state, whatever happened, and clear the marker.
rm -rf "${worktree:?}/.kore-notify" "${worktree:?}/$marker"
if [ -d "$state_dir" ]; then
  mkdir -p "$worktree/.kore-notify"
  cp -R "$state_dir/." "$worktree/.kore-notify/"
  rm -f "$worktree/.kore-notify/state.json.lock"
fi
git -C "$worktree" add -A
git -C "$worktree" commit --quiet -m "kore-notify: state after apply of $(git rev-parse --short HEAD) (exit $status)" || true
if ! git -C "$worktree" push --quiet origin "HEAD:refs/heads/$state_branch"; then
  say "COULD NOT PUSH THE STATE: the marker stays on $state_branch and stops the next apply"
  exit 1
fi
say "state recorded on $state_branch (apply exit $status)"
exit "$status"
