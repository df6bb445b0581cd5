//! Canary waves through the binary against the emulator with per-identity failures
//! (`--fail-share`): a first wave over the limit halts and nobody of a later wave receives
//! anything; under the limit every wave delivers, each recipient once; kill -9 between and inside
//! waves never sends a wave early or twice; `state resume` lifts a halt. Which recipients make a
//! wave is checked against an oracle written here (a SHA-256 of the key and the identity), not
//! against the tool's own ordering.

use std::collections::BTreeMap;

use crate::harness::*;

const N: usize = 200;

fn ids(key: &str) -> Vec<String> {
    (0..N).map(|i| format!("{key}-{i}@example.com")).collect()
}

/// The identities in wave order: the oracle.
fn in_order(key: &str) -> Vec<String> {
    let mut v: Vec<(Vec<u8>, String)> = ids(key)
        .into_iter()
        .map(|id| {
            let mut h = <sha2::Sha256 as sha2::Digest>::new();
            sha2::Digest::update(&mut h, b"kore-notify wave order\0");
            sha2::Digest::update(&mut h, key.as_bytes());
            sha2::Digest::update(&mut h, b"\0");
            sha2::Digest::update(&mut h, id.as_bytes());
            (sha2::Digest::finalize(h)[..16].to_vec(), id)
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, id)| id).collect()
}

fn manifest(key: &str, rollout: &str) -> String {
    let list: Vec<String> = ids(key).iter().map(|i| format!("  - {i}\n")).collect();
    format!(
        "key: {key}\nchannel: slack\ncontent: {{type: text, value: \"Maintenance tonight\"}}\nrollout: {rollout}\nidentities:\n{}",
        list.concat()
    )
}

const ROLLOUT: &str = "{waves: [20, \"50%\", \"100%\"], observe: 1s, maxFailureRate: \"2%\", minSample: 10, ignoreReasons: [\"not associated\"]}";

fn mine(emu: &Emulator, key: &str) -> BTreeMap<String, u64> {
    let prefix = format!("slack:{key}-");
    emu.deliveries().into_iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(k, v)| (k[6..].to_string(), v)).collect()
}

/// The plan's rollout section of `key`.
fn rollout_of(t: Test, key: &str) -> (serde_json::Value, Test) {
    let (o, t) = t.args(["plan", "--format", "json"]).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("plan json");
    let n =
        v["targets"][0]["notifications"].as_array().expect("notifications").iter().find(|n| n["key"] == key).cloned();
    (n.expect("planned"), t)
}

#[test]
fn a_first_wave_over_the_limit_halts_until_resumed() {
    let emu = Emulator::start(&["--fail-share", "0.3"]);
    let key = "halt";
    let t = Test::repo(&emu.url).unset("KORE_NOTIFY_NOW").manifest("n.yaml", &manifest(key, ROLLOUT));
    let (n, t) = rollout_of(t, key);
    assert_eq!(n["rollout"]["waves"][0]["recipients"], 20, "{n}");
    assert_eq!(n["rollout"]["waves"][1]["recipients"], 80);
    assert_eq!(n["rollout"]["waves"][2]["recipients"], 100);
    assert_eq!(n["sends"].as_array().map(Vec::len), Some(20));
    let (o, t) = t.args(["apply", "--auto-approve", "--wait"]).run();
    assert_eq!(o.status, 3, "{}", o.stderr);
    assert!(o.stderr.contains("halted:") && o.stderr.contains("failed in wave 1 (limit 2%"), "{}", o.stderr);
    let got = mine(&emu, key);
    let first: Vec<String> = in_order(key)[..20].to_vec();
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        {
            let mut f = first.clone();
            f.sort();
            f
        },
        "only wave 1"
    );
    assert!(got.values().all(|c| *c == 1));
    // The plan says so, and another apply sends nothing.
    let (o, t) = t.args(["plan"]).run();
    assert!(o.stdout.contains("halted: ") && o.stdout.contains("failed in wave 1 (limit 2%"), "{}", o.stdout);
    let (o, t) = t.args(["apply", "--auto-approve", "--wait"]).run();
    assert_eq!(o.status, 3, "{}", o.stderr);
    assert_eq!(mine(&emu, key).len(), 20, "nothing more after a halt");
    // The halt is in the state with its figures; resume lifts it (recorded too).
    let (o, t) = t.args(["state", "show", key]).status(0).run();
    assert!(o.stdout.contains("\"halt\"") && o.stdout.contains("\"sample\""), "{}", o.stdout);
    let (o, t) = t.args(["state", "resume", key]).status(0).run();
    assert!(o.stdout.contains("resumed"), "{}", o.stdout);
    let (o, t) = t.args(["state", "show", key]).status(0).run();
    assert!(o.stdout.contains("\"resumed\"") && !o.stdout.contains("\"halt\": {"), "{}", o.stdout);
    let _ = t.args(["state", "resume", key]).status(1).stderr_has("is not halted").run();
    assert_eq!(mine(&emu, key).len(), 20, "a resume sends nothing by itself");
}

#[test]
fn resume_sends_the_next_wave_which_is_judged_alone() {
    let emu = Emulator::start(&["--fail-share", "0.3"]);
    let key = "resume";
    let t = Test::repo(&emu.url).unset("KORE_NOTIFY_NOW").manifest("n.yaml", &manifest(key, ROLLOUT));
    let (_, t) = t.args(["apply", "--auto-approve", "--wait"]).status(3).run();
    let (_, t) = t.args(["state", "resume", key]).status(0).run();
    let (o, _t) = t.args(["apply", "--auto-approve", "--wait"]).run();
    assert_eq!(o.status, 3, "{}", o.stderr);
    assert!(o.stderr.contains("failed in wave 2 (limit 2%"), "{}", o.stderr);
    let got = mine(&emu, key);
    let mut first: Vec<String> = in_order(key)[..100].to_vec();
    first.sort();
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), first, "waves 1 and 2, nobody of wave 3");
    assert!(got.values().all(|c| *c == 1));
}

#[test]
fn under_the_limit_every_wave_delivers_each_recipient_once() {
    let emu = Emulator::start(&[]);
    let key = "fine";
    // Three identities fail as not associated: an ignored reason.
    let m = manifest(key, ROLLOUT).replace("fine-3@", "invalid-3@").replace("fine-7@", "invalid-7@");
    let t = Test::repo(&emu.url).unset("KORE_NOTIFY_NOW").manifest("n.yaml", &m);
    // Without --wait: wave 1 only, exit 0, the rest pending.
    let (o, t) = t.args(["apply", "--auto-approve"]).run();
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert!(o.stderr.contains("wait for later canary waves"), "{}", o.stderr);
    assert_eq!(emu.deliveries().values().sum::<u64>(), 20);
    // Again at once: the statuses are not known yet, nothing is sent.
    let (n, t) = rollout_of(t, key);
    assert_eq!(n["action"], "observing", "{n}");
    assert!(n["rollout"]["gate"].as_str().unwrap_or_default().contains("delivery statuses"), "{n}");
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().values().sum::<u64>(), 20);
    // --wait carries it to the end.
    let (o, t) = t.args(["apply", "--auto-approve", "--wait"]).run();
    assert_eq!(o.status, 3, "two deliveries failed (ignored by the gate): {}", o.stderr);
    let all = emu.deliveries();
    assert_eq!(all.len(), N, "{all:?}");
    assert!(all.values().all(|c| *c == 1), "{all:?}");
    let (n, _) = rollout_of(t, key);
    assert_eq!(n["action"], "no-op", "{n}");
}

/// kill -9 at random instants of `apply --wait` (between and inside waves), then carry on: no
/// duplicate ever, and no wave begins before the one before it is fully out.
#[test]
fn kill_9_never_sends_a_wave_early_or_twice() {
    let mut seed = 0x5eed_u64;
    for trial in 0..4 {
        let emu = Emulator::start(&["--latency-ms", "20", "--fail-share", "0.3"]);
        let key = format!("k9{trial}");
        let rollout = "{waves: [20, \"50%\", \"100%\"], observe: 1s, maxFailureRate: \"40%\", minSample: 10}";
        let t = Test::repo(&emu.url)
            .unset("KORE_NOTIFY_NOW")
            .file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 7"))
            .manifest("n.yaml", &manifest(&key, rollout));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = 100 + seed % 2500;
        let mut child = t.spawn(&["apply", "--auto-approve", "--wait", "--parallelism", "2"]);
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = std::process::Command::new("kill").args(["-9", &child.id().to_string()]).status();
        let _ = child.wait();
        let got = mine(&emu, &key);
        assert!(got.values().all(|c| *c == 1), "trial {trial} ({delay} ms): {got:?}");
        // Whatever was sent is a prefix of the order, at a wave boundary or inside the wave begun.
        let order = in_order(&key);
        let sent: std::collections::BTreeSet<&String> = got.keys().collect();
        let wave_of = |id: &String| match order.iter().position(|o| o == id) {
            Some(i) if i < 20 => 0,
            Some(i) if i < 100 => 1,
            _ => 2,
        };
        let top = sent.iter().map(|i| wave_of(i)).max().unwrap_or(0);
        let before = order.iter().filter(|o| wave_of(o) < top).count();
        assert!(
            order.iter().filter(|o| wave_of(o) < top).all(|o| sent.contains(o)),
            "trial {trial}: wave {top} began before the one before it was out ({before})"
        );
        // Carry on: a request left unknown holds its own recipients (and the next wave).
        let (o, t) = t.args(["apply", "--auto-approve", "--wait"]).run();
        assert!(matches!(o.status, 0 | 3), "trial {trial}: {}", o.stderr);
        let got = mine(&emu, &key);
        assert!(got.values().all(|c| *c == 1), "trial {trial} after rerun: {got:?}");
        let _ = t;
    }
}

#[test]
fn rollout_problems_are_refused_with_their_position() {
    for (bad, says) in [
        ("{waves: [50, \"10%\"]}", "the last wave must be \"100%\""),
        ("{waves: [50, 20, \"100%\"]}", "not larger than the one before"),
        ("{waves: [0, \"100%\"]}", "is not a wave size"),
        ("{waves: [\"100%\"], maxFailureRate: 2}", "expected a percentage"),
        ("{waves: [\"100%\"], observe: soon}", "is not a duration"),
        ("{waves: [\"100%\"], minSample: 0}", "out of range"),
        ("{wave: [\"100%\"]}", "wave"),
        ("[1, 2]", "expected a mapping or `off`"),
    ] {
        let t = Test::repo("http://127.0.0.1:1").manifest("n.yaml", &manifest("bad", bad));
        let (o, _) = t.args(["validate"]).run();
        assert_eq!(o.status, 1, "{bad}: {}", o.stderr);
        assert!(o.stderr.contains(says) && o.stderr.contains("n.yaml:4"), "{bad}: {}", o.stderr);
    }
}

#[test]
fn a_target_default_applies_unless_the_manifest_says_off() {
    let emu = Emulator::start(&[]);
    let cfg = format!("{}rollout: {ROLLOUT}\n", config(&emu.url));
    let plain = manifest("dflt", ROLLOUT).replace(&format!("rollout: {ROLLOUT}\n"), "");
    let off = manifest("off", ROLLOUT).replace(&format!("rollout: {ROLLOUT}\n"), "rollout: off\n");
    let t = Test::repo(&emu.url).file("kore-notify.yaml", &cfg).manifest("a.yaml", &plain).manifest("b.yaml", &off);
    let (n, t) = rollout_of(t, "dflt");
    assert_eq!(n["sends"].as_array().map(Vec::len), Some(20), "{n}");
    let (n, t) = rollout_of(t, "off");
    assert!(n.get("rollout").is_none(), "{n}");
    assert_eq!(n["sends"].as_array().map(Vec::len), Some(N));
    // The forecast counts the later waves.
    let (o, _) = t.args(["plan"]).run();
    assert!(o.stdout.contains("in later canary waves"), "{}", o.stdout);
}

/// The rollout's entries (wave, halt, resume) with the state in PostgreSQL: a halt read back by
/// the next run from the database stops it, and a resume recorded there lets the next wave go.
#[test]
fn waves_halts_and_resumes_are_kept_in_postgres() {
    let db = crate::postgres::Db::new();
    let emu = Emulator::start(&["--fail-share", "0.3"]);
    let key = "pgwaves";
    let t = db.repo(&emu).unset("KORE_NOTIFY_NOW").manifest("n.yaml", &manifest(key, ROLLOUT));
    let (_, t) = t.args(["apply", "--auto-approve", "--wait"]).status(3).stderr_has("failed in wave 1 (limit 2%").run();
    let doc = db.query(&format!("SELECT doc::text FROM kore_notify.notifications WHERE key = '{key}'")).join("");
    assert!(doc.contains("\"halt\""), "the halt is in the database: {doc}");
    let (_, t) = t.args(["apply", "--auto-approve", "--wait"]).status(3).run();
    assert_eq!(mine(&emu, key).len(), 20, "a halt read from the database stops the next run");
    let (_, t) = t.args(["state", "resume", key]).status(0).run();
    let doc = db.query(&format!("SELECT doc::text FROM kore_notify.notifications WHERE key = '{key}'")).join("");
    assert!(doc.contains("\"resumed\""), "{doc}");
    let (_, _) = t.args(["apply", "--auto-approve", "--wait"]).status(3).stderr_has("failed in wave 2").run();
    let got = mine(&emu, key);
    assert_eq!(got.len(), 100, "waves 1 and 2 only");
    assert!(got.values().all(|c| *c == 1));
}

/// `--timeout` bounds the observation wait too: an `observe` longer than it ends the run with the
/// next wave left to a later apply, nothing sent early.
#[test]
fn wait_stops_at_its_timeout_when_the_next_wave_is_further_away() {
    let emu = Emulator::start(&[]);
    let key = "patient";
    let rollout = "{waves: [20, \"100%\"], observe: 1h, minSample: 10}";
    let t = Test::repo(&emu.url).unset("KORE_NOTIFY_NOW").manifest("n.yaml", &manifest(key, rollout));
    let started = std::time::Instant::now();
    let (o, t) = t.args(["apply", "--auto-approve", "--wait", "--timeout", "20s"]).status(0).run();
    assert!(started.elapsed() < std::time::Duration::from_secs(600), "it waited out the hour");
    assert!(o.stderr.contains("after --timeout; the next apply continues the rollout"), "{}", o.stderr);
    assert_eq!(mine(&emu, key).len(), 20, "only the first wave");
    let (_, _) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(mine(&emu, key).len(), 20, "the next wave waits for its hour");
}

/// A rehearsal at a fixed `KORE_NOTIFY_NOW` (in the past, as the test harness sets it) still
/// carries a rollout through: `observe` is measured on the clock that stamps the requests.
#[test]
fn a_rehearsal_at_a_fixed_instant_still_observes_in_real_time() {
    let emu = Emulator::start(&[]);
    let key = "rehearsed";
    let t = Test::repo(&emu.url).manifest("n.yaml", &manifest(key, ROLLOUT));
    let (o, _) = t.args(["apply", "--auto-approve", "--wait", "--timeout", "60s"]).run();
    assert_eq!(o.status, 0, "{}", o.stderr);
    let all = mine(&emu, key);
    assert_eq!(all.len(), N, "every wave went out: {}", o.stderr);
    assert!(all.values().all(|c| *c == 1));
}
