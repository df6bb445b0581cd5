use super::*;

fn t(s: &str) -> Timestamp {
    s.parse().expect("instant")
}

fn w(days: &[&str], from: &str, to: &str, zone: &str) -> DeliveryWindow {
    let minute = |s: &str| parse::minutes(s, true).expect("time");
    let mut d = [false; 7];
    for day in days {
        d[DAYS.iter().position(|x| x == day).expect("day")] = true;
    }
    DeliveryWindow { days: d, from: minute(from), to: minute(to), zone: Zone::Named(zone.into()) }
}

const WEEK: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri"];

/// `(window, now) → expected`, where expected is `"now"`, `"never"` or `"UTC instant / local"`.
fn check(win: &DeliveryWindow, now: &str, expected: &str) {
    let Zone::Named(name) = &win.zone else { panic!("named zone") };
    let tz = zone(name).expect("zone");
    let got = match win.eligible(&tz, t(now)) {
        Eligible::Now => "now".to_string(),
        Eligible::Never => "never".to_string(),
        Eligible::At(o) => format!("{} / {}", o.utc, o.local.strftime("%Y-%m-%d %H:%M")),
    };
    assert_eq!(got, expected, "{} at {now}", win.describe());
}

#[test]
fn the_edges_of_an_ordinary_window() {
    let office = w(WEEKDAYS, "09:00", "17:30", "Europe/Berlin");
    // 2026-12-01 is a Tuesday; Berlin is UTC+1 in winter.
    check(&office, "2026-12-01T07:59:59Z", "2026-12-01T08:00:00Z / 2026-12-01 09:00");
    check(&office, "2026-12-01T08:00:00Z", "now");
    check(&office, "2026-12-01T16:29:59Z", "now");
    check(&office, "2026-12-01T16:30:00Z", "2026-12-02T08:00:00Z / 2026-12-02 09:00");
    // Friday evening waits for Monday.
    check(&office, "2026-12-04T16:30:00Z", "2026-12-07T08:00:00Z / 2026-12-07 09:00");
    check(&office, "2026-12-05T12:00:00Z", "2026-12-07T08:00:00Z / 2026-12-07 09:00");
    let ny = w(WEEKDAYS, "09:00", "17:00", "America/New_York");
    check(&ny, "2026-12-04T09:00:00Z", "2026-12-04T14:00:00Z / 2026-12-04 09:00");
    // A day's window from 00:00 to 24:00 is the whole day, every day.
    let always = w(WEEK, "00:00", "24:00", "Asia/Kolkata");
    for now in ["2026-01-01T00:00:00Z", "2026-03-29T01:00:00Z", "2026-07-15T18:29:59Z", "2026-12-31T23:59:59Z"] {
        check(&always, now, "now");
    }
}

#[test]
fn a_window_across_midnight_belongs_to_the_day_it_opens() {
    let night = w(&["fri"], "22:00", "06:00", "Europe/London");
    // 2026-12-04 is a Friday; London is UTC+0 in winter.
    check(&night, "2026-12-04T21:59:00Z", "2026-12-04T22:00:00Z / 2026-12-04 22:00");
    check(&night, "2026-12-04T23:00:00Z", "now");
    check(&night, "2026-12-05T05:59:59Z", "now");
    check(&night, "2026-12-05T06:00:00Z", "2026-12-11T22:00:00Z / 2026-12-11 22:00");
    // Thursday night is not Friday's window.
    check(&night, "2026-12-04T02:00:00Z", "2026-12-04T22:00:00Z / 2026-12-04 22:00");
}

#[test]
fn the_european_changes() {
    // Berlin: 2026-03-29 02:00 CET → 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST → 02:00 CET.
    let office = w(WEEKDAYS, "09:00", "17:30", "Europe/Berlin");
    check(&office, "2026-03-27T17:00:00Z", "2026-03-30T07:00:00Z / 2026-03-30 09:00");
    check(&office, "2026-10-23T17:00:00Z", "2026-10-26T08:00:00Z / 2026-10-26 09:00");
    // Opening in the skipped hour: at the jump, 03:00 local.
    let skipped = w(&["sun"], "02:30", "04:00", "Europe/Berlin");
    check(&skipped, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z / 2026-03-29 03:00");
    check(&skipped, "2026-03-29T01:00:00Z", "now");
    check(&skipped, "2026-03-29T01:59:59Z", "now");
    check(&skipped, "2026-03-29T02:00:00Z", "2026-04-05T00:30:00Z / 2026-04-05 02:30");
    // Wholly inside the skipped hour: no window that day.
    let gone = w(&["sun"], "02:00", "02:30", "Europe/Berlin");
    check(&gone, "2026-03-28T12:00:00Z", "2026-04-05T00:00:00Z / 2026-04-05 02:00");
    // Opening in the hour that happens twice: the first time (CEST, 00:30 UTC).
    let twice = w(&["sun"], "02:30", "03:30", "Europe/Berlin");
    check(&twice, "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z / 2026-10-25 02:30");
    // It stays open through the repeated hour until the clock first shows 03:30 (CET).
    check(&twice, "2026-10-25T01:45:00Z", "now");
    check(&twice, "2026-10-25T02:29:59Z", "now");
    check(&twice, "2026-10-25T02:30:00Z", "2026-11-01T01:30:00Z / 2026-11-01 02:30");
    // Closing in it: the first 02:30 closes it, and going back to 02:00 does not reopen it.
    let early = w(&["sun"], "01:00", "02:30", "Europe/Berlin");
    check(&early, "2026-10-24T23:00:00Z", "now");
    check(&early, "2026-10-25T00:30:00Z", "2026-11-01T00:00:00Z / 2026-11-01 01:00");
    check(&early, "2026-10-25T01:15:00Z", "2026-11-01T00:00:00Z / 2026-11-01 01:00");
}

#[test]
fn the_american_changes() {
    // New York: 2026-03-08 02:00 EST → 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT → 01:00 EST.
    let office = w(WEEKDAYS, "09:00", "17:00", "America/New_York");
    check(&office, "2026-03-06T22:00:00Z", "2026-03-09T13:00:00Z / 2026-03-09 09:00");
    check(&office, "2026-03-09T12:59:59Z", "2026-03-09T13:00:00Z / 2026-03-09 09:00");
    check(&office, "2026-10-30T22:00:00Z", "2026-11-02T14:00:00Z / 2026-11-02 09:00");
    let skipped = w(&["sun"], "02:30", "04:00", "America/New_York");
    check(&skipped, "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z / 2026-03-08 03:00");
    check(&skipped, "2026-03-08T07:30:00Z", "now");
    check(&skipped, "2026-03-08T08:00:00Z", "2026-03-15T06:30:00Z / 2026-03-15 02:30");
    // 01:30 happens twice on 2026-11-01: EDT (05:30 UTC) first.
    let twice = w(&["sun"], "01:30", "09:00", "America/New_York");
    check(&twice, "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z / 2026-11-01 01:30");
    check(&twice, "2026-11-01T06:15:00Z", "now");
    check(&twice, "2026-11-01T13:59:59Z", "now");
    check(&twice, "2026-11-01T14:00:00Z", "2026-11-08T06:30:00Z / 2026-11-08 01:30");
    // Overnight across the autumn change: Saturday 22:00 EDT to Sunday 06:00 EST (9 hours).
    let night = w(&["sat"], "22:00", "06:00", "America/New_York");
    check(&night, "2026-11-01T02:00:00Z", "now");
    check(&night, "2026-11-01T10:59:59Z", "now");
    check(&night, "2026-11-01T11:00:00Z", "2026-11-08T03:00:00Z / 2026-11-07 22:00");
}

/// Whether the local time at `ts` is one the clock shows twice (a fold).
fn in_fold(tz: &TimeZone, ts: Timestamp) -> bool {
    matches!(tz.to_ambiguous_timestamp(tz.to_datetime(ts)).offset(), AmbiguousOffset::Fold { .. })
}

#[test]
fn every_answer_is_consistent_across_the_changes() {
    // Sampled every 7 minutes over the weeks of the four changes, for windows whose edges fall in
    // the skipped and the repeated hours: "now" is inside the local window (outside a repeated
    // hour), an opening is in the future, is inside, and no sample before it is.
    let windows = [
        w(WEEKDAYS, "09:00", "17:30", "Europe/Berlin"),
        w(WEEK, "02:30", "03:30", "Europe/Berlin"),
        w(WEEK, "01:00", "02:30", "Europe/Berlin"),
        w(&["sat", "sun"], "22:00", "02:15", "Europe/Berlin"),
        w(WEEK, "02:00", "02:30", "America/New_York"),
        w(WEEK, "01:30", "09:00", "America/New_York"),
        w(&["sat"], "23:00", "01:30", "America/New_York"),
    ];
    for start in ["2026-03-04T00:00:00Z", "2026-03-26T00:00:00Z", "2026-10-22T00:00:00Z", "2026-10-29T00:00:00Z"] {
        for win in &windows {
            let Zone::Named(name) = &win.zone else { continue };
            let tz = zone(name).expect("zone");
            let samples: Vec<Timestamp> =
                (0..(8 * 24 * 60 / 7)).map(|i| t(start) + jiff::SignedDuration::from_mins(7 * i)).collect();
            for (i, &s) in samples.iter().enumerate() {
                match win.eligible(&tz, s) {
                    Eligible::Now => {
                        if !in_fold(&tz, s) {
                            let local = tz.to_datetime(s);
                            let m = (local.hour() as u16) * 60 + local.minute() as u16;
                            let inside =
                                if win.overnight() { m >= win.from || m < win.to } else { m >= win.from && m < win.to };
                            assert!(inside, "{} at {s}: now, but local {local}", win.describe());
                        }
                    }
                    Eligible::At(o) => {
                        assert!(o.utc > s, "{} at {s}: opening {} not ahead", win.describe(), o.utc);
                        assert_eq!(win.eligible(&tz, o.utc), Eligible::Now, "{} opens at {}", win.describe(), o.utc);
                        assert_eq!(tz.to_datetime(o.utc), o.local);
                        // The next sample before the opening waits for the same opening (and
                        // so, step by step, does every sample up to it).
                        if let Some(&next) = samples.get(i + 1).filter(|x| **x < o.utc) {
                            assert_eq!(win.eligible(&tz, next), Eligible::At(o), "{} at {next}", win.describe());
                        }
                    }
                    Eligible::Never => panic!("{} at {s}: never", win.describe()),
                }
            }
        }
    }
}

#[test]
fn zones_come_from_the_built_in_database() {
    assert!(zone("Europe/Berlin").is_some());
    assert!(zone("America/Argentina/Buenos_Aires").is_some());
    assert!(zone("UTC").is_some());
    for bad in ["", "Europe/Berlinn", "../../etc/passwd", "Mars/Olympus", "Europe/Berlin\n", "local"] {
        assert!(zone(bad).is_none(), "{bad:?}");
    }
    let now = time::macros::datetime!(2026-11-24 09:00:00.5 UTC);
    assert_eq!(from_timestamp(to_timestamp(now)), now);
}

#[test]
fn windows_in_words() {
    assert_eq!(w(WEEKDAYS, "09:00", "17:30", "Europe/Berlin").describe(), "mon–fri 09:00–17:30 in Europe/Berlin");
    assert_eq!(w(WEEK, "22:00", "06:00", "UTC").describe(), "every day 22:00–06:00 (next day) in UTC");
    assert_eq!(w(&["mon", "tue", "thu", "fri", "sat", "sun"], "00:00", "24:00", "UTC").day_list(), "mon, tue, thu–sun");
    assert_eq!(w(&["wed"], "00:00", "24:00", "UTC").day_list(), "wed");
}
