//! The promotion gate: a target with `promoteFrom: staging` sends a notification only once the
//! same content — what recipients read, independent of the bot and the recipient
//! ([`crate::fingerprint::content_digest`]) — was accepted (or, with `promotion: delivered`,
//! delivered with status SUCCESS) on that target. The other target's state is only read.
//!
//! Evidence, in the order it is looked for:
//! 1. a knowing override recorded in this target's state for this content
//!    (`apply --skip-promotion KEY --reason TEXT`);
//! 2. the same content already accepted on this target (sent before the gate existed, or to
//!    recipients added since: it was proven then);
//! 3. a request of the same key (or a previous key) on the other target that carried this content
//!    and reached the required level.
//!
//! Without evidence the notification is `awaiting promotion`: nothing of it is sent, and
//! `plan --detailed-exitcode` exits 2. A pure function of the plan and the two states.

use serde::{Deserialize, Serialize};

use super::{Action, Plan, Summary};
use crate::config::PromotionLevel;
use crate::fingerprint::content_digest;
use crate::manifest::Notification;
use crate::state::{NotificationState, Outcome, RequestState, State, StoredContent};

/// The gate's verdict on one notification, shown in plans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromotionNote {
    /// The target promoted from.
    pub(crate) from: String,
    /// `accepted` or `delivered`.
    pub(crate) level: PromotionLevel,
    /// Digest of the content (what recipients read).
    pub(crate) content: String,
    /// The evidence found, in words ("staging: accepted 2026-12-02 10:14, request #0"); absent:
    /// awaiting promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) evidence: Option<String>,
    /// The evidence is a knowing override (`apply --skip-promotion`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) overridden: bool,
}

/// The other target, as the gate reads it.
pub(crate) struct Sources<'a> {
    pub(crate) from: &'a str,
    pub(crate) level: PromotionLevel,
    /// Its state (read-only; empty when it has none yet).
    pub(crate) state: &'a State,
    /// `apply --skip-promotion KEY`: keys whose gate is being passed knowingly in this run.
    pub(crate) skip: &'a [String],
}

/// The digest of the content each request of `n` carried, by request index.
fn request_digest(n: &NotificationState, req: usize) -> String {
    match n.contents.iter().rev().find(|m| m.from as usize <= req) {
        Some(m) => m.digest.clone(),
        // Written before the marks were kept: the content last recorded.
        None => content_digest(n.api, n.channel, &n.content),
    }
}

/// The first request of `n` that carried `digest` and reached `level`.
fn proof<'s>(n: &'s NotificationState, digest: &str, level: PromotionLevel) -> Option<(usize, &'s RequestState)> {
    n.requests.iter().enumerate().find(|(i, r)| {
        let reached = match level {
            PromotionLevel::Accepted => matches!(r.outcome, Outcome::Accepted | Outcome::ResolvedSent),
            PromotionLevel::Delivered => r.status.as_deref() == Some("SUCCESS"),
        };
        reached && request_digest(n, *i) == digest
    })
}

/// "2026-12-02 10:14" of an RFC 3339 instant.
fn minute(at: &str) -> String {
    crate::rfc3339::parse(at).map_or_else(
        || at.to_string(),
        |t| {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
        },
    )
}

/// The evidence for `n` (planned as `key`, possibly renamed from `renamed_from`), or `None`.
fn evidence(
    src: &Sources,
    own: &State,
    n: &Notification,
    renamed_from: Option<&str>,
    digest: &str,
) -> Option<(String, bool)> {
    let keys: Vec<&str> =
        std::iter::once(n.key.as_str()).chain(renamed_from).chain(n.previous_keys.iter().map(String::as_str)).collect();
    let own_n = keys.iter().find_map(|k| own.notifications.get(*k));
    if let Some(o) = own_n.and_then(|e| e.overrides.iter().rev().find(|o| o.gate == "promotion" && o.content == digest))
    {
        return Some((format!("promotion skipped by {} at {}: {}", o.actor, minute(&o.at), o.reason), true));
    }
    if let Some((i, r)) = own_n.and_then(|e| proof(e, digest, PromotionLevel::Accepted)) {
        return Some((format!("already accepted on this target {}, request #{i}", minute(&r.sent_at)), false));
    }
    let (i, r) =
        keys.iter().filter_map(|k| src.state.notifications.get(*k)).find_map(|e| proof(e, digest, src.level))?;
    Some((format!("{}: {} {}, request #{i}", src.from, src.level.as_str(), minute(&r.sent_at)), false))
}

/// Applies the gate to `plan` (of the target promoting from `src`): notifications that would send
/// without evidence are held as `awaiting promotion`. `notifications` are the target's own.
pub(crate) fn gate(plan: &mut Plan, notifications: &[Notification], own: &State, src: &Sources) {
    let by_key: std::collections::HashMap<&str, &Notification> =
        notifications.iter().map(|n| (n.key.as_str(), n)).collect();
    for p in &mut plan.notifications {
        let Some(n) = by_key.get(p.key.as_str()) else { continue };
        let digest = content_digest(n.api, n.channel, &StoredContent::from(&n.content));
        let found = evidence(src, own, n, p.renamed_from.as_deref(), &digest);
        let sending = p.action.sends();
        let skip = src.skip.contains(&p.key);
        let mut note = PromotionNote {
            from: src.from.to_string(),
            level: src.level,
            content: digest,
            evidence: found.as_ref().map(|(e, _)| e.clone()),
            overridden: found.as_ref().is_some_and(|(_, o)| *o),
        };
        if found.is_none() && sending && skip {
            note.evidence = Some("promotion skipped in this run (--skip-promotion): recorded before sending".into());
            note.overridden = true;
        } else if found.is_none() && sending {
            p.action = Action::AwaitingPromotion;
            // Added to those waiting for their delivery window, if any.
            p.recipients.waiting += p.sends.len();
            p.reason = format!(
                "{} recipient(s) awaiting promotion: this content was not yet {} on `{}`; apply it there first, or pass this gate knowingly with `kore-notify apply --skip-promotion {} --reason TEXT`",
                p.sends.len(),
                src.level.as_str(),
                src.from,
                p.key
            );
            p.sends.clear();
            p.preview.clear();
        }
        if sending || found.is_some() {
            p.promotion = Some(note);
        }
    }
    plan.summary = Summary::of(&plan.notifications);
}
