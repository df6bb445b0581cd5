//! The policy and approvals, through the binary against the emulator: a deny fails the plan and
//! sends nothing; a `require` holds back only its notification until the approvals of the final
//! head commit count; fixture approval files that must count for nothing; a missing or malformed
//! file refuses the apply whole; the override sends despite `require` (never `deny`) and is
//! recorded; a policy change heads the pull-request comment.

use crate::harness::*;

const HEAD: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const OLD: &str = "cccccccccccccccccccccccccccccccccccccccc";
const MERGE: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

const POLICY: &str = "policy:
  - name: big-ivr
    when: {channel: ivr, recipients: {total: \">2\"}}
    require: {approvals: 2, from: [octo-org/comms, erin]}
  - name: no-whatsapp-yet
    when: {channel: whatsapp}
    deny: WhatsApp sends need legal sign-off first
";

const IVR: &str = "key: big\nchannel: ivr\ncontent: {type: text, value: hi}\nidentities: [a@x.com, b@x.com, c@x.com]\n";
const SLACK: &str = "key: small\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [s1, s2]\n";

fn repo(emu: &Emulator) -> Test {
    Test::new()
        .file("kore-notify.yaml", &format!("{}{POLICY}", config(&emu.url)))
        .manifest("big.yaml", IVR)
        .manifest("small.yaml", SLACK)
        .env("GITHUB_SHA", MERGE)
}

fn review(login: &str, state: &str, commit: &str, at: &str) -> serde_json::Value {
    serde_json::json!({"login": login, "type": "User", "state": state, "commit": commit, "submittedAt": at})
}

/// An approvals file for a pull request by alice, merged as MERGE with head HEAD.
fn approvals(reviews: &[serde_json::Value]) -> String {
    serde_json::json!({
        "formatVersion": 1,
        "repository": "octo-org/notifications",
        "commit": MERGE,
        "pullRequest": {"number": 7, "author": "alice", "headCommit": HEAD, "mergeCommit": MERGE, "reviews": reviews},
        "teams": {"octo-org/comms": ["bob", "carol", "renovate[bot]"]}
    })
    .to_string()
}

fn delivered(emu: &Emulator, prefix: &str) -> usize {
    emu.deliveries().keys().filter(|k| k.starts_with(prefix)).count()
}

#[test]
fn a_deny_fails_the_plan_after_printing_it_and_apply_sends_nothing() {
    let emu = Emulator::start(&[]);
    let wa = "key: wa\nchannel: whatsapp\ncontent: {type: text, value: hi}\nidentities: [\"+919800000001\"]\n";
    let (o, t) = repo(&emu)
        .manifest("wa.yaml", wa)
        .args(["plan"])
        .status(1)
        .stdout_has("small")
        .stdout_has("DENIED")
        .stderr_has("policy rule `no-whatsapp-yet` denies: WhatsApp sends need legal sign-off first")
        .run();
    assert!(o.stdout.contains("Plan: "), "the whole plan is printed first: {}", o.stdout);
    let (o, t) = t.args(["plan", "--format", "json"]).status(1).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json plan");
    let wa = v["targets"][0]["notifications"]
        .as_array()
        .expect("list")
        .iter()
        .find(|n| n["key"] == "wa")
        .expect("wa")
        .clone();
    assert_eq!(wa["policy"]["decision"], "deny");
    assert_eq!(wa["policy"]["rules"][0]["why"], "channel whatsapp");
    let (o, t) = t.args(["plan", "--format", "markdown"]).status(1).stdout_has("Denied by the policy").run();
    assert!(o.stdout.contains("no\\-whatsapp\\-yet"), "{}", o.stdout);
    let (_, _) = t
        .args(["apply", "--auto-approve", "--override-policy", "--reason", "please"])
        .status(1)
        .stderr_has("the policy denies this apply; nothing was sent")
        .run();
    assert!(emu.deliveries().is_empty(), "nothing sent, not even the allowed notifications");
}

#[test]
fn require_holds_only_its_notification_until_the_final_head_has_enough_approvals() {
    let emu = Emulator::start(&[]);
    let at = "2026-11-24T08:00:00Z";
    let valid = review("bob", "APPROVED", HEAD, at);
    // Each fixture leaves `big` one approval short: one valid approval (bob) plus one that must
    // count for nothing.
    let fixtures = [
        ("an approval on an older commit", review("carol", "APPROVED", OLD, at), "approved an older commit"),
        ("self-approval", review("alice", "APPROVED", HEAD, at), "the author cannot approve"),
        ("a reviewer outside the allowed set", review("mallory", "APPROVED", HEAD, at), "not among the allowed"),
        ("a bot", review("renovate[bot]", "APPROVED", HEAD, at), "a bot"),
        ("two approvals from one person", review("bob", "APPROVED", HEAD, "2026-11-24T08:30:00Z"), "1 counted (bob"),
        (
            "a later request for changes",
            review("erin", "CHANGES_REQUESTED", HEAD, "2026-11-24T08:30:00Z"),
            "requests changes",
        ),
    ];
    for (i, (case, extra, why)) in fixtures.into_iter().enumerate() {
        let mut reviews = vec![valid.clone(), extra];
        if case.contains("later request") {
            reviews.insert(0, review("erin", "APPROVED", HEAD, at));
        }
        let (ivr, slack) = (IVR.replace("@x.com", &format!("@{i}.com")), SLACK.replace("s1", &format!("s1-{i}")));
        let (o, _) = repo(&emu)
            .manifest("big.yaml", &ivr)
            .manifest("small.yaml", &slack)
            .file("approvals.json", &approvals(&reviews))
            .args(["apply", "--auto-approve", "--approvals", "approvals.json"])
            .status(3)
            .stderr_has("awaiting approval, not sent: `big`")
            .stderr_has(why)
            .run();
        assert_eq!(delivered(&emu, &format!("ivr:a@{i}.com")), 0, "{case}: held back\n{}", o.stderr);
        assert_eq!(delivered(&emu, &format!("slack:s1-{i}")), 1, "{case}: the others are sent");
    }
    // Two distinct allowed people on the final head commit: sent; the plan JSON names the rule.
    let reviews =
        [valid, review("carol", "APPROVED", HEAD, at), review("bob", "COMMENTED", HEAD, "2026-11-24T08:40:00Z")];
    let t =
        repo(&emu).manifest("big.yaml", &IVR.replace("@x.com", "@ok.com")).file("approvals.json", &approvals(&reviews));
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    assert!(o.stdout.contains("\"effect\": \"require\""), "{}", o.stdout);
    let (_, t) = t
        .args(["apply", "--auto-approve", "--approvals", "approvals.json"])
        .status(0)
        .stderr_has("policy rule `big-ivr` approved by bob, carol")
        .run();
    assert_eq!(delivered(&emu, "ivr:a@ok.com"), 1);
    // A push without a pull request has no approvals.
    let push = serde_json::json!({"formatVersion": 1, "commit": MERGE, "pullRequest": null}).to_string();
    t.manifest("big.yaml", &IVR.replace("@x.com", "@push.com"))
        .file("push.json", &push)
        .args(["apply", "--auto-approve", "--approvals", "push.json"])
        .status(3)
        .stderr_has("pushed without a pull request")
        .run();
    assert_eq!(delivered(&emu, "ivr:a@push.com"), 0);
}

#[test]
fn a_missing_or_malformed_approvals_file_refuses_the_apply_whole() {
    let emu = Emulator::start(&[]);
    let good = approvals(&[review("bob", "APPROVED", HEAD, "2026-11-24T08:00:00Z")]);
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "cannot read"),
        ("not JSON", Some("{\"formatVersion\": 1,".into()), "not an approvals file"),
        ("an unknown field", Some(good.replacen('{', "{\"approvedBy\": \"everyone\",", 1)), "unknown field"),
        ("a short commit id", Some(good.replace(HEAD, "abc123")), "headCommit"),
        ("a hostile login", Some(good.replace("\"bob\"", "\"bob\\u001b[31m\"")), "not a GitHub login"),
        ("another commit's reviews", Some(good.replace(MERGE, OLD)), "is being applied"),
        ("a newer format", Some(good.replace("\"formatVersion\":1", "\"formatVersion\":2")), "formatVersion 2"),
        ("a date that is no date", Some(good.replace("2026-11-24T08:00:00Z", "yesterday")), "submittedAt"),
    ];
    for (case, content, why) in cases {
        let mut t = repo(&emu);
        if let Some(c) = &content {
            t = t.file("approvals.json", c);
        }
        let (o, _) = t
            .args(["apply", "--auto-approve", "--approvals", "approvals.json"])
            .status(1)
            .stderr_has("nothing was sent")
            .stderr_has(why)
            .run();
        assert!(!o.stderr.contains('\u{1b}'), "{case}: no raw control characters");
        assert!(emu.deliveries().is_empty(), "{case}: nothing sent");
    }
    let (_, _) = repo(&emu)
        .sparse("approvals.json", b"{", 64 * 1024 * 1024)
        .args(["apply", "--auto-approve", "--approvals", "approvals.json"])
        .status(1)
        .stderr_has("nothing was sent")
        .run();
    assert!(emu.deliveries().is_empty(), "a huge file is refused unread");
}

#[test]
fn the_override_sends_despite_require_and_is_recorded_then_shown_by_the_next_plans() {
    let emu = Emulator::start(&[]);
    let (_, t) = repo(&emu)
        .env("GITHUB_ACTOR", "octocat")
        .env("KORE_NOTIFY_RUN_URL", "https://github.com/octo-org/notifications/actions/runs/42")
        .args(["apply", "--auto-approve", "--override-policy", "--reason", "outage notice, approvers away"])
        .status(0)
        .stderr_has("Policy overridden: `big` is sent despite rule(s) big-ivr")
        .run();
    assert_eq!(delivered(&emu, "ivr:"), 3);
    assert_eq!(delivered(&emu, "slack:"), 2);
    let state = std::fs::read_to_string(t.state_path()).expect("state");
    for part in
        ["\"overrides\"", "\"actor\": \"octocat\"", "outage notice, approvers away", "actions/runs/42", "big-ivr"]
    {
        assert!(state.contains(part), "the state records {part}:\n{state}");
    }
    let t = t.manifest("big.yaml", &IVR.replace("hi", "hello"));
    let (_, t) =
        t.args(["plan"]).status(0).stdout_has("last sent despite the policy (override of big-ivr) by octocat").run();
    let (o, _) = t.args(["plan", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.contains("override of big\\-ivr"), "{}", o.stdout);
    // Without --reason the override is refused before anything runs.
    let (_, _) = repo(&emu).args(["apply", "--auto-approve", "--override-policy"]).stderr_has("--reason").run();
}

#[test]
fn a_policy_change_heads_the_comment_with_the_rules_before_and_after() {
    let emu = Emulator::start(&[]);
    let t = repo(&emu).file("base/kore-notify.yaml", &config(&emu.url)).manifest("small.yaml", SLACK);
    let base = t.path().join("base").display().to_string();
    let (o, t) = t.args(["plan", "--format", "markdown", "--compare-to", &base]).status(0).run();
    let first = o.stdout.find("This pull request changes the policy").expect("flagged");
    assert!(first < o.stdout.find("On merge").expect("headline"), "flagged first:\n{}", o.stdout);
    assert!(o.stdout.contains("- (no policy: everything allowed)"), "{}", o.stdout);
    assert!(o.stdout.contains("+ big-ivr: when channel: ivr, recipients.total: "), "{}", o.stdout);
    let (o, t) = t.args(["plan", "--format", "json", "--compare-to", &base]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["policyChange"]["before"], serde_json::json!([]));
    assert_eq!(v["policyChange"]["after"].as_array().map(Vec::len), Some(2));
    // The same policy on both sides: nothing flagged.
    let t = t.file("base/kore-notify.yaml", &format!("{}{POLICY}", config(&emu.url)));
    let (o, _) = t.args(["plan", "--format", "markdown", "--compare-to", &base]).status(0).run();
    assert!(!o.stdout.contains("changes the policy"), "{}", o.stdout);
}

#[test]
fn validate_names_file_line_field_and_fix_for_every_policy_mistake() {
    let cases = [
        ("when: {chanel: ivr}\n    deny: x", "policy[0].when.chanel", "did you mean `channel`"),
        (
            "when: {recipients: {total: \">1k\"}}\n    deny: x",
            "policy[0].when.recipients.total",
            "a bare number means at least",
        ),
        ("warn: careful\n    deny: x", "policy[0].deny", "exactly one effect"),
        ("require: {approvals: 2, from: []}", "policy[0].require.from", "nobody could approve"),
        ("require: {approvals: 0, from: [bob]}", "policy[0].require.approvals", "from 1 to 20"),
        ("require: {approvals: 1, from: [\"not a login\"]}", "policy[0].require.from[0]", "org/team-slug"),
        ("when: {outsideBusinessHours: true}\n    deny: x", "policy[0].when.outsideBusinessHours", "businessHours"),
        ("when: {channel: sms}\n    deny: x", "policy[0].when.channel", "allowed: msteams"),
        ("when: {action: sned}\n    deny: x", "policy[0].when.action", "did you mean `send`"),
        ("allow: false", "policy[0].allow", "allow: true"),
        ("when: {audience: [csv, file]}\n    deny: x", "policy[0].when.audience[1]", "allowed: inline, csv"),
    ];
    for (rule, field, fix) in cases {
        let policy = format!("policy:\n  - name: r\n    {rule}\n");
        let (o, _) = Test::repo("http://127.0.0.1:9")
            .file("kore-notify.yaml", &format!("{}{policy}", config("http://127.0.0.1:9")))
            .manifest("a.yaml", SLACK)
            .args(["validate"])
            .status(1)
            .stderr_has("kore-notify.yaml:")
            .stderr_has(field)
            .stderr_has(fix)
            .run();
        assert!(
            o.stderr.contains(":10:") || o.stderr.contains(":11:") || o.stderr.contains(":12:"),
            "{rule}: a line in the policy:\n{}",
            o.stderr
        );
    }
    let (_, _) = Test::repo("http://127.0.0.1:9")
        .file(
            "kore-notify.yaml",
            &format!("{}businessHours: {{utcOffset: Europe/Paris}}\n", config("http://127.0.0.1:9")),
        )
        .manifest("a.yaml", SLACK)
        .args(["validate"])
        .status(1)
        .stderr_has("businessHours.utcOffset")
        .stderr_has("zone name")
        .run();
}

#[test]
fn outside_business_hours_is_judged_at_the_plans_time() {
    let hours = "businessHours: {utcOffset: \"+01:00\", days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"18:00\"}\npolicy:\n  - name: night\n    when: {outsideBusinessHours: true}\n    warn: this lands outside business hours\n";
    let t = Test::repo("http://127.0.0.1:9")
        .file("kore-notify.yaml", &format!("{}{hours}", config("http://127.0.0.1:9")))
        .manifest("a.yaml", SLACK);
    // NOW is a Tuesday, 10:00 at +01:00: inside.
    let (o, t) = t.args(["plan"]).status(0).run();
    assert!(!o.stdout.contains("night"), "{}", o.stdout);
    let (_, _) = t
        .env("KORE_NOTIFY_NOW", "2026-11-24T21:00:00Z")
        .args(["plan"])
        .status(0)
        .stdout_has("policy rule `night` warns: this lands outside business hours")
        .stdout_has("mon,tue,wed,thu,fri 09:00-18:00 UTC+01:00")
        .run();
}

#[test]
fn init_writes_a_commented_sample_policy_that_validates_once_uncommented() {
    let (_, t) = Test::new().args(["init", "repo"]).status(0).run();
    let path = t.path().join("repo/kore-notify.yaml");
    let text = std::fs::read_to_string(&path).expect("config");
    assert!(text.contains("# policy:") && text.contains("#     require: {approvals: 2"), "{text}");
    // Uncommented from `# policy:` to `# businessHours:` (the sample targets after it stay commented).
    let (mut sample, mut inside) = (String::new(), false);
    for l in text.lines() {
        inside |= l.starts_with("# policy:");
        let l = match l.strip_prefix("# ") {
            Some(rest) if inside && (rest.starts_with("policy:") || rest.starts_with("  ")) => rest,
            Some(rest) if inside && rest.starts_with("businessHours:") => {
                inside = false;
                rest
            }
            _ => l,
        };
        sample.push_str(l);
        sample.push('\n');
    }
    assert!(sample.contains("\npolicy:\n  - name: big-send"), "{sample}");
    let (_, t) = t.file("repo/kore-notify.yaml", &sample).cwd("repo").args(["validate"]).status(0).run();
    // The policy applies at once: the sample's csv rule is not triggered by init's inline audiences.
    t.args(["plan"]).status(0).run();
}

/// Two targets (each its own emulator), business hours set as a default and overridden by one.
fn two_targets(staging: &str, production: &str, hours: &str, policy: &str) -> String {
    let target = |name: &str, host: &str, extra: &str| {
        format!(
            "  {name}:\n    host: {host}\n    botId: st-{name}\n    clientId: ${{KORE_CLIENT_ID}}\n    clientSecret: ${{KORE_CLIENT_SECRET}}\n    state: .kore-notify/{name}.json\n{extra}"
        )
    };
    format!(
        "{hours}targets:\n{}{}manifests: [notifications]\n{policy}",
        target("staging", staging, ""),
        target("production", production, "    businessHours: {utcOffset: \"-05:00\"}\n")
    )
}

const TWO_TARGET_POLICY: &str = "policy:
  - name: prod-big
    when: {target: production, recipients: {total: \">2\"}}
    require: {approvals: 1, from: [erin]}
  - name: night
    when: {outsideBusinessHours: true}
    warn: this lands outside business hours
";

#[test]
fn each_target_is_judged_with_its_own_name_and_business_hours() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let hours = "businessHours: {utcOffset: \"+01:00\", from: \"09:00\", to: \"18:00\"}\n";
    let t = Test::new()
        .file("kore-notify.yaml", &two_targets(&st.url, &pr.url, hours, TWO_TARGET_POLICY))
        .manifest("big.yaml", IVR)
        .manifest("small.yaml", SLACK)
        .env("GITHUB_SHA", MERGE);
    // NOW is a Tuesday, 09:00 UTC: 10:00 on staging (the default hours), 04:00 on production.
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json plan");
    let verdict = |target: usize, key: &str| {
        let list = v["targets"][target]["notifications"].as_array().expect("list");
        list.iter().find(|n| n["key"] == key).map(|n| n["policy"].clone()).expect("planned")
    };
    assert_eq!(v["targets"][0]["name"], "staging");
    assert_eq!(verdict(0, "big"), serde_json::Value::Null, "staging is neither production nor outside its hours");
    assert_eq!(verdict(1, "big")["decision"], "require");
    let big = verdict(1, "big");
    let rules: Vec<&str> = big["rules"].as_array().expect("rules").iter().filter_map(|r| r["rule"].as_str()).collect();
    assert_eq!(rules, ["prod-big", "night"]);
    assert_eq!(verdict(1, "big")["rules"][0]["why"], "target production; recipients.total 3 >2");
    assert_eq!(verdict(1, "small")["decision"], "warn");
    let (o, t) = t.args(["plan", "--format", "markdown"]).status(0).run();
    let needs = o.stdout.find("Needs approvals").expect("flagged");
    assert!(needs > o.stdout.find("#### Target <code>production</code>").expect("section"), "{}", o.stdout);
    assert_eq!(o.stdout.matches("Needs approvals").count(), 1, "{}", o.stdout);
    // Staging sends everything; production holds the big one until it has its approval.
    let (_, t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    assert_eq!(st.deliveries().len(), 5);
    let (_, t) = t
        .args(["apply", "--target", "production", "--auto-approve"])
        .status(3)
        .stderr_has("awaiting approval, not sent: `big`: rule `prod-big` needs 1 approval(s) from erin")
        .run();
    assert_eq!(pr.deliveries().len(), 2, "only the small one: {:?}", pr.deliveries());
    let file = approvals(&[review("erin", "APPROVED", HEAD, "2026-11-24T08:50:00Z")]);
    let (_, _) = t
        .file("approvals.json", &file)
        .args(["apply", "--target", "production", "--auto-approve", "--approvals", "approvals.json"])
        .status(0)
        .stderr_has("policy rule `prod-big` approved by erin")
        .run();
    assert_eq!(pr.deliveries().len(), 5);
    assert_eq!(st.deliveries().len(), 5, "staging untouched by production's apply");
}

#[test]
fn validate_checks_the_policy_against_the_targets() {
    let cases = [
        // A misspelt target would make the rule judge nothing.
        (
            "",
            "  - name: r\n    when: {target: prod}\n    deny: x\n",
            "policy[0].when.target",
            "no target `prod` in this config",
            "name one of its targets: staging, production",
        ),
        // Without a default, staging has no business hours: the rule could never match there.
        (
            "",
            "  - name: r\n    when: {outsideBusinessHours: true}\n    deny: x\n",
            "policy[0].when.outsideBusinessHours",
            "needs the business hours of target(s) staging",
            "or to targets.staging",
        ),
    ];
    for (hours, rules, field, message, fix) in cases {
        let text = two_targets("http://127.0.0.1:9", "http://127.0.0.1:9", hours, &format!("policy:\n{rules}"));
        let (_, _) = Test::new()
            .file("kore-notify.yaml", &text)
            .manifest("a.yaml", SLACK)
            .args(["validate"])
            .status(1)
            .stderr_has(field)
            .stderr_has(message)
            .stderr_has(fix)
            .run();
    }
    // Scoped to production (which has hours), or with a default for every target: valid.
    for (hours, when) in [
        ("", "{target: production, outsideBusinessHours: true}"),
        ("businessHours: {utcOffset: UTC}\n", "{outsideBusinessHours: true}"),
    ] {
        let rules = format!("policy:\n  - name: r\n    when: {when}\n    warn: x\n");
        let (_, _) = Test::new()
            .file("kore-notify.yaml", &two_targets("http://127.0.0.1:9", "http://127.0.0.1:9", hours, &rules))
            .manifest("a.yaml", SLACK)
            .args(["validate"])
            .status(0)
            .run();
    }
}

/// A rule on reach judges everyone the content reaches, not the slice one apply sends: a canary
/// rollout's first wave of 2 is held by a `total > 5` rule because the rollout reaches 10.
#[test]
fn a_reach_rule_cannot_be_passed_one_wave_at_a_time() {
    let emu = Emulator::start(&[]);
    let policy =
        "policy:\n  - name: big\n    when: {recipients: {total: \">5\"}}\n    require: {approvals: 1, from: [erin]}\n";
    let ids: Vec<String> = (0..10).map(|i| format!("u{i}@x.com")).collect();
    let manifest = format!(
        "key: wave\nchannel: slack\ncontent: {{type: text, value: hi}}\nrollout: {{waves: [2, \"100%\"], observe: 1h}}\nidentities: [{}]\n",
        ids.join(", ")
    );
    let t = Test::new()
        .file("kore-notify.yaml", &format!("{}{policy}", config(&emu.url)))
        .manifest("wave.yaml", &manifest)
        .env("GITHUB_SHA", MERGE);
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let n = &v["targets"][0]["notifications"][0];
    assert_eq!(n["sends"].as_array().map(Vec::len), Some(2), "one wave of 2: {n}");
    assert!(n.to_string().contains("big"), "the rule triggers on the rollout's 10: {n}");
    let (_, _) = t.args(["apply", "--auto-approve"]).status(3).stderr_has("awaiting approval").run();
    assert!(emu.deliveries().is_empty(), "the first wave waits for the approval: {:?}", emu.deliveries());
}
