//! The core put to use, by the plan and by the send loop alike: which of a notification's
//! recipients may be sent at an instant, and when the windows of the others open, grouped by
//! opening ("312 now; 938 at 2026-12-04 14:00 UTC, 09:00 America/New_York").

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{DeliveryWindow, Eligible, Opening};
use crate::manifest::Recipient;

/// Asks the core about recipients at one instant, once per zone (a million recipients share a
/// handful of zones).
pub(crate) struct Judge<'a> {
    window: &'a DeliveryWindow,
    at: jiff::Timestamp,
    by_zone: HashMap<&'a str, Eligible>,
}

impl<'a> Judge<'a> {
    pub(crate) fn new(window: &'a DeliveryWindow, at: time::OffsetDateTime) -> Judge<'a> {
        Judge { window, at: super::to_timestamp(at), by_zone: HashMap::new() }
    }

    /// Whether `r` may be sent now, or when; and their zone's name. A recipient without a known
    /// zone (validation refuses them) is never sent.
    pub(crate) fn judge(&mut self, r: &'a Recipient) -> (Eligible, &'a str) {
        let Some(name) = self.window.zone_name(&r.parameters) else { return (Eligible::Never, "") };
        let (window, at) = (self.window, self.at);
        let e = *self
            .by_zone
            .entry(name)
            .or_insert_with(|| super::zone(name).map_or(Eligible::Never, |tz| window.eligible(&tz, at)));
        (e, name)
    }
}

/// What the plan says about a notification's delivery window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WindowPlan {
    /// The window, in words (`mon, tue, wed, thu, fri 09:00–17:30 Europe/Berlin`).
    pub(crate) window: String,
    /// Recipients to send inside their window now.
    pub(crate) now: usize,
    /// The others, by when their window opens (earliest first): a later apply sends them then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) later: Vec<WaitGroup>,
    /// Recipients whose window does not open within two weeks (a zone the database does not
    /// know): never sent as things stand.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) never: usize,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Recipients whose window opens at one instant, in one zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WaitGroup {
    /// When the window opens (RFC 3339, UTC).
    pub(crate) at: String,
    /// The local wall time then (`2026-12-04T09:00`).
    pub(crate) local: String,
    /// The IANA zone.
    pub(crate) timezone: String,
    pub(crate) recipients: usize,
}

impl WindowPlan {
    /// `312 now; 938 at 2026-12-04 14:00 UTC, 09:00 America/New_York` (the first `max` groups).
    pub(crate) fn line(&self, max: usize) -> String {
        let mut parts = vec![format!("{} now", self.now)];
        for g in self.later.iter().take(max) {
            let at = g.at.get(..16).unwrap_or(&g.at).replace('T', " ");
            let local = g.local.get(11..16).unwrap_or(&g.local);
            parts.push(format!("{} at {at} UTC, {local} {}", g.recipients, crate::safe::line(&g.timezone)));
        }
        if self.later.len() > max {
            let rest: usize = self.later[max..].iter().map(|g| g.recipients).sum();
            parts.push(format!("{rest} more at {} later openings", self.later.len() - max));
        }
        if self.never > 0 {
            parts.push(format!("{} whose window never opens", self.never));
        }
        parts.join("; ")
    }

    /// Recipients waiting for their window.
    pub(crate) fn waiting(&self) -> usize {
        self.later.iter().map(|g| g.recipients).sum::<usize>() + self.never
    }

    /// Seconds after `now` at which each group's window opens, with its recipients (for the
    /// forecast), merged by instant.
    pub(crate) fn openings(&self, now: time::OffsetDateTime) -> Vec<(f64, usize)> {
        let mut by_at: BTreeMap<i128, usize> = BTreeMap::new();
        for g in &self.later {
            if let Some(at) = crate::rfc3339::parse(&g.at) {
                *by_at.entry((at - now).whole_milliseconds()).or_default() += g.recipients;
            }
        }
        by_at.into_iter().map(|(ms, n)| ((ms.max(0) as f64) / 1000.0, n)).collect()
    }
}

/// Keeps in `items` those whose recipient (`n.recipients[index(item)]`) is inside the window at
/// `at`, and says when the others' windows open. Without a window, everyone stays.
pub(crate) fn split<T>(
    n: &crate::manifest::Notification,
    items: &mut Vec<T>,
    index: impl Fn(&T) -> usize,
    at: time::OffsetDateTime,
) -> Option<WindowPlan> {
    let window = n.delivery_window.as_deref()?;
    let mut judge = Judge::new(window, at);
    let mut later: BTreeMap<(Opening, &str), usize> = BTreeMap::new();
    let mut never = 0;
    items.retain(|item| {
        let Some(r) = n.recipients.get(index(item)) else { return false };
        match judge.judge(r) {
            (Eligible::Now, _) => true,
            (Eligible::At(o), zone) => {
                *later.entry((o, zone)).or_default() += 1;
                false
            }
            (Eligible::Never, _) => {
                never += 1;
                false
            }
        }
    });
    let later = later
        .into_iter()
        .map(|((o, zone), recipients)| WaitGroup {
            at: crate::rfc3339::to_second(super::from_timestamp(o.utc)),
            local: o.local.strftime("%Y-%m-%dT%H:%M").to_string(),
            // As the database names it (`europe/berlin` is Europe/Berlin).
            timezone: super::zone(zone)
                .and_then(|tz| tz.iana_name().map(str::to_string))
                .unwrap_or_else(|| zone.into()),
            recipients,
        })
        .collect();
    Some(WindowPlan { window: window.describe(), now: items.len(), later, never })
}
