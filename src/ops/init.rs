//! `kore-notify init [DIR]`: a working repository in one command. It writes a config that takes
//! its credentials from the environment, a sample manifest for each API version, the JSON Schemas
//! (so the `yaml-language-server` modelines resolve inside the user's own repository), the GitHub
//! workflows, and `.gitignore` lines. Nothing is ever overwritten: if any file is already there,
//! nothing is written at all; an existing `.gitignore` only gets the missing lines appended.
//! Nothing is written through a symbolic link (a `notifications/` or `.github/` linked elsewhere
//! would put the files outside DIR), and it is all or nothing: a failure part way removes what was
//! written, and the config, written last, is never left behind alone.

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
    preflight(&dir, &files)?;
    let mut done = Written::default();
    if let Err(e) = write_all(&dir, &files, &mut done) {
        done.undo();
        return Err(Error::Refused(format!("{e}\n  init wrote nothing: what it had written is removed again")));
    }
    for p in &done.files {
        g.info(format!("created {}", p.display()));
    }
    if let Some((p, _)) = &done.gitignore {
        g.info(format!("updated {}", p.display()));
    }
    workflows_note(&dir);
    let cd = if dir == Path::new(".") { String::new() } else { format!("  cd {}\n", dir.display()) };
    println!(
        "A kore-notify repository is ready. Next:\n{cd}  kore-notify validate\n  kore-notify plan\nThe README's \"first hour\" section walks on to the emulator and a first apply."
    );
    Ok(Exit::Ok)
}

/// The directories under DIR that the files go in, parents first (`.github`, `.github/workflows`).
fn dirs_of(files: &[(&'static str, String)]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for (rel, _) in files {
        let mut ancestors: Vec<&Path> =
            Path::new(rel).ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()).collect();
        ancestors.reverse();
        for a in ancestors {
            if !out.iter().any(|d| d == a) {
                out.push(a.to_path_buf());
            }
        }
    }
    out
}

/// Everything that would make `init` write over something, or through a symbolic link (which
/// could lead anywhere outside DIR), is refused before anything is written: an existing file at
/// any path it writes, and a directory it writes into that is a symbolic link or not a directory.
/// A `.gitignore` must be a regular file.
fn preflight(dir: &Path, files: &[(&'static str, String)]) -> Result<()> {
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
    for rel in dirs_of(files) {
        real_dir_or_none(&dir.join(rel)).map_err(|e| Error::Refused(format!("{e}\n  init wrote nothing")))?;
    }
    gitignore_text(dir)?;
    Ok(())
}

/// `Ok(true)` for a real directory, `Ok(false)` when nothing is there; a symbolic link (to a
/// directory, a file or nothing) or any other file is refused.
fn real_dir_or_none(p: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::Refused(format!(
            "{} is a symbolic link: init never writes through one (it could lead outside the directory)\n  help: replace it by a directory, or run init elsewhere",
            p.display()
        ))),
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(Error::Refused(format!("{} is in the way: init needs a directory there", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(p, "inspect", e)),
    }
}

/// What `init` wrote so far, to remove again if a later step fails: all or nothing.
#[derive(Default)]
struct Written {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
    /// `.gitignore` and its content before (`None`: it did not exist).
    gitignore: Option<(PathBuf, Option<String>)>,
}

impl Written {
    fn undo(&self) {
        if let Some((p, before)) = &self.gitignore {
            let _ = match before {
                Some(text) => {
                    let mut o = std::fs::OpenOptions::new();
                    o.write(true).truncate(true);
                    crate::files::nofollow(&mut o, false);
                    o.open(p).and_then(|mut f| f.write_all(text.as_bytes()))
                }
                None => std::fs::remove_file(p),
            };
        }
        for f in self.files.iter().rev() {
            let _ = std::fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Creates DIR and its missing parents (the path the user named: links in it are followed).
fn make_target(dir: &Path, done: &mut Written) -> Result<()> {
    let mut missing: Vec<&Path> = dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).collect();
    missing.reverse();
    for p in missing {
        std::fs::create_dir(p).map_err(|e| Error::io(p, "create", e))?;
        done.dirs.push(p.to_path_buf());
    }
    Ok(())
}

/// Creates `p` inside DIR (its parent exists), never through a symbolic link.
fn make_dir(p: &Path, done: &mut Written) -> Result<()> {
    if real_dir_or_none(p)? {
        return Ok(());
    }
    match std::fs::create_dir(p) {
        Ok(()) => done.dirs.push(p.to_path_buf()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(p, "create", e)),
    }
    // Checked again after creating: nothing may have put a link there meanwhile.
    real_dir_or_none(p).map(|_| ())
}

/// Writes every file (the config last, so that an interrupted init leaves no config behind that
/// would make a rerun refuse) and the `.gitignore` lines; each file is created new, never through
/// a final symbolic link.
fn write_all(dir: &Path, files: &[(&'static str, String)], done: &mut Written) -> Result<()> {
    make_target(dir, done)?;
    let (config, rest): (Vec<_>, Vec<_>) = files.iter().partition(|(rel, _)| *rel == crate::config::FILE_NAME);
    let write = |rel: &str, content: &str, done: &mut Written| -> Result<()> {
        let path = dir.join(rel);
        for d in
            Path::new(rel).ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()).collect::<Vec<_>>().iter().rev()
        {
            make_dir(&dir.join(d), done)?;
        }
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        crate::files::nofollow(&mut o, false);
        let mut f = o.open(&path).map_err(|e| Error::io(&path, "create", e))?;
        done.files.push(path.clone());
        f.write_all(content.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| Error::io(&path, "write", e))
    };
    for (rel, content) in rest {
        write(rel, content, done)?;
    }
    gitignore(dir, done)?;
    for (rel, content) in config {
        write(rel, content, done)?;
    }
    Ok(())
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

fn gitignore(dir: &Path, done: &mut Written) -> Result<()> {
    let path = dir.join(".gitignore");
    let existed = std::fs::symlink_metadata(&path).is_ok();
    let existing = gitignore_text(dir)?;
    let missing: Vec<&str> = GITIGNORE.iter().copied().filter(|l| !existing.lines().any(|x| x.trim() == *l)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut o = std::fs::OpenOptions::new();
    o.append(true).create(true);
    crate::files::nofollow(&mut o, false);
    let mut f = o.open(&path).map_err(|e| Error::io(&path, "write", e))?;
    done.gitignore = Some((path.clone(), existed.then(|| existing.clone())));
    let sep = if existing.is_empty() || existing.ends_with('\n') { "" } else { "\n" };
    let text = format!("{sep}# kore-notify: the local state (CI keeps it on a state branch)\n{}\n", missing.join("\n"));
    f.write_all(text.as_bytes()).map_err(|e| Error::io(&path, "write", e))?;
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
