//! What one target plans: the notifications whose manifests name it (`targets:`, default all),
//! with the target's audience rule applied, so a non-production target never reaches production
//! users:
//!
//! - `only`: recipients outside the list are left out of the target's plan (counted, shown);
//! - `replaceWith`: each notification goes to the listed identities instead, the k-th of them
//!   with the parameters and custom message of the notification's k-th recipient (cycling when
//!   there are more seeds than recipients), so they read what real recipients would.
//!
//! A notification whose manifest writes no `deliveryWindow` takes the target's default one.
//!
//! Identities are compared without regard to ASCII case (e-mail addresses). A pure function: the
//! plan and `apply` call it alike.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Audience, Target};
use crate::manifest::{Notification, Recipient};

/// What a target's audience rule did to one notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AudienceNote {
    /// `only` or `replaceWith`.
    pub(crate) rule: String,
    /// `inline`, or the list file as written in the config.
    pub(crate) source: String,
    /// Recipients the manifest declares.
    pub(crate) declared: usize,
    /// Recipients this target plans: those on the list (`only`), or the seed identities
    /// (`replaceWith`).
    pub(crate) planned: usize,
    /// Declared recipients this target never reaches.
    pub(crate) left_out: usize,
}

impl AudienceNote {
    /// In words, for plans.
    pub(crate) fn line(&self) -> String {
        match self.rule.as_str() {
            "only" => format!(
                "audience only ({}): {} of {} recipient(s) planned, {} left out",
                self.source, self.planned, self.declared, self.left_out
            ),
            _ => format!(
                "audience replaced ({}): sent to {} seed identit{} instead of {} recipient(s)",
                self.source,
                self.planned,
                if self.planned == 1 { "y" } else { "ies" },
                self.declared
            ),
        }
    }
}

/// Whether a manifest's notification is planned for `target` (`targets:` names it, or is absent).
pub(crate) fn names(n: &Notification, target: &str) -> bool {
    n.targets.as_ref().is_none_or(|t| t.iter().any(|x| x == target))
}

/// The notifications `target` plans, with the target's default delivery window, and what its
/// audience rule did to each.
pub(crate) fn for_target<'a>(
    target: &Target,
    all: &'a [Notification],
) -> (Cow<'a, [Notification]>, BTreeMap<String, AudienceNote>) {
    let (mut out, notes) = with_audience(target, all);
    if let Some(d) = &target.delivery_window
        && out.iter().any(|n| !n.own_window)
    {
        for n in out.to_mut().iter_mut().filter(|n| !n.own_window) {
            n.delivery_window = Some(d.clone());
        }
    }
    if let Some(r) = &target.rollout
        && out.iter().any(|n| !n.own_rollout)
    {
        for n in out.to_mut().iter_mut().filter(|n| !n.own_rollout) {
            n.rollout = Some(r.clone());
        }
    }
    (out, notes)
}

/// The notifications whose manifests name `target`, with its audience rule applied.
fn with_audience<'a>(
    target: &Target,
    all: &'a [Notification],
) -> (Cow<'a, [Notification]>, BTreeMap<String, AudienceNote>) {
    let scoped = all.iter().any(|n| !names(n, &target.name));
    let Some(rule) = &target.audience else {
        if !scoped {
            return (Cow::Borrowed(all), BTreeMap::new());
        }
        return (Cow::Owned(all.iter().filter(|n| names(n, &target.name)).cloned().collect()), BTreeMap::new());
    };
    let list = rule.list();
    let mut seeds: Vec<&str> = Vec::new();
    for id in &list.identities {
        if !seeds.iter().any(|s| s.eq_ignore_ascii_case(id)) {
            seeds.push(id);
        }
    }
    let mut notes = BTreeMap::new();
    let mut out = Vec::new();
    for n in all.iter().filter(|n| names(n, &target.name)) {
        let recipients: Vec<Recipient> = match rule {
            Audience::Only(_) => n
                .recipients
                .iter()
                .filter(|r| seeds.iter().any(|s| s.eq_ignore_ascii_case(r.id.trim())))
                .cloned()
                .collect(),
            Audience::ReplaceWith(_) if n.recipients.is_empty() => Vec::new(),
            Audience::ReplaceWith(_) => seeds
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let like = &n.recipients[k % n.recipients.len()];
                    Recipient { id: (*s).to_string(), ..like.clone() }
                })
                .collect(),
        };
        let declared = n.recipients.len();
        let left_out = match rule {
            Audience::Only(_) => declared - recipients.len(),
            Audience::ReplaceWith(_) => declared,
        };
        notes.insert(
            n.key.clone(),
            AudienceNote {
                rule: rule.rule().to_string(),
                source: list.source.clone(),
                declared,
                planned: recipients.len(),
                left_out,
            },
        );
        out.push(Notification { recipients, ..n.clone() });
    }
    (Cow::Owned(out), notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AudienceList;

    fn notification(key: &str, ids: &[&str], targets: Option<&[&str]>) -> Notification {
        let mut n = crate::manifest::tests_support::notification(key);
        n.recipients = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut r = Recipient {
                    id: (*id).to_string(),
                    custom_message: None,
                    parameters: crate::manifest::Params::default(),
                };
                r.parameters.insert("n", i.to_string());
                r
            })
            .collect();
        n.targets = targets.map(|t| t.iter().map(|s| (*s).to_string()).collect());
        n
    }

    fn target(name: &str, audience: Option<Audience>) -> Target {
        crate::config::tests_support::target(name, audience)
    }

    fn list(ids: &[&str]) -> AudienceList {
        AudienceList { identities: ids.iter().map(|s| (*s).to_string()).collect(), source: "inline".into() }
    }

    #[test]
    fn a_manifest_is_planned_only_for_the_targets_it_names() {
        let all = vec![
            notification("a", &["x@e.com"], None),
            notification("b", &["x@e.com"], Some(&["staging"])),
            notification("c", &["x@e.com"], Some(&["production", "staging"])),
        ];
        let keys = |t: &str| for_target(&target(t, None), &all).0.iter().map(|n| n.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys("staging"), ["a", "b", "c"]);
        assert_eq!(keys("production"), ["a", "c"]);
        assert_eq!(keys("dev"), ["a"]);
    }

    #[test]
    fn the_targets_default_window_applies_where_the_manifest_writes_none() {
        let mine = std::sync::Arc::new(crate::window::DeliveryWindow {
            days: [true; 7],
            from: 9 * 60,
            to: 17 * 60,
            zone: crate::window::Zone::Named("Europe/Berlin".into()),
        });
        let default = std::sync::Arc::new(crate::window::DeliveryWindow { from: 10 * 60, ..(*mine).clone() });
        let mut own = notification("own", &["x@e.com"], None);
        (own.delivery_window, own.own_window) = (Some(mine.clone()), true);
        let mut off = notification("off", &["x@e.com"], None);
        off.own_window = true;
        let all = vec![own, off, notification("inherits", &["x@e.com"], None)];
        let windows = |t: &Target| for_target(t, &all).0.iter().map(|n| n.delivery_window.clone()).collect::<Vec<_>>();
        let mut staging = target("staging", None);
        staging.delivery_window = Some(default.clone());
        assert_eq!(windows(&staging), [Some(mine.clone()), None, Some(default)]);
        assert_eq!(windows(&target("production", None)), [Some(mine), None, None]);
        assert!(matches!(for_target(&target("production", None), &all).0, Cow::Borrowed(_)));
    }

    #[test]
    fn only_leaves_out_everyone_not_listed_whatever_the_case() {
        let all = vec![notification("a", &["QA@e.com", "real@e.com", "qa2@e.com"], None)];
        let t = target("staging", Some(Audience::Only(list(&["qa@E.com", "qa2@e.com", "nobody@e.com"]))));
        let (ns, notes) = for_target(&t, &all);
        let ids: Vec<&str> = ns[0].recipients.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["QA@e.com", "qa2@e.com"]);
        assert_eq!(notes["a"].left_out, 1);
        assert_eq!(notes["a"].planned, 2);
    }

    #[test]
    fn replace_with_sends_to_the_seeds_only_with_the_first_recipients_parameters() {
        let all = vec![
            notification("a", &["r0@e.com", "r1@e.com", "r2@e.com"], None),
            notification("one", &["r0@e.com"], None),
            notification("none", &[], None),
        ];
        let t = target("staging", Some(Audience::ReplaceWith(list(&["s0@e.com", "s1@e.com", "S0@e.com"]))));
        let (ns, notes) = for_target(&t, &all);
        for n in ns.iter() {
            assert!(n.recipients.iter().all(|r| r.id.starts_with('s')), "{n:?}");
        }
        let params = |i: usize, k: usize| ns[i].recipients[k].parameters.get("n").map(String::from);
        assert_eq!(ns[0].recipients.len(), 2, "a seed listed twice is one seed");
        assert_eq!((params(0, 0), params(0, 1)), (Some("0".into()), Some("1".into())));
        assert_eq!((params(1, 0), params(1, 1)), (Some("0".into()), Some("0".into())));
        assert!(ns[2].recipients.is_empty(), "no recipients: nothing to send to the seeds either");
        assert_eq!(notes["a"].left_out, 3);
    }
}
