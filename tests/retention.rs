//! The compact state format (2), the upgrade from format 1, orphan dates, retention, tombstones
//! and the reuse of a retired key.

use crate::harness::*;

const V1_STATE: &str = include_str!("fixtures/state-v1.json");
/// Continues the format-1 snapshot above: a request to `c`, with full 128-bit hashes.
const V1_JOURNAL: &str = include_str!("fixtures/state-v1.json.journal");

fn slack(key: &str, ids: &[&str]) -> String {
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "))
}

/// The config with a retention.
fn with_retention(emu: &Emulator, retention: &str) -> Test {
    Test::repo(&emu.url).file("kore-notify.yaml", &format!("{}retention: {retention}\n", config(&emu.url)))
}

/// `NOW` plus `days` days, RFC 3339.
fn days_later(days: i64) -> String {
    let t = time::OffsetDateTime::parse(NOW, &time::format_description::well_known::Rfc3339).expect("NOW")
        + time::Duration::days(days);
    t.format(&time::format_description::well_known::Rfc3339).expect("format")
}

fn plan_json(t: Test) -> (serde_json::Value, Test) {
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    (serde_json::from_str(&o.stdout).expect("plan json"), t)
}

fn read(t: &Test, rel: &str) -> String {
    std::fs::read_to_string(t.path().join(rel)).expect(rel)
}

#[test]
fn a_format_1_state_and_journal_load_and_are_upgraded_without_resending() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url)
        .file(".kore-notify/state.json", V1_STATE)
        .file(".kore-notify/state.json.journal", V1_JOURNAL)
        .manifest("a.yaml", &slack("k", &["a", "b", "c"]));
    // The hashes written by format 1 (snapshot and journal) still name the same people.
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).stdout_has("1 no-op").run();
    let (_, t) = t.args(["state", "list"]).status(0).stdout_has("k\tslack\t3 recipient(s)\t2 request(s)").run();
    // The journal absorbed into a snapshot of the current format; the format-1 snapshot is the backup.
    let (_, t) = t.args(["state", "compact"]).status(0).stdout_has("absorbed 3 journal entries").run();
    assert!(read(&t, ".kore-notify/state.json").contains("\"formatVersion\": 3"));
    assert!(read(&t, ".kore-notify/state.json.backup").contains("\"formatVersion\": 1"));
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).run();
    let t = t.manifest("a.yaml", &slack("k", &["a", "b", "c", "d"]));
    let (o, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert!(o.stdout.contains("(1 recipient(s))"), "{}", o.stdout);
    let d = emu.deliveries();
    assert_eq!((d.get("slack:d"), d.get("slack:a"), d.get("slack:c")), (Some(&1), None, None), "{d:?}");
    let now = read(&t, ".kore-notify/state.json");
    let lines = recipient_lines(&now);
    assert_eq!(lines.len(), 4, "one line per recipient: {now}");
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
}

/// The size of a snapshot (formats 2 and 3) as a structural property: one line per recipient,
/// each at most 40 bytes with its newline (a format-1 recipient took 4 lines and about 130 bytes).
#[test]
fn a_snapshot_has_one_short_line_per_recipient() {
    let emu = Emulator::start(&[]);
    let ids: Vec<String> = (0..300).map(|i| format!("user{i}@example.com")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (_, t) =
        Test::repo(&emu.url).manifest("a.yaml", &slack("k", &ids)).args(["apply", "--auto-approve"]).status(0).run();
    let snapshot = read(&t, ".kore-notify/state.json");
    let lines = recipient_lines(&snapshot);
    assert_eq!(lines.len(), 300, "{snapshot}");
    for l in &lines {
        assert!(l.len() < 40, "{l:?} is {} bytes", l.len() + 1);
        assert!(l.starts_with("\t\t\t\t\""), "{l:?}");
    }
    // A newer format is refused with the way out.
    std::fs::write(t.state_path(), snapshot.replace("\"formatVersion\": 3", "\"formatVersion\": 4")).expect("write");
    t.args(["plan"]).status(1).stderr_has("upgrade kore-notify").run();
}

#[test]
fn the_orphan_date_is_recorded_once_kept_and_cleared_when_the_key_comes_back() {
    let emu = Emulator::start(&[]);
    let (_, t) = with_retention(&emu, "30d")
        .manifest("a.yaml", &slack("k", &["a", "b"]))
        .manifest("b.yaml", &slack("other", &["x"]))
        .args(["apply", "--auto-approve"])
        .status(0)
        .run();
    let t = t.file("notifications/a.yaml", "# k was removed\n");
    let (_, t) = t.args(["plan"]).status(0).stdout_has("the next apply records it as orphaned").run();
    let (_, t) =
        t.args(["apply", "--auto-approve"]).status(0).stderr_has(&format!("`k` is orphaned since {NOW}")).run();
    let (_, t) = t.args(["state", "show", "k"]).status(0).stdout_has(&format!("\"orphanedSince\": \"{NOW}\"")).run();
    // Ten days later: the date is kept, and the plan says when the tombstone comes.
    let t = t.env("KORE_NOTIFY_NOW", &days_later(10));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let (plan, t) = plan_json(t);
    let k = plan["targets"][0]["notifications"]
        .as_array()
        .expect("list")
        .iter()
        .find(|n| n["key"] == "k")
        .expect("k")
        .clone();
    assert_eq!(k["action"], "orphaned");
    assert_eq!(k["orphanedSince"], NOW, "{k}");
    assert_eq!(k["retiresAt"].as_str(), Some(days_later(30).as_str()), "{k}");
    let (_, t) = t
        .args(["plan"])
        .status(0)
        .stdout_has(&format!("orphaned since {NOW}"))
        .stdout_has(&format!("tombstone from {}", days_later(30)))
        .run();
    let (_, t) = t.args(["state", "list"]).status(0).stdout_has(&format!("orphaned since {NOW}")).run();
    // The key comes back: no longer orphaned, nothing sent.
    let t = t.manifest("a.yaml", &slack("k", &["a", "b"]));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("`k` is back in the manifests").run();
    let (o, _) = t.args(["state", "show", "k"]).status(0).run();
    assert!(!o.stdout.contains("orphanedSince"), "{}", o.stdout);
    assert_eq!(emu.deliveries()["slack:a"], 1);
}

#[test]
fn after_the_retention_a_tombstone_replaces_the_recipients_and_the_key_is_refused_unless_reused() {
    let emu = Emulator::start(&[]);
    let (_, t) = with_retention(&emu, "30d")
        .manifest("a.yaml", &slack("k", &["a", "b"]))
        .manifest("b.yaml", &slack("other", &["x"]))
        .args(["apply", "--auto-approve"])
        .status(0)
        .run();
    let t = t.file("notifications/a.yaml", "# k was removed\n");
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    // Before the retention is over: kept.
    let t = t.env("KORE_NOTIFY_NOW", &days_later(29));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let (_, t) = t.args(["state", "show", "k"]).status(0).stdout_has("\"recipients\": [").run();
    // After: a tombstone.
    let t = t.env("KORE_NOTIFY_NOW", &days_later(31));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("replaced by a tombstone").run();
    let (o, t) = t.args(["state", "show", "k"]).status(0).run();
    let shown: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let tomb = &shown["tombstone"];
    assert_eq!(tomb["orphanedSince"], NOW, "{shown}");
    assert_eq!(tomb["tombstonedAt"].as_str(), Some(days_later(31).as_str()));
    assert_eq!((tomb["recipients"].as_u64(), tomb["requests"].as_u64()), (Some(2), Some(1)), "{shown}");
    assert!(tomb["contentDigest"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{shown}");
    assert!(tomb["firstSent"].is_string() && tomb["lastSent"].is_string(), "{shown}");
    let (_, t) = t.args(["state", "list"]).status(0).stdout_has(&format!("retired {}", days_later(31))).run();
    let snapshot = read(&t, ".kore-notify/state.json");
    assert_eq!(recipient_lines(&snapshot).len(), 1, "only `other` keeps its recipient: {snapshot}");
    // Reusing the key: refused at validate, plan and apply, naming the file, line, key and date.
    let t = t.manifest("a.yaml", &format!("# back\n{}", slack("k", &["a", "b"])));
    let mut t = t;
    for args in [vec!["validate"], vec!["plan"], vec!["apply", "--auto-approve"]] {
        let (o, t2) = t
            .args(args.clone())
            .status(1)
            .stderr_has("notifications/a.yaml:2")
            .stderr_has(&format!("key `k` was retired at {}", days_later(31)))
            .stderr_has("reuseRetiredKey: true")
            .run();
        assert!(o.stderr.contains("pick a new key"), "{args:?}: {}", o.stderr);
        t = t2;
    }
    assert_eq!(emu.deliveries()["slack:a"], 1, "nothing sent to a retired key");
    // Asked for: the tombstone is dropped and the notification is new again.
    let t = t.manifest("a.yaml", &format!("# back\nreuseRetiredKey: true\n{}", slack("k", &["a", "b"])));
    let (_, t) = t.args(["validate"]).status(0).run();
    let (_, t) = t.args(["plan"]).status(0).stdout_has("reuses the key retired at").run();
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("tombstone dropped").run();
    assert_eq!(emu.deliveries()["slack:a"], 2);
    let (o, t) = t.args(["state", "show", "k"]).status(0).run();
    assert!(!o.stdout.contains("tombstone"), "{}", o.stdout);
    // Left in place, the flag is a warning (it would undo a later retirement).
    let (_, t) = t.args(["validate"]).status(0).stderr_has("`k` is not a retired key").run();
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
}

#[test]
fn a_notification_with_an_unknown_request_is_never_tombstoned() {
    let emu = Emulator::start(&["--schedule", "1=drop"]);
    let (_, t) = with_retention(&emu, "30d")
        .manifest("a.yaml", &slack("k", &["a", "b"]))
        .args(["apply", "--auto-approve"])
        .status(3)
        .run();
    let t = t.manifest("a.yaml", &slack("other", &["x"]));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("`k` is orphaned since").run();
    let t = t.env("KORE_NOTIFY_NOW", &days_later(400));
    let (_, t) = t.args(["plan"]).status(0).stdout_has("kept while a request has an unknown outcome").run();
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let (_, t) = t.args(["state", "compact"]).status(0).run();
    let (_, t) =
        t.args(["state", "list"]).status(0).stdout_has("k\tslack\t0 recipient(s)\t1 request(s)\tUNKNOWN OUTCOME").run();
    // Once decided, `state compact` retires it.
    let (_, t) = t.args(["state", "resolve", "k", "--sent"]).status(0).run();
    let (_, t) = t.args(["state", "compact"]).status(0).stdout_has("retired `k`").run();
    t.args(["state", "list"]).status(0).stdout_has("retired ").run();
}

#[test]
fn retention_is_checked() {
    for (value, needle) in [("5min", "shorter than a day"), ("soon", "is not a duration")] {
        Test::repo("http://127.0.0.1:9")
            .file("kore-notify.yaml", &format!("{}retention: {value}\n", config("http://127.0.0.1:9")))
            .manifest("a.yaml", &slack("k", &["a"]))
            .args(["validate"])
            .status(1)
            .stderr_has("retention")
            .stderr_has(needle)
            .run();
    }
    Test::repo("http://127.0.0.1:9")
        .file("kore-notify.yaml", &format!("{}retention: off\n", config("http://127.0.0.1:9")))
        .manifest("a.yaml", &slack("k", &["a"]))
        .args(["validate"])
        .status(0)
        .run();
}
