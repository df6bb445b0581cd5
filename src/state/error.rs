//! The state layer's errors: what went wrong reading, writing, locking or replaying a state, each
//! with its cause kept as a source. Paths are kept as they are shown (relative to the current
//! directory when below it). The edge's [`Error`](crate::error::Error) wraps them unchanged.

use std::path::{Path, PathBuf};

use crate::files::FileError;

/// A problem with a state, its files or its store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A state file that could not be read (missing parts, a symlink, too large, …).
    #[error("state {}: cannot read: {source}{UNTOUCHED}", path.display())]
    Read { path: PathBuf, source: FileError },
    /// Reading a journal failed midway.
    #[error("state {}: cannot read: {source}{UNTOUCHED}", path.display())]
    ReadJournal { path: PathBuf, source: std::io::Error },
    /// A snapshot that is not a valid state.
    #[error("state {}: {source}{UNTOUCHED}", path.display())]
    Snapshot { path: PathBuf, source: SnapshotError },
    #[error("state {}: line {line} is corrupted: {source}{UNTOUCHED}", path.display())]
    CorruptLine { path: PathBuf, line: usize, source: serde_json::Error },
    #[error("state {}: line {line}: {source}{UNTOUCHED}", path.display())]
    Replay { path: PathBuf, line: usize, source: ReplayError },
    #[error(
        "state {}: the journal belongs to another state (lineage {lineage}, this state has {ours}); restore the state.json it was written for, or delete the journal if that state is gone on purpose{UNTOUCHED}",
        path.display()
    )]
    ForeignJournal { path: PathBuf, lineage: String, ours: String },
    #[error(
        "state {}: the journal was written against state serial {serial}, newer than this state.json (serial {ours}): the snapshot is older than the journal (restored from a backup?); restore the newest state.json{UNTOUCHED}",
        path.display()
    )]
    JournalAhead { path: PathBuf, serial: u64, ours: u64 },
    #[error("state {}: line 1 is not a journal header{UNTOUCHED}", path.display())]
    NoJournalHeader { path: PathBuf },
    #[error("state {}: the serial is out of range: the state was edited by hand{UNTOUCHED}", path.display())]
    SerialOutOfRange { path: PathBuf },
    #[error(
        "state {}: is a symbolic link; state files must be regular files (remove the link){UNTOUCHED}",
        path.display()
    )]
    Symlink { path: PathBuf },
    #[error("state {}: is not a regular file (remove it){UNTOUCHED}", path.display())]
    NotRegular { path: PathBuf },
    /// The high-water mark is not one.
    #[error(
        "state {}: not a kore-notify high-water mark ({source}); it records the newest state serial written. Restore it, or remove it if you are sure state.json is the newest state{UNTOUCHED}",
        path.display()
    )]
    BadMark { path: PathBuf, source: serde_json::Error },
    /// The snapshot is older than one the store wrote (see `freshness`).
    #[error("state {}: {}{UNTOUCHED}", path.display(), stale.message())]
    Stale { path: PathBuf, stale: Box<Stale> },
    /// A file operation on the state failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    #[error(
        "state {} is locked by another run: {holder}\n  help: wait for it to finish; if that process is gone, the OS has already released the lock and you can retry",
        path.display()
    )]
    Locked { path: PathBuf, holder: String },
    /// `state migrate` into a store that holds a state (for `bot`, in a database).
    #[error(
        "{store} already holds a state{}: migrate refuses to overwrite it",
        bot.as_ref().map(|b| format!(" for bot {b}")).unwrap_or_default()
    )]
    Occupied { store: String, bot: Option<String> },
    #[error("cannot encode journal entry: {0}")]
    EncodeEntry(#[source] serde_json::Error),
    #[error("cannot encode the high-water mark: {0}")]
    EncodeMark(#[source] serde_json::Error),
    /// An entry recorded by this run that its own state refuses: a bug.
    #[error("internal state error: {0}")]
    Internal(#[source] ReplayError),
    /// A PostgreSQL store's problem (`url` with its password hidden).
    #[error("state {url}: {message}")]
    Database { url: String, message: String },
    #[error("cannot start the PostgreSQL client: {0}")]
    PgRuntime(#[source] std::io::Error),
    /// The store's client runtime is gone (`stopped`: it stopped while a step ran).
    #[error("{}", if *during { "the PostgreSQL client stopped" } else { "the PostgreSQL client is stopped" })]
    PgStopped { during: bool },
    #[error("PostgreSQL did not answer within {secs} s")]
    PgTimeout { secs: u64 },
    #[error("TLS: {0}")]
    Tls(#[source] rustls::Error),
    /// The `sslrootcert` of a state URL cannot be used.
    #[error("sslrootcert {}: {source}", path.display())]
    RootCert { path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
}

impl From<crate::files::WriteError> for StateError {
    fn from(w: crate::files::WriteError) -> StateError {
        StateError::Io { path: w.path, action: w.action, source: w.source }
    }
}

/// Appended to every state file problem: nothing was written over it.
const UNTOUCHED: &str = "\n  the file was left untouched";

impl StateError {
    /// A file operation's failure, the path shown as the user knows it.
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> StateError {
        StateError::Io { path: shown(path), action, source }
    }

    /// A state file that could not be read.
    pub(crate) fn read(path: &Path, source: FileError) -> StateError {
        StateError::Read { path: shown(path), source }
    }

    /// Whether another run holds the state's lock.
    pub(crate) fn is_locked(&self) -> bool {
        matches!(self, StateError::Locked { .. })
    }
}

/// A path as it is shown (relative to the current directory when below it).
pub(crate) fn shown(path: &Path) -> PathBuf {
    crate::files::display_path(path)
}

/// Why a snapshot is not a valid state.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not UTF-8 text: the file is corrupted")]
    NotUtf8,
    /// Refused at the first chunk read: a NUL byte or bytes that are not UTF-8.
    #[error("{}\n  help: {}", crate::text::Kind::State.message(.0), crate::text::Kind::State.fix())]
    NotText(crate::text::NotText),
    #[error("no formatVersion: this is not a kore-notify state file, or it is truncated")]
    NoFormatVersion,
    #[error(
        "state format {0} was written by a newer kore-notify (this one reads format {FORMAT_VERSION}); upgrade kore-notify",
        FORMAT_VERSION = super::FORMAT_VERSION
    )]
    Newer(u32),
    #[error("no checksum line: the file is truncated or was not written by kore-notify")]
    NoChecksum,
    #[error("checksum mismatch: the file was edited by hand or corrupted")]
    ChecksumMismatch,
    #[error("invalid state: {0}")]
    Invalid(#[source] serde_json::Error),
}

/// A journal entry the state cannot take.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("intent for {key} has request index {req}, expected {expected}")]
    RequestIndex { key: String, req: u32, expected: usize },
    #[error("outcome for unknown notification {0}")]
    OutcomeForUnknown(String),
    #[error("outcome for unknown request {key}#{req}")]
    UnknownRequest { key: String, req: u32 },
    #[error("no notification {0}")]
    NoNotification(String),
    #[error("no notification {0} to retire")]
    NothingToRetire(String),
    #[error("{0} has a request with an unknown outcome: it cannot be retired")]
    RetireUnknown(String),
    #[error("a status of {key} refers to comment {index}, which it does not list")]
    CommentIndex { key: String, index: u32 },
    #[error("wave {wave} of {key} starts again or out of order")]
    WaveOrder { key: String, wave: u32 },
}

/// A snapshot older than the newest one the store knows of, and where that one is recorded.
#[derive(Debug)]
pub struct Stale {
    /// The snapshot's serial (`None`: there is no snapshot).
    pub(crate) current: Option<u64>,
    pub(crate) newest: u64,
    /// The file that shows `newest` was written (the backup or the high-water mark), as shown.
    pub(crate) seen_in: PathBuf,
    /// The snapshot, its backup and its high-water mark, as shown.
    pub(crate) snapshot: PathBuf,
    pub(crate) backup: PathBuf,
    pub(crate) mark: PathBuf,
}

impl Stale {
    fn message(&self) -> String {
        let Stale { current, newest, seen_in, snapshot, backup, mark } = self;
        let what = match current {
            Some(c) => {
                format!("this snapshot is serial {c}, but {} shows serial {newest} was written", seen_in.display())
            }
            None => format!("there is no snapshot, but {} shows serial {newest} was written", seen_in.display()),
        };
        let restore = if seen_in == backup {
            format!("`cp {} {}` restores it", backup.display(), snapshot.display())
        } else {
            "look for it in the CI state branch or the last run's artifact".to_string()
        };
        format!(
            "{what}: the state is older than the newest one (restored from a backup or an old copy?) and does not know the latest sends, which would be sent again; nothing was sent.\n  help: restore state.json serial {newest} ({restore}). Only if this older state really is the one to keep, accept it knowingly: `rm {} {}` (recipients sent after serial {} may receive their message again)",
            mark.display(),
            backup.display(),
            current.unwrap_or(0)
        )
    }
}
