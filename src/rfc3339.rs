//! RFC 3339 date-times, formatted and parsed in one place (plans, journal entries, the emulator,
//! `notBefore`/`notAfter`, `KORE_NOTIFY_NOW`).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `t` as RFC 3339 (`None` only for a date-time RFC 3339 cannot write, e.g. after year 9999).
pub(crate) fn format(t: OffsetDateTime) -> Option<String> {
    t.format(&Rfc3339).ok()
}

/// `t` as RFC 3339, to the second (empty when RFC 3339 cannot write it).
pub(crate) fn to_second(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).ok().and_then(format).unwrap_or_default()
}

/// Reads an RFC 3339 date-time.
pub(crate) fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}
