//! The workflow's `test-send` dispatch action: its inputs as the reusable workflow passes them
//! (and the example caller offers them), and `scripts/ci-apply.sh` with `KN_ACTION=test-send`
//! run against the emulator and a local origin holding a pull request's head at
//! `refs/pull/N/head`: the pull request's manifests are sent with the default branch's config
//! (host, bot, reviewers), only to the reviewer; files the pull request puts where the states are
//! kept are never used; the test ledger is pushed to the state branch, and the evidence it holds
//! is of the pull request's content.

use std::process::Command;

use crate::harness::*;

const HELLO: &str =
    "key: hello\nchannel: msteams\ncontent: {type: text, value: Hello team}\nidentities: [a@x.com, b@x.com]\n";
const EXTRA: &str =
    "key: extra\nchannel: msteams\ncontent: {type: text, value: Only in the PR}\nidentities: [c@x.com]\n";
const IVR: &str = "key: call\nchannel: ivr\ncontent: {type: text, value: A call}\nidentities: [d@x.com]\n";

fn main_config(host: &str) -> String {
    format!("{}reviewers:\n  octocat: {{msteams: rev@x.com}}\n", config(host))
}

/// A repository whose origin's `main` has one notification and the config (reviewer octocat at
/// rev@x.com), and whose pull request 7 (`refs/pull/7/head`) changes that notification's text,
/// adds a Teams and an IVR one, points the config at another host with the reviewer at
/// attacker@x.com, and commits forged files where the state and the test ledger are kept.
#[cfg(target_os = "linux")]
fn with_pull_request(emu: &Emulator, evil: &Emulator) -> (Test, tempfile::TempDir) {
    let t = Test::new()
        .file("kore-notify.yaml", &main_config(&emu.url))
        .manifest("hello.yaml", HELLO)
        .file(".gitignore", ".kore-notify/\n");
    let repo = t.path().to_path_buf();
    let origin = git_with_origin(&repo);
    git(&repo, &["checkout", "--quiet", "-b", "pr"]);
    let evil_config = main_config(&evil.url).replace("rev@x.com", "attacker@x.com");
    let t = t
        .file("kore-notify.yaml", &evil_config)
        .manifest("hello.yaml", &HELLO.replace("Hello team", "Hello from the PR"))
        .manifest("extra.yaml", EXTRA)
        .manifest("call.yaml", IVR)
        .file(".kore-notify/state.json", "forged\n")
        .file(".kore-notify/state.test-sends.json", "forged\n");
    git(&repo, &["add", "-A", "-f"]);
    git(&repo, &["commit", "--quiet", "-m", "a pull request"]);
    git(&repo, &["push", "--quiet", "origin", "HEAD:refs/pull/7/head"]);
    git(&repo, &["checkout", "--quiet", "main"]);
    (t, origin)
}

/// Runs `scripts/ci-apply.sh` in `repo` as the workflow's apply step does for a dispatch
/// `test-send` with `pull-request: pr` and `login: login`.
#[cfg(target_os = "linux")]
fn ci_test_send(repo: &std::path::Path, pr: &str, login: &str) -> (bool, String) {
    ci(repo, "test-send", pr, login)
}

#[cfg(target_os = "linux")]
fn ci(repo: &std::path::Path, action: &str, pr: &str, login: &str) -> (bool, String) {
    let out = Command::new(format!("{}/scripts/ci-apply.sh", env!("CARGO_MANIFEST_DIR")))
        .current_dir(repo)
        .env("KN_BIN", BIN)
        .env("KN_ACTION", action)
        .env("KN_STATUS", "0")
        .env("KN_PR", pr)
        .env("KN_LOGIN", login)
        // As the workflow sets it: the approvals are not read for a test send.
        .env("KN_APPROVALS", "1")
        .env("KN_API_FIXTURES", repo.join("no-such-fixtures"))
        .env("KORE_CLIENT_ID", CLIENT_ID)
        .env("KORE_CLIENT_SECRET", SECRET)
        .env("KORE_NOTIFY_NOW", NOW)
        .env_remove("KN_TARGET")
        .env_remove("KORE_NOTIFY_TARGET")
        .env_remove("KORE_NOTIFY_CONFIG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ci-apply.sh");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The files on the origin's state branch (none when it does not exist).
#[cfg(target_os = "linux")]
fn state_branch(origin: &std::path::Path) -> Vec<String> {
    let out = Command::new("git")
        .args(["--git-dir", origin.to_str().expect("utf8"), "ls-tree", "-r", "--name-only", "kore-notify-state"])
        .stderr(std::process::Stdio::null())
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

/// The plan's notification `key` (target 0) as JSON.
fn planned(stdout: &str, key: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(stdout).expect("plan json");
    let list = v["targets"][0]["notifications"].as_array().cloned().unwrap_or_default();
    list.into_iter().find(|n| n["key"] == key).unwrap_or_default()
}

#[cfg(target_os = "linux")]
#[test]
fn the_dispatch_sends_the_pull_requests_manifests_with_the_default_branchs_config_to_the_reviewer_only() {
    let emu = Emulator::start(&[]);
    let evil = Emulator::start(&[]);
    let (t, origin) = with_pull_request(&emu, &evil);
    let repo = t.path().to_path_buf();
    // Inputs are checked before anything is fetched or sent.
    for (pr, login, says) in [
        ("", "octocat", "test-send needs KN_PR"),
        ("7 --upload-pack=x", "octocat", "test-send needs KN_PR"),
        ("refs/heads/main", "octocat", "test-send needs KN_PR"),
        ("7", "", "test-send needs KN_LOGIN"),
        ("7", "-rf", "test-send needs KN_LOGIN"),
        ("7", "a_b", "test-send needs KN_LOGIN"),
        ("7", "octocat; id", "test-send needs KN_LOGIN"),
        ("99", "octocat", "cannot fetch pull request 99"),
    ] {
        let (ok, stderr) = ci_test_send(&repo, pr, login);
        assert!(!ok && stderr.contains(says), "{pr:?} {login:?}: {stderr}");
    }
    // A login not under the default branch's `reviewers:` (the pull request's config does not count).
    let (ok, stderr) = ci_test_send(&repo, "7", "hubot");
    assert!(!ok && stderr.contains("no such login"), "{stderr}");
    assert!(emu.deliveries().is_empty() && evil.deliveries().is_empty());
    assert!(!state_branch(origin.path()).iter().any(|f| f == "APPLY_IN_PROGRESS"), "the marker is cleared");

    let (ok, stderr) = ci_test_send(&repo, "7", "octocat");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("manifests of pull request 7 at") && stderr.contains("config of main"), "{stderr}");
    assert!(!stderr.contains("approvals"), "a test send reads no approvals: {stderr}");
    // The pull request's two Teams notifications, to the default branch's reviewer identity on
    // the default branch's host; nobody on IVR (the reviewer has no IVR identity); nothing to the
    // pull request's host or reviewer.
    assert_eq!(emu.deliveries(), [("msteams:rev@x.com".to_string(), 2)].into_iter().collect());
    assert!(evil.deliveries().is_empty(), "{:?}", evil.deliveries());
    // The test ledger is on the state branch (never the recipients' state, nor the pull
    // request's forged files), without the marker.
    let files = state_branch(origin.path());
    assert!(files.contains(&".kore-notify/state.test-sends.json".to_string()), "{files:?}");
    assert!(files.iter().all(|f| f.starts_with(".kore-notify/state.test-sends.json")), "{files:?}");
    let o = origin.path().to_str().expect("utf8");
    let ledger = git(&repo, &["--git-dir", o, "show", "kore-notify-state:.kore-notify/state.test-sends.json"]);
    assert!(!ledger.contains("forged"), "{ledger}");
    // Its evidence is of the pull request's content: fresh with its manifests, stale with main's.
    let plan = |t: Test| {
        let t = t.file(".kore-notify/state.test-sends.json", &ledger).env("KORE_NOTIFY_NOW", "2026-11-24T09:01:00Z");
        t.args(["plan", "--format", "json"]).status(0).run().0.stdout
    };
    let pr = plan(
        Test::new()
            .file("kore-notify.yaml", &main_config(&emu.url))
            .manifest("hello.yaml", &HELLO.replace("Hello team", "Hello from the PR"))
            .manifest("extra.yaml", EXTRA),
    );
    for key in ["hello", "extra"] {
        assert_eq!(planned(&pr, key)["testSend"]["fresh"], true, "{key}: {pr}");
    }
    let main = plan(Test::new().file("kore-notify.yaml", &main_config(&emu.url)).manifest("hello.yaml", HELLO));
    let text = planned(&main, "hello")["testSend"]["text"].as_str().unwrap_or_default().to_string();
    assert!(text.starts_with("stale: content changed since"), "{main}");

    // Dispatched again: the ledger comes back from the state branch, so nothing is sent twice.
    let (ok, stderr) = ci_test_send(&repo, "7", "octocat");
    assert!(ok && stderr.contains("test-sent already"), "{stderr}");
    assert_eq!(emu.deliveries()["msteams:rev@x.com"], 2);
    // The first apply after it (a state branch holding only the ledger) sends main's manifests
    // to their recipients, and keeps the ledger beside the new state.
    let (ok, stderr) = ci(&repo, "apply", "", "");
    assert!(ok, "{stderr}");
    let d = emu.deliveries();
    assert_eq!((d["msteams:a@x.com"], d["msteams:b@x.com"], d["msteams:rev@x.com"], d.len()), (1, 1, 2, 3), "{d:?}");
    let files = state_branch(origin.path());
    for f in [".kore-notify/state.json", ".kore-notify/state.test-sends.json"] {
        assert!(files.iter().any(|x| x == f), "{f}: {files:?}");
    }
}

/// The reusable workflow takes the pull request and the login as inputs and hands them to the
/// script (never to a checkout: the job's code and config are the default branch's), and the
/// example caller offers the action with both inputs.
#[test]
fn the_workflow_passes_the_pull_request_and_login_to_the_script_only() {
    let root = env!("CARGO_MANIFEST_DIR");
    let parse = |p: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(format!("{root}/{p}")).expect(p);
        serde_saphyr::from_str(&text).expect("YAML")
    };
    let w = parse(".github/workflows/kore-notify.yml");
    let inputs = &w["on"]["workflow_call"]["inputs"];
    for input in ["pull-request", "login"] {
        assert_eq!((&inputs[input]["type"], &inputs[input]["default"]), (&"string".into(), &"".into()), "{input}");
        assert!(inputs[input]["description"].as_str().is_some_and(|d| d.starts_with("test-send:")), "{input}");
    }
    assert!(inputs["action"]["description"].as_str().is_some_and(|d| d.contains("test-send")));
    let steps = w["jobs"]["apply"]["steps"].as_array().expect("steps");
    let apply = steps.iter().find(|s| s["name"].as_str().is_some_and(|n| n.starts_with("Apply"))).expect("Apply");
    assert_eq!(apply["env"]["KN_PR"], "${{ inputs.pull-request }}");
    assert_eq!(apply["env"]["KN_LOGIN"], "${{ inputs.login }}");
    assert_eq!(
        apply["env"]["KN_ACTION"],
        "${{ github.event_name == 'workflow_dispatch' && inputs.action || 'apply' }}"
    );
    assert_eq!(apply["run"], "exec \"$KN_SCRIPTS/ci-apply.sh\"", "the installed tool's script, not the repository's");
    // No step of any job checks out or runs what the inputs name.
    for (name, job) in w["jobs"].as_object().expect("jobs") {
        for s in job["steps"].as_array().into_iter().flatten() {
            let with = serde_json::to_string(&s["with"]).unwrap_or_default();
            let run = s["run"].as_str().unwrap_or_default();
            assert!(!with.contains("inputs.pull-request") && !with.contains("inputs.login"), "{name}: {s}");
            assert!(!run.contains("inputs.pull-request") && !run.contains("inputs.login"), "{name}: {s}");
        }
    }
    let caller = parse("examples/.github/workflows/notifications.yml");
    let dispatch = &caller["on"]["workflow_dispatch"]["inputs"];
    assert!(dispatch["action"]["options"].as_array().is_some_and(|o| o.contains(&"test-send".into())));
    let with = &caller["jobs"]["kore-notify"]["with"];
    for input in ["pull-request", "login"] {
        assert_eq!(dispatch[input]["type"], "string", "{input}");
        assert_eq!(with[input], format!("${{{{ inputs.{input} || '' }}}}"), "{input}");
    }
}
