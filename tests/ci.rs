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
        "state/notifications.json\nstate/notifications.json.journal\nstate/notifications.json.backup\nstate/notifications.json.serial\nstate/notifications.test-sends.json\nstate/notifications.test-sends.json.journal\nstate/notifications.test-sends.json.backup\nstate/notifications.test-sends.json.serial\n"
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
    let changes = &v["targets"][0]["notifications"][0]["sends"][0]["changes"][0];
    assert_eq!(
        (changes["field"].as_str(), changes["before"].as_str(), changes["after"].as_str()),
        (Some("parameters.orderId"), Some("A-100"), Some("A-101"))
    );
}

/// The `run:` block of the workflow step named `step` in `workflow`, dedented.
fn step_script(workflow: &str, step: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/{workflow}", env!("CARGO_MANIFEST_DIR"))).expect("workflow");
    let mut lines = text.lines().skip_while(|l| !l.contains(&format!("name: {step}")));
    let run = lines.find(|l| l.trim_start() == "run: |").expect("run block");
    let indent = run.len() - run.trim_start().len() + 2;
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The comment follow-up accepts every valid plan, however large, every time: it once piped
/// `head -c 65536` into `grep -q` under pipefail, and refused a plan over 64 KiB in 2-3% of runs
/// (grep exits at the marker, head dies of SIGPIPE). Run many times with a stub `gh`; an artifact
/// without the marker on its first line is still refused.
#[cfg(target_os = "linux")]
#[test]
fn the_comment_follow_up_never_refuses_a_valid_large_plan() {
    let script = step_script(".github/workflows/kore-notify-comment.yml", "Create or update the sticky comment");
    let t = Test::new()
        .file("step.sh", &script)
        .file(
            "bin/gh",
            "#!/bin/sh\ncase \"$*\" in\n  *pulls/*) echo \"$HEAD_SHA\" ;;\n  *--paginate*) ;;\n  *POST*) echo posted >>\"$RUNNER_TEMP/posted\" ;;\nesac\n",
        )
        .file("tmp/comment/pr-number", "7\n");
    let dir = t.path().to_path_buf();
    std::fs::set_permissions(dir.join("bin/gh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let line = format!("| send | `k` | slack | 1 | {} |\n", "x".repeat(200));
    let plan = format!("<!-- kore-notify-plan -->\n### kore-notify plan\n\n{}", line.repeat(1000));
    assert!(plan.len() > 200 * 1024);
    let run = |body: &str| {
        std::fs::write(dir.join("tmp/comment/plan.md"), body).expect("plan");
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(dir.join("step.sh"))
            .env("PATH", format!("{}:{}", dir.join("bin").display(), std::env::var("PATH").unwrap_or_default()))
            .env("RUNNER_TEMP", dir.join("tmp"))
            .env("REPO", "o/r")
            .env("HEAD_SHA", "0123456789abcdef0123456789abcdef01234567")
            .env("GH_TOKEN", "t")
            .output()
            .expect("run the step")
    };
    for i in 0..150 {
        let out = run(&plan);
        assert!(out.status.success(), "run {i} refused a valid plan: {}", String::from_utf8_lossy(&out.stdout));
    }
    let posted = std::fs::read_to_string(dir.join("tmp/posted")).expect("posted");
    assert_eq!(posted.lines().count(), 150);
    let body = std::fs::read(dir.join("tmp/comment/body.md")).expect("body");
    assert_eq!(body.len(), 65000);
    for bad in ["", "### kore-notify plan\n<!-- kore-notify-plan -->\n", "<!-- kore-notify-plan --> x\n"] {
        let out = run(bad);
        assert!(!out.status.success(), "accepted {bad:?}");
    }
}

/// The class behind that flake, everywhere the project runs shell: under `pipefail`, a pipeline
/// whose last reader stops early (`head`, `grep -q`/`-m`/`-l`) fails when the writer is still
/// writing. Scripts and workflows read files directly, capture first, or end a pipeline with a
/// reader that reads everything (`sed -n 1p`).
#[test]
fn no_pipeline_ends_in_a_reader_that_stops_early() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [".github/workflows", "examples/.github/workflows", "scripts", "bench"] {
        files.extend(
            all_files(&root.join(dir))
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e == "sh" || e == "yml" || e == "yaml")),
        );
    }
    assert!(files.len() >= 8, "{files:?}");
    let early = |seg: &str| {
        let w: Vec<&str> = seg.split_whitespace().collect();
        match w.first() {
            Some(&"head") => true,
            Some(&"grep") => w.iter().skip(1).take_while(|a| a.starts_with('-')).any(|a| {
                !a.starts_with("--") && a.contains(['q', 'm', 'l'])
                    || matches!(*a, "--quiet" | "--silent" | "--max-count" | "--files-with-matches")
            }),
            _ => false,
        }
    };
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for (i, line) in text.lines().enumerate() {
            let code = line.split(" #").next().unwrap_or("");
            if code.trim_start().starts_with('#') || code.trim_end().ends_with("|| true") {
                continue;
            }
            // `a || b` is not a pipe; what follows a single `|` is a pipeline reader.
            let pipes = code.replace("||", "\u{0}");
            if pipes.split('|').skip(1).any(|seg| early(seg.split(['\u{0}', ';', ')']).next().unwrap_or(""))) {
                bad.push(format!("{}:{}: {}", f.strip_prefix(root).unwrap_or(f).display(), i + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "pipelines ending in a reader that stops early:\n{}", bad.join("\n"));
}

/// A repository whose state branch carries the marker of a killed GitHub run (4242) and the state
/// from before it; the run had sent to a third person, and its artifact (`ARTIFACTS/good`) holds
/// that. Also artifacts that are empty, unrelated, or a symbolic link. Returns the repository, the
/// bare origin and the artifacts.
#[cfg(target_os = "linux")]
fn killed_run(emu: &Emulator) -> (Test, tempfile::TempDir, tempfile::TempDir) {
    let two = "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [p1@y.com, p2@y.com]\n";
    let t = Test::repo(&emu.url).manifest("a.yaml", two).file(".gitignore", ".kore-notify/\n");
    let repo = t.path().to_path_buf();
    let origin = git_with_origin(&repo);
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let branch = tempfile::tempdir().expect("branch");
    let b = branch.path();
    git(b, &["init", "--quiet", "-b", "kore-notify-state"]);
    std::fs::create_dir_all(b.join(".kore-notify")).expect("mkdir");
    std::fs::copy(t.state_path(), b.join(".kore-notify/state.json")).expect("copy");
    std::fs::write(b.join("APPLY_IN_PROGRESS"), "https://github.com/o/r/actions/runs/4242\n").expect("marker");
    git(b, &["add", "-A", "-f"]);
    git(b, &["commit", "--quiet", "-m", "apply in progress"]);
    git(b, &["push", "--quiet", origin.path().to_str().expect("utf8"), "HEAD:kore-notify-state"]);
    let (_, t) = t
        .manifest("a.yaml", &two.replace("p2@y.com]", "p2@y.com, p3@y.com]"))
        .args(["apply", "--auto-approve"])
        .status(0)
        .run();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "--quiet", "-m", "third"]);
    git(&repo, &["push", "--quiet", "origin", "HEAD:main"]);
    let art = tempfile::tempdir().expect("artifacts");
    let a = art.path();
    for dir in ["good/.kore-notify", "empty", "unrelated", "link"] {
        std::fs::create_dir_all(a.join(dir)).expect("mkdir");
    }
    std::fs::copy(t.state_path(), a.join("good/.kore-notify/state.json")).expect("copy");
    std::fs::write(a.join("unrelated/notes.txt"), "x").expect("write");
    std::os::unix::fs::symlink(t.state_path(), a.join("link/state.json")).expect("symlink");
    (t, origin, art)
}

/// `recover` restores the killed run's artifact, and refuses anything else with the marker kept:
/// an artifact holding no state (which compared the branch's state with itself, cleared the
/// marker, and let the next apply resend what the killed run had sent), unrelated files, a
/// symbolic link, and a run id that is missing, not digits (`.*` once matched any marker as a
/// regex), another run's, or a prefix or suffix of the marker's.
#[cfg(target_os = "linux")]
#[test]
fn recover_takes_only_the_killed_runs_state_and_run_id() {
    let emu = Emulator::start(&[]);
    let (t, origin, art) = killed_run(&emu);
    assert_eq!(emu.deliveries().len(), 3);
    let (o, a, repo) = (origin.path().to_str().expect("utf8"), art.path(), t.path().to_path_buf());
    let marker_kept = || {
        Command::new("git")
            .args(["--git-dir", o, "cat-file", "-e", "kore-notify-state:APPLY_IN_PROGRESS"])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("git")
            .success()
    };
    let recover = |from: &str, id: Option<&str>| {
        let mut c = Command::new(format!("{}/scripts/ci-apply.sh", env!("CARGO_MANIFEST_DIR")));
        c.current_dir(&repo)
            .env("KN_BIN", BIN)
            .env("KN_ACTION", "recover")
            .env("KN_RECOVER_FROM", a.join(from))
            .env("KORE_CLIENT_ID", CLIENT_ID)
            .env("KORE_CLIENT_SECRET", SECRET)
            .env("KORE_NOTIFY_NOW", NOW)
            .env_remove("KN_RECOVER_RUN_ID")
            .env_remove("GITHUB_STEP_SUMMARY");
        if let Some(id) = id {
            c.env("KN_RECOVER_RUN_ID", id);
        }
        c.output().expect("ci-apply.sh")
    };
    let refused = [
        ("empty", Some("4242"), "holds no state"),
        ("unrelated", Some("4242"), "holds no state"),
        ("link", Some("4242"), "symbolic link"),
        ("good", None, "needs KN_RECOVER_RUN_ID"),
        ("good", Some(".*"), "is not a run id"),
        ("good", Some(""), "needs KN_RECOVER_RUN_ID"),
        ("good", Some("4243"), "not run 4243"),
        ("good", Some("424"), "not run 424"),
        ("good", Some("24242"), "not run 24242"),
        ("good", Some("4242 "), "is not a run id"),
        ("good", Some("4242\n"), "is not a run id"),
    ];
    for (from, id, why) in refused {
        let out = recover(from, id);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(why), "{from} {id:?}: {stderr}");
        assert!(marker_kept(), "{from} {id:?} cleared the marker");
    }
    let out = recover("good", Some("4242"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!marker_kept());
    // The recovered state knows the third person was sent: nobody gets a second message.
    git(&repo, &["fetch", "--quiet", "origin", "kore-notify-state"]);
    let state = git(&repo, &["show", "origin/kore-notify-state:.kore-notify/state.json"]);
    std::fs::write(t.state_path(), state).expect("state");
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 3);
}

/// Manifest links in the comment: whatever the manifest's file name holds (spaces, `#`, `?`,
/// `%`, brackets, Unicode), the link goes to that file's line at the commit, percent-encoded, and
/// its text escaped; a hostile `--repo-url` (a user part that hides the real host, a query, a
/// fragment, Markdown delimiters, invisible characters, not https) is refused before anything else.
#[test]
fn manifest_links_survive_odd_paths_and_hostile_repository_urls() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let names = [
        ("a b.yaml", "a%20b.yaml"),
        ("c#1?x=2.yaml", "c%231%3Fx%3D2.yaml"),
        ("d%41[e](f).yaml", "d%2541%5Be%5D%28f%29.yaml"),
        ("é😀.yaml", "%C3%A9%F0%9F%98%80.yaml"),
    ];
    let mut t = Test::repo("https://kore.example.com");
    for (i, (name, _)) in names.iter().enumerate() {
        let body = format!("key: k{i}\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [x@y.com]\n");
        t = t.manifest(name, &body);
    }
    let (o, t) = t
        .args(["plan", "--format", "markdown", "--commit", sha, "--repo-url", "https://github.com/o/r/"])
        .status(0)
        .run();
    for (name, encoded) in names {
        let target = format!("(https://github.com/o/r/blob/{sha}/notifications/{encoded}#L1)");
        assert!(o.stdout.contains(&target), "{name}: no {target} in\n{}", o.stdout);
    }
    assert!(!o.stdout.contains("notifications/a b.yaml#"), "{}", o.stdout);
    let mut t = t;
    for bad in [
        "https://github.com@evil.example/o/r",
        "https://github.com/o/r?ref=x",
        "https://github.com/o/r#frag",
        "https://github.com/o/r)[x](https://evil.example",
        "https://github.com/o/`r`",
        "https://github.com/o/r\u{202e}",
        "https://github.com/o/r\u{1b}]8;;x",
        "http://github.com/o/r",
        "javascript:alert(1)",
    ] {
        let (o, t2) = t.args(["plan", "--format", "markdown", "--commit", sha, "--repo-url", bad]).status(1).run();
        t = t2;
        assert!(o.stderr.contains("--repo-url") && o.stdout.is_empty(), "{bad:?}: {}", o.stderr);
        assert!(!o.stderr.chars().any(|c| c.is_control() && c != '\n'), "{bad:?}: {:?}", o.stderr);
    }
}

/// The reusable workflow, parsed.
fn workflow() -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{}/.github/workflows/kore-notify.yml", env!("CARGO_MANIFEST_DIR")))
        .expect("workflow");
    serde_saphyr::from_str(&text).expect("the workflow is YAML")
}

/// Targets in CI: the `targets` input lists them in order (empty: the config's only target, in
/// the `environment` input's environment, as before); the apply job is a matrix over them that
/// runs one at a time in that order, each in `kore-notify-<target>`, stops at the first failure,
/// and shares one concurrency group (the states share the state branch); each job hands its target
/// to the script and keeps its own state artifact, which `recover` downloads by target.
#[test]
fn the_workflow_applies_the_listed_targets_one_at_a_time_each_in_its_environment() {
    let w = workflow();
    let inputs = &w["on"]["workflow_call"]["inputs"];
    for (input, default) in [("targets", ""), ("target", ""), ("environment", "kore-notify")] {
        assert_eq!(inputs[input]["type"], "string", "{input}");
        assert_eq!(inputs[input]["default"], default, "{input}");
    }
    let targets = &w["jobs"]["targets"];
    assert_eq!(targets["outputs"]["list"], "${{ steps.list.outputs.list }}");
    let apply = &w["jobs"]["apply"];
    assert_eq!(apply["needs"], "targets");
    assert_eq!(apply["if"], targets["if"], "the targets job runs exactly when apply does");
    let strategy = &apply["strategy"];
    assert_eq!(strategy["max-parallel"], 1, "targets one at a time");
    assert_eq!(strategy["fail-fast"], true, "a failed target stops the ones after it");
    assert_eq!(strategy["matrix"]["target"], "${{ fromJSON(needs.targets.outputs.list) }}");
    assert_eq!(
        apply["environment"],
        "${{ matrix.target && format('kore-notify-{0}', matrix.target) || inputs.environment }}"
    );
    assert_eq!(
        apply["concurrency"]["group"], "kore-notify-apply-${{ github.repository }}",
        "one group for all targets"
    );
    assert_eq!(apply["concurrency"]["cancel-in-progress"], false);
    let steps = apply["steps"].as_array().expect("steps");
    let step = |name: &str| steps.iter().find(|s| s["name"].as_str().is_some_and(|n| n.starts_with(name))).expect(name);
    assert_eq!(step("Apply")["env"]["KN_TARGET"], "${{ matrix.target }}");
    assert_eq!(step("State files")["env"]["KN_TARGET"], "${{ matrix.target }}");
    let suffix = "${{ matrix.target && format('-{0}', matrix.target) || '' }}";
    assert_eq!(step("Keep the state")["with"]["name"], format!("kore-notify-state-${{{{ github.run_id }}}}{suffix}"));
    assert_eq!(
        step("The interrupted run's state artifact")["with"]["name"],
        format!("kore-notify-state-${{{{ inputs.recover-run-id }}}}{suffix}")
    );
    // The variables input cannot pick a target behind the plan's back.
    assert!(step("Environment for kore-notify")["run"].as_str().expect("run").contains("KORE_NOTIFY_TARGET"));
}

/// The targets job turns the `targets` and `target` inputs into the matrix, in order, and refuses
/// what is not a list of target names, a duplicate, a `target` that is not listed, and a recovery
/// action on several targets at once. Run as the workflow runs it (bash, jq).
#[cfg(target_os = "linux")]
#[test]
fn the_targets_input_becomes_the_ordered_matrix_or_a_clear_error() {
    let script = step_script(".github/workflows/kore-notify.yml", "The targets to apply, in order");
    let t = Test::new().file("step.sh", &script).file("out", "");
    let dir = t.path().to_path_buf();
    let run = |targets: &str, target: &str, action: &str| {
        std::fs::write(dir.join("out"), "").expect("out");
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(dir.join("step.sh"))
            .env("TARGETS", targets)
            .env("TARGET", target)
            .env("ACTION", action)
            .env("GITHUB_OUTPUT", dir.join("out"))
            .output()
            .expect("run the step");
        let list = std::fs::read_to_string(dir.join("out")).expect("out");
        (
            out.status.success(),
            list.trim().strip_prefix("list=").unwrap_or("").to_string(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let ok = [
        ("", "", "apply", r#"[""]"#),
        ("", "", "recover", r#"[""]"#),
        ("staging production", "", "apply", r#"["staging","production"]"#),
        ("  production   staging ", "", "apply", r#"["production","staging"]"#),
        ("dev staging production", "staging", "apply", r#"["staging"]"#),
        ("staging production", "production", "recover", r#"["production"]"#),
        ("production", "", "resolve", r#"["production"]"#),
    ];
    for (targets, target, action, want) in ok {
        let (success, list, stdout) = run(targets, target, action);
        assert!(success, "{targets:?} {target:?} {action}: {stdout}");
        assert_eq!(list, want, "{targets:?} {target:?} {action}");
    }
    let refused = [
        ("staging production", "", "resolve", "works on one target"),
        ("staging production", "", "retry-unknown", "works on one target"),
        ("staging staging", "", "apply", "listed twice"),
        ("Staging", "", "apply", "not a target name"),
        ("staging,production", "", "apply", "not a target name"),
        ("staging $(id)", "", "apply", "not a target name"),
        ("staging production", "prod", "apply", "not one of the targets"),
        ("staging production", "stag", "apply", "not one of the targets"),
        ("", "staging", "apply", "not one of the targets"),
    ];
    for (targets, target, action, why) in refused {
        let (success, list, stdout) = run(targets, target, action);
        assert!(!success && stdout.contains(why) && list.is_empty(), "{targets:?} {target:?} {action}: {stdout}");
    }
}

/// The pull-request plan covers every target, so its job restores every target's state from the
/// state branch (each under its own path) before planning: production's promotion gate then sees
/// staging's evidence. Run as the workflow runs it, with the real binary.
#[cfg(target_os = "linux")]
#[test]
fn the_plan_job_restores_every_targets_state() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let target = |name: &str, url: &str, extra: &str| {
        format!(
            "  {name}:\n    host: {url}\n    botId: st-{name}\n    clientId: ${{KORE_CLIENT_ID}}\n    clientSecret: ${{KORE_CLIENT_SECRET}}\n    state: state/{name}.json\n{extra}"
        )
    };
    let cfg = format!(
        "targets:\n{}{}",
        target("staging", &st.url, ""),
        target("production", &pr.url, "    promoteFrom: staging\n")
    );
    let welcome = "key: welcome\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a@y.com, b@y.com]\n";
    let t = Test::new().file("sub/kore-notify.yaml", &cfg).file("sub/notifications/w.yaml", welcome).cwd("sub");
    let (_, t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    let (_, t) = t.args(["apply", "--target", "production", "--auto-approve"]).status(0).run();
    assert_eq!((st.deliveries().len(), pr.deliveries().len()), (2, 2));
    // The state branch holds both states; the checkout holds neither.
    let repo = t.path().to_path_buf();
    git(&repo, &["init", "--quiet", "-b", "main"]);
    git(&repo, &["add", "-f", "sub/state/staging.json", "sub/state/production.json"]);
    git(&repo, &["commit", "--quiet", "-m", "states"]);
    git(&repo, &["update-ref", "refs/remotes/origin/kore-notify-state", "HEAD"]);
    git(&repo, &["rm", "--quiet", "-r", "--cached", "sub/state"]);
    std::fs::remove_dir_all(repo.join("sub/state")).expect("rm");
    std::fs::write(repo.join(".gitignore"), "sub/state/\nstep.sh\n").expect("gitignore");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "--quiet", "-m", "manifests"]);
    let script = step_script(".github/workflows/kore-notify.yml", "Restore the state (read-only)");
    std::fs::write(repo.join("step.sh"), script).expect("step");
    let bin_dir = std::path::Path::new(BIN).parent().expect("bin dir");
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(repo.join("step.sh"))
        .current_dir(&repo)
        .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()))
        .env("STATE_BRANCH", "kore-notify-state")
        .env("WORKDIR", "sub")
        .env_remove("KORE_NOTIFY_TARGET")
        .output()
        .expect("run the step");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["staging", "production"] {
        assert!(repo.join(format!("sub/state/{name}.json")).is_file(), "{name}'s state was not restored");
    }
    // With both states, the plan for every target has nothing left to send, and no gate waits.
    let t = t.file("sub/notifications/w.yaml", welcome);
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
}

/// scripts/approvals.sh against fixture API answers: the merged pull request of the commit, its
/// reviews and a team's members become an approvals file that apply accepts and counts; a commit
/// without a pull request, and a team the token may not read, are said plainly.
#[test]
fn the_approvals_script_builds_the_file_apply_counts() {
    let emu = Emulator::start(&[]);
    let (head, merge) = ("a".repeat(40), "b".repeat(40));
    let policy = "policy:\n  - name: big\n    when: {channel: slack}\n    require: {approvals: 2, from: [octo-org/comms, octo-org/legal]}\n";
    let t = Test::repo(&emu.url)
        .file("kore-notify.yaml", &format!("{}{policy}", config(&emu.url)))
        .manifest("a.yaml", "key: k\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n")
        .env("GITHUB_SHA", &merge);
    let fx = tempfile::tempdir().expect("fixtures");
    let write =
        |name: &str, v: serde_json::Value| std::fs::write(fx.path().join(name), v.to_string()).expect("fixture");
    let pr = serde_json::json!({"number": 7, "merged_at": "2026-11-24T08:00:00Z", "merge_commit_sha": merge,
        "user": {"login": "alice"}, "head": {"sha": head}});
    write(&format!("repos_octo-org_notifications_commits_{merge}_pulls.json"), serde_json::json!([pr]));
    let review = |login: &str, kind: &str| serde_json::json!({"user": {"login": login, "type": kind}, "state": "APPROVED", "commit_id": head, "submitted_at": "2026-11-24T07:00:00Z"});
    write(
        "repos_octo-org_notifications_pulls_7_reviews_per_page_100.json",
        serde_json::json!([review("bob", "User"), review("carol", "User"), review("helper", "Bot")]),
    );
    let bare = "c".repeat(40);
    write(&format!("repos_octo-org_notifications_commits_{bare}_pulls.json"), serde_json::json!([]));
    write(
        "orgs_octo-org_teams_comms_members_per_page_100.json",
        serde_json::json!([{"login": "bob"}, {"login": "carol"}]),
    );
    let dir = t.path().to_path_buf();
    let script = |commit: &str| {
        let out = Command::new(format!("{}/scripts/approvals.sh", env!("CARGO_MANIFEST_DIR")))
            .arg(commit)
            .current_dir(&dir)
            .env("GITHUB_REPOSITORY", "octo-org/notifications")
            .env("KN_API_FIXTURES", fx.path())
            .env_remove("KN_TEAMS")
            .output()
            .expect("approvals.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (file, said) = script(&merge);
    assert!(said.contains("cannot read the members of octo-org/legal"), "said plainly: {said}");
    let v: serde_json::Value = serde_json::from_str(&file).expect("json");
    assert_eq!(v["pullRequest"]["author"], "alice");
    assert_eq!(v["teams"]["octo-org/comms"], serde_json::json!(["bob", "carol"]));
    let (_, _t) = t
        .file("approvals.json", &file)
        .args(["apply", "--auto-approve", "--approvals", "approvals.json"])
        .status(0)
        .stderr_has("approved by bob, carol")
        .stderr_has("approvals: cannot read the members of octo-org/legal")
        .run();
    assert_eq!(emu.deliveries().get("slack:a"), Some(&1));
    // A commit pushed without a pull request: no approvals, said so; apply holds the notification.
    let (file, said) = script(&bare);
    assert!(said.contains("without a merged pull request"), "{said}");
    let v: serde_json::Value = serde_json::from_str(&file).expect("json");
    assert!(v["pullRequest"].is_null());
}
