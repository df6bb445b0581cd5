//! The forecast every plan carries: how many requests an apply makes (per notification, from
//! `batchSize`), the status calls that follow, when the last request can leave under both of
//! Kore.ai's rolling windows at the configured limits, and the share of the hourly budget it uses.
//!
//! It is computed by the send loop's own limiter run on a virtual clock
//! ([`crate::kore::ratelimit::schedule`]), not by a second model, in the order the send loop
//! sends (the plan's order, each notification's batches in turn). Latency is left out: this is the
//! earliest finish the limits allow. A notification whose last request cannot leave before its
//! `notAfter` is named ([`Forecast::too_late`]), so the plan can refuse it before anything is
//! sent.
//!
//! Recipients waiting for their delivery window are sent by later applies as their windows open:
//! [`with_windows`] runs the same limiter with each of their requests released at its opening, so
//! a notification whose window opens (or whose sends could only finish) after its `notAfter` is
//! named as well. A scheduled run sends at its first tick after an opening: the times are the
//! earliest. Canary waves still to come are released the same way, each `observe` after the one
//! before (the next wave's gate opens no earlier).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The forecast of one apply of a plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    /// Requests the apply makes (sends).
    pub requests: usize,
    /// Status calls that follow (one per request, for `status --refresh` or `apply --wait`); they
    /// share the same windows.
    pub status_calls: usize,
    /// When the last request can leave, in seconds from the start, at the configured limits.
    pub seconds: f64,
    /// With the status calls after the sends, in seconds.
    pub seconds_with_status: f64,
    /// Share of the hourly budget the sends and status calls use (0 to 1; over 1 spills into the
    /// next hour).
    pub hourly_share: f64,
    /// The limits it was computed at.
    pub per_minute: u32,
    pub per_hour: u32,
    /// Per notification that sends: its requests and when its last one can leave.
    pub notifications: Vec<ForecastLine>,
    /// Requests that later applies make, as the recipients' delivery windows open (not counted in
    /// `requests`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub later_requests: usize,
    /// When the last of them can leave at the earliest (RFC 3339): the openings, then the limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub later_last_leaves_at: Option<String>,
    /// Of `later_requests`, those of canary waves still to come (each `observe` after the one
    /// before it, at the earliest: statuses are assumed terminal by then).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub later_waves: usize,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForecastLine {
    pub key: String,
    /// Requests of this apply.
    pub requests: usize,
    /// Requests of later applies, as its recipients' delivery windows open.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub later_requests: usize,
    /// Seconds from the start when its last request (this apply's or, with delivery windows, a
    /// later one's) can leave.
    pub last_leaves_after: f64,
    /// Its `notAfter`, when it has one (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

/// `(key, recipients to send, notAfter)` of each notification that sends, in the plan's order.
pub(crate) fn forecast(
    sends: &[(&str, usize, Option<&str>)],
    batch_size: usize,
    (per_minute, per_hour): (u32, u32),
) -> Forecast {
    let batch = batch_size.max(1);
    let counts: Vec<usize> = sends.iter().map(|(_, n, _)| n.div_ceil(batch)).collect();
    let requests: usize = counts.iter().sum();
    let limits = crate::kore::ratelimit::windows(per_minute, per_hour);
    let start = Instant::now();
    let all = crate::kore::ratelimit::schedule(&limits, requests * 2, start);
    let secs = |d: Option<&Duration>| d.map_or(0.0, Duration::as_secs_f64);
    let mut done = 0;
    let mut notifications = Vec::with_capacity(sends.len());
    for ((key, _, not_after), n) in sends.iter().zip(&counts) {
        done += n;
        notifications.push(ForecastLine {
            key: (*key).to_string(),
            requests: *n,
            later_requests: 0,
            last_leaves_after: secs(done.checked_sub(1).and_then(|i| all.get(i))),
            not_after: not_after.map(str::to_string),
        });
    }
    Forecast {
        requests,
        status_calls: requests,
        seconds: secs(requests.checked_sub(1).and_then(|i| all.get(i))),
        seconds_with_status: secs(all.last()),
        hourly_share: (requests * 2) as f64 / f64::from(per_hour.max(1)),
        per_minute,
        per_hour,
        notifications,
        later_requests: 0,
        later_last_leaves_at: None,
        later_waves: 0,
    }
}

/// A notification's recipients waiting for their delivery window: `(key, openings as (seconds
/// after now, recipients), notAfter)`, in the plan's order.
pub(crate) type Later<'a> = (&'a str, Vec<(f64, usize)>, Option<&'a str>);

/// Adds the requests of later applies to `f`: released at their openings after this apply's
/// requests, through the same limiter (`now`: the plan's).
pub(crate) fn with_windows(f: &mut Forecast, later: &[Later], batch_size: usize, now: time::OffsetDateTime) {
    let batch = batch_size.max(1);
    // (release, notification), every request, earliest opening first (plan order within one).
    let mut requests: Vec<(Duration, usize)> = Vec::new();
    for (i, (_, openings, _)) in later.iter().enumerate() {
        for (secs, n) in openings {
            let at = Duration::from_secs_f64(secs.max(0.0));
            requests.extend(std::iter::repeat_n((at, i), n.div_ceil(batch)));
        }
    }
    if requests.is_empty() {
        return;
    }
    requests.sort_by_key(|(at, _)| *at);
    let limits = crate::kore::ratelimit::windows(f.per_minute, f.per_hour);
    let releases = std::iter::repeat_n(Duration::ZERO, f.requests).chain(requests.iter().map(|(at, _)| *at));
    let all =
        crate::kore::ratelimit::schedule_released(&limits, releases.collect::<Vec<_>>().into_iter(), Instant::now());
    let leaves = &all[f.requests..];
    for (i, (key, _, not_after)) in later.iter().enumerate() {
        let mine = requests.iter().zip(leaves).filter(|((_, n), _)| *n == i);
        let (count, last) = mine.fold((0, 0.0_f64), |(c, l), (_, d)| (c + 1, l.max(d.as_secs_f64())));
        match f.notifications.iter_mut().find(|l| l.key == *key) {
            Some(line) => {
                line.later_requests = count;
                line.last_leaves_after = line.last_leaves_after.max(last);
            }
            None => f.notifications.push(ForecastLine {
                key: (*key).to_string(),
                requests: 0,
                later_requests: count,
                last_leaves_after: last,
                not_after: not_after.map(str::to_string),
            }),
        }
    }
    f.later_requests = requests.len();
    let last = leaves.last().map_or(Duration::ZERO, |d| *d);
    f.later_last_leaves_at = Some(crate::rfc3339::to_second(now + last));
}

impl Forecast {
    /// The notifications whose last request cannot leave before their `notAfter`, for a run
    /// starting at `now`: (key, when it could leave at the earliest).
    pub(crate) fn too_late(&self, now: time::OffsetDateTime) -> Vec<(String, time::OffsetDateTime)> {
        self.notifications
            .iter()
            .filter_map(|l| {
                let not_after = crate::rfc3339::parse(l.not_after.as_deref()?)?;
                let leaves = now + Duration::from_secs_f64(l.last_leaves_after);
                (leaves > not_after).then(|| (l.key.clone(), leaves))
            })
            .collect()
    }

    /// `3 requests (and 3 status calls), about 0:01 at 600/min, 0.0% of the hourly budget`;
    /// then the requests of later applies, as delivery windows open.
    pub(crate) fn line(&self) -> String {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        let mut line = self.now_line();
        if let Some(at) = self.later_last_leaves_at.as_deref().filter(|_| self.later_requests > 0) {
            let why = match (self.later_waves, self.later_requests - self.later_waves.min(self.later_requests)) {
                (0, _) => "as delivery windows open".to_string(),
                (w, 0) => format!("in later canary waves ({})", plural(w, "request")),
                (w, _) => {
                    format!("as delivery windows open and in later canary waves ({} of them)", plural(w, "request"))
                }
            };
            line.push_str(&format!(
                "; then {} {why}, the last at {at} at the earliest",
                plural(self.later_requests, "request")
            ));
        }
        line
    }

    fn now_line(&self) -> String {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        format!(
            "{} (and {}), about {} at {}/min and {}/h ({} with the status calls), {:.1}% of the hourly budget",
            plural(self.requests, "request"),
            plural(self.status_calls, "status call"),
            duration(self.seconds),
            self.per_minute,
            self.per_hour,
            duration(self.seconds_with_status),
            self.hourly_share * 100.0
        )
    }
}

/// `0:01`, `1:00:12`: whole seconds, rounded up.
pub(crate) fn duration(secs: f64) -> String {
    crate::units::clock(Duration::from_secs(secs.ceil() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_notification_and_the_windows_floor() {
        let f = forecast(&[("a", 1_000_000, None), ("b", 1, None)], 1000, (600, 18_000));
        assert_eq!((f.requests, f.status_calls), (1001, 1001));
        assert_eq!(f.notifications[0].requests, 1000);
        assert_eq!(f.notifications[1].requests, 1);
        // 600 leave at once, the rest a minute later (plus the client's margin).
        assert!((f.seconds - 60.2).abs() < 1e-9, "{}", f.seconds);
        assert!((f.notifications[0].last_leaves_after - 60.2).abs() < 1e-9);
        assert!((f.hourly_share - 2002.0 / 18_000.0).abs() < 1e-12);
        // 2,002 calls at 600/min: the fourth minute.
        assert!((f.seconds_with_status - 180.6).abs() < 1e-9, "{}", f.seconds_with_status);
        let none = forecast(&[], 1000, (600, 18_000));
        assert_eq!((none.requests, none.seconds), (0, 0.0));
    }

    #[test]
    fn a_not_after_that_the_limits_cannot_meet_is_named() {
        let now = crate::rfc3339::parse("2026-12-01T09:00:00Z").expect("now");
        let f = forecast(
            &[("early", 600, Some("2026-12-01T09:00:30Z")), ("late", 1, Some("2026-12-01T09:00:30Z"))],
            1,
            (600, 18_000),
        );
        let late = f.too_late(now);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].0, "late", "the 601st request leaves after a minute");
        let f = forecast(&[("ok", 600, Some("2026-12-01T09:00:30Z"))], 1, (600, 18_000));
        assert!(f.too_late(now).is_empty(), "600 leave at once");
    }

    #[test]
    fn later_requests_leave_at_their_openings_through_the_same_limiter() {
        let now = crate::rfc3339::parse("2026-12-04T10:00:00Z").expect("now");
        // 3 a minute: 2 now, then 1 at 10 s and 3 at 20 s (of two notifications).
        let mut f = forecast(&[("a", 2, None)], 1, (3, 1000));
        let later = [("a", vec![(20.0, 2)], None), ("b", vec![(10.0, 1), (20.0, 1)], Some("2026-12-04T10:00:30Z"))];
        with_windows(&mut f, &later, 1, now);
        assert_eq!((f.requests, f.later_requests), (2, 4));
        let line = |k: &str| f.notifications.iter().find(|l| l.key == k).expect(k).clone();
        // b's first leaves at 10 s and fills the minute; the three released at 20 s wait for the
        // two of 0 s to leave it (60.2 s, a's two, in the plan's order), then for b's of 10 s.
        assert_eq!(line("b").later_requests, 2);
        assert!((line("a").last_leaves_after - 60.2).abs() < 1e-9, "{:?}", line("a"));
        assert!((line("b").last_leaves_after - 70.2).abs() < 1e-9, "{:?}", line("b"));
        assert_eq!(f.later_last_leaves_at.as_deref(), Some("2026-12-04T10:01:10Z"));
        // b's notAfter at 30 s is missed: named.
        let late = f.too_late(now);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].0, "b");
        assert!(f.line().contains("then 4 requests as delivery windows open, the last at 2026-12-04T10:01:10Z"));
    }
}
