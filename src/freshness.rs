//! Refusing a stale snapshot. A `state.json` older than the newest state this store has written
//! (restored from a backup, an old CI artifact, a stale checkout) does not know about the latest
//! sends: using it would send them again. So every snapshot write also records a **high-water
//! mark**, `state.json.serial` (`{"lineage": …, "serial": N}`), written after the snapshot; and
//! loading refuses a snapshot whose serial is below the mark's, or below its own `.backup`'s (the
//! backup is always the snapshot that preceded it). The journal's header is checked the same way
//! in `state::load`.
//!
//! Equal serials are fine: a run killed between writing the backup and the new snapshot leaves
//! both at the same serial, with the journal still there to replay.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::state::State;

#[derive(Serialize, Deserialize)]
struct Mark {
    lineage: String,
    serial: u64,
}

fn beside(snapshot: &Path, suffix: &str) -> PathBuf {
    let mut s = snapshot.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The high-water mark file of a state.
pub(crate) fn mark_path(snapshot: &Path) -> PathBuf {
    beside(snapshot, ".serial")
}

fn read_mark(path: &Path) -> Result<Option<Mark>> {
    match crate::files::read_regular(path, 64 * 1024).map_err(|e| match e {
        crate::files::FileError::NotFound => std::io::Error::from(std::io::ErrorKind::NotFound),
        other => std::io::Error::other(other.to_string()),
    }) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::state(
                path,
                format!(
                    "not a kore-notify high-water mark ({e}); it records the newest state serial written. Restore it, or remove it if you are sure state.json is the newest state"
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::state(path, format!("cannot read: {e}"))),
    }
}

/// The newest serial the store knows of beside the snapshot, and where it is recorded. The backup
/// counts only when it is a readable snapshot of the same lineage.
fn newest_known(snapshot: &Path, lineage: Option<&str>) -> Result<Option<(u64, PathBuf)>> {
    let mut newest: Option<(u64, PathBuf)> = None;
    let backup = beside(snapshot, ".backup");
    if let Some((b_lineage, b_serial)) = peek_header(&backup)
        && lineage.is_none_or(|l| l == b_lineage)
    {
        newest = Some((b_serial, backup));
    }
    let mark = mark_path(snapshot);
    if let Some(m) = read_mark(&mark)?
        && lineage.is_none_or(|l| l == m.lineage)
        && newest.as_ref().is_none_or(|(s, _)| m.serial > *s)
    {
        newest = Some((m.serial, mark));
    }
    Ok(newest)
}

/// The lineage and serial of a snapshot, from its first few kilobytes (they come first in the
/// file): a backup of a million recipients is not read whole on every plan. Unverified, which is
/// fine here: a wrong value can only make a load refuse, never send.
fn peek_header(path: &Path) -> Option<(String, u64)> {
    let f = crate::files::open_regular(path).ok()?;
    let mut head = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, 4096), &mut head).ok()?;
    let text = String::from_utf8_lossy(&head);
    let field = |name: &str| -> Option<String> {
        let rest = &text[text.find(&format!("\"{name}\":"))? + name.len() + 3..];
        let rest = rest.trim_start();
        let end = rest.find([',', '\n'])?;
        Some(rest[..end].trim().trim_matches('"').to_string())
    };
    Some((field("lineage")?, field("serial")?.parse().ok()?))
}

/// Refuses a snapshot older than what the store has seen (`state` is `None` when there is no
/// snapshot file at all). Reads only; changes nothing.
pub(crate) fn check(snapshot: &Path, state: Option<&State>) -> Result<()> {
    let Some((newest, source)) = newest_known(snapshot, state.map(|s| s.lineage.as_str()))? else {
        return Ok(());
    };
    let current = state.map(|s| s.serial);
    if current.is_some_and(|c| c >= newest) {
        return Ok(());
    }
    let shown = crate::load::display_path(snapshot);
    let source = crate::load::display_path(&source);
    let backup = crate::load::display_path(&beside(snapshot, ".backup"));
    let mark = crate::load::display_path(&mark_path(snapshot));
    let what = match current {
        Some(c) => format!("this snapshot is serial {c}, but {} shows serial {newest} was written", source.display()),
        None => format!("there is no snapshot, but {} shows serial {newest} was written", source.display()),
    };
    let restore = if source == backup {
        format!("`cp {} {}` restores it", backup.display(), shown.display())
    } else {
        "look for it in the CI state branch or the last run's artifact".to_string()
    };
    Err(Error::state(
        snapshot,
        format!(
            "{what}: the state is older than the newest one (restored from a backup or an old copy?) and does not know the latest sends, which would be sent again; nothing was sent.\n  help: restore state.json serial {newest} ({restore}). Only if this older state really is the one to keep, accept it knowingly: `rm {} {}` (recipients sent after serial {} may receive their message again)",
            mark.display(),
            backup.display(),
            current.unwrap_or(0)
        ),
    ))
}

/// Records `state` as the newest snapshot written (after the snapshot itself is durable).
pub(crate) fn record(snapshot: &Path, dir: &Path, state: &State) -> Result<()> {
    let path = mark_path(snapshot);
    let text = serde_json::to_string(&Mark { lineage: state.lineage.clone(), serial: state.serial })
        .map_err(|e| Error::Io(format!("cannot encode the high-water mark: {e}")))?;
    let prefix = format!("{}.tmp-", snapshot.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let mut tmp =
        tempfile::Builder::new().prefix(&prefix).tempfile_in(dir).map_err(|e| Error::io(dir, "write in", e))?;
    tmp.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(&path, "write", e))?;
    tmp.persist(&path).map_err(|e| Error::io(&path, "write", e.error))?;
    Ok(())
}
