//! Rolling-window rate limiting, exact: Kore.ai enforces 600 requests per minute *and* 18,000 per
//! hour per bot on rolling windows, shared by send and status calls. A sliding log of request
//! times guarantees that no window ever holds more than its limit, which a token bucket (GCRA)
//! with a burst cannot promise; that is why this is hand-written rather than `governor`. The
//! emulator has its own implementation (`src/emulator/window.rs`), so that the tests, which run
//! the client against the emulator, would catch a bug in this one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub(crate) struct Window {
    limit: usize,
    period: Duration,
    log: VecDeque<Instant>,
}

pub(crate) struct Windows {
    windows: Vec<Window>,
}

impl Windows {
    /// `limits` are (max requests, period) pairs.
    pub(crate) fn new(limits: &[(u32, Duration)]) -> Windows {
        Windows {
            windows: limits
                .iter()
                .map(|(l, p)| Window { limit: (*l).max(1) as usize, period: *p, log: VecDeque::new() })
                .collect(),
        }
    }

    /// Takes a slot now, or says how long to wait for one.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for w in &mut self.windows {
            while w.log.front().is_some_and(|t| now.duration_since(*t) >= w.period) {
                w.log.pop_front();
            }
            if w.log.len() >= w.limit {
                let oldest = w.log[w.log.len() - w.limit];
                wait = wait.max((oldest + w.period).saturating_duration_since(now));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for w in &mut self.windows {
            w.log.push_back(now);
            while w.log.len() > w.limit {
                w.log.pop_front();
            }
        }
        Ok(())
    }
}

/// Kore.ai's two rolling windows at the configured limits: (requests, period) pairs.
pub(crate) fn windows(per_minute: u32, per_hour: u32) -> [(u32, Duration); 2] {
    [(per_minute, Duration::from_secs(60)), (per_hour, Duration::from_secs(3600))]
}

/// Added to every wait: requests arrive a little after we send them, so keep a margin.
pub(crate) const MARGIN: Duration = Duration::from_millis(200);

/// When each of `n` requests may leave, from `start`, under `limits`, waiting as the client
/// does (the wait plus [`MARGIN`]): the send loop's own model, run on a virtual clock.
pub(crate) fn schedule(limits: &[(u32, Duration)], n: usize, start: Instant) -> Vec<Duration> {
    schedule_released(limits, std::iter::repeat_n(Duration::ZERO, n), start)
}

/// [`schedule`] for requests that may not leave before their release (after `start`, in order,
/// not decreasing): a delivery window that opens later.
pub(crate) fn schedule_released(
    limits: &[(u32, Duration)],
    releases: impl ExactSizeIterator<Item = Duration>,
    start: Instant,
) -> Vec<Duration> {
    let mut w = Windows::new(limits);
    let mut t = start;
    let mut out = Vec::with_capacity(releases.len());
    for release in releases {
        t = t.max(start + release);
        while let Err(wait) = w.try_take(t) {
            t += wait + MARGIN;
        }
        out.push(t - start);
    }
    out
}

/// The client-side limiter shared by every request of a run.
pub(crate) struct RateLimiter {
    inner: std::sync::Mutex<Windows>,
    /// Added to every wait ([`MARGIN`]).
    margin: Duration,
}

impl RateLimiter {
    pub(crate) fn new(per_minute: u32, per_hour: u32) -> RateLimiter {
        RateLimiter { inner: std::sync::Mutex::new(Windows::new(&windows(per_minute, per_hour))), margin: MARGIN }
    }

    pub(crate) async fn acquire(&self) {
        loop {
            let r = match self.inner.lock() {
                Ok(mut w) => w.try_take(Instant::now()),
                Err(poisoned) => poisoned.into_inner().try_take(Instant::now()),
            };
            match r {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait + self.margin).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_the_limit_in_any_window() {
        let mut w = Windows::new(&[(3, Duration::from_secs(10))]);
        let t0 = Instant::now();
        assert!(w.try_take(t0).is_ok());
        assert!(w.try_take(t0 + Duration::from_secs(1)).is_ok());
        assert!(w.try_take(t0 + Duration::from_secs(2)).is_ok());
        let wait = w.try_take(t0 + Duration::from_secs(3)).err();
        assert_eq!(wait, Some(Duration::from_secs(7)));
        assert!(w.try_take(t0 + Duration::from_secs(10)).is_ok());
        assert!(w.try_take(t0 + Duration::from_secs(10)).is_err());
    }

    #[test]
    fn the_schedule_is_the_limiter_on_a_virtual_clock() {
        let t0 = Instant::now();
        let s = schedule(&windows(600, 18_000), 1_000, t0);
        assert_eq!(s[599], Duration::ZERO, "the first 600 leave at once");
        assert_eq!(s[600], Duration::from_secs(60) + MARGIN, "the 601st when the first leaves the minute");
        assert_eq!(s[999], s[600]);
        let h = schedule(&windows(600, 1_000), 1_001, t0);
        assert_eq!(h[1000], Duration::from_secs(3600) + MARGIN, "the hour binds past its limit");
        assert!(schedule(&windows(1, 1), 0, t0).is_empty());
    }

    #[test]
    fn released_requests_wait_for_their_release_and_the_windows() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        // Two at once, then two released at 30 s: the minute's limit of 3 holds the fourth back
        // until the first leaves the window.
        let s = schedule_released(&windows(3, 100), [secs(0), secs(0), secs(30), secs(30)].into_iter(), t0);
        assert_eq!(s, vec![secs(0), secs(0), secs(30), secs(60) + MARGIN]);
        // Released long after: the windows are empty again.
        let s = schedule_released(&windows(1, 100), [secs(0), secs(3600)].into_iter(), t0);
        assert_eq!(s, vec![secs(0), secs(3600)]);
        assert_eq!(
            schedule_released(&windows(600, 18_000), std::iter::repeat_n(Duration::ZERO, 700), t0),
            schedule(&windows(600, 18_000), 700, t0)
        );
    }
}
