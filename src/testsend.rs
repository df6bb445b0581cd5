//! Test sends: a notification's real texts sent to a reviewer before everyone gets them
//! (`kore-notify test-send`), and the evidence the pull-request comment shows for them.
//!
//! Why a ledger of its own: a test send must never count as a send to anyone in the recipients'
//! state (the plan would then skip a real recipient who also reviewed it), yet it needs what the
//! state gives sends: durability before the request leaves, a lock, a journal that survives a
//! kill -9, the same file or PostgreSQL store. So the test ledger *is* a second state, in the same
//! store under another key (`Target::test_store`), with its own entries: per notification, the
//! requests made, their outcomes, the content marks, and a [`TestSend`] record per request (to
//! whom, masked; which variant; the content digest and the plan digest).
//!
//! At most once per (test identity, variant, content): the ledger's "recipient" is the test
//! identity *together with* the variant's fingerprint ([`ledger_hash`]), and the fingerprint is
//! the one a real recipient with that variant's parameters would have, with the content in it.
//! A changed content or variant is a new ledger recipient; the same one is skipped unless
//! `--again`. A request whose outcome is unknown (the run died) counts as sent: never repeated
//! without `--again`.
//!
//! Pure functions here; `ops::test_send` reads the stores and sends.

use std::path::{Path, PathBuf};

use crate::fingerprint::{Fingerprint, RecipientHash, recipient_hash};
use crate::manifest::{Notification, Recipient};
use crate::state::{NotificationState, Outcome, State, TestSend};

/// The test ledger's file beside a state file: `state.json` → `state.test-sends.json`.
pub(crate) fn ledger_path(state: &Path) -> PathBuf {
    state.with_extension("test-sends.json")
}

/// One of a notification's distinct texts: the parameters and custom message of the first
/// recipient who reads it.
#[derive(Clone, Debug)]
pub(crate) struct Variant<'a> {
    /// 1-based, in the order the recipients come.
    pub(crate) index: u32,
    pub(crate) source: &'a Recipient,
    /// The text they read (placeholders filled in), or the content as shown for a script.
    pub(crate) text: String,
}

impl Variant<'_> {
    /// The variant as sent to the test identity `id`: their identity, the source's parameters
    /// and custom message.
    pub(crate) fn to(&self, id: &str) -> Recipient {
        Recipient { id: id.to_string(), ..self.source.clone() }
    }
}

/// Up to `max` distinct texts of `n`, from its recipients in the order `order` gives (the plan's
/// recipients first), each taken from the first recipient who reads it.
pub(crate) fn variants(n: &Notification, order: impl Iterator<Item = usize>, max: usize) -> Vec<Variant<'_>> {
    let mut out: Vec<Variant> = Vec::new();
    for r in order.filter_map(|i| n.recipients.get(i)) {
        if out.len() >= max {
            break;
        }
        let text = match n.content.value.as_str() {
            Some(template) => {
                crate::manifest::render_placeholders(r.custom_message.as_deref().unwrap_or(template), &r.parameters)
            }
            None => n.content.display(),
        };
        if out.iter().all(|v| v.text != text) {
            out.push(Variant { index: out.len() as u32 + 1, source: r, text });
        }
    }
    out
}

/// The test ledger's name for (test identity, variant with its content): the identity salted
/// with the ledger's lineage, joined to the variant's fingerprint.
pub(crate) fn ledger_hash(lineage: &str, id: &str, fp: Fingerprint) -> RecipientHash {
    recipient_hash(lineage, &format!("{id}\u{0}{fp}"))
}

/// Whether the ledger holds a test send of `fp` to the ledger recipient `h` (accepted, or
/// unknown: it may have arrived).
pub(crate) fn already_sent(ledger: Option<&NotificationState>, h: RecipientHash, fp: Fingerprint) -> bool {
    ledger
        .and_then(|n| n.recipients.get(&h))
        .is_some_and(|r| r.fp == Some(fp.normalized()) || r.pending.as_ref().is_some_and(|p| p.fp == fp.normalized()))
}

/// What the ledger proves of a notification whose content digests to `digest` now (a plan's
/// `testSend`, and the policy's `testSent` fact).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Evidence {
    /// A test send of this very content was accepted (the policy's `testSent: true`).
    pub(crate) fresh: bool,
    /// In words: `test-sent to r***@… 12 min ago, same content (3 variants)`, `stale: content
    /// changed since the test send to …`, or that a test send's outcome is unknown.
    pub(crate) text: String,
    /// When the test send it cites was made.
    pub(crate) at: String,
}

/// The evidence the test ledger holds for `key` at `now`: the newest accepted test send of the
/// current content (`digest`), or else, when only older content was test-sent, that it is stale.
/// `None`: never test-sent (or only refused ones). Only test sends made by `now` count, so a plan
/// computed again at its own instant (`apply PLANFILE`) finds the evidence it showed.
pub(crate) fn evidence(ledger: &State, key: &str, digest: &str, now: time::OffsetDateTime) -> Option<Evidence> {
    let n = ledger.notifications.get(key)?;
    let outcome = |t: &TestSend| n.requests.get(t.req as usize).map(|r| r.outcome);
    let landed = |t: &&TestSend| matches!(outcome(t), Some(Outcome::Accepted | Outcome::ResolvedSent));
    let by_now = |t: &&TestSend| crate::rfc3339::parse(&t.at).is_none_or(|at| at <= now);
    let made: Vec<&TestSend> = n.test_sends.iter().filter(by_now).collect();
    let newest = |same: bool| made.iter().copied().filter(|t| (t.content == digest) == same).rfind(landed);
    if let Some(t) = newest(true) {
        let variants = made.iter().filter(|x| x.content == digest).filter(|x| landed(x)).map(|x| x.variant);
        let count = variants.collect::<std::collections::BTreeSet<_>>().len();
        return Some(Evidence {
            fresh: true,
            at: t.at.clone(),
            text: format!(
                "test-sent to {} {}, same content ({count} variant{})",
                t.to.join(", "),
                ago(&t.at, now),
                if count == 1 { "" } else { "s" }
            ),
        });
    }
    if let Some(t) = made
        .iter()
        .copied()
        .filter(|t| t.content == digest)
        .rfind(|t| matches!(outcome(t), Some(Outcome::Unknown | Outcome::Pending)))
    {
        return Some(Evidence {
            fresh: false,
            at: t.at.clone(),
            text: format!(
                "test send to {} {} has an unknown outcome (`kore-notify test-send --again` sends it again)",
                t.to.join(", "),
                ago(&t.at, now)
            ),
        });
    }
    newest(false).map(|t| Evidence {
        fresh: false,
        at: t.at.clone(),
        text: format!("stale: content changed since the test send to {} {}", t.to.join(", "), ago(&t.at, now)),
    })
}

/// `12 min ago`, `3 h ago`, `2 days ago` (`just now` under a minute; the time as written when it
/// cannot be read).
pub(crate) fn ago(at: &str, now: time::OffsetDateTime) -> String {
    let Some(t) = crate::rfc3339::parse(at) else { return format!("at {}", crate::safe::line(at)) };
    let mins = (now - t).whole_minutes();
    match mins {
        i64::MIN..=0 => "just now".into(),
        1..=119 => format!("{mins} min ago"),
        120..=2879 => format!("{} h ago", mins / 60),
        _ => format!("{} days ago", mins / 1440),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Params;

    fn r(id: &str, name: Option<&str>, cm: Option<&str>) -> Recipient {
        let mut parameters = Params::default();
        if let Some(v) = name {
            parameters.insert("name", v.to_string());
        }
        Recipient { id: id.into(), custom_message: cm.map(String::from), parameters }
    }

    #[test]
    fn variants_are_the_first_distinct_texts_in_the_given_order() {
        let mut n = crate::manifest::tests_support::notification("k");
        n.content.value = "Hello {name}".into();
        n.recipients = vec![
            r("a@x", Some("Ann"), None),
            r("b@x", Some("Ann"), None),
            r("c@x", Some("Bob"), None),
            r("d@x", None, Some("Custom")),
            r("e@x", Some("Eve"), None),
        ];
        let v = variants(&n, 0..n.recipients.len(), 3);
        let texts: Vec<_> = v.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(texts, ["Hello Ann", "Hello Bob", "Custom"]);
        assert_eq!(v.iter().map(|v| v.index).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(v[1].to("me@x").id, "me@x");
        assert_eq!(v[1].to("me@x").parameters.get("name"), Some("Bob"));
        // The order given (the plan's recipients) decides which come first.
        let v = variants(&n, [4, 0].into_iter(), 3);
        assert_eq!(v.iter().map(|v| v.text.as_str()).collect::<Vec<_>>(), ["Hello Eve", "Hello Ann"]);
        assert_eq!(variants(&n, 0..5, 1).len(), 1);
    }

    #[test]
    fn ages_read_as_people_say_them() {
        let now = crate::rfc3339::parse("2025-03-01T12:00:00Z").unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        for (at, want) in [
            ("2025-03-01T12:00:30Z", "just now"),
            ("2025-03-01T11:59:30Z", "just now"),
            ("2025-03-01T11:48:00Z", "12 min ago"),
            ("2025-03-01T09:00:00Z", "3 h ago"),
            ("2025-02-26T12:00:00Z", "3 days ago"),
            ("soon", "at soon"),
        ] {
            assert_eq!(ago(at, now), want, "{at}");
        }
    }
}
