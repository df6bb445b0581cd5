//! `kore-notify init [DIR]`: a working repository in one command. It writes a config that takes
//! its credentials from the environment, a sample manifest for each API version, the JSON Schemas
//! (so the `yaml-language-server` modelines resolve inside the user's own repository), the GitHub
//! workflows, and `.gitignore` lines. Nothing is ever overwritten: if any file is already there,
//! nothing is written at all; an existing `.gitignore` only gets the missing lines appended.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::ops::Global;

const GITIGNORE: &[&str] = &[".kore-notify/"];

/// Every file `init` writes, relative to the directory, with its content.
fn files() -> Vec<(&'static str, String)> {
    vec![
        ("kore-notify.yaml", include_str!("templates/kore-notify.yaml").to_string()),
        ("notifications/welcome-teams.yaml", include_str!("templates/welcome-teams.yaml").to_string()),
        ("notifications/welcome-ivr.yaml", include_str!("templates/welcome-ivr.yaml").to_string()),
        ("schemas/manifest.schema.json", crate::schema::schema(crate::schema::SchemaName::Manifest)),
        ("schemas/config.schema.json", crate::schema::schema(crate::schema::SchemaName::Config)),
        (
            ".github/workflows/notifications.yml",
            include_str!("../../examples/.github/workflows/notifications.yml").to_string(),
        ),
        (
            ".github/workflows/notifications-comment.yml",
            include_str!("../../examples/.github/workflows/notifications-comment.yml").to_string(),
        ),
    ]
}

pub(crate) fn run(g: &Global, dir: Option<&Path>) -> Result<Exit> {
    let dir = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let files = files();
    let taken: Vec<String> = files
        .iter()
        .map(|(rel, _)| *rel)
        .chain([crate::config::ALT_FILE_NAME])
        .filter(|rel| std::fs::symlink_metadata(dir.join(rel)).is_ok())
        .map(|rel| dir.join(rel).display().to_string())
        .collect();
    if !taken.is_empty() {
        return Err(Error::Refused(format!(
            "init writes nothing over existing files, and these exist: {}\n  help: run it in an empty directory, or move them away",
            taken.join(", ")
        )));
    }
    // `.gitignore` is checked first: a refusal there must not leave a half-written repository.
    gitignore_text(&dir)?;
    for (rel, content) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "create", e))?;
        f.write_all(content.as_bytes()).map_err(|e| Error::io(&path, "write", e))?;
        g.info(format!("created {}", path.display()));
    }
    gitignore(g, &dir)?;
    workflows_note(&dir);
    let cd = if dir == Path::new(".") { String::new() } else { format!("  cd {}\n", dir.display()) };
    println!(
        "A kore-notify repository is ready. Next:\n{cd}  kore-notify validate\n  kore-notify plan\nThe README's \"first hour\" section walks on to the emulator and a first apply."
    );
    Ok(Exit::Ok)
}

/// Appends the lines kore-notify needs to `.gitignore` (created if missing), keeping what is there.
/// The current `.gitignore` (empty when there is none); refused when it is not a regular file.
fn gitignore_text(dir: &Path) -> Result<String> {
    let path = dir.join(".gitignore");
    match crate::files::read_regular(&path, 1024 * 1024) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(crate::files::FileError::NotFound) => Ok(String::new()),
        Err(e) => Err(Error::Refused(format!("{}: {e}; init wrote nothing", path.display()))),
    }
}

fn gitignore(g: &Global, dir: &Path) -> Result<()> {
    let path = dir.join(".gitignore");
    let existing = gitignore_text(dir)?;
    let missing: Vec<&str> = GITIGNORE.iter().copied().filter(|l| !existing.lines().any(|x| x.trim() == *l)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut f =
        std::fs::OpenOptions::new().append(true).create(true).open(&path).map_err(|e| Error::io(&path, "write", e))?;
    let sep = if existing.is_empty() || existing.ends_with('\n') { "" } else { "\n" };
    let text = format!("{sep}# kore-notify: the local state (CI keeps it on a state branch)\n{}\n", missing.join("\n"));
    f.write_all(text.as_bytes()).map_err(|e| Error::io(&path, "write", e))?;
    g.info(format!("updated {}", path.display()));
    Ok(())
}

/// GitHub runs workflows only from the repository root: when DIR is inside a repository, say where
/// they belong and which `working-directory` to give them.
fn workflows_note(dir: &Path) {
    let Ok(abs) = std::fs::canonicalize(dir) else { return };
    let Some(root) = abs.ancestors().skip(1).find(|a| a.join(".git").exists()) else { return };
    if let Ok(rel) = abs.strip_prefix(root) {
        eprintln!(
            "note: {} is inside the git repository at {}: move .github/workflows/ there, and give the workflow `working-directory: {}`",
            dir.display(),
            root.display(),
            rel.display()
        );
    }
}
