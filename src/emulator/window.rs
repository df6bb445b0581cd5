//! The emulator's rolling rate-limit windows: its own code, not the client's
//! (`src/kore/ratelimit.rs`), because the emulator is the oracle the client's limiter is tested
//! against; sharing the code would make a bug in it invisible to the tests.
//!
//! Written for obviousness, not speed: one list of the instants of the requests let through
//! (oldest first), and for each window a count of those younger than its period. A request is let
//! through when every window holds fewer than its limit; otherwise the answer is how long until
//! enough requests leave the fullest window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub(super) struct RollingLimits {
    /// (most requests, period), e.g. (600, one minute).
    limits: Vec<(usize, Duration)>,
    /// Instants of the requests let through, oldest first; none older than the longest period.
    admitted: VecDeque<Instant>,
}

impl RollingLimits {
    pub(super) fn new(limits: &[(u32, Duration)]) -> RollingLimits {
        RollingLimits {
            limits: limits.iter().map(|&(n, period)| (n.max(1) as usize, period)).collect(),
            admitted: VecDeque::new(),
        }
    }

    /// Lets a request at `now` through (and remembers it), or says how long until one would be.
    pub(super) fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        let longest = self.limits.iter().map(|&(_, p)| p).max().unwrap_or_default();
        while self.admitted.front().is_some_and(|&t| now.saturating_duration_since(t) >= longest) {
            self.admitted.pop_front();
        }
        let mut wait = Duration::ZERO;
        for &(limit, period) in &self.limits {
            let inside: Vec<Instant> =
                self.admitted.iter().copied().filter(|&t| now.saturating_duration_since(t) < period).collect();
            if inside.len() >= limit {
                // This many must leave the window before one more fits; the last of them to leave
                // is `inside[excess - 1]`, and it leaves when it is `period` old.
                let excess = inside.len() + 1 - limit;
                let leaves_at = inside[excess - 1] + period;
                wait = wait.max(leaves_at.saturating_duration_since(now));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        self.admitted.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_window_holds_at_most_its_limit() {
        let t0 = Instant::now();
        let mut w = RollingLimits::new(&[(3, 10 * S)]);
        for i in 0..3 {
            assert_eq!(w.admit(t0 + i * S), Ok(()));
        }
        // The first request leaves the window at t0 + 10 s.
        assert_eq!(w.admit(t0 + 3 * S), Err(7 * S));
        assert_eq!(w.admit(t0 + 10 * S), Ok(()));
        assert_eq!(w.admit(t0 + 10 * S), Err(S));
        assert_eq!(w.admit(t0 + 11 * S), Ok(()));
    }

    #[test]
    fn the_longer_window_applies_too() {
        let t0 = Instant::now();
        // 2 per second and 3 per minute.
        let mut w = RollingLimits::new(&[(2, S), (3, 60 * S)]);
        assert_eq!(w.admit(t0), Ok(()));
        assert_eq!(w.admit(t0), Ok(()));
        assert_eq!(w.admit(t0), Err(S));
        assert_eq!(w.admit(t0 + S), Ok(()));
        // The minute is full until the first request is a minute old.
        assert_eq!(w.admit(t0 + 2 * S), Err(58 * S));
        assert_eq!(w.admit(t0 + 60 * S), Ok(()));
    }

    /// Against a brute-force count over every instant a request was let through: no window of
    /// `period` ever holds more than `limit`, a refused request really would have overfilled one,
    /// and the wait it is told is exact.
    #[test]
    fn no_window_is_ever_overfilled() {
        let t0 = Instant::now();
        let limits = [(5u32, 10 * S), (12u32, 60 * S)];
        let mut w = RollingLimits::new(&limits);
        let mut seed = 7u64;
        let mut let_through: Vec<Instant> = Vec::new();
        let mut now = t0;
        for _ in 0..2000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            now += Duration::from_millis((seed >> 33) % 3000);
            let count = |p: Duration| let_through.iter().filter(|&&t| now.duration_since(t) < p).count();
            let full = limits.iter().any(|&(l, p)| count(p) >= l as usize);
            match w.admit(now) {
                Ok(()) => {
                    assert!(!full, "let through into a full window");
                    let_through.push(now);
                }
                Err(wait) => {
                    assert!(full, "refused although no window was full");
                    // Retry-After is exact: after the wait a request fits, a moment before it does not.
                    assert_eq!(w.clone().admit(now + wait), Ok(()));
                    assert!(w.clone().admit(now + wait.saturating_sub(Duration::from_millis(1))).is_err());
                }
            }
        }
        assert!(let_through.len() > 100);
    }
}
