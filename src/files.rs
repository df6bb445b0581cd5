//! Confined, bounded file access. Every path that the config or a manifest names (manifest globs,
//! `valueFile`, `identitiesFrom`, the state file and its siblings) is untrusted: it must resolve,
//! after symlinks, inside the repository root; it must be a regular file (not a device, a FIFO or a
//! directory); and it is read with a byte limit enforced while reading, because the size in the
//! metadata is 0 for `/dev/zero` and a file can grow while it is read.
//!
//! A regular file's size is known before it is read: one larger than the limit is refused without
//! reading it, and the buffer is allocated once at that size (growing it by doubling would briefly
//! hold twice the file). Files that must be text are read in chunks and refused at the first chunk
//! that is not ([`crate::text`]), so a huge binary file costs one chunk, not its size.
//!
//! Opening is done on the resolved path with `O_NOFOLLOW | O_NONBLOCK` and checked again on the
//! open descriptor, so a symlink swapped in after the check, or a FIFO, cannot make us read
//! something else or hang.
//!
//! Errors ([`FileError`]) name no content and no resolved path: callers show the path as the user
//! wrote it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read};
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
    /// Not text (a NUL byte, or bytes that are not UTF-8) where text is required.
    NotText(crate::text::NotText),
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
            FileError::NotText(e) => write!(f, "it is not text: {e}"),
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
            FileError::NotText(_) => "save it as UTF-8 text",
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

    /// Opens a regular file inside the root and outside hidden directories for streaming, refused
    /// unread when larger than `cap` (the reader enforces `cap` too, as the file may grow).
    pub(crate) fn open(&self, path: &Path, cap: u64) -> Result<File, FileError> {
        let f = open_regular(&self.confine_visible(path)?)?;
        if f.metadata().map_err(FileError::Io)?.len() > cap {
            return Err(FileError::TooLarge(cap));
        }
        Ok(f)
    }

    /// Reads a regular text file inside the root and outside hidden directories, at most `cap`
    /// bytes, refused at the first chunk that is not text.
    pub(crate) fn read_text(&self, path: &Path, cap: u64) -> Result<String, FileError> {
        let c = self.confine_visible(path)?;
        read_regular_text(&c, cap)
    }
}

/// Reads a file the user named (a config, a plan file, a manifest given on the command line):
/// symlinks along the way are followed (the user chose the path), but it must be a regular file
/// and it is read with a limit, like every other input.
pub(crate) fn read_named(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    let c = std::fs::canonicalize(path).map_err(FileError::from_io)?;
    read_regular(&c, cap)
}

/// [`read_named`] for a file that must be text: refused at the first chunk that is not.
pub(crate) fn read_named_text(path: &Path, cap: u64) -> Result<String, FileError> {
    let c = std::fs::canonicalize(path).map_err(FileError::from_io)?;
    read_regular_text(&c, cap)
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

/// Reads a regular file (no final symlink) of at most `cap` bytes.
pub(crate) fn read_regular(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    read_sized(open_regular(path)?, cap, false)
}

/// Reads a regular text file (no final symlink) of at most `cap` bytes, refused at the first
/// chunk that is not text.
pub(crate) fn read_regular_text(path: &Path, cap: u64) -> Result<String, FileError> {
    let bytes = read_sized(open_regular(path)?, cap, true)?;
    // Checked chunk by chunk already; this finds nothing new and copies nothing.
    String::from_utf8(bytes).map_err(|e| FileError::NotText(crate::text::not_text_at(e.as_bytes(), e.utf8_error())))
}

/// Bytes read per step; the first step decides whether a file that must be text is one.
const CHUNK: u64 = 64 * 1024;

/// Reads an open regular file whose size is known: larger than `cap` is refused before reading,
/// the buffer is allocated once, and a file that grows while read is still cut at `cap`. With
/// `text`, every chunk is checked as it arrives and reading stops at the first that is not text.
fn read_sized(mut f: File, cap: u64, text: bool) -> Result<Vec<u8>, FileError> {
    let size = f.metadata().map_err(FileError::Io)?.len();
    if size > cap {
        return Err(FileError::TooLarge(cap));
    }
    let mut buf = Vec::new();
    // One more byte than the file, so that reading its end does not grow the buffer. If the
    // allocation is refused, the buffer grows as it reads, still within the limit.
    let _ = buf.try_reserve_exact(usize::try_from(size).unwrap_or(usize::MAX).saturating_add(1));
    let mut checked = 0;
    loop {
        let n = Read::take(&mut f, CHUNK).read_to_end(&mut buf).map_err(FileError::Io)?;
        if buf.len() as u64 > cap {
            return Err(FileError::TooLarge(cap));
        }
        if text {
            checked = crate::text::check(&buf, checked).map_err(FileError::NotText)?;
        }
        if n == 0 {
            break;
        }
    }
    if text {
        crate::text::finish(&buf, checked).map_err(FileError::NotText)?;
    }
    Ok(buf)
}

/// Reads one line (up to and including `\n`, or to the end of the input) into `line`, at most
/// `cap` bytes: a longer line is an error (`InvalidData`) once more arrived, and the rest is never
/// read. Returns the bytes read (0 at the end). For line-oriented files (the journal), where one
/// line is the most held at a time.
///
/// A line with a NUL byte cannot be an entry, but the last line of a journal may be a write torn
/// by a crash, which some filesystems fill with NUL bytes, and which is ignored. So from a NUL on
/// the line is read without being kept: ended by `\n` it is an error; ended by the end of the
/// input (within `cap`), `line` holds what came before the NUL (no `\n`: torn).
pub(crate) fn read_line_capped(r: &mut impl BufRead, line: &mut String, cap: u64) -> std::io::Result<usize> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut bytes = std::mem::take(line).into_bytes();
    bytes.clear();
    let (mut read, mut nul, mut ended) = (0usize, false, false);
    while !ended {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let part = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                ended = true;
                &buf[..=i]
            }
            None => buf,
        };
        if !nul {
            let keep = part.iter().position(|&b| b == 0).unwrap_or(part.len());
            nul = keep < part.len();
            bytes.extend_from_slice(&part[..keep]);
        }
        let used = part.len();
        r.consume(used);
        read += used;
        if read as u64 > cap {
            return Err(invalid(format!("a line longer than {cap} bytes: the file is corrupted")));
        }
    }
    if nul && ended {
        return Err(invalid("a line with a NUL byte: the file is corrupted".into()));
    }
    *line = String::from_utf8(bytes).map_err(|_| invalid("stream did not contain valid UTF-8".into()))?;
    Ok(read)
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
        assert_eq!(root.read_text(&repo.join("sub/a.txt"), 5).ok().as_deref(), Some("12345"));
        assert!(matches!(root.read_text(&repo.join("sub/a.txt"), 4), Err(FileError::TooLarge(4))));
        assert!(matches!(root.read_text(&repo.join("../secret.txt"), 9), Err(FileError::Outside)));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), repo.join("link"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(root.read_text(&repo.join("link"), 9), Err(FileError::Outside)));
            std::os::unix::fs::symlink("/dev/zero", repo.join("zero")).unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(root.read_text(&repo.join("zero"), 9), Err(FileError::Outside)));
            assert!(matches!(read_regular(Path::new("/dev/zero"), 9), Err(FileError::NotRegular("a device"))));
            assert!(matches!(read_regular(&repo.join("link"), 9), Err(FileError::Symlink)));
        }
        assert!(root.confine_new(&repo.join("new/dir/state.json")).is_ok());
        assert!(matches!(root.confine_new(&repo.join("../state.json")), Err(FileError::Outside)));
        assert!(matches!(root.read_text(&repo.join("sub"), 9), Err(FileError::NotRegular("a directory"))));
        std::fs::create_dir_all(repo.join(".git")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(repo.join(".git/config"), "token").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(repo.join(".env"), "SECRET=1").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(root.read_text(&repo.join("sub/../.git/config"), 99), Err(FileError::Hidden)));
        assert!(matches!(root.read_text(&repo.join(".env"), 99), Err(FileError::Hidden)));
    }

    /// Over the limit is refused from the size alone, binary at the first chunk: a sparse file of
    /// a gigabyte costs neither its size in time nor in memory.
    #[test]
    fn size_known_before_reading_and_binary_stopped_at_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let big = dir.path().join("big");
        let f = File::create(&big).unwrap_or_else(|e| panic!("{e}"));
        f.set_len(1 << 30).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(read_regular(&big, (1 << 30) - 1), Err(FileError::TooLarge(_))));
        let e = read_regular_text(&big, 1 << 30).err();
        assert!(matches!(e, Some(FileError::NotText(crate::text::NotText { line: 1, column: 1, nul: true }))), "{e:?}");
        // Text across many chunks, a multi-byte character on every chunk boundary included.
        let text = "é".repeat(3 * CHUNK as usize / 2 + 1) + "\n🎉";
        std::fs::write(dir.path().join("t"), &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_regular_text(&dir.path().join("t"), 1 << 20).ok().as_deref(), Some(text.as_str()));
        let mut late = text.into_bytes();
        late.push(0xff);
        std::fs::write(dir.path().join("late"), &late).unwrap_or_else(|e| panic!("{e}"));
        let e = read_regular_text(&dir.path().join("late"), 1 << 20).err();
        assert!(
            matches!(e, Some(FileError::NotText(crate::text::NotText { line: 2, column: 2, nul: false }))),
            "{e:?}"
        );
    }

    #[test]
    fn lines_are_read_within_their_limit() {
        // A small buffer, so that lines span several fills.
        let reader = |b: &[u8]| std::io::BufReader::with_capacity(3, std::io::Cursor::new(b.to_vec()));
        let mut line = String::new();
        let mut r = reader(b"short\n0123456789\ntail");
        assert_eq!(read_line_capped(&mut r, &mut line, 8).ok(), Some(6));
        assert_eq!(line, "short\n");
        assert!(read_line_capped(&mut r, &mut line, 8).is_err());
        let mut r = reader(b"tail");
        assert_eq!(read_line_capped(&mut r, &mut line, 8).ok(), Some(4));
        assert_eq!((read_line_capped(&mut r, &mut line, 8).ok(), line.as_str()), (Some(0), ""));
        // NUL bytes: an error on a complete line; a torn last line keeps what came before them,
        // without holding the NUL run.
        assert!(read_line_capped(&mut reader(b"ab\0cd\nx\n"), &mut line, 8).is_err());
        let mut torn = b"ab".to_vec();
        torn.resize(1000, 0);
        assert_eq!(read_line_capped(&mut reader(&torn), &mut line, 1000).ok(), Some(1000));
        assert_eq!(line, "ab");
        // Longer than the limit, NUL bytes or not: an error, the rest unread.
        let mut r = reader(&torn);
        assert!(read_line_capped(&mut r, &mut line, 999).is_err());
        assert!(std::io::Read::read_to_end(&mut r, &mut Vec::new()).is_ok_and(|rest| rest < 3));
    }
}
