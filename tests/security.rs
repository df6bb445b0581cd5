//! The security model, tried through the binary as a hostile contributor and a hostile server
//! would: manifests expand only declared variables, every path stays in the repository, the server
//! cannot redirect us, flood us or inject paths, and nothing unsafe reaches a terminal or a
//! comment. SECURITY.md states what each of these guarantees.

use std::time::{Duration, Instant};

use crate::harness::*;

const HOST: &str = "https://kore.example.com";
const JOB: &str = r#"{"_id":"ds-1234","status":"IN_PROGRESS"}"#;

fn slack(value: &str) -> String {
    format!("key: k\nchannel: slack\ncontent: {{type: text, value: '{value}'}}\nidentities: [a@x.com]\n")
}

/// Exit 1 quickly, naming `needle`, with nothing from `never` anywhere in the output.
#[track_caller]
fn refused(t: Test, args: &[&str], needle: &str, never: &[&str]) -> Test {
    let start = Instant::now();
    let (o, t) = t.args(args.to_vec()).status(1).stderr_has(needle).run();
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    for n in never {
        assert!(!o.stdout.contains(n) && !o.stderr.contains(n), "`{n}` leaked:\n{}\n{}", o.stdout, o.stderr);
    }
    t
}

// ----- interpolation is declared, never ambient -----

#[test]
fn manifests_cannot_expand_credentials_or_the_ambient_environment() {
    let t = Test::repo(HOST).manifest("n.yaml", &slack("Build ${KORE_CLIENT_SECRET:-hello}"));
    let t = refused(t, &["plan"], "variable KORE_CLIENT_SECRET is not declared", &[SECRET, "Build hello"]);
    let t = refused(t, &["validate"], "never expand credentials", &[SECRET]);
    let emu = Emulator::start(&[]);
    let t = t.file("kore-notify.yaml", &config(&emu.url));
    refused(t, &["apply", "--auto-approve"], "KORE_CLIENT_SECRET", &[SECRET]);
    assert!(emu.deliveries().is_empty(), "nothing may be sent");
    let t = Test::repo(HOST).env("HOME_TOWN", "Pune").manifest("n.yaml", &slack("Hi from ${HOME_TOWN}"));
    refused(t, &["validate"], "add `HOME_TOWN` to `variables:` in kore-notify.yaml", &["Pune"]);
}

#[test]
fn declared_variables_expand_and_the_plan_shows_them() {
    let cfg = format!("{}variables: [RELEASE]\n", config(HOST));
    let t = Test::repo(HOST)
        .file("kore-notify.yaml", &cfg)
        .env("RELEASE", "2026.11")
        .manifest("n.yaml", &slack("Release ${RELEASE} is out"));
    let (o, t) = t.args(["plan", "--color", "never"]).status(0).stdout_has("variables: RELEASE=2026.11").run();
    assert!(o.stdout.contains("Release 2026.11 is out"), "{}", o.stdout);
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["targets"][0]["notifications"][0]["variables"]["RELEASE"], "2026.11");
    t.args(["plan", "--format", "markdown"]).status(0).stdout_has("Variables: RELEASE=2026\\.11").run();
}

#[test]
fn the_config_cannot_declare_secrets_for_manifests() {
    for name in ["KORE_CLIENT_SECRET", "GITHUB_TOKEN", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY"] {
        let cfg = format!("{}variables: [RELEASE, {name}]\n", config(HOST));
        let t = Test::repo(HOST).file("kore-notify.yaml", &cfg).manifest("n.yaml", &slack("hi"));
        refused(t, &["validate"], &format!("`{name}` looks like a secret"), &[SECRET]);
    }
    let cfg = format!("{}variables: [MY_ID]\n", config(HOST).replace("${KORE_CLIENT_ID}", "${MY_ID}"));
    let t = Test::repo(HOST).file("kore-notify.yaml", &cfg).manifest("n.yaml", &slack("hi"));
    refused(t, &["validate"], "holds a credential", &[]);
}

#[test]
fn value_files_are_taken_as_written_unless_asked() {
    let cfg = format!("{}variables: [RELEASE]\n", config(HOST));
    let manifest = |extra: &str| {
        format!("key: k\nchannel: slack\ncontent: {{type: script, valueFile: m.js{extra}}}\nidentities: [a]\n")
    };
    let t = Test::repo(HOST)
        .file("kore-notify.yaml", &cfg)
        .env("RELEASE", "r9")
        .manifest("m.js", "print(`${RELEASE} ${USER}`)\n")
        .manifest("n.yaml", &manifest(""));
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    assert!(o.stdout.contains("print(`${RELEASE} ${USER}`)"), "{}", o.stdout);
    let t = t.manifest("n.yaml", &manifest(", interpolate: true"));
    let t = refused(t, &["validate"], "variable USER is not declared", &[]);
    let t = t.manifest("m.js", "print(`${RELEASE}`)\n");
    t.args(["plan", "--format", "json"]).status(0).stdout_has("print(`r9`)").run();
}

#[test]
fn expansion_output_is_bounded() {
    let cfg = format!("{}variables: [BIG]\n", config(HOST));
    let refs = "${BIG}".repeat(10_000);
    let t = Test::repo(HOST)
        .file("kore-notify.yaml", &cfg)
        .env("BIG", &"x".repeat(100_000))
        .manifest("n.yaml", &slack(&refs));
    refused(t, &["validate"], "variable expansion in this file exceeds", &[]);
}

// ----- every path stays in the repository -----

#[test]
fn value_files_and_audiences_outside_the_repository_are_refused_without_their_content() {
    let outside = tempfile::tempdir().expect("tmp");
    let secret_file = outside.path().join("private.txt");
    std::fs::write(&secret_file, "TOP-SECRET-RUNNER-FILE\n").expect("write");
    let vf = |p: &str| format!("key: k\nchannel: slack\ncontent: {{type: text, valueFile: '{p}'}}\nidentities: [a]\n");
    let never = ["TOP-SECRET-RUNNER-FILE", "root:x:0"];
    for p in ["../../../../../../../etc/passwd", "/etc/passwd", secret_file.to_str().expect("utf8")] {
        let t = Test::repo(HOST).manifest("n.yaml", &vf(p));
        let t = refused(t, &["validate"], "outside the repository", &never);
        refused(t, &["plan", "--format", "markdown"], "outside the repository", &never);
    }
    // A symlink inside the repository that points outside it.
    let t = Test::repo(HOST).manifest("n.yaml", &vf("link.txt"));
    std::os::unix::fs::symlink(&secret_file, t.path().join("notifications/link.txt")).expect("symlink");
    refused(t, &["plan"], "outside the repository", &never);
    let aud = "key: k\nchannel: ivr\ncontent: {type: text, value: hi}\nidentitiesFrom: /etc/passwd\n";
    refused(Test::repo(HOST).manifest("n.yaml", aud), &["validate"], "cannot use `/etc/passwd`", &never);
    // A link to a directory outside, then a file through it.
    let t = Test::repo(HOST).manifest("n.yaml", &vf("out/private.txt"));
    std::os::unix::fs::symlink(outside.path(), t.path().join("notifications/out")).expect("symlink");
    refused(t, &["validate"], "outside the repository", &never);
}

#[test]
fn manifest_paths_outside_the_repository_are_refused() {
    let outside = tempfile::tempdir().expect("tmp");
    std::fs::write(
        outside.path().join("x.yaml"),
        "key: leak\nchannel: slack\ncontent: {type: text, value: LEAKED-CONTENT}\nidentities: [a]\n",
    )
    .expect("write");
    for spec in [outside.path().to_str().expect("utf8").to_string(), "../*".to_string()] {
        let cfg = config(HOST).replace("manifests: [notifications]", &format!("manifests: ['{spec}']"));
        let t = Test::new().file("repo/kore-notify.yaml", &cfg).cwd("repo");
        let t = t.file(
            "x.yaml",
            "key: leak\nchannel: slack\ncontent: {type: text, value: LEAKED-CONTENT}\nidentities: [a]\n",
        );
        let (o, _) = t.args(["plan"]).status(1).stderr_has("outside the repository").run();
        assert!(!o.stdout.contains("LEAKED") && !o.stderr.contains("LEAKED"), "{}", o.stderr);
    }
    // A symlinked manifest directory pointing outside.
    let t = Test::repo(HOST);
    std::os::unix::fs::symlink(outside.path(), t.path().join("notifications")).expect("symlink");
    refused(t, &["plan"], "outside the repository", &["LEAKED"]);
}

#[test]
fn devices_fifos_and_endless_files_are_refused_without_hanging() {
    let vf = |p: &str| format!("key: k\nchannel: slack\ncontent: {{type: text, valueFile: '{p}'}}\nidentities: [a]\n");
    let t = Test::repo(HOST).manifest("n.yaml", &vf("zero"));
    std::os::unix::fs::symlink("/dev/zero", t.path().join("notifications/zero")).expect("symlink");
    refused(t, &["validate"], "outside the repository", &[]);
    let t = Test::repo(HOST).manifest("n.yaml", &vf("pipe"));
    let fifo = t.path().join("notifications/pipe");
    let ok = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success();
    assert!(ok);
    refused(t, &["validate"], "a FIFO, not a regular file", &[]);
    let aud = "key: k\nchannel: ivr\ncontent: {type: text, value: hi}\nidentitiesFrom: rand.csv\n";
    let t = Test::repo(HOST).manifest("n.yaml", aud);
    std::os::unix::fs::symlink("/dev/urandom", t.path().join("notifications/rand.csv")).expect("symlink");
    refused(t, &["validate"], "cannot use `rand.csv`", &[]);
    // A manifest that is itself a FIFO.
    let t = Test::repo(HOST);
    std::fs::create_dir_all(t.path().join("notifications")).expect("mkdir");
    let ok = std::process::Command::new("mkfifo").arg(t.path().join("notifications/m.yaml")).status().expect("mkfifo");
    assert!(ok.success());
    refused(t, &["validate"], "not a regular file", &[]);
}

#[test]
fn state_files_must_be_regular_files_inside_the_repository() {
    let cfg = |state: &str| config(HOST).replace("state: .kore-notify/state.json", &format!("state: {state}"));
    for state in ["/dev/zero", "../elsewhere/state.json", "/tmp/kore-notify-state.json"] {
        let t = Test::repo(HOST).file("kore-notify.yaml", &cfg(state)).manifest("n.yaml", &slack("hi"));
        refused(t, &["plan"], "cannot keep the state there", &[]);
    }
    // The state file, the journal and the lock as symlinks to a device or to a victim file.
    let emu = Emulator::start(&[]);
    let victim = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(victim.path(), "precious").expect("write");
    let victim_path = victim.path().to_str().expect("utf8");
    for (name, target, needle) in [
        ("state.json", "/dev/zero", "outside the repository"),
        ("state.json", "other.json", "symbolic link"),
        ("state.json.journal", "/dev/zero", "symbolic link"),
        ("state.json.lock", victim_path, "symbolic link"),
        ("state.json.journal", victim_path, "symbolic link"),
    ] {
        let t = Test::repo(&emu.url).manifest("n.yaml", &slack("hi"));
        std::fs::create_dir_all(t.path().join(".kore-notify")).expect("mkdir");
        std::fs::write(t.path().join(".kore-notify/other.json"), "{}").expect("write");
        std::os::unix::fs::symlink(target, t.path().join(".kore-notify").join(name)).expect("symlink");
        let t = refused(t, &["apply", "--auto-approve"], needle, &[]);
        if name != "state.json.lock" {
            refused(t, &["plan"], needle, &[]);
        }
        assert_eq!(std::fs::read_to_string(victim.path()).expect("victim"), "precious", "{name} wrote through a link");
    }
    assert!(emu.deliveries().is_empty());
    // A backup replaced by a link: the next snapshot replaces the link, never writes through it.
    let (_, t) =
        Test::repo(&emu.url).manifest("n.yaml", &slack("hi")).args(["apply", "--auto-approve"]).status(0).run();
    let backup = t.path().join(".kore-notify/state.json.backup");
    let _ = std::fs::remove_file(&backup);
    std::os::unix::fs::symlink(victim.path(), &backup).expect("symlink");
    let t = t.manifest("n.yaml", &slack("hi again"));
    let (_, _t) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(std::fs::read_to_string(victim.path()).expect("victim"), "precious");
    assert!(std::fs::symlink_metadata(&backup).expect("backup").is_file());
    // A FIFO as the state file: an error, not a hang.
    let t = Test::repo(HOST).manifest("n.yaml", &slack("hi"));
    std::fs::create_dir_all(t.path().join(".kore-notify")).expect("mkdir");
    let ok =
        std::process::Command::new("mkfifo").arg(t.path().join(".kore-notify/state.json")).status().expect("mkfifo");
    assert!(ok.success());
    refused(t, &["plan"], "not a regular file", &[]);
}

#[test]
fn a_root_can_widen_the_repository_to_a_parent() {
    let cfg = format!("{}root: ..\n", config(HOST));
    let t = Test::new()
        .file("mono/team/kore-notify.yaml", &cfg)
        .file("mono/shared/msg.txt", "shared text\n")
        .file(
            "mono/team/notifications/n.yaml",
            "key: k\nchannel: slack\ncontent: {type: text, valueFile: ../../shared/msg.txt}\nidentities: [a]\n",
        )
        .cwd("mono/team");
    let (_, t) = t.args(["plan", "--format", "json"]).status(0).stdout_has("shared text").run();
    let t = t.file("mono/team/kore-notify.yaml", &config(HOST));
    refused(t, &["plan"], "outside the repository", &["shared text"]);
}

// ----- the server is untrusted -----

fn apply_against(server: &Hostile) -> Test {
    Test::repo(&server.url).manifest("n.yaml", &slack("hi"))
}

#[test]
fn redirects_are_never_followed_and_the_token_never_leaves() {
    let elsewhere = Hostile::start(|_| Reply::http("200 OK", &[("Content-Type", "application/json")], JOB));
    for status in ["301 Moved Permanently", "302 Found", "307 Temporary Redirect", "308 Permanent Redirect"] {
        for target in [format!("{}/api/public/bot/st-test-bot/notify", elsewhere.url), "http://10.1.2.3/x".to_string()]
        {
            let loc = target.clone();
            let server = Hostile::start(move |_| Reply::http(status, &[("Location", &loc)], ""));
            let (o, t) = apply_against(&server)
                .args(["apply", "--auto-approve"])
                .status(1)
                .stderr_has("redirects are never followed")
                .stderr_has(&target)
                .stderr_has("Fix `host`")
                .run();
            let seen = server.requests();
            assert_eq!(seen.len(), 1, "{status}: re-sent\n{}", o.stderr);
            assert_eq!(seen[0].path, "/api/public/bot/st-test-bot/notify");
            assert!(seen[0].headers.iter().any(|(k, _)| k == "auth"), "the real host gets the token");
            // The state records it as rejected: the next plan sends it again, nothing is unknown.
            let (o, _) = t.args(["plan", "--format", "json"]).status(0).run();
            assert!(o.stdout.contains("\"recipientsToSend\": 1"), "{}", o.stdout);
        }
    }
    assert!(elsewhere.requests().is_empty(), "the other origin received {:?}", elsewhere.requests());
}

#[test]
fn hosts_are_parsed_not_matched_as_text() {
    for host in
        ["http://127.evil.example", "http://localhost.evil.example", "http://10.0.0.1", "https://u:p@kore.example.com"]
    {
        refused(Test::repo(host).manifest("n.yaml", &slack("hi")), &["validate"], "host", &[]);
    }
    Test::repo("http://[::1]:9").manifest("n.yaml", &slack("hi")).args(["validate"]).status(0).run();
}

#[test]
fn huge_and_endless_answers_are_capped_and_unknown() {
    // A 1 GiB announced body, an endless 2xx stream, an endless error stream.
    type Handler = Box<dyn Fn(&Seen) -> Reply + Send + Sync>;
    let cases: Vec<(&str, Handler)> = vec![
        (
            "announced",
            Box::new(|_| Reply::Stream {
                head: b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n".to_vec(),
                chunk: vec![b'{'; 65536],
                count: 64,
            }),
        ),
        (
            "endless",
            Box::new(|_| Reply::Stream {
                head: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec(),
                chunk: vec![b' '; 65536],
                count: usize::MAX,
            }),
        ),
        (
            "error",
            Box::new(|_| Reply::Stream {
                head: b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\n".to_vec(),
                chunk: vec![b'e'; 65536],
                count: usize::MAX,
            }),
        ),
    ];
    for (name, reply) in cases {
        let server = Hostile::start(reply);
        let (o, t) = apply_against(&server)
            .args(["apply", "--auto-approve"])
            .status(3)
            .stderr_has("larger than 1048576 bytes")
            .run();
        assert_eq!(server.requests().len(), 1, "{name}: re-sent\n{}", o.stderr);
        t.args(["plan"]).status(0).stdout_has("blocked").run();
    }
}

#[test]
fn answers_that_are_not_jobs_are_unknown_never_accepted() {
    for body in ["<html>Captive portal</html>", "{\"status\":\"IN_PROGRESS\"}", "{\"_id\":\"../../x?y=\"}", ""] {
        let server = Hostile::start(move |_| Reply::http("200 OK", &[], body));
        let (_, t) = apply_against(&server).args(["apply", "--auto-approve"]).status(3).stderr_has("UNKNOWN").run();
        t.args(["plan"]).status(0).stdout_has("blocked").run();
        assert_eq!(server.requests().len(), 1);
    }
}

#[test]
fn request_ids_never_reach_a_url_unchecked() {
    // The send answers a job with a hostile id: recorded as unknown, never asked about.
    let server = Hostile::start(|s| {
        if s.method == "POST" {
            Reply::http("200 OK", &[], r#"{"_id":"../../x?y=#","status":"IN_PROGRESS"}"#)
        } else {
            Reply::http("200 OK", &[], r#"{"status":"SUCCESS","statusLogs":[]}"#)
        }
    });
    let (_, t) =
        apply_against(&server).args(["apply", "--auto-approve"]).status(3).stderr_has("invalid request id").run();
    t.args(["status", "--refresh"]).status(3).run();
    let seen = server.requests();
    assert!(seen.iter().all(|s| s.method == "POST" && !s.path.contains("x?y")), "{seen:?}");
}

#[test]
fn escape_sequences_from_the_server_never_reach_the_terminal() {
    let evil = "{\"errors\":[{\"msg\":\"bad \\u001b]0;pwned\\u0007\\u001b[2J\\r\\u202eolleh\",\"code\":412}]}";
    let server = Hostile::start(move |_| Reply::http("412 Precondition Failed", &[], evil));
    let (o, t) = apply_against(&server).args(["apply", "--auto-approve"]).status(3).stderr_has("<U+001B>").run();
    for raw in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
        assert!(!o.stderr.contains(raw) && !o.stdout.contains(raw), "{raw:?} reached the terminal: {:?}", o.stderr);
    }
    let state = std::fs::read_to_string(t.state_path()).expect("state");
    assert!(!state.contains("\\u001b") && !state.contains('\u{202e}'), "{state}");
    // Status comments from the server.
    let server = Hostile::start(|s| {
        if s.method == "POST" {
            Reply::http("200 OK", &[], JOB)
        } else {
            Reply::http(
                "200 OK",
                &[],
                "{\"status\":\"FAILURE\",\"statusLogs\":[{\"originalId\":\"a@x.com\",\"status\":\"FAILURE\",\"comments\":\"no \\u001b[31mred\\u001b[0m ::set-output name=x::1\"}]}",
            )
        }
    });
    let (_, t) = apply_against(&server).args(["apply", "--auto-approve"]).status(0).run();
    let (o, _) =
        t.env("GITHUB_ACTIONS", "true").args(["status", "--refresh"]).status(3).stdout_has("<U+001B>[31mred").run();
    assert!(!o.stdout.contains('\u{1b}') && !o.stderr.contains('\u{1b}'), "{}", o.stdout);
}

// ----- output is untrusted text -----

const HOSTILE_IDS: &str = "key: hr/benefits-enrolment-2027\nchannel: ivr\ncontent: {type: text, value: \"Hi \\e]0;title\\a @octocat and @acme/admins see #12 and deadbeefcafe1234 https://evil.example\\n::set-output name=x::1\\n\\u202Eevil\"}\nidentities:\n  - \"ann\\u202E@example.com\"\n  - \"abe\\u200B@example.com\"\n  - \"amy@example.com\\r\"\n";

#[test]
fn terminal_output_shows_control_bidi_and_zero_width_characters_visibly() {
    let t = Test::repo(HOST).manifest("n.yaml", HOSTILE_IDS).env("GITHUB_ACTIONS", "true");
    let (o, t) = t.args(["plan", "--color", "never"]).status(0).stdout_has("ann<U+202E>@example.com").run();
    for raw in ['\u{1b}', '\u{7}', '\r', '\u{202e}', '\u{200b}'] {
        assert!(!o.stdout.contains(raw), "{raw:?} in plan text");
    }
    assert!(o.stdout.contains("abe<U+200B>@example.com") && o.stdout.contains("<U+202E>evil"), "{}", o.stdout);
    assert!(!o.stdout.lines().any(|l| l.trim_start().starts_with("::")), "workflow command in output:\n{}", o.stdout);
    // Markdown too is printed to the log inside Actions.
    let (o, _) = t.args(["plan", "--format", "markdown"]).status(0).run();
    assert!(!o.stdout.lines().any(|l| l.trim_start().starts_with("::")), "{}", o.stdout);
}

#[test]
fn the_pull_request_comment_cannot_mention_link_or_hide_text() {
    let (o, _) =
        Test::repo(HOST).manifest("n.yaml", HOSTILE_IDS).args(["plan", "--format", "markdown"]).status(0).run();
    let md = o.stdout;
    let outside: String = md.split("```").step_by(2).collect();
    for mention in ["@octocat", "@acme/admins", "#12", "https://evil", "deadbeefcafe1234"] {
        assert!(!outside.contains(mention), "`{mention}` is live in the comment:\n{md}");
    }
    for raw in ['\u{1b}', '\u{7}', '\r', '\u{202e}', '\u{200b}'] {
        assert!(!md.contains(raw), "{raw:?} in the comment:\n{md}");
    }
    assert!(md.contains("<code>hr/benefits-enrolment-2027</code>"), "HTML context escaped as HTML:\n{md}");
    // Recipients as written, their unsafe characters visible, never raw.
    assert!(md.contains("<code>ann&lt;U+202E&gt;@\u{2060}example.com</code>"), "{md}");
    assert!(md.contains("<code>abe&lt;U+200B&gt;@\u{2060}example.com</code>"), "{md}");
    // Masked when the config asks: nothing readable, three recipients of one domain distinct.
    let masked = Test::repo(HOST)
        .file("kore-notify.yaml", &format!("{}review: {{mask: true}}\n", config(HOST)))
        .manifest("n.yaml", HOSTILE_IDS);
    let (o, _) = masked.args(["plan", "--format", "markdown"]).status(0).run();
    let md = o.stdout;
    let outside: String = md.split("```").step_by(2).collect();
    assert!(
        !outside.contains("@\u{2060}example.com") && !md.contains("amy") && !md.contains("abe"),
        "recipients not masked:\n{md}"
    );
    let masks: Vec<&str> = md.lines().filter(|l| l.starts_with("- <code>")).collect();
    assert_eq!(masks.len(), 3, "{md}");
    assert!(masks[0] != masks[1] && masks[1] != masks[2] && masks[0] != masks[2], "{md}");
}

#[test]
fn validate_and_state_commands_show_hostile_text_safely() {
    let t = Test::repo(HOST).manifest(
        "n.yaml",
        "key: k\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n\"\\e]0;x\\a\": 1\n",
    );
    let (o, _) = t.args(["validate"]).status(1).stderr_has("unknown field").run();
    assert!(!o.stderr.contains('\u{1b}') && !o.stderr.contains('\u{7}'), "{:?}", o.stderr);
}

// ----- diagnostics stay linear -----

#[test]
fn a_hundred_thousand_problems_in_one_file_are_all_reported() {
    let mut y = String::from("key: k\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n");
    for i in 0..100_000 {
        y.push_str(&format!("unknownField{i}: 1\n"));
    }
    let t = Test::repo(HOST).manifest("n.yaml", &y);
    let start = Instant::now();
    let (o, _) = t.args(["validate"]).status(1).run();
    // Linear rendering; the 2-second budget is a release-build benchmark (bench/diagnostics.sh).
    assert!(start.elapsed() < Duration::from_secs(90), "took {:?}", start.elapsed());
    assert_eq!(o.stderr.matches("unknown field `unknownField").count(), 100_000);
}

// ----- found by an attack review -----

#[test]
fn hidden_files_such_as_git_config_are_never_read() {
    let never = ["AUTHORIZATION", "SECRET=hunter2"];
    for path in ["../.git/config", "../.env", "../notifications/../.git/config"] {
        let t = Test::repo(HOST)
            .file(".git/config", "[http]\n\textraheader = AUTHORIZATION: basic dG9rZW4=\n")
            .file(".env", "SECRET=hunter2\n")
            .manifest(
                "n.yaml",
                &format!("key: k\nchannel: slack\ncontent: {{type: text, valueFile: '{path}'}}\nidentities: [a]\n"),
            );
        let t = refused(t, &["plan", "--format", "markdown"], "hidden file or directory", &never);
        let t = t.manifest(
            "n.yaml",
            &format!("key: k\nchannel: ivr\ncontent: {{type: text, value: hi}}\nidentitiesFrom: '{path}'\n"),
        );
        refused(t, &["plan", "--verbose"], "hidden file or directory", &never);
    }
    let cfg = config(HOST).replace("manifests: [notifications]", "manifests: ['.git/*']");
    let t = Test::repo(HOST).file("kore-notify.yaml", &cfg).file(".git/config", "key: AUTHORIZATION\n");
    refused(t, &["plan"], "", &never);
}

#[test]
fn symlink_graphs_and_links_to_the_filesystem_are_walked_safely() {
    // 2^31 paths through 31 levels of double links: every directory is walked once.
    let t = Test::repo(HOST).manifest("ok.yaml", &slack("hi"));
    let n = t.path().join("notifications");
    for i in 0..31 {
        let d = n.join(format!("L{i}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        for link in ["a", "b"] {
            std::os::unix::fs::symlink(format!("../L{}", i + 1), d.join(link)).expect("symlink");
        }
    }
    std::fs::create_dir_all(n.join("L31")).expect("mkdir");
    let start = Instant::now();
    t.args(["validate"]).status(0).stdout_has("1 notification(s)").run();
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    // A link to the root of the filesystem is not walked, and names nothing outside.
    let t = Test::repo(HOST).manifest("ok.yaml", &slack("hi"));
    std::os::unix::fs::symlink("/", t.path().join("notifications/ext")).expect("symlink");
    let (o, _) = t.args(["validate"]).status(1).stderr_has("leads outside the repository").run();
    assert!(!o.stderr.contains("/etc") && !o.stderr.contains("ext/"), "{}", o.stderr);
}

#[test]
fn a_5xx_that_mentions_rate_limits_is_unknown_and_never_resent() {
    let server =
        Hostile::start(|_| Reply::http("500 Oops", &[], "{\"errors\":[{\"msg\":\"rate limit exceeded upstream\"}]}"));
    apply_against(&server).args(["apply", "--auto-approve"]).status(3).stderr_has("UNKNOWN").run();
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn config_fields_cannot_expand_secrets_into_plans() {
    let cfg = config(HOST).replace("botId: st-test-bot", "botId: st-${KORE_CLIENT_SECRET}");
    let t = Test::repo(HOST).file("kore-notify.yaml", &cfg).manifest("n.yaml", &slack("hi"));
    refused(t, &["plan"], "KORE_CLIENT_SECRET looks like a secret", &[SECRET]);
}

#[test]
fn old_style_workflow_commands_are_broken_anywhere_in_a_line() {
    let t = Test::repo(HOST)
        .manifest("n.yaml", &slack("Release notes ##[error]Forged annotation"))
        .env("GITHUB_ACTIONS", "true");
    let (o, _) = t.args(["plan", "--color", "never"]).status(0).stdout_has("Forged annotation").run();
    assert!(!o.stdout.contains("##["), "{}", o.stdout);
}

#[test]
fn warnings_in_the_comment_never_show_quoted_values_even_with_quotes_inside() {
    let manifest = "key: k\nchannel: ivr\ncontent: {type: text, value: hi}\nidentities:\n  - email: ' x\"secret.person@victim.com\" '\n";
    let (o, _) = Test::repo(HOST).manifest("n.yaml", manifest).args(["plan", "--format", "markdown"]).status(0).run();
    let warnings = o.stdout.split("validation warning(s)").nth(1).expect("a warnings block");
    assert!(!warnings.contains("victim") && !warnings.contains("secret"), "{warnings}");
}

#[test]
fn plan_files_are_read_within_a_limit() {
    let t = Test::repo(HOST).manifest("n.yaml", &slack("hi"));
    let f = std::fs::File::create(t.path().join("huge.json")).expect("create");
    f.set_len(300 * 1024 * 1024).expect("sparse");
    let t = refused(t, &["show", "huge.json"], "larger than the limit", &[]);
    refused(t, &["apply", "huge.json", "--auto-approve"], "larger than the limit", &[]);
}
