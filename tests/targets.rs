//! Targets: one repository, two bots (staging and production, each its own emulator), promotion
//! that proves content on staging before production sends it, audience rules, scoped manifests.

use crate::harness::*;

fn two_targets(staging: &Emulator, production: &Emulator, staging_audience: &str) -> String {
    format!(
        "targets:\n  staging:\n    host: {}\n    botId: st-staging\n    clientId: ${{KORE_CLIENT_ID}}\n    clientSecret: ${{KORE_CLIENT_SECRET}}\n    state: .kore-notify/staging.json\n{staging_audience}  production:\n    host: {}\n    botId: st-production\n    clientId: ${{KORE_CLIENT_ID}}\n    clientSecret: ${{KORE_CLIENT_SECRET}}\n    state: .kore-notify/production.json\n    promoteFrom: staging\nmanifests: [notifications]\n",
        staging.url, production.url
    )
}

const WELCOME: &str = "key: welcome\nchannel: msteams\ncontent: {type: text, value: Welcome aboard}\nidentities: [ann@example.com, bob@example.com, cid@example.com]\n";

fn repo(staging: &Emulator, production: &Emulator, audience: &str) -> Test {
    Test::new().file("kore-notify.yaml", &two_targets(staging, production, audience)).manifest("welcome.yaml", WELCOME)
}

#[test]
fn production_waits_for_staging_then_sends_each_recipient_once() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let t = repo(&st, &pr, "");
    // Production first: nothing is sent, and the plan says why.
    let (_, t) = t
        .args(["apply", "--target", "production", "--auto-approve"])
        .status(0)
        .stderr_has("awaiting promotion")
        .stderr_has("await promotion from `staging`")
        .run();
    assert!(pr.deliveries().is_empty(), "production sent before staging: {:?}", pr.deliveries());
    let (o, t) = t.args(["plan", "--detailed-exitcode"]).status(2).run();
    assert!(o.stdout.contains("kore-notify plan for 2 targets: staging, production"), "{}", o.stdout);
    assert!(o.stdout.contains("awaiting promotion 3"), "{}", o.stdout);
    // Staging, then production: each recipient of each bot once.
    let (_, t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    assert_eq!(st.deliveries().len(), 3);
    let (o, t) = t.args(["plan", "--target", "production"]).status(0).run();
    assert!(o.stdout.contains("promotion evidence: staging: accepted"), "{}", o.stdout);
    let (_, t) = t.args(["apply", "--target", "production", "--auto-approve"]).status(0).run();
    let d = pr.deliveries();
    assert_eq!(d.len(), 3, "{d:?}");
    assert!(d.values().all(|c| *c == 1));
    let (_, t) =
        t.args(["apply", "--target", "production", "--auto-approve"]).status(0).stderr_has("Nothing to send").run();
    assert_eq!(pr.deliveries(), d);
    // Changed content is new content: production waits for staging again.
    let t = t.manifest("welcome.yaml", &WELCOME.replace("Welcome aboard", "Welcome aboard!"));
    let (o, _) = t.args(["plan", "--target", "production", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["formatVersion"], 2);
    assert_eq!(v["targets"][0]["name"], "production");
    assert_eq!(v["targets"][0]["notifications"][0]["action"], "awaiting-promotion");
}

#[test]
fn the_states_stay_apart_and_a_command_that_changes_one_needs_a_target() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let (o, t) = repo(&st, &pr, "").args(["apply", "--auto-approve"]).status(1).run();
    assert!(o.stderr.contains("this config has 2: staging, production; choose one with --target NAME"), "{}", o.stderr);
    let (o, t) = t.args(["apply", "--target", "prod", "--auto-approve"]).status(1).run();
    assert!(o.stderr.contains("no target `prod`") && o.stderr.contains("staging, production"), "{}", o.stderr);
    let (_, t) = t.args(["status", "--refresh"]).status(1).stderr_has("choose one with --target").run();
    let (_, t) = t.args(["status", "--format", "json"]).status(1).stderr_has("choose one with --target").run();
    let (o, t) = t.args(["status"]).status(0).run();
    assert!(o.stdout.contains("── target staging ──") && o.stdout.contains("── target production ──"), "{}", o.stdout);
    let (_, t) = t.args(["state", "list"]).status(1).stderr_has("choose one with --target").run();
    let (_, t) = t.args(["apply", "--auto-approve"]).env("KORE_NOTIFY_TARGET", "staging").status(0).run();
    assert!(t.path().join(".kore-notify/staging.json").is_file());
    assert!(!t.path().join(".kore-notify/production.json").exists(), "staging wrote production's state");
    assert!(!t.path().join(".kore-notify/state.json").exists());
    let (o, _) = t.args(["state", "list", "--target", "production"]).status(0).run();
    assert!(!o.stdout.contains("welcome"), "production's state lists staging's send: {}", o.stdout);
    assert!(pr.deliveries().is_empty());
}

#[test]
fn a_seed_audience_never_reaches_anyone_else() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let seeds = "    audience: {replaceWith: [qa1@example.com, qa2@example.com]}\n";
    let manifest = "key: hello\nchannel: msteams\ncontent: {type: text, value: Hello}\nidentities: [ann@example.com, bob@example.com, cid@example.com, dan@example.com]\n";
    let t = Test::new().file("kore-notify.yaml", &two_targets(&st, &pr, seeds)).manifest("hello.yaml", manifest);
    let (o, t) = t.args(["plan", "--target", "staging"]).status(0).run();
    assert!(o.stdout.contains("audience replaced (inline): sent to 2 seed identities instead of 4"), "{}", o.stdout);
    let (_, _) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    let d = st.deliveries();
    assert_eq!(
        d.keys().map(String::as_str).collect::<Vec<_>>(),
        ["msteams:qa1@example.com", "msteams:qa2@example.com"]
    );
}

#[test]
fn only_leaves_out_everyone_off_the_list_with_a_visible_count() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let only = "    audience: {only: audiences/qa.txt}\n";
    let t = Test::new()
        .file("kore-notify.yaml", &two_targets(&st, &pr, only))
        .file("audiences/qa.txt", "# the QA team\nBOB@example.com\n\nzed@example.com\n")
        .manifest("welcome.yaml", WELCOME);
    let (o, t) = t.args(["plan", "--target", "staging"]).status(0).run();
    assert!(
        o.stdout.contains("audience only (audiences/qa.txt): 1 of 3 recipient(s) planned, 2 left out"),
        "{}",
        o.stdout
    );
    t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    assert_eq!(st.deliveries().keys().map(String::as_str).collect::<Vec<_>>(), ["msteams:bob@example.com"]);
}

#[test]
fn a_manifest_scoped_to_one_target_never_reaches_the_other() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let scoped = "key: staging-only\ntargets: [staging]\nchannel: msteams\ncontent: {type: text, value: Test}\nidentities: [ann@example.com]\n";
    let t = repo(&st, &pr, "").manifest("scoped.yaml", scoped);
    let (_, t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    let (o, t) = t.args(["plan", "--target", "production", "--format", "json"]).status(0).run();
    assert!(!o.stdout.contains("staging-only"), "{}", o.stdout);
    t.args(["apply", "--target", "production", "--auto-approve"]).status(0).run();
    assert!(pr.deliveries().keys().all(|k| !k.contains("ann@example.com") || st.deliveries().contains_key(k)));
    assert_eq!(pr.deliveries().len(), 3, "welcome only: {:?}", pr.deliveries());
    assert_eq!(st.deliveries().len(), 3, "welcome and staging-only share ann: {:?}", st.deliveries());
}

#[test]
fn skip_promotion_needs_a_reason_and_is_recorded_with_who() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let t = repo(&st, &pr, "");
    let (_, t) = t
        .args(["apply", "--target", "production", "--auto-approve", "--skip-promotion", "welcome"])
        .status(1)
        .stderr_has("--reason")
        .run();
    let (_, t) = t
        .args(["apply", "--target", "staging", "--auto-approve", "--skip-promotion", "welcome", "--reason", "x"])
        .status(1)
        .stderr_has("has no promotion gate")
        .run();
    assert!(st.deliveries().is_empty() && pr.deliveries().is_empty());
    let (_, t) = t
        .args([
            "apply",
            "--target",
            "production",
            "--auto-approve",
            "--skip-promotion",
            "welcome",
            "--reason",
            "hotfix for INC-42",
        ])
        .env("GITHUB_ACTOR", "octocat")
        .status(0)
        .run();
    assert_eq!(pr.deliveries().len(), 3);
    let (o, t) = t.args(["state", "show", "welcome", "--target", "production"]).status(0).run();
    for want in ["\"gate\": \"promotion\"", "\"reason\": \"hotfix for INC-42\"", "\"actor\": \"octocat\""] {
        assert!(o.stdout.contains(want), "{want}: {}", o.stdout);
    }
    let (o, _) = t.args(["plan", "--target", "production"]).status(0).run();
    assert!(o.stdout.contains("no-op") || !o.stdout.contains("awaiting"), "{}", o.stdout);
}

#[test]
fn target_settings_are_checked_with_their_position() {
    let cases: &[(&str, &str)] = &[
        ("targets:\n  Staging: {}\n", "targets.Staging: `Staging` is not a target name"),
        ("targets: {}\n", "no targets"),
        (
            "host: http://127.0.0.1:1\ntargets:\n  a: {host: http://127.0.0.1:1, botId: st-a, clientId: x, clientSecret: '${S}'}\n",
            "`host` belongs to a target",
        ),
        (
            "targets:\n  a: {host: http://127.0.0.1:1, botId: st-a, clientId: x, clientSecret: '${S}', promoteFrom: b}\n",
            "no target `b`",
        ),
        (
            "targets:\n  a: {host: http://127.0.0.1:1, botId: st-a, clientId: x, clientSecret: '${S}', promoteFrom: b}\n  b: {host: http://127.0.0.1:1, botId: st-b, clientId: x, clientSecret: '${S}', promoteFrom: a}\n",
            "circle",
        ),
        (
            "targets:\n  a: {host: http://127.0.0.1:1, botId: st-a, clientId: x, clientSecret: '${S}', state: s.json}\n  b: {host: http://127.0.0.1:1, botId: st-b, clientId: x, clientSecret: '${S}', state: s.json}\n",
            "same place",
        ),
        (
            "targets:\n  a: {host: http://127.0.0.1:1, botId: st-a, clientId: x, clientSecret: '${S}', audience: {only: []}}\n",
            "at least one identity",
        ),
        (
            "targets:\n  a: {host: http://127.0.0.1:1, botId: st-a, clientId: x, clientSecret: '${S}', audience: {only: ../outside.txt}}\n",
            "targets.a.audience.only: cannot read",
        ),
        (
            "targets:\n  a: {botId: st-a, clientId: x, clientSecret: '${S}'}\n",
            "missing required field `targets.a.host`",
        ),
        ("promoteFrom: x\nhost: http://127.0.0.1:1\nbotId: b\nclientId: x\nclientSecret: '${S}'\n", "no other target"),
    ];
    for (config, want) in cases {
        let (o, _) = Test::new().file("kore-notify.yaml", config).args(["validate"]).status(1).run();
        assert!(o.stderr.contains(want), "{config}\nwant {want}\n{}", o.stderr);
        assert!(o.stderr.contains("kore-notify.yaml:"), "{}", o.stderr);
    }
    let config = "targets:\n  a: {host: http://127.0.0.1:1, botId: st-a, clientId: x, clientSecret: '${S}'}\n";
    let bad = "key: k\ntargets: [a, b]\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [u1]\n";
    let (o, _) =
        Test::new().file("kore-notify.yaml", config).manifest("k.yaml", bad).args(["validate"]).status(1).run();
    assert!(o.stderr.contains("k.yaml:2:") && o.stderr.contains("no target `b` in the config"), "{}", o.stderr);
    for flag in ["", "Bad", "a b", "a\u{1b}[31m"] {
        let (o, _) = Test::new().file("kore-notify.yaml", config).args(["plan", "--target", flag]).status(1).run();
        assert!(o.stderr.contains("is not a target name") && !o.stderr.contains('\u{1b}'), "{flag:?}: {}", o.stderr);
    }
}

#[test]
fn a_single_target_repository_upgraded_to_targets_sends_nothing_again() {
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url).manifest("welcome.yaml", WELCOME);
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 3);
    // The same bot and state, now written as a named target.
    let named = format!(
        "targets:\n  production:\n    host: {}\n    botId: st-test-bot\n    clientId: ${{KORE_CLIENT_ID}}\n    clientSecret: ${{KORE_CLIENT_SECRET}}\n    state: .kore-notify/state.json\nmanifests: [notifications]\n",
        emu.url
    );
    let t = t.file("kore-notify.yaml", &named);
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).run();
    t.args(["apply", "--auto-approve"]).status(0).stderr_has("Nothing to send").run();
    assert!(emu.deliveries().values().all(|c| *c == 1));
}

#[test]
fn the_markdown_plan_shows_both_targets_within_the_size_bound() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let mut t = repo(&st, &pr, "");
    for i in 0..60 {
        let ids: Vec<String> = (0..200).map(|j| format!("u{i}-{j}@example.com")).collect();
        t = t.manifest(
            &format!("n{i}.yaml"),
            &format!(
                "key: n{i}\nchannel: msteams\ncontent: {{type: text, value: \"{}\"}}\nidentities: [{}]\n",
                "x".repeat(500),
                ids.join(", ")
            ),
        );
    }
    let (o, _) = t.args(["plan", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.chars().count() <= 65_000, "{}", o.stdout.len());
    assert!(o.stdout.contains("| notification | staging | production |"), "{}", &o.stdout[..2000.min(o.stdout.len())]);
    assert!(
        o.stdout.contains("#### Target <code>staging</code>")
            && o.stdout.contains("#### Target <code>production</code>")
    );
    assert!(o.stdout.contains("awaiting promotion"), "production's cells");
}

#[test]
fn the_two_target_example_proves_on_seeds_then_promotes() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let t = Test::new()
        .env("KORE_HOST", &pr.url)
        .env("KORE_STAGING_HOST", &st.url)
        .env("KORE_STAGING_CLIENT_ID", CLIENT_ID)
        .env("KORE_STAGING_CLIENT_SECRET", SECRET);
    copy_dir(&examples_dir(), t.path());
    let t = t.cwd("targets");
    let (_, t) = t.args(["apply", "--target", "production", "--auto-approve"]).status(0).run();
    assert!(pr.deliveries().is_empty(), "production before staging: {:?}", pr.deliveries());
    let (_, t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    let seeds: std::collections::BTreeSet<String> =
        st.deliveries().keys().map(|k| k.split_once(':').map_or(k.clone(), |(_, id)| id.to_string())).collect();
    assert_eq!(seeds.into_iter().collect::<Vec<_>>(), ["qa1@example.com", "qa2@example.com"]);
    t.args(["apply", "--target", "production", "--auto-approve"]).status(0).stdout_has("(1262 recipient(s))").run();
    assert!(pr.deliveries().values().all(|c| *c == 1));
}

#[test]
fn two_targets_in_one_database_keep_their_states_apart() {
    let db = crate::postgres::Db::new();
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let config = two_targets(&st, &pr, "")
        .replace("state: .kore-notify/staging.json", &format!("state: {}", db.written("kore")))
        .replace("state: .kore-notify/production.json", &format!("state: {}", db.written("kore")));
    let t = Test::new()
        .file("kore-notify.yaml", &config)
        .manifest("welcome.yaml", WELCOME)
        .env(crate::postgres::PW_VAR, &db.password());
    let (_, t) =
        t.args(["apply", "--target", "production", "--auto-approve"]).status(0).stderr_has("await promotion").run();
    let (_, t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    // One row per bot: staging's send is staging's alone until production sends it.
    let rows = || {
        db.query("SELECT s.target || ':' || count(r.*) FROM kore_notify.states s LEFT JOIN kore_notify.notifications n ON n.target = s.target LEFT JOIN kore_notify.requests r ON r.notification = n.id GROUP BY s.target HAVING count(r.*) > 0 ORDER BY 1")
    };
    assert_eq!(rows(), ["st-staging:1"], "production recorded nothing yet");
    let (o, t) = t.args(["plan", "--target", "production"]).status(0).run();
    assert!(o.stdout.contains("promotion evidence: staging: accepted"), "{}", o.stdout);
    t.args(["apply", "--target", "production", "--auto-approve"]).status(0).run();
    assert_eq!(rows(), ["st-production:1", "st-staging:1"]);
    assert_eq!(pr.deliveries().len(), 3);
    assert_eq!(st.deliveries().len(), 3);
}

/// What a reviewer reads of a plan over two targets, exactly: the matrix, each target's section
/// (text), and the pull-request comment's table and target headings (markdown).
#[test]
fn the_plan_over_two_targets_reads_exactly_so() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let seeds = "    audience: {replaceWith: [qa1@example.com]}\n";
    let scoped = "key: staging-only\ntargets: [staging]\nchannel: msteams\ncontent: {type: text, value: Test}\nidentities: [ann@example.com]\n";
    let t = Test::new()
        .file("kore-notify.yaml", &two_targets(&st, &pr, seeds))
        .manifest("welcome.yaml", WELCOME)
        .manifest("scoped.yaml", scoped);
    // The hosts (their ports vary), however they are escaped.
    let host = |e: &Emulator| e.url.trim_start_matches("http://").to_string();
    let redact = |s: &str| s.replace(&host(&st), "STAGING").replace(&host(&pr), "PRODUCTION");
    let (o, t) = t.args(["plan", "--color", "never"]).status(0).run();
    insta::assert_snapshot!("plan_two_targets_text", redact(&o.stdout));
    let (o, _) = t.args(["plan", "--format", "markdown"]).status(0).run();
    insta::assert_snapshot!("plan_two_targets_markdown", redact(&o.stdout));
}
