//! `kore-notify report`: the delivery report, from the state and the manifests (which name the
//! recipients). Reads no credentials and opens no connection: `status --refresh` records what
//! Kore.ai reports, this shows it. The report itself is `crate::report`; this op only loads,
//! builds and hands the document to `write` (a file with `--out`, standard output otherwise).

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::ops::{Global, load_workspace_with};
use crate::report;
use crate::state;

/// The report's format (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Html,
    Markdown,
    Csv,
    Json,
}

pub(crate) struct Options {
    pub(crate) keys: Vec<String>,
    pub(crate) format: Format,
    /// Write here instead of standard output.
    pub(crate) out: Option<PathBuf>,
    /// Mask identities and parameter values (CI artifacts and comments).
    pub(crate) mask: bool,
}

/// Where the document goes: the file of `--out`, or standard output.
pub(crate) enum Written<'a> {
    File(&'a std::path::Path),
    Stdout,
}

/// `kore-notify report`, writing through `write`. It covers one target (`--target`, or the only
/// one): that target's state, limits, and the notifications planned for it (with its audience
/// rule applied, so a `replaceWith` target's rows name the identities it really sent to).
pub(crate) fn run(g: &Global, opts: &Options, write: impl FnOnce(Written, String) -> Result<()>) -> Result<Exit> {
    const COMMAND: &str = "kore-notify report";
    // The state is read while the manifests load.
    let (ws, loaded) = load_workspace_with(g, &[], |c| -> Result<state::Loaded> {
        Ok(c.one(g.target.as_deref(), COMMAND)?.store(g.env(), g.clock)?.load()?)
    })?;
    let loaded = loaded?;
    let c = &ws.config;
    let t = c.one(g.target.as_deref(), COMMAND)?;
    let scoped = crate::ops::scoped(&ws, t);
    let mask = opts.mask || (opts.format == Format::Markdown && c.review_mask);
    let built = report::build(&report::Inputs {
        state: &loaded.state,
        manifests: &scoped.notifications,
        keys: &opts.keys,
        bot: t.identity(),
        target: (!t.implicit).then_some(t.name.as_str()),
        limits: (t.per_minute, t.per_hour),
        now: g.now,
        mask: mask.then(|| t.identity()),
    })
    .map_err(Error::Refused)?;
    let text = match opts.format {
        Format::Html => report::html(&built),
        Format::Markdown => report::markdown(&built),
        Format::Csv => report::csv(&built),
        // JSON escapes C0 controls itself; the rest of the unsafe characters are escaped too.
        Format::Json => {
            crate::safe::json(&(serde_json::to_string_pretty(&built).unwrap_or_default() + "\n")).into_owned()
        }
    };
    match &opts.out {
        Some(path) => {
            write(Written::File(path), text)?;
            g.info(format!("report written to {}", path.display()));
        }
        None => write(Written::Stdout, text)?,
    }
    Ok(Exit::Ok)
}

/// The usual `write`: the file atomically, or standard output (workflow commands neutralised
/// inside GitHub Actions).
pub(crate) fn write(g: &Global) -> impl FnOnce(Written, String) -> Result<()> + '_ {
    move |to, text| match to {
        Written::File(path) => Ok(crate::files::write_atomic(path, text.as_bytes())?),
        Written::Stdout => {
            g.shell.out(crate::safe::for_output(&text));
            Ok(())
        }
    }
}
