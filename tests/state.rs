use crate::harness::*;

fn repo_with_state(emu: &Emulator) -> Test {
    Test::repo(&emu.url)
        .manifest("a.yaml", "key: k\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a, b]\n")
        .args(["apply", "--auto-approve"])
        .status(0)
        .run()
        .1
}

#[test]
fn corrupted_states_are_refused_and_left_byte_identical() {
    let emu = Emulator::start(&[]);
    let t = repo_with_state(&emu);
    let path = t.state_path();
    let good = std::fs::read(&path).expect("state");
    let text = String::from_utf8(good.clone()).expect("utf8");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
        ("tampered", text.replace("\"slack\"", "\"msteams\"").into_bytes(), "checksum mismatch"),
        ("newer", text.replace("\"formatVersion\": 3", "\"formatVersion\": 4").into_bytes(), "newer kore-notify"),
        ("garbage", b"\x00\x01not json".to_vec(), "not a kore-notify state"),
        ("binary", vec![0xff, 0xfe, 0x00], "not UTF-8"),
        ("empty", vec![], "not a kore-notify state"),
    ];
    let mut t = t;
    for (name, bytes, needle) in cases {
        std::fs::write(&path, &bytes).expect("write");
        for args in [vec!["plan"], vec!["apply", "--auto-approve"], vec!["state", "list"], vec!["status"]] {
            let (_, t2) = t.args(args.clone()).status(1).stderr_has(needle).stderr_has("left untouched").run();
            t = t2;
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "{name}: {args:?} modified the state");
        }
    }
    assert_eq!(emu.deliveries()["slack:a"], 1, "nothing was sent from a corrupted state");
}

#[test]
fn state_holds_no_identities_or_secrets() {
    let emu = Emulator::start(&[]);
    let t = repo_with_state(&emu);
    let state = std::fs::read_to_string(t.state_path()).expect("state");
    assert!(!state.contains("\"a\"") && !state.contains(SECRET), "{state}");
    assert!(state.contains("\"lineage\"") && state.contains("\"serial\": 1"));
    assert!(state.trim_end().ends_with('}'));
}

#[test]
fn list_show_rm() {
    let emu = Emulator::start(&[]);
    let t = repo_with_state(&emu);
    let (_, t) = t.args(["state", "list"]).status(0).stdout_has("k\tslack\t2 recipient(s)\t1 request(s)").run();
    let (_, t) = t.args(["state", "show", "k"]).status(0).stdout_has("\"outcome\": \"accepted\"").run();
    let (_, t) = t.args(["state", "show", "nope"]).status(1).stderr_has("no notification `nope`").run();
    let (_, t) = t.args(["state", "rm", "k"]).status(1).stderr_has("--yes").run();
    let (_, t) = t.args(["state", "rm", "k", "--yes"]).status(0).run();
    let (_, t) = t.args(["state", "list"]).status(0).run();
    // The previous snapshot is kept.
    assert!(t.path().join(".kore-notify/state.json.backup").exists());
    t.args(["plan", "--detailed-exitcode"]).status(2).run();
}

#[test]
fn concurrent_applies_one_exits_4_and_state_is_intact() {
    let emu = Emulator::start(&["--latency-ms", "300"]);
    let mut t =
        Test::repo(&emu.url).file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 1"));
    t = t.manifest(
        "a.yaml",
        "key: k\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a, b, c, d, e, f]\n",
    );
    let mut first = t.command().args(["apply", "--auto-approve", "--parallelism", "1"]).spawn().expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (o, t) =
        t.args(["apply", "--auto-approve"]).status(4).stderr_has("is locked by another run").stderr_has("pid ").run();
    assert!(o.stderr.contains(&first.id().to_string()), "holder pid named: {}", o.stderr);
    assert_eq!(first.wait().expect("wait").code(), Some(0));
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).run();
    assert_eq!(emu.deliveries().values().sum::<u64>(), 6);
    t.args(["state", "list"]).status(0).stdout_has("6 recipient(s)\t6 request(s)").run();
}

/// Regression: a journal left behind after its entries were compacted (killed between the
/// snapshot rename and the journal removal) is stale. The next run must start a fresh journal;
/// appending to the stale one would make the run after it ignore every send the new entries
/// record, and send them again.
#[test]
fn a_stale_journal_never_swallows_new_sends() {
    use kore_notify::fingerprint::{Fingerprint, RecipientHash, recipient_hash};
    use kore_notify::manifest::{Api, Channel};
    use kore_notify::state::{Entry, Journal, Outcome, StoredContent};

    let emu = Emulator::start(&[]);
    let t = repo_with_state(&emu);
    let path = t.state_path();
    let snap = kore_notify::state::load(&path).expect("load").state;
    let journal = path.with_file_name("state.json.journal");
    let stale = format!(
        "{{\"op\":\"begin\",\"lineage\":\"{}\",\"serial\":{},\"at\":\"2026-11-24T08:00:00Z\"}}\n",
        snap.lineage,
        snap.serial - 1
    );
    std::fs::write(&journal, &stale).expect("stale journal");

    // A new notification, and the fingerprints the plan gives its recipients.
    let t = t.manifest("b.yaml", "key: b\nchannel: slack\ncontent: {type: text, value: news}\nidentities: [x, y]\n");
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let plan: serde_json::Value = serde_json::from_str(&o.stdout).expect("plan json");
    let b = plan["targets"][0]["notifications"]
        .as_array()
        .expect("list")
        .iter()
        .find(|n| n["key"] == "b")
        .expect("b")
        .clone();
    assert_eq!(b["action"], "send");

    // What apply does for b, killed before compaction: load, open the journal, record the send.
    let loaded = kore_notify::state::load_for_update(&path).expect("load for update");
    let mut j = Journal::open(&path, &loaded.state).expect("journal");
    let recipients: Vec<(RecipientHash, Fingerprint)> = b["sends"]
        .as_array()
        .expect("sends")
        .iter()
        .map(|s| {
            let id = s["id"].as_str().expect("id");
            let fp: Fingerprint = serde_json::from_value(s["fingerprint"].clone()).expect("fingerprint");
            (recipient_hash(&loaded.state.lineage, id), fp)
        })
        .collect();
    j.append(&Entry::Intent {
        key: "b".into(),
        req: 0,
        batch: "b0".into(),
        channel: Channel::Slack,
        api: Api::V1,
        content: StoredContent { kind: "text".into(), value: "news".into() },
        recipients,
        at: "2026-11-24T09:00:00Z".into(),
    })
    .expect("intent");
    j.append(&Entry::Outcome {
        key: "b".into(),
        req: 0,
        outcome: Outcome::Accepted,
        request_id: Some("ds-1".into()),
        status: None,
        error: None,
    })
    .expect("outcome");
    drop(j); // killed here: no snapshot

    // The send is remembered: nothing left to send, and apply sends nothing.
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let plan: serde_json::Value = serde_json::from_str(&o.stdout).expect("plan json");
    let b = plan["targets"][0]["notifications"]
        .as_array()
        .expect("list")
        .iter()
        .find(|n| n["key"] == "b")
        .expect("b")
        .clone();
    assert_eq!(b["action"], "no-op", "the recorded send was forgotten: {b}");
    let before = emu.deliveries();
    t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries(), before, "apply resent a recorded send");
}

/// A journal that does not belong to the snapshot (another lineage, or written against a newer
/// snapshot than the one on disk) holds sends the snapshot may not know: refused, never ignored.
#[test]
fn a_journal_from_another_state_is_refused() {
    let emu = Emulator::start(&[]);
    let mut t = repo_with_state(&emu);
    let path = t.state_path();
    let snap = kore_notify::state::load(&path).expect("load").state;
    let journal = path.with_file_name("state.json.journal");
    let good = std::fs::read(&path).expect("state");
    for (lineage, serial, needle) in [
        ("someone-else".to_string(), snap.serial, "belongs to another state"),
        (snap.lineage.clone(), snap.serial + 3, "newer than this state.json"),
    ] {
        let text = format!("{{\"op\":\"begin\",\"lineage\":\"{lineage}\",\"serial\":{serial},\"at\":\"x\"}}\n");
        std::fs::write(&journal, &text).expect("journal");
        for args in [vec!["plan"], vec!["apply", "--auto-approve"], vec!["state", "rm", "k", "--yes"]] {
            t = t.args(args).status(1).stderr_has(needle).run().1;
            assert_eq!(std::fs::read(&path).expect("state"), good, "state changed");
            assert_eq!(std::fs::read_to_string(&journal).expect("journal"), text, "journal changed");
        }
    }
}
