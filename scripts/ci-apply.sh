#!/usr/bin/env bash
# Apply (and recovery actions) in CI, with the state kept on a dedicated git branch. The reusable
# workflow (.github/workflows/kore-notify.yml) runs exactly this script; scripts/rehearse-ci.sh
# runs it against a local "origin" and the emulator: merges, a schedule, a cancel, a recovery.
#
# Protocol (runs are also serialised by the workflow's `concurrency` group):
#  1. Check out the *tip* of the default branch, never the (possibly older) triggering commit: a run
#     started by an earlier merge applies the newest manifests, and a later run finds nothing left.
#  2. Restore the state files -- wherever the config keeps them: `kore-notify state path --all`
#     says which -- from the state branch. With KN_TARGET, those of that target; every other
#     target's state file is restored too, read-only, for the promotion gate (production's plan
#     reads staging's state), and never written back. With no state branch yet, a state committed in the
#     repository is adopted; if both exist and disagree (another lineage, or the committed one is
#     newer), refuse and send nothing. An APPLY_IN_PROGRESS marker on the state branch means an
#     earlier run did not record its state: refuse (KN_ACTION=recover clears it, see below).
#  3. Push the marker before sending. If the push fails, nothing is sent.
#  4. Run the action in its own process group. SIGINT/SIGTERM to this script are passed on to
#     kore-notify, which stops starting batches, records the requests in flight and exits 130/143.
#  5. After an apply: `status --refresh` records delivery statuses (failures with Kore's comments).
#  6. Always: commit the state files without the marker and push. If this push fails, the marker
#     stays and stops the next run. A job summary is written when GITHUB_STEP_SUMMARY is set.
#
# Actions (KN_ACTION):
#   apply            (default) kore-notify apply --auto-approve, then status --refresh
#   resolve          kore-notify state resolve KN_KEY KN_REQUEST --sent|--not-sent (KN_DECISION=sent|not-sent)
#   retry-unknown    kore-notify apply --auto-approve --retry-unknown=KN_KEY[#KN_REQUEST] (KN_KEY=all:
#                    every unknown request, said explicitly; an empty KN_KEY is refused)
#   recover          clear a stale marker: the interrupted run's state files (its artifact) are in
#                    KN_RECOVER_FROM; they are restored, their journal absorbed (`state compact`:
#                    requests without an answer become unknown), and the state pushed without the
#                    marker. Sends nothing. Refused (marker kept) when the artifact holds no state
#                    (its snapshot, or its journal when the branch has no snapshot yet), when it
#                    does not continue the branch's state, or when KN_RECOVER_RUN_ID (digits,
#                    compared literally; required when the marker names a GitHub run) is not the
#                    run the marker names.
#
# Targets: KN_TARGET names the target (`targets:` in kore-notify.yaml) this run applies or
# repairs; empty means the config's only target. The workflow runs one target at a time, in the
# caller's order. The marker is one file for the whole branch and names its target: any marker
# stops every target's run (the states share the branch); `recover` with that target clears it.
#
# Environment: KN_BIN (default kore-notify), KN_STATE_BRANCH (default kore-notify-state),
# KN_DEFAULT_BRANCH (default main), KN_DIR (directory holding kore-notify.yaml, default .),
# KN_RUN_URL (shown in the marker), KN_STATUS (0 to skip the status refresh), KN_APPROVALS (1: read
# the approvals of the pull request that merged the tip with scripts/approvals.sh, for the policy).
set -euo pipefail

bin=${KN_BIN:-kore-notify}
state_branch=${KN_STATE_BRANCH:-kore-notify-state}
default_branch=${KN_DEFAULT_BRANCH:-main}
dir=${KN_DIR:-.}
action=${KN_ACTION:-apply}
run_url=${KN_RUN_URL:-local run $$ on $(hostname)}
marker=APPLY_IN_PROGRESS
repo_root=$(git rev-parse --show-toplevel)
cd "$repo_root"

say() { printf 'kore-notify-ci: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# Inputs are data, never options: checked against their grammar, and passed after `--`.
if [ -n "${KN_KEY:-}" ] && ! [[ "$KN_KEY" =~ ^[A-Za-z0-9._:/-]{1,128}$ ]]; then
  die "KN_KEY '$KN_KEY' is not a notification key"
fi
# A run id is digits, compared literally with the marker (never as a pattern: `.*` matches anything).
if [ -n "${KN_RECOVER_RUN_ID:-}" ] && ! [[ "$KN_RECOVER_RUN_ID" =~ ^[0-9]{1,20}$ ]]; then
  die "KN_RECOVER_RUN_ID '$KN_RECOVER_RUN_ID' is not a run id (digits)"
fi
target=${KN_TARGET:-}
if [ -n "$target" ]; then
  [[ "$target" =~ ^[a-z][a-z0-9_-]{0,39}$ ]] || die "KN_TARGET '$target' is not a target name (lowercase letters, digits, - and _)"
  export KORE_NOTIFY_TARGET="$target"
fi
case "$action" in
  apply | recover) ;;
  resolve)
    if [ -z "${KN_KEY:-}" ] || [ -z "${KN_REQUEST:-}" ]; then die "resolve needs KN_KEY and KN_REQUEST"; fi
    [[ "$KN_REQUEST" =~ ^#?[A-Za-z0-9._-]{1,128}$ ]] || die "KN_REQUEST '$KN_REQUEST' is not a request number, batch id or job id"
    case "${KN_DECISION:-}" in sent | not-sent) ;; *) die "resolve needs KN_DECISION=sent or not-sent" ;; esac ;;
  retry-unknown)
    [ -n "${KN_KEY:-}" ] || die "retry-unknown needs KN_KEY (and optionally KN_REQUEST)"
    [[ "${KN_REQUEST:-0}" =~ ^[0-9]{1,9}$ ]] || die "KN_REQUEST '$KN_REQUEST' is not a request number"
    ;;
  *) die "unknown KN_ACTION '$action' (apply, resolve, retry-unknown, recover)" ;;
esac

git config user.name >/dev/null 2>&1 || git config user.name "kore-notify"
git config user.email >/dev/null 2>&1 || git config user.email "kore-notify@users.noreply.github.com"

# Signals: passed on to kore-notify (running in its own process group, so it gets each one once).
# A cancelled GitHub job gets SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that: if
# kore-notify is still waiting for requests in flight after KN_GRACE seconds (default 4), it gets
# a second signal and stops at once (its journal is safe: those requests become unknown), so the
# state is still pushed and the marker cleared before the kill.
tool_pid=""
signalled=""
# shellcheck disable=SC2317 # called by the INT/TERM traps
on_signal() {
  say "received SIG$1: asking kore-notify to stop after the requests in flight"
  if [ -n "$tool_pid" ]; then
    kill "-$1" "$tool_pid" 2>/dev/null || true
    if [ -z "$signalled" ]; then
      signalled=1
      # Only while it is still this script's child: a pid that exited may be reused by then.
      (sleep "${KN_GRACE:-4}"
       [ "$(ps -o ppid= -p "$tool_pid" 2>/dev/null | tr -d ' ')" = "$$" ] && kill -TERM "$tool_pid" 2>/dev/null) &
    fi
  fi
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
# Runs kore-notify in its own process group and waits for it, through signals.
tool() {
  local rc
  set -m
  (cd "$dir" && exec "$bin" "$@") &
  tool_pid=$!
  set +m
  while :; do
    rc=0
    wait "$tool_pid" || rc=$?
    kill -0 "$tool_pid" 2>/dev/null || break
  done
  tool_pid=""
  return "$rc"
}
info() { (cd "$dir" && "$bin" state info) | sed -n "s/^$1 //p"; }
# The action itself (apply, retry-unknown, resolve); its exit status goes to `status`.
status=0
act() {
  case "$action" in
    apply) tool apply --auto-approve ${KN_QUIET:+--quiet} || status=$? ;;
    retry-unknown) tool apply --auto-approve "--retry-unknown=$KN_KEY${KN_REQUEST:+#$KN_REQUEST}" || status=$? ;;
    resolve) tool state resolve "--$KN_DECISION" -- "$KN_KEY" "$KN_REQUEST" || status=$? ;;
  esac
}
# Statuses (when the run was not interrupted) and the job summary.
refresh() {
  if [ "$action" != resolve ] && [ "$action" != recover ] && [ "$status" -lt 128 ] && [ "${KN_STATUS:-1}" != 0 ]; then
    tool status --refresh >/dev/null || true
  fi
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    (cd "$dir" && "$bin" status --format markdown) >>"$GITHUB_STEP_SUMMARY" 2>/dev/null || true
  fi
}

# 1. The newest manifests.
git fetch --quiet origin "$default_branch"
git checkout --quiet --detach "origin/$default_branch"
say "$action${target:+ of target $target} at $(git rev-parse --short HEAD) (tip of $default_branch)"
# The approvals of the pull request that merged this very commit, for the policy's `require` rules
# (KN_APPROVALS=1, as the workflow sets it; scripts/approvals.sh). When they cannot be read, the
# apply runs without them: notifications that need approvals are held back, the others are sent.
if [ "${KN_APPROVALS:-0}" = 1 ] && [ "$action" != resolve ] && [ "$action" != recover ]; then
  approvals_file="$(git rev-parse --absolute-git-dir)/kore-notify-approvals.json"
  if "$(dirname "$0")/approvals.sh" "$(git rev-parse HEAD)" >"$approvals_file"; then
    export KORE_NOTIFY_APPROVALS="$approvals_file"
  else
    say "cannot read the approvals of $(git rev-parse --short HEAD): notifications whose policy requires approvals are held back"
  fi
fi
# The state files, relative to the repository root, as the tool resolves them from the config.
errors=$(mktemp)
state_files() { # state_files [TARGET]: that target's files (default: this run's), or fail with the tool's error
  local p
  p=$(cd "$dir" && "$bin" ${1:+--target "$1"} state path --all 2>"$errors") || die "kore-notify cannot read its config: $(head -c 2000 "$errors")"
  printf '%s\n' "$p" | sed '/^$/d' | while IFS= read -r f; do printf '%s\n' "$dir/$f"; done
}
list=$(state_files) || exit 1
mapfile -t files < <(printf '%s\n' "$list" | sed '/^$/d')
# Every other target's state file (the first path each lists), restored read-only: never pushed.
others=()
if [ -n "$target" ] && [ "${#files[@]}" -gt 0 ]; then
  command -v jq >/dev/null 2>&1 || die "KN_TARGET needs jq (to read the targets from kore-notify plan --format json)"
  names=$(cd "$dir" && env -u KORE_NOTIFY_TARGET -u KORE_NOTIFY_MAX_RECIPIENTS -u KORE_NOTIFY_EVENTS "$bin" plan --format json 2>"$errors" | jq -r '.targets[].name') ||
    die "kore-notify cannot plan its targets: $(head -c 2000 "$errors")"
  for n in $names; do
    [ "$n" = "$target" ] && continue
    [[ "$n" =~ ^[a-z][a-z0-9_-]{0,39}$ ]] || die "the plan names a target '$n' that is not a target name"
    list=$(state_files "$n") || exit 1
    # A target kept in PostgreSQL has no files: its plan reads the database.
    if [ -n "$list" ]; then others+=("$(printf '%s\n' "$list" | sed -n 1p)"); fi
  done
fi
rm -f "$errors"

# The state in PostgreSQL (state: postgres://… or KORE_NOTIFY_STATE_URL): every entry is committed
# before its request leaves and the database's lock serialises writers, so there is no state
# branch, marker or artifact. A killed run's requests in flight become unknown when the next run
# opens the state; `recover` only does that (state compact).
if [ "${#files[@]}" -eq 0 ]; then
  say "the state is in PostgreSQL: no state branch"
  if [ "$action" = recover ]; then tool state compact || status=$?; else act; fi
  refresh
  say "$action exit $status"
  exit "$status"
fi

# 2. The state branch, in a worktree at a fixed place (a cancelled run's leftovers are removed).
worktree="$(git rev-parse --absolute-git-dir)/kore-notify-state-worktree"
git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"
git worktree prune
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"; }
trap cleanup EXIT
committed_lineage=""
committed_serial=0
# A state committed in the repository (not a leftover of an earlier run in this checkout).
if git cat-file -e "HEAD:${files[0]#./}" 2>/dev/null; then
  git checkout --quiet HEAD -- "${files[0]}"
  committed_lineage=$(info lineage)
  committed_serial=$(info serial)
fi
if git fetch --quiet origin "$state_branch" 2>/dev/null; then
  git worktree add --quiet --detach "$worktree" "origin/$state_branch"
  if [ -e "$worktree/$marker" ] && [ "$action" != recover ]; then
    say "REFUSING: the state branch carries $marker: $(head -c 1024 "$worktree/$marker" | tr '\n' ' ')"
    say "an earlier run may have sent messages without recording them. Recover with the workflow's"
    say "'recover' action (it restores that run's state artifact and absorbs its journal)."
    exit 1
  fi
  for f in "${files[@]}"; do
    rm -f "$f"
    if [ -e "$worktree/$f" ]; then mkdir -p "$(dirname "$f")" && cp "$worktree/$f" "$f"; fi
  done
  # A state branch holding files, none of them where the config keeps a target's state: the
  # config's state path changed (or another repository's branch). A new target's missing file is
  # fine as long as another target's is there.
  known=""
  for f in "${files[0]}" "${others[@]}"; do [ -e "$worktree/${f#./}" ] && known=1; done
  if [ -z "$known" ] && [ -n "$(git -C "$worktree" ls-files | grep -v "^$marker\$" || true)" ]; then
    say "REFUSING: the state branch holds files, but none at ${files[0]}$([ "${#others[@]}" -gt 0 ] && printf ' %s' "${others[@]}") (where the config keeps the state):"
    git -C "$worktree" ls-files | sed 's/^/  /' >&2
    say "if the config's state path changed, move the files on $state_branch to the new path first."
    exit 1
  fi
  if [ -n "$committed_lineage" ]; then
    branch_lineage=$(info lineage)
    branch_serial=$(info serial)
    if [ "$branch_lineage" != "$committed_lineage" ] || [ "$committed_serial" -gt "$branch_serial" ]; then
      say "REFUSING: the repository commits a state (${files[0]}: lineage $committed_lineage, serial $committed_serial)"
      say "that is not an older copy of the state branch's (lineage $branch_lineage, serial $branch_serial)."
      say "Keep one: remove the committed state from the repository, or replace the state branch's with it."
      exit 1
    fi
  fi
else
  say "no $state_branch branch yet: starting it$([ -n "$committed_lineage" ] && echo " from the committed state (serial $committed_serial)")"
  git worktree add --quiet --detach "$worktree"
  git -C "$worktree" checkout --quiet --orphan "kore-notify-state-new-$$"
  git -C "$worktree" rm -rf --quiet . >/dev/null 2>&1 || true
  [ "$action" = apply ] || die "$action needs a state branch"
fi

# The other targets' states, read-only, as the state branch has them (else as committed, else
# none): production's promotion gate reads staging's. Never copied back to the branch.
for f in "${others[@]}"; do
  rm -f "$f"
  mkdir -p "$(dirname "$f")"
  if [ -e "$worktree/${f#./}" ]; then
    cp "$worktree/${f#./}" "$f"
  elif git cat-file -e "HEAD:${f#./}" 2>/dev/null; then
    git show "HEAD:${f#./}" >"$f"
  fi
  if [ -e "$f" ]; then chmod a-w "$f"; fi
done

# Copies the state files into the worktree (or back), clearing what is not there.
to_branch() {
  for f in "${files[@]}"; do
    rm -f "$worktree/$f"
    if [ -e "$f" ]; then mkdir -p "$(dirname "$worktree/$f")" && cp "$f" "$worktree/$f"; fi
  done
}
push_state() {
  git -C "$worktree" add -A
  # Nothing changed (an idle scheduled run): no commit, no push.
  if git -C "$worktree" rev-parse --verify --quiet HEAD >/dev/null && git -C "$worktree" diff --cached --quiet; then return 0; fi
  git -C "$worktree" commit --quiet -m "$1" || true
  git -C "$worktree" push --quiet origin "HEAD:refs/heads/$state_branch"
}

# Nothing to do (a scheduled run between windows): no marker, no apply; statuses still refreshed.
idle=""
if [ "$action" = apply ] && (cd "$dir" && "$bin" plan --detailed-exitcode >/dev/null 2>&1); then
  idle=1
  say "nothing to send"
fi

# 3. Marker first: if it cannot be recorded, nothing is sent.
if [ "$action" != recover ] && [ -z "$idle" ]; then
  to_branch
  printf '%s\n' "$run_url" ${target:+"target $target"} >"$worktree/$marker"
  push_state "kore-notify: $action${target:+ of $target} in progress ($run_url)" || die "cannot push the marker: nothing was sent"
fi

# 4. The action.
case "$action" in
  apply | retry-unknown | resolve) if [ -z "$idle" ]; then act; fi ;;
  recover)
    [ -e "$worktree/$marker" ] || die "no $marker on $state_branch: nothing to recover"
    from=${KN_RECOVER_FROM:-}
    if [ -z "$from" ] || [ ! -d "$from" ]; then die "recover needs KN_RECOVER_FROM: the interrupted run's state artifact"; fi
    named=$(head -c 1024 "$worktree/$marker" | sed -n 1p)
    # The marker names its target (a marker without one predates targets): recover that target.
    owner=$(head -c 1024 "$worktree/$marker" | sed -n 's/^target //p')
    [ -z "$owner" ] || [ "$owner" = "$target" ] || die "the marker is target $owner's ($named): recover with target $owner"
    if [ -n "${KN_RECOVER_RUN_ID:-}" ]; then
      [[ "$named" == *"/runs/$KN_RECOVER_RUN_ID" ]] || die "the marker names $named, not run $KN_RECOVER_RUN_ID: recover that run's artifact"
    elif [[ "$named" == */runs/* ]]; then
      die "recover needs KN_RECOVER_RUN_ID: the marker names $named; give that run's id"
    fi
    branch_lineage=$(info lineage)
    branch_serial=$(info serial)
    # The artifact must hold the killed run's state: its snapshot when the branch has one (else at
    # least its journal). Restoring nothing would compare the branch's state with itself, clear
    # the marker, and let the next apply resend what the killed run sent.
    if [ -e "$worktree/${files[0]#./}" ]; then needed=("${files[0]}"); else needed=("${files[0]}" "${files[1]}"); fi
    restored=""
    for f in "${files[@]}"; do
      rel=${f#./}
      for candidate in "$from/$rel" "$from/$(basename "$f")"; do
        [ -L "$candidate" ] && die "the artifact's $candidate is a symbolic link: not a state artifact, nothing changed"
        if [ -f "$candidate" ]; then
          mkdir -p "$(dirname "$f")" && cp "$candidate" "$f"
          for n in "${needed[@]}"; do [ "$n" = "$f" ] && restored=1; done
          break
        fi
      done
    done
    [ -n "$restored" ] || die "KN_RECOVER_FROM ($from) holds no state of the interrupted run (looked for ${needed[*]}): not its artifact, nothing changed"
    # The artifact must continue the branch's state: same lineage, not older. Anything else
    # (another repository's, an older run's) would forget sends and re-send them.
    if [ "$(info lineage)" != "$branch_lineage" ] || [ "$(info serial)" -lt "$branch_serial" ]; then
      die "the artifact's state (lineage $(info lineage), serial $(info serial)) does not continue the state branch's (lineage $branch_lineage, serial $branch_serial): wrong artifact, nothing changed"
    fi
    tool state compact || status=$?
    ;;
esac
# 5. Delivery statuses, when the run was not interrupted.
refresh

# 6. Record the state, whatever happened, and clear the marker.
to_branch
rm -f "$worktree/$marker"
if ! push_state "kore-notify: ${target:+$target }state after $action of $(git rev-parse --short HEAD) (exit $status)"; then
  say "COULD NOT PUSH THE STATE: the marker stays on $state_branch and stops the next run"
  exit 1
fi
say "state recorded on $state_branch ($action exit $status)"
exit "$status"
