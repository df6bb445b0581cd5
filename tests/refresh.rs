//! Delivery statuses in the state: a refreshed state stays one line a recipient (Kore.ai's
//! comments kept once per notification), a refresh records only what changed and writes nothing
//! when nothing did, status calls run in parallel within the flag, and states written by the
//! previous release (format 2, before and after a refresh) upgrade without resending anyone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::*;

/// Written by release 0.1.0 (format 2) from `fixture_repo`: after `apply`, and after `status --refresh`.
const V2_STATE: &str = include_str!("fixtures/state-v2.json");
const V2_REFRESHED: &str = include_str!("fixtures/state-v2-refreshed.json");
const GREET: &str =
    "key: greet\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [ok1@x.com, fail@x.com, ok2@x.com";
const STANDUP: &str = "key: standup\nchannel: hangouts\ncontent: {type: text, value: moved}\nidentities: [AAQAPWi0001, spaceId: o7ZNt8A0002]\n";
const BOILERPLATE: &str = "Notification has been sent successfully";

/// The repository the fixtures were written from, `extra` identities added to `greet`.
fn fixture_repo(emu: &Emulator, extra: &str) -> Test {
    Test::repo(&emu.url).manifest("a.yaml", &format!("{GREET}{extra}]\n")).manifest("b.yaml", STANDUP)
}

fn state(t: &Test) -> String {
    std::fs::read_to_string(t.state_path()).expect("state")
}

/// Every file beside the snapshot but the lock (whose holder line each writer rewrites).
fn state_files(t: &Test) -> BTreeMap<String, Vec<u8>> {
    all_files(&t.path().join(".kore-notify"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".lock"))
        .map(|p| (p.to_string_lossy().into_owned(), std::fs::read(&p).expect("read")))
        .collect()
}

#[test]
fn states_of_the_previous_release_upgrade_and_nobody_is_sent_again() {
    for (name, fixture) in [("before a refresh", V2_STATE), ("after a refresh", V2_REFRESHED)] {
        let emu = Emulator::start(&[]);
        let t = fixture_repo(&emu, "").file(".kore-notify/state.json", fixture);
        let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).stdout_has("2 no-op").run();
        let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("Nothing to send").run();
        assert!(emu.deliveries().is_empty(), "{name}: {:?}", emu.deliveries());
        assert_eq!(state(&t), fixture, "{name}: nothing to send, nothing written");
        // One new recipient: only they are sent to, and the state is written in the current format.
        let t = fixture_repo(&emu, ", new@x.com").file(".kore-notify/state.json", fixture);
        let (o, t) = t.args(["apply", "--auto-approve"]).status(0).run();
        assert!(o.stdout.contains("(1 recipient(s))"), "{name}: {}", o.stdout);
        assert_eq!(emu.deliveries().into_keys().collect::<Vec<_>>(), ["msteams:new@x.com"], "{name}");
        let now = state(&t);
        assert!(now.contains("\"formatVersion\": 3"), "{name}: {now}");
        let lines = recipient_lines(&now);
        assert_eq!(lines.len(), 6, "{name}: one line per recipient: {now}");
        assert!(lines.iter().all(|l| l.starts_with("\t\t\t\t\"")), "{name}: {lines:?}");
        let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).stdout_has("2 no-op").run();
        if fixture == V2_REFRESHED {
            // The reported deliveries survive the upgrade, each text once per notification.
            assert_eq!(now.matches(BOILERPLATE).count(), 2, "{now}");
            assert_eq!(lines.iter().filter(|l| l.contains(" #")).count(), 5, "{lines:?}");
            t.args(["status"])
                .status(3)
                .stdout_has("failed: fail@x.com: Identity is not associated with the channel")
                .run();
        }
    }
}

#[test]
fn a_refreshed_state_keeps_one_line_a_recipient_and_each_comment_once() {
    let emu = Emulator::start(&[]);
    let people: Vec<String> =
        (0..40).map(|i| if i % 10 == 3 { format!("fail{i}@x.com") } else { format!("ok{i}@x.com") }).collect();
    let manifest =
        format!("key: k\nchannel: msteams\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", people.join(", "));
    let (_, t) = Test::repo(&emu.url).manifest("a.yaml", &manifest).args(["apply", "--auto-approve"]).status(0).run();
    std::thread::sleep(Duration::from_millis(300));
    let (_, t) = t.args(["status", "--refresh"]).status(3).stdout_has("failed: fail3@x.com").run();
    let snapshot = state(&t);
    let lines = recipient_lines(&snapshot);
    assert_eq!(lines.len(), 40, "{snapshot}");
    for l in &lines {
        // "HASH FP REQ #D": the status and its comment cost three bytes.
        let l = l.trim_end_matches(',');
        assert!(l.len() < 42 && (l.ends_with(" 0 #0\"") || l.ends_with(" 0 #1\"")), "{l:?}");
    }
    assert_eq!(snapshot.matches(BOILERPLATE).count(), 1, "{snapshot}");
    assert_eq!(snapshot.matches("Identity is not associated").count(), 1, "{snapshot}");
    // Statuses the state already holds: a second refresh writes nothing at all.
    let before = state_files(&t);
    let (_, t) = t.args(["status", "--refresh"]).status(3).run();
    assert_eq!(state_files(&t), before, "a refresh that found nothing new wrote something");
}

/// Statuses that keep arriving (jobs still in progress at every scheduled refresh): each refresh
/// records only what changed, so repeated refreshes write nothing and never grow the state.
#[test]
fn repeated_refreshes_of_jobs_in_progress_write_nothing() {
    let emu = Emulator::start(&["--job-ms", "600000"]);
    let t = Test::repo(&emu.url).file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 2"));
    let (_, t) = t
        .manifest("a.yaml", "key: k\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a, b, c, d, e]\n")
        .args(["apply", "--auto-approve"])
        .status(0)
        .run();
    let before = state_files(&t);
    let mut t = t;
    for _ in 0..3 {
        t = t.args(["status", "--refresh"]).status(0).run().1;
        assert_eq!(state_files(&t), before, "a refresh that found nothing new wrote something");
    }
    let requests = emu.stats()["requests"].as_u64().expect("requests");
    assert_eq!(requests, 3 + 3 * 3, "three sends, then each refresh asks about the three jobs");
}

/// A server that answers every status request as a finished job, holding each answer for a while
/// and counting how many requests it holds at once.
struct Concurrency {
    server: Hostile,
    max: Arc<AtomicUsize>,
}

impl Concurrency {
    fn start() -> Concurrency {
        let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (n, m) = (now.clone(), max.clone());
        let server = Hostile::start(move |seen| {
            let id = seen.path.rsplit('/').next().unwrap_or_default().to_string();
            let inside = n.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(inside, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            n.fetch_sub(1, Ordering::SeqCst);
            let body = format!("{{\"_id\": \"{id}\", \"status\": \"SUCCESS\", \"statusLogs\": []}}");
            Reply::http("200 OK", &[("Content-Type", "application/json")], &body)
        });
        Concurrency { server, max }
    }
}

#[test]
fn status_calls_run_in_parallel_up_to_the_flag() {
    let ids: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    let manifest =
        format!("key: k\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "));
    for parallelism in [1, 3] {
        // Six jobs sent to the emulator, then their statuses asked of the counting server.
        let emu = Emulator::start(&[]);
        let t =
            Test::repo(&emu.url).file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 1"));
        let (_, t) = t.manifest("a.yaml", &manifest).args(["apply", "--auto-approve"]).status(0).run();
        let server = Concurrency::start();
        let t = t.file("kore-notify.yaml", &config(&server.server.url));
        let (_, t) = t.args(["status", "--refresh", "--parallelism", &parallelism.to_string()]).status(0).run();
        let asked = server.server.requests().iter().filter(|r| r.path.contains("/notify/status/")).count();
        assert_eq!(asked, 6, "one status request per job");
        let max = server.max.load(Ordering::SeqCst);
        if parallelism == 1 {
            assert_eq!(max, 1, "--parallelism 1 asks one at a time");
        } else {
            assert!((2..=parallelism).contains(&max), "--parallelism {parallelism}: {max} at once");
        }
        // Every job is terminal now: nothing more is asked.
        let (_, _) = t.args(["status", "--refresh", "--parallelism", "65"]).status(1).stderr_has("65").run();
        assert_eq!(server.server.requests().len(), 6);
    }
}
