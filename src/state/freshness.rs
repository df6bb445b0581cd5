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

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Paths, Result, Stale, State, StateError};

#[derive(Serialize, Deserialize)]
struct Mark {
    lineage: String,
    serial: u64,
}

fn read_mark(path: &Path) -> Result<Option<Mark>> {
    match crate::files::read_regular(path, 64 * 1024) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::BadMark { path: crate::files::display_path(path), source }),
        Err(crate::files::FileError::NotFound) => Ok(None),
        Err(e) => Err(StateError::read(path, e)),
    }
}

/// The newest serial the store knows of beside the snapshot, and where it is recorded. The backup
/// counts only when it is a readable snapshot of the same lineage.
fn newest_known(snapshot: &Path, lineage: Option<&str>) -> Result<Option<(u64, PathBuf)>> {
    let mut newest: Option<(u64, PathBuf)> = None;
    let backup = Paths::new(snapshot).backup;
    if let Some((b_lineage, b_serial)) = peek_header(&backup)
        && lineage.is_none_or(|l| l == b_lineage)
    {
        newest = Some((b_serial, backup));
    }
    let mark = Paths::new(snapshot).mark;
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
    let shown = crate::files::display_path;
    Err(StateError::Stale {
        path: shown(snapshot),
        stale: Box::new(Stale {
            current,
            newest,
            seen_in: shown(&source),
            snapshot: shown(snapshot),
            backup: shown(&Paths::new(snapshot).backup),
            mark: shown(&Paths::new(snapshot).mark),
        }),
    })
}

/// Records `state` as the newest snapshot written (after the snapshot itself is durable), with
/// the one atomic write (its temporary file named like the snapshot's).
pub(crate) fn record(snapshot: &Path, dir: &Path, state: &State) -> Result<()> {
    let path = Paths::new(snapshot).mark;
    let text = serde_json::to_string(&Mark { lineage: state.lineage.clone(), serial: state.serial })
        .map_err(StateError::EncodeMark)?;
    let prefix = format!("{}.tmp-", snapshot.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    crate::files::write_atomic_in(dir, &prefix, &path, format!("{text}\n").as_bytes())?;
    Ok(())
}
