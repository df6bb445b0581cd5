//! Confined, bounded file access. Every path that the config or a manifest names (manifest globs,
//! `valueFile`, `identitiesFrom`, the state file and its siblings) is untrusted: it must resolve,
//! after symlinks, inside the repository root; it must be a regular file (not a device, a FIFO or a
//! directory); and it is read with a byte limit enforced while reading, because the size in the
//! metadata is 0 for `/dev/zero` and a file can grow while it is read.
//!
//! Opening is done on the resolved path with `O_NOFOLLOW | O_NONBLOCK` and checked again on the
//! open descriptor, so a symlink swapped in after the check, or a FIFO, cannot make us read
//! something else or hang.
//!
//! Errors ([`FileError`]) name no content and no resolved path: callers show the path as the user
//! wrote it.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

#[derive(Debug)]
pub enum FileError {
    NotFound,
    /// Resolves (after symlinks) outside the repository root.
    Outside,
    /// Not a regular file: a directory, a device, a FIFO or a socket.
    NotRegular(&'static str),
    /// Larger than the limit (bytes).
    TooLarge(u64),
    /// A symbolic link where none is allowed (state, journal, lock).
    Symlink,
    /// Inside a hidden file or directory of the repository (`.git`, `.env`, …), which can hold
    /// credentials: never content for a message.
    Hidden,
    Io(std::io::Error),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::NotFound => f.write_str("no such file"),
            FileError::Outside => f.write_str("it is outside the repository (after following symlinks)"),
            FileError::NotRegular(kind) => write!(f, "it is {kind}, not a regular file"),
            FileError::TooLarge(cap) => write!(f, "it is larger than the limit of {cap} bytes"),
            FileError::Symlink => f.write_str("it is a symbolic link, which is refused here"),
            FileError::Hidden => {
                f.write_str("it is inside a hidden file or directory (such as .git or .env), which is never read")
            }
            FileError::Io(e) => write!(f, "{}", crate::safe::line(&e.to_string())),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl FileError {
    fn from_io(e: std::io::Error) -> FileError {
        match e.kind() {
            std::io::ErrorKind::NotFound => FileError::NotFound,
            _ if is_symlink_loop(&e) => FileError::Symlink,
            _ => FileError::Io(e),
        }
    }

    /// What a user can do about it.
    pub(crate) fn help(&self) -> &'static str {
        match self {
            FileError::Outside => {
                "keep every file the config and manifests name inside the repository (the directory of kore-notify.yaml, or its `root:`)"
            }
            FileError::NotRegular(_) | FileError::Symlink => "point to a regular file inside the repository",
            FileError::Hidden => "keep messages, audiences and manifests outside hidden directories",
            FileError::TooLarge(_) => "split it into smaller files",
            FileError::NotFound => "fix the path; it is relative to the file that names it",
            FileError::Io(_) => "check the file's permissions",
        }
    }
}

/// Whether an error is "too many levels of symbolic links" (ELOOP), portably.
pub(crate) fn is_symlink_loop(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() { "a directory" } else { "not a regular file" }
}

/// The repository root: every file the config or a manifest names must resolve inside it.
#[derive(Clone, Debug)]
pub struct Root {
    canonical: PathBuf,
}

impl Root {
    pub fn new(dir: &Path) -> Result<Root, FileError> {
        let canonical = std::fs::canonicalize(dir).map_err(FileError::from_io)?;
        if !canonical.is_dir() {
            return Err(FileError::NotRegular("not a directory"));
        }
        Ok(Root { canonical })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.canonical
    }

    /// The canonical path of an existing file or directory, refused when it is outside the root.
    pub(crate) fn confine(&self, path: &Path) -> Result<PathBuf, FileError> {
        let c = std::fs::canonicalize(path).map_err(FileError::from_io)?;
        if c.starts_with(&self.canonical) { Ok(c) } else { Err(FileError::Outside) }
    }

    /// Like [`Root::confine`] for a path that may not exist yet (the state file): its nearest
    /// existing ancestor is resolved, the rest must hold no `..`.
    pub(crate) fn confine_new(&self, path: &Path) -> Result<PathBuf, FileError> {
        let mut existing = path.to_path_buf();
        let mut rest = Vec::new();
        while std::fs::symlink_metadata(&existing).is_err() {
            match (existing.file_name(), existing.parent()) {
                (Some(name), Some(parent)) => {
                    rest.push(name.to_owned());
                    existing = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent.to_path_buf() };
                }
                _ => return Err(FileError::NotFound),
            }
        }
        let mut c = self.confine(&existing)?;
        for part in rest.iter().rev() {
            if Path::new(part).components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(FileError::Outside);
            }
            c.push(part);
        }
        Ok(c)
    }

    /// Like [`Root::confine`], also refusing anything inside a hidden file or directory of the
    /// repository (`.git/config` holds CI tokens, `.env` secrets): content for messages and
    /// manifests never comes from there.
    pub(crate) fn confine_visible(&self, path: &Path) -> Result<PathBuf, FileError> {
        let c = self.confine(path)?;
        let rel = c.strip_prefix(&self.canonical).map_err(|_| FileError::Outside)?;
        if rel.components().any(|p| p.as_os_str().to_string_lossy().starts_with('.')) {
            return Err(FileError::Hidden);
        }
        Ok(c)
    }

    /// Reads a regular file inside the root and outside hidden directories, at most `cap` bytes.
    pub(crate) fn read(&self, path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
        let c = self.confine_visible(path)?;
        read_regular(&c, cap)
    }
}

/// Reads a file the user named (a config, a plan file, a manifest given on the command line):
/// symlinks along the way are followed (the user chose the path), but it must be a regular file
/// and it is read with a limit, like every other input.
pub(crate) fn read_named(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    let c = std::fs::canonicalize(path).map_err(FileError::from_io)?;
    read_regular(&c, cap)
}

/// Opens an existing file for reading without following a final symlink and without blocking on
/// a FIFO, and checks that what was opened is a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<File, FileError> {
    let mut o = OpenOptions::new();
    o.read(true);
    nofollow(&mut o, true);
    let f = o.open(path).map_err(FileError::from_io)?;
    let meta = f.metadata().map_err(FileError::Io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(kind_of(meta.file_type())));
    }
    Ok(f)
}

/// Reads a regular file (no final symlink), failing once more than `cap` bytes arrive.
pub(crate) fn read_regular(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    let f = open_regular(path)?;
    read_capped(f, cap)
}

/// Reads at most `cap` bytes; more is an error (the limit is enforced while reading).
pub(crate) fn read_capped(r: impl Read, cap: u64) -> Result<Vec<u8>, FileError> {
    let mut buf = Vec::new();
    r.take(cap.saturating_add(1)).read_to_end(&mut buf).map_err(FileError::Io)?;
    if buf.len() as u64 > cap {
        return Err(FileError::TooLarge(cap));
    }
    Ok(buf)
}

/// Adds `O_NOFOLLOW` (and `O_NONBLOCK` for reads, so a FIFO cannot hang the open) on Unix.
pub(crate) fn nofollow(o: &mut OpenOptions, nonblocking: bool) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | if nonblocking { libc::O_NONBLOCK } else { 0 });
    }
    #[cfg(not(unix))]
    {
        let _ = (o, nonblocking);
    }
}

/// An atomic write that failed: what was being done (`write in` the directory, `write` the file)
/// to which path (as shown to the user).
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct WriteError {
    pub(crate) path: PathBuf,
    pub(crate) action: &'static str,
    pub(crate) source: std::io::Error,
}

impl WriteError {
    fn new(path: &Path, action: &'static str, source: std::io::Error) -> WriteError {
        WriteError { path: display_path(path), action, source }
    }
}

/// The directory a file is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The one atomic write: `bytes` into a temporary file in `dir` named `prefix` and six random
/// characters, fsynced, then renamed over `path` (in `dir`). Readers see the old file or the new
/// one, never a part. The rename replaces whatever `path` is, a symlink included, and never
/// writes through it; callers that must refuse a symlink check it when they read the old file.
/// The directory is not synced here: callers that need the rename itself durable (the state)
/// call [`sync_dir`] after it.
pub(crate) fn write_atomic_in(dir: &Path, prefix: &str, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    use std::io::Write;
    let mut tmp =
        tempfile::Builder::new().prefix(prefix).tempfile_in(dir).map_err(|e| WriteError::new(dir, "write in", e))?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).map_err(|e| WriteError::new(path, "write", e))?;
    tmp.persist(path).map_err(|e| WriteError::new(path, "write", e.error))?;
    Ok(())
}

/// Writes a file the user named atomically (`plan --out`), with [`write_atomic_in`] in its
/// directory (temporary file `.tmpXXXXXX`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic_in(&parent_dir(path), ".tmp", path, bytes)
}

/// Removes the temporary files `prefix`* in `dir` that a run killed mid-write left (best effort).
/// Only for a caller holding a lock that makes sure none of them is in use.
pub(crate) fn sweep_temps(dir: &Path, prefix: &str) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// fsync of a directory, which makes a rename in it durable; not supported everywhere, so best
/// effort.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Shows a path relative to the current directory when it is below it (GitHub annotations and
/// terminals both want repository-relative paths).
pub(crate) fn display_path(p: &Path) -> PathBuf {
    let cwd = std::env::current_dir().ok();
    let rel = cwd.as_deref().and_then(|c| p.strip_prefix(c).ok()).unwrap_or(p);
    let rel = rel.strip_prefix(".").unwrap_or(rel);
    // `notifications/../audiences/a.csv` → `audiences/a.csv`: shorter, and what GitHub needs to
    // put an annotation on the right file. Lexical, for display only.
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            std::path::Component::ParentDir
                if matches!(out.components().next_back(), Some(std::path::Component::Normal(_))) =>
            {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confinement_and_limits() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("sub")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(repo.join("sub/a.txt"), "12345").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("secret.txt"), "x").unwrap_or_else(|e| panic!("{e}"));
        let root = Root::new(&repo).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(root.read(&repo.join("sub/a.txt"), 5).ok(), Some(b"12345".to_vec()));
        assert!(matches!(root.read(&repo.join("sub/a.txt"), 4), Err(FileError::TooLarge(4))));
        assert!(matches!(root.read(&repo.join("../secret.txt"), 9), Err(FileError::Outside)));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), repo.join("link"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(root.read(&repo.join("link"), 9), Err(FileError::Outside)));
            std::os::unix::fs::symlink("/dev/zero", repo.join("zero")).unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(root.read(&repo.join("zero"), 9), Err(FileError::Outside)));
            assert!(matches!(read_regular(Path::new("/dev/zero"), 9), Err(FileError::NotRegular("a device"))));
            assert!(matches!(read_regular(&repo.join("link"), 9), Err(FileError::Symlink)));
        }
        assert!(root.confine_new(&repo.join("new/dir/state.json")).is_ok());
        assert!(matches!(root.confine_new(&repo.join("../state.json")), Err(FileError::Outside)));
        assert!(matches!(root.read(&repo.join("sub"), 9), Err(FileError::NotRegular("a directory"))));
        std::fs::create_dir_all(repo.join(".git")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(repo.join(".git/config"), "token").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(repo.join(".env"), "SECRET=1").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(root.read(&repo.join("sub/../.git/config"), 99), Err(FileError::Hidden)));
        assert!(matches!(root.read(&repo.join(".env"), 99), Err(FileError::Hidden)));
    }
}
