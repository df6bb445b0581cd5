#!/usr/bin/env bash
# The delivery report in CI, after every apply and every scheduled status refresh (the reusable
# workflow runs it after scripts/ci-apply.sh, in the same checkout, so the state is there):
#  1. writes the report, masked, as HTML and CSV into KN_REPORT_DIR (uploaded as artifacts) and
#     as markdown to the job summary (GITHUB_STEP_SUMMARY, when set);
#  2. posts or updates one delivery-report comment on the merged pull request of each notification
#     still in progress (or sent in the last KN_REPORT_DAYS days, default 3): the pull request
#     that merged the last commit touching its manifest. The comment has its own sticky marker
#     (`<!-- kore-notify-report -->`, not the plan's), is found only among github-actions[bot]'s
#     comments, and is updated until every status in it is final: it then carries a second
#     marker (`<!-- kore-notify-report: final -->`) and is left alone from then on.
# With a target (KN_TARGET, else KORE_NOTIFY_TARGET: a config with `targets:` needs one), the
# report is that target's (`report --target`) and so is the comment: its marker names the target
# (`<!-- kore-notify-report target=NAME -->`, the first line `report` writes), one per target.
# Never fails the job: a comment that cannot be posted is said on stderr.
#
# Environment: KN_BIN (default kore-notify), KN_DIR (directory holding kore-notify.yaml, default
# .), KN_REPORT_DIR (default ./kore-notify-report), REPO (owner/name; without it, no comments),
# GH_TOKEN (for gh), KN_REPORT_DAYS, KN_TARGET. Needs git, gh and jq (all on GitHub's ubuntu runners).
set -euo pipefail

bin=${KN_BIN:-kore-notify}
dir=${KN_DIR:-.}
out=${KN_REPORT_DIR:-$PWD/kore-notify-report}
days=${KN_REPORT_DAYS:-3}
target=${KN_TARGET:-${KORE_NOTIFY_TARGET:-}}
final='<!-- kore-notify-report: final -->'

say() { printf 'kore-notify-report: %s\n' "$*" >&2; }

[[ "$days" =~ ^[0-9]{1,4}$ ]] || { say "KN_REPORT_DAYS '$days' is not a number of days"; exit 1; }
targeted=()
if [ -n "$target" ]; then
  [[ "$target" =~ ^[a-z][a-z0-9_-]{0,39}$ ]] || { say "KN_TARGET '$target' is not a target name"; exit 1; }
  targeted=(--target "$target")
fi
report() { (cd "$dir" && "$bin" report --mask "${targeted[@]}" "$@"); }
mkdir -p "$out"
report --format html --out "$out/report.html" || say "no HTML report"
report --format csv --out "$out/report.csv" || say "no CSV report"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && report --format markdown --out "$out/report.md"; then
  head -c 900000 "$out/report.md" >>"$GITHUB_STEP_SUMMARY"
fi
if [ -z "${REPO:-}" ]; then
  say "no REPO: no pull-request comments"
  exit 0
fi
json=$(report --format json) || { say "no report: no pull-request comments"; exit 0; }
since=$(date -u -d "$days days ago" +%Y-%m-%dT%H:%M:%SZ)

# key<TAB>manifest file, for the notifications worth a comment.
declare -A keys_of=()
while IFS=$'\t' read -r key source; do
  file=${source%:*}
  commit=$(git -C "$dir" log -1 --format=%H -- "$file" 2>/dev/null || true)
  [ -n "$commit" ] || { say "$key: no commit touches $file"; continue; }
  pr=$(gh api "repos/$REPO/commits/$commit/pulls" --jq '[.[] | select(.merged_at != null)][0].number // empty' 2>/dev/null || true)
  [[ "$pr" =~ ^[0-9]{1,10}$ ]] || { say "$key: no merged pull request for $commit"; continue; }
  keys_of[$pr]+="--key=$key "
done < <(printf '%s\n' "$json" | jq -r --arg since "$since" \
  '.notifications[] | select(.requests > 0 and .source != null and ((.terminal | not) or .lastSentAt >= $since)) | [.key, .source] | @tsv')

for pr in "${!keys_of[@]}"; do
  read -r -a args <<<"${keys_of[$pr]}"
  body="$out/comment-$pr.md"
  report --format markdown "${args[@]}" --out "$body" || { say "#$pr: no report"; continue; }
  # The comment's marker is the report's first line: the target's own when there is one.
  marker=$(head -n 1 "$body")
  [[ "$marker" =~ ^'<!-- kore-notify-report'( target=[a-z][a-z0-9_-]{0,39})?' -->'$ ]] || { say "#$pr: no marker"; continue; }
  # Our comment: the marker, written by this workflow's bot -- never someone else's.
  found=$(gh api "repos/$REPO/issues/$pr/comments" --paginate --jq \
    "[.[] | select(.user.login == \"github-actions[bot]\" and (.body | startswith(\"$marker\")))][0] | select(. != null) | \"\(.id) \(.body | contains(\"$final\"))\"" 2>/dev/null || true)
  read -r id done_already <<<"$found"
  if [ "${done_already:-}" = true ]; then
    continue
  fi
  if [[ "${id:-}" =~ ^[0-9]+$ ]]; then
    gh api -X PATCH "repos/$REPO/issues/comments/$id" -F "body=@$body" >/dev/null || say "#$pr: cannot update the comment"
  else
    gh api -X POST "repos/$REPO/issues/$pr/comments" -F "body=@$body" >/dev/null || say "#$pr: cannot comment"
  fi
done
