//! Delivery windows in each recipient's local time, through the binary against the emulator:
//! scheduled runs at many instants across the European and American daylight-saving changes send
//! each recipient once, inside their own window; the plan groups the others by when their window
//! opens; a window that closes during an apply leaves the rest for the next; problems are refused
//! with their position.
//!
//! The windows here are checked against a hand-written oracle (the changes' instants written out),
//! not against the time-zone crate the tool uses.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::harness::*;

const ZONES: [&str; 4] = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"];

/// The zone's offset from UTC at `t`, in minutes: the 2026 changes written out.
fn offset(zone: &str, t: OffsetDateTime) -> i64 {
    match zone {
        "Europe/Berlin" if t >= datetime!(2026-03-29 01:00 UTC) && t < datetime!(2026-10-25 01:00 UTC) => 120,
        "Europe/Berlin" => 60,
        "America/New_York" if t >= datetime!(2026-03-08 07:00 UTC) && t < datetime!(2026-11-01 06:00 UTC) => -240,
        "America/New_York" => -300,
        "Asia/Kolkata" => 330,
        _ => 0,
    }
}

/// Instants whose local time in some zone here is shown twice (the autumn changes).
fn in_repeated_hour(t: OffsetDateTime) -> bool {
    (t >= datetime!(2026-10-25 00:00 UTC) && t < datetime!(2026-10-25 02:00 UTC))
        || (t >= datetime!(2026-11-01 05:00 UTC) && t < datetime!(2026-11-01 07:00 UTC))
}

/// A window: days (0 = Monday), from and to in minutes after midnight.
struct Win {
    key: &'static str,
    yaml: &'static str,
    days: &'static [u8],
    from: i64,
    to: i64,
}

impl Win {
    /// Whether the local wall time at `t` in `zone` is inside (across midnight: the day it opened).
    fn inside(&self, zone: &str, t: OffsetDateTime) -> bool {
        let local = t + time::Duration::minutes(offset(zone, t));
        let day = local.weekday().number_days_from_monday();
        let m = i64::from(local.hour()) * 60 + i64::from(local.minute());
        if self.from < self.to {
            self.days.contains(&day) && m >= self.from && m < self.to
        } else {
            (self.days.contains(&day) && m >= self.from) || (self.days.contains(&((day + 6) % 7)) && m < self.to)
        }
    }
}

const WINDOWS: [Win; 3] = [
    // The config's default (this notification has no window of its own).
    Win { key: "office", yaml: "", days: &[0, 1, 2, 3, 4], from: 9 * 60, to: 17 * 60 },
    Win {
        key: "night",
        yaml: "deliveryWindow: {days: [sat], from: \"22:00\", to: \"06:00\", timezone: {parameter: tz}}\n",
        days: &[5],
        from: 22 * 60,
        to: 6 * 60,
    },
    // Opens in the hour the spring change skips (and the autumn change repeats).
    Win {
        key: "early",
        yaml: "deliveryWindow: {days: [sun], from: \"02:30\", to: \"04:00\", timezone: {parameter: tz}}\n",
        days: &[6],
        from: 150,
        to: 240,
    },
];

const DEFAULT_WINDOW: &str =
    "deliveryWindow: {days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"17:00\", timezone: {parameter: tz}}\n";

fn email(key: &str, zone: &str) -> String {
    format!("{key}.{}@example.com", zone.replace('/', "-").to_lowercase())
}

fn manifest(w: &Win) -> String {
    let ids: Vec<String> =
        ZONES.iter().map(|z| format!("  - {{email: {}, parameters: {{tz: {z}}}}}", email(w.key, z))).collect();
    format!(
        "key: {}\nchannel: ivr\ncontent: {{type: text, value: hello}}\n{}identities:\n{}\n",
        w.key,
        w.yaml,
        ids.join("\n")
    )
}

fn window_repo(emu: &Emulator) -> Test {
    let mut t = Test::repo(&emu.url).file("kore-notify.yaml", &(config(&emu.url) + DEFAULT_WINDOW));
    for w in &WINDOWS {
        t = t.manifest(&format!("{}.yaml", w.key), &manifest(w));
    }
    t
}

#[test]
fn scheduled_runs_across_the_clock_changes_send_each_recipient_once_inside_their_window() {
    // From the Saturday before each change to the Monday after, a run every 97 minutes (so the
    // runs fall at every minute of the hour in turn).
    for start in [
        datetime!(2026-03-07 00:00 UTC),
        datetime!(2026-03-28 00:00 UTC),
        datetime!(2026-10-24 00:00 UTC),
        datetime!(2026-10-31 00:00 UTC),
    ] {
        let emu = Emulator::start(&[]);
        let mut t = window_repo(&emu);
        let mut sent: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
        for k in 0..42 {
            let now = start + time::Duration::minutes(97 * k);
            if in_repeated_hour(now) {
                continue;
            }
            let stamp = now.format(&time::format_description::well_known::Rfc3339).expect("rfc3339");
            let (o, next) = t.env("KORE_NOTIFY_NOW", &stamp).args(["apply", "--auto-approve"]).run();
            assert_eq!(o.status, 0, "{stamp}: {}", o.stderr);
            t = next;
            let delivered = emu.deliveries();
            for w in &WINDOWS {
                for z in ZONES {
                    let id = format!("ivr:{}", email(w.key, z));
                    let count = delivered.get(&id).copied().unwrap_or(0);
                    assert!(count <= 1, "{id} delivered {count} times");
                    if count == 1 && !sent.contains_key(&id) {
                        assert!(w.inside(z, now), "{id} sent at {stamp}, outside its window");
                        sent.insert(id.clone(), now);
                    }
                    if w.inside(z, now) {
                        assert_eq!(count, 1, "{id} inside its window at {stamp} and not sent");
                    }
                }
            }
        }
        // Each window opened for some zone in each of these weekends.
        for w in &WINDOWS {
            assert!(sent.keys().any(|id| id.contains(&format!(":{}.", w.key))), "{} never sent from {start}", w.key);
        }
    }
}

#[test]
fn the_plan_groups_recipients_by_when_their_window_opens() {
    let emu = Emulator::start(&[]);
    let t = window_repo(&emu);
    // Friday 2026-12-04 10:00 UTC: Berlin 11:00, Kolkata 15:30 and UTC 10:00 are inside office
    // hours; New York (05:00) opens at 14:00 UTC. Nobody's Saturday night or Sunday morning yet.
    let t = t.env("KORE_NOTIFY_NOW", "2026-12-04T10:00:00Z");
    let (o, t) = t.args(["plan"]).status(0).run();
    assert!(o.stdout.contains("3 now; 1 at 2026-12-04 14:00 UTC, 09:00 America/New_York"), "{}", o.stdout);
    assert!(o.stdout.contains("… waiting  night"), "{}", o.stdout);
    assert!(
        o.stdout.contains("0 now; 1 at 2026-12-05 16:30 UTC, 22:00 Asia/Kolkata; 1 at 2026-12-05 21:00 UTC, 22:00 Europe/Berlin; 1 at 2026-12-05 22:00 UTC, 22:00 UTC; 1 at 2026-12-06 03:00 UTC, 22:00 America/New_York"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("then 9 requests as delivery windows open"), "{}", o.stdout);
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let office = v["targets"][0]["notifications"]
        .as_array()
        .expect("list")
        .iter()
        .find(|n| n["key"] == "office")
        .expect("office");
    assert_eq!(office["action"], "send");
    assert_eq!(office["sends"].as_array().map(Vec::len), Some(3));
    assert_eq!(office["recipients"]["waiting"], 1);
    let w = &office["deliveryWindow"];
    assert_eq!(w["now"], 3);
    assert_eq!(
        w["later"][0],
        serde_json::json!({"at": "2026-12-04T14:00:00Z", "local": "2026-12-04T09:00", "timezone": "America/New_York", "recipients": 1})
    );
    assert_eq!(v["summary"]["byAction"]["waiting"], 2, "{}", v["summary"]);
    assert_eq!(v["targets"][0]["forecast"]["requests"], 1);
    assert_eq!(v["targets"][0]["forecast"]["laterRequests"], 9);
    let (o, t) = t.args(["plan", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.contains("**Delivery window** mon–fri 09\\:00–17\\:00 in each recipient"), "{}", o.stdout);
    assert!(o.stdout.contains("3 now; 1 at 2026\\-12\\-04 14\\:00 UTC, 09\\:00 America/New\\_York"), "{}", o.stdout);
    // Someone is inside their window now: a pending send.
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(2).run();
    let (o, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert!(o.stdout.contains("Apply: 1 request(s) accepted (3 recipient(s))"), "{}", o.stdout);
    assert_eq!(emu.stats()["accepted"], 1, "the forecast's one request");
    // Now only waiting: nothing pending for --detailed-exitcode, and apply sends nothing.
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).run();
    let (o, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert!(o.stderr.contains("Nothing to send"), "{}", o.stderr);
    assert_eq!(emu.deliveries().len(), 3);
    // A scheduled run after New York opens sends it, and only it.
    let (_, _) = t.env("KORE_NOTIFY_NOW", "2026-12-04T14:05:00Z").args(["apply", "--auto-approve"]).status(0).run();
    let d = emu.deliveries();
    assert_eq!(d.len(), 4);
    assert_eq!(d.get(&format!("ivr:{}", email("office", "America/New_York"))), Some(&1));
}

#[test]
fn a_window_that_closes_during_an_apply_leaves_the_rest_for_the_next() {
    // Ten requests of one recipient each, 400 ms apiece, starting two seconds before the window
    // closes at 10:00 UTC: the batches that would leave after it are not sent.
    let emu = Emulator::start(&["--latency-ms", "400"]);
    let ids: Vec<String> = (0..10).map(|i| format!("r{i}@example.com")).collect();
    let m = format!(
        "key: k\nchannel: ivr\ncontent: {{type: text, value: hi}}\ndeliveryWindow: {{from: \"09:00\", to: \"10:00\", timezone: UTC}}\nidentities: [{}]\n",
        ids.join(", ")
    );
    let t = Test::repo(&emu.url)
        .file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 1"))
        .manifest("k.yaml", &m)
        .env("KORE_NOTIFY_NOW", "2026-11-24T09:59:58Z");
    let (o, t) = t.args(["apply", "--auto-approve", "--parallelism", "1"]).status(0).run();
    let first = emu.deliveries().len();
    assert!(first < 10, "{first} sent: {}", o.stdout);
    assert!(o.stderr.contains("their delivery window closed during the apply"), "{}", o.stderr);
    // The next day's window sends the rest, once.
    let (o, _) = t.env("KORE_NOTIFY_NOW", "2026-11-25T09:00:00Z").args(["apply", "--auto-approve"]).status(0).run();
    assert!(o.stdout.contains(&format!("({} recipient(s))", 10 - first)), "{}", o.stdout);
    let d = emu.deliveries();
    assert_eq!(d.len(), 10);
    assert!(d.values().all(|c| *c == 1), "{d:?}");
}

#[test]
fn a_window_that_opens_after_not_after_is_refused_at_plan_time() {
    let emu = Emulator::start(&[]);
    // Friday 10:00 UTC; the window opens on Saturday, notAfter is Friday night.
    let m = "key: k\nchannel: msteams\ncontent: {type: text, value: hi}\nnotAfter: 2026-12-04T23:00:00Z\ndeliveryWindow: {days: [sat], from: \"09:00\", to: \"12:00\", timezone: Europe/Berlin}\nidentities: [a@x.com]\n";
    let t = Test::repo(&emu.url).manifest("k.yaml", m).env("KORE_NOTIFY_NOW", "2026-12-04T10:00:00Z");
    let (_, t) =
        t.args(["plan"]).status(1).stderr_has("`k` cannot be sent before its notAfter 2026-12-04T23:00:00Z").run();
    let (_, t) = t.args(["apply", "--auto-approve"]).status(1).run();
    assert!(emu.deliveries().is_empty());
    // `deliveryWindow: off` sends at once, whatever the config says.
    let off = m.replace(
        "deliveryWindow: {days: [sat], from: \"09:00\", to: \"12:00\", timezone: Europe/Berlin}",
        "deliveryWindow: off",
    );
    let cfg = config(&emu.url) + DEFAULT_WINDOW;
    let (_, _) =
        t.file("kore-notify.yaml", &cfg).manifest("k.yaml", &off).args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 1);
}

#[test]
fn window_problems_are_refused_with_their_position() {
    let base = "key: k\nchannel: ivr\ncontent: {type: text, value: hi}\n";
    let one = "identities: [{email: a@x.com, parameters: {tz: Europe/Berlin}}]\n";
    // (deliveryWindow line, identities, the line pointed at and the text it points to, words)
    let cases: &[(&str, &str, (usize, &str), &str)] = &[
        (
            "deliveryWindow: {from: \"09:00\", to: \"17:00\", timezone: Europe/Berln}",
            one,
            (4, "Europe/Berln"),
            "`Europe/Berln` is not an IANA time zone",
        ),
        (
            "deliveryWindow: {from: \"9am\", to: \"17:00\", timezone: UTC}",
            one,
            (4, "\"9am\""),
            "`9am` is not a time of day",
        ),
        (
            "deliveryWindow: {from: \"09:00\", to: \"24:30\", timezone: UTC}",
            one,
            (4, "\"24:30\""),
            "`24:30` is not a time of day",
        ),
        (
            "deliveryWindow: {from: \"09:00\", to: \"09:00\", timezone: UTC}",
            one,
            (4, "\"09:00\", timezone"),
            "the window is empty",
        ),
        ("deliveryWindow: {days: [], from: \"09:00\", to: \"10:00\", timezone: UTC}", one, (4, "[]"), "no days"),
        (
            "deliveryWindow: {days: [mon, fun], from: \"09:00\", to: \"10:00\", timezone: UTC}",
            one,
            (4, "fun"),
            "`fun` is not a valid value",
        ),
        (
            "deliveryWindow: {days: [mon, mon], from: \"09:00\", to: \"10:00\", timezone: UTC}",
            one,
            (4, "mon]"),
            "`mon` is listed twice",
        ),
        ("deliveryWindow: {from: \"09:00\", to: \"10:00\"}", one, (4, "{"), "missing required field `timezone`"),
        (
            "deliveryWindow: {from: \"09:00\", to: \"10:00\", timezone: {parameter: \"\"}}",
            one,
            (4, "\"\""),
            "is not a parameter name",
        ),
        ("deliveryWindow: always", one, (4, "always"), "expected a mapping or `off`"),
        (
            "deliveryWindow: {from: \"09:00\", to: \"10:00\", timezone: {parameter: tz}}",
            "identities:\n  - {email: a@x.com, parameters: {tz: Europe/Berlin}}\n  - {email: b@x.com, parameters: {tz: Mars/Olympus}}\n",
            (7, "{email"),
            "`Mars/Olympus` is not an IANA time zone (parameter `tz` of `b@x.com`)",
        ),
        (
            "deliveryWindow: {from: \"09:00\", to: \"10:00\", timezone: {parameter: tz}}",
            "identities:\n  - {email: a@x.com}\n",
            (6, "{email"),
            "`a@x.com` has no parameter `tz`",
        ),
    ];
    for (window, ids, (line, needle), words) in cases {
        let text = format!("{base}{window}\n{ids}");
        let column = text.lines().nth(line - 1).and_then(|l| l.find(needle)).expect("needle") + 1;
        let at = format!("k.yaml:{line}:{column}");
        let (o, _) = Test::repo("http://127.0.0.1:9").manifest("k.yaml", &text).args(["validate"]).status(1).run();
        assert!(o.stderr.contains(&at) && o.stderr.contains(words), "{window}: expected {at} {words}:\n{}", o.stderr);
    }
    // In a CSV audience: the row; in the config's default: the config's line.
    let (o, _) = Test::repo("http://127.0.0.1:9")
        .file("kore-notify.yaml", &(config("http://127.0.0.1:9") + DEFAULT_WINDOW))
        .manifest("k.yaml", &format!("{base}identitiesFrom: people.csv\n"))
        .manifest("people.csv", "email,tz\na@x.com,Europe/Berlin\nb@x.com,Europe/Berlim\n")
        .args(["validate"])
        .status(1)
        .run();
    assert!(o.stderr.contains("people.csv:3:") && o.stderr.contains("`Europe/Berlim`"), "{}", o.stderr);
    assert!(o.stderr.contains("did you mean `Europe/Berlin`"), "{}", o.stderr);
    let bad =
        config("http://127.0.0.1:9") + "deliveryWindow: {from: \"09:00\", to: \"10:00\", timezone: Nowhere/City}\n";
    let (o, _) = Test::repo("http://127.0.0.1:9").file("kore-notify.yaml", &bad).args(["validate"]).status(1).run();
    assert!(o.stderr.contains("kore-notify.yaml:9:56") && o.stderr.contains("`Nowhere/City`"), "{}", o.stderr);
    // The zone's parameter is not "used by no placeholder".
    let (o, _) = Test::repo("http://127.0.0.1:9")
        .file("kore-notify.yaml", &(config("http://127.0.0.1:9") + DEFAULT_WINDOW))
        .manifest("k.yaml", &format!("{base}{one}"))
        .args(["validate"])
        .status(0)
        .run();
    assert!(!o.stderr.contains("used by no placeholder"), "{}", o.stderr);
}

/// Two targets, each with its own emulator: `deliveryWindow` written at the top is every target's
/// default, `deliveryWindow: off` in a target turns it off there only.
fn two_targets(staging: &Emulator, production: &Emulator, production_window: &str) -> String {
    let target = |name: &str, url: &str, window: &str| {
        format!(
            "  {name}:\n    host: {url}\n    botId: st-{name}\n    clientId: ${{KORE_CLIENT_ID}}\n    clientSecret: ${{KORE_CLIENT_SECRET}}\n{window}"
        )
    };
    format!(
        "deliveryWindow: {{days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"17:00\", timezone: Europe/Berlin}}\ntargets:\n{}{}manifests: [notifications]\n",
        target("staging", &staging.url, "    deliveryWindow: off\n"),
        target("production", &production.url, production_window)
    )
}

#[test]
fn each_target_has_its_own_default_window_inherited_from_the_top() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let hello = "key: hello\nchannel: msteams\ncontent: {type: text, value: Hello}\nidentities: [a@example.com]\n";
    let urgent = "key: urgent\nchannel: msteams\ncontent: {type: text, value: Now}\ndeliveryWindow: off\nidentities: [b@example.com]\n";
    // Friday 06:00 UTC, 07:00 in Berlin: production's window (the top's) opens at 08:00 UTC.
    let t = Test::new()
        .file("kore-notify.yaml", &two_targets(&st, &pr, ""))
        .manifest("hello.yaml", hello)
        .manifest("urgent.yaml", urgent)
        .env("KORE_NOTIFY_NOW", "2026-12-04T06:00:00Z");
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let (staging, production) = (&v["targets"][0], &v["targets"][1]);
    assert_eq!((&staging["name"], &production["name"]), (&"staging".into(), &"production".into()));
    let of = |p: &serde_json::Value, key: &str| {
        p["notifications"].as_array().expect("list").iter().find(|n| n["key"] == key).cloned().expect("key")
    };
    assert_eq!(of(staging, "hello")["action"], "send", "off in staging: {staging}");
    assert!(of(staging, "hello").get("deliveryWindow").is_none(), "{staging}");
    assert_eq!(of(production, "hello")["action"], "waiting", "{production}");
    assert_eq!(of(production, "hello")["deliveryWindow"]["later"][0]["at"], "2026-12-04T08:00:00Z");
    assert_eq!(of(production, "urgent")["action"], "send", "the manifest's `off` beats the target's default");
    // Each target's forecast at its own windows.
    let requests = |p: &serde_json::Value| {
        let f = &p["forecast"];
        (f["requests"].as_u64().unwrap_or(0), f["laterRequests"].as_u64().unwrap_or(0))
    };
    assert_eq!(requests(staging), (2, 0), "{staging}");
    assert_eq!(requests(production), (1, 1), "{production}");
    let (o, t) = t.args(["plan", "--target", "production"]).status(0).run();
    assert!(o.stdout.contains("0 now; 1 at 2026-12-04 08:00 UTC, 09:00 Europe/Berlin"), "{}", o.stdout);
    // Apply each: production sends only `urgent` now, `hello` once its window opens.
    let (_, t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    assert_eq!(st.deliveries().len(), 2);
    let (_, t) = t.args(["apply", "--target", "production", "--auto-approve"]).status(0).run();
    assert_eq!(pr.deliveries().keys().map(String::as_str).collect::<Vec<_>>(), ["msteams:b@example.com"]);
    let t = t.env("KORE_NOTIFY_NOW", "2026-12-04T08:05:00Z");
    let (_, t) = t.args(["apply", "--target", "production", "--auto-approve"]).status(0).run();
    let d = pr.deliveries();
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d.values().all(|c| *c == 1) && st.deliveries().values().all(|c| *c == 1));
    // A target's own window: its problems at their target's path, and the recipients' zone
    // parameter required only of the manifests planned for that target.
    let per_recipient = "    deliveryWindow: {from: \"09:00\", to: \"17:00\", timezone: {parameter: tz}}\n";
    let t = t.file("kore-notify.yaml", &two_targets(&st, &pr, per_recipient));
    let (o, t) = t.args(["validate"]).status(1).run();
    assert!(o.stderr.contains("`a@example.com` has no parameter `tz`"), "{}", o.stderr);
    assert!(!o.stderr.contains("b@example.com"), "`urgent` writes its own window: {}", o.stderr);
    let (_, t) = t.manifest("hello.yaml", &format!("{hello}targets: [staging]\n")).args(["validate"]).status(0).run();
    let bad = per_recipient.replace("{parameter: tz}", "Mars/Olympus");
    let (o, _) = t.file("kore-notify.yaml", &two_targets(&st, &pr, &bad)).args(["validate"]).status(1).run();
    assert!(
        o.stderr.contains("targets.production.deliveryWindow.timezone") && o.stderr.contains("`Mars/Olympus`"),
        "{}",
        o.stderr
    );
}
