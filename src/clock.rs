//! The one wall clock. The CLI makes it (the only place that decides what time it is) and hands
//! it down: journal and lock-holder timestamps and the JWT's `iat` read it, never the system
//! directly, so a test can run them at a fixed time. The plan's "now" (`Global::now`, which
//! `KORE_NOTIFY_NOW` overrides) is one reading of it taken at start-up. The emulator, a separate
//! server, keeps its own.

use time::OffsetDateTime;

/// Where the current time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The system's clock, in UTC.
    System,
    /// Always this time (tests, benchmarks).
    Fixed(OffsetDateTime),
}

impl Clock {
    /// The current time.
    pub fn now(self) -> OffsetDateTime {
        match self {
            Clock::System => OffsetDateTime::now_utc(),
            Clock::Fixed(t) => t,
        }
    }

    /// The current time as RFC 3339, to the second (journal entries, lock holders).
    pub fn stamp(self) -> String {
        crate::rfc3339::to_second(self.now())
    }
}
