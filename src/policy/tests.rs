use super::*;

fn rule(name: &str, when: When, effect: Effect) -> Rule {
    Rule { name: name.into(), when, effect }
}

fn ivr_facts(total: u64) -> Facts {
    Facts {
        target: "default".into(),
        channel: "ivr".into(),
        api: "v2".into(),
        kinds: vec![Kind::Send],
        new: total,
        total,
        inline: true,
        ..Facts::default()
    }
}

#[test]
fn thresholds_parse_and_hold() {
    let table = [
        (">1000", 1001, true),
        (">1000", 1000, false),
        (">=1000", 1000, true),
        ("1000", 1000, true),
        ("1000", 999, false),
        ("<10", 9, true),
        ("<= 10", 10, true),
        ("=3", 3, true),
        ("=3", 4, false),
    ];
    for (text, v, want) in table {
        let t = parse::threshold(text).unwrap_or_else(|| panic!("{text} parses"));
        assert_eq!(t.holds(v), want, "{text} on {v}");
    }
    for bad in [">1k", "", ">", "1,000", "-1", ">=-2", "1e3", "many", "99999999999999999"] {
        assert_eq!(parse::threshold(bad), None, "{bad}");
    }
}

#[test]
fn deny_beats_require_beats_warn_and_every_match_is_listed() {
    let big = When { recipients: vec![(Measure::Total, Threshold { op: Op::Gt, n: 1000 })], ..When::default() };
    let ivr = When { channel: vec!["ivr".into()], ..When::default() };
    let wa = When { channel: vec!["whatsapp".into()], ..When::default() };
    let policy = Policy {
        rules: vec![
            rule("note", When::default(), Effect::Warn("careful".into())),
            rule("big", big, Effect::Require { approvals: 2, from: vec!["octo-org/comms".into()] }),
            rule("no-wa", wa, Effect::Deny("not yet".into())),
            rule("ivr-deny", ivr, Effect::Deny("no ivr".into())),
        ],
    };
    let small = evaluate(&policy, &Facts { channel: "slack".into(), ..ivr_facts(3) }).expect("warn matches all");
    assert_eq!(small.decision, Decision::Warn);
    assert_eq!(small.rules.len(), 1);
    let large = evaluate(&policy, &Facts { channel: "slack".into(), ..ivr_facts(5000) }).expect("matches");
    assert_eq!(large.decision, Decision::Require);
    assert!(large.rules[1].why.contains("recipients.total 5000 >1000"), "{:?}", large.rules[1]);
    let denied = evaluate(&policy, &ivr_facts(5000)).expect("matches");
    assert_eq!(denied.decision, Decision::Deny);
    assert_eq!(denied.rules.iter().map(|r| r.rule.as_str()).collect::<Vec<_>>(), ["note", "big", "ivr-deny"]);
    assert_eq!(evaluate(&Policy::default(), &ivr_facts(1)), None, "no policy: allowed");
}

#[test]
fn allow_exempts_from_later_warn_and_require_never_from_deny() {
    let slack = When { channel: vec!["slack".into()], ..When::default() };
    let policy = Policy {
        rules: vec![
            rule("slack-ok", slack, Effect::Allow),
            rule("all", When::default(), Effect::Require { approvals: 1, from: vec!["bob".into()] }),
            rule("stop", When::default(), Effect::Deny("frozen".into())),
        ],
    };
    let v = evaluate(&policy, &Facts { channel: "slack".into(), ..ivr_facts(5) }).expect("matches");
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(v.rules[1].exempted_by.as_deref(), Some("slack-ok"));
    assert!(!v.rules[1].requires());
    let without_deny = Policy { rules: policy.rules[..2].to_vec() };
    let v = evaluate(&without_deny, &Facts { channel: "slack".into(), ..ivr_facts(5) }).expect("matches");
    assert_eq!(v.decision, Decision::Allow);
    let v = evaluate(&without_deny, &ivr_facts(5)).expect("matches");
    assert_eq!(v.decision, Decision::Require);
}

#[test]
fn every_condition_can_fail_the_match() {
    let base = Facts {
        kinds: vec![Kind::Resend],
        second: 7,
        csv: true,
        inline: false,
        content_changed: true,
        outside_business_hours: Some(true),
        ..ivr_facts(7)
    };
    let conditions = [
        When { target: vec!["prod".into()], ..When::default() },
        When { channel: vec!["slack".into()], ..When::default() },
        When { api: vec!["v1".into()], ..When::default() },
        When { action: vec![Kind::Send, Kind::Retry], ..When::default() },
        When { recipients: vec![(Measure::Second, Threshold { op: Op::Gt, n: 7 })], ..When::default() },
        When { audience: vec![Source::Inline], ..When::default() },
        When { content_changed: Some(false), ..When::default() },
        When { outside_business_hours: Some(false), ..When::default() },
    ];
    for when in conditions {
        let p = Policy { rules: vec![rule("r", when.clone(), Effect::Deny("x".into()))] };
        assert_eq!(evaluate(&p, &base), None, "{when:?} should not match");
    }
    let all = When {
        target: vec!["DEFAULT".into()],
        channel: vec!["ivr".into()],
        api: vec!["v2".into()],
        action: vec![Kind::Resend],
        recipients: vec![(Measure::Second, Threshold { op: Op::Ge, n: 7 })],
        audience: vec![Source::Csv],
        content_changed: Some(true),
        outside_business_hours: Some(true),
    };
    let p = Policy { rules: vec![rule("r", all, Effect::Deny("x".into()))] };
    let v = evaluate(&p, &base).expect("every condition holds");
    assert!(v.rules[0].why.contains("audience csv"), "{}", v.rules[0].why);
    assert!(describe(&p)[0].starts_with("r: when target: DEFAULT, channel: ivr"), "{:?}", describe(&p));
}

const HEAD: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const OLD: &str = "cccccccccccccccccccccccccccccccccccccccc";
const MERGE: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn review(login: &str, state: &str, commit: &str, at: &str) -> serde_json::Value {
    serde_json::json!({"login": login, "state": state, "commit": commit, "submittedAt": at})
}

fn file(reviews: Vec<serde_json::Value>) -> ApprovalsFile {
    let v = serde_json::json!({
        "formatVersion": 1, "commit": MERGE,
        "pullRequest": {"number": 7, "author": "alice", "headCommit": HEAD, "mergeCommit": MERGE, "reviews": reviews},
        "teams": {"octo-org/comms": ["bob", "carol", "dan", "ci[bot]"]}
    });
    serde_json::from_value(v).expect("approvals file")
}

#[test]
fn approvals_count_by_github_semantics() {
    let from = vec!["octo-org/comms".to_string(), "erin".to_string()];
    let t = |h: u32| format!("2026-11-24T0{h}:00:00Z");
    // (reviews, who counts)
    let table: Vec<(Vec<serde_json::Value>, Vec<&str>)> = vec![
        (vec![review("bob", "APPROVED", HEAD, &t(1))], vec!["bob"]),
        (vec![review("bob", "APPROVED", OLD, &t(1))], vec![] /* stale: before a later push */),
        (vec![review("alice", "APPROVED", HEAD, &t(1))], vec![] /* the author */),
        (vec![review("ci[bot]", "APPROVED", HEAD, &t(1))], vec![] /* a bot by login */),
        (
            vec![
                serde_json::json!({"login": "carol", "type": "Bot", "state": "APPROVED", "commit": HEAD, "submittedAt": t(1)}),
            ],
            vec![],
        ),
        (vec![review("mallory", "APPROVED", HEAD, &t(1))], vec![] /* not allowed */),
        (vec![review("erin", "APPROVED", HEAD, &t(1))], vec!["erin"]),
        (vec![review("bob", "APPROVED", HEAD, &t(1)), review("BOB", "APPROVED", HEAD, &t(2))], vec!["bob"]),
        (vec![review("bob", "APPROVED", HEAD, &t(1)), review("bob", "CHANGES_REQUESTED", HEAD, &t(2))], vec![]),
        (vec![review("bob", "APPROVED", HEAD, &t(1)), review("bob", "DISMISSED", HEAD, &t(2))], vec![]),
        (vec![review("bob", "APPROVED", HEAD, &t(2)), review("bob", "CHANGES_REQUESTED", HEAD, &t(1))], vec!["bob"]),
        (vec![review("bob", "APPROVED", HEAD, &t(1)), review("bob", "COMMENTED", HEAD, &t(2))], vec!["bob"]),
        (vec![review("bob", "APPROVED", OLD, &t(1)), review("bob", "APPROVED", HEAD, &t(2))], vec!["bob"]),
        (vec![review("bob", "APPROVED", HEAD, &t(1)), review("dan", "APPROVED", HEAD, &t(1))], vec!["bob", "dan"]),
    ];
    for (reviews, want) in table {
        let f = file(reviews.clone());
        let got = count_approvals(Some(&f), &from);
        let mut who: Vec<String> = got.approvers.iter().map(|l| l.to_ascii_lowercase()).collect();
        who.sort();
        assert_eq!(who, want, "{reviews:?}");
    }
    assert_eq!(count_approvals(None, &from), Counted::default(), "no file: no approvals");
    let mut push = file(vec![review("bob", "APPROVED", HEAD, "2026-11-24T01:00:00Z")]);
    push.pull_request = None;
    assert!(count_approvals(Some(&push), &from).approvers.is_empty(), "a push without a pull request");
}
