//! Operations, one per command. They know nothing of clap: the CLI (and tests, or other front ends)
//! call them with plain option structs. Each returns the process exit code.

pub(crate) mod apply;
pub(crate) mod init;
pub(crate) mod plan;
pub(crate) mod report;
pub(crate) mod resume;
pub(crate) mod state_cmd;
pub(crate) mod status;
pub(crate) mod test_send;
pub(crate) mod validate;
pub(crate) mod waves;

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::diag::{self, DiagFormat, Diagnostics};
use crate::error::{Error, Result};
use crate::interp::Env;
use crate::load::{self, LoadedManifests};

/// Settings every command shares, resolved once by the CLI (the only reader of the environment,
/// the terminal and the clock).
#[derive(Clone)]
pub(crate) struct Global {
    pub(crate) config: Option<PathBuf>,
    /// `--target` / `KORE_NOTIFY_TARGET`: the target to work on (`None`: every target, or the
    /// only one).
    pub(crate) target: Option<String>,
    pub(crate) color: bool,
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
    /// The plan's "now": one reading of `clock` at start-up, or `KORE_NOTIFY_NOW` (for
    /// reproducible plans).
    pub(crate) now: time::OffsetDateTime,
    /// When `now` was read: `now` plus the time since is the run's current time (delivery
    /// windows are checked again against it as each batch leaves).
    pub(crate) started: std::time::Instant,
    /// The wall clock (journal and lock timestamps, tokens).
    pub(crate) clock: crate::clock::Clock,
    /// How diagnostics are printed.
    pub(crate) diag_format: DiagFormat,
    /// Where `${VAR}` and the credentials are looked up (the process environment).
    pub(crate) env: &'static dyn Env,
    /// The command line, recorded with the state lock's holder.
    pub(crate) command: String,
    /// Where every line for people and scripts goes.
    pub(crate) shell: crate::shell::Shell,
    /// `--events`: where recorded changes also go, as JSON lines.
    pub(crate) events: Option<std::sync::Arc<crate::events::Events>>,
}

/// The refusal of a plan with a notification that cannot finish before its `notAfter` at the
/// configured limits (the forecast says when its last request could leave).
pub(crate) fn too_late(plan: &crate::plan::Plan, now: time::OffsetDateTime) -> Option<Error> {
    let f = plan.forecast.as_ref()?;
    let late = f.too_late(now);
    let (key, leaves) = late.first()?;
    let not_after =
        f.notifications.iter().find(|l| &l.key == key).and_then(|l| l.not_after.clone()).unwrap_or_default();
    Some(Error::Refused(format!(
        "`{}` cannot be sent before its notAfter {not_after}: at {}/min and {}/h its last request could leave at {} at the earliest{}; raise rateLimits, send fewer recipients or fewer other notifications first, or move notAfter",
        crate::safe::line(key),
        f.per_minute,
        f.per_hour,
        crate::rfc3339::to_second(*leaves),
        if late.len() > 1 {
            format!(" ({} more notifications are too late as well)", late.len() - 1)
        } else {
            String::new()
        }
    )))
}

impl Global {
    pub(crate) fn env(&self) -> &'static dyn Env {
        self.env
    }

    /// A writer's session on `store`, its entries also sent to `--events` when given.
    pub(crate) fn open(
        &self,
        store: &dyn crate::state::StateStore,
        command: &str,
    ) -> Result<Box<dyn crate::state::Session>> {
        let session = store.open(command)?;
        Ok(match &self.events {
            Some(events) => events.wrap(session),
            None => session,
        })
    }

    /// The closing `--events` line.
    pub(crate) fn events_summary(&self, counts: &[(&'static str, usize)], exit: &Result<crate::exit::Exit>) {
        if let Some(events) = &self.events {
            let counts: std::collections::BTreeMap<&'static str, usize> = counts.iter().copied().collect();
            let code = match exit {
                Ok(e) => e.code(),
                Err(_) => 1,
            };
            events.summary(&counts, code);
        }
    }

    pub(crate) fn info(&self, msg: impl AsRef<str>) {
        self.shell.info(msg);
    }
}

/// Config plus validated manifests.
pub(crate) struct Workspace {
    pub(crate) config: Config,
    pub(crate) manifests: LoadedManifests,
    /// Validation warnings (`file:line: field: message`), already printed; the pull-request
    /// comment lists them too.
    pub(crate) warnings: Vec<String>,
}

pub(crate) fn config_path(g: &Global) -> Result<PathBuf> {
    match &g.config {
        Some(p) if p.is_file() => Ok(p.clone()),
        Some(p) => Err(Error::Config { path: p.clone(), message: "no such file".into() }),
        None => {
            let cwd = std::env::current_dir().map_err(Error::system("read the current directory"))?;
            Config::discover(&cwd)
        }
    }
}

/// Prints diagnostics to stderr in the chosen format.
pub(crate) fn report(g: &Global, diags: &mut Diagnostics) {
    if diags.items.is_empty() {
        return;
    }
    diags.sort();
    g.shell.err(diag::render(diags, &g.diag_format));
}

/// Loads the config and manifests; any error is reported and stops the command.
pub(crate) fn load_workspace(g: &Global, paths: &[String]) -> Result<Workspace> {
    load_workspace_with(g, paths, |_| ()).map(|(ws, ())| ws)
}

/// Like [`load_workspace`], running `side` (given the config) on another thread meanwhile: plan
/// reads the state while the manifests load.
pub(crate) fn load_workspace_with<T: Send>(
    g: &Global,
    paths: &[String],
    side: impl FnOnce(&Config) -> T + Send,
) -> Result<(Workspace, T)> {
    let cfg_path = config_path(g)?;
    let mut diags = Diagnostics::default();
    let config = Config::load(&cfg_path, g.env(), &mut diags)?;
    let Some(config) = config else {
        report(g, &mut diags);
        return Err(Error::Invalid(diags.errors()));
    };
    let specs = if paths.is_empty() { config.manifests.clone() } else { paths.to_vec() };
    let base: &Path = if paths.is_empty() { &config.dir } else { Path::new(".") };
    let (manifests, extra) = std::thread::scope(|s| {
        let handle = s.spawn(|| side(&config));
        let root = if paths.is_empty() { Some(&config.root) } else { None };
        let files = load::find_files(root, base, &specs, &mut diags);
        let names = config.target_names();
        let windows = config.default_windows();
        let src = load::Sources {
            root: &config.root,
            variables: &config.variables,
            env: g.env(),
            targets: Some(&names),
            default_windows: &windows,
        };
        let manifests = load::load_repo(files, src, &mut diags);
        (manifests, handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    report(g, &mut diags);
    if diags.errors() > 0 {
        return Err(Error::Invalid(diags.errors()));
    }
    let warnings = diags.items.iter().map(diag::Diagnostic::one_line).collect();
    Ok((Workspace { config, manifests, warnings }, extra))
}

/// One target's share of a workspace: the manifests that name it, with its audience rule applied,
/// and what the rule did to each.
pub(crate) struct Scoped<'a> {
    pub(crate) notifications: std::borrow::Cow<'a, [crate::manifest::Notification]>,
    pub(crate) audience: std::collections::BTreeMap<String, crate::plan::AudienceNote>,
}

pub(crate) fn scoped<'a>(ws: &'a Workspace, t: &crate::config::Target) -> Scoped<'a> {
    let (notifications, audience) = crate::plan::audience_for_target(t, &ws.manifests.notifications);
    Scoped { notifications, audience }
}

/// The state a promotion gate reads: one this command loaded already, or its own read.
pub(crate) enum SourceState<'a> {
    Have(&'a crate::state::Loaded),
    Read(crate::state::Loaded),
}

impl SourceState<'_> {
    pub(crate) fn state(&self) -> &crate::state::State {
        match self {
            SourceState::Have(l) => &l.state,
            SourceState::Read(l) => &l.state,
        }
    }
}

/// The state of the target `t` promotes from, read-only (no state yet: an empty one): taken from
/// `have` when it was loaded already.
pub(crate) fn promotion_state<'a>(
    g: &Global,
    config: &Config,
    t: &crate::config::Target,
    have: &'a [(String, crate::state::Loaded)],
) -> Result<Option<SourceState<'a>>> {
    let Some(p) = &t.promotion else { return Ok(None) };
    if let Some((_, l)) = have.iter().find(|(n, _)| *n == p.from) {
        return Ok(Some(SourceState::Have(l)));
    }
    let from = config.named(&p.from)?;
    let loaded = from.store(g.env(), g.clock)?.load().map_err(|e| {
        Error::Refused(format!("target `{}` promotes from `{}`, whose state cannot be read here: {e}", t.name, p.from))
    })?;
    Ok(Some(SourceState::Read(loaded)))
}

/// Refuses manifests that reuse a retired key (see [`crate::plan::check_retired`]), naming file and line.
pub(crate) fn check_retired(g: &Global, ws: &Workspace, state: &crate::state::State) -> Result<()> {
    let mut diags = Diagnostics::default();
    crate::plan::check_retired(&ws.manifests.notifications, state, &mut diags);
    if diags.errors() > 0 {
        report(g, &mut diags);
        return Err(Error::Invalid(diags.errors()));
    }
    Ok(())
}
