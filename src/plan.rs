//! The plan: a pure function of (manifests, state, tool version, clock). No network, no
//! credentials. Change detection is per recipient, by fingerprint (see `fingerprint.rs`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::fingerprint::{H16, notification_digest, recipient_fingerprint, recipient_hash, sha256_hex};
use crate::manifest::{Notification, OnChange};
use crate::state::{NotificationState, State, StoredContent};

pub const PLAN_FORMAT: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// New key: every recipient.
    Send,
    /// Some recipients' fingerprints changed (possibly with added recipients too).
    Resend,
    /// Only recipients never sent before.
    SendToAdded,
    /// `onChange: ignore`: changed recipients are recorded without sending.
    Record,
    NoOp,
    /// Outside its window: before `notBefore`.
    Scheduled,
    /// Outside its window: after `notAfter`.
    Expired,
    /// An earlier send has an unknown outcome and needs a decision.
    Blocked,
    /// In state, no longer in manifests.
    Orphaned,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Resend => "resend",
            Action::SendToAdded => "send to added",
            Action::Record => "record",
            Action::NoOp => "no-op",
            Action::Scheduled => "scheduled",
            Action::Expired => "expired",
            Action::Blocked => "blocked",
            Action::Orphaned => "orphaned",
        }
    }
    /// Whether this action messages people.
    pub fn sends(self) -> bool {
        matches!(self, Action::Send | Action::Resend | Action::SendToAdded)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Never sent to this person.
    New,
    /// Sent before with a different fingerprint.
    Changed,
    /// Retrying an unknown outcome (`--retry-unknown`).
    Retry,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRecipient {
    pub id: String,
    pub change: Change,
    pub fingerprint: H16,
    #[serde(skip)]
    pub index: usize,
    #[serde(skip, default = "zero_hash")]
    pub hash: H16,
}

fn zero_hash() -> H16 {
    H16([0; 16])
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub total: usize,
    pub new: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub unknown: usize,
    /// In state but no longer listed: reported, never "unsent".
    pub removed: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedNotification {
    pub key: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// Why the action was chosen, in words.
    pub reason: String,
    /// Variables from the environment that this notification's text uses, with their values.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub variables: std::collections::BTreeMap<String, String>,
    pub recipients: Counts,
    /// Recipients who would receive a message now.
    pub sends: Vec<PlannedRecipient>,
    /// Recipients whose new fingerprint is recorded without sending (`onChange: ignore`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<PlannedRecipient>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<StoredContent>,
    /// The content last sent, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_content: Option<StoredContent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// Whether unknown requests of this notification are retried (`--retry-unknown`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry_unknown: bool,
    /// For personalised messages (parameters or a custom message): the text the first recipients
    /// of `sends` would read, placeholders filled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preview: Vec<Preview>,
}

/// One recipient's message as they would read it.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Preview {
    pub id: String,
    pub message: String,
}

/// How many recipients' messages a plan previews per notification.
pub const PREVIEWS: usize = 3;

fn previews(n: &Notification, sends: &[PlannedRecipient]) -> Vec<Preview> {
    let Some(template) = n.content.value.as_str() else { return Vec::new() };
    sends
        .iter()
        .filter_map(|s| n.recipients.get(s.index))
        .filter(|r| r.custom_message.is_some() || !r.parameters.is_empty())
        .take(PREVIEWS)
        .map(|r| Preview {
            id: r.id.clone(),
            message: crate::manifest::render_placeholders(
                r.custom_message.as_deref().unwrap_or(template),
                &r.parameters,
            ),
        })
        .collect()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub notifications_to_send: usize,
    pub recipients_to_send: usize,
    pub by_action: std::collections::BTreeMap<String, usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// Lineage of the state the plan was made against ("" when there was no state).
    pub state_lineage: String,
    pub state_serial: u64,
    /// Digest of the state snapshot and journal bytes.
    pub state_digest: String,
    /// Digest of every resolved notification (manifests, valueFiles, CSV audiences).
    pub manifests_digest: String,
    pub target: String,
    pub tool_version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub format_version: u32,
    pub binding: Binding,
    pub summary: Summary,
    pub notifications: Vec<PlannedNotification>,
}

pub struct Inputs<'a> {
    pub target: &'a str,
    pub notifications: &'a [Notification],
    pub state: &'a State,
    pub state_exists: bool,
    pub state_digest: &'a str,
    pub now: time::OffsetDateTime,
    pub retry_unknown: bool,
}

fn rfc3339(t: &Option<time::OffsetDateTime>) -> Option<String> {
    t.as_ref().and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
}

/// Digest of one resolved notification: anything that changes what would be sent changes it.
/// Combined (sorted) over all notifications into the plan's `manifestsDigest`.
fn notification_part_digest(n: &Notification, nd: &str, fingerprints: &[H16]) -> String {
    let mut h = sha2::Sha256::default();
    sha2::Digest::update(&mut h, n.key.as_bytes());
    sha2::Digest::update(&mut h, nd.as_bytes());
    for fp in fingerprints {
        sha2::Digest::update(&mut h, fp.0);
    }
    let meta = serde_json::json!([
        rfc3339(&n.not_before),
        rfc3339(&n.not_after),
        n.on_change == OnChange::Ignore,
        n.previous_keys
    ]);
    sha2::Digest::update(&mut h, meta.to_string().as_bytes());
    crate::fingerprint::to_hex(&sha2::Digest::finalize(h))
}

pub fn compute(inp: &Inputs) -> Plan {
    let state = inp.state;
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(inp.notifications.len());
    let mut parts = Vec::with_capacity(inp.notifications.len());
    let mut lookups = Vec::with_capacity(inp.notifications.len());
    for n in inp.notifications {
        let (entry, renamed_from) = match state.notifications.get(&n.key) {
            Some(e) => (Some(e), None),
            None => n
                .previous_keys
                .iter()
                .find_map(|p| state.notifications.get(p).map(|e| (Some(e), Some(p.clone()))))
                .unwrap_or((None, None)),
        };
        claimed.insert(&n.key);
        if let Some(p) = n.previous_keys.iter().find(|p| Some(*p) == renamed_from.as_ref()) {
            claimed.insert(p);
        }
        lookups.push((n, entry, renamed_from));
    }
    // Fingerprinting a million recipients is the expensive part: spread it over the cores.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8);
    let chunk = lookups.len().div_ceil(threads).max(1);
    let planned: Vec<Vec<(PlannedNotification, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = lookups
            .chunks_mut(chunk)
            .map(|part| {
                s.spawn(move || part.iter_mut().map(|(n, e, r)| plan_one(inp, n, *e, r.take())).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    for (p, digest) in planned.into_iter().flatten() {
        out.push(p);
        parts.push(digest);
    }
    parts.sort();
    for (key, e) in &state.notifications {
        if claimed.contains(key.as_str()) {
            continue;
        }
        out.push(PlannedNotification {
            key: key.clone(),
            action: Action::Orphaned,
            channel: Some(e.channel.as_str().into()),
            api: Some(e.api.as_str().into()),
            source: None,
            description: None,
            renamed_from: None,
            reason: "in state but no longer in the manifests; nothing is sent (a sent message cannot be recalled); `kore-notify state rm` forgets it".into(),
            variables: Default::default(),
            recipients: Counts { removed: e.recipients.len(), ..Counts::default() },
            sends: vec![],
            records: vec![],
            content: None,
            previous_content: Some(e.content.clone()),
            not_before: None,
            not_after: None,
            retry_unknown: false,
            preview: vec![],
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    let mut summary = Summary::default();
    for p in &out {
        *summary.by_action.entry(p.action.as_str().to_string()).or_default() += 1;
        if p.action.sends() {
            summary.notifications_to_send += 1;
            summary.recipients_to_send += p.sends.len();
        }
    }
    Plan {
        format_version: PLAN_FORMAT,
        binding: Binding {
            state_lineage: if inp.state_exists { state.lineage.clone() } else { String::new() },
            state_serial: if inp.state_exists { state.serial } else { 0 },
            state_digest: inp.state_digest.to_string(),
            manifests_digest: sha256_hex(parts.join("\n").as_bytes()),
            target: inp.target.to_string(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
        },
        summary,
        notifications: out,
    }
}

fn plan_one(
    inp: &Inputs,
    n: &Notification,
    entry: Option<&NotificationState>,
    renamed_from: Option<String>,
) -> (PlannedNotification, String) {
    let nd = notification_digest(inp.target, n);
    let lineage = &inp.state.lineage;
    let blocked = entry.is_some_and(|e| e.has_unknown()) && !inp.retry_unknown;
    let retry = entry.is_some_and(|e| e.has_unknown()) && inp.retry_unknown;
    let mut counts = Counts { total: n.recipients.len(), ..Counts::default() };
    let mut sends = Vec::new();
    let mut records = Vec::new();
    let mut present: HashSet<H16> = HashSet::new();
    let mut fingerprints = Vec::with_capacity(n.recipients.len());
    for (index, r) in n.recipients.iter().enumerate() {
        let fp = recipient_fingerprint(&nd, r);
        fingerprints.push(fp);
        let hash = recipient_hash(lineage, &r.id);
        let rs = entry.and_then(|e| e.recipients.get(&hash));
        if entry.is_some() {
            present.insert(hash);
        }
        let pending = rs.and_then(|s| s.pending.as_ref());
        let confirmed = rs.and_then(|s| s.fp);
        if pending.is_some() {
            counts.unknown += 1;
            if !retry {
                continue;
            }
        }
        let change = match confirmed {
            None if pending.is_some() => Change::Retry,
            None => Change::New,
            Some(old) if old != fp => Change::Changed,
            Some(_) => {
                counts.unchanged += 1;
                continue;
            }
        };
        let pr = PlannedRecipient { id: r.id.clone(), change, fingerprint: fp, index, hash };
        match change {
            Change::New => {
                counts.new += 1;
                sends.push(pr);
            }
            Change::Retry => sends.push(pr),
            Change::Changed => {
                counts.changed += 1;
                if n.on_change == OnChange::Ignore {
                    records.push(pr);
                } else {
                    sends.push(pr);
                }
            }
        }
    }
    if let Some(e) = entry {
        counts.removed = e.recipients.keys().filter(|h| !present.contains(*h)).count();
    }
    let content = StoredContent::from(&n.content);
    let previous_content = entry.map(|e| e.content.clone()).filter(|c| *c != content);
    let mut action;
    let mut reason;
    if entry.is_none() {
        action = Action::Send;
        reason = format!("new notification: {} recipient(s)", sends.len());
    } else if counts.changed > 0 && n.on_change == OnChange::Resend {
        action = Action::Resend;
        reason = format!("{} recipient(s) would receive different content", counts.changed);
        if counts.new > 0 {
            reason.push_str(&format!(", {} added", counts.new));
        }
    } else if !sends.is_empty() {
        action = Action::SendToAdded;
        reason = format!("{} recipient(s) not sent before", sends.len());
        if !records.is_empty() {
            reason.push_str(&format!(
                "; {} changed recipient(s) recorded without sending (onChange: ignore)",
                records.len()
            ));
        }
    } else if !records.is_empty() {
        action = Action::Record;
        reason = format!("{} changed recipient(s) recorded without sending (onChange: ignore)", records.len());
    } else {
        action = Action::NoOp;
        reason = "nothing changed".into();
    }
    let retried = sends.iter().filter(|r| r.change == Change::Retry).count();
    if retried > 0 {
        action = Action::Resend;
        reason = format!(
            "{retried} recipient(s) of requests with an unknown outcome are sent again (--retry-unknown): they may receive it twice"
        );
    }
    if blocked {
        action = Action::Blocked;
        reason = format!(
            "{} recipient(s) are in a request with an unknown outcome; decide with `kore-notify apply --retry-unknown` or `kore-notify state resolve {} --sent|--not-sent`",
            counts.unknown, n.key
        );
        sends.clear();
        records.clear();
    } else if action.sends() || action == Action::Record {
        if let Some(nb) = n.not_before.filter(|t| inp.now < *t) {
            action = Action::Scheduled;
            reason = format!(
                "{} recipient(s) waiting for notBefore {}",
                sends.len(),
                rfc3339(&Some(nb)).unwrap_or_default()
            );
            sends.clear();
            records.clear();
        } else if let Some(na) = n.not_after.filter(|t| inp.now > *t) {
            action = Action::Expired;
            reason = format!(
                "{} recipient(s) not sent: notAfter {} has passed",
                sends.len(),
                rfc3339(&Some(na)).unwrap_or_default()
            );
            sends.clear();
            records.clear();
        }
    }
    let digest = notification_part_digest(n, &nd, &fingerprints);
    let preview = previews(n, &sends);
    let planned = PlannedNotification {
        key: n.key.clone(),
        action,
        channel: Some(n.channel.as_str().into()),
        api: Some(n.api.as_str().into()),
        source: Some(format!("{}:{}", n.source.file.display(), n.source.line)),
        description: n.description.clone(),
        renamed_from,
        reason,
        variables: n.variables.iter().cloned().collect(),
        recipients: counts,
        sends,
        records,
        content: Some(content),
        previous_content,
        not_before: rfc3339(&n.not_before),
        not_after: rfc3339(&n.not_after),
        retry_unknown: retry && action.sends(),
        preview,
    };
    (planned, digest)
}
