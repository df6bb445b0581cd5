//! `kore-notify plan`: who would receive what. Reads no credentials and opens no connection.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::ops::{Global, load_workspace_with};
use crate::plan::{self, Plan, check_retry};
use crate::render;
use crate::state;

/// The option types of this command, defined with what they configure.
pub(crate) use crate::plan::Retry;
pub(crate) use crate::render::Format;

pub(crate) struct Options {
    pub(crate) format: Format,
    pub(crate) out: Option<PathBuf>,
    pub(crate) detailed_exitcode: bool,
    pub(crate) retry: Retry,
    /// For the pull-request comment: commit, run link and the recipient limit.
    pub(crate) review: render::Review,
    /// A directory holding the base version's `kore-notify.yaml` (a checkout of the target
    /// branch): recipients who get a second message are shown with what changed for them.
    pub(crate) compare_to: Option<PathBuf>,
}

/// The notifications and the policy of the base version at `dir`, quietly: a base that does not
/// load just means no before → after in the plan (a note says so).
fn base_notifications(g: &Global, dir: &Path) -> Option<(Vec<crate::manifest::Notification>, crate::policy::Policy)> {
    let cfg = crate::config::Config::discover(dir).ok().filter(|c| c.parent() == Some(dir))?;
    let mut diags = crate::diag::Diagnostics::default();
    let config = crate::config::Config::load(&cfg, g.env(), &mut diags).ok().flatten()?;
    let files = crate::load::find_files(Some(&config.root), &config.dir, &config.manifests, &mut diags);
    let src = crate::load::Sources { root: &config.root, variables: &config.variables, env: g.env() };
    let manifests = crate::load::load_repo(files, src, &mut diags);
    Some((manifests.notifications, config.policy))
}

/// A plan file: text, within its size, exactly as `plan --out` wrote it, its digest checked
/// ([`plan::read_file`]).
pub(crate) fn read_plan_file(path: &Path) -> Result<Plan> {
    plan::read_file(path)
}

/// `kore-notify show PLANFILE`: a saved plan, rendered as it was made, once its digest is checked.
pub(crate) fn show(g: &Global, path: &Path, format: Format) -> Result<Exit> {
    let plan = read_plan_file(path)?;
    let text = render::document(&plan, format, g.color, g.verbose, &render::Review::default());
    let text = if format == Format::Json { text } else { crate::safe::for_output(&text).into_owned() };
    g.shell.out(text);
    Ok(Exit::Ok)
}

pub(crate) fn run(g: &Global, opts: &Options) -> Result<Exit> {
    let (ws, loaded) =
        load_workspace_with(g, &[], |c| state::store_for(c, g.env(), g.clock).and_then(|s| Ok(s.load()?)))?;
    let loaded = loaded?;
    crate::ops::check_retired(g, &ws, &loaded.state)?;
    check_retry(&loaded.state, &opts.retry)?;
    let mut plan = plan::for_config(&ws.config, &ws.manifests.notifications, &loaded, &opts.retry, g.now);
    if let Some(dir) = &opts.compare_to {
        match base_notifications(g, dir) {
            Some((base, policy)) => {
                plan::annotate_changes(&mut plan, &ws.manifests.notifications, &base);
                plan.policy_change = crate::policy::policy_change(&policy, &ws.config.policy);
            }
            None => g.info(format!(
                "note: --compare-to {}: no kore-notify config that loads there; changes are shown without before → after",
                dir.display()
            )),
        }
    }
    // A plan written as JSON (a file, or stdout) is sealed; a text or markdown one needs no digest.
    if let Some(out) = &opts.out {
        let bytes = plan.sealed_file().map_err(|source| Error::Encode { what: "plan", source })?;
        crate::files::write_atomic(out, &bytes)?;
        g.info(format!("plan saved to {}; apply exactly it with `kore-notify apply {}`", out.display(), out.display()));
    }
    if opts.out.is_none() && opts.format == Format::Json {
        plan.seal();
    }
    let review = render::Review {
        warnings: ws.warnings.clone(),
        mask: ws.config.review_mask,
        path_prefix: ws.config.dir_in_work_tree(),
        ..opts.review.clone()
    };
    let text = render::document(&plan, opts.format, g.color, g.verbose, &review);
    let text = if opts.format == Format::Json { text } else { crate::safe::for_output(&text).into_owned() };
    g.shell.out(text);
    let over = review.over_limit(&plan);
    let too_late = crate::ops::too_late(&plan, g.now);
    let changes = opts.detailed_exitcode && plan.summary.needs_action(&plan.notifications);
    let denied = crate::policy::Gate::judge(&plan, &crate::policy::GateInput::default()).denied;
    // The command is over and the process ends next: freeing a million recipients one by one
    // would only add a tenth of a second (on one core) to a large plan.
    std::mem::forget((ws, loaded, plan));
    if let Some(e) = too_late {
        return Err(e);
    }
    if !denied.is_empty() {
        return Err(Error::Refused(format!("the policy denies this plan:\n  {}", denied.join("\n  "))));
    }
    if let Some((n, max)) = over {
        return Err(Error::Refused(format!(
            "this plan would message {n} recipients, more than --max-recipients {max}: apply would refuse it; reduce the audience or raise the limit"
        )));
    }
    Ok(if changes { Exit::Changes } else { Exit::Ok })
}
