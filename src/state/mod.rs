//! The state: what was sent, to whom (as salted hashes), with which request IDs and outcomes.
//!
//! Layout beside `state.json`:
//! - `state.json` — the snapshot: format version, lineage (created once), serial (bumped per
//!   write), notifications; sorted, pretty JSON so a committed state diffs cleanly; ends with a
//!   checksum line so tampering and truncation are detected.
//! - `state.json.journal` — append-only JSON lines written during apply: an *intent* is appended and
//!   fsynced before every request, its *outcome* after. Recording a batch therefore costs
//!   O(batch), whatever the state's size. Replayed on load; an intent without outcome is
//!   **unknown**. Compacted into the snapshot at the end of a run.
//! - `state.json.backup` — the previous snapshot.
//! - `state.json.lock` — an OS lock held by the writer, with holder information.
//!
//! A state that cannot be read is an error and is never overwritten. State, journal, backup and
//! lock files are opened without following symlinks and must be regular files; reads are capped
//! ([`MAX_STATE_BYTES`]).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::fingerprint::{Fingerprint, RecipientHash, random_id, sha256_hex};
use crate::manifest::{Api, Channel, Content};

mod compact;
mod delivery;
mod entry;
mod error;
mod file;
mod freshness;
mod lock;
pub mod pg;
mod rollout;
mod spec;
mod store;

pub use delivery::Delivery;
pub use entry::{CommentRef, Entry};
pub use error::{ReplayError, SnapshotError, Stale, StateError};
pub(crate) use file::Paths;
use file::*;
pub use file::{Journal, Loaded, load, load_for_update, write_snapshot};
pub(crate) use lock::{Holder, Lock, RunSite, live_holder};
use lock::{check_regular, refused_link};
pub(crate) use rollout::percent_of;
pub use rollout::{HaltRecord, ResumeRecord, RolloutRecord, WaveMark};
pub(crate) use spec::{DEFAULT_STATE, STATE_URL_VAR, StoreSpec};
pub(crate) use store::{FileStore, store_for};
pub use store::{Session, StateStore};

/// Format 3: Kore.ai's reported deliveries kept once per notification and referred to by index
/// (see `delivery.rs`). Format 2 (recipients one compact line each, see `compact.rs`; a reported
/// delivery as its status word, with its comment in an object) and format 1 (recipients as
/// objects keyed by hex hashes) are still read.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// Largest snapshot or journal we read (a format-1 state of a million recipients is about 130 MB,
/// format 2 about 40 MB).
pub(crate) const MAX_STATE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
const MAX_HOLDER_BYTES: u64 = 64 * 1024;

/// The state layer's results.
pub(crate) type Result<T, E = StateError> = std::result::Result<T, E>;

/// A state file problem as the error to show (never the content).
fn file_error(path: &Path, e: crate::files::FileError) -> StateError {
    StateError::read(path, e)
}

/// Whether a path exists as anything at all, without following a symlink.
fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
/// Why a request left without an answer by a run that died is unknown.
const DEAD_RUN: &str = "the run stopped before Kore.ai's answer was recorded";
const CHECKSUM_PREFIX: &str = "\n\t\"checksum\": \"sha256:";
/// The checksum line of format 1 (indented with two spaces).
const CHECKSUM_PREFIX_V1: &str = "\n  \"checksum\": \"sha256:";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredContent {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: serde_json::Value,
}

impl From<&Content> for StoredContent {
    fn from(c: &Content) -> Self {
        StoredContent { kind: c.kind.clone(), value: c.value.clone() }
    }
}

impl StoredContent {
    pub(crate) fn display(&self) -> String {
        Content { kind: self.kind.clone(), value: self.value.clone() }.display()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Intent journaled; no answer recorded yet (while running) — unknown after a crash.
    Pending,
    /// Kore.ai answered with a request ID.
    Accepted,
    /// Kore.ai refused the request; nobody received it.
    Rejected,
    /// The request may or may not have been processed (timeout, 5xx, reset, crash).
    Unknown,
    /// An unknown request the user declared as sent (`state resolve --sent`).
    ResolvedSent,
    /// An unknown request the user declared as not sent, or retried with `--retry-unknown`.
    ResolvedNotSent,
    /// Changed content recorded without sending (`onChange: ignore`).
    Recorded,
    /// Never reached Kore.ai: no connection could be established (after the automatic retries),
    /// so nobody received it; its recipients are sent with the next apply.
    NotSent,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Unknown => "unknown",
            Outcome::ResolvedSent => "resolved-sent",
            Outcome::ResolvedNotSent => "resolved-not-sent",
            Outcome::Recorded => "recorded",
            Outcome::NotSent => "not-sent",
        }
    }

    /// Whether the request may or may not have been processed, and nobody decided yet.
    pub(crate) fn is_unknown(self) -> bool {
        matches!(self, Outcome::Unknown | Outcome::Pending)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestState {
    /// Random id of the batch (also in the journal).
    pub(crate) batch: String,
    pub(crate) outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<String>,
    /// Kore.ai job status: IN_PROGRESS, SUCCESS, PARTIAL_SUCCESS, FAILURE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<String>,
    pub(crate) recipients: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) delivered: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) failed: u32,
    pub(crate) sent_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub(crate) fp: Fingerprint,
    pub req: u32,
}

/// A recipient of a notification (its line of the snapshot: see `compact.rs`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecipientState {
    /// Fingerprint of what this person last (certainly) received.
    pub fp: Option<Fingerprint>,
    /// Index of the request that carried it.
    pub(crate) req: Option<u32>,
    /// What the status API reported for that request: an index into the notification's
    /// `deliveries` (see [`NotificationState::delivery`]).
    pub(crate) delivery: Option<u32>,
    /// A send whose outcome is not known yet (or unknown after a failure).
    pub pending: Option<Pending>,
}

/// A notification's state. Serialized by `compact.rs` (the recipients one line each, referring to
/// `deliveries` by index).
#[derive(Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationState {
    pub(crate) channel: Channel,
    pub(crate) api: Api,
    /// The content last sent or recorded, for diffs in plans.
    pub(crate) content: StoredContent,
    #[serde(default)]
    pub requests: Vec<RequestState>,
    /// Kore.ai's reported deliveries (status and comment), each distinct one once; recipients
    /// refer to them by index (see `delivery.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) deliveries: Vec<Delivery>,
    /// Keyed by salted recipient hash. Stored as a list, one line per recipient, sorted by hash.
    #[serde(default)]
    #[schemars(with = "compact::Schema")]
    pub recipients: BTreeMap<RecipientHash, RecipientState>,
    /// When the notification was first seen by `apply` in the state but no longer in the
    /// manifests (RFC 3339). Cleared when its key comes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) orphaned_since: Option<String>,
    /// Digest of the repository that last declared it (absent in states written before it was
    /// kept). Only that repository judges it orphaned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) origin: Option<String>,
    /// Which content each request carried: a mark where the content changed (its digest, see
    /// [`crate::fingerprint::content_digest`], and the first request with it). Promotion reads it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) contents: Vec<ContentMark>,
    /// Knowing overrides of a gate (`apply --skip-promotion`, `apply --override-policy`), with
    /// who, when and why, the latest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) overrides: Vec<Override>,
    /// Test sends of this notification (only in a test ledger, see `crate::testsend`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) test_sends: Vec<TestSend>,
    /// The canary rollout of its current content: waves started, a halt (see `crate::rollout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rollout: Option<RolloutRecord>,
}

/// From request `from` on, the requests of a notification carried the content digesting to
/// `digest` (until the next mark).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContentMark {
    pub(crate) digest: String,
    pub(crate) from: u32,
}

/// A gate passed knowingly: recorded in the state with who, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    /// Which gate: `promotion` or `policy`.
    pub(crate) gate: String,
    /// The content it was given for (an override does not carry over to changed content).
    pub(crate) content: String,
    pub(crate) reason: String,
    /// The CI actor or the local user.
    pub(crate) actor: String,
    pub(crate) at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) run_url: Option<String>,
    /// Gate `policy`: the `require` rules whose approvals were missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) rules: Vec<String>,
}

/// A test send recorded in a test ledger (`kore-notify test-send`): to whom (masked), which
/// variant, for which content and plan, by whom and when; `req` is the ledger's request that
/// carried it (its outcome says whether it was accepted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestSend {
    pub(crate) req: u32,
    /// The test identities, masked as pull-request comments show them.
    pub(crate) to: Vec<String>,
    /// Which of the notification's distinct texts (1-based).
    pub(crate) variant: u32,
    /// [`crate::fingerprint::content_digest`] of the content sent.
    pub(crate) content: String,
    /// The digest of the plan it was taken from.
    pub(crate) plan: String,
    /// The CI actor or the local user.
    pub(crate) actor: String,
    pub(crate) at: String,
}

/// Whose a notification in the state is, as seen by one repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Declared {
    /// This repository declared it (or the state is this repository's own file).
    Here,
    /// Another repository sharing the state declared it: not this one's to orphan or retire.
    Elsewhere,
    /// A shared state recorded it before origins were kept: nobody retires it automatically.
    Unknown,
}

/// What is kept of a notification orphaned for longer than the retention (`retention` in the
/// config): no recipients, only what it was and what became of it. Its key cannot be used again
/// unless a manifest says `reuseRetiredKey: true`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tombstone {
    pub(crate) channel: Channel,
    pub(crate) api: Api,
    /// `sha256:` of the canonical JSON of the content last sent or recorded (`{"type","value"}`).
    pub(crate) content_digest: String,
    /// When its first and last requests were sent (absent when it only ever recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) first_sent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_sent: Option<String>,
    pub(crate) orphaned_since: String,
    pub(crate) tombstoned_at: String,
    /// Requests made.
    pub(crate) requests: u32,
    /// Recipients who had (certainly) received a version of it.
    pub(crate) recipients: u64,
    /// Delivered and failed, as last reported by Kore.ai's status API.
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
}

impl Tombstone {
    fn of(n: &NotificationState, at: &str) -> Tombstone {
        let content = serde_json::to_string(&n.content).unwrap_or_default();
        Tombstone {
            channel: n.channel,
            api: n.api,
            content_digest: format!("sha256:{}", sha256_hex(content.as_bytes())),
            first_sent: n.requests.iter().map(|r| &r.sent_at).min().cloned(),
            last_sent: n.requests.iter().map(|r| &r.sent_at).max().cloned(),
            orphaned_since: n.orphaned_since.clone().unwrap_or_else(|| at.to_string()),
            tombstoned_at: at.to_string(),
            requests: n.requests.len() as u32,
            recipients: n.recipients.values().filter(|r| r.fp.is_some()).count() as u64,
            delivered: n.requests.iter().map(|r| u64::from(r.delivered)).sum(),
            failed: n.requests.iter().map(|r| u64::from(r.failed)).sum(),
        }
    }
}

impl NotificationState {
    /// Whose it is, for a repository of digest `origin` whose state is `shared` with others or not.
    pub(crate) fn declared_by(&self, origin: &str, shared: bool) -> Declared {
        // A state file lives inside one repository: everything in it is that repository's,
        // whatever a checkout at another path recorded.
        if !shared {
            return Declared::Here;
        }
        match &self.origin {
            Some(o) if o == origin => Declared::Here,
            Some(_) => Declared::Elsewhere,
            None => Declared::Unknown,
        }
    }

    /// Kore.ai's answer to request `req`: accepted moves its recipients' pending fingerprint to
    /// sent; rejected forgets it; unknown keeps it pending (held back until a decision).
    #[allow(clippy::ref_option)] // `clone_from` below reuses the existing allocations
    fn outcome(
        &mut self,
        req: u32,
        outcome: Outcome,
        request_id: &Option<String>,
        status: &Option<String>,
        error: &Option<String>,
    ) -> std::result::Result<(), ()> {
        let r = self.requests.get_mut(req as usize).ok_or(())?;
        r.outcome = outcome;
        r.request_id.clone_from(request_id);
        r.status.clone_from(status);
        r.error.clone_from(error);
        for rs in self.recipients.values_mut() {
            if rs.pending.as_ref().is_some_and(|p| p.req == req) {
                match outcome {
                    Outcome::Accepted => {
                        rs.fp = rs.pending.take().map(|p| p.fp);
                        rs.req = Some(req);
                        rs.delivery = None;
                    }
                    Outcome::Rejected | Outcome::NotSent => rs.pending = None,
                    _ => {}
                }
            }
        }
        self.recipients.retain(|_, r| r.fp.is_some() || r.pending.is_some());
        Ok(())
    }

    /// A job status from Kore.ai, with per-recipient outcomes for those it carried (their comments
    /// given by index into `comments`, or as text by journals of earlier versions). A comment index
    /// out of range is refused before anything changes.
    fn status(
        &mut self,
        req: u32,
        status: &str,
        (delivered, failed): (u32, u32),
        comments: &[String],
        recipients: &[(RecipientHash, String, Option<CommentRef>)],
    ) -> std::result::Result<(), u32> {
        fn comment<'a>(comments: &'a [String], c: Option<&'a CommentRef>) -> std::result::Result<Option<&'a str>, u32> {
            match c {
                None => Ok(None),
                Some(CommentRef::Text(t)) => Ok(Some(t.as_str())),
                Some(CommentRef::Index(i)) => comments.get(*i as usize).map(|t| Some(t.as_str())).ok_or(*i),
            }
        }
        for (_, _, c) in recipients {
            comment(comments, c.as_ref())?;
        }
        if let Some(r) = self.requests.get_mut(req as usize) {
            r.status = Some(status.to_string());
            r.delivered = delivered;
            r.failed = failed;
        }
        let mut table = std::mem::take(&mut self.deliveries);
        let mut replaced = false;
        {
            let mut interner = delivery::Interner::new(&mut table);
            for (h, st, c) in recipients {
                if let Some(rs) = self.recipients.get_mut(&h.normalized())
                    && rs.req == Some(req)
                {
                    let now = interner.index(st, comment(comments, c.as_ref())?);
                    replaced |= rs.delivery.is_some_and(|old| old != now);
                    rs.delivery = Some(now);
                }
            }
        }
        self.deliveries = table;
        if replaced {
            // Only a replaced delivery can leave a text unused.
            self.prune_deliveries();
        }
        Ok(())
    }

    /// What the status API last reported for a recipient of this notification.
    pub(crate) fn delivery(&self, r: &RecipientState) -> Option<&Delivery> {
        r.delivery.and_then(|i| self.deliveries.get(i as usize))
    }

    /// Drops delivery texts no recipient refers to any more (see `delivery::prune`).
    fn prune_deliveries(&mut self) {
        let mut used = vec![false; self.deliveries.len()];
        for i in self.recipients.values().filter_map(|r| r.delivery) {
            if let Some(u) = used.get_mut(i as usize) {
                *u = true;
            }
        }
        if let Some(map) = delivery::prune(&mut self.deliveries, &used) {
            for r in self.recipients.values_mut() {
                r.delivery = r.delivery.and_then(|i| map.get(i as usize).copied()).filter(|j| *j != u32::MAX);
            }
        }
    }

    /// Whether it is due for a tombstone at `now`: orphaned (recorded) for at least `retention`,
    /// every request settled (an unknown outcome still holds its recipients: never dropped).
    pub(crate) fn due_for_tombstone(&self, retention: std::time::Duration, now: time::OffsetDateTime) -> bool {
        !self.has_unknown()
            && self.recipients.values().all(|r| r.pending.is_none())
            && self.orphaned_since.as_deref().and_then(crate::rfc3339::parse).is_some_and(|t| t + retention <= now)
    }

    pub fn has_unknown(&self) -> bool {
        self.requests.iter().any(|r| r.outcome.is_unknown())
    }

    /// The requests whose outcome is unknown, with their index.
    pub(crate) fn unknown_requests(&self) -> impl Iterator<Item = (u32, &RequestState)> {
        self.requests.iter().enumerate().filter(|(_, r)| r.outcome.is_unknown()).map(|(i, r)| (i as u32, r))
    }

    /// Settles the unknown request `req` (every unknown request when `None`): as sent, its
    /// recipients are recorded as having received what it carried; as not sent, they are free to
    /// be sent again. Only that request's recipients are touched: another unknown request keeps
    /// holding its own.
    fn settle_unknown(&mut self, req: Option<u32>, to: Outcome, note: Option<&str>) {
        let mut settled = Vec::new();
        for (i, r) in self.requests.iter_mut().enumerate() {
            if r.outcome.is_unknown() && req.is_none_or(|q| q as usize == i) {
                r.outcome = to;
                if let Some(note) = note {
                    r.error = Some(note.into());
                }
                settled.push(i as u32);
            }
        }
        for rs in self.recipients.values_mut() {
            if let Some(p) = rs.pending.take_if(|p| settled.contains(&p.req))
                && to == Outcome::ResolvedSent
            {
                rs.fp = Some(p.fp);
                rs.req = Some(p.req);
                rs.delivery = None;
            }
        }
        self.recipients.retain(|_, r| r.fp.is_some() || r.pending.is_some());
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub(crate) format_version: u32,
    pub lineage: String,
    pub serial: u64,
    pub(crate) tool_version: String,
    pub notifications: BTreeMap<String, NotificationState>,
    /// Notifications retired after the retention, by key (see [`Tombstone`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) tombstones: BTreeMap<String, Tombstone>,
}

impl State {
    pub fn new() -> State {
        State {
            format_version: FORMAT_VERSION,
            lineage: random_id(),
            serial: 0,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            notifications: BTreeMap::new(),
            tombstones: BTreeMap::new(),
        }
    }

    /// Orphaned notifications due for a tombstone at `now`: orphaned for at least `retention`,
    /// every request settled (an unknown outcome still holds its recipients: never dropped).
    pub(crate) fn due_for_tombstone(
        &self,
        retention: std::time::Duration,
        now: time::OffsetDateTime,
        (origin, shared): (&str, bool),
    ) -> Vec<String> {
        self.notifications
            .iter()
            .filter(|(_, n)| n.declared_by(origin, shared) == Declared::Here && n.due_for_tombstone(retention, now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The claims a repository of digest `origin` declaring `keys` makes: one for each of them the
    /// state records under another origin, or none.
    pub(crate) fn claims<'k>(&self, origin: &str, keys: impl Iterator<Item = &'k str>) -> Vec<Entry> {
        keys.filter(|k| self.notifications.get(*k).is_some_and(|n| n.origin.as_deref() != Some(origin)))
            .map(|k| Entry::Claim { key: k.to_string(), origin: origin.to_string() })
            .collect()
    }

    /// Replays one journal entry onto the in-memory state. The one reducer for a running apply and
    /// for a journal read back, so the state after a crash is exactly the state the run had built.
    pub fn replay(&mut self, e: &Entry) -> std::result::Result<(), ReplayError> {
        match e {
            Entry::Begin { .. } => {}
            Entry::Intent { key, req, batch, channel, api, content, recipients, at } => {
                let n = self.entry(key, *channel, *api, content);
                if *req as usize != n.requests.len() {
                    return Err(ReplayError::RequestIndex { key: key.clone(), req: *req, expected: n.requests.len() });
                }
                let digest = crate::fingerprint::content_digest(*api, *channel, content);
                if n.contents.last().is_none_or(|m| m.digest != digest) {
                    n.contents.push(ContentMark { digest, from: *req });
                }
                n.requests.push(RequestState {
                    batch: batch.clone(),
                    outcome: Outcome::Pending,
                    request_id: None,
                    status: None,
                    recipients: recipients.len() as u32,
                    delivered: 0,
                    failed: 0,
                    sent_at: at.clone(),
                    error: None,
                });
                for (h, fp) in recipients {
                    n.recipients.entry(h.normalized()).or_default().pending =
                        Some(Pending { fp: fp.normalized(), req: *req });
                }
            }
            Entry::Outcome { key, req, outcome, request_id, status, error } => {
                let n = self.notifications.get_mut(key).ok_or_else(|| ReplayError::OutcomeForUnknown(key.clone()))?;
                n.outcome(*req, *outcome, request_id, status, error)
                    .map_err(|()| ReplayError::UnknownRequest { key: key.clone(), req: *req })?;
            }
            Entry::Record { key, channel, api, content, recipients, .. } => {
                let n = self.entry(key, *channel, *api, content);
                for (h, fp) in recipients {
                    n.recipients.entry(h.normalized()).or_default().fp = Some(fp.normalized());
                }
                n.content = content.clone();
            }
            Entry::Resolve { key, sent, req } => {
                let n = self.notifications.get_mut(key).ok_or_else(|| ReplayError::NoNotification(key.clone()))?;
                let to = if *sent { Outcome::ResolvedSent } else { Outcome::ResolvedNotSent };
                n.settle_unknown(*req, to, None);
            }
            Entry::Retry { key, req } => {
                if let Some(n) = self.notifications.get_mut(key) {
                    n.settle_unknown(*req, Outcome::ResolvedNotSent, Some("retried with --retry-unknown"));
                }
            }
            Entry::Status { key, req, status, delivered, failed, comments, recipients } => {
                let n = self.notifications.get_mut(key).ok_or_else(|| ReplayError::NoNotification(key.clone()))?;
                n.status(*req, status, (*delivered, *failed), comments, recipients)
                    .map_err(|index| ReplayError::CommentIndex { key: key.clone(), index })?;
            }
            Entry::Rename { from, to } => {
                if let Some(n) = self.notifications.remove(from) {
                    self.notifications.insert(to.clone(), n);
                }
            }
            Entry::Remove { key } => {
                self.notifications.remove(key);
            }
            Entry::Orphan { key, since } => {
                let n = self.notifications.get_mut(key).ok_or_else(|| ReplayError::NoNotification(key.clone()))?;
                n.orphaned_since.clone_from(since);
            }
            Entry::Retire { key, at } => {
                let n = self.notifications.get(key).ok_or_else(|| ReplayError::NothingToRetire(key.clone()))?;
                if n.has_unknown() || n.recipients.values().any(|r| r.pending.is_some()) {
                    return Err(ReplayError::RetireUnknown(key.clone()));
                }
                let t = Tombstone::of(n, at);
                self.notifications.remove(key);
                self.tombstones.insert(key.clone(), t);
            }
            Entry::Revive { key } => {
                self.tombstones.remove(key);
            }
            Entry::Override { key, channel, api, content, record } => {
                self.entry(key, *channel, *api, content).overrides.push(record.clone());
            }
            Entry::TestSend { key, channel, api, content, record } => {
                self.entry(key, *channel, *api, content).test_sends.push(record.clone());
            }
            Entry::Wave { key, channel, api, content, digest, wave, upto, from_req, at } => {
                let n = self.entry(key, *channel, *api, content);
                let r = n.rollout.get_or_insert_with(|| RolloutRecord {
                    digest: digest.clone(),
                    waves: Vec::new(),
                    halt: None,
                    judged_from: 0,
                    resumed: Vec::new(),
                });
                if r.digest != *digest {
                    // A changed content starts a rollout of its own.
                    *r = RolloutRecord {
                        digest: digest.clone(),
                        waves: Vec::new(),
                        halt: None,
                        judged_from: 0,
                        resumed: Vec::new(),
                    };
                }
                if r.waves.last().is_some_and(|w| w.wave >= *wave) {
                    return Err(ReplayError::WaveOrder { key: key.clone(), wave: *wave });
                }
                r.waves.push(WaveMark { wave: *wave, upto: *upto, from_req: *from_req, at: at.clone() });
            }
            Entry::Halt { key, digest, halt } => {
                let n = self.notifications.get_mut(key).ok_or_else(|| ReplayError::NoNotification(key.clone()))?;
                if let Some(r) = n.rollout.as_mut().filter(|r| r.digest == *digest) {
                    r.halt = Some(halt.clone());
                }
            }
            Entry::Resume { key, record } => {
                let n = self.notifications.get_mut(key).ok_or_else(|| ReplayError::NoNotification(key.clone()))?;
                if let Some(r) = n.rollout.as_mut()
                    && let Some(h) = r.halt.take()
                {
                    r.judged_from = h.wave + 1;
                    r.resumed.push(record.clone());
                }
            }
            Entry::Claim { key, origin } => {
                // A claim recorded for a notification whose every request was refused before it
                // was created is nothing to claim.
                if let Some(n) = self.notifications.get_mut(key) {
                    n.origin = Some(origin.clone());
                }
            }
        }
        Ok(())
    }

    /// A notification's state, created on its first intent or record.
    fn entry(&mut self, key: &str, channel: Channel, api: Api, content: &StoredContent) -> &mut NotificationState {
        self.notifications.entry(key.to_string()).or_insert_with(|| NotificationState {
            channel,
            api,
            content: content.clone(),
            requests: Vec::new(),
            deliveries: Vec::new(),
            recipients: BTreeMap::new(),
            orphaned_since: None,
            origin: None,
            contents: Vec::new(),
            overrides: Vec::new(),
            test_sends: Vec::new(),
            rollout: None,
        })
    }

    /// Says of every request still pending that a live run is sending it (`holder`): not unknown
    /// yet, and nothing to decide.
    pub(crate) fn mark_in_flight(&mut self, holder: &str) {
        for n in self.notifications.values_mut() {
            for r in &mut n.requests {
                if r.outcome == Outcome::Pending {
                    r.error = Some(format!("in flight: being sent by a run still going ({holder})"));
                }
            }
        }
    }

    /// Marks every request still pending as unknown (after replaying a journal of a dead run).
    pub(crate) fn settle_pending(&mut self) {
        for n in self.notifications.values_mut() {
            for r in &mut n.requests {
                if r.outcome == Outcome::Pending {
                    r.outcome = Outcome::Unknown;
                    r.error = Some(DEAD_RUN.into());
                }
            }
        }
    }

    /// Serialises the snapshot: pretty (one tab per level), sorted, one recipient per line,
    /// with a trailing checksum line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(1024);
        let mut ser =
            serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(b"\t"));
        if self.serialize(&mut ser).is_err() {
            buf.clear();
        }
        let mut body = String::from_utf8(buf).unwrap_or_default();
        // Replace the final "\n}" with the checksum line.
        body.truncate(body.len().saturating_sub(2));
        body.push(',');
        let digest = sha256_hex(body.as_bytes());
        body.push_str(CHECKSUM_PREFIX);
        body.push_str(&digest);
        body.push_str("\"\n}\n");
        body.into_bytes()
    }

    /// Parses and verifies a snapshot.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<State, SnapshotError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SnapshotError::NotUtf8)?;
        // The format version comes first, so a newer format is named as such, whatever else changed.
        let head: String = text.chars().take(200).collect();
        let version = head
            .split("\"formatVersion\":")
            .nth(1)
            .and_then(|t| t.trim_start().split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse::<u32>().ok())
            .ok_or(SnapshotError::NoFormatVersion)?;
        if version > FORMAT_VERSION {
            return Err(SnapshotError::Newer(version));
        }
        let prefix = if version < 2 { CHECKSUM_PREFIX_V1 } else { CHECKSUM_PREFIX };
        let idx = text.rfind(prefix).ok_or(SnapshotError::NoChecksum)?;
        let (body, tail) = text.split_at(idx);
        let expected = tail[prefix.len()..].split('"').next().unwrap_or_default();
        if sha256_hex(body.as_bytes()) != expected {
            return Err(SnapshotError::ChecksumMismatch);
        }
        // The trailing `checksum` field is ignored by State's deserializer.
        let mut state = serde_json::from_str::<State>(text).map_err(SnapshotError::Invalid)?;
        // A format-1 state is upgraded as it is read (its hashes truncated by the recipient
        // decoder); the next write is in the current format.
        state.format_version = FORMAT_VERSION;
        Ok(state)
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

#[cfg(test)]
mod tests;
