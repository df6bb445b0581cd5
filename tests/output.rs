//! Exact output, as people read it (insta snapshots in tests/snapshots/; `cargo insta review`):
//! `status`, `state list`, `state resolve`, the apply summary, and the most common errors. What
//! varies from run to run (times, ids, lineage, ports, paths, durations) is redacted; substring
//! assertions stay for what varies by design.

use crate::harness::*;

/// The output with what varies replaced by a name.
fn redact(s: &str, t: &Test, emu: Option<&Emulator>) -> String {
    let mut s = s.replace(t.path().to_str().unwrap_or("\u{0}"), "REPO");
    if let Some(e) = emu {
        s = s.replace(&e.url, "http://EMULATOR");
    }
    let words: Vec<String> = s
        .split_inclusive([' ', '\n', '\t', '(', ')', ','])
        .map(|w| {
            let core = w.trim_end_matches([' ', '\n', '\t', '(', ')', ',', '.', ':']);
            let tail = &w[core.len()..];
            let is_time = core.len() >= 20 && core.as_bytes().get(4) == Some(&b'-') && core.contains('T');
            let is_hex = core.len() >= 8
                && core.bytes().all(|b| b.is_ascii_hexdigit())
                && core.bytes().any(|b| b.is_ascii_alphabetic());
            let is_job = core.starts_with("ds-") || core.starts_with("job-");
            let is_elapsed = core.len() <= 5
                && core.contains(':')
                && core.bytes().all(|b| b.is_ascii_digit() || b == b':')
                && core.starts_with("0:");
            let is_uuid = core.len() == 36
                && core.bytes().filter(|b| *b == b'-').count() == 4
                && core.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if is_uuid {
                format!("BATCH{tail}")
            } else if is_time {
                format!("TIME{tail}")
            } else if is_hex {
                format!("HEX{tail}")
            } else if is_job {
                format!("JOB{tail}")
            } else if is_elapsed {
                format!("ELAPSED{tail}")
            } else {
                w.to_string()
            }
        })
        .collect();
    words.concat()
}

fn slack(key: &str, ids: &[&str]) -> String {
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "))
}

/// A repository with a delivered, a failed, a rejected-free unknown and a plain notification:
/// `status`, `state list`, `state resolve` and the apply summary, exactly.
#[test]
fn status_state_list_resolve_and_the_apply_summary() {
    let emu = Emulator::start(&["--schedule", "3=500"]);
    let t = Test::repo(&emu.url)
        .file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 2"))
        .manifest("a.yaml", &slack("welcome", &["ok@x.com", "fail@x.com"]))
        .manifest("b.yaml", &slack("reminder", &["ann@x.com", "bob@x.com", "cy@x.com"]));
    let (apply, t) = t.args(["apply", "--auto-approve", "--parallelism", "1"]).status(3).run();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (_, t) = t.args(["status", "--refresh"]).status(3).run();
    let (status, t) = t.args(["status"]).status(3).run();
    let (list, t) = t.args(["state", "list"]).status(0).run();
    let (resolve, t) = t.args(["state", "resolve", "welcome", "--show-recipients"]).status(0).run();
    let text = format!(
        "$ kore-notify apply --auto-approve (stdout)\n{}\n$ kore-notify status\n{}\n$ kore-notify state list\n{}\n$ kore-notify state resolve welcome --show-recipients\n{}",
        apply.stdout, status.stdout, list.stdout, resolve.stdout
    );
    insta::assert_snapshot!("status_list_resolve_apply", redact(&text, &t, Some(&emu)));
}

/// The errors people meet most, each with where, what and the fix.
#[test]
fn the_most_common_errors() {
    let emu = Emulator::start(&[]);
    let mut out = String::new();
    let mut case = |title: &str, t: Test, args: &[&str], code: i32| -> Test {
        let (o, t) = t.args(args.to_vec()).status(code).run();
        out.push_str(&format!("## {title}\n$ kore-notify {}\n{}\n", args.join(" "), redact(&o.stderr, &t, Some(&emu))));
        t
    };
    let t = case("no config", Test::new(), &["plan"], 1);
    let _ = t;
    let t = Test::repo(&emu.url).manifest("a.yaml", &slack("a", &["x@y.com"]));
    let t = case(
        "unknown field",
        t.manifest(
            "b.yaml",
            "key: b\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\ncolour: red\n",
        ),
        &["validate"],
        1,
    );
    let t = case(
        "unknown channel",
        t.manifest("b.yaml", "key: b\nchannel: telegram\ncontent: {type: text, value: hi}\nidentities: [a]\n"),
        &["validate"],
        1,
    );
    let t = case("duplicate key", t.manifest("b.yaml", &slack("a", &["z@y.com"])), &["validate"], 1);
    let t = case(
        "undeclared variable",
        t.manifest(
            "b.yaml",
            "key: b\nchannel: slack\ncontent: {type: text, value: 'hi ${RELEASE}'}\nidentities: [a]\n",
        ),
        &["validate"],
        1,
    );
    let t = case(
        "placeholder without a parameter",
        t.manifest(
            "b.yaml",
            "key: b\nchannel: ivr\ncontent: {type: text, value: 'hi {name}'}\nidentities: [{email: a@x.com}]\n",
        ),
        &["validate"],
        1,
    );
    let t = t.file("notifications/b.yaml", "# none\n");
    let t = case(
        "missing credentials",
        t.unset("KORE_CLIENT_ID").unset("KORE_CLIENT_SECRET"),
        &["apply", "--auto-approve"],
        1,
    );
    let t = t.env("KORE_CLIENT_ID", CLIENT_ID).env("KORE_CLIENT_SECRET", SECRET);
    let t = case(
        "over --max-recipients",
        t.manifest("b.yaml", &slack("b", &["p@y.com", "r@y.com"])),
        &["apply", "--auto-approve", "--max-recipients", "2"],
        1,
    );
    let t = case("no approval without a terminal", t, &["apply"], 1);
    let (_, t) = t.args(["plan", "--out", "plan.json"]).status(0).run();
    let t = case("a stale plan file", t.manifest("c.yaml", &slack("c", &["q@y.com"])), &["apply", "plan.json"], 1);
    let t = case(
        "a literal client secret",
        t.file("kore-notify.yaml", &config(&emu.url).replace("${KORE_CLIENT_SECRET}", "hunter2")),
        &["validate"],
        1,
    );
    let _ = case(
        "state resolve of a key that is not there",
        t.file("kore-notify.yaml", &config(&emu.url)),
        &["state", "resolve", "nope", "--sent"],
        1,
    );
    insta::assert_snapshot!("common_errors", out);
}
