//! The plan's decision as a table: one row per case, (what the state says of each recipient,
//! the notification's options, the retry options, the clock) → who is sent what, recorded, held
//! back or left alone, and the notification's action. Every arm of [`classify`],
//! [`choose_action`] and [`apply_window`] has a row; a changed arm changes a row's result.

use super::*;
use crate::manifest::{Api, Channel, Content, Recipient, Source};
use crate::state::Entry;

/// What the state says of one recipient before the plan.
#[derive(Clone, Copy, Debug)]
enum Prior {
    /// The notification is not in the state at all.
    NoEntry,
    /// The notification is, this recipient is not.
    Absent,
    /// Received exactly this content.
    Same,
    /// Received other content.
    Different,
    /// Received this content; Kore.ai reported its delivery as failed.
    SameFailed,
    /// Received other content; Kore.ai reported its delivery as failed.
    DifferentFailed,
    /// In request #0, whose outcome is unknown.
    Held,
    /// Received this content, and is in request #0 (unknown) with other content.
    SameThenHeld,
}

#[derive(Clone, Copy, Debug)]
enum Window {
    Open,
    /// Before `notBefore`.
    Early,
    /// After `notAfter`.
    Late,
}

struct Row {
    what: &'static str,
    recipients: &'static [(&'static str, Prior)],
    on_change: OnChange,
    window: Window,
    retry_unknown: Select,
    retry_failed: Select,
    /// Sent: (recipient, why), in manifest order.
    sends: &'static [(&'static str, Change)],
    /// Recorded without sending (onChange: ignore).
    records: &'static [&'static str],
    /// Counts: held back by an unknown request, unchanged, with a failed delivery, waiting for
    /// the window.
    held: usize,
    unchanged: usize,
    failed: usize,
    waiting: usize,
    action: Action,
}

const fn row(what: &'static str, recipients: &'static [(&'static str, Prior)], action: Action) -> Row {
    Row {
        what,
        recipients,
        on_change: OnChange::Resend,
        window: Window::Open,
        retry_unknown: Select::Nothing,
        retry_failed: Select::Nothing,
        sends: &[],
        records: &[],
        held: 0,
        unchanged: 0,
        failed: 0,
        waiting: 0,
        action,
    }
}

fn key_only(key: &str, req: Option<u32>) -> Select {
    Select::Some(vec![(key.to_string(), req)])
}

fn rows() -> Vec<Row> {
    [content_rows(), held_rows(), failed_and_window_rows()].into_iter().flatten().collect()
}

/// New, added, unchanged, changed (resent or recorded).
fn content_rows() -> Vec<Row> {
    use Action as A;
    use Change as C;
    use Prior::*;
    vec![
        Row { sends: &[("a", C::New)], ..row("new notification", &[("a", NoEntry)], A::Send) },
        Row {
            sends: &[("a", C::New)],
            unchanged: 1,
            ..row("added recipient", &[("a", Absent), ("b", Same)], A::SendToAdded)
        },
        Row { unchanged: 1, ..row("nothing changed", &[("a", Same)], A::NoOp) },
        Row { sends: &[("a", C::Changed)], ..row("changed content, resend", &[("a", Different)], A::Resend) },
        Row {
            sends: &[("a", C::Changed), ("b", C::New)],
            ..row("changed and added", &[("a", Different), ("b", Absent)], A::Resend)
        },
        Row {
            on_change: OnChange::Ignore,
            records: &["a"],
            ..row("changed content, onChange: ignore", &[("a", Different)], A::Record)
        },
        Row {
            on_change: OnChange::Ignore,
            records: &["a"],
            sends: &[("b", C::New)],
            ..row("ignored change and an added recipient", &[("a", Different), ("b", Absent)], A::SendToAdded)
        },
    ]
}

/// Held back by an unknown request, and `--retry-unknown`.
fn held_rows() -> Vec<Row> {
    use Action as A;
    use Change as C;
    use Prior::*;
    vec![
        Row { held: 1, ..row("held by an unknown request", &[("a", Held)], A::Blocked) },
        Row {
            held: 1,
            sends: &[("b", C::New)],
            ..row("held, and an added recipient", &[("a", Held), ("b", Absent)], A::SendToAdded)
        },
        Row {
            retry_unknown: Select::All,
            sends: &[("a", C::Retry)],
            ..row("--retry-unknown", &[("a", Held)], A::Resend)
        },
        Row {
            retry_unknown: key_only("k", Some(0)),
            sends: &[("a", C::Retry)],
            ..row("--retry-unknown=k#0", &[("a", Held)], A::Resend)
        },
        Row {
            retry_unknown: key_only("k", Some(1)),
            held: 1,
            ..row("--retry-unknown of another request", &[("a", Held)], A::Blocked)
        },
        Row {
            retry_unknown: key_only("other", None),
            held: 1,
            ..row("--retry-unknown of another notification", &[("a", Held)], A::Blocked)
        },
        Row {
            retry_unknown: Select::All,
            unchanged: 1,
            ..row("retried, but this content was received before", &[("a", SameThenHeld)], A::NoOp)
        },
    ]
}

/// Failed deliveries and `--retry-failed`; the send window.
fn failed_and_window_rows() -> Vec<Row> {
    use Action as A;
    use Change as C;
    use Prior::*;
    vec![
        Row { unchanged: 1, failed: 1, ..row("failed delivery, no retry", &[("a", SameFailed)], A::NoOp) },
        Row {
            retry_failed: Select::All,
            failed: 1,
            sends: &[("a", C::RetryFailed)],
            ..row("--retry-failed", &[("a", SameFailed)], A::RetryFailed)
        },
        Row {
            retry_failed: key_only("other", None),
            unchanged: 1,
            failed: 1,
            ..row("--retry-failed of another notification", &[("a", SameFailed)], A::NoOp)
        },
        Row {
            sends: &[("a", C::Changed)],
            ..row("failed, then changed: a change", &[("a", DifferentFailed)], A::Resend)
        },
        Row { window: Window::Early, waiting: 1, ..row("new, before notBefore", &[("a", NoEntry)], A::Scheduled) },
        Row { window: Window::Late, ..row("new, after notAfter", &[("a", NoEntry)], A::Expired) },
        Row {
            window: Window::Early,
            on_change: OnChange::Ignore,
            ..row("recording waits for the window too", &[("a", Different)], A::Scheduled)
        },
        Row { window: Window::Late, unchanged: 1, ..row("nothing to do is not windowed", &[("a", Same)], A::NoOp) },
        Row { window: Window::Early, held: 1, ..row("held is not windowed", &[("a", Held)], A::Blocked) },
    ]
}

const TARGET: &str = "t";

fn notification(r: &Row, now: time::OffsetDateTime) -> Notification {
    let day = time::Duration::days(1);
    Notification {
        key: "k".into(),
        source: Source { file: "k.yaml".into(), line: 1, column: 1 },
        channel: Channel::Slack,
        api: Api::V1,
        user_identity_type: "email".into(),
        webhook_instance_name: None,
        content: Content { kind: "text".into(), value: "hello".into() },
        recipients: r
            .recipients
            .iter()
            .map(|(id, _)| Recipient {
                id: (*id).into(),
                custom_message: None,
                parameters: crate::manifest::Params::default(),
            })
            .collect(),
        not_before: matches!(r.window, Window::Early).then(|| now + day),
        not_after: matches!(r.window, Window::Late).then(|| now - day),
        on_change: r.on_change,
        previous_keys: Vec::new(),
        description: None,
        reuse_retired_key: false,
        skip_unreachable: None,
        audience: crate::manifest::Audience::default(),
        variables: Vec::new(),
        audience_columns: Vec::new(),
        delivery_window: None,
        own_window: false,
        rollout: None,
        own_rollout: false,
        targets: None,
    }
}

const AT: &str = "2026-01-01T00:00:00Z";

/// The state the row describes, built through the journal's own entries: one record of who
/// received what, and request #0 (unknown, or accepted with failed deliveries).
fn state_for(r: &Row, n: &Notification) -> State {
    let mut st = State::new();
    if r.recipients.iter().any(|(_, p)| matches!(p, Prior::NoEntry)) {
        return st;
    }
    let nd = notification_digest(TARGET, n);
    let other = Fingerprint([7; 16]).normalized();
    let (mut record, mut intent, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (id, prior)) in r.recipients.iter().enumerate() {
        let h = recipient_hash(&st.lineage, id);
        let fp = recipient_fingerprint(&nd, &n.recipients[i]);
        match prior {
            Prior::NoEntry | Prior::Absent => {}
            Prior::Same => record.push((h, fp)),
            Prior::Different => record.push((h, other)),
            Prior::SameFailed | Prior::DifferentFailed => {
                intent.push((h, if matches!(prior, Prior::SameFailed) { fp } else { other }));
                failures.push((h, "FAILURE".to_string(), None));
            }
            Prior::Held => intent.push((h, other)),
            Prior::SameThenHeld => {
                record.push((h, fp));
                intent.push((h, other));
            }
        }
    }
    let held = r.recipients.iter().any(|(_, p)| matches!(p, Prior::Held | Prior::SameThenHeld));
    assert!(!held || failures.is_empty(), "{}: request #0 is either unknown or accepted", r.what);
    let (key, channel, api, content) = ("k".to_string(), n.channel, n.api, StoredContent::from(&n.content));
    let mut entries = vec![Entry::Record {
        key: key.clone(),
        channel,
        api,
        content: content.clone(),
        recipients: record,
        at: AT.into(),
    }];
    if !intent.is_empty() {
        let batch = "b0".to_string();
        entries.push(Entry::Intent {
            key: key.clone(),
            req: 0,
            batch,
            channel,
            api,
            content,
            recipients: intent,
            at: AT.into(),
        });
    }
    if !failures.is_empty() {
        let outcome = crate::state::Outcome::Accepted;
        let request_id = Some("ds-0".to_string());
        entries.push(Entry::Outcome { key: key.clone(), req: 0, outcome, request_id, status: None, error: None });
        let status = "FAILURE".to_string();
        let comments = Vec::new();
        entries.push(Entry::Status { key, req: 0, status, delivered: 0, failed: 1, comments, recipients: failures });
    }
    for e in &entries {
        st.replay(e).unwrap_or_else(|e| panic!("{}: {e}", r.what));
    }
    // Read as a reader reads a state whose writer is gone: the unanswered intent is unknown.
    st.settle_pending();
    st
}

/// A decision in the row's terms: sent (who, why), recorded, the counts (held, unchanged, failed,
/// waiting) and the action.
type Decision = (Vec<(String, Change)>, Vec<String>, [usize; 4], Action);

/// The row's notification planned over `state` at `now`.
fn planned(r: &Row, n: &Notification, state: &State, now: time::OffsetDateTime) -> PlannedNotification {
    let inp = Inputs {
        target: TARGET,
        notifications: std::slice::from_ref(n),
        state,
        state_exists: true,
        state_digest: "",
        now,
        retry_unknown: r.retry_unknown.clone(),
        retry_failed: r.retry_failed.clone(),
        retention: None,
        origin: "",
        shared_state: false,
        wall: None,
        skip_unreachable: false,
    };
    plan_one(&inp, n, state.notifications.get("k"), None, &crate::unreachable::Unreachable::of(state)).0
}

/// What the plan decided for a row.
fn decided(r: &Row) -> Decision {
    let now = crate::rfc3339::parse("2026-06-01T12:00:00Z").unwrap_or_else(|| panic!("time"));
    let n = notification(r, now);
    let state = state_for(r, &n);
    let p = planned(r, &n, &state, now);
    let sends = p.sends.iter().map(|s| (s.id.clone(), s.change)).collect();
    let records = p.records.iter().map(|s| s.id.clone()).collect();
    let c = &p.recipients;
    (sends, records, [c.unknown, c.unchanged, c.failed, c.waiting], p.action)
}

/// A request another run is sending right now (still pending in a state read while its writer
/// holds the lock): its recipients are in flight — neither held for a decision nor sent again —
/// and the others proceed.
#[test]
fn in_flight_recipients_are_neither_held_nor_sent() {
    for what in ["held by an unknown request", "held, and an added recipient", "--retry-unknown"] {
        let r = rows().into_iter().find(|r| r.what == what).unwrap_or_else(|| panic!("row {what}"));
        let now = crate::rfc3339::parse("2026-06-01T12:00:00Z").unwrap_or_else(|| panic!("time"));
        let n = notification(&r, now);
        let mut state = state_for(&r, &n);
        for q in &mut state.notifications.get_mut("k").unwrap_or_else(|| panic!("k")).requests {
            q.outcome = crate::state::Outcome::Pending;
            q.error = Some("in flight: being sent by a run still going (pid 1)".into());
        }
        let p = planned(&r, &n, &state, now);
        assert_eq!((p.recipients.in_flight, p.recipients.unknown), (1, 0), "{what}");
        assert!(p.unknown_requests.is_empty(), "{what}");
        assert!(p.sends.iter().all(|s| s.id != "a"), "{what}: the recipient in flight is not sent again");
        assert!(p.reason.contains("in flight: being sent by a run still going (pid 1)"), "{what}: {}", p.reason);
        assert_ne!(p.action, Action::Blocked, "{what}");
    }
}

#[test]
fn every_decision_is_the_one_its_row_says() {
    let mut wrong = Vec::new();
    for r in rows() {
        let want = (
            r.sends.iter().map(|(id, c)| ((*id).to_string(), *c)).collect::<Vec<_>>(),
            r.records.iter().map(|id| (*id).to_string()).collect::<Vec<_>>(),
            [r.held, r.unchanged, r.failed, r.waiting],
            r.action,
        );
        let got = decided(&r);
        if got != want {
            wrong.push(format!("{}: want {want:?}, got {got:?}", r.what));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every action a manifest can lead to has a row (orphaned comes from the state alone).
#[test]
fn the_table_covers_every_action() {
    let covered: HashSet<Action> = rows().iter().map(|r| r.action).collect();
    for a in [
        Action::Send,
        Action::Resend,
        Action::SendToAdded,
        Action::Record,
        Action::NoOp,
        Action::Scheduled,
        Action::Expired,
        Action::RetryFailed,
        Action::Blocked,
    ] {
        assert!(covered.contains(&a), "no row for {a:?}");
    }
}
