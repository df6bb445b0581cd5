use std::collections::BTreeMap;

use crate::harness::*;

fn slack(key: &str, text: &str, ids: &[&str]) -> String {
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: '{text}'}}\nidentities: [{}]\n", ids.join(", "))
}

fn actions(t: &Test, extra: &[&str]) -> BTreeMap<String, serde_json::Value> {
    let mut args = vec!["plan", "--format", "json"];
    args.extend_from_slice(extra);
    let out = t.command().args(&args).output().expect("plan");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan json");
    v["targets"][0]["notifications"]
        .as_array()
        .expect("array")
        .iter()
        .map(|n| (n["key"].as_str().unwrap_or("").to_string(), n.clone()))
        .collect()
}

#[test]
fn every_action() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url)
        .manifest("a.yaml", &slack("same", "hello", &["a", "b"]))
        .manifest("b.yaml", &slack("changed", "old text", &["a", "b"]))
        .manifest("c.yaml", &slack("grows", "hi", &["a"]))
        .manifest("d.yaml", &format!("{}onChange: ignore\n", slack("quiet", "v1", &["a"])))
        .manifest("e.yaml", &slack("old-name", "renamed", &["a"]))
        .manifest("f.yaml", &slack("gone", "bye", &["a"]))
        .manifest("g.yaml", &slack("shrinks", "x", &["a", "b", "c"]))
        .args(["apply", "--auto-approve"])
        .status(0)
        .run()
        .1;
    std::fs::remove_file(t.path().join("notifications/f.yaml")).expect("rm");
    let t = t
        .manifest("b.yaml", &slack("changed", "new text", &["a", "b"]))
        .manifest("c.yaml", &slack("grows", "hi", &["a", "z"]))
        .manifest("d.yaml", &format!("{}onChange: ignore\n", slack("quiet", "v2", &["a"])))
        .manifest("e.yaml", &format!("{}previousKeys: [old-name]\n", slack("new-name", "renamed", &["a"])))
        .manifest("g.yaml", &slack("shrinks", "x", &["a"]))
        .manifest("h.yaml", &slack("brand-new", "fresh", &["a", "b", "c"]))
        .manifest("i.yaml", &format!("{}notBefore: 2099-01-01T00:00:00Z\n", slack("later", "soon", &["a"])))
        .manifest("j.yaml", &format!("{}notAfter: 2020-01-01T00:00:00Z\n", slack("too-late", "old", &["a"])));
    let a = actions(&t, &[]);
    let act = |k: &str| a[k]["action"].as_str().unwrap_or("").to_string();
    assert_eq!(act("same"), "no-op");
    assert_eq!(act("changed"), "resend");
    assert_eq!(a["changed"]["sends"].as_array().map(Vec::len), Some(2));
    assert_eq!(a["changed"]["previousContent"]["value"], "old text");
    assert_eq!(act("grows"), "send-to-added");
    assert_eq!(a["grows"]["sends"][0]["id"], "z");
    assert_eq!(act("quiet"), "record");
    assert_eq!(act("new-name"), "no-op");
    assert_eq!(a["new-name"]["renamedFrom"], "old-name");
    assert_eq!(act("gone"), "orphaned");
    assert_eq!(act("shrinks"), "no-op");
    assert_eq!(a["shrinks"]["recipients"]["removed"], 2);
    assert_eq!(act("brand-new"), "send");
    assert_eq!(act("later"), "scheduled");
    assert_eq!(act("too-late"), "expired");
    assert!(!a.contains_key("old-name"), "a renamed key is not orphaned");

    // Text shows the diff and the summary line.
    let (o, t) = t.args(["plan", "--color", "never"]).status(0).run();
    assert!(o.stdout.contains("- old text") && o.stdout.contains("+ new text"), "{}", o.stdout);
    assert!(o.stdout.contains("Plan: 3 notification(s) to send to 6 recipient(s)"), "{}", o.stdout);
    // The whole review output, as a reviewer reads it (tests/snapshots/; `cargo insta review`).
    let text = match o.stdout.find("lineage ") {
        Some(i) => format!("{}lineage LINEAGE{}", &o.stdout[..i], &o.stdout[i + 16..]),
        None => o.stdout.clone(),
    };
    insta::assert_snapshot!("every_action_text", text.replace(&emu.url, "http://EMULATOR"));
    let (md, t) = t
        .args(["plan", "--format", "markdown", "--commit", "0123456789abcdef0123456789abcdef01234567"])
        .env("KORE_NOTIFY_REPO_URL", "https://github.com/acme/notifications")
        .status(0)
        .run();
    let md = md.stdout.replace(&emu.url.replace("://", ":\u{2060}//"), "http://EMULATOR");
    insta::assert_snapshot!("every_action_markdown", md);

    // Applying it sends exactly the planned recipients; then nothing is pending.
    let before = emu.deliveries();
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let after = emu.deliveries();
    let diff: BTreeMap<_, _> =
        after.iter().filter(|(k, v)| before.get(*k) != Some(v)).map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(diff.keys().cloned().collect::<Vec<_>>(), vec!["slack:a", "slack:b", "slack:c", "slack:z"]);
    // a: changed + brand-new → 2 more; b: changed + brand-new; c: brand-new; z: added.
    assert_eq!(after["slack:a"] - before["slack:a"], 2);
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
}

#[test]
fn blocked_after_unknown_outcome_then_resolved() {
    let emu = Emulator::start(&["--drop-rate", "1.0"]);
    let (_, t) = Test::repo(&emu.url)
        .manifest("a.yaml", &slack("k", "hello", &["a", "b"]))
        .args(["apply", "--auto-approve"])
        .status(3)
        .stderr_has("unknown outcome")
        .run();
    let a = actions(&t, &[]);
    assert_eq!(a["k"]["action"], "blocked");
    assert_eq!(a["k"]["sends"].as_array().map(Vec::len), Some(0));
    // Nothing is sent, and the run says (exit 3) that recipients are held back.
    let (_, t) = t.args(["apply", "--auto-approve"]).status(3).stderr_has("Nothing to send").run();
    assert_eq!(emu.deliveries()["slack:a"], 1, "a blocked notification is never resent silently");
    let a = actions(&t, &["--retry-unknown=all"]);
    assert_eq!(a["k"]["action"], "resend");
    assert_eq!(a["k"]["sends"][0]["change"], "retry");
    let (_, t) = t.args(["state", "resolve", "k", "--sent"]).status(0).run();
    assert_eq!(actions(&t, &[])["k"]["action"], "no-op");
}

#[test]
fn output_is_deterministic() {
    let ex = examples_dir();
    let t = Test::new();
    copy_dir(&ex, t.path());
    for format in ["json", "text", "markdown"] {
        let run = || t.command().args(["plan", "--format", format]).output().expect("plan").stdout;
        assert_eq!(run(), run(), "format {format}");
    }
}

#[test]
fn plan_reads_no_credentials_and_opens_no_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let host = format!("http://{}", listener.local_addr().expect("addr"));
    Test::repo(&host)
        .manifest("a.yaml", &slack("k", "hello", &["a"]))
        .unset("KORE_CLIENT_ID")
        .unset("KORE_CLIENT_SECRET")
        .args(["plan", "--detailed-exitcode"])
        .status(2)
        .stdout_has("+ send")
        .run();
    assert!(listener.accept().is_err(), "plan connected to the Kore.ai host");
}

#[test]
fn saved_plan_applies_exactly_and_stale_plans_are_refused() {
    let emu = Emulator::start(&[]);
    let (_, t) = Test::repo(&emu.url)
        .manifest("a.yaml", &slack("k", "hello", &["a"]))
        .args(["plan", "--out", "plan.json"])
        .status(0)
        .run();
    // The manifests change after review: the saved plan is refused and nothing is sent.
    let (_, t) = t
        .manifest("a.yaml", &slack("k", "hello", &["a", "b"]))
        .args(["apply", "plan.json"])
        .status(1)
        .stderr_has("the manifests changed since the plan was made")
        .run();
    assert!(emu.deliveries().is_empty());
    let (_, t) = t.args(["plan", "--out", "plan.json"]).status(0).run();
    let (_, t) = t.args(["apply", "plan.json"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 2);
    // The state moved on: the old plan file is stale.
    t.args(["apply", "plan.json"]).status(1).stderr_has("the state changed").run();
}

#[test]
fn markdown_stays_within_limits_and_escapes_user_text() {
    for n in [1usize, 100, 10_000, 100_000] {
        let mut csv = String::from("email,name\n");
        for i in 0..n {
            csv.push_str(&format!("user{i}@example.com,U{i}\n"));
        }
        let mut t = Test::repo("https://kore.example.com").file("aud.csv", &csv);
        // Many notifications with long content, to overflow the comment.
        let count = if n >= 10_000 { 3 } else { 60 };
        for k in 0..count {
            t = t.manifest(
                &format!("n{k}.yaml"),
                &format!(
                    "key: n{k}\nchannel: ivr\ncontent: {{type: text, value: 'Hi {{name}} <script>alert(1)</script> [click](http://evil) @team {}'}}\nidentitiesFrom: ../aud.csv\n",
                    "long text ".repeat(150)
                ),
            );
        }
        let (o, _) = t.args(["plan", "--format", "markdown"]).status(0).run();
        let chars = o.stdout.chars().count();
        assert!(chars <= 65_000, "{n} recipients: {chars} characters");
        assert!(!o.stdout.contains("<script>"), "HTML not escaped");
        // User text is escaped outside code blocks; inside fences it is inert text.
        let outside: String = o.stdout.split("```").step_by(2).collect();
        assert!(!outside.contains("[click](http://evil)"), "link not escaped");
        assert!(!outside.contains("@team"), "mention not escaped");
        // Committed audiences are shown as written.
        assert!(o.stdout.contains("<code>user0@\u{2060}example.com</code>"), "recipients in clear");
        let total = (count * n).to_string();
        let total = total
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).expect("digits"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(o.stdout.contains(&format!("**On merge: {total} recipients**")), "{}", &o.stdout[..300]);
        if n >= 100 {
            assert!(o.stdout.contains("more"), "truncation must say what was left out");
        }
        if count == 60 {
            assert!(o.stdout.contains("not shown"), "left-out notifications must be named");
        }
    }
}

/// `review: {mask: true}`: identities and parameter values masked, still distinguishable; the
/// content and its previews as written.
#[test]
fn markdown_masks_recipients_when_the_config_asks() {
    let t = Test::repo("https://kore.example.com")
        .file("kore-notify.yaml", &format!("{}review: {{mask: true}}\n", config("https://kore.example.com")))
        .manifest(
            "p.yaml",
            "key: p\nchannel: ivr\ncontent: {type: text, value: 'Hello {name}'}\nidentities:\n  - {email: ann.lee@example.com, parameters: {name: Ann}}\n  - {email: amy.lee@example.com, parameters: {name: Amy}}\n",
        );
    let (o, _) = t.args(["plan", "--format", "markdown"]).status(0).run();
    assert!(!o.stdout.contains("ann.lee") && !o.stdout.contains("amy.lee"), "{}", o.stdout);
    let masked: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("- <code>a***@")).collect();
    assert_eq!(masked.len(), 2, "{}", o.stdout);
    assert_ne!(masked[0], masked[1], "masked recipients stay distinguishable");
}

/// Personalised messages are previewed as the first recipients would read them: parameters
/// filled in, a recipient's customMessage instead of the shared text.
#[test]
fn personalised_messages_are_previewed() {
    let t = Test::repo("https://kore.example.com").manifest(
        "p.yaml",
        "key: p\nchannel: ivr\ncontent: {type: text, value: 'Hello {name}, order {id}.'}\nidentities:\n  - {email: a@x.com, parameters: {name: Ann, id: A-1}}\n  - {email: b@x.com, customMessage: 'Hi {name}, {id} is late', parameters: {name: Bo, id: B-2}}\n",
    );
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let preview = &v["targets"][0]["notifications"][0]["preview"];
    assert_eq!(preview[0]["message"], "Hello Ann, order A-1.", "{preview}");
    assert_eq!(preview[1]["message"], "Hi Bo, B-2 is late", "{preview}");
    t.args(["plan", "--color", "never"]).status(0).stdout_has("a@x.com: Hello Ann, order A-1.").run();
}
