//! `--events`: every change recorded in the state, once, as JSON lines; a closing summary; no
//! secret. And the apply's terminal output: one progress display, per-batch lines only with
//! `--verbose` and then in batch order.

use crate::harness::*;

fn slack(key: &str, n: usize) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("{key}-p{i}")).collect();
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "))
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("events file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// An apply with accepted, rejected (a 412 of the emulator's validation is not possible from a
/// valid manifest, so a 500: unknown) and settled requests, a status refresh and a decision:
/// every intent and outcome appears once, the events fold to the state, and no secret is there.
#[test]
fn every_recorded_change_is_one_event_line() {
    let emu = Emulator::start(&["--schedule", "2=500"]);
    let t = Test::repo(&emu.url)
        .file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 2"))
        .manifest("a.yaml", &slack("a", 5));
    let log = t.path().join("audit/events.jsonl");
    std::fs::create_dir_all(log.parent().expect("dir")).expect("mkdir");
    let events = log.to_str().expect("utf8").to_string();
    let (_, t) = t.args(["apply", "--auto-approve", "--parallelism", "1", "--events", &events]).status(3).run();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (_, t) = t.env("KORE_NOTIFY_EVENTS", &events).args(["status", "--refresh"]).status(3).run();
    let (_, t) =
        t.env("KORE_NOTIFY_EVENTS", &events).args(["state", "resolve", "a", "1", "--not-sent"]).status(0).run();
    let ev = lines(&log);
    let ops: Vec<&str> = ev.iter().map(|e| e["op"].as_str().unwrap_or("")).collect();
    let intents: Vec<u64> =
        ev.iter().filter(|e| e["op"] == "intent").map(|e| e["req"].as_u64().expect("req")).collect();
    let outcomes: Vec<u64> =
        ev.iter().filter(|e| e["op"] == "outcome").map(|e| e["req"].as_u64().expect("req")).collect();
    assert_eq!(intents, [0, 1, 2], "{ops:?}");
    assert_eq!(outcomes, [0, 1, 2], "{ops:?}");
    assert_eq!(ev.iter().filter(|e| e["op"] == "outcome" && e["outcome"] == "unknown").count(), 1);
    assert!(ops.contains(&"status") && ops.contains(&"resolve"), "{ops:?}");
    let summaries: Vec<&serde_json::Value> = ev.iter().filter(|e| e["op"] == "summary").collect();
    assert_eq!(summaries.len(), 1, "one summary, for the apply: {ops:?}");
    assert_eq!((summaries[0]["exit"].as_i64(), summaries[0]["counts"]["accepted"].as_u64()), (Some(3), Some(2)));
    for e in &ev {
        assert!(e["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
        assert!(e["command"].as_str().is_some_and(|c| c.contains("kore-notify")), "{e}");
    }
    // The events fold to the state the store has.
    let mut folded = serde_json::Map::new();
    for e in ev.iter().filter(|e| e["op"] == "outcome" || e["op"] == "resolve") {
        folded.insert(format!("{}", e["req"]), e.clone());
    }
    let text = std::fs::read_to_string(&log).expect("events");
    let (o, _) = t.args(["state", "show", "a"]).status(0).run();
    let shown: serde_json::Value = serde_json::from_str(&o.stdout).expect("state show json");
    let requests = shown["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), intents.len());
    assert_eq!(requests[0]["outcome"], "accepted");
    assert_eq!(requests[1]["outcome"], "resolved-not-sent", "the decision is the last word on request 1");
    for secret in [SECRET, "a-p0", "a-p1"] {
        assert!(!text.contains(secret), "`{secret}` in the events");
    }
}

#[test]
fn an_events_path_that_cannot_be_written_is_refused_before_anything_is_sent() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url).manifest("a.yaml", &slack("a", 2));
    let (_, t) =
        t.args(["apply", "--auto-approve", "--events", "no/such/dir/e.jsonl"]).status(1).stderr_has("--events").run();
    let (_, t) =
        t.args(["apply", "--auto-approve", "--events", " "]).status(1).stderr_has("--events: the value is blank").run();
    std::os::unix::fs::symlink("/tmp/kore-notify-events-elsewhere", t.path().join("link.jsonl")).expect("symlink");
    t.args(["apply", "--auto-approve", "--events", "link.jsonl"]).status(1).stderr_has("--events").run();
    assert!(emu.deliveries().is_empty());
    assert!(!std::path::Path::new("/tmp/kore-notify-events-elsewhere").exists());
}

/// Without a terminal (a CI log): no line per batch, a progress line at most every tenth of the
/// requests (or ten seconds), and the summary with its elapsed time. With `--verbose`: a line per
/// batch, in batch order, whatever order they finish in.
#[test]
fn an_apply_of_many_batches_keeps_its_log_short_and_ordered() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url)
        .file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 1"))
        .manifest("a.yaml", &slack("a", 60));
    let (o, t) = t.args(["apply", "--auto-approve", "--parallelism", "8"]).status(0).run();
    let progress = o.stderr.lines().filter(|l| l.starts_with("progress: ")).count();
    assert!((10..=14).contains(&progress), "{progress} progress lines:\n{}", o.stderr);
    assert!(!o.stderr.contains("[1/60]"), "{}", o.stderr);
    assert!(o.stderr.contains("progress: 60/60 requests, 60/60 recipients"), "{}", o.stderr);
    assert!(
        o.stdout.contains("Apply: 60 request(s) accepted (60 recipient(s)), 0 rejected, 0 unknown, in 0:"),
        "{}",
        o.stdout
    );
    let t = t.manifest("b.yaml", &slack("b", 40));
    let (o, _) = t.args(["apply", "--auto-approve", "--parallelism", "8", "--verbose"]).status(0).run();
    let order: Vec<usize> = o
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix('[').and_then(|r| r.split('/').next()).and_then(|n| n.parse().ok()))
        .collect();
    assert_eq!(order, (1..=40).collect::<Vec<_>>(), "{}", o.stderr);
}

/// Colours: never in a pipe by default, `FORCE_COLOR` turns them on (CI logs render them),
/// `NO_COLOR` or `--color never` off; errors are red with them.
#[test]
fn force_color_and_no_color_are_respected() {
    let t = Test::repo("https://kore.example.com").manifest("a.yaml", &slack("a", 1));
    let (o, t) = t.args(["plan"]).status(0).run();
    assert!(!o.stdout.contains('\u{1b}'), "{}", o.stdout);
    let (o, t) = t.env("FORCE_COLOR", "1").args(["plan"]).status(0).run();
    assert!(o.stdout.contains("\u{1b}[32m+ send\u{1b}[0m"), "{}", o.stdout);
    let (o, t) = t.args(["state", "show", "nope"]).status(1).run();
    assert!(o.stderr.starts_with("\u{1b}[31;1merror\u{1b}[0m: "), "{}", o.stderr);
    let (o, t) = t.args(["plan", "--color", "never"]).status(0).run();
    assert!(!o.stdout.contains('\u{1b}'), "{}", o.stdout);
    let (o, _) = t.env("FORCE_COLOR", "0").env("NO_COLOR", "1").args(["plan"]).status(0).run();
    assert!(!o.stdout.contains('\u{1b}'), "{}", o.stdout);
}

/// `--events -`: standard output is the event stream alone (every line JSON, for a `| jq`); the
/// human output goes to standard error. And an events sink that fails mid-run (a full disk:
/// `/dev/full`) stops neither the sends nor their records: everyone gets one message, the state
/// has them all, the next apply sends nothing, and the run says the audit log is incomplete.
#[test]
fn events_on_stdout_are_json_alone_and_a_failing_sink_stops_no_send() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url)
        .file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 2"))
        .manifest("a.yaml", &slack("a", 3));
    let (o, t) = t.args(["apply", "--auto-approve", "--parallelism", "1", "--events", "-"]).status(0).run();
    assert!(!o.stdout.trim().is_empty());
    for l in o.stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", o.stdout));
        assert!(v.get("op").is_some(), "{l}");
    }
    assert!(o.stderr.contains("3 recipients"), "the summary goes to stderr: {}", o.stderr);
    assert_eq!(emu.deliveries().len(), 3);
    let t = t.manifest("b.yaml", &slack("b", 5));
    let (o, t) = t.args(["apply", "--auto-approve", "--parallelism", "1", "--events", "/dev/full"]).status(0).run();
    assert!(o.stderr.contains("--events") && o.stderr.contains("incomplete"), "{}", o.stderr);
    assert_eq!(emu.deliveries().len(), 8);
    assert!(emu.deliveries().values().all(|n| *n == 1), "{:?}", emu.deliveries());
    t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().values().sum::<u64>(), 8, "nothing sent twice");
}
