//! The policy's side of `apply`, a thin wrapper over the pure gate: the approvals file read and
//! bound to the commit being applied, who overrides and from which run (from the environment),
//! and the lines that tell what was held, approved or overridden.

use super::*;
use crate::interp::Env;

/// The commit being applied: the work tree's `HEAD` (in CI the tip that ci-apply.sh checked out),
/// else `GITHUB_SHA` outside a git work tree.
fn applied_commit(env: &dyn Env, dir: &std::path::Path) -> Option<String> {
    let hex = |s: &str| matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
    let head = std::process::Command::new("git")
        .arg("-C")
        .arg(if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir })
        .args(["rev-parse", "--verify", "-q", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout[..o.stdout.len().min(200)]).trim().to_ascii_lowercase());
    match head {
        Some(sha) => hex(&sha).then_some(sha),
        None => env.get("GITHUB_SHA").filter(|s| hex(s)).map(|s| s.to_ascii_lowercase()),
    }
}

/// `--approvals FILE`, read and checked, and bound to the commit being applied. Any problem
/// refuses the apply (nothing is sent).
pub(crate) fn load_approvals(
    path: &std::path::Path,
    env: &dyn Env,
    dir: &std::path::Path,
) -> Result<ApprovalsFile, String> {
    let shown = crate::safe::line(&path.display().to_string()).into_owned();
    let refuse = |why: String| {
        format!("--approvals {shown}: {why}; nothing was sent (the workflow's scripts/approvals.sh writes this file)")
    };
    let file = read_approvals(path).map_err(refuse)?;
    match applied_commit(env, dir) {
        Some(c) if c.eq_ignore_ascii_case(&file.commit) => Ok(file),
        Some(c) => Err(refuse(format!(
            "it holds the approvals of commit {}, but commit {c} is being applied",
            crate::safe::line(&file.commit)
        ))),
        None => Err(refuse(
            "cannot tell which commit is being applied (set GITHUB_SHA, or run inside the git work tree)".into(),
        )),
    }
}

/// Who overrides: `GITHUB_ACTOR` in a workflow, else the user.
pub(crate) fn actor(env: &dyn Env) -> String {
    let who = ["GITHUB_ACTOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| env.get(v).filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into());
    crate::safe::line(&who.chars().take(100).collect::<String>()).into_owned()
}

/// The CI run: `KORE_NOTIFY_RUN_URL`, else GitHub's run address from its variables.
pub(crate) fn run_url(env: &dyn Env) -> Option<String> {
    let given = env.get("KORE_NOTIFY_RUN_URL").filter(|u| !u.is_empty());
    let url = given.or_else(|| {
        let (server, repo, id) =
            (env.get("GITHUB_SERVER_URL")?, env.get("GITHUB_REPOSITORY")?, env.get("GITHUB_RUN_ID")?);
        Some(format!("{server}/{repo}/actions/runs/{id}"))
    })?;
    crate::args::run_url(&url).is_ok().then_some(url)
}

/// `--reason`: 1 to 500 printable characters.
pub(crate) fn check_reason(reason: &str) -> Result<(), String> {
    let n = reason.trim().chars().count();
    if n == 0 || n > 500 || reason.chars().any(char::is_control) {
        return Err("--reason: give 1 to 500 printable characters on one line saying why the gate is passed".into());
    }
    Ok(())
}

impl Gate {
    /// What the gate decided, for people (standard error): approvals met, notes of the approvals
    /// file, notifications held back.
    pub(crate) fn lines(&self, approvals: Option<&ApprovalsFile>) -> Vec<String> {
        let mut out = Vec::new();
        for note in approvals.map(|f| f.notes.as_slice()).unwrap_or_default() {
            out.push(format!("approvals: {note}"));
        }
        for (key, rule, who) in &self.approved {
            out.push(format!("`{key}`: policy rule `{rule}` approved by {}", who.join(", ")));
        }
        for (key, why) in &self.awaiting {
            out.push(format!("awaiting approval, not sent: `{key}`: {why}"));
        }
        out.into_iter().map(|l| crate::safe::line(&l).into_owned()).collect()
    }
}
