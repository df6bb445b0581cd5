//! `kore-notify validate [PATH…]`: every problem in config and manifests, exit 0 or 1.

use std::path::Path;

use crate::config::Config;
use crate::diag::{self, DiagFormat, Diagnostics};
use crate::error::Result;
use crate::exit::Exit;
use crate::load;
use crate::ops::{Global, config_path};

pub(crate) fn run(g: &Global, paths: &[String], json: bool) -> Result<Exit> {
    let mut diags = Diagnostics::default();
    // The config is optional when paths are given explicitly.
    let config = match config_path(g) {
        Ok(p) => Config::load(&p, g.env(), &mut diags)?,
        Err(e) if paths.is_empty() => return Err(e),
        Err(_) => None,
    };
    let (base, specs) = match (&config, paths.is_empty()) {
        (Some(c), true) => (c.dir.clone(), c.manifests.clone()),
        (_, false) => (Path::new(".").to_path_buf(), paths.to_vec()),
        (None, true) => (Path::new(".").to_path_buf(), vec![]),
    };
    // Without a config, the current directory is the repository root.
    let cwd_root;
    let (root, variables) = match &config {
        Some(c) => (&c.root, c.variables.as_slice()),
        None => {
            cwd_root = crate::files::Root::new(Path::new(".")).map_err(crate::error::Error::CurrentDir)?;
            (&cwd_root, &[][..])
        }
    };
    let confine = if paths.is_empty() { Some(root) } else { None };
    let files = load::find_files(confine, &base, &specs, &mut diags);
    let names = config.as_ref().map(Config::target_names);
    let windows = config.as_ref().map(Config::default_windows).unwrap_or_default();
    let src = load::Sources { root, variables, env: g.env(), targets: names.as_deref(), default_windows: &windows };
    let manifests = load::load_repo(files, src, &mut diags);
    // Keys retired by each target's state (a state that cannot be read is for plan and apply to
    // report).
    for t in config.iter().flat_map(|c| &c.targets) {
        if let Ok(l) = t.store(g.env(), g.clock).and_then(|s| Ok(s.load()?)) {
            crate::plan::check_retired(&manifests.notifications, &l.state, &mut diags);
        }
    }
    diags.sort();
    let format = if json { DiagFormat::Json } else { g.diag_format.clone() };
    if json {
        g.shell.out(diag::render(&diags, &format));
    } else {
        g.shell.err(diag::render(&diags, &format));
    }
    let recipients: usize = manifests.notifications.iter().map(|n| n.recipients.len()).sum();
    if diags.errors() > 0 {
        if !json {
            g.shell.errln(format!(
                "{} error(s), {} warning(s) in {} file(s)",
                diags.errors(),
                diags.warnings(),
                manifests.files.len()
            ));
        }
        return Ok(Exit::Error);
    }
    if !json && !g.quiet {
        g.shell.outln(format!(
            "valid: {} notification(s), {} recipient(s) in {} file(s){}",
            manifests.notifications.len(),
            recipients,
            manifests.files.len(),
            if diags.warnings() > 0 { format!(", {} warning(s)", diags.warnings()) } else { String::new() }
        ));
    }
    Ok(Exit::Ok)
}
