//! The state on disk: paths beside the snapshot, reading (snapshot and journal, bounded, no
//! symlinks), atomic snapshot writes with a backup, and the append-only journal.

use super::*;
use crate::files::{parent_dir, sweep_temps, sync_dir, write_atomic_in};

pub(crate) struct Paths {
    pub(crate) snapshot: PathBuf,
    pub(crate) journal: PathBuf,
    pub(crate) backup: PathBuf,
    pub(crate) lock: PathBuf,
    /// The high-water mark (see `freshness`).
    pub(crate) mark: PathBuf,
}

impl Paths {
    pub(crate) fn new(snapshot: &Path) -> Paths {
        let with = |suffix: &str| {
            let mut s = snapshot.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        Paths {
            snapshot: snapshot.to_path_buf(),
            journal: with(".journal"),
            backup: with(".backup"),
            lock: with(".lock"),
            mark: with(".serial"),
        }
    }
}

/// A loaded state: the snapshot plus any journal left by an earlier run.
#[derive(Debug)]
pub struct Loaded {
    pub state: State,
    /// Whether a snapshot file exists.
    pub(crate) exists: bool,
    /// Journal entries replayed (non-zero after a crash).
    pub(crate) replayed: usize,
    /// Digest of the snapshot and journal bytes, bound into plan files.
    pub(crate) digest: String,
}

/// Longest journal line read: an entry records at most one notification's recipients (a
/// million, about 80 MB) and its content (a manifest's 16 MiB at most).
const MAX_JOURNAL_LINE: u64 = 256 * 1024 * 1024;

/// Reads the snapshot and replays the journal, read-only; requests left without an answer are
/// unknown (the run that sent them is gone).
pub fn load(path: &Path) -> Result<Loaded> {
    let mut l = load_unsettled(path)?;
    l.state.settle_pending();
    Ok(l)
}

/// Reads the snapshot and replays the journal, read-only, while another run may be writing:
/// requests without an answer are in flight while a writer holds the lock, else unknown.
pub(crate) fn load_beside_writers(path: &Path) -> Result<Loaded> {
    let mut l = load_unsettled(path)?;
    match live_holder(path) {
        Some(holder) => l.state.mark_in_flight(&holder),
        None => l.state.settle_pending(),
    }
    Ok(l)
}

/// The snapshot with the journal replayed, requests without an answer left pending.
fn load_unsettled(path: &Path) -> Result<Loaded> {
    let paths = Paths::new(path);
    let snapshot = crate::files::read_regular_text(&paths.snapshot, MAX_STATE_BYTES);
    let (mut state, exists, mut digest_input) = match snapshot {
        Ok(text) => {
            let state = State::from_bytes(text.as_bytes())
                .map_err(|source| StateError::Snapshot { path: error::shown(path), source })?;
            (state, true, sha256_hex(text.as_bytes()))
        }
        Err(crate::files::FileError::NotText(e)) => {
            return Err(StateError::Snapshot { path: error::shown(path), source: error::SnapshotError::NotText(e) });
        }
        Err(crate::files::FileError::NotFound) => (State::new(), false, String::new()),
        Err(e) => return Err(file_error(path, e)),
    };
    freshness::check(path, exists.then_some(&state))?;
    let mut replayed = 0;
    match crate::files::open_regular(&paths.journal) {
        Ok(f) => {
            let mut reader = BufReader::new(std::io::Read::take(f, MAX_STATE_BYTES));
            let mut line = String::new();
            let mut lineno = 0;
            let mut hasher = sha2::Sha256::default();
            loop {
                line.clear();
                // One line at a time, each bounded: a corrupted journal cannot make us hold it whole.
                let n = crate::files::read_line_capped(&mut reader, &mut line, MAX_JOURNAL_LINE)
                    .map_err(|source| StateError::ReadJournal { path: error::shown(&paths.journal), source })?;
                if n == 0 {
                    break;
                }
                lineno += 1;
                if !line.ends_with('\n') {
                    // A torn final write: the process died while appending. An intent that was not
                    // completely written was never followed by a request (we fsync before sending).
                    break;
                }
                sha2::Digest::update(&mut hasher, line.as_bytes());
                let entry: Entry = serde_json::from_str(&line).map_err(|source| StateError::CorruptLine {
                    path: error::shown(&paths.journal),
                    line: lineno,
                    source,
                })?;
                if lineno == 1 && !journal_continues(&entry, exists, &mut state, &paths.journal)? {
                    // Written against an older snapshot: already compacted into this one.
                    break;
                }
                state.replay(&entry).map_err(|source| StateError::Replay {
                    path: error::shown(&paths.journal),
                    line: lineno,
                    source,
                })?;
                replayed += 1;
            }
            if replayed > 0 {
                digest_input.push_str(&hex::encode(sha2::Digest::finalize(hasher)));
            }
        }
        Err(crate::files::FileError::NotFound) => {}
        Err(e) => return Err(file_error(&paths.journal, e)),
    }
    Ok(Loaded { state, exists: exists || replayed > 0, replayed, digest: sha256_hex(digest_input.as_bytes()) })
}

/// Checks a journal's first line against the snapshot (`exists`: there is one): whether the
/// journal continues it (`false`: written against an older snapshot, already compacted into it).
/// A journal without a snapshot gives the state its lineage.
fn journal_continues(first: &Entry, exists: bool, state: &mut State, journal: &Path) -> Result<bool> {
    match first {
        Entry::Begin { lineage, .. } if exists && lineage != &state.lineage => {
            // Never guess with a record of sends: refuse, and say how to settle it.
            Err(StateError::ForeignJournal {
                path: error::shown(journal),
                lineage: lineage.clone(),
                ours: state.lineage.clone(),
            })
        }
        Entry::Begin { serial, .. } if exists && *serial > state.serial => {
            Err(StateError::JournalAhead { path: error::shown(journal), serial: *serial, ours: state.serial })
        }
        Entry::Begin { serial, .. } if exists && *serial < state.serial => Ok(false),
        Entry::Begin { lineage, .. } if !exists => {
            state.lineage.clone_from(lineage);
            Ok(true)
        }
        Entry::Begin { .. } => Ok(true),
        _ => Err(StateError::NoJournalHeader { path: error::shown(journal) }),
    }
}

/// The state's file names, with their directory created.
pub(super) fn paths_in_dir(path: &Path) -> Result<(Paths, PathBuf)> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(|e| StateError::io(&dir, "create", e))?;
    Ok((Paths::new(path), dir))
}

/// The prefix of the temporary files of atomic writes beside the state (`state.json.tmp-`).
pub(super) fn temp_prefix(path: &Path) -> String {
    format!("{}.tmp-", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
}

/// Writes a new snapshot atomically (temp file, fsync, rename, fsync dir), keeping the previous
/// one as `.backup`, then removes the journal it absorbed.
pub fn write_snapshot(path: &Path, state: &mut State) -> Result<()> {
    let (paths, dir) = paths_in_dir(path)?;
    state.serial = state
        .serial
        .checked_add(1)
        .filter(|s| *s < u64::MAX / 2)
        .ok_or_else(|| StateError::SerialOutOfRange { path: error::shown(path) })?;
    state.tool_version = env!("CARGO_PKG_VERSION").into();
    let bytes = state.to_bytes();
    let prefix = temp_prefix(path);
    // Temporary files left by a run killed mid-write go first: the caller holds the lock, so none
    // of them is in use, and they must not pile up (or be committed with the state in CI).
    sweep_temps(&dir, &prefix);
    if present(&paths.snapshot) {
        // Read without following a symlink: a linked snapshot is refused, never copied.
        let old = crate::files::read_regular(&paths.snapshot, MAX_STATE_BYTES).map_err(|e| file_error(path, e))?;
        write_atomic_in(&dir, &prefix, &paths.backup, &old)?;
    }
    write_atomic_in(&dir, &prefix, &paths.snapshot, &bytes)?;
    sync_dir(&dir);
    freshness::record(path, &dir, state)?;
    sync_dir(&dir);
    match std::fs::remove_file(&paths.journal) {
        Ok(()) => sync_dir(&dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StateError::io(&paths.journal, "remove", e)),
    }
    Ok(())
}

/// Whether the journal's header names this state's lineage and serial.
pub(super) fn journal_belongs_to(journal: &Path, state: &State) -> bool {
    let Ok(f) = crate::files::open_regular(journal) else { return false };
    let mut line = String::new();
    // A header line is short: a longer first line is not one, and is not read whole.
    if crate::files::read_line_capped(&mut BufReader::new(f), &mut line, 64 * 1024).is_err() || !line.ends_with('\n') {
        return false;
    }
    matches!(
        serde_json::from_str::<Entry>(&line),
        Ok(Entry::Begin { lineage, serial, .. }) if lineage == state.lineage && serial == state.serial
    )
}

/// Loads the state for a command that will change it (the caller holds the lock): a journal left
/// by an interrupted run is absorbed into a new snapshot first, so that what it recorded is safe
/// before anything else happens.
pub fn load_for_update(path: &Path) -> Result<Loaded> {
    let loaded = load(path)?;
    if loaded.replayed == 0 {
        return Ok(loaded);
    }
    let mut state = loaded.state;
    write_snapshot(path, &mut state)?;
    let mut again = load(path)?;
    again.replayed = loaded.replayed;
    Ok(again)
}

/// The append-only journal of a running apply.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens the journal for appending (the caller holds the lock and loaded `state` with
    /// [`load_for_update`]). A journal whose header belongs to `state` is live and appended to.
    /// Any other journal is stale: `load` ignored it (its entries are already in the snapshot,
    /// or it was torn before its header was written), so it is replaced by a fresh one. Appending
    /// to a stale journal would be fatal: its old header would make the next `load` ignore the
    /// new entries too, and forget sends that really happened.
    pub fn open(path: &Path, state: &State) -> Result<Journal> {
        Journal::open_at(path, state, Clock::System)
    }

    /// [`Journal::open`], a new journal's header stamped by `clock`.
    pub(crate) fn open_at(path: &Path, state: &State, clock: Clock) -> Result<Journal> {
        let (paths, dir) = paths_in_dir(path)?;
        if present(&paths.journal) && !journal_belongs_to(&paths.journal, state) {
            if let Err(e) = crate::files::open_regular(&paths.journal) {
                // Never replace what is not a journal file we wrote (a symlink, a device).
                return Err(file_error(&paths.journal, e));
            }
            std::fs::remove_file(&paths.journal).map_err(|e| StateError::io(&paths.journal, "remove stale", e))?;
            sync_dir(&dir);
        }
        let fresh = !present(&paths.journal);
        let mut o = OpenOptions::new();
        o.create(true).append(true);
        crate::files::nofollow(&mut o, false);
        let file = o.open(&paths.journal).map_err(|e| refused_link(&paths.journal, "open", e))?;
        check_regular(&file, &paths.journal)?;
        let mut j = Journal { file, path: paths.journal };
        if fresh {
            j.append(&Entry::Begin { lineage: state.lineage.clone(), serial: state.serial, at: clock.stamp() })?;
            sync_dir(&dir);
        }
        Ok(j)
    }

    /// Appends one entry and fsyncs it: when this returns, the entry survives a crash.
    pub fn append(&mut self, e: &Entry) -> Result<()> {
        let mut line = serde_json::to_string(e).map_err(StateError::EncodeEntry)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|err| StateError::io(&self.path, "append to", err))
    }
}
