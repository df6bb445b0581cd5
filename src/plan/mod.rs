//! The plan: a pure function of (manifests, state, tool version, clock). No network, no
//! credentials. Change detection is per recipient, by fingerprint (see `fingerprint.rs`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::fingerprint::{
    Fingerprint, RecipientHash, notification_digest, recipient_fingerprint, recipient_hash, sha256_hex,
};
use crate::manifest::{Notification, OnChange};
use crate::state::{Declared, NotificationState, State, StoredContent};

mod audience;
mod compute;
mod file;
mod forecast;
mod promotion;
mod retired;
mod retry;
mod unreachable;

pub(crate) use audience::{AudienceNote, for_target as audience_for_target};
pub use compute::compute;
pub(crate) use compute::{TargetInputs, for_target};
pub(crate) use file::check_against;
pub(crate) use forecast::duration;
pub use forecast::{Forecast, ForecastLine};
pub(crate) use promotion::{PromotionNote, Sources as PromotionSources, gate as promotion_gate};
pub(crate) use retired::check_retired;
pub(crate) use retry::{Retry, check_retry};

/// Format 2: one section per target (`targets`), the aggregate `summary` beside them.
pub(crate) const PLAN_FORMAT: u32 = 2;

/// Largest plan file read (`show`, `apply PLANFILE`): a plan of a million recipients is about
/// 150 MB.
pub(crate) const MAX_PLAN_BYTES: u64 = 256 * 1024 * 1024;

/// Reads a plan file (`show`, `apply PLANFILE`): its size known before reading (over the limit is
/// refused unread), read in chunks and refused at the first one that is not text, then parsed from
/// that one buffer (no copy of the file is made on the way).
pub(crate) fn read_file(path: &std::path::Path) -> crate::error::Result<PlanSet> {
    let stale = |message: String| crate::error::Error::StalePlan { path: path.to_path_buf(), message };
    let kind = crate::text::Kind::PlanFile;
    let text = crate::files::read_named_text(path, MAX_PLAN_BYTES).map_err(|e| match e {
        crate::files::FileError::NotText(e) => stale(format!("{}\n  help: {}", kind.message(&e), kind.fix())),
        e => stale(format!("cannot read: {e}")),
    })?;
    let not_plan = "not a kore-notify plan file (`kore-notify plan --out FILE` writes one)";
    if let Some(line) = crate::text::long_json_string(&text, MAX_PLAN_STRING) {
        return Err(stale(format!("{not_plan}: line {line} has a string of more than {MAX_PLAN_STRING} bytes")));
    }
    let _ = not_plan;
    // Exactly as `plan --out` wrote it, its digest checked (file.rs).
    file::parse(text.as_bytes()).map_err(|e| match e {
        file::PlanFileError::NotAPlan(e) => stale(format!(
            "not a kore-notify plan file (`kore-notify plan --out FILE` writes one): {}",
            crate::text::json_error(&e)
        )),
        e => stale(e.to_string()),
    })
}

/// Longest string in a plan file kore-notify writes: a message comes from a manifest of at most
/// 16 MiB, and JSON escaping at most doubles it (control characters, which escape longer, are
/// refused in messages).
const MAX_PLAN_STRING: usize = 32 * 1024 * 1024;

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
    /// Nobody to send is inside their delivery window now: an apply sends each once their
    /// window opens (`deliveryWindow` says when).
    Waiting,
    /// Only recipients whose delivery failed are sent again (`--retry-failed`).
    RetryFailed,
    /// Nothing can be sent now: every recipient left is held back by a request with an unknown
    /// outcome, which needs a decision.
    Blocked,
    /// In state, no longer in manifests.
    Orphaned,
    /// The target promotes from another one, where this content was not yet accepted (or
    /// delivered): nothing is sent until it is, or until `apply --skip-promotion`.
    AwaitingPromotion,
    /// Canary waves: a wave is out and the next waits for its gate (statuses, `observe`).
    Observing,
    /// Canary waves: a wave's failure rate went over the limit; nothing more is sent until
    /// `state resume` or a content change.
    Halted,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Resend => "resend",
            Action::SendToAdded => "send to added",
            Action::Record => "record",
            Action::NoOp => "no-op",
            Action::Scheduled => "scheduled",
            Action::Expired => "expired",
            Action::Waiting => "waiting",
            Action::RetryFailed => "retry failed",
            Action::Blocked => "blocked",
            Action::Orphaned => "orphaned",
            Action::AwaitingPromotion => "awaiting promotion",
            Action::Observing => "observing",
            Action::Halted => "halted",
        }
    }
    /// Whether this action messages people.
    pub fn sends(self) -> bool {
        matches!(self, Action::Send | Action::Resend | Action::SendToAdded | Action::RetryFailed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Change {
    /// Never sent to this person.
    New,
    /// Sent before with a different fingerprint.
    Changed,
    /// Retrying an unknown outcome (`--retry-unknown`).
    Retry,
    /// Sent before with the same content, but Kore.ai reported the delivery as failed
    /// (`--retry-failed`).
    RetryFailed,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRecipient {
    pub(crate) id: String,
    pub(crate) change: Change,
    pub fingerprint: Fingerprint,
    #[serde(skip)]
    pub(crate) index: usize,
    #[serde(skip, default = "zero_hash")]
    pub hash: RecipientHash,
    /// With `plan --compare-to`: what changed for this recipient since the base version of the
    /// manifests (parameters, custom message), before → after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) changes: Vec<FieldChange>,
    /// Sent although their last delivery on this channel failed for a permanent reason
    /// (`skipUnreachable: true` would leave them out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) unreachable: bool,
}

/// One recipient-level field, before → after (`None`: absent on that side).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct FieldChange {
    /// `parameters.NAME` or `customMessage`.
    pub(crate) field: String,
    pub(crate) before: Option<String>,
    pub(crate) after: Option<String>,
}

/// The recipient-level differences between two versions of one recipient.
pub(crate) fn recipient_changes(
    before: &crate::manifest::Recipient,
    after: &crate::manifest::Recipient,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if before.custom_message != after.custom_message {
        out.push(FieldChange {
            field: "customMessage".into(),
            before: before.custom_message.clone(),
            after: after.custom_message.clone(),
        });
    }
    let mut names: Vec<&str> = before.parameters.keys().chain(after.parameters.keys()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let (b, a) = (before.parameters.get(name), after.parameters.get(name));
        if b != a {
            out.push(FieldChange {
                field: format!("parameters.{name}"),
                before: b.map(String::from),
                after: a.map(String::from),
            });
        }
    }
    out
}

/// `plan --compare-to`: annotates every recipient who would receive a second message with what
/// changed for them since `base` (the manifests of the base branch).
pub(crate) fn annotate_changes(plan: &mut Plan, now: &[Notification], base: &[Notification]) {
    let base_by_key: std::collections::HashMap<&str, &Notification> =
        base.iter().map(|n| (n.key.as_str(), n)).collect();
    let now_by_key: std::collections::HashMap<&str, &Notification> = now.iter().map(|n| (n.key.as_str(), n)).collect();
    for p in &mut plan.notifications {
        let base =
            base_by_key.get(p.key.as_str()).or_else(|| p.renamed_from.as_deref().and_then(|k| base_by_key.get(k)));
        // Recipients the base version listed and this one does not (all of them, for an orphan).
        if let Some(b) = base {
            let kept: std::collections::HashSet<&str> = now_by_key
                .get(p.key.as_str())
                .map(|n| n.recipients.iter().map(|r| r.id.as_str()).collect())
                .unwrap_or_default();
            p.removed_ids =
                b.recipients.iter().filter(|r| !kept.contains(r.id.as_str())).map(|r| r.id.clone()).collect();
        }
        let (Some(n), Some(b)) = (now_by_key.get(p.key.as_str()), base) else {
            continue;
        };
        let before: std::collections::HashMap<&str, &crate::manifest::Recipient> =
            b.recipients.iter().map(|r| (r.id.as_str(), r)).collect();
        for r in p.sends.iter_mut().filter(|r| r.change == Change::Changed) {
            if let (Some(old), Some(new)) = (before.get(r.id.as_str()), n.recipients.get(r.index)) {
                r.changes = recipient_changes(old, new);
            }
        }
    }
}

fn zero_hash() -> RecipientHash {
    RecipientHash([0; 16])
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Counts {
    pub(crate) total: usize,
    pub(crate) new: usize,
    pub(crate) changed: usize,
    pub(crate) unchanged: usize,
    /// Held back: in a request whose outcome is unknown, until a decision.
    pub(crate) unknown: usize,
    /// In state but no longer listed: reported, never "unsent".
    pub(crate) removed: usize,
    /// Sent with this content, but Kore.ai reported the delivery as failed (`--retry-failed`
    /// sends to them again).
    #[serde(default)]
    pub(crate) failed: usize,
    /// Would be sent, but not now: the notification is scheduled (before `notBefore`), or they
    /// are outside their delivery window. They go out with the first apply inside the window.
    #[serde(default)]
    pub(crate) waiting: usize,
    /// In a request another run is sending right now (it holds the state's lock): neither sent
    /// again nor unknown; its answer will tell.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) in_flight: usize,
    /// Listed recipients whose last delivery on this channel failed for a permanent reason
    /// ("Identity is not associated with the channel"), in this or another notification.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) unreachable: usize,
    /// Of them, those left out of this plan (`skipUnreachable: true`) who would have been sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) unreachable_skipped: usize,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A request whose outcome is unknown: it may or may not have reached its recipients. Its own
/// recipients are held back until a decision; nobody else is.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnknownRequest {
    /// The request's index in the notification (`KEY#INDEX` in `--retry-unknown`, the REQUEST of
    /// `state resolve`).
    pub(crate) index: u32,
    /// The batch id journaled with the request.
    pub(crate) batch: String,
    /// Kore.ai's job id, when an answer carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<String>,
    pub(crate) sent_at: String,
    /// Why the outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Recipients the request carried.
    pub(crate) recipients: u32,
    /// Of them, those still in the manifests: held back until a decision.
    pub(crate) held: usize,
    /// Sent again in this plan (`--retry-unknown`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) retried: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedNotification {
    pub key: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) api: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) renamed_from: Option<String>,
    /// Recipients of the base version (`--compare-to`) no longer in the manifest, as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) removed_ids: Vec<String>,
    /// Why the action was chosen, in words.
    pub(crate) reason: String,
    /// Variables from the environment that this notification's text uses, with their values.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) variables: std::collections::BTreeMap<String, String>,
    pub(crate) recipients: Counts,
    /// Recipients who would receive a message now.
    pub sends: Vec<PlannedRecipient>,
    /// Whether unreachable recipients are left out (`skipUnreachable`, from the manifest or the
    /// target's default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) skip_unreachable: bool,
    /// Recipients left out as unreachable (`skipUnreachable: true`), as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) skipped_unreachable: Vec<String>,
    /// Recipients whose new fingerprint is recorded without sending (`onChange: ignore`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) records: Vec<PlannedRecipient>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<StoredContent>,
    /// The content last sent, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous_content: Option<StoredContent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) not_after: Option<String>,
    /// With a `deliveryWindow`: who is sent now, and when the others' windows open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delivery_window: Option<crate::window::plan::WindowPlan>,
    /// With a `rollout`: its waves, which one this apply sends, the gate's state, a halt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rollout: Option<crate::rollout::plan::RolloutPlan>,
    /// Whether unknown requests of this notification are retried (`--retry-unknown`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) retry_unknown: bool,
    /// Requests with an unknown outcome, each holding back its own recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) unknown_requests: Vec<UnknownRequest>,
    /// For personalised messages (parameters or a custom message): the text the first recipients
    /// of `sends` would read, placeholders filled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) preview: Vec<Preview>,
    /// Orphaned: since when, as recorded by `apply` (absent: the next apply records it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) orphaned_since: Option<String>,
    /// Orphaned, with a `retention` in the config: when `apply` replaces it by a tombstone
    /// (absent while a request has an unknown outcome: it is never retired with one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retires_at: Option<String>,
    /// The target's audience rule, and what it did to this notification's recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audience: Option<AudienceNote>,
    /// The target's promotion gate: the evidence found on the other target, or what is awaited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) promotion: Option<PromotionNote>,
    /// The policy's verdict: every rule this notification triggered, and why (absent: no rule
    /// matched, or it sends nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<crate::policy::Verdict>,
    /// The latest send of it made despite the policy (`apply --override-policy`), as the state
    /// records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_override: Option<crate::state::Override>,
    /// What the target's test ledger proves of its current content at the plan's time
    /// (`kore-notify test-send`): absent when it was never test-sent, or has nothing left to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) test_send: Option<crate::testsend::Evidence>,
}

/// One recipient's message as they would read it.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct Preview {
    pub(crate) id: String,
    pub(crate) message: String,
    /// With `v2TemplateAsCustomMessage: false`, for a recipient with parameters and no
    /// customMessage: what they read if Kore.ai applies parameters only to a customMessage (the
    /// template as written).
    #[serde(rename = "ifParametersFillOnlyCustomMessage", default, skip_serializing_if = "Option::is_none")]
    pub(crate) if_parameters_fill_only_custom_message: Option<String>,
}

/// With `v2TemplateAsCustomMessage: false`, the preview of a v2 recipient with parameters and no
/// customMessage depends on how Kore.ai reads `parameters`: shows both texts.
pub(crate) fn mark_ambiguous_previews(plan: &mut Plan, notifications: &[Notification]) {
    let by_key: std::collections::HashMap<&str, &Notification> =
        notifications.iter().map(|n| (n.key.as_str(), n)).collect();
    for p in &mut plan.notifications {
        let Some(n) = by_key.get(p.key.as_str()).filter(|n| n.api == crate::manifest::Api::V2) else {
            continue;
        };
        let Some(template) = n.content.value.as_str() else { continue };
        for pv in &mut p.preview {
            let bare =
                n.recipients.iter().any(|r| r.id == pv.id && r.custom_message.is_none() && !r.parameters.is_empty());
            if bare && pv.message != template {
                pv.if_parameters_fill_only_custom_message = Some(template.to_string());
            }
        }
    }
}

/// How many recipients' messages a plan previews per notification.
pub(crate) const PREVIEWS: usize = 3;

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
            if_parameters_fill_only_custom_message: None,
        })
        .collect()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub(crate) notifications_to_send: usize,
    pub recipients_to_send: usize,
    pub(crate) by_action: std::collections::BTreeMap<String, usize>,
    /// Recipients held back by requests with an unknown outcome (a decision is needed).
    #[serde(default)]
    pub(crate) recipients_held: usize,
    /// Requests with an unknown outcome not retried by this plan.
    #[serde(default)]
    pub(crate) unknown_requests: usize,
}

impl Summary {
    /// The summary of planned notifications.
    pub(crate) fn of(notifications: &[PlannedNotification]) -> Summary {
        let mut summary = Summary::default();
        for p in notifications {
            *summary.by_action.entry(p.action.as_str().to_string()).or_default() += 1;
            if p.action.sends() {
                summary.notifications_to_send += 1;
                summary.recipients_to_send += p.sends.len();
            }
            summary.recipients_held += p.recipients.unknown;
            summary.unknown_requests += p.unknown_requests.iter().filter(|r| !r.retried).count();
        }
        summary
    }

    /// The sum of several summaries (the targets of one plan).
    pub(crate) fn total<'a>(parts: impl IntoIterator<Item = &'a Summary>) -> Summary {
        let mut out = Summary::default();
        for s in parts {
            out.notifications_to_send += s.notifications_to_send;
            out.recipients_to_send += s.recipients_to_send;
            out.recipients_held += s.recipients_held;
            out.unknown_requests += s.unknown_requests;
            for (k, v) in &s.by_action {
                *out.by_action.entry(k.clone()).or_default() += v;
            }
        }
        out
    }

    /// Whether applying this plan would do something or a decision is needed (`plan
    /// --detailed-exitcode` exits 2): sends, recorded changes, renames, or recipients held back
    /// by unknown requests.
    pub(crate) fn needs_action(&self, plan: &[PlannedNotification]) -> bool {
        self.recipients_to_send > 0
            || self.recipients_held > 0
            || plan.iter().any(|n| {
                !n.records.is_empty()
                    || n.renamed_from.is_some()
                    || n.action == Action::AwaitingPromotion
                    || n.rollout.as_ref().is_some_and(|r| r.halt.is_some() && !r.halt_recorded)
            })
    }
}

/// Which notifications (and requests) a `--retry-unknown` / `--retry-failed` option targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Select {
    /// The option was not given.
    #[default]
    Nothing,
    /// Given without a value, or as `all`: everything.
    All,
    /// `KEY` or `KEY#REQ`, possibly several.
    Some(Vec<(String, Option<u32>)>),
}

impl Select {
    /// From the option's values (`None` when not given, an empty list when given bare), checked
    /// by [`crate::args::selection`]: an empty or blank value is refused, never "everything".
    /// Also says whether "everything" was spelt `all` (see [`check_retry`]).
    pub(crate) fn parse(values: Option<&[String]>, option: &str) -> std::result::Result<(Select, bool), String> {
        Ok(match crate::args::selection(option, values)? {
            crate::args::Selection::Nothing => (Select::Nothing, false),
            crate::args::Selection::All { said_all } => (Select::All, said_all),
            crate::args::Selection::Some(list) => (Select::Some(list), false),
        })
    }

    /// Whether request `req` of `key` (any request when `None`) is selected.
    pub(crate) fn includes(&self, key: &str, req: Option<u32>) -> bool {
        match self {
            Select::Nothing => false,
            Select::All => true,
            Select::Some(list) => list.iter().any(|(k, r)| k == key && (r.is_none() || req.is_none() || *r == req)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Binding {
    /// Lineage of the state the plan was made against ("" when there was no state).
    pub(crate) state_lineage: String,
    pub(crate) state_serial: u64,
    /// Digest of the state snapshot and journal bytes.
    pub(crate) state_digest: String,
    /// Digest of every resolved notification (manifests, valueFiles, CSV audiences).
    pub(crate) manifests_digest: String,
    pub(crate) target: String,
    pub(crate) tool_version: String,
    /// The instant the plan was made (RFC 3339, to the nanosecond): `apply PLANFILE` recomputes
    /// the plan at it and refuses a file that differs.
    #[serde(default)]
    pub(crate) planned_at: String,
}

/// A plan over the targets a command covers: one section each, in the config's order, and their
/// sum. This is the JSON document (`plan --format json`, `plan --out`).
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSet {
    pub format_version: u32,
    /// With `plan --compare-to`, when this change edits the policy: its rules before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) policy_change: Option<crate::policy::PolicyChange>,
    /// Every target's summary added up.
    pub summary: Summary,
    pub targets: Vec<Plan>,
    /// SHA-256 over everything above: the file's text up to this member (`,` excluded). `show`
    /// and `apply` refuse a plan file whose text does not match it, or that is not exactly as
    /// `plan --out` wrote it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) digest: String,
}

impl PlanSet {
    pub(crate) fn new(targets: Vec<Plan>) -> PlanSet {
        let summary = Summary::total(targets.iter().map(|p| &p.summary));
        PlanSet { format_version: PLAN_FORMAT, policy_change: None, summary, targets, digest: String::new() }
    }

    /// Whether `plan --detailed-exitcode` exits 2.
    pub(crate) fn needs_action(&self) -> bool {
        self.targets.iter().any(|p| p.summary.needs_action(&p.notifications))
    }
}

/// The plan of one target.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The target's name (`default` for a config without `targets:`).
    #[serde(default)]
    pub name: String,
    /// The Kore.ai host an apply of this plan sends to (from the config), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    /// How many requests an apply makes and how long the limits make it take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) forecast: Option<Forecast>,
    pub(crate) binding: Binding,
    pub summary: Summary,
    pub notifications: Vec<PlannedNotification>,
}

#[derive(Debug)]
pub struct Inputs<'a> {
    pub target: &'a str,
    pub notifications: &'a [Notification],
    pub state: &'a State,
    pub state_exists: bool,
    pub state_digest: &'a str,
    pub now: time::OffsetDateTime,
    pub retry_unknown: Select,
    pub retry_failed: Select,
    /// The config's `retention` (orphaned notifications are tombstoned after it).
    pub retention: Option<std::time::Duration>,
    /// This repository's origin digest: notifications another repository sharing the state
    /// declared are not this one's orphans.
    pub origin: &'a str,
    /// Whether other repositories may share the state (PostgreSQL).
    pub shared_state: bool,
    /// The wall clock's reading, when it is not `now`: a canary wave's `observe` is measured on
    /// it, as requests are stamped by it (`KORE_NOTIFY_NOW` moves the plan's time, not the time
    /// Kore.ai takes to deliver). `None`: `now`.
    pub wall: Option<time::OffsetDateTime>,
    /// The target's `skipUnreachable` default (a manifest's own setting wins).
    pub skip_unreachable: bool,
}
