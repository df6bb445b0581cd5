//! Issue 10, delivery precision: unknown outcomes settle per request and hold back only their own
//! recipients; exit codes; stale snapshots; 2xx answers that are not jobs; personalisation under
//! both readings of Kore's v2 page; retrying failed deliveries; interrupted runs.

use std::time::Duration;

use crate::harness::*;

fn with_batch(emu: &Emulator, size: usize) -> Test {
    Test::repo(&emu.url)
        .file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", &format!("batchSize: {size}")))
}

fn slack(key: &str, ids: &[String]) -> String {
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "))
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}@example.com")).collect()
}

fn plan_json(t: Test, extra: &[&str]) -> (serde_json::Value, Test) {
    let mut args = vec!["plan", "--format", "json"];
    args.extend_from_slice(extra);
    let (o, t) = t.args(args).status(0).run();
    (serde_json::from_str(&o.stdout).expect("plan json"), t)
}

fn deliveries_of(emu: &Emulator, id: &str) -> u64 {
    emu.deliveries().get(&format!("slack:{id}")).copied().unwrap_or(0)
}

/// One notification, two unknown requests: #1 answered 500 (not delivered), #2 delivered and its
/// answer lost. Each is decided on its own; nobody is left out and nobody gets it twice.
#[test]
fn two_unknown_requests_are_settled_one_by_one() {
    let emu = Emulator::start(&["--schedule", "2=500,3=drop"]);
    let people = ids("u", 6);
    let (o, t) = with_batch(&emu, 2)
        .manifest("a.yaml", &slack("k", &people))
        .args(["apply", "--auto-approve", "--parallelism", "1"])
        .status(3)
        .run();
    assert!(o.stdout.contains("1 request(s) accepted (2 recipient(s)), 0 rejected, 2 unknown"), "{}", o.stdout);
    let (plan, t) = plan_json(t, &[]);
    let k = &plan["targets"][0]["notifications"][0];
    assert_eq!(k["action"], "blocked", "{k}");
    assert_eq!(k["recipients"]["unknown"], 4);
    let reqs = k["unknownRequests"].as_array().expect("unknown requests");
    assert_eq!(reqs.iter().map(|r| r["index"].as_u64().unwrap_or(99)).collect::<Vec<_>>(), vec![1, 2]);
    assert!(reqs.iter().all(|r| r["held"] == 2), "{reqs:?}");
    assert_eq!(plan["summary"]["recipientsHeld"], 4);
    // Text and markdown list them too.
    let (_, t) = t.args(["plan"]).status(0).stdout_has("unknown request #1").stdout_has("unknown request #2").run();
    let (_, t) = t.args(["plan", "--format", "markdown"]).status(0).stdout_has("unknown request \\#\u{2060}2").run();
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(2).run();
    // Deciding for the whole notification at once is refused: the requests had different fates.
    let (o, t) = t.args(["state", "resolve", "k", "--sent"]).status(1).stderr_has("resolve them one at a time").run();
    assert!(o.stdout.contains("u***@e***.com ~") && !o.stdout.contains("u2@example.com"), "masked: {}", o.stdout);
    // Listing one request shows its recipients, in clear on request.
    let (o, t) = t.args(["state", "resolve", "k", "#1", "--show-recipients"]).status(0).run();
    assert!(o.stdout.contains("u2@example.com") && o.stdout.contains("u3@example.com"), "{}", o.stdout);
    assert!(!o.stdout.contains("u4@example.com"), "{}", o.stdout);
    // #2 was delivered (its answer was lost); #1 is retried alone.
    let (_, t) = t.args(["state", "resolve", "k", "2", "--sent"]).status(0).run();
    let (plan, t) = plan_json(t, &["--retry-unknown=k#1"]);
    let sends: Vec<&str> = plan["targets"][0]["notifications"][0]["sends"]
        .as_array()
        .expect("sends")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(sends, vec!["u2@example.com", "u3@example.com"]);
    let (_, t) =
        t.args(["apply", "--auto-approve", "--retry-unknown=k#2"]).status(1).stderr_has("no unknown outcome").run();
    let (_, t) = t.args(["apply", "--auto-approve", "--retry-unknown=k#1"]).status(0).run();
    for p in &people {
        assert_eq!(deliveries_of(&emu, p), 1, "{p}: {:?}", emu.deliveries());
    }
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
}

/// An unknown request holds back its own recipients only: the next apply sends everyone else,
/// and exits 3 while someone is held back.
#[test]
fn an_unknown_request_blocks_only_itself() {
    let emu = Emulator::start(&["--schedule", "1=drop"]);
    let first = ids("p", 7);
    let (_, t) = with_batch(&emu, 7)
        .manifest("a.yaml", &slack("k", &first))
        .args(["apply", "--auto-approve"])
        .status(3)
        .stderr_has("UNKNOWN outcome")
        .run();
    let all: Vec<String> = first.iter().cloned().chain(ids("q", 33)).collect();
    let t = t.manifest("a.yaml", &slack("k", &all));
    let (plan, t) = plan_json(t, &[]);
    let k = &plan["targets"][0]["notifications"][0];
    assert_eq!(k["action"], "send-to-added", "{k}");
    assert_eq!(k["sends"].as_array().map(Vec::len), Some(33));
    assert_eq!(k["recipients"]["unknown"], 7);
    let (o, t) = t.args(["apply", "--auto-approve"]).status(3).stderr_has("held back").run();
    assert!(o.stdout.contains("(33 recipient(s))"), "{}", o.stdout);
    assert!(all.iter().all(|p| deliveries_of(&emu, p) == 1), "{:?}", emu.deliveries());
    // Only the decision is left: plan says so, apply sends nothing and still exits 3.
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(2).stdout_has("! blocked").run();
    let (_, t) = t.args(["apply", "--auto-approve"]).status(3).stderr_has("Nothing to send").run();
    let (_, t) = t.args(["state", "resolve", "k", "--sent"]).status(0).run();
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
    assert!(all.iter().all(|p| deliveries_of(&emu, p) == 1));
}

/// A 2xx answer is an acceptance only when it is a job: an HTML page, JSON without `_id`, or an
/// `_id` without job status are unknown, shown to the user and never re-sent silently. A job id
/// that Kore's status API knows settles the request as sent.
#[test]
fn a_2xx_that_is_not_a_job_is_unknown() {
    let emu = Emulator::start(&["--schedule", "1=html,2=no-id,3=bare-id"]);
    let people = ids("h", 3);
    let (o, t) = with_batch(&emu, 1)
        .manifest("a.yaml", &slack("k", &people))
        .args(["apply", "--auto-approve", "--parallelism", "1"])
        .status(3)
        .stderr_has("not a Kore.ai job (not JSON)")
        .stderr_has("JSON without a job id")
        .run();
    assert!(o.stdout.contains("0 request(s) accepted (0 recipient(s)), 0 rejected, 3 unknown"), "{}", o.stdout);
    let (_, t) = t.args(["apply", "--auto-approve"]).status(3).stderr_has("Nothing to send").run();
    assert!(people.iter().all(|p| deliveries_of(&emu, p) == 1), "never re-sent: {:?}", emu.deliveries());
    let (plan, t) = plan_json(t, &[]);
    assert_eq!(plan["targets"][0]["notifications"][0]["unknownRequests"].as_array().map(Vec::len), Some(3));
    std::thread::sleep(Duration::from_millis(200));
    let (_, t) = t.args(["status", "--refresh"]).status(3).stderr_has("settled as sent").run();
    let (plan, t) = plan_json(t, &[]);
    let left: Vec<u64> = plan["targets"][0]["notifications"][0]["unknownRequests"]
        .as_array()
        .expect("unknown")
        .iter()
        .filter_map(|r| r["index"].as_u64())
        .collect();
    assert_eq!(left, vec![0, 1], "the job Kore knows (request #2) is settled");
    t.args(["state", "list"]).status(0).stdout_has("UNKNOWN OUTCOME").run();
}

/// A snapshot older than its backup or the high-water mark is refused, naming both serials and the
/// way back; nothing is sent.
#[test]
fn a_stale_snapshot_is_refused() {
    let emu = Emulator::start(&[]);
    let (_, t) = Test::repo(&emu.url)
        .manifest("a.yaml", &slack("k1", &ids("s", 1)))
        .args(["apply", "--auto-approve"])
        .status(0)
        .run();
    let (_, t) = t.manifest("b.yaml", &slack("k2", &ids("t", 1))).args(["apply", "--auto-approve"]).status(0).run();
    let path = t.state_path();
    let dir = path.parent().expect("dir").to_path_buf();
    let newest = std::fs::read(&path).expect("state");
    // Restore the previous snapshot over the newest (as an old CI artifact would).
    std::fs::copy(dir.join("state.json.backup"), &path).expect("restore");
    let old = std::fs::read(&path).expect("state");
    let (_, t) = t
        .args(["plan"])
        .status(1)
        .stderr_has("this snapshot is serial 1")
        .stderr_has("shows serial 2 was written")
        .stderr_has("rm ")
        .run();
    let before = emu.deliveries();
    let (_, t) = t.args(["apply", "--auto-approve"]).status(1).stderr_has("nothing was sent").run();
    assert_eq!(emu.deliveries(), before);
    assert_eq!(std::fs::read(&path).expect("state"), old, "left untouched");
    // The backup equals the snapshot now; the high-water mark alone still refuses it.
    let (_, t) = t.args(["status"]).status(1).stderr_has("state.json.serial shows serial 2").run();
    // The newest snapshot restored: fine again.
    std::fs::write(&path, &newest).expect("write");
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).run();
    // Accepting an older state knowingly, as the message says.
    std::fs::write(&path, &old).expect("write");
    std::fs::remove_file(dir.join("state.json.serial")).expect("rm mark");
    std::fs::remove_file(dir.join("state.json.backup")).expect("rm backup");
    t.args(["plan", "--detailed-exitcode"]).status(2).run();
}

/// Kore's v2 page: its field table says parameters fill only a customMessage, its samples that
/// they fill the main message. Either way the recipient reads the filled text, and the plan's
/// preview is exactly that text.
#[test]
fn personalisation_holds_under_both_readings() {
    let manifest = "key: p\nchannel: ivr\ncontent: {type: text, value: 'Hi {firstName}, order {id}.'}\nidentities:\n  - {email: a@x.com, parameters: {firstName: Ann, id: A-1}}\n  - {email: b@x.com, customMessage: 'Dear {firstName}, {id}', parameters: {firstName: Bo, id: B-2}}\n  - {email: c@x.com, parameters: {firstName: Cy, id: C-3}}\n";
    for mode in ["message", "custom-only"] {
        let emu = Emulator::start(&["--v2-parameters", mode]);
        let t = Test::repo(&emu.url).manifest("p.yaml", manifest);
        let (plan, t) = plan_json(t, &[]);
        let preview = plan["targets"][0]["notifications"][0]["preview"].clone();
        t.args(["apply", "--auto-approve"]).status(0).run();
        let messages = emu.stats()["messages"].clone();
        assert_eq!(messages["ivr:a@x.com"], serde_json::json!(["Hi Ann, order A-1."]), "{mode}: {messages}");
        assert_eq!(messages["ivr:b@x.com"], serde_json::json!(["Dear Bo, B-2"]), "{mode}");
        assert_eq!(messages["ivr:c@x.com"], serde_json::json!(["Hi Cy, order C-3."]), "{mode}");
        for p in preview.as_array().expect("preview") {
            let id = p["id"].as_str().unwrap_or_default();
            assert_eq!(messages[format!("ivr:{id}")][0], p["message"], "{mode}: the preview is what was delivered");
        }
    }
    // Switched off, the custom-only reading delivers the placeholders literally: the switch and
    // the emulator mode are real. Switching it on later resends nobody (same fingerprints).
    let emu = Emulator::start(&["--v2-parameters", "custom-only"]);
    let off = format!("{}v2TemplateAsCustomMessage: false\n", config(&emu.url));
    let t = Test::repo(&emu.url).file("kore-notify.yaml", &off).manifest("p.yaml", manifest);
    let (plan, t) = plan_json(t, &[]);
    assert_eq!(
        plan["targets"][0]["notifications"][0]["preview"][0]["ifParametersFillOnlyCustomMessage"],
        "Hi {firstName}, order {id}.",
        "the preview shows both readings when the copy is switched off"
    );
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.stats()["messages"]["ivr:a@x.com"], serde_json::json!(["Hi {firstName}, order {id}."]));
    let t = t.file("kore-notify.yaml", &config(&emu.url));
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
}

/// Recipients whose delivery failed can be retried alone, after the plan shows them as such.
#[test]
fn failed_deliveries_are_retried_alone() {
    let emu = Emulator::start(&[]);
    let ids = ["ok1@x.com", "fail1@x.com", "ok2@x.com"];
    let manifest =
        format!("key: k\nchannel: msteams\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "));
    let (_, t) = Test::repo(&emu.url).manifest("a.yaml", &manifest).args(["apply", "--auto-approve"]).status(0).run();
    std::thread::sleep(Duration::from_millis(300));
    let (_, t) = t.args(["status", "--refresh"]).status(3).run();
    let (plan, t) = plan_json(t, &[]);
    assert_eq!(plan["targets"][0]["notifications"][0]["action"], "no-op");
    assert_eq!(plan["targets"][0]["notifications"][0]["recipients"]["failed"], 1);
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).stdout_has("--retry-failed=k").run();
    let (plan, t) = plan_json(t, &["--retry-failed=all"]);
    let k = &plan["targets"][0]["notifications"][0];
    assert_eq!(k["action"], "retry-failed", "{k}");
    assert_eq!(k["sends"].as_array().map(Vec::len), Some(1));
    assert_eq!(k["sends"][0]["id"], "fail1@x.com");
    assert_eq!(k["sends"][0]["change"], "retry-failed");
    let (_, t) = t.args(["plan", "--retry-failed=k"]).status(0).stdout_has("~ retry failed").run();
    let (_, t) = t.args(["apply", "--auto-approve", "--retry-failed=k"]).status(0).stdout_has("(1 recipient(s))").run();
    let d = emu.deliveries();
    assert_eq!((d["msteams:ok1@x.com"], d["msteams:fail1@x.com"], d["msteams:ok2@x.com"]), (1, 2, 1));
    t.args(["apply", "--auto-approve"]).status(0).stderr_has("Nothing to send").run();
}

/// SIGINT in the middle of an apply: the process may die anywhere; the next runs settle without a
/// duplicate and without losing anyone.
#[test]
fn sigint_mid_apply_leaves_no_duplicate_and_nothing_lost() {
    let emu = Emulator::start(&["--latency-ms", "40"]);
    let people = ids("i", 40);
    let t = with_batch(&emu, 2).manifest("a.yaml", &slack("k", &people));
    let mut child = t.spawn(&["apply", "--auto-approve", "--parallelism", "2"]);
    std::thread::sleep(Duration::from_millis(350));
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
    let mid = emu.deliveries();
    assert!(mid.len() < 40, "the run was interrupted ({} delivered)", mid.len());
    // The next run sends every recipient never sent; those in unknown requests are held back.
    let (o, mut t) = t.args(["apply", "--auto-approve"]).run();
    assert!(matches!(o.status, 0 | 3), "{}", o.stderr);
    assert!(emu.deliveries().values().all(|c| *c == 1), "duplicate: {:?}", emu.deliveries());
    // Settle each unknown request by what Kore.ai did (the emulator knows; an operator would ask).
    let (plan, t2) = plan_json(t, &[]);
    t = t2;
    let state = kore_notify::state::load(&t.state_path()).expect("state").state;
    for u in plan["targets"][0]["notifications"][0]["unknownRequests"].as_array().cloned().unwrap_or_default() {
        let i = u["index"].as_u64().expect("index") as u32;
        let n = &state.notifications["k"];
        let delivered = people.iter().any(|p| {
            let h = kore_notify::fingerprint::recipient_hash(&state.lineage, p);
            n.recipients.get(&h).and_then(|r| r.pending.as_ref()).is_some_and(|pd| pd.req == i)
                && deliveries_of(&emu, p) > 0
        });
        let decision = if delivered { "--sent" } else { "--not-sent" };
        t = t.args(["state", "resolve", "k", &i.to_string(), decision]).status(0).run().1;
    }
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let d = emu.deliveries();
    assert_eq!(d.len(), 40, "everyone reached: {d:?}");
    assert!(d.values().all(|c| *c == 1), "no duplicate: {d:?}");
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
}

fn validate(manifests: &[(&str, &str)]) -> Test {
    let mut t = Test::repo("https://kore.example.com");
    for (name, m) in manifests {
        t = t.manifest(name, m);
    }
    t.args(["validate"])
}

/// CSV problems are errors with line numbers, never silently folded rows.
#[test]
fn csv_quoting_problems_are_errors_with_lines() {
    let m = "key: c\nchannel: ivr\ncontent: {type: text, value: 'Hi {name}'}\nidentitiesFrom: ../aud.csv\n";
    let cases = [
        ("email,name\na@x.com,\"Ann\nb@x.com,Bob\n", "aud.csv:2", "never closed"),
        ("email,name\na@x.com,\"Ann\nb@x.com,\"Bob\"\n", "aud.csv:3", "a quote is missing"),
        ("email,name\na@x.com,Ann\nb@x.com,Bob,extra\n", "aud.csv:3", "invalid CSV"),
    ];
    for (csv, at, needle) in cases {
        let (o, _) = validate(&[("c.yaml", m)]).file("aud.csv", csv).status(1).stderr_has(needle).run();
        assert!(o.stderr.contains(at), "{at}: {}", o.stderr);
    }
}

/// One mailbox written three ways is an error (or allowed knowingly); surrounding whitespace is
/// trimmed with a warning; phone numbers compare by digits.
#[test]
fn near_duplicate_recipients() {
    let ivr = "key: n\nchannel: ivr\ncontent: {type: text, value: hi}\nidentities: [a@example.com, ' a@example.com', A@Example.com]\n";
    let (o, _) = validate(&[("n.yaml", ivr)])
        .status(1)
        .stderr_has("has surrounding whitespace; it is sent as `a@example.com`")
        .stderr_has("duplicate recipient `a@example.com`")
        .stderr_has("`A@Example.com` reaches the same recipient as `a@example.com` (identities[0])")
        .stderr_has("allowNearDuplicates: true")
        .run();
    assert!(o.stderr.contains("notifications/n.yaml:4"), "{}", o.stderr);
    let wa = "key: w\nchannel: whatsapp\ncontent: {type: text, value: hi}\nidentities: ['+91 98765 43210', '919876543210']\n";
    validate(&[("w.yaml", wa)]).status(1).stderr_has("reaches the same recipient").run();
    let allowed = format!("{wa}allowNearDuplicates: true\n");
    validate(&[("w.yaml", &allowed)]).status(0).run();
    // A CSV audience too, with the row named.
    let m = "key: c\nchannel: ivr\ncontent: {type: text, value: hi}\nidentitiesFrom: ../aud.csv\n";
    let (o, _) = validate(&[("c.yaml", m)])
        .file("aud.csv", "email\nbo@x.com\nBO@x.com\n")
        .status(1)
        .stderr_has("aud.csv:3")
        .run();
    assert!(o.stderr.contains("`BO@x.com` reaches the same recipient as `bo@x.com`"), "{}", o.stderr);
}

/// YAML that would silently change the text, or fail cryptically, gets our own words.
#[test]
fn yaml_pitfalls_are_explained() {
    let base = "key: y\nchannel: slack\nidentities: [a]\ncontent:\n  type: text\n";
    let (o, _) = validate(&[("y.yaml", &format!("{base}  value: Order #{{orderId}} ships today\n"))])
        .status(0)
        .stderr_has("the value is `Order`")
        .stderr_has("\"Order #{orderId} ships today\"")
        .run();
    assert!(o.stderr.contains("y.yaml:6:10"), "{}", o.stderr);
    // A comment written as one is fine.
    let (o, _) = validate(&[("y.yaml", &format!("{base}  value: Hello  # greeting\n"))]).status(0).run();
    assert!(!o.stderr.contains("warning"), "{}", o.stderr);
    validate(&[("y.yaml", &format!("{base}  value: {{name}}, your order is late\n"))])
        .status(1)
        .stderr_has("quote it: value: \"{name}, your order is late\"")
        .run();
    let (o, _) = validate(&[("y.yaml", &format!("{base}  value: 1.50\n"))]).status(1).stderr_has("\"1.50\"").run();
    assert!(!o.stderr.contains("\"1.5\""), "{}", o.stderr);
    let (o, _) = validate(&[("y.yaml", "key: y\nchannel: slack\nkey: z\n")])
        .status(1)
        .stderr_has("duplicate key `key` on line 3: the same mapping already has it on line 1")
        .run();
    assert!(!o.stderr.contains("DuplicateKeyPolicy"), "{}", o.stderr);
}
