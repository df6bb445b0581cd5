//! `kore-notify validate [PATH…]`: every problem in config and manifests, exit 0 or 1.

use std::path::Path;

use crate::config::Config;
use crate::diag::{self, DiagFormat, Diagnostics};
use crate::error::{Result, exit};
use crate::load;
use crate::ops::{Global, config_path};

pub fn run(g: &Global, paths: &[String], json: bool) -> Result<i32> {
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
    let files = load::find_files(&base, &specs, &mut diags);
    let repo = load::load_repo(files, g.env(), g.now, &mut diags);
    diags.sort();
    let format = if json { DiagFormat::Json } else { g.diag_format };
    if json {
        print!("{}", diag::render(&diags, format));
    } else {
        eprint!("{}", diag::render(&diags, format));
    }
    let recipients: usize = repo.notifications.iter().map(|n| n.recipients.len()).sum();
    if diags.errors() > 0 {
        if !json {
            eprintln!("{} error(s), {} warning(s) in {} file(s)", diags.errors(), diags.warnings(), repo.files.len());
        }
        return Ok(exit::ERROR);
    }
    if !json && !g.quiet {
        println!(
            "valid: {} notification(s), {} recipient(s) in {} file(s){}",
            repo.notifications.len(),
            recipients,
            repo.files.len(),
            if diags.warnings() > 0 { format!(", {} warning(s)", diags.warnings()) } else { String::new() }
        );
    }
    Ok(exit::OK)
}
