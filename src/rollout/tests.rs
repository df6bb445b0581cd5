//! The gate, against states built through the journal's own reducer.

use super::*;
use crate::fingerprint::{Fingerprint, recipient_hash};
use crate::manifest::{Api, Channel};
use crate::state::{Entry, State, StoredContent};

fn ro(waves: &[WaveSize]) -> Rollout {
    Rollout {
        waves: waves.to_vec(),
        observe: std::time::Duration::from_secs(900),
        max_failure_rate: 200,
        min_sample: 20,
        ignore_reasons: vec!["not associated".into()],
    }
}

fn t(s: &str) -> OffsetDateTime {
    crate::rfc3339::parse(s).expect("time")
}

const DIGEST: &str = "d";

/// Sends wave `wave` to `ids` in one request (started at `at`), accepted.
fn send(st: &mut State, wave: u32, upto: u64, ids: &[String], at: &str) -> u32 {
    let content = StoredContent { kind: "text".into(), value: "hi".into() };
    let from_req = st.notifications.get("k").map_or(0, |n| n.requests.len() as u32);
    let e = Entry::Wave {
        key: "k".into(),
        channel: Channel::Slack,
        api: Api::V1,
        content: content.clone(),
        digest: DIGEST.into(),
        wave,
        upto,
        from_req,
        at: at.into(),
    };
    st.replay(&e).expect("wave");
    let recipients = ids.iter().map(|i| (recipient_hash(&st.lineage, i), Fingerprint([1; 16]))).collect();
    let intent = Entry::Intent {
        key: "k".into(),
        req: from_req,
        batch: "b".into(),
        channel: Channel::Slack,
        api: Api::V1,
        content,
        recipients,
        at: at.into(),
    };
    st.replay(&intent).expect("intent");
    let outcome = Entry::Outcome {
        key: "k".into(),
        req: from_req,
        outcome: crate::state::Outcome::Accepted,
        request_id: Some("ds-1".into()),
        status: None,
        error: None,
    };
    st.replay(&outcome).expect("outcome");
    from_req
}

/// Reports request `req` terminal: `failed` of its `ids` failed with `comment`.
fn report(st: &mut State, req: u32, ids: &[String], failed: usize, comment: &str) {
    let recipients = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let s = if i < failed { "FAILURE" } else { "SUCCESS" };
            let c = u32::from(i >= failed);
            (recipient_hash(&st.lineage, id), s.to_string(), Some(crate::state::CommentRef::Index(c)))
        })
        .collect();
    let e = Entry::Status {
        key: "k".into(),
        req,
        status: "PARTIAL_SUCCESS".into(),
        delivered: (ids.len() - failed) as u32,
        failed: failed as u32,
        comments: vec![comment.into(), "Notification has been sent successfully".into()],
        recipients,
    };
    st.replay(&e).expect("status");
}

fn ids(from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("u{i}")).collect()
}

#[test]
fn cumulative_sizes_grow_and_end_with_everyone() {
    let r = ro(&[WaveSize::Count(50), WaveSize::Percent(1000), WaveSize::Percent(10_000)]);
    assert_eq!(r.cumulative(1000), vec![50, 100, 1000]);
    assert_eq!(r.cumulative(300), vec![50, 50, 300], "10% of 300 is under 50: the wave adds nobody");
    assert_eq!(r.cumulative(20), vec![20, 20, 20]);
    assert_eq!(r.cumulative(0), vec![0, 0, 0]);
    assert_eq!(percent(200), "2%");
    assert_eq!(percent(750), "7.5%");
    assert_eq!(percent(1), "0.01%");
    assert_eq!(parse::parse_percent("7.5%"), Some(750));
    assert_eq!(parse::parse_percent("100%"), Some(10_000));
    assert_eq!(parse::parse_percent("2"), None);
    assert_eq!(parse::parse_percent(".5%"), None);
}

/// The class: wave by wave, the gate lets the next go only when every request is terminal,
/// observe has passed and the rate (ignored reasons out, at least minSample) is at or under the
/// limit; over it, it halts with the figures; a halt holds until a resume; a content change
/// starts anew.
#[test]
fn the_gate_opens_only_after_terminal_observed_and_under_the_limit() {
    let r = ro(&[WaveSize::Count(50), WaveSize::Percent(1000), WaveSize::Percent(10_000)]);
    let mut st = State::new();
    let at = "2026-12-01T09:00:00Z";
    assert_eq!(gate(&r, None, DIGEST, 1000, t(at)), Gate::Go { wave: 0, take: 50, upto: 50, starts: true });
    let w1 = ids(0, 50);
    let req = send(&mut st, 0, 50, &w1, at);
    let n = || st.notifications.get("k");
    // Sent: the wave is complete, its request not terminal.
    assert_eq!(gate(&r, n(), DIGEST, 950, t(at)), Gate::Wait { wave: 0, why: Wait::Statuses(1) });
    // 10 failures, 8 of them an ignored reason... reported as two kinds: 4 failed for real of 46.
    report(&mut st, req, &w1, 4, "Failed to deliver");
    let n = || st.notifications.get("k");
    let early = t("2026-12-01T09:10:00Z");
    assert_eq!(
        gate(&r, n(), DIGEST, 950, early),
        Gate::Wait { wave: 0, why: Wait::Observe(t("2026-12-01T09:15:00Z")) }
    );
    let later = t("2026-12-01T09:15:00Z");
    match gate(&r, n(), DIGEST, 950, later) {
        Gate::Halted { halt, recorded: false } => {
            assert_eq!((halt.failed, halt.sample, halt.wave, halt.limit), (4, 50, 0, 200));
            assert_eq!(halt.line(), "8.0% failed in wave 1 (limit 2%; 4 of 50 reported deliveries)");
            st.replay(&Entry::Halt { key: "k".into(), digest: DIGEST.into(), halt }).expect("halt");
        }
        g => panic!("{g:?}"),
    }
    assert!(matches!(gate(&r, st.notifications.get("k"), DIGEST, 950, later), Gate::Halted { recorded: true, .. }));
    // Another content: a rollout of its own.
    assert_eq!(
        gate(&r, st.notifications.get("k"), "other", 1000, later),
        Gate::Go { wave: 0, take: 50, upto: 50, starts: true }
    );
    let record = crate::state::ResumeRecord { actor: "me".into(), at: "x".into(), halt: "h".into() };
    st.replay(&Entry::Resume { key: "k".into(), record }).expect("resume");
    // Resumed: wave 1 is no longer judged; wave 2 reaches 10% of 1000.
    assert_eq!(
        gate(&r, st.notifications.get("k"), DIGEST, 950, later),
        Gate::Go { wave: 1, take: 50, upto: 100, starts: true }
    );
}

/// Ignored reasons leave the rate, minSample holds judgement back, and a wave under the limit
/// passes; a wave cut short (a crash) is continued, never passed.
#[test]
fn ignored_reasons_min_sample_and_continuation() {
    let r = ro(&[WaveSize::Count(50), WaveSize::Percent(10_000)]);
    let mut st = State::new();
    let at = "2026-12-01T09:00:00Z";
    let later = t("2026-12-01T10:00:00Z");
    // A crash after 30 of the 50: the same wave continues with 20.
    let first = ids(0, 30);
    let req = send(&mut st, 0, 50, &first, at);
    assert_eq!(
        gate(&r, st.notifications.get("k"), DIGEST, 70, later),
        Gate::Go { wave: 0, take: 20, upto: 50, starts: false }
    );
    assert!(admits(&r, st.notifications.get("k"), DIGEST, 0, 20));
    assert!(!admits(&r, st.notifications.get("k"), DIGEST, 0, 21), "never more than the wave");
    assert!(!admits(&r, st.notifications.get("k"), DIGEST, 1, 1), "never the next wave early");
    // All 30 failed as not associated: ignored, so under minSample: not judged.
    report(&mut st, req, &first, 30, "'Identity is not associated with the channel'");
    let rest = ids(30, 20);
    let st2 = {
        let mut s = st.clone();
        let content = StoredContent { kind: "text".into(), value: "hi".into() };
        let recipients = rest.iter().map(|i| (recipient_hash(&s.lineage, i), Fingerprint([1; 16]))).collect();
        s.replay(&Entry::Intent {
            key: "k".into(),
            req: 1,
            batch: "c".into(),
            channel: Channel::Slack,
            api: Api::V1,
            content,
            recipients,
            at: at.into(),
        })
        .expect("intent");
        s.replay(&Entry::Outcome {
            key: "k".into(),
            req: 1,
            outcome: crate::state::Outcome::Accepted,
            request_id: Some("ds-2".into()),
            status: None,
            error: None,
        })
        .expect("outcome");
        report(&mut s, 1, &rest, 0, "x");
        s
    };
    let mut p = progress(st2.notifications["k"].rollout.as_ref().expect("rollout"), &st2.notifications["k"]);
    rates(&r, st2.notifications["k"].rollout.as_ref().expect("rollout"), &st2.notifications["k"], &mut p);
    assert_eq!((p.sent, p.failed, p.sample), (50, 0, 20));
    assert_eq!(
        gate(&r, st2.notifications.get("k"), DIGEST, 50, later),
        Gate::Go { wave: 1, take: 50, upto: 100, starts: true }
    );
}
