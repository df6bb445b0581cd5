//! Unreachable recipients: people whose last delivery on a channel failed for a reason that
//! sending again cannot fix ("Identity is not associated with the channel": the bot cannot reach
//! them there at all). Without this, each new notification sends to them again and fails again.
//!
//! Which failures are permanent is one short list, [`PERMANENT_REASONS`], matched against Kore.ai's
//! comment (quotes, surrounding blanks and case ignored; a comment *containing* a reason matches,
//! since servers wrap it). Anything else (a timeout, a throttled channel) is a failure worth
//! retrying and is not listed here.
//!
//! The verdict is per channel and recipient, across every notification of the state: the delivery
//! reported for the request sent last decides. A later success (the person installed the bot)
//! makes them reachable again.
//!
//! `skipUnreachable: true` on a manifest, or as a target's default (per target, or at the top of
//! the config for every target), leaves them out of what is
//! sent; the plan counts them either way.

use std::collections::HashMap;

use crate::fingerprint::RecipientHash;
use crate::manifest::Channel;
use crate::state::{Delivery, State};
use crate::walk::Walker;
use crate::yaml::{Node, Value};

/// Kore.ai comments that mean "this recipient cannot be reached on this channel", lower case.
/// Add a reason here (and to the README's list) when Kore.ai documents another permanent one.
pub(crate) const PERMANENT_REASONS: &[&str] = &["identity is not associated with the channel"];

/// Whether a reported delivery failed for a permanent reason.
pub(crate) fn is_permanent(d: &Delivery) -> bool {
    if !d.failed() {
        return false;
    }
    let comment = d.comment.as_deref().unwrap_or_default().trim().trim_matches(['\'', '"']).trim().to_lowercase();
    PERMANENT_REASONS.iter().any(|r| comment.contains(r))
}

/// Recipients whose last reported delivery on a channel failed permanently, with the comment
/// Kore.ai gave.
#[derive(Debug, Default)]
pub(crate) struct Unreachable {
    by: HashMap<(Channel, RecipientHash), String>,
}

impl Unreachable {
    /// From every notification of `state`: per (channel, recipient), the delivery reported for the
    /// latest request that carried them (by the time it was sent; ties go to the later entry).
    pub(crate) fn of(state: &State) -> Unreachable {
        // Only permanent failures are kept while reading (a million deliveries build no map); a
        // later delivery of another kind then clears one. Which table entries are permanent is
        // decided once per notification, not per recipient.
        let mut failed: HashMap<(Channel, RecipientHash), (&str, &str)> = HashMap::new();
        for n in state.notifications.values() {
            let permanent: Vec<bool> = n.deliveries.iter().map(is_permanent).collect();
            if !permanent.contains(&true) {
                continue;
            }
            for (h, r) in &n.recipients {
                let Some(i) = r.delivery.filter(|i| permanent.get(*i as usize) == Some(&true)) else { continue };
                let comment = n.deliveries[i as usize].comment.as_deref().unwrap_or_default();
                let at = sent_at(n, r.req);
                let slot = failed.entry((n.channel, *h)).or_insert((at, comment));
                if at >= slot.0 {
                    *slot = (at, comment);
                }
            }
        }
        if !failed.is_empty() {
            for n in state.notifications.values() {
                for (h, r) in &n.recipients {
                    let later = |at: &str| sent_at(n, r.req) > at;
                    if n.delivery(r).is_some_and(|d| !is_permanent(d))
                        && failed.get(&(n.channel, *h)).is_some_and(|(at, _)| later(at))
                    {
                        failed.remove(&(n.channel, *h));
                    }
                }
            }
        }
        let by = failed.into_iter().map(|(k, (_, c))| (k, c.trim().trim_matches('\'').to_string())).collect();
        Unreachable { by }
    }

    /// Kore.ai's comment when this recipient is unreachable on `channel`.
    pub(crate) fn reason(&self, channel: Channel, h: &RecipientHash) -> Option<&str> {
        self.by.get(&(channel, *h)).map(String::as_str)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by.is_empty()
    }
}

/// When the request `req` of `n` was sent ("" when unknown).
fn sent_at(n: &crate::state::NotificationState, req: Option<u32>) -> &str {
    req.and_then(|q| n.requests.get(q as usize)).map_or("", |q| q.sent_at.as_str())
}

/// `skipUnreachable: true|false` in a field map (a manifest, or a target's default; `prefix` is the
/// target's field path, `targets.NAME`, or `""`).
pub(crate) fn skip_unreachable(
    w: &mut Walker,
    f: &std::collections::BTreeMap<String, &Node>,
    prefix: &str,
) -> Option<bool> {
    let n = f.get("skipUnreachable")?;
    match n.value {
        Value::Bool(b) => Some(b),
        _ => {
            let found = format!("expected true or false, found {}", n.kind());
            w.error(&n.pos, &crate::walk::join(prefix, "skipUnreachable"), found, "write true or false");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(status: &str, comment: Option<&str>) -> Delivery {
        Delivery { status: status.into(), comment: comment.map(Into::into) }
    }

    #[test]
    fn only_failures_for_a_listed_reason_are_permanent() {
        for (delivery, permanent) in [
            (d("FAILURE", Some("'Identity is not associated with the channel'")), true),
            (d("FAILED", Some("identity is NOT associated with the channel")), true),
            (d("FAILURE", Some("  \"Identity is not associated with the channel\" (code 7)")), true),
            (d("SUCCESS", Some("Identity is not associated with the channel")), false),
            (d("FAILURE", Some("Channel throttled, try later")), false),
            (d("FAILURE", None), false),
            (d("IN_PROGRESS", Some("Identity is not associated with the channel")), false),
        ] {
            assert_eq!(is_permanent(&delivery), permanent, "{delivery:?}");
        }
    }
}
