//! `kore-notify plan`: who would receive what. Reads no credentials and opens no connection.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, exit};
use crate::ops::{Global, Workspace, load_workspace_with};
use crate::plan::{self, Inputs, Plan, Select};
use crate::render;
use crate::state;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

pub struct Options {
    pub format: Format,
    pub out: Option<PathBuf>,
    pub detailed_exitcode: bool,
    pub retry: Retry,
    /// For the pull-request comment: commit, run link and the recipient limit.
    pub review: render::Review,
    /// A directory holding the base version's `kore-notify.yaml` (a checkout of the target
    /// branch): recipients who get a second message are shown with what changed for them.
    pub compare_to: Option<PathBuf>,
}

/// The notifications of the base version at `dir`, quietly: a base that does not load just means
/// no before → after in the plan (a note says so).
fn base_notifications(g: &Global, dir: &Path) -> Option<Vec<crate::manifest::Notification>> {
    let cfg = crate::config::Config::discover(dir).ok().filter(|c| c.parent() == Some(dir))?;
    let mut diags = crate::diag::Diagnostics::default();
    let config = crate::config::Config::load(&cfg, g.env(), &mut diags).ok().flatten()?;
    let files = crate::load::find_files(Some(&config.root), &config.dir, &config.manifests, &mut diags);
    let src = crate::load::Sources { root: &config.root, variables: &config.variables, env: g.env() };
    let repo = crate::load::load_repo(files, src, &mut diags);
    Some(repo.notifications)
}

/// What a plan sends again besides new and changed recipients.
#[derive(Clone, Debug, Default)]
pub struct Retry {
    /// `--retry-unknown[=KEY[#REQ]]`: requests with an unknown outcome.
    pub unknown: Select,
    /// `--retry-failed[=KEY]`: recipients whose delivery failed.
    pub failed: Select,
}

/// Refuses `--retry-unknown=KEY#REQ` / `--retry-failed=KEY` naming something that is not there:
/// a typo must not quietly retry nothing (or the user think it retried something).
pub fn check_retry(state: &state::State, retry: &Retry) -> Result<()> {
    if let Select::Some(list) = &retry.unknown {
        for (key, req) in list {
            let n = state.notifications.get(key).ok_or_else(|| {
                Error::Refused(format!("--retry-unknown={key}: no notification `{key}` in the state"))
            })?;
            let found = n.unknown_requests().any(|(i, _)| req.is_none_or(|r| r == i));
            if !found {
                let which = req.map(|r| format!("request #{r} of `{key}`")).unwrap_or_else(|| format!("`{key}`"));
                return Err(Error::Refused(format!(
                    "--retry-unknown: {which} has no unknown outcome; `kore-notify plan` lists the unknown requests"
                )));
            }
        }
    }
    if let Select::Some(list) = &retry.failed {
        for (key, req) in list {
            if req.is_some() {
                return Err(Error::Refused(format!(
                    "--retry-failed={key}#…: failed deliveries are retried per notification; write --retry-failed={key}"
                )));
            }
            if !state.notifications.contains_key(key) {
                return Err(Error::Refused(format!("--retry-failed={key}: no notification `{key}` in the state")));
            }
        }
    }
    Ok(())
}

/// Computes the plan for a loaded workspace and state.
pub fn compute(g: &Global, ws: &Workspace, loaded: &state::Loaded, retry: &Retry) -> Plan {
    let mut p = plan::compute(&Inputs {
        target: ws.config.target(),
        notifications: &ws.repo.notifications,
        state: &loaded.state,
        state_exists: loaded.exists,
        state_digest: &loaded.digest,
        now: g.now,
        retry_unknown: retry.unknown.clone(),
        retry_failed: retry.failed.clone(),
        retention: ws.config.retention,
    });
    if !ws.config.v2_template_as_custom_message {
        plan::mark_ambiguous_previews(&mut p, &ws.repo.notifications);
    }
    p
}

pub fn render(g: &Global, plan: &Plan, format: Format, review: &render::Review) -> String {
    match format {
        Format::Text => render::text(plan, g.color, g.verbose),
        Format::Json => serde_json::to_string_pretty(plan).unwrap_or_default() + "\n",
        Format::Markdown => render::markdown(plan, review),
    }
}

/// Writes a file atomically (temp file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io(&dir, "write in", e))?;
    tmp.write_all(bytes).and_then(|_| tmp.as_file().sync_all()).map_err(|e| Error::io(path, "write", e))?;
    tmp.persist(path).map_err(|e| Error::io(path, "write", e.error))?;
    Ok(())
}

/// Largest plan file read (`show`, `apply PLANFILE`): a plan of a million recipients is about
/// 150 MB.
pub const MAX_PLAN_BYTES: u64 = 256 * 1024 * 1024;

/// `kore-notify show PLANFILE`: a saved plan, rendered as it was made.
pub fn show(g: &Global, path: &Path, format: Format) -> Result<i32> {
    let bytes = crate::files::read_named(path, MAX_PLAN_BYTES)
        .map_err(|e| Error::StalePlan { path: path.to_path_buf(), message: format!("cannot read: {e}") })?;
    let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| Error::StalePlan {
        path: path.to_path_buf(),
        message: format!("not a kore-notify plan file (`kore-notify plan --out FILE` writes one): {e}"),
    })?;
    let text = render(g, &plan, format, &render::Review::default());
    let text = if format == Format::Json { text } else { crate::safe::for_output(&text).into_owned() };
    std::io::stdout().write_all(text.as_bytes()).map_err(|e| Error::Io(format!("cannot write output: {e}")))?;
    Ok(exit::OK)
}

pub fn run(g: &Global, opts: &Options) -> Result<i32> {
    let (ws, loaded) = load_workspace_with(g, &[], |c| state::store_for(c, g.env()).and_then(|s| s.load()))?;
    let loaded = loaded?;
    crate::ops::check_retired(g, &ws, &loaded.state)?;
    check_retry(&loaded.state, &opts.retry)?;
    let mut plan = compute(g, &ws, &loaded, &opts.retry);
    if let Some(dir) = &opts.compare_to {
        match base_notifications(g, dir) {
            Some(base) => plan::annotate_changes(&mut plan, &ws.repo.notifications, &base),
            None => g.info(format!(
                "note: --compare-to {}: no kore-notify config that loads there; changes are shown without before → after",
                dir.display()
            )),
        }
    }
    if let Some(out) = &opts.out {
        let bytes = serde_json::to_vec_pretty(&plan).map_err(|e| Error::Io(format!("cannot encode plan: {e}")))?;
        write_atomic(out, &bytes)?;
        g.info(format!("plan saved to {}; apply exactly it with `kore-notify apply {}`", out.display(), out.display()));
    }
    let review = render::Review { warnings: ws.warnings.clone(), ..opts.review.clone() };
    let text = render(g, &plan, opts.format, &review);
    let text = if opts.format == Format::Json { text } else { crate::safe::for_output(&text).into_owned() };
    std::io::stdout().write_all(text.as_bytes()).map_err(|e| Error::Io(format!("cannot write output: {e}")))?;
    if let Some((n, max)) = review.over_limit(&plan) {
        return Err(Error::Refused(format!(
            "this plan would message {n} recipients, more than --max-recipients {max}: apply would refuse it; reduce the audience or raise the limit"
        )));
    }
    if opts.detailed_exitcode && plan.summary.needs_action(&plan.notifications) {
        return Ok(exit::PENDING);
    }
    Ok(exit::OK)
}
