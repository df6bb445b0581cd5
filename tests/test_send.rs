//! `kore-notify test-send` and reviewers, through the binary against the emulator: the test
//! identity is the only one reached; the plan never counts a test send as sent; changed content
//! makes the evidence stale; at most once per (identity, variant, content) unless `--again`; a
//! kill -9 never leads to a duplicate test send; the policy's `testSent` denies a big send until
//! its content is test-sent; the evidence is in the text, JSON and markdown plans.

use crate::harness::*;

/// A Teams notification to three people, one of whom (`rev@x.com`) is also the reviewer.
const TEAMS: &str = "key: hello\nchannel: msteams\ncontent: {type: text, value: Hello team}\nidentities: [a@x.com, b@x.com, rev@x.com]\n";

/// A v2 (IVR) notification whose recipients read four texts, two of them the same.
fn personal(greeting: &str) -> String {
    format!(
        "key: personal\nchannel: ivr\ncontent: {{type: text, value: \"{greeting} {{name}}\"}}\nidentities:\n  - {{email: p1@x.com, parameters: {{name: Ann}}}}\n  - {{email: p2@x.com, parameters: {{name: Ann}}}}\n  - {{email: p3@x.com, parameters: {{name: Bob}}}}\n  - {{email: p4@x.com, customMessage: Custom words, parameters: {{name: Zed}}}}\n  - {{email: p5@x.com, parameters: {{name: Eve}}}}\n"
    )
}

fn to_send(t: Test) -> (u64, Test) {
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("plan json");
    (v["summary"]["recipientsToSend"].as_u64().expect("count"), t)
}

#[test]
fn a_test_send_reaches_only_the_test_identity_and_never_counts_as_sent() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url).manifest("hello.yaml", TEAMS);
    let (_, t) =
        t.args(["test-send", "--to", "rev@x.com"]).status(0).stdout_has("never in the recipients' state").run();
    assert_eq!(emu.deliveries(), [("msteams:rev@x.com".to_string(), 1)].into_iter().collect());
    assert!(!t.state_path().exists(), "the recipients' state is not written");
    assert!(t.path().join(".kore-notify/state.test-sends.json").exists(), "the test ledger is beside it");
    // The plan still sends to everyone, the reviewer (also a recipient) included.
    let (n, t) = to_send(t);
    assert_eq!(n, 3);
    // At most once per identity, variant and content; --again sends again.
    let (_, t) = t.args(["test-send", "--to", "rev@x.com"]).status(0).stderr_has("test-sent already").run();
    assert_eq!(emu.deliveries()["msteams:rev@x.com"], 1);
    let (_, t) = t.args(["test-send", "--to", "rev@x.com", "--again"]).status(0).run();
    assert_eq!(emu.deliveries()["msteams:rev@x.com"], 2);
    // A second test identity is new: only it is sent.
    let (_, t) = t.args(["test-send", "--to", "rev@x.com", "--to", "other@x.com"]).status(0).run();
    assert_eq!(emu.deliveries()["msteams:rev@x.com"], 2);
    assert_eq!(emu.deliveries()["msteams:other@x.com"], 1);
    // The apply sends everyone once, as if no test had been made.
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let d = emu.deliveries();
    assert_eq!((d["msteams:a@x.com"], d["msteams:b@x.com"], d["msteams:rev@x.com"]), (1, 1, 3));
    let (n, _) = to_send(t);
    assert_eq!(n, 0);
}

#[test]
fn variants_are_the_distinct_texts_and_each_is_sent_once_per_content() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url).manifest("p.yaml", &personal("Hi"));
    // Default 3: Ann, Bob, the custom message (Ann's twin and Eve are not needed).
    let (_, t) = t.args(["test-send", "--to", "rev@x.com"]).status(0).run();
    assert_eq!(emu.deliveries()["ivr:rev@x.com"], 3);
    let (_, t) = t.args(["test-send", "--to", "rev@x.com", "--variants", "4"]).status(0).run();
    assert_eq!(emu.deliveries()["ivr:rev@x.com"], 4, "only the fourth variant is new");
    // Changed content: every variant is new again.
    let t = t.manifest("p.yaml", &personal("Hello"));
    let (_, t) = t.args(["test-send", "--to", "rev@x.com", "--variants", "2"]).status(0).run();
    assert_eq!(emu.deliveries()["ivr:rev@x.com"], 6);
    assert!(emu.deliveries().keys().all(|k| k == "ivr:rev@x.com"), "{:?}", emu.deliveries());
    let (_, t) = t.args(["test-send", "--to", "rev@x.com", "--key", "nope"]).status(1).stderr_has("--key nope").run();
    let _ = t.args(["test-send"]).status(1).stderr_has("--to IDENTITY").run();
}

#[test]
fn the_comment_shows_the_evidence_and_says_when_content_changed() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url).manifest("hello.yaml", TEAMS);
    let (o, t) = t.args(["plan", "--format", "markdown"]).status(0).run();
    assert!(!o.stdout.contains("Test send"), "{}", o.stdout);
    let (_, t) = t.args(["test-send", "--to", "rev@x.com"]).status(0).run();
    // Only test sends made by the plan's time count: the plan is half a minute later.
    let (o, t) =
        t.env("KORE_NOTIFY_NOW", "2026-11-24T09:00:30Z").args(["plan", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.contains("Test send: test\\-sent to r\\*\\*\\*@"), "{}", o.stdout);
    assert!(o.stdout.contains("just now, same content"), "{}", o.stdout);
    // Twelve minutes later, the same content.
    let (o, t) =
        t.env("KORE_NOTIFY_NOW", "2026-11-24T09:12:00Z").args(["plan", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.contains("12 min ago, same content"), "{}", o.stdout);
    let t = t.manifest("hello.yaml", &TEAMS.replace("Hello team", "Hello everyone"));
    let (o, _) = t.args(["plan", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.contains("stale\\: content changed since the test send to r\\*\\*\\*"), "{}", o.stdout);
}

#[test]
fn reviewers_resolve_to_their_identity_per_channel() {
    let emu = Emulator::start(&[]);
    let cfg = format!("{}reviewers:\n  octocat: {{msteams: octo@x.com, ivr: octo-ivr@x.com}}\n", config(&emu.url));
    let t =
        Test::new().file("kore-notify.yaml", &cfg).manifest("hello.yaml", TEAMS).manifest("p.yaml", &personal("Hi"));
    let (_, t) = t.args(["test-send", "--reviewer", "OctoCat", "--variants", "1"]).status(0).run();
    let d = emu.deliveries();
    assert_eq!((d["msteams:octo@x.com"], d["ivr:octo-ivr@x.com"], d.len()), (1, 1, 2), "{d:?}");
    let (_, t) = t.args(["test-send", "--reviewer", "hubot"]).status(1).stderr_has("no such login").run();
    let _ = t.args(["test-send", "--reviewer=a_b"]).status(1).stderr_has("not a GitHub login").run();
}

#[test]
fn reviewers_are_validated_with_positions() {
    for (bad, says) in [
        ("reviewers: [octocat]\n", "expected a mapping of GitHub logins"),
        ("reviewers:\n  bad_login: {msteams: a@x.com}\n", "is not a GitHub login"),
        ("reviewers:\n  octocat: {teams: a@x.com}\n", "unknown field `teams`"),
        ("reviewers:\n  octocat: {msteams: \"a b\"}\n", "spaces or control characters"),
        ("reviewers:\n  octocat: {msteams: \"${MAIL}\"}\n", "no ${VAR}"),
        ("reviewers:\n  octocat: {}\n", "no identity"),
        ("reviewers:\n  octocat: {msteams: a@x.com}\n  OctoCat: {msteams: b@x.com}\n", "listed twice"),
    ] {
        let cfg = format!("{}{bad}", config("http://127.0.0.1:9"));
        let _ = Test::new()
            .file("kore-notify.yaml", &cfg)
            .manifest("hello.yaml", TEAMS)
            .args(["validate"])
            .status(1)
            .stderr_has(says)
            .stderr_has("kore-notify.yaml:")
            .run();
    }
}

#[test]
fn a_test_send_killed_in_flight_is_never_sent_twice() {
    // Every request takes 1.5 s: the kill lands while it is in flight.
    let emu = Emulator::start(&["--latency-ms", "1500"]);
    let t = Test::repo(&emu.url).manifest("hello.yaml", TEAMS);
    let mut child = t.spawn(&["test-send", "--to", "rev@x.com"]);
    std::thread::sleep(std::time::Duration::from_millis(900));
    let _ = std::process::Command::new("kill").args(["-9", &child.id().to_string()]).status();
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let before = emu.deliveries().get("msteams:rev@x.com").copied().unwrap_or(0);
    assert!(before <= 1);
    let (_, t) = t
        .args(["test-send", "--to", "rev@x.com"])
        .status(0)
        .stderr_has("recovered")
        .stderr_has("test-sent already")
        .run();
    assert_eq!(emu.deliveries().get("msteams:rev@x.com").copied().unwrap_or(0), before, "no duplicate");
    let (o, t) =
        t.env("KORE_NOTIFY_NOW", "2026-11-24T09:01:00Z").args(["plan", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.contains("unknown outcome"), "{}", o.stdout);
    let (_, _) = t.args(["test-send", "--to", "rev@x.com", "--again"]).status(0).run();
    assert_eq!(emu.deliveries()["msteams:rev@x.com"], before + 1);
}

/// The plan's notification `key` as JSON (of target 0).
fn planned(stdout: &str, key: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(stdout).expect("plan json");
    let list = v["targets"][0]["notifications"].as_array().cloned().unwrap_or_default();
    list.into_iter().find(|n| n["key"] == key).unwrap_or_default()
}

/// `2026-11-24T09:MM:00Z`.
fn at(minute: u32) -> String {
    format!("2026-11-24T09:{minute:02}:00Z")
}

#[test]
fn the_policy_denies_a_big_send_until_its_content_is_test_sent() {
    let emu = Emulator::start(&[]);
    let cfg = format!(
        "{}reviewers:\n  octocat: {{msteams: rev@x.com}}\npolicy:\n  - name: prove-big-sends\n    when: {{recipients: {{total: \">2\"}}, testSent: false}}\n    deny: test-send it first (kore-notify test-send --reviewer LOGIN)\n",
        config(&emu.url)
    );
    let denies = "policy rule `prove-big-sends` denies: test-send it first";
    let t = Test::new().file("kore-notify.yaml", &cfg).manifest("hello.yaml", TEAMS);
    // Before a test send: the plan (saved too) is denied and apply sends nothing.
    let (_, t) = t.args(["plan", "--out", "plan.json"]).status(1).stderr_has(denies).run();
    let (o, t) = t.args(["plan", "--format", "json"]).status(1).run();
    let n = planned(&o.stdout, "hello");
    assert_eq!((n["policy"]["decision"].as_str(), n.get("testSend")), (Some("deny"), None), "{n}");
    assert!(n["policy"]["rules"][0]["why"].as_str().unwrap_or_default().contains("testSent false"), "{n}");
    let (_, t) = t.args(["apply", "--auto-approve"]).status(1).stderr_has(denies).run();
    assert!(emu.deliveries().is_empty(), "{:?}", emu.deliveries());
    // The test send itself is not held back by the deny, and reaches only the reviewer.
    let (_, t) = t.env("KORE_NOTIFY_NOW", &at(5)).args(["test-send", "--reviewer", "octocat"]).status(0).run();
    assert_eq!(emu.deliveries(), [("msteams:rev@x.com".to_string(), 1)].into_iter().collect());
    // After it: the plan passes, and shows the evidence in JSON and in text.
    let (o, t) = t.env("KORE_NOTIFY_NOW", &at(6)).args(["plan", "--format", "json"]).status(0).run();
    let n = planned(&o.stdout, "hello");
    assert_eq!(n["testSend"]["fresh"], true, "{n}");
    assert!(n["testSend"]["text"].as_str().unwrap_or_default().contains("1 min ago, same content"), "{n}");
    assert_eq!((n.get("policy"), n["sends"].as_array().map(Vec::len)), (None, Some(3)), "{n}");
    let (_, t) = t.args(["plan"]).status(0).stdout_has("test send: test-sent to r***@").run();
    // The plan saved before the test send is still the plan of its instant (the test send came
    // later), and applying it is judged now: allowed.
    let (_, t) = t.args(["apply", "plan.json", "--auto-approve"]).status(0).run();
    let d = emu.deliveries();
    assert_eq!((d["msteams:a@x.com"], d["msteams:b@x.com"], d["msteams:rev@x.com"]), (1, 1, 2), "{d:?}");
    // A content change makes the evidence stale: denied again, until the new content is tested.
    let t = t.manifest("hello.yaml", &TEAMS.replace("Hello team", "Hello everyone"));
    let (o, t) = t.env("KORE_NOTIFY_NOW", &at(7)).args(["plan", "--format", "json"]).status(1).run();
    let n = planned(&o.stdout, "hello");
    assert_eq!((n["testSend"]["fresh"].as_bool(), n["policy"]["decision"].as_str()), (Some(false), Some("deny")));
    assert!(n["testSend"]["text"].as_str().unwrap_or_default().starts_with("stale: content changed since"), "{n}");
    let (_, t) = t.args(["plan"]).status(1).stdout_has("test send: stale: content changed since").run();
    let (_, t) = t.args(["apply", "--auto-approve"]).status(1).stderr_has(denies).run();
    let (_, t) = t.env("KORE_NOTIFY_NOW", &at(8)).args(["test-send", "--reviewer", "octocat"]).status(0).run();
    let (_, _) = t.env("KORE_NOTIFY_NOW", &at(9)).args(["apply", "--auto-approve"]).status(0).run();
    let d = emu.deliveries();
    assert_eq!((d["msteams:a@x.com"], d["msteams:b@x.com"], d["msteams:rev@x.com"]), (2, 2, 4), "{d:?}");
}

#[test]
fn test_sent_is_a_boolean_condition() {
    for (when, says) in [("testSent: maybe", "expected true or false"), ("testSend: false", "unknown field `testSend`")]
    {
        let cfg = format!("{}policy:\n  - name: r\n    when: {{{when}}}\n    deny: no\n", config("http://127.0.0.1:9"));
        let _ = Test::new()
            .file("kore-notify.yaml", &cfg)
            .manifest("hello.yaml", TEAMS)
            .args(["validate"])
            .status(1)
            .stderr_has(says)
            .stderr_has("policy[0].when.")
            .run();
    }
}
