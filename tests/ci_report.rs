//! The delivery report in CI: `scripts/ci-report.sh` (run by the reusable workflow after every
//! apply and scheduled refresh) with a stub `gh`, and the workflow steps that run it and keep what
//! it writes.

use std::process::Command;

use crate::harness::*;

/// A `gh` that answers pull request 7 for every commit and keeps one comment (id 123, and whether
/// its body is final); it logs the calls and the last body written into `$STUB`.
const GH_STUB: &str = "#!/bin/sh\ncase \"$*\" in\n  *commits/*/pulls*) echo \"$*\" >>\"$STUB/pulls\"; echo 7; exit 0 ;;\n  *--paginate*) cat \"$STUB/comment\" 2>/dev/null; exit 0 ;;\nesac\nmethod=''; body=''\nfor a in \"$@\"; do\n  case \"$a\" in POST|PATCH) method=$a ;; body=@*) body=${a#body=@} ;; esac\ndone\necho \"$method $*\" >>\"$STUB/calls\"\ncp \"$body\" \"$STUB/body\"\nif grep -q 'kore-notify-report: final' \"$STUB/body\"; then f=true; else f=false; fi\necho \"123 $f\" >\"$STUB/comment\"\n";

/// The delivery report in CI (`scripts/ci-report.sh`, run by the workflow after every apply and
/// scheduled refresh), with a stub `gh` that keeps one comment: HTML and CSV artifacts masked, the
/// markdown in the job summary, and one comment on the pull request that merged the manifest,
/// posted, updated while statuses are pending, updated once more when they are final, then left
/// alone.
#[cfg(target_os = "linux")]
#[test]
fn the_delivery_report_comment_is_updated_until_every_status_is_final() {
    let emu = Emulator::start(&["--job-ms", "1500"]);
    let t = Test::repo(&emu.url)
        .manifest(
            "a.yaml",
            "key: greet\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [ok1@x.com, fail1@x.com]\n",
        )
        .file("stub/gh", GH_STUB);
    let dir = t.path().to_path_buf();
    std::fs::set_permissions(dir.join("stub/gh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "kore-notify.yaml", "notifications"]);
    git(&dir, &["commit", "-qm", "a notification"]);
    let commit = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let run = || {
        let out = ci_report(&dir)
            .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
            .env_remove("GITHUB_ACTIONS")
            .output()
            .expect("run ci-report.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(dir.join("calls")).unwrap_or_default()
    };
    let calls = run();
    assert!(calls.starts_with("POST api -X POST repos/o/r/issues/7/comments "), "{calls}");
    let body = std::fs::read_to_string(dir.join("body")).expect("comment");
    assert!(body.starts_with("<!-- kore-notify-report -->\n### kore-notify delivery report"), "{body}");
    assert!(!body.contains("fail1@") && !body.contains("ok1@"), "masked: {body}");
    let pulls = std::fs::read_to_string(dir.join("pulls")).expect("pull-request lookup");
    assert!(pulls.contains(&format!("repos/o/r/commits/{commit}/pulls")), "{pulls}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary");
    assert!(summary.contains("### kore-notify delivery report"), "{summary}");
    let csv = std::fs::read_to_string(dir.join("out/report.csv")).expect("csv artifact");
    let html = std::fs::read_to_string(dir.join("out/report.html")).expect("html artifact");
    for clear in ["ok1@x.com", "fail1@x.com"] {
        assert!(!csv.contains(clear) && !html.contains(clear), "artifacts are masked: {csv}");
    }
    // Still pending: updated, not posted again.
    let calls = run();
    assert_eq!(calls.lines().map(|l| l.split(' ').next().unwrap_or("")).collect::<Vec<_>>(), ["POST", "PATCH"]);
    assert!(calls.lines().nth(1).is_some_and(|l| l.contains("repos/o/r/issues/comments/123 ")), "{calls}");
    std::thread::sleep(std::time::Duration::from_millis(1700));
    let (_, _t) = t.args(["status", "--refresh"]).status(3).run();
    // Final: updated once more with the final marker, then left alone.
    assert_eq!(run().lines().count(), 3);
    let body = std::fs::read_to_string(dir.join("body")).expect("comment");
    assert!(
        body.contains("<!-- kore-notify-report: final -->") && body.contains("| 2 | 2 | 2 | 1 | 1 | 0 | 0 | 0 |"),
        "{body}"
    );
    assert_eq!(run().lines().count(), 3, "a final comment is not touched again");
}

/// The apply job runs the report script after the apply, whatever happened, and uploads what it
/// wrote; with targets, per target.
#[test]
fn the_apply_job_reports_after_every_run() {
    let root = env!("CARGO_MANIFEST_DIR");
    let workflow = std::fs::read_to_string(format!("{root}/.github/workflows/kore-notify.yml")).expect("workflow");
    let apply = workflow.split("\n  apply:\n").nth(1).expect("apply job");
    let at = |s: &str| apply.find(s).unwrap_or_else(|| panic!("`{s}` not in the apply job"));
    let (apply_step, report_step) = (at("\"$KN_SCRIPTS/ci-apply.sh\""), at("\"$KN_SCRIPTS/ci-report.sh\""));
    assert!(apply_step < report_step && report_step < at("name: kore-notify-report-"), "{apply}");
    let report = &apply[apply[..report_step].rfind("- name:").expect("step")..report_step];
    assert!(report.contains("if: always()"), "{report}");
    // Each target's job reports its own target, and keeps its report under its own name (the
    // matrix's jobs share the run: one artifact name each).
    assert!(report.contains("KN_TARGET: ${{ matrix.target }}"), "{report}");
    assert!(
        apply.contains(
            "name: kore-notify-report-${{ github.run_id }}${{ matrix.target && format('-{0}', matrix.target) || '' }}"
        ),
        "{apply}"
    );
    assert!(apply.contains("pull-requests: write"));
    let release = std::fs::read_to_string(format!("{root}/.github/workflows/release.yml")).expect("release");
    assert!(release.contains("scripts/ci-report.sh"), "the released archive carries the script");
}

/// With targets, `scripts/ci-report.sh` reports the target it is given (KN_TARGET, else
/// KORE_NOTIFY_TARGET) and its comment carries that target's own marker; without one, a config
/// with two targets gets no report (said on stderr) and the job still passes.
#[cfg(target_os = "linux")]
#[test]
fn the_ci_report_passes_the_target_through() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let target = |name: &str, emu: &Emulator| {
        format!(
            "  {name}:\n    host: {}\n    botId: st-{name}\n    clientId: ${{KORE_CLIENT_ID}}\n    clientSecret: ${{KORE_CLIENT_SECRET}}\n",
            emu.url
        )
    };
    let config =
        format!("targets:\n{}{}manifests: [notifications]\n", target("staging", &st), target("production", &pr));
    let t = Test::new()
        .file("kore-notify.yaml", &config)
        .manifest("a.yaml", "key: greet\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [ok1@x.com]\n")
        .file("stub/gh", GH_STUB);
    let dir = t.path().to_path_buf();
    std::fs::set_permissions(dir.join("stub/gh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "kore-notify.yaml", "notifications"]);
    git(&dir, &["commit", "-qm", "a notification"]);
    let (_, _t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    let run = |var: Option<(&str, &str)>| {
        let _ = std::fs::remove_dir_all(dir.join("out"));
        let mut c = ci_report(&dir);
        c.env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("KN_TARGET")
            .env_remove("KORE_NOTIFY_TARGET");
        if let Some((k, v)) = var {
            c.env(k, v);
        }
        let out = c.output().expect("run ci-report.sh");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = run(None);
    assert!(ok, "{err}");
    assert!(err.contains("no HTML report") && err.contains("choose one with --target"), "{err}");
    assert!(!dir.join("calls").exists(), "no comment without a target");
    for var in ["KN_TARGET", "KORE_NOTIFY_TARGET"] {
        let (ok, err) = run(Some((var, "staging")));
        assert!(ok, "{var}: {err}");
        let html = std::fs::read_to_string(dir.join("out/report.html")).expect("html artifact");
        assert!(html.contains("Target <code>staging</code>") && html.contains("st-staging"), "{var}");
        let body = std::fs::read_to_string(dir.join("body")).expect("comment");
        assert!(body.starts_with("<!-- kore-notify-report target=staging -->\n"), "{var}: {body}");
    }
    let (ok, err) = run(Some(("KN_TARGET", "Staging; rm -rf /")));
    assert!(!ok && err.contains("is not a target name"), "{err}");
}

/// `scripts/ci-report.sh` run in `dir` against the stub `gh` there, as the workflow's report step
/// runs it.
fn ci_report(dir: &std::path::Path) -> Command {
    let mut c = Command::new("bash");
    c.arg(format!("{}/scripts/ci-report.sh", env!("CARGO_MANIFEST_DIR")))
        .current_dir(dir)
        .env("PATH", format!("{}:{}", dir.join("stub").display(), std::env::var("PATH").unwrap_or_default()))
        .env("STUB", dir)
        .env("KN_BIN", BIN)
        .env("KN_DIR", dir)
        .env("KN_REPORT_DIR", dir.join("out"))
        .env("REPO", "o/r")
        .env("GH_TOKEN", "t");
    c
}
