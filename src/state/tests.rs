use super::*;

#[test]
fn snapshot_roundtrip_and_tamper_detection() {
    let mut s = State::new();
    s.notifications.insert(
        "k".into(),
        NotificationState {
            channel: Channel::Slack,
            api: Api::V1,
            content: StoredContent { kind: "text".into(), value: "hi".into() },
            requests: vec![],
            deliveries: vec![],
            recipients: BTreeMap::new(),
            orphaned_since: None,
            origin: None,
            contents: Vec::new(),
            overrides: vec![Override {
                gate: "policy".into(),
                content: "sha256:00".into(),
                rules: vec!["big-ivr".into()],
                actor: "octocat".into(),
                reason: "outage notice".into(),
                run_url: Some("https://github.com/o/r/actions/runs/1".into()),
                at: "2026-11-24T09:00:00Z".into(),
            }],
            test_sends: Vec::new(),
            rollout: None,
        },
    );
    let bytes = s.to_bytes();
    assert_eq!(State::from_bytes(&bytes).ok(), Some(s.clone()));
    let tampered = String::from_utf8_lossy(&bytes).replace("\"hi\"", "\"ho\"");
    assert!(State::from_bytes(tampered.as_bytes()).is_err());
    assert!(State::from_bytes(&bytes[..bytes.len() / 2]).is_err());
    let newer = String::from_utf8_lossy(&bytes).replace("\"formatVersion\": 3", "\"formatVersion\": 9");
    assert!(State::from_bytes(newer.as_bytes()).is_err_and(|e| e.to_string().contains("newer")));
}

#[test]
fn format_1_is_read_with_shortened_hashes_and_written_as_the_current_format() {
    let v1 = include_str!("../../tests/fixtures/state-v1.json");
    let s = State::from_bytes(v1.as_bytes()).expect("format 1 reads");
    assert_eq!(s.format_version, FORMAT_VERSION);
    let n = &s.notifications["k"];
    assert_eq!(n.recipients.len(), 2);
    for (h, r) in &n.recipients {
        assert_eq!(*h, h.normalized());
        assert!(r.fp.is_some_and(|f| f == f.normalized()) && r.req == Some(0));
    }
    let h: RecipientHash = "2f4c2ccd86d4f79d27e40e047af6f9d3".parse().expect("hex");
    assert!(n.recipients.contains_key(&h.normalized()));
    let v3 = s.to_bytes();
    let text = String::from_utf8_lossy(&v3);
    assert!(text.contains("\t\"formatVersion\": 3") && !text.contains("2f4c2ccd"), "{text}");
    assert_eq!(State::from_bytes(&v3).ok(), Some(s));
}

#[test]
fn orphan_dates_and_tombstones_are_entries_and_never_drop_an_unknown_request() {
    let content = StoredContent { kind: "text".into(), value: "hi".into() };
    let mut s = State::new();
    let intent = |req: u32, at: &str| Entry::Intent {
        key: "k".into(),
        req,
        batch: format!("b{req}"),
        channel: Channel::Slack,
        api: Api::V1,
        content: content.clone(),
        recipients: vec![(RecipientHash([req as u8 + 1; 16]), Fingerprint([9; 16]))],
        at: at.into(),
    };
    let outcome = |req: u32, outcome: Outcome| Entry::Outcome {
        key: "k".into(),
        req,
        outcome,
        request_id: None,
        status: None,
        error: None,
    };
    s.replay(&intent(0, "2026-01-01T00:00:00Z")).expect("intent");
    s.replay(&outcome(0, Outcome::Accepted)).expect("outcome");
    s.replay(&intent(1, "2026-02-01T00:00:00Z")).expect("intent");
    s.replay(&outcome(1, Outcome::Unknown)).expect("outcome");
    let since = Some("2026-03-01T00:00:00Z".to_string());
    s.replay(&Entry::Orphan { key: "k".into(), since: since.clone() }).expect("orphan");
    assert_eq!(s.notifications["k"].orphaned_since, since);
    let day = std::time::Duration::from_secs(86_400);
    let later = crate::rfc3339::parse("2027-01-01T00:00:00Z").expect("time");
    assert!(s.due_for_tombstone(day, later, ("me", false)).is_empty(), "an unknown request holds it");
    let retire = Entry::Retire { key: "k".into(), at: "2027-01-01T00:00:00Z".into() };
    assert!(s.replay(&retire).is_err() && s.notifications.contains_key("k"));
    s.replay(&Entry::Resolve { key: "k".into(), sent: true, req: Some(1) }).expect("resolve");
    assert_eq!(s.due_for_tombstone(day, later, ("me", false)), vec!["k".to_string()]);
    assert!(
        s.due_for_tombstone(day, crate::rfc3339::parse("2026-03-01T12:00:00Z").expect("time"), ("me", false))
            .is_empty()
    );
    s.replay(&retire).expect("retire");
    let t = &s.tombstones["k"];
    assert!(!s.notifications.contains_key("k"));
    assert_eq!((t.requests, t.recipients), (2, 2));
    assert_eq!(t.first_sent.as_deref(), Some("2026-01-01T00:00:00Z"));
    assert_eq!(t.last_sent.as_deref(), Some("2026-02-01T00:00:00Z"));
    assert_eq!(t.orphaned_since, "2026-03-01T00:00:00Z");
    let again = State::from_bytes(&s.to_bytes()).expect("roundtrip");
    assert_eq!(again.tombstones, s.tombstones);
    s.replay(&Entry::Revive { key: "k".into() }).expect("revive");
    assert!(s.tombstones.is_empty());
}

/// The file store stamps what it writes (the journal's header, the lock's holder) with the clock
/// it was given, not the system's.
#[test]
fn the_file_store_stamps_with_its_clock() {
    #[derive(Debug)]
    struct NoEnv;
    impl crate::interp::Env for NoEnv {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }
    let at = crate::rfc3339::parse("2031-05-06T07:08:09Z").expect("time");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    let store = FileStore::new(&path, &NoEnv, Clock::Fixed(at));
    let mut session = store.open("kore-notify test").expect("open");
    session.record(&Entry::Remove { key: "k".into() }).expect("record");
    let stamp = "\"2031-05-06T07:08:09Z\"";
    let journal = std::fs::read_to_string(Paths::new(&path).journal).expect("journal");
    assert!(journal.lines().next().is_some_and(|l| l.contains(&format!("\"at\":{stamp}"))), "{journal}");
    let holder = std::fs::read_to_string(Paths::new(&path).lock).expect("lock");
    assert!(holder.contains(&format!("\"started\":{stamp}")), "{holder}");
}

/// Whose a notification is: its recorded origin decides; without one, a state file is this
/// repository's own and a shared database's is nobody's to retire.
#[test]
fn declared_by_table() {
    let mut n = State::new();
    n.replay(&Entry::Record {
        key: "k".into(),
        channel: Channel::Slack,
        api: Api::V1,
        content: StoredContent { kind: "text".into(), value: "hi".into() },
        recipients: vec![],
        at: "2026-01-01T00:00:00Z".into(),
    })
    .expect("record");
    let at = |s: &State, origin: &str, shared: bool| s.notifications["k"].declared_by(origin, shared);
    assert_eq!(at(&n, "me", false), Declared::Here);
    assert_eq!(at(&n, "me", true), Declared::Unknown);
    n.replay(&Entry::Claim { key: "k".into(), origin: "other".into() }).expect("claim");
    assert_eq!(at(&n, "me", false), Declared::Here, "a state file is its repository's, whoever claimed");
    assert_eq!(at(&n, "me", true), Declared::Elsewhere);
    assert_eq!(at(&n, "other", true), Declared::Here);
    assert_eq!(n.claims("other", ["k", "absent"].into_iter()).len(), 0);
    assert_eq!(n.claims("me", ["k", "absent"].into_iter()).len(), 1);
    n.replay(&Entry::Claim { key: "absent".into(), origin: "me".into() }).expect("a claim of nothing is nothing");
    assert!(!n.notifications.contains_key("absent"));
}

/// The lines of `b` not in `a`, and of `a` not in `b` (the checksum line left out, and JSON's
/// separating commas: the line before one added at the end of a list gains one).
fn line_diff(a: &[u8], b: &[u8]) -> (Vec<String>, Vec<String>) {
    let lines = |x: &[u8]| -> Vec<String> {
        let text = String::from_utf8_lossy(x);
        text.lines().filter(|l| !l.contains("\"checksum\"")).map(|l| l.trim_end_matches(',').to_string()).collect()
    };
    let (a, b) = (lines(a), lines(b));
    let added = b.iter().filter(|l| !a.contains(l)).cloned().collect();
    let removed = a.iter().filter(|l| !b.contains(l)).cloned().collect();
    (added, removed)
}

/// The class: in a state where every recipient's delivery is reported, a change to any one
/// recipient's reported delivery changes that recipient's line only (and adds, or drops, the one
/// table line of a text that appears, or is no longer used); every state round-trips.
#[test]
fn a_change_to_one_recipients_delivery_is_a_one_line_diff() {
    const OK: &str = "Notification has been sent successfully";
    let mut s = State::new();
    let people: Vec<(RecipientHash, Fingerprint)> = (0..30u8)
        .map(|i| (RecipientHash([i.wrapping_mul(37); 16]).normalized(), Fingerprint([i; 16]).normalized()))
        .collect();
    s.replay(&Entry::Intent {
        key: "k".into(),
        req: 0,
        batch: "b".into(),
        channel: Channel::Slack,
        api: Api::V1,
        content: StoredContent { kind: "text".into(), value: "hi".into() },
        recipients: people.clone(),
        at: "t".into(),
    })
    .expect("intent");
    let accepted = Entry::Outcome {
        key: "k".into(),
        req: 0,
        outcome: Outcome::Accepted,
        request_id: Some("ds-1".into()),
        status: None,
        error: None,
    };
    s.replay(&accepted).expect("outcome");
    let status = |who: &[RecipientHash], word: &str, comment: &str| Entry::Status {
        key: "k".into(),
        req: 0,
        status: "SUCCESS".into(),
        delivered: 30,
        failed: 0,
        comments: vec![comment.into()],
        recipients: who.iter().map(|h| (*h, word.to_string(), Some(CommentRef::Index(0)))).collect(),
    };
    let all: Vec<RecipientHash> = people.iter().map(|p| p.0).collect();
    s.replay(&status(&all, "SUCCESS", OK)).expect("status");
    let base = s.to_bytes();
    assert_eq!(String::from_utf8_lossy(&base).matches(OK).count(), 1);
    assert_eq!(State::from_bytes(&base).ok(), Some(s.clone()));
    for (i, h) in all.iter().enumerate() {
        // One recipient fails with a new text: its line, and the text's line.
        let mut one = s.clone();
        one.replay(&status(&[*h], "FAILURE", "'Identity is not associated with the channel'")).expect("status");
        let failed = one.to_bytes();
        let (added, removed) = line_diff(&base, &failed);
        assert_eq!((added.len(), removed.len()), (2, 1), "recipient {i}: +{added:?} -{removed:?}");
        assert_eq!(State::from_bytes(&failed).ok(), Some(one.clone()));
        // Another one fails the same way: its line only.
        let other = all[(i + 1) % all.len()];
        let mut two = one.clone();
        two.replay(&status(&[other], "FAILURE", "'Identity is not associated with the channel'")).expect("status");
        let (added, removed) = line_diff(&failed, &two.to_bytes());
        assert_eq!((added.len(), removed.len()), (1, 1), "recipient {i}: +{added:?} -{removed:?}");
        // The first one succeeds after all: its line (the failure text is still used).
        let mut back = two.clone();
        back.replay(&status(&[*h], "SUCCESS", OK)).expect("status");
        let (added, removed) = line_diff(&two.to_bytes(), &back.to_bytes());
        assert_eq!((added.len(), removed.len()), (1, 1), "recipient {i}: +{added:?} -{removed:?}");
        // And the other: its line, and the text nobody has any more.
        let mut none = back.clone();
        none.replay(&status(&[other], "SUCCESS", OK)).expect("status");
        let (added, removed) = line_diff(&back.to_bytes(), &none.to_bytes());
        assert_eq!((added.len(), removed.len()), (1, 2), "recipient {i}: +{added:?} -{removed:?}");
        assert_eq!(none.to_bytes(), base, "recipient {i}: back where it started");
    }
    // A comment index an entry does not list is refused, with nothing changed.
    let mut bad = status(&all[..1], "FAILURE", "x");
    if let Entry::Status { comments, .. } = &mut bad {
        comments.clear();
    }
    let before = s.clone();
    assert!(s.replay(&bad).is_err());
    assert_eq!(s, before);
}
