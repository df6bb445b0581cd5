//! Business hours (`businessHours:` in the config), for the policy's `outsideBusinessHours`: the
//! days and the hours of a working day at a fixed UTC offset. A fixed offset, not a time zone: it
//! does not follow daylight saving time (write the offset in force, or the wider of the two). The
//! check is pure: given the instants the sends start and finish (the plan's time and its forecast),
//! whether any of them falls outside.

use time::{OffsetDateTime, UtcOffset};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BusinessHours {
    pub(crate) offset: UtcOffset,
    /// Monday first.
    pub(crate) days: [bool; 7],
    /// Minutes after local midnight: open from `from` (inclusive) to `to` (exclusive), `from < to`.
    pub(crate) from: u32,
    pub(crate) to: u32,
}

pub(crate) const DAY_NAMES: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl BusinessHours {
    /// Whether `t` is inside business hours; with the instant the period it is in closes.
    fn period(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let local = t.to_offset(self.offset);
        let day = local.weekday().number_days_from_monday() as usize;
        let minute = u32::from(local.hour()) * 60 + u32::from(local.minute());
        if !self.days[day] || minute < self.from || minute >= self.to {
            return None;
        }
        let midnight = local.replace_time(time::Time::MIDNIGHT);
        Some(midnight + time::Duration::minutes(i64::from(self.to)))
    }

    /// Whether sends from `start` to `end` land (partly) outside business hours.
    pub(crate) fn outside(&self, start: OffsetDateTime, end: OffsetDateTime) -> bool {
        match self.period(start) {
            None => true,
            Some(closes) => end.max(start) >= closes,
        }
    }

    /// `mon-fri 09:00-18:00 UTC+01:00`, for people.
    pub(crate) fn text(&self) -> String {
        let days: Vec<&str> = DAY_NAMES.iter().zip(self.days).filter(|(_, on)| *on).map(|(d, _)| *d).collect();
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        format!("{} {}-{} UTC{}", days.join(","), hm(self.from), hm(self.to), self.offset_text())
    }

    fn offset_text(&self) -> String {
        let (h, m, _) = self.offset.as_hms();
        let sign = if h < 0 || m < 0 { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
    }
}

/// `HH:MM` as minutes after midnight (`24:00` allowed, as a closing time).
pub(crate) fn clock_minutes(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

/// `+HH:MM`, `-HH:MM`, `Z` or `UTC`.
pub(crate) fn offset(s: &str) -> Option<UtcOffset> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i8, &s[1..]),
        b'-' => (-1i8, &s[1..]),
        _ => return None,
    };
    let minutes = clock_minutes(rest).filter(|m| *m <= 14 * 60)?;
    UtcOffset::from_hms(sign * (minutes / 60) as i8, sign * (minutes % 60) as i8, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        crate::rfc3339::parse(s).expect("date")
    }

    #[test]
    fn outside_is_judged_in_the_offset_over_the_whole_span() {
        // Mon-Fri 09:00-18:00 at UTC+01:00. 2026-11-24 is a Tuesday.
        let bh = BusinessHours {
            offset: offset("+01:00").expect("offset"),
            days: [true, true, true, true, true, false, false],
            from: 9 * 60,
            to: 18 * 60,
        };
        let table = [
            ("2026-11-24T08:00:00Z", "2026-11-24T08:10:00Z", false),
            ("2026-11-24T07:59:00Z", "2026-11-24T08:10:00Z", true),
            ("2026-11-24T16:30:00Z", "2026-11-24T16:59:00Z", false),
            ("2026-11-24T16:30:00Z", "2026-11-24T17:00:00Z", true),
            ("2026-11-28T10:00:00Z", "2026-11-28T10:01:00Z", true),
            ("2026-11-24T23:30:00Z", "2026-11-24T23:31:00Z", true),
        ];
        for (start, end, want) in table {
            assert_eq!(bh.outside(at(start), at(end)), want, "{start} → {end}");
        }
        assert_eq!(bh.text(), "mon,tue,wed,thu,fri 09:00-18:00 UTC+01:00");
    }

    #[test]
    fn offsets_and_clock_times_parse_strictly() {
        assert_eq!(offset("-05:30").map(UtcOffset::whole_minutes), Some(-330));
        assert_eq!(offset("UTC"), Some(UtcOffset::UTC));
        for bad in ["+1", "01:00", "+15:00", "+01:60", "Europe/Paris", ""] {
            assert_eq!(offset(bad), None, "{bad}");
        }
        assert_eq!(clock_minutes("24:00"), Some(1440));
        assert_eq!(clock_minutes("9:00"), None);
        assert_eq!(clock_minutes("24:01"), None);
    }
}
