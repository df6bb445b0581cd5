//! The CI protocol (`scripts/ci-apply.sh`, as the reusable workflow runs it), rehearsed end to end
//! by `scripts/rehearse-ci.sh` against a local bare origin and the real emulator: adopting a
//! committed state, back-to-back merges from checkouts of different ages, a scheduled
//! notification, a run cancelled with SIGTERM and rerun, a run killed outright and recovered
//! from its artifact, with the state at a non-default path and max-recipients exported empty.

use std::process::Command;

use crate::harness::*;

/// The rehearsal needs Linux tools (setsid, bash 4): the CI protocol runs on ubuntu runners.
#[cfg(target_os = "linux")]
#[test]
fn the_ci_protocol_keeps_every_promise() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut rehearsal = Command::new("bash");
    // Its own process group, and no terminal: the rehearsal signals and kills runs of the script.
    std::os::unix::process::CommandExt::process_group(&mut rehearsal, 0);
    let out = rehearsal
        .arg(format!("{root}/scripts/rehearse-ci.sh"))
        .stdin(std::process::Stdio::null())
        .env("KN_BIN", BIN)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("run the rehearsal");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains("PASS:"), "rehearsal failed\n{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for step in ["1. adopt", "2. merges", "3. schedule", "4. cancel", "5. recover"] {
        assert!(stdout.contains(step), "step `{step}` did not run\n{stdout}");
    }
}

/// One value pins kore-notify in CI: the reusable workflow's default tool version, the examples'
/// `@vX.Y.Z` and the README's all equal the crate version.
#[test]
fn the_version_pin_is_one_value() {
    let root = env!("CARGO_MANIFEST_DIR");
    let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
    let read = |p: &str| std::fs::read_to_string(format!("{root}/{p}")).expect(p);
    let workflow = read(".github/workflows/kore-notify.yml");
    let default = workflow
        .split("kore-notify-version:")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("default: ")))
        .expect("kore-notify-version default");
    assert_eq!(default, tag);
    for file in [
        "README.md",
        "examples/.github/workflows/notifications.yml",
        "examples/.github/workflows/notifications-comment.yml",
    ] {
        let text = read(file);
        let pins: Vec<&str> =
            text.match_indices(".yml@").map(|(i, _)| text[i + 5..].split_whitespace().next().unwrap_or("")).collect();
        assert!(!pins.is_empty(), "{file} pins nothing");
        assert!(pins.iter().all(|p| *p == tag), "{file} pins {pins:?}, not {tag}");
    }
}

#[test]
fn version_prints_the_commit_and_target() {
    let (o, t) = Test::new().args(["--version"]).status(0).run();
    assert!(o.stdout.starts_with(&format!("kore-notify {} (commit ", env!("CARGO_PKG_VERSION"))), "{}", o.stdout);
    let (o, _) = t.args(["version", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        v["commit"].as_str().is_some_and(|c| !c.is_empty()) && v["target"].as_str().is_some_and(|t| t.contains('-')),
        "{v}"
    );
}

fn audience(n: usize) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("p{i}@x.com")).collect();
    format!("key: big\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "))
}

#[test]
fn a_plan_over_max_recipients_fails_the_check_with_a_line_in_the_comment() {
    let t = Test::repo("https://kore.example.com").manifest("n.yaml", &audience(12));
    let (o, t) = t
        .env("KORE_NOTIFY_MAX_RECIPIENTS", "10")
        .args(["plan", "--format", "markdown"])
        .status(1)
        .stderr_has("more than --max-recipients 10")
        .run();
    assert!(
        o.stdout.contains("**Over the limit**: 12 recipients counting the scheduled ones, and `max-recipients` is 10."),
        "{}",
        o.stdout
    );
    let (o, t) = t.env("KORE_NOTIFY_MAX_RECIPIENTS", "12").args(["plan", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.contains("**On merge: 12 recipients of at most 12** — 12 new\n"), "{}", o.stdout);
    assert_eq!(o.stdout.matches("12 ").count(), 3, "the reach is stated once (and the section's count): {}", o.stdout);
    // Empty means unset, for plan and apply alike.
    let (_, t) = t.env("KORE_NOTIFY_MAX_RECIPIENTS", "").args(["plan"]).status(0).run();
    let emu = Emulator::start(&[]);
    let t = t.file("kore-notify.yaml", &config(&emu.url)).env("KORE_NOTIFY_CONFIG", "").env("KORE_NOTIFY_NOW", "");
    t.env("KORE_NOTIFY_MAX_RECIPIENTS", "").args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 12);
}

#[test]
fn the_comment_names_the_commit_the_run_and_who_gets_a_second_message() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url).manifest(
        "a.yaml",
        "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [x@y.com, z@y.com]\n",
    );
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let t = t
        .manifest("a.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hello}\nidentities: [x@y.com, w@y.com]\n")
        .manifest("b.yaml", "key: b\nchannel: slack\ncontent: {type: text, value: later}\nidentities: [q@y.com]\nnotBefore: 2099-01-01T00:00:00Z\n")
        .env("KORE_NOTIFY_PLAN_COMMIT", "0123456789abcdef0123456789abcdef01234567")
        .env("KORE_NOTIFY_RUN_URL", "https://github.com/o/r/actions/runs/42");
    let (o, _) = t.args(["plan", "--format", "markdown"]).status(0).run();
    let md = o.stdout;
    assert!(md.contains("planned against `0123456789ab` · [run](https://github.com/o/r/actions/runs/42)"), "{md}");
    assert!(md.contains("**1 recipient would receive a second message**"), "{md}");
    assert!(
        md.contains("<summary><b>resend</b> <code>a</code> — 1 new recipient, 1 second message, 1 removed</summary>"),
        "{md}"
    );
    assert!(md.contains("<summary><b>scheduled</b> <code>b</code> — 1 recipient scheduled</summary>"), "{md}");
    assert!(md.contains("**On merge: 2 recipients** — 1 new · 1 second message · 1 removed · 1 scheduled\n"), "{md}");
    assert!(md.contains("- <code>x@\u{2060}y.com</code> — *second*: changed content"), "{md}");
    assert!(md.contains("- <code>w@\u{2060}y.com</code> — new"), "{md}");
    assert!(!md.contains("(s)"), "plural forms are right: {md}");
}

#[test]
fn state_path_info_and_compact_serve_scripts() {
    let emu = Emulator::start(&[]);
    let cfg = config(&emu.url).replace("state: .kore-notify/state.json", "state: state/notifications.json");
    let t = Test::new()
        .file("kore-notify.yaml", &cfg)
        .manifest("a.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [x@y.com]\n");
    let (o, t) = t.args(["state", "path", "--all"]).status(0).run();
    assert_eq!(
        o.stdout,
        "state/notifications.json\nstate/notifications.json.journal\nstate/notifications.json.backup\nstate/notifications.json.serial\n"
    );
    let (o, t) = t.args(["state", "info"]).status(0).run();
    assert!(o.stdout.contains("exists false\n") && o.stdout.contains("serial 0\n"), "{}", o.stdout);
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let (o, t) = t.args(["state", "info"]).status(0).run();
    assert!(
        o.stdout.contains("exists true\n") && o.stdout.contains("serial 1\n") && o.stdout.contains("unknown 0\n"),
        "{}",
        o.stdout
    );
    // A journal left by a killed run (an intent without its outcome) is absorbed: unknown.
    let journal = t.path().join("state/notifications.json.journal");
    let state: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(t.path().join("state/notifications.json"))
            .expect("state")
            .trim_end()
            .trim_end_matches('}')
            .rsplit_once(",\n\t\"checksum\"")
            .map(|(a, _)| format!("{a}}}"))
            .as_deref()
            .unwrap_or("{}"),
    )
    .unwrap_or_default();
    let lineage = state["lineage"].as_str().unwrap_or_default().to_string();
    std::fs::write(
        &journal,
        format!(
            "{{\"op\":\"begin\",\"lineage\":\"{lineage}\",\"serial\":1,\"at\":\"2026-11-24T09:00:00Z\"}}\n{{\"op\":\"intent\",\"key\":\"a\",\"req\":1,\"batch\":\"b1\",\"channel\":\"slack\",\"api\":\"v1\",\"content\":{{\"type\":\"text\",\"value\":\"hi\"}},\"recipients\":[],\"at\":\"2026-11-24T09:00:00Z\"}}\n"
        ),
    )
    .expect("journal");
    let (_, t) = t.args(["state", "compact"]).status(0).stdout_has("absorbed 2 journal entries into serial 2").run();
    assert!(!journal.exists(), "the journal is absorbed");
    t.args(["state", "info"]).status(0).stdout_has("unknown 1\n").run();
}

#[test]
fn status_as_a_job_summary_names_recipients_and_shows_kores_comments() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url).manifest(
        "a.yaml",
        "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [ok@y.com, fail@y.com]\n",
    );
    let (_, t) = t.args(["apply", "--auto-approve", "--wait", "--timeout", "30s"]).status(3).run();
    let (o, t) = t.args(["status", "--format", "markdown"]).status(3).run();
    assert!(o.stdout.contains("| `a` | slack | 2 | 1 | 1 | 0 | 1 accepted |"), "{}", o.stdout);
    assert!(o.stdout.contains("Identity is not associated with the channel"), "{}", o.stdout);
    assert!(o.stdout.contains("- fail@\u{2060}y\\.com: "), "as written by default: {}", o.stdout);
    let t = t.file("kore-notify.yaml", &format!("{}review: {{mask: true}}\n", config(&emu.url)));
    let (o, _) = t.args(["status", "--format", "markdown"]).status(3).run();
    assert!(!o.stdout.contains("fail@") && o.stdout.contains("f\\*\\*\\*@"), "{}", o.stdout);
}

#[test]
fn annotations_are_relative_to_the_repository_root() {
    let t = Test::new()
        .file("sub/kore-notify.yaml", &config("https://kore.example.com"))
        .file(
            "sub/notifications/n.yaml",
            "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\nfoo: 1\n",
        )
        .cwd("sub");
    let root = t.path().to_str().expect("utf8").to_string();
    t.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", &root)
        .args(["validate"])
        .status(1)
        .stderr_has("::error file=sub/notifications/n.yaml,line=5")
        .run();
}

#[test]
fn second_messages_show_what_changed_against_the_base_version() {
    let emu = Emulator::start(&[]);
    let before = "key: o\nchannel: ivr\ncontent: {type: text, value: 'Order {orderId} for {name}'}\nidentities:\n  - {email: ann@y.com, parameters: {orderId: A-100, name: Ann}}\n  - {email: bob@y.com, parameters: {orderId: B-200, name: Bob}}\n";
    let t = Test::repo(&emu.url).manifest("o.yaml", before);
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    // The base checkout keeps the old manifests; the pull request changes Ann's order id.
    let t = t.file("base/kore-notify.yaml", &config(&emu.url)).file("base/notifications/o.yaml", before);
    let t = t.manifest("o.yaml", &before.replace("A-100", "A-101"));
    let (o, t) = t.args(["plan", "--compare-to", "base", "--format", "markdown"]).status(0).run();
    assert!(
        o.stdout
            .contains("- <code>ann@\u{2060}y.com</code> — *second*: orderId <code>A-100</code> → <code>A-101</code>"),
        "{}",
        o.stdout
    );
    // Masked when the config asks: distinguishable, not readable.
    let masked_cfg = format!("{}review: {{mask: true}}\n", config(&emu.url));
    let t = t.file("kore-notify.yaml", &masked_cfg);
    let (o, t) = t.args(["plan", "--compare-to", "base", "--format", "markdown"]).status(0).run();
    let line = o.stdout.lines().find(|l| l.contains("orderId")).expect("change line");
    assert!(!line.contains("A-10") && !line.contains("ann"), "values and recipients are masked: {line}");
    let t = t.file("kore-notify.yaml", &config(&emu.url));
    // Removed recipients are named from the base version.
    let t = t.manifest(
        "o.yaml",
        &before
            .replace("A-100", "A-101")
            .replace("  - {email: bob@y.com, parameters: {orderId: B-200, name: Bob}}\n", ""),
    );
    let (o, t) = t.args(["plan", "--compare-to", "base", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.contains("**Removed** (nothing is unsent): <code>bob@\u{2060}y.com</code>"), "{}", o.stdout);
    let t = t.manifest("o.yaml", &before.replace("A-100", "A-101"));
    let (o, t) = t.args(["plan", "--compare-to", "base", "--color", "never"]).status(0).run();
    assert!(o.stdout.contains("ann@y.com  [parameters.orderId \"A-100\" → \"A-101\"]"), "{}", o.stdout);
    let (o, _) = t.args(["plan", "--compare-to", "base", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let changes = &v["notifications"][0]["sends"][0]["changes"][0];
    assert_eq!(
        (changes["field"].as_str(), changes["before"].as_str(), changes["after"].as_str()),
        (Some("parameters.orderId"), Some("A-100"), Some("A-101"))
    );
}
