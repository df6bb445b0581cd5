//! The status poller: asks the status APIs (v1 and v2) about every request that is not terminal
//! yet and records the per-recipient outcomes through a state session (`status --refresh`, and
//! `apply --wait` under the session it sent with).
//!
//! Status calls run `parallelism` at a time inside the run's one rate limiter (the send loop's,
//! for `apply --wait`): a thousand requests take the rolling window's floor, not a thousand round
//! trips. Only what changed is recorded: a recipient whose reported delivery is already in the
//! state is left out of the entry, an answer that changes nothing records nothing, and a refresh
//! that records nothing writes nothing (no new serial, no journal), so scheduled refreshes never
//! grow the state.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Target;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::fingerprint::{RecipientHash, recipient_hash};
use crate::kore::{Client, JobStatus, KoreApi, RateLimiter, is_terminal_status};
use crate::manifest::Api;
use crate::state::{CommentRef, Entry, Outcome, Session, State};

/// How the poller runs.
pub(crate) struct PollOptions {
    /// Status calls in flight at once (at least 1).
    pub(crate) parallelism: usize,
    /// Where notices go (`--quiet`: only what needs attention).
    pub(crate) shell: crate::shell::Shell,
    /// With `wait`: how long to keep asking.
    pub(crate) timeout: Option<Duration>,
    /// Repeat until every request is terminal (or the timeout passes).
    pub(crate) wait: bool,
}

/// Asks Kore.ai for every non-terminal request and records what changed; with `wait`, repeats
/// until all are terminal or the timeout passes. Returns 3 when some delivery failed or the wait
/// timed out. The caller holds `session` (apply --wait records under its own) and gives the run's
/// rate limiter.
pub(crate) fn refresh_until(
    config: &Target,
    env: &dyn crate::interp::Env,
    clock: crate::clock::Clock,
    limiter: Arc<RateLimiter>,
    session: &mut dyn Session,
    opts: &PollOptions,
) -> Result<Exit> {
    if open_requests(session.state()).is_empty() {
        // Nothing to ask: the state is left exactly as it is (no new serial, no journal).
        return Ok(if any_failed_delivery(session.state()) { Exit::Partial } else { Exit::Ok });
    }
    let creds = config.credentials(env)?;
    crate::interrupt::install();
    let client = Client::new(config, creds, limiter, clock)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::system("start the async runtime"))?;
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let mut timed_out = false;
    let mut recorded = false;
    loop {
        let open = open_requests(session.state());
        if open.is_empty() {
            break;
        }
        let round = poll_round(&rt, &client, session, open, opts);
        recorded |= round.recorded;
        if let Some(e) = round.fatal {
            // What was recorded before the failure is in the journal (or the database).
            return Err(e);
        }
        if !opts.wait || crate::interrupt::requested().is_some() {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            timed_out = true;
            opts.shell
                .errln("timed out waiting for delivery statuses; `kore-notify status --refresh` checks again later");
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if recorded {
        session.compact()?;
    }
    if let Some(sig) = crate::interrupt::requested() {
        opts.shell.errln(format!(
            "Interrupted by {}: the statuses received so far are recorded.",
            crate::interrupt::name(sig)
        ));
        return Ok(Exit::Interrupted(sig));
    }
    Ok(if any_failed_delivery(session.state()) || timed_out { Exit::Partial } else { Exit::Ok })
}

/// What one round of status calls came to.
struct Round {
    /// Some entry was recorded.
    recorded: bool,
    /// Recording failed: the round stopped.
    fatal: Option<Error>,
}

/// One status call per open request, `parallelism` at a time. Each answer is recorded as it
/// arrives, by a thread of its own holding the session, so that recording one answer (its journal
/// entry fsynced) overlaps the calls still in flight; a recording that fails stops the calls.
fn poll_round(
    rt: &tokio::runtime::Runtime,
    client: &impl KoreApi,
    session: &mut dyn Session,
    open: Vec<OpenRequest>,
    opts: &PollOptions,
) -> Round {
    let lineage = session.state().lineage.clone();
    let stop = AtomicBool::new(false);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(OpenRequest, Answer)>(opts.parallelism.max(1));
    std::thread::scope(|s| {
        let stop = &stop;
        let recorder = s.spawn(move || {
            let mut round = Round { recorded: false, fatal: None };
            while let Some((o, answer)) = rx.blocking_recv() {
                if round.fatal.is_some() {
                    continue;
                }
                match record_status(opts.shell, session, &o, &answer) {
                    Ok(r) => round.recorded |= r,
                    Err(e) => {
                        stop.store(true, Ordering::SeqCst);
                        round.fatal = Some(e);
                    }
                }
            }
            round
        });
        rt.block_on(ask_all(client, tx, open, opts, &lineage, stop));
        recorder.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Asks about every open request, `parallelism` at a time, and hands each answer (its identities
/// hashed, on the blocking pool) to the recorder.
async fn ask_all(
    client: &impl KoreApi,
    tx: tokio::sync::mpsc::Sender<(OpenRequest, Answer)>,
    open: Vec<OpenRequest>,
    opts: &PollOptions,
    lineage: &str,
    stop: &AtomicBool,
) {
    use futures_util::StreamExt;
    let tx = &tx;
    futures_util::stream::iter(open)
        .for_each_concurrent(opts.parallelism.max(1), |o| async move {
            let stopped = || stop.load(Ordering::SeqCst) || crate::interrupt::requested().is_some();
            if stopped() {
                return;
            }
            let answer = tokio::select! {
                r = client.status(o.api, &o.id) => r,
                () = crate::interrupt::wait() => return,
            };
            match answer {
                Ok(js) => {
                    // Cleaning and hashing a thousand logs runs beside the calls, not between them.
                    let lineage = lineage.to_string();
                    let Ok(answer) = tokio::task::spawn_blocking(move || Answer::of(js, &lineage)).await else {
                        return;
                    };
                    // The recorder is gone only after a failure: nothing more to record.
                    let _ = tx.send((o, answer)).await;
                }
                Err(e) => notice(opts.shell, &o.key, &o.id, &format!("status unavailable: {e}")),
            }
        })
        .await;
}

/// Whether some recipient's delivery failed. Per recipient: a failure retried since (`apply
/// --retry-failed`) and delivered no longer counts.
fn any_failed_delivery(st: &State) -> bool {
    st.notifications
        .values()
        .any(|n| n.recipients.values().any(|r| r.fp.is_some() && n.delivery(r).is_some_and(|d| d.status != "SUCCESS")))
}

/// A request to ask Kore.ai about.
struct OpenRequest {
    key: String,
    req: u32,
    api: Api,
    id: String,
}

/// Requests to ask Kore.ai about: accepted (or settled as sent) and not terminal yet, and unknown
/// ones whose answer carried a job id.
fn open_requests(st: &State) -> Vec<OpenRequest> {
    st.notifications
        .iter()
        .flat_map(|(k, n)| {
            n.requests.iter().enumerate().filter_map(move |(i, r)| {
                let id = r.request_id.clone()?;
                let terminal = r.status.as_deref().is_some_and(is_terminal_status);
                let open = match r.outcome {
                    Outcome::Accepted | Outcome::ResolvedSent => !terminal,
                    o => o.is_unknown(),
                };
                open.then(|| OpenRequest { key: k.clone(), req: i as u32, api: n.api, id })
            })
        })
        .collect()
}

/// A job status as it is recorded: server text in a safe, bounded form, identities hashed.
struct Answer {
    status: String,
    /// (recipient hash, delivery status, comment)
    logs: Vec<(RecipientHash, String, Option<String>)>,
    delivered: u32,
    failed: u32,
}

/// A server's comment with the recipient's identity taken out (ASCII case ignored): comments are
/// kept in the state and the `--events` log, which hold no identity in clear, and a server may
/// echo it ("identity john@x.com is not associated…").
fn without_identity(comment: &str, id: &str) -> String {
    let id = id.trim();
    if id.is_empty() {
        return comment.to_string();
    }
    let (lower, needle) = (comment.to_ascii_lowercase(), id.to_ascii_lowercase());
    // Only where it stands as a word: a short identity (`a`, `U1`) must not eat other words.
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(comment.len());
    let (mut at, mut from) = (0, 0);
    while let Some(i) = lower[from..].find(&needle).map(|i| from + i) {
        let end = i + needle.len();
        if word(lower[..i].chars().next_back()) || word(lower[end..].chars().next()) {
            from = i + lower[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        out.push_str(&comment[at..i]);
        out.push_str("‹recipient›");
        (at, from) = (end, end);
    }
    out.push_str(&comment[at..]);
    out
}

impl Answer {
    fn of(js: JobStatus, lineage: &str) -> Answer {
        let clean = |s: &str, max: usize| crate::safe::line(s).chars().take(max).collect::<String>();
        let logs: Vec<(RecipientHash, String, Option<String>)> = js
            .status_logs
            .iter()
            .filter_map(|l| {
                let id = l.original_id.as_ref()?;
                Some((
                    recipient_hash(lineage, id),
                    clean(l.status.as_deref().unwrap_or_default(), 40),
                    l.comments.as_deref().map(|c| clean(&without_identity(c, id), 300)),
                ))
            })
            .collect();
        let delivered = logs.iter().filter(|r| r.1 == "SUCCESS").count() as u32;
        Answer {
            status: js.status.map_or_else(|| "UNKNOWN".into(), |s| clean(&s, 40)),
            failed: logs.len() as u32 - delivered,
            delivered,
            logs,
        }
    }
}

/// Records a job status; returns whether anything was recorded. An unknown request whose job
/// Kore.ai's status API knows was processed: it is settled as sent first, so its recipients are
/// not held back any more.
fn record_status(
    shell: crate::shell::Shell,
    session: &mut dyn Session,
    o: &OpenRequest,
    answer: &Answer,
) -> Result<bool> {
    let (key, req) = (o.key.as_str(), o.req);
    let was_unknown = session
        .state()
        .notifications
        .get(key)
        .and_then(|n| n.requests.get(req as usize))
        .is_some_and(|r| r.outcome.is_unknown());
    if was_unknown {
        session.record(&Entry::Resolve { key: key.to_string(), sent: true, req: Some(req) })?;
        let what = "Kore.ai knows this job, so it was processed; its unknown outcome is settled as sent";
        notice(shell, key, &format!("#{req} ({})", o.id), what);
    }
    let entry = status_entry(session.state(), key, req, answer);
    let recorded = entry.is_some();
    if let Some(e) = entry {
        session.record(&e)?;
    }
    if !shell.quiet && recorded && is_terminal_status(&answer.status) {
        notice(
            shell,
            key,
            &o.id,
            &format!("{} ({} delivered, {} failed)", answer.status, answer.delivered, answer.failed),
        );
    }
    Ok(recorded || was_unknown)
}

/// The entry recording what `answer` changes in `st` (request `req` of `key`): only the
/// recipients of that request whose reported delivery differs, their comments listed once.
/// `None` when it changes nothing.
fn status_entry(st: &State, key: &str, req: u32, answer: &Answer) -> Option<Entry> {
    let n = st.notifications.get(key)?;
    let r = n.requests.get(req as usize)?;
    let mut comments: Vec<String> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut recipients = Vec::new();
    for (h, status, comment) in &answer.logs {
        let Some(rs) = n.recipients.get(h).filter(|rs| rs.req == Some(req)) else { continue };
        if n.delivery(rs).is_some_and(|d| d.status == *status && d.comment == *comment) {
            continue;
        }
        let c = comment.as_deref().map(|c| {
            CommentRef::Index(*index.entry(c).or_insert_with(|| {
                comments.push(c.to_string());
                comments.len() as u32 - 1
            }))
        });
        recipients.push((*h, status.clone(), c));
    }
    let same = r.status.as_deref() == Some(answer.status.as_str())
        && r.delivered == answer.delivered
        && r.failed == answer.failed;
    if same && recipients.is_empty() {
        return None;
    }
    Some(Entry::Status {
        key: key.to_string(),
        req,
        status: answer.status.clone(),
        delivered: answer.delivered,
        failed: answer.failed,
        comments,
        recipients,
    })
}

/// A line about one request on stderr: key, id and server text made safe for a terminal or a log.
fn notice(shell: crate::shell::Shell, key: &str, id: &str, what: &str) {
    let line = format!("{} request {}: {}", crate::safe::line(key), crate::safe::line(id), crate::safe::line(what));
    shell.errln(crate::safe::for_output(&line));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Fingerprint;
    use crate::manifest::Channel;
    use crate::state::StoredContent;

    fn answer(lineage: &str, logs: &[(&str, &str, Option<&str>)]) -> Answer {
        let logs: Vec<_> =
            logs.iter().map(|(id, s, c)| (recipient_hash(lineage, id), s.to_string(), c.map(str::to_string))).collect();
        let delivered = logs.iter().filter(|l| l.1 == "SUCCESS").count() as u32;
        Answer { status: "PARTIAL_SUCCESS".into(), failed: logs.len() as u32 - delivered, delivered, logs }
    }

    /// A comment that echoes its recipient's identity (any case, any place, repeated) keeps no
    /// trace of it: comments go to the state and the `--events` log.
    #[test]
    fn comments_never_keep_the_identity() {
        for id in ["john.doe@x.com", "+14155550100", "U123", "Zoë@例え.jp"] {
            for c in [
                format!("Identity {id} is not associated with the channel"),
                format!("{} unknown; {id}!", id.to_ascii_uppercase()),
                id.to_string(),
            ] {
                let js: JobStatus = serde_json::from_value(serde_json::json!({
                    "status": "FAILURE",
                    "statusLogs": [{"originalId": id, "status": "FAILURE", "comments": c}]
                }))
                .expect("job status");
                let a = Answer::of(js, "lineage");
                let kept = a.logs[0].2.as_deref().expect("comment");
                assert!(!kept.to_lowercase().contains(&id.to_lowercase()), "{id} in {kept:?}");
                assert!(kept.contains("‹recipient›"), "{kept:?}");
            }
        }
        assert_eq!(
            without_identity("Notification has been sent to a", "a"),
            "Notification has been sent to ‹recipient›"
        );
        assert_eq!(without_identity("U12 and U1: gone", "U1"), "U12 and ‹recipient›: gone");
    }

    /// The class: whatever the state already holds, an answer records exactly the recipients of
    /// its request whose delivery differs, each comment once; an answer the state already
    /// holds records nothing.
    #[test]
    fn an_answer_records_only_what_changed() {
        let mut st = State::new();
        let ids = ["a", "b", "c", "d"];
        let hashes: Vec<_> = ids.iter().map(|i| (recipient_hash(&st.lineage, i), Fingerprint([1; 16]))).collect();
        let intent = |req: u32, rec: Vec<(RecipientHash, Fingerprint)>| Entry::Intent {
            key: "k".into(),
            req,
            batch: "b".into(),
            channel: Channel::Slack,
            api: Api::V1,
            content: StoredContent { kind: "text".into(), value: "hi".into() },
            recipients: rec,
            at: "t".into(),
        };
        let accepted = |req: u32| Entry::Outcome {
            key: "k".into(),
            req,
            outcome: Outcome::Accepted,
            request_id: Some(format!("ds-{req}")),
            status: None,
            error: None,
        };
        for e in [intent(0, hashes[..3].to_vec()), accepted(0), intent(1, hashes[3..].to_vec()), accepted(1)] {
            st.replay(&e).expect("replay");
        }
        let ok = Some("Notification has been sent successfully");
        let no = Some("'Identity is not associated with the channel'");
        // d belongs to request 1: never part of request 0's entry.
        let first = answer(
            &st.lineage,
            &[("a", "SUCCESS", ok), ("b", "SUCCESS", ok), ("c", "FAILURE", no), ("d", "SUCCESS", ok)],
        );
        let e = status_entry(&st, "k", 0, &first).expect("a first answer records");
        let Entry::Status { comments, recipients, .. } = &e else { panic!("{e:?}") };
        assert_eq!(comments.len(), 2, "each comment once: {comments:?}");
        assert_eq!(recipients.len(), 3);
        st.replay(&e).expect("replay");
        assert!(status_entry(&st, "k", 0, &first).is_none(), "the same answer again records nothing");
        // One recipient changes: only it is recorded.
        let second = answer(&st.lineage, &[("a", "SUCCESS", ok), ("b", "FAILURE", no), ("c", "FAILURE", no)]);
        let e = status_entry(&st, "k", 0, &second).expect("a change records");
        let Entry::Status { recipients, comments, .. } = &e else { panic!("{e:?}") };
        assert_eq!((recipients.len(), comments.len()), (1, 1), "{e:?}");
        st.replay(&e).expect("replay");
        let n = &st.notifications["k"];
        assert_eq!(n.deliveries.len(), 2, "no text added: {:?}", n.deliveries);
        assert!(status_entry(&st, "k", 0, &second).is_none());
        assert!(status_entry(&st, "missing", 0, &second).is_none());
    }
}
