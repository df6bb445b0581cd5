//! The report's time series, by UTC minute: send requests per minute (to draw against the
//! configured limit), and recipients' outcomes by the minute their request left. Gaps between the
//! first and last minute are filled with zeros while the span is short enough to draw.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{RecipientRow, Status};
use crate::state::RequestState;

/// Longest span (in minutes) whose empty minutes are filled in: a day.
const FILL: i64 = 24 * 60;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Minute {
    /// `YYYY-MM-DDTHH:MMZ`.
    pub(crate) minute: String,
    pub(crate) requests: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Outcomes {
    pub(crate) minute: String,
    pub(crate) delivered: usize,
    pub(crate) failed: usize,
    pub(crate) pending: usize,
    pub(crate) unknown: usize,
}

/// The minute of an RFC 3339 time, as minutes since the epoch (UTC).
fn minute_of(at: &str) -> Option<i64> {
    crate::rfc3339::parse(at).map(|t| t.unix_timestamp().div_euclid(60))
}

fn label(m: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(m * 60)
        .ok()
        .and_then(crate::rfc3339::format)
        .map(|s| format!("{}Z", &s[..16.min(s.len())]))
        .unwrap_or_default()
}

/// Every minute from the first to the last of `counts` (when the span is at most [`FILL`]), or
/// just those in it.
fn minutes<T: Default + Clone>(counts: &BTreeMap<i64, T>) -> Vec<(i64, T)> {
    let (Some(first), Some(last)) = (counts.keys().next(), counts.keys().next_back()) else { return vec![] };
    if last - first > FILL {
        return counts.iter().map(|(m, v)| (*m, v.clone())).collect();
    }
    (*first..=*last).map(|m| (m, counts.get(&m).cloned().unwrap_or_default())).collect()
}

/// Send requests per minute.
pub(crate) fn requests_per_minute(requests: &[RequestState]) -> Vec<Minute> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for m in requests.iter().filter_map(|r| minute_of(&r.sent_at)) {
        *counts.entry(m).or_default() += 1;
    }
    minutes(&counts).into_iter().map(|(m, requests)| Minute { minute: label(m), requests }).collect()
}

/// Recipients' outcomes by the minute their request left (those never sent are not in it).
pub(crate) fn outcomes_by_minute(rows: &[RecipientRow]) -> Vec<Outcomes> {
    let mut counts: BTreeMap<i64, Outcomes> = BTreeMap::new();
    for r in rows {
        let Some(m) = r.sent_at.as_deref().and_then(minute_of) else { continue };
        let o = counts.entry(m).or_default();
        match r.status {
            Status::Delivered => o.delivered += 1,
            Status::Failed => o.failed += 1,
            Status::Pending => o.pending += 1,
            Status::Unknown => o.unknown += 1,
            Status::NotSent => {}
        }
    }
    minutes(&counts).into_iter().map(|(m, o)| Outcomes { minute: label(m), ..o }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_filled_between_the_first_and_the_last() {
        let at = |s: &str| minute_of(s).unwrap_or_default();
        let counts: BTreeMap<i64, usize> =
            [(at("2026-11-24T09:00:59Z"), 2), (at("2026-11-24T09:03:00.5Z"), 1)].into_iter().collect();
        let filled = minutes(&counts);
        assert_eq!(filled.iter().map(|(_, c)| *c).collect::<Vec<_>>(), [2, 0, 0, 1]);
        assert_eq!(label(filled[0].0), "2026-11-24T09:00Z");
        let far: BTreeMap<i64, usize> = [(0, 1), (FILL + 1, 1)].into_iter().collect();
        assert_eq!(minutes(&far).len(), 2, "a span over a day is not filled");
    }
}
