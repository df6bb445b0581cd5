//! `--events FILE` (or `-` for stdout): every change a command records — intents, outcomes,
//! statuses, decisions (resolve, retry), orphans, tombstones, claims — and a closing summary, one
//! JSON object per line: an audit log a team can ship to its log system.
//!
//! The events are the journal's own entries ([`Entry`]), emitted by a [`Session`] wrapper right
//! after each is recorded durably, so the stream says exactly what the state says, each entry
//! once, in order. Like the state, they hold no secrets and no identities in clear (recipients
//! are salted hashes). Each line is `{"ts": RFC 3339, "command": …, "op": …, …the entry's
//! fields}`; its schema is `kore-notify schema events`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::state::{Entry, Loaded, Session, State};

/// Where the events go.
pub(crate) struct Events {
    /// The sink, `None` once a write to it failed (a full disk): a line cut short is not followed
    /// by more, so every line in the file is whole.
    out: Mutex<Option<Box<dyn Write + Send>>>,
    /// The first write error, for the closing warning.
    failed: Mutex<Option<String>>,
    path: String,
    command: String,
    clock: Clock,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("command", &self.command).finish_non_exhaustive()
    }
}

/// One line of the stream, as its schema documents it.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct Event<'a> {
    /// When it was recorded (RFC 3339, UTC).
    ts: String,
    /// The kore-notify command that recorded it.
    command: &'a str,
    /// The journal entry (`op`: intent, outcome, record, resolve, retry, status, rename, remove,
    /// orphan, retire, revive, claim) or the command's closing `summary`.
    #[serde(flatten)]
    what: What<'a>,
}

#[derive(Serialize, schemars::JsonSchema)]
#[serde(untagged)]
enum What<'a> {
    Entry(&'a Entry),
    Summary(Summary<'a>),
}

/// The closing line of a command that recorded something.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Summary<'a> {
    /// Always `summary`.
    op: &'static str,
    /// What the command did, as counts (`accepted`, `rejected`, `unknown`, `notSent`, …).
    pub(crate) counts: &'a std::collections::BTreeMap<&'static str, usize>,
    /// The command's exit code.
    pub(crate) exit: i32,
}

impl Events {
    /// Events of `command` to `path` (appended; created when missing, never through a symlink),
    /// or to stdout for `-`.
    pub(crate) fn open(path: &str, command: &str, clock: Clock) -> Result<Events> {
        let out: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stdout())
        } else if path.trim().is_empty() {
            return Err(Error::Refused("--events: empty path; give a file, or - for standard output".into()));
        } else {
            let mut o = std::fs::OpenOptions::new();
            o.append(true).create(true);
            crate::files::nofollow(&mut o, false);
            let f = o.open(path).map_err(|e| {
                Error::Refused(format!("--events {}: cannot open it for appending: {e}", crate::safe::line(path)))
            })?;
            Box::new(f)
        };
        Ok(Events {
            out: Mutex::new(Some(out)),
            failed: Mutex::new(None),
            path: path.to_string(),
            command: command.to_string(),
            clock,
        })
    }

    fn emit(&self, what: What) {
        let line = Event { ts: self.clock.stamp(), command: &self.command, what };
        if let Ok(mut text) = serde_json::to_string(&line) {
            text.push('\n');
            let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // An audit sink that fails must not stop a send whose record is already durable: it is
            // closed, and the command says so when it ends (see `failure`).
            if let Some(sink) = out.as_mut()
                && let Err(e) = sink.write_all(text.as_bytes()).and_then(|()| sink.flush())
            {
                *out = None;
                *self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
            }
        }
    }

    /// Why the stream stopped early, when it did: the warning the command ends with (the state
    /// holds everything; the audit log lacks what came after).
    pub(crate) fn failure(&self) -> Option<String> {
        let failed = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        failed.as_ref().map(|e| {
            format!(
                "--events {}: writing failed ({}); the audit log is incomplete from then on (the state has every record: `kore-notify state list`)",
                crate::safe::line(&self.path),
                crate::safe::line(e)
            )
        })
    }

    /// The closing summary.
    pub(crate) fn summary(&self, counts: &std::collections::BTreeMap<&'static str, usize>, exit: i32) {
        self.emit(What::Summary(Summary { op: "summary", counts, exit }));
    }

    /// `session`, every entry it records also emitted here.
    pub(crate) fn wrap(self: &Arc<Self>, session: Box<dyn Session>) -> Box<dyn Session> {
        Box::new(Recorded { inner: session, events: self.clone() })
    }
}

/// A session whose recorded entries are also events.
struct Recorded {
    inner: Box<dyn Session>,
    events: Arc<Events>,
}

impl Session for Recorded {
    fn loaded(&self) -> &Loaded {
        self.inner.loaded()
    }

    fn state(&self) -> &State {
        self.inner.state()
    }

    fn record(&mut self, e: &Entry) -> crate::state::Result<()> {
        self.inner.record(e)?;
        self.events.emit(What::Entry(e));
        Ok(())
    }

    fn compact(&mut self) -> crate::state::Result<()> {
        self.inner.compact()
    }
}

/// The JSON Schema of one line.
pub(crate) fn schema() -> schemars::Schema {
    schemars::schema_for!(Event<'static>)
}
