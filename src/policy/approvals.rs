//! The approvals file (`apply --approvals FILE`): the reviews of the pull request that brought the
//! commit being applied, as the workflow read them from GitHub (`scripts/approvals.sh`). Its schema
//! is `kore-notify schema approvals`.
//!
//! Counting follows GitHub's own semantics, and is pure: a person's latest review decides (a later
//! CHANGES_REQUESTED or DISMISSED cancels their approval; COMMENTED and PENDING change nothing);
//! an approval counts only on the pull request's final head commit (one given before a later
//! push does not), from a person the rule allows (by login or as a member of a listed team), who
//! is neither the author nor a bot (a login ending in `[bot]`, or of type Bot), once per person.
//!
//! The file is read as hostile input: bounded, text, strict JSON with no unknown field, every
//! commit id, login and date checked. A file that fails any check is refused whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Largest approvals file read.
pub(crate) const MAX_APPROVALS_BYTES: u64 = 4 * 1024 * 1024;
const MAX_REVIEWS: usize = 10_000;
const MAX_MEMBERS: usize = 10_000;
const MAX_NOTES: usize = 50;
pub(crate) const FORMAT: u32 = 1;

/// `apply --approvals FILE`.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    title = "kore-notify approvals",
    description = "The reviews of the pull request that brought the commit being applied (`kore-notify apply --approvals FILE`), written by the workflow's scripts/approvals.sh."
)]
pub(crate) struct ApprovalsFile {
    /// Always 1.
    pub(crate) format_version: u32,
    /// The repository, `owner/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) repository: Option<String>,
    /// The commit being applied (the push to the default branch). `apply` refuses the file when it
    /// applies another commit.
    pub(crate) commit: String,
    /// The merged pull request of `commit`; null for a push without one (no approvals).
    pub(crate) pull_request: Option<PullRequest>,
    /// Members of the teams the policy names (`org/team` → logins). A team missing here counts
    /// nobody.
    #[serde(default)]
    pub(crate) teams: BTreeMap<String, Vec<String>>,
    /// What the workflow could not read (for example team membership without a token that
    /// allows it), shown by apply.
    #[serde(default)]
    pub(crate) notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PullRequest {
    pub(crate) number: u64,
    /// The login of the pull request's author.
    pub(crate) author: String,
    /// The pull request's final head commit: only approvals of it count.
    pub(crate) head_commit: String,
    /// The commit the merge made on the base branch (equal to `commit`).
    pub(crate) merge_commit: String,
    /// Every review, in any order (they are ordered by `submittedAt`).
    pub(crate) reviews: Vec<Review>,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Review {
    pub(crate) login: String,
    /// GitHub's account type (`User`, `Bot`, `Organization`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    pub(crate) state: ReviewState,
    /// The commit the review was given on.
    pub(crate) commit: String,
    /// RFC 3339.
    pub(crate) submitted_at: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
    Pending,
}

/// A GitHub login: 1 to 39 letters, digits or single hyphens, not starting with a hyphen; a bot's
/// ends in `[bot]`.
pub(crate) fn valid_login(s: &str) -> bool {
    let base = s.strip_suffix("[bot]").unwrap_or(s);
    !base.is_empty()
        && base.len() <= 39
        && !base.starts_with('-')
        && base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn valid_commit(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads and checks the approvals file; the message says what is wrong and where.
pub(crate) fn read_approvals(path: &std::path::Path) -> Result<ApprovalsFile, String> {
    let text = crate::files::read_named_text(path, MAX_APPROVALS_BYTES).map_err(|e| format!("cannot read: {e}"))?;
    let file: ApprovalsFile =
        serde_json::from_str(&text).map_err(|e| format!("not an approvals file: {}", crate::text::json_error(&e)))?;
    check(&file)?;
    Ok(file)
}

/// Every field of a parsed file within its rules.
fn check(f: &ApprovalsFile) -> Result<(), String> {
    if f.format_version != FORMAT {
        return Err(format!("formatVersion {} is not supported (this kore-notify reads {FORMAT})", f.format_version));
    }
    if !valid_commit(&f.commit) {
        return Err("commit: expected a full commit id (40 or 64 hex digits)".into());
    }
    if f.notes.len() > MAX_NOTES || f.notes.iter().any(|n| n.chars().count() > 1000) {
        return Err(format!("notes: at most {MAX_NOTES} notes of 1000 characters"));
    }
    for (team, members) in &f.teams {
        if !crate::policy::parse::valid_approver(team) || !team.contains('/') {
            return Err(format!("teams: `{}` is not an org/team", crate::safe::line(team)));
        }
        if members.len() > MAX_MEMBERS {
            return Err(format!("teams.{team}: more than {MAX_MEMBERS} members"));
        }
        if let Some(m) = members.iter().find(|m| !valid_login(m)) {
            return Err(format!("teams.{team}: `{}` is not a GitHub login", crate::safe::line(m)));
        }
    }
    let Some(pr) = &f.pull_request else { return Ok(()) };
    if !valid_login(&pr.author) {
        return Err(format!("pullRequest.author: `{}` is not a GitHub login", crate::safe::line(&pr.author)));
    }
    for (name, c) in [("headCommit", &pr.head_commit), ("mergeCommit", &pr.merge_commit)] {
        if !valid_commit(c) {
            return Err(format!("pullRequest.{name}: expected a full commit id (40 or 64 hex digits)"));
        }
    }
    if !pr.merge_commit.eq_ignore_ascii_case(&f.commit) {
        return Err("pullRequest.mergeCommit is not `commit`: these reviews are of another pull request".into());
    }
    if pr.reviews.len() > MAX_REVIEWS {
        return Err(format!("pullRequest.reviews: more than {MAX_REVIEWS}"));
    }
    for (i, r) in pr.reviews.iter().enumerate() {
        if !valid_login(&r.login) {
            return Err(format!(
                "pullRequest.reviews[{i}].login: `{}` is not a GitHub login",
                crate::safe::line(&r.login)
            ));
        }
        if !valid_commit(&r.commit) {
            return Err(format!("pullRequest.reviews[{i}].commit: expected a full commit id"));
        }
        if crate::rfc3339::parse(&r.submitted_at).is_none() {
            return Err(format!("pullRequest.reviews[{i}].submittedAt: not an RFC 3339 date-time"));
        }
        if r.kind.as_ref().is_some_and(|k| k.len() > 40 || !k.bytes().all(|b| b.is_ascii_alphabetic())) {
            return Err(format!("pullRequest.reviews[{i}].type: expected User, Bot or Organization"));
        }
    }
    Ok(())
}

/// What one `require` rule got from the approvals.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Counted {
    /// The distinct allowed people whose approval counts.
    pub(crate) approvers: Vec<String>,
    /// Reviewers whose approval does not count, with why.
    pub(crate) not_counted: Vec<(String, String)>,
}

/// Whether `login` is allowed by `from` (a login, or a member of a listed team per `teams`).
fn allowed(login: &str, from: &[String], teams: &BTreeMap<String, Vec<String>>) -> bool {
    from.iter().any(|who| {
        if who.contains('/') {
            teams
                .iter()
                .find(|(t, _)| t.eq_ignore_ascii_case(who))
                .is_some_and(|(_, members)| members.iter().any(|m| m.eq_ignore_ascii_case(login)))
        } else {
            who.eq_ignore_ascii_case(login)
        }
    })
}

/// The approvals that count for a rule allowing `from` (see the module's doc). Pure.
pub(crate) fn count_approvals(file: Option<&ApprovalsFile>, from: &[String]) -> Counted {
    let mut out = Counted::default();
    let Some((f, pr)) = file.and_then(|f| f.pull_request.as_ref().map(|p| (f, p))) else { return out };
    let mut reviews: Vec<&Review> = pr.reviews.iter().collect();
    // Ordered by time (ties: as listed); a person's latest decisive review wins.
    reviews.sort_by_key(|r| crate::rfc3339::parse(&r.submitted_at));
    let mut latest: BTreeMap<String, &Review> = BTreeMap::new();
    for r in reviews {
        if matches!(r.state, ReviewState::Commented | ReviewState::Pending) {
            continue;
        }
        latest.insert(r.login.to_ascii_lowercase(), r);
    }
    for r in latest.values() {
        let why = match r.state {
            ReviewState::Approved => None,
            ReviewState::ChangesRequested => Some("their latest review requests changes"),
            ReviewState::Dismissed => Some("their review was dismissed"),
            ReviewState::Commented | ReviewState::Pending => continue,
        };
        let bot = r.login.to_ascii_lowercase().ends_with("[bot]")
            || r.kind.as_deref().is_some_and(|k| k.eq_ignore_ascii_case("bot"));
        let why = why.or_else(|| {
            if r.login.eq_ignore_ascii_case(&pr.author) {
                Some("the author cannot approve their own change")
            } else if bot {
                Some("a bot")
            } else if !r.commit.eq_ignore_ascii_case(&pr.head_commit) {
                Some("approved an older commit, not the final head")
            } else if !allowed(&r.login, from, &f.teams) {
                Some("not among the allowed approvers")
            } else {
                None
            }
        });
        match why {
            None => out.approvers.push(r.login.clone()),
            Some(w) => out.not_counted.push((r.login.clone(), w.into())),
        }
    }
    out
}
