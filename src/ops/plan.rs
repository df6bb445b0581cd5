//! `kore-notify plan`: who would receive what. Reads no credentials and opens no connection.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::ops::{Global, load_workspace_with};
use crate::plan::{self, PlanSet, check_retry};
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
    let names = config.target_names();
    let windows = config.default_windows();
    let src = crate::load::Sources {
        root: &config.root,
        variables: &config.variables,
        env: g.env(),
        targets: Some(&names),
        default_windows: &windows,
    };
    let manifests = crate::load::load_repo(files, src, &mut diags);
    Some((manifests.notifications, config.policy))
}

/// A plan file: text, within its size, exactly as `plan --out` wrote it, its digest checked
/// ([`plan::read_file`]).
pub(crate) fn read_plan_file(path: &Path) -> Result<PlanSet> {
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
    // Every covered target's state is read while the manifests load.
    let (ws, loaded) = load_workspace_with(g, &[], |c| -> Result<Vec<(String, state::Loaded)>> {
        let mut out = Vec::new();
        for t in c.select(g.target.as_deref())? {
            out.push((t.name.clone(), t.store(g.env(), g.clock)?.load()?));
        }
        Ok(out)
    })?;
    let loaded = loaded?;
    let targets = ws.config.select(g.target.as_deref())?;
    if targets.len() > 1 && (opts.retry.unknown != plan::Select::Nothing || opts.retry.failed != plan::Select::Nothing)
    {
        return Err(Error::Refused(
            "--retry-unknown and --retry-failed apply to one target's requests: choose it with --target NAME".into(),
        ));
    }
    let base = opts.compare_to.as_ref().map(|dir| (dir, base_notifications(g, dir)));
    if let Some((dir, None)) = &base {
        g.info(format!(
            "note: --compare-to {}: no kore-notify config that loads there; changes are shown without before → after",
            dir.display()
        ));
    }
    let mut plans = Vec::new();
    for (t, (_, l)) in targets.iter().zip(&loaded) {
        crate::ops::check_retired(g, &ws, &l.state)?;
        check_retry(&l.state, &opts.retry)?;
        let part = crate::ops::scoped(&ws, t);
        let source = crate::ops::promotion_state(g, &ws.config, t, &loaded)?;
        let promotion = match (&t.promotion, &source) {
            (Some(p), Some(s)) => {
                Some(plan::PromotionSources { from: &p.from, level: p.level, state: s.state(), skip: &[] })
            }
            _ => None,
        };
        let ledger = crate::ops::test_send::ledger(g, t);
        let inputs = plan::TargetInputs {
            config: &ws.config,
            target: t,
            notifications: &part.notifications,
            audience: &part.audience,
            loaded: l,
            promotion: promotion.as_ref(),
            retry: &opts.retry,
            test_ledger: ledger.as_ref(),
            clock: Some(g.clock),
        };
        let mut p = plan::for_target(&inputs, g.now);
        if let Some((_, Some((base, _)))) = &base {
            plan::annotate_changes(&mut p, &part.notifications, base);
        }
        plans.push(p);
    }
    let mut set = PlanSet::new(plans);
    if let Some((_, Some((_, policy)))) = &base {
        set.policy_change = crate::policy::policy_change(policy, &ws.config.policy);
    }
    // A plan written as JSON (a file, or stdout) is sealed; a text or markdown one needs no digest.
    if let Some(out) = &opts.out {
        let bytes = set.sealed_file().map_err(|source| Error::Encode { what: "plan", source })?;
        crate::files::write_atomic(out, &bytes)?;
        g.info(format!("plan saved to {}; apply exactly it with `kore-notify apply {}`", out.display(), out.display()));
    }
    if opts.out.is_none() && opts.format == Format::Json {
        set.seal();
    }
    let review = render::Review {
        warnings: ws.warnings.clone(),
        mask: ws.config.review_mask,
        path_prefix: ws.config.dir_in_work_tree(),
        ..opts.review.clone()
    };
    let text = render::document(&set, opts.format, g.color, g.verbose, &review);
    let text = if opts.format == Format::Json { text } else { crate::safe::for_output(&text).into_owned() };
    g.shell.out(text);
    let over = set.targets.iter().find_map(|p| review.over_limit(p).map(|o| (p.name.clone(), o)));
    let too_late = set.targets.iter().find_map(|p| crate::ops::too_late(p, g.now));
    let changes = opts.detailed_exitcode && set.needs_action();
    let denied = denied(&set);
    // The command is over and the process ends next: freeing a million recipients one by one
    // would only add a tenth of a second (on one core) to a large plan.
    std::mem::forget((ws, loaded, set));
    if let Some(e) = too_late {
        return Err(e);
    }
    if !denied.is_empty() {
        return Err(Error::Refused(format!("the policy denies this plan:\n  {}", denied.join("\n  "))));
    }
    if let Some((name, (n, max))) = over {
        return Err(Error::Refused(format!(
            "this plan would message {n} recipients on target `{name}`, more than --max-recipients {max}: apply would refuse it; reduce the audience or raise the limit"
        )));
    }
    Ok(if changes { Exit::Changes } else { Exit::Ok })
}

/// What the policy denies in every target's plan (`target NAME: ` before each line when the plan
/// covers several targets): the plan fails after it is shown.
fn denied(set: &PlanSet) -> Vec<String> {
    let several = set.targets.len() > 1;
    let mut out = Vec::new();
    for p in &set.targets {
        let lines = crate::policy::Gate::judge(p, &crate::policy::GateInput::default()).denied;
        let name = crate::safe::line(&p.name);
        out.extend(lines.into_iter().map(|l| if several { format!("target `{name}`: {l}") } else { l }));
    }
    out
}
