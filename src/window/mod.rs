//! Delivery windows in each recipient's local time: "weekdays 09:00–17:30 in the recipient's
//! zone". Every schedule used to be global UTC, so an IVR call planned for 09:00 rang at 04:00 in
//! New York. This is the pure core that answers, for a window, a time zone and an instant, whether
//! the instant is inside and, if not, when the window next opens (as a UTC instant and the local
//! wall time). The plan (who is sent now, who later and when), the send loop (each batch checked
//! again when it leaves) and the forecast (sends spread over the openings) all ask it: there is no
//! second model. The instant is always passed in (the plan's "now"), never read from a clock.
//!
//! Time zones come from `jiff` with the IANA database built into the binary, so every machine
//! answers the same, with or without `/usr/share/zoneinfo`.
//!
//! The rule, which makes daylight-saving changes unambiguous: on each listed day the window
//! **opens when the local clock first reaches `from`** and **closes when it first reaches `to`**
//! (the next day's `to` when `to` is earlier than `from`: a window across midnight belongs to the
//! day it opens). So:
//! - a `from` in an hour the clocks skip (02:30 on the spring change in Europe/Berlin) opens the
//!   window when the clocks jump (03:00 local); a window lying wholly inside the skipped hour does
//!   not open that day;
//! - a `from` or `to` in an hour that happens twice (02:30 on the autumn change) means the first
//!   time the clock shows it; a window that closed does not reopen when the clock goes back.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};

pub(crate) mod doc;
pub(crate) mod parse;
pub(crate) mod plan;

/// Minutes in a day: `to` may be `24:00`, the end of the day.
pub(crate) const DAY_MINUTES: u16 = 24 * 60;

/// Day names as written, Monday first (jiff's Monday-zero order).
pub(crate) const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A delivery window: the days it opens on, its local opening and closing times, and where the
/// zone comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryWindow {
    /// Whether it opens on each day, Monday first.
    pub(crate) days: [bool; 7],
    /// Local opening time, minutes after midnight (0..1440).
    pub(crate) from: u16,
    /// Local closing time, minutes after midnight (0..=1440); earlier than `from`: the next day.
    pub(crate) to: u16,
    pub(crate) zone: Zone,
}

/// Where a recipient's time zone comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Zone {
    /// One IANA zone for everyone (`timezone: Europe/Berlin`).
    Named(String),
    /// Each recipient's parameter of this name (`timezone: {parameter: tz}`).
    Parameter(String),
}

/// Whether a recipient may be sent at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eligible {
    /// Inside the window now.
    Now,
    /// Outside: the window next opens at this instant (local wall time beside it).
    At(Opening),
    /// No opening within [`HORIZON_DAYS`] (a zone unknown to the database, or a window that the
    /// clock changes keep shut): never sent by this run.
    Never,
}

/// When a window opens: the instant and the local wall time then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Opening {
    pub(crate) utc: Timestamp,
    pub(crate) local: DateTime,
}

/// How far ahead the next opening is looked for (a week, and a week more for days the clock
/// changes keep shut).
const HORIZON_DAYS: i32 = 15;

impl DeliveryWindow {
    /// Whether the window runs across midnight (22:00–06:00).
    pub(crate) fn overnight(&self) -> bool {
        self.to < self.from
    }

    /// The zone's name for recipient `params` (the named zone, or their parameter's value).
    pub(crate) fn zone_name<'a>(&'a self, params: &'a crate::manifest::Params) -> Option<&'a str> {
        match &self.zone {
            Zone::Named(name) => Some(name),
            Zone::Parameter(p) => params.get(p),
        }
    }

    /// Whether `t` is inside the window in `tz`, or when it next opens.
    pub(crate) fn eligible(&self, tz: &TimeZone, t: Timestamp) -> Eligible {
        let Ok(start) = tz.to_datetime(t).date().yesterday() else { return Eligible::Never };
        let mut day = start;
        for _ in 0..=HORIZON_DAYS {
            if self.days[day.weekday().to_monday_zero_offset() as usize]
                && let Some((open, close)) = self.occurrence(tz, day)
            {
                if t < open {
                    return Eligible::At(Opening { utc: open, local: tz.to_datetime(open) });
                }
                if t < close {
                    return Eligible::Now;
                }
            }
            let Ok(next) = day.tomorrow() else { return Eligible::Never };
            day = next;
        }
        Eligible::Never
    }

    /// The window opening on local date `day`, as instants `[open, close)`; `None` when the clock
    /// changes leave it empty that day.
    fn occurrence(&self, tz: &TimeZone, day: Date) -> Option<(Timestamp, Timestamp)> {
        let open = first_reaches(tz, day, self.from)?;
        let close_day = if self.overnight() { day.tomorrow().ok()? } else { day };
        let close = first_reaches(tz, close_day, self.to)?;
        (open < close).then_some((open, close))
    }

    /// `mon–fri 09:00–17:30 in Europe/Berlin`, `every day 22:00–06:00 (next day) in each
    /// recipient's zone (parameter tz)`.
    pub(crate) fn describe(&self) -> String {
        let zone = match &self.zone {
            Zone::Named(z) => z.clone(),
            Zone::Parameter(p) => format!("each recipient's zone (parameter {p})"),
        };
        let next = if self.overnight() { " (next day)" } else { "" };
        format!("{} {}–{}{next} in {zone}", self.day_list(), hhmm(self.from), hhmm(self.to))
    }

    /// `every day`, `mon–fri`, `mon, wed, fri–sun`: runs of three days or more as a range.
    pub(crate) fn day_list(&self) -> String {
        if self.days.iter().all(|d| *d) {
            return "every day".into();
        }
        let mut parts = Vec::new();
        let mut i = 0;
        while i < 7 {
            if !self.days[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i + 1 < 7 && self.days[i + 1] {
                i += 1;
            }
            match i - start {
                0 => parts.push(DAYS[start].to_string()),
                1 => parts.push(format!("{}, {}", DAYS[start], DAYS[i])),
                _ => parts.push(format!("{}–{}", DAYS[start], DAYS[i])),
            }
            i += 1;
        }
        parts.join(", ")
    }
}

/// The first instant at which the local clock in `tz` shows `minute` (after midnight; 1440 is the
/// next midnight) on `day`: the instant itself when it exists once, the first of two in an hour
/// that happens twice, and the moment the clock jumps when it is skipped.
pub(crate) fn first_reaches(tz: &TimeZone, day: Date, minute: u16) -> Option<Timestamp> {
    let (day, minute) = if minute >= DAY_MINUTES { (day.tomorrow().ok()?, 0) } else { (day, minute) };
    let dt = day.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        // The earlier of the two: the offset in force before the clock went back.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
        // Skipped: the clock jumped over it at the transition at or just before `dt` read in
        // the old offset (at it when `dt` is where the gap starts).
        AmbiguousOffset::Gap { before, .. } => {
            let late = before.to_timestamp(dt).ok()?;
            let after = late.checked_add(jiff::SignedDuration::from_nanos(1)).ok()?;
            Some(tz.preceding(after).next().map_or(late, |tr| tr.timestamp()))
        }
    }
}

/// `09:00`, `24:00`.
pub(crate) fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// A zone from the built-in IANA database, by its exact name.
pub(crate) fn zone(name: &str) -> Option<TimeZone> {
    // A name with anything but the characters IANA names use is not looked up at all.
    let plausible = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
    if !plausible {
        return None;
    }
    jiff::tz::db().get(name).ok()
}

/// The project's instants (`time`) as jiff's.
pub(crate) fn to_timestamp(t: time::OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).unwrap_or(Timestamp::MAX)
}

/// jiff's instants as the project's.
pub(crate) fn from_timestamp(t: Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
