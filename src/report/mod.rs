//! `kore-notify report`: what became of what was sent, for the people who must answer "did it
//! arrive?". A pure function of the state, the manifests (they name the recipients: the state
//! holds only salted hashes) and the config's limits, rendered four ways: a self-contained HTML
//! page with SVG charts (`html.rs`), a CSV joined to the audience's columns (`csv.rs`), markdown
//! for a pull-request comment or a job summary (`markdown.rs`), and JSON (this model, serialised).
//!
//! Per notification: the funnel (planned → sent → accepted → delivered / failed / pending /
//! unknown / not sent), failure reasons grouped with counts and examples, totals per channel, and
//! two time series: send requests per minute against the configured limit, and outcomes by the
//! minute their request left. The state records when each request left, not when Kore.ai
//! delivered each message, so deliveries are placed at their request's minute.
//!
//! Every recipient is in exactly one of delivered, failed, pending, unknown and not sent, so the
//! funnel adds up: sent = delivered + failed + pending + unknown, accepted = delivered + failed +
//! pending, planned = sent + not sent.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::fingerprint::{RecipientHash, recipient_hash};
use crate::manifest::Notification;
use crate::state::{NotificationState, Outcome, State};

mod csv;
mod html;
mod markdown;
mod series;

pub(crate) use csv::csv;
pub(crate) use html::html;
pub(crate) use markdown::markdown;

/// The version of the JSON report (`--format json`).
pub(crate) const REPORT_FORMAT: u32 = 1;
/// Failure examples named per reason.
const EXAMPLES: usize = 3;

/// One recipient's outcome: each recipient is in exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    /// Kore.ai reported SUCCESS.
    Delivered,
    /// Kore.ai reported a failure (its comment says why).
    Failed,
    /// Accepted by Kore.ai; no per-recipient status reported yet (or one that is not final).
    Pending,
    /// In a request whose outcome is unknown: it may or may not have reached them.
    Unknown,
    /// Listed, but never sent (scheduled, expired, refused, left out as unreachable).
    NotSent,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Pending => "pending",
            Status::Unknown => "unknown",
            Status::NotSent => "not sent",
        }
    }
}

/// The funnel of one notification (or of a channel, or of everything).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Funnel {
    /// Listed in the manifest, plus those no longer listed whom a request carried.
    pub(crate) planned: usize,
    /// Carried by a request that left (delivered + failed + pending + unknown).
    pub(crate) sent: usize,
    /// Carried by a request Kore.ai accepted (delivered + failed + pending).
    pub(crate) accepted: usize,
    pub(crate) delivered: usize,
    pub(crate) failed: usize,
    pub(crate) pending: usize,
    pub(crate) unknown: usize,
    pub(crate) not_sent: usize,
    /// Of the failed, those whose reason is permanent (see `crate::unreachable`).
    pub(crate) unreachable: usize,
}

impl Funnel {
    fn count(&mut self, s: Status, permanent: bool) {
        self.planned += 1;
        match s {
            Status::Delivered => self.delivered += 1,
            Status::Failed => self.failed += 1,
            Status::Pending => self.pending += 1,
            Status::Unknown => self.unknown += 1,
            Status::NotSent => self.not_sent += 1,
        }
        self.unreachable += usize::from(permanent);
        self.accepted = self.delivered + self.failed + self.pending;
        self.sent = self.accepted + self.unknown;
    }

    fn add(&mut self, o: &Funnel) {
        self.planned += o.planned;
        self.sent += o.sent;
        self.accepted += o.accepted;
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.pending += o.pending;
        self.unknown += o.unknown;
        self.not_sent += o.not_sent;
        self.unreachable += o.unreachable;
    }

    /// The steps as (name, count), in order, for tables and charts.
    pub(crate) fn steps(&self) -> [(&'static str, usize); 8] {
        [
            ("planned", self.planned),
            ("sent", self.sent),
            ("accepted", self.accepted),
            ("delivered", self.delivered),
            ("failed", self.failed),
            ("pending", self.pending),
            ("unknown", self.unknown),
            ("not sent", self.not_sent),
        ]
    }
}

/// Recipients who failed for one reason.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FailureGroup {
    /// Kore.ai's comment, as reported (quotes around it removed).
    pub(crate) reason: String,
    pub(crate) count: usize,
    /// A permanent reason: these recipients are unreachable on this channel.
    pub(crate) permanent: bool,
    /// A few of them (masked with `--mask`).
    pub(crate) examples: Vec<String>,
}

/// One recipient, for the CSV.
#[derive(Clone, Debug)]
pub(crate) struct RecipientRow {
    /// As written in the manifest; `None` for a recipient no longer listed (only their hash is known).
    pub(crate) id: Option<String>,
    pub(crate) hash: RecipientHash,
    pub(crate) params: Vec<Option<String>>,
    pub(crate) custom_message: Option<String>,
    pub(crate) status: Status,
    /// Kore.ai's delivery status word (SUCCESS, FAILURE, …), when reported.
    pub(crate) delivery_status: Option<String>,
    pub(crate) comment: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) sent_at: Option<String>,
    pub(crate) unreachable: bool,
}

/// One notification's report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NotificationReport {
    pub(crate) key: String,
    pub(crate) channel: String,
    pub(crate) api: String,
    /// The manifest that declares it (`file:line`), when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<String>,
    /// Every request settled and every accepted one reported final by Kore.ai: nothing will change.
    pub(crate) terminal: bool,
    pub(crate) requests: usize,
    /// When its last request left (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_sent_at: Option<String>,
    pub(crate) funnel: Funnel,
    pub(crate) failures: Vec<FailureGroup>,
    /// Send requests per minute (UTC), gaps filled with zeros.
    pub(crate) requests_per_minute: Vec<series::Minute>,
    /// Outcomes by the minute their request left (UTC).
    pub(crate) deliveries_by_minute: Vec<series::Outcomes>,
    /// The audience's columns: the identity field, then parameters (and customMessage).
    #[serde(skip)]
    pub(crate) columns: Vec<String>,
    #[serde(skip)]
    pub(crate) recipients: Vec<RecipientRow>,
}

/// Totals of one channel.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChannelTotal {
    pub(crate) channel: String,
    pub(crate) notifications: usize,
    pub(crate) funnel: Funnel,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    pub(crate) format_version: u32,
    /// The bot the state is for.
    pub(crate) bot: String,
    /// The config's target this report covers (`None`: a config without `targets:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
    pub(crate) generated_at: String,
    /// The configured limit the requests-per-minute series is drawn against.
    pub(crate) per_minute: u32,
    pub(crate) per_hour: u32,
    /// Identities and parameter values masked (`--mask`).
    pub(crate) masked: bool,
    /// Every notification terminal.
    pub(crate) terminal: bool,
    pub(crate) totals: Funnel,
    pub(crate) channels: Vec<ChannelTotal>,
    pub(crate) notifications: Vec<NotificationReport>,
}

/// What a report is built from.
pub(crate) struct Inputs<'a> {
    pub(crate) state: &'a State,
    pub(crate) manifests: &'a [Notification],
    /// Only these keys (all when empty).
    pub(crate) keys: &'a [String],
    pub(crate) bot: &'a str,
    /// The target's name, for a config with `targets:`.
    pub(crate) target: Option<&'a str>,
    pub(crate) limits: (u32, u32),
    pub(crate) now: time::OffsetDateTime,
    /// The key masks are made with (`None`: identities in clear).
    pub(crate) mask: Option<&'a str>,
}

/// Builds the report. A key in `keys` that neither the state nor the manifests know is refused.
pub(crate) fn build(inp: &Inputs) -> Result<Report, String> {
    for k in inp.keys {
        if !inp.state.notifications.contains_key(k) && !inp.manifests.iter().any(|n| &n.key == k) {
            return Err(format!(
                "no notification `{}` in the state or the manifests; `kore-notify state list` shows the keys",
                crate::safe::line(k)
            ));
        }
    }
    let shown = |k: &str| inp.keys.is_empty() || inp.keys.iter().any(|x| x == k);
    let mut keys: Vec<&str> = inp.state.notifications.keys().map(String::as_str).filter(|k| shown(k)).collect();
    for n in inp.manifests.iter().filter(|n| shown(&n.key)) {
        if !inp.state.notifications.contains_key(&n.key)
            && !n.previous_keys.iter().any(|p| inp.state.notifications.contains_key(p))
        {
            keys.push(&n.key);
        }
    }
    keys.sort_unstable();
    keys.dedup();
    let notifications: Vec<NotificationReport> = keys.iter().map(|k| notification(inp, k)).collect();
    let mut channels: BTreeMap<&str, ChannelTotal> = BTreeMap::new();
    let mut totals = Funnel::default();
    for n in &notifications {
        totals.add(&n.funnel);
        let c = channels.entry(n.channel.as_str()).or_insert_with(|| ChannelTotal {
            channel: n.channel.clone(),
            notifications: 0,
            funnel: Funnel::default(),
        });
        c.notifications += 1;
        c.funnel.add(&n.funnel);
    }
    Ok(Report {
        format_version: REPORT_FORMAT,
        bot: inp.bot.to_string(),
        target: inp.target.map(str::to_string),
        generated_at: crate::rfc3339::to_second(inp.now),
        per_minute: inp.limits.0,
        per_hour: inp.limits.1,
        masked: inp.mask.is_some(),
        terminal: notifications.iter().all(|n| n.terminal),
        totals,
        channels: channels.into_values().collect(),
        notifications,
    })
}

/// The manifest that declares `key` (under that key, or as a previous key).
fn manifest_of<'m>(manifests: &'m [Notification], key: &str) -> Option<&'m Notification> {
    manifests
        .iter()
        .find(|n| n.key == key)
        .or_else(|| manifests.iter().find(|n| n.previous_keys.iter().any(|p| p == key)))
}

/// The audience's columns of a notification: the CSV audience's header row as written, else its
/// identity field; then any other parameter name (inline identities, sorted), and customMessage
/// when anyone has one.
fn columns(m: Option<&Notification>) -> Vec<String> {
    let Some(m) = m else { return vec!["identity".into()] };
    let mut cols = m.audience_columns.clone();
    if cols.is_empty() {
        cols.push(m.channel.identity_field().unwrap_or("identity").to_string());
    }
    let mut params: Vec<&str> = m.recipients.iter().flat_map(|r| r.parameters.keys()).collect();
    params.sort_unstable();
    params.dedup();
    for p in params {
        if !cols.iter().any(|c| c == p) {
            cols.push(p.to_string());
        }
    }
    if !cols.iter().any(|c| c == "customMessage") && m.recipients.iter().any(|r| r.custom_message.is_some()) {
        cols.push("customMessage".into());
    }
    cols
}

/// Whether nothing about `n` will change: no unknown or in-flight request, and every accepted one
/// reported final.
fn terminal(n: &NotificationState) -> bool {
    n.requests.iter().all(|r| match r.outcome {
        Outcome::Accepted | Outcome::ResolvedSent => {
            r.request_id.is_none() || r.status.as_deref().is_some_and(crate::kore::is_terminal_status)
        }
        o => !o.is_unknown(),
    })
}

fn notification(inp: &Inputs, key: &str) -> NotificationReport {
    let st = inp.state.notifications.get(key);
    let m = manifest_of(inp.manifests, key);
    let columns = columns(m);
    let mut rows = Vec::new();
    let mut listed: HashSet<RecipientHash> = HashSet::new();
    if let Some(m) = m {
        for r in &m.recipients {
            let h = recipient_hash(&inp.state.lineage, &r.id);
            listed.insert(h);
            let params = columns[1..]
                .iter()
                .filter(|c| c.as_str() != "customMessage")
                .map(|c| r.parameters.get(c).map(str::to_string))
                .collect();
            rows.push(row(st, h, Some(r.id.clone()), params, r.custom_message.clone()));
        }
    }
    if let Some(st) = st {
        for (h, _) in st.recipients.iter().filter(|(h, _)| !listed.contains(*h)) {
            rows.push(row(Some(st), *h, None, vec![None; columns.len().saturating_sub(1)], None));
        }
    }
    let mut funnel = Funnel::default();
    for r in &rows {
        funnel.count(r.status, r.unreachable);
    }
    let channel = st.map_or_else(|| m.map_or("", |m| m.channel.as_str()), |s| s.channel.as_str());
    let api = st.map_or_else(|| m.map_or("", |m| m.api.as_str()), |s| s.api.as_str());
    let requests = st.map_or(&[][..], |s| &s.requests[..]);
    NotificationReport {
        key: key.to_string(),
        channel: channel.to_string(),
        api: api.to_string(),
        source: m.map(|m| format!("{}:{}", m.source.file.display(), m.source.line)),
        terminal: st.is_none_or(terminal),
        requests: requests.len(),
        last_sent_at: requests.iter().map(|r| &r.sent_at).max().cloned(),
        funnel,
        failures: failures(&rows, inp.mask),
        requests_per_minute: series::requests_per_minute(requests),
        deliveries_by_minute: series::outcomes_by_minute(&rows),
        columns,
        recipients: rows,
    }
}

/// One recipient's row: their outcome from the state.
fn row(
    st: Option<&NotificationState>,
    h: RecipientHash,
    id: Option<String>,
    params: Vec<Option<String>>,
    custom_message: Option<String>,
) -> RecipientRow {
    let mut r = RecipientRow {
        id,
        hash: h,
        params,
        custom_message,
        status: Status::NotSent,
        delivery_status: None,
        comment: None,
        request_id: None,
        sent_at: None,
        unreachable: false,
    };
    let Some((st, rs)) = st.and_then(|s| s.recipients.get(&h).map(|rs| (s, rs))) else { return r };
    let pending = rs.pending.as_ref().and_then(|p| st.requests.get(p.req as usize).map(|q| (p.req, q)));
    let req = match pending {
        Some((i, q)) if q.outcome.is_unknown() => {
            r.status = if q.outcome == Outcome::Pending { Status::Pending } else { Status::Unknown };
            Some(i)
        }
        _ if rs.fp.is_some() => {
            let d = st.delivery(rs);
            r.status = match d {
                Some(d) if d.status == "SUCCESS" => Status::Delivered,
                Some(d) if d.failed() => Status::Failed,
                _ => Status::Pending,
            };
            r.unreachable = d.is_some_and(crate::unreachable::is_permanent);
            r.delivery_status = d.map(|d| d.status.clone());
            r.comment = d.and_then(|d| d.comment.as_deref()).map(|c| c.trim().trim_matches('\'').to_string());
            rs.req
        }
        _ => None,
    };
    if let Some(q) = req.and_then(|i| st.requests.get(i as usize)) {
        r.request_id.clone_from(&q.request_id);
        r.sent_at = Some(q.sent_at.clone());
    }
    r
}

/// Failures grouped by Kore.ai's comment, most frequent first, each with a few examples.
fn failures(rows: &[RecipientRow], mask: Option<&str>) -> Vec<FailureGroup> {
    let mut groups: BTreeMap<&str, FailureGroup> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status == Status::Failed) {
        let reason = r.comment.as_deref().unwrap_or("");
        let g = groups.entry(reason).or_insert_with(|| FailureGroup {
            reason: reason.to_string(),
            count: 0,
            permanent: r.unreachable,
            examples: vec![],
        });
        g.count += 1;
        if g.examples.len() < EXAMPLES {
            g.examples.push(who(r, mask));
        }
    }
    let mut out: Vec<FailureGroup> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    out
}

/// A recipient as shown: as written, masked, or (no longer listed) by their hash.
pub(crate) fn who(r: &RecipientRow, mask: Option<&str>) -> String {
    match (&r.id, mask) {
        (Some(id), Some(key)) => crate::render::mask(id, key),
        (Some(id), None) => id.clone(),
        (None, _) => format!("(removed recipient {})", &r.hash.to_string()[..8]),
    }
}

/// A parameter value as shown: as written, or masked.
pub(crate) fn value(v: &str, mask: Option<&str>) -> String {
    match mask {
        Some(key) => crate::render::mask(v, key),
        None => v.to_string(),
    }
}
