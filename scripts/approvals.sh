#!/usr/bin/env bash
# The approvals file for `kore-notify apply --approvals FILE` (format: `kore-notify schema
# approvals`): the reviews of the pull request that merged COMMIT, read from the GitHub API, and
# the members of the teams the policy names. JSON on standard output. Says plainly, on standard
# error and in the file's `notes` (apply prints them), what it cannot read: a commit pushed
# without a merged pull request (no approvals), team membership the token may not read (those
# teams then count nobody). Exits non-zero only when the pull requests or reviews cannot be read.
#
#   scripts/approvals.sh COMMIT
#
# Environment: GITHUB_REPOSITORY (owner/name); GH_TOKEN (the workflow token: reads pull requests
# and reviews); KN_TEAMS_TOKEN (optional: a token that may read the organization's team members;
# the workflow token cannot); KN_TEAMS (the org/team slugs to read, space-separated; default:
# every org/team in a `from: [...]` line of KN_DIR/kore-notify.yaml); KN_DIR (default .).
# KN_API_FIXTURES=DIR answers each API path from DIR/<path, with / ? & = as _>.json (tests).
set -euo pipefail
commit=${1:-}
repo=${GITHUB_REPOSITORY:-}
say() { printf 'approvals.sh: %s\n' "$*" >&2; }
[[ "$commit" =~ ^[0-9a-f]{40}([0-9a-f]{24})?$ ]] || { say "usage: approvals.sh COMMIT (a full commit id, got '$commit')"; exit 1; }
[[ "$repo" =~ ^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$ ]] || { say "GITHUB_REPOSITORY must be owner/name, got '$repo'"; exit 1; }

# GET one API path, every page merged; JSON on standard output.
api() {
  if [ -n "${KN_API_FIXTURES:-}" ]; then
    local f
    f="$KN_API_FIXTURES/$(printf '%s' "$1" | tr '/?&=' '____').json"
    [ -f "$f" ] || return 1
    cat "$f"
  else
    gh api --paginate -H 'Accept: application/vnd.github+json' "$1" | jq -s 'if (.[0] | type) == "array" then add else .[0] end'
  fi
}

notes=()
prs=$(api "repos/$repo/commits/$commit/pulls") || { say "cannot list the pull requests of $commit (does the token have pull-requests: read?)"; exit 1; }
pr=$(jq -c --arg c "$commit" '[.[] | select(.merged_at != null and .merge_commit_sha == $c)][0] // empty' <<<"$prs")
if [ -z "$pr" ]; then
  notes+=("commit $commit was pushed without a merged pull request: it has no approvals")
  pull=null
else
  number=$(jq -r '.number' <<<"$pr")
  [[ "$number" =~ ^[0-9]{1,12}$ ]] || { say "unexpected pull request number '$number'"; exit 1; }
  reviews=$(api "repos/$repo/pulls/$number/reviews?per_page=100") || { say "cannot read the reviews of pull request #$number"; exit 1; }
  pull=$(jq -c --argjson pr "$pr" '{
      number: $pr.number, author: $pr.user.login, headCommit: $pr.head.sha, mergeCommit: $pr.merge_commit_sha,
      reviews: [.[] | select(.user != null and .commit_id != null and .submitted_at != null)
        | {login: .user.login, type: .user.type, state: .state, commit: .commit_id, submittedAt: .submitted_at}]
    }' <<<"$reviews")
fi

teams='{}'
list=${KN_TEAMS:-$( (grep -hE '^[[:space:]]*(-[[:space:]]*)?(require:.*)?from:' "${KN_DIR:-.}/kore-notify.yaml" 2>/dev/null || true) | grep -oE '[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+' | sort -u | tr '\n' ' ')}
for team in $list; do
  [[ "$team" =~ ^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$ ]] || { notes+=("'$team' is not an org/team: skipped"); continue; }
  if members=$(GH_TOKEN=${KN_TEAMS_TOKEN:-${GH_TOKEN:-}} api "orgs/${team%%/*}/teams/${team#*/}/members?per_page=100" 2>/dev/null); then
    teams=$(jq -c --arg t "$team" --argjson m "$members" '. + {($t): [$m[].login]}' <<<"$teams")
  else
    notes+=("cannot read the members of $team (the token may not read the organization's teams: give the workflow a KORE_NOTIFY_TEAMS_TOKEN secret); approvals through $team count for nobody")
  fi
done

for n in ${notes[@]+"${notes[@]}"}; do say "$n"; done
jq -n --arg commit "$commit" --arg repo "$repo" --argjson pr "$pull" --argjson teams "$teams" \
  '{formatVersion: 1, repository: $repo, commit: $commit, pullRequest: $pr, teams: $teams, notes: $ARGS.positional}' \
  --args ${notes[@]+"${notes[@]}"}
