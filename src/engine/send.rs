//! The send loop: bookkeeping entries first, then every batch with its intent journaled (fsync)
//! before the request leaves and its outcome journaled after, at most `parallelism` at a time,
//! within the rate limits. A 401, a redirect, a journal that cannot be written or an interrupt
//! stops the batches not started yet.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::config::{Credentials, Target};
use crate::error::{Error, Result};
use crate::fingerprint::{Fingerprint, RecipientHash};
use crate::kore::{self, Client, KoreApi, RateLimiter, SendResult};
use crate::manifest::{Notification, Recipient};
use crate::plan::Plan;
use crate::state::{Entry, Outcome, Session, StoredContent};

/// How the send loop runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendOptions {
    /// Batches in flight at once (at least 1).
    pub(crate) parallelism: usize,
    /// Where progress goes (`--quiet`: failures only; `--verbose`: a line per batch).
    pub(crate) shell: crate::shell::Shell,
    /// Failures in colour.
    pub(crate) color: bool,
    /// Stamps journal entries and tokens.
    pub(crate) clock: Clock,
    /// The plan's "now" and when it was read: delivery windows are checked again at the current
    /// time as each batch leaves.
    pub(crate) now: (time::OffsetDateTime, std::time::Instant),
}

/// Shared by the batch tasks: the writer's session on the state (entries recorded durably, then
/// folded into its state).
struct Book {
    session: Box<dyn Session>,
    /// Stamps the entries.
    clock: Clock,
}

struct Batch<'a> {
    n: &'a Notification,
    /// (recipient index, hash, fingerprint)
    members: Vec<(usize, RecipientHash, Fingerprint)>,
    label: String,
    /// Under a rollout: the wave (0-based) the plan sends it in; the gate is asked again as its
    /// intent is journaled.
    wave: Option<u32>,
}

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) accepted: usize,
    pub(crate) rejected: usize,
    pub(crate) unknown: usize,
    /// How long the send loop took.
    pub(crate) elapsed: std::time::Duration,
    /// Requests that never reached Kore.ai (no connection).
    pub(crate) not_sent: usize,
    /// Batches not started (the run stopped: 401, a redirect, an interrupt, a journal failure).
    pub(crate) skipped: usize,
    pub(crate) skipped_recipients: usize,
    pub(crate) recipients_accepted: usize,
    /// Why the run stopped early (401, a redirect), as the error to report.
    pub(crate) stopped_by: Option<String>,
    /// Recipients left for a later apply: their delivery window closed before their batch left.
    pub(crate) outside_window: usize,
    /// Recipients the rollout gate no longer let go when their batch was about to leave.
    pub(crate) held_by_gate: usize,
}

/// A run whose bookkeeping is journaled, its batches cut: ready to send.
pub(crate) struct Prepared<'a> {
    book: Arc<Mutex<Book>>,
    batches: Vec<Batch<'a>>,
    /// Every notification the manifests declare, claimed for this repository after the sends.
    declared: &'a [Notification],
}

/// Journals the plan's bookkeeping through `session` (renames, `chores`, retries, recorded
/// changes: nothing is sent for them, entries stamped by `clock`) and cuts the batches to send
/// (`batch_size` recipients each).
pub(crate) fn prepare<'a>(
    session: Box<dyn Session>,
    clock: Clock,
    plan: &Plan,
    notifications: &'a [Notification],
    renames: &[(&str, &str)],
    chores: &[Entry],
    batch_size: usize,
) -> Result<Prepared<'a>> {
    let book = Arc::new(Mutex::new(Book { session, clock }));
    let by_key: HashMap<&str, &Notification> = notifications.iter().map(|n| (n.key.as_str(), n)).collect();
    bookkeeping(&book, plan, &by_key, renames, chores)?;
    let batches = make_batches(plan, &by_key, batch_size);
    Ok(Prepared { book, batches, declared: notifications })
}

/// Sends the prepared batches (`creds` is `None` when there are none) within the run's rate
/// limiter, then compacts the journal. Returns the session (its lock still held: `--wait` records
/// statuses under it, in the same limiter) and the tally.
pub(crate) fn execute(
    prepared: Prepared<'_>,
    config: &Target,
    origin: &str,
    creds: Option<Credentials>,
    limiter: &Arc<RateLimiter>,
    opts: SendOptions,
) -> Result<(Box<dyn Session>, Tally)> {
    let Prepared { book, batches, declared } = prepared;
    let tally = if let Some(creds) = creds {
        let client = Client::new(config, creds, limiter.clone(), opts.clock)?;
        let body = BodyOptions::of(config);
        send_all(opts, &client, &book, batches, body)?
    } else {
        Tally::default()
    };

    let mut book = Arc::try_unwrap(book)
        .map_err(|_| Error::Internal("batch tasks still running"))?
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The sends created the new notifications: now each declared one records this repository.
    // Only a shared state (PostgreSQL) needs to know which repository declares what.
    let claims = if config.state_is_shared() {
        book.session.state().claims(origin, declared.iter().map(|n| n.key.as_str()))
    } else {
        Vec::new()
    };
    for e in &claims {
        book.session.record(e)?;
    }
    book.session.compact()?;
    Ok((book.session, tally))
}

/// Bookkeeping that sends nothing comes first: renames, chores, retries, recorded changes.
fn bookkeeping(
    book: &Arc<Mutex<Book>>,
    plan: &Plan,
    by_key: &HashMap<&str, &Notification>,
    renames: &[(&str, &str)],
    chores: &[Entry],
) -> Result<()> {
    let mut b = lock(book);
    for (from, to) in renames {
        journal_apply(&mut b, Entry::Rename { from: from.to_string(), to: to.to_string() })?;
    }
    for e in chores {
        journal_apply(&mut b, e.clone())?;
    }
    for p in plan.notifications.iter().filter(|p| p.retry_unknown) {
        for u in p.unknown_requests.iter().filter(|u| u.retried) {
            journal_apply(&mut b, Entry::Retry { key: p.key.clone(), req: Some(u.index) })?;
        }
    }
    // A canary wave's start, durable before its first request: a run killed after this line
    // continues the same wave, never starts the next early.
    for p in plan.notifications.iter().filter(|p| p.action.sends()) {
        let (Some(r), Some(n)) =
            (p.rollout.as_ref().filter(|r| r.starts && r.sending.is_some()), by_key.get(p.key.as_str()))
        else {
            continue;
        };
        let from_req = b.session.state().notifications.get(&p.key).map_or(0, |s| s.requests.len() as u32);
        let content = StoredContent::from(&n.content);
        let at = b.clock.stamp();
        journal_apply(
            &mut b,
            Entry::Wave {
                key: p.key.clone(),
                channel: n.channel,
                api: n.api,
                digest: crate::fingerprint::content_digest(n.api, n.channel, &content),
                content,
                wave: r.sending.unwrap_or(1) - 1,
                upto: r.upto,
                from_req,
                at,
            },
        )?;
    }
    for p in plan.notifications.iter().filter(|p| !p.records.is_empty()) {
        let Some(n) = by_key.get(p.key.as_str()) else {
            continue;
        };
        let at = b.clock.stamp();
        journal_apply(
            &mut b,
            Entry::Record {
                key: p.key.clone(),
                channel: n.channel,
                api: n.api,
                content: StoredContent::from(&n.content),
                recipients: p.records.iter().map(|r| (r.hash, r.fingerprint)).collect(),
                at,
            },
        )?;
    }
    Ok(())
}

fn make_batches<'a>(plan: &Plan, by_key: &HashMap<&str, &'a Notification>, batch_size: usize) -> Vec<Batch<'a>> {
    let mut batches = Vec::new();
    for p in plan.notifications.iter().filter(|p| p.action.sends()) {
        let Some(n) = by_key.get(p.key.as_str()) else {
            continue;
        };
        let chunks: Vec<_> = p.sends.chunks(batch_size).collect();
        let total = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            batches.push(Batch {
                n,
                members: chunk.iter().map(|r| (r.index, r.hash, r.fingerprint)).collect(),
                label: format!("{} batch {}/{}", n.key, i + 1, total),
                wave: p.rollout.as_ref().and_then(|r| r.sending).map(|w| w - 1),
            });
        }
    }
    batches
}

/// How request bodies are built (from the config).
#[derive(Clone, Copy)]
pub(crate) struct BodyOptions {
    pub(crate) v2_field: crate::config::V2Field,
    /// `v2TemplateAsCustomMessage` (default true).
    template_as_custom_message: bool,
}

impl BodyOptions {
    /// The target's body options (test sends build their bodies the same way).
    pub(crate) fn of(t: &Target) -> BodyOptions {
        BodyOptions { v2_field: t.v2_field, template_as_custom_message: t.v2_template_as_custom_message }
    }
}

/// A recipient as sent. Kore's v2 page contradicts itself: its field table says `parameters` fill
/// only a `customMessage` (and are ignored without one), its samples show them filling the main
/// message. With `v2TemplateAsCustomMessage` (the default), a v2 recipient with parameters and no
/// customMessage of their own gets the notification's text as `customMessage` as well, so they
/// read the same filled text whichever reading Kore implements.
///
/// This copy is deliberately not part of the fingerprint: under the reading where parameters fill
/// the main message, the recipient reads the same template filled with the same parameters as
/// before; under the other reading, they now read what the plan's preview always showed. What the
/// fingerprint stands for (the text delivered) is the same, so states written by earlier versions
/// stay valid and upgrading resends nobody.
pub(crate) fn as_sent<'a>(n: &Notification, r: &'a Recipient, opts: BodyOptions) -> Cow<'a, Recipient> {
    let copies = opts.template_as_custom_message
        && n.api == crate::manifest::Api::V2
        && n.content.kind != "script"
        && r.custom_message.is_none()
        && !r.parameters.is_empty();
    match n.content.value.as_str() {
        Some(template) if copies => Cow::Owned(Recipient { custom_message: Some(template.to_string()), ..r.clone() }),
        _ => Cow::Borrowed(r),
    }
}

fn lock(book: &Arc<Mutex<Book>>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Journals an entry (fsync) and applies it to the in-memory state.
fn journal_apply(b: &mut Book, e: Entry) -> Result<()> {
    Ok(b.session.record(&e)?)
}

/// Counts one batch's result, stops the run where it must (401, a redirect, a journal that
/// cannot be written), and returns the progress line.
fn tally_result(
    t: &mut Tally,
    r: Result<SendResult>,
    recipients: usize,
    stop: &AtomicBool,
    fatal: &Mutex<Option<Error>>,
) -> String {
    match r {
        Ok(SendResult::Accepted { request_id, .. }) => {
            t.accepted += 1;
            t.recipients_accepted += recipients;
            format!("accepted {} ({recipients} recipients)", request_id.unwrap_or_else(|| "without request id".into()))
        }
        Ok(SendResult::Rejected { status, message }) => {
            t.rejected += 1;
            format!("REJECTED (HTTP {status}): {message}")
        }
        Ok(SendResult::NotSent { message }) => {
            t.not_sent += 1;
            stop.store(true, Ordering::SeqCst);
            t.stopped_by = Some(format!(
                "{message}; that request never reached Kore.ai (nobody received it, and nothing is recorded as sent or rejected), so the run stopped. Check `host` in kore-notify.yaml and the network, then apply again: its recipients are sent then"
            ));
            format!("NOT SENT: {message}; stopping")
        }
        Ok(SendResult::Unauthorized { message }) => {
            t.rejected += 1;
            stop.store(true, Ordering::SeqCst);
            t.stopped_by = Some(format!(
                "Kore.ai refused the credentials (401: {message}); the run stopped. Check KORE_CLIENT_ID / the client secret and the app's scope"
            ));
            format!("REJECTED (401): {message}; stopping")
        }
        Ok(SendResult::Redirected { status, location }) => {
            t.rejected += 1;
            stop.store(true, Ordering::SeqCst);
            t.stopped_by = Some(format!(
                "the server answered HTTP {status} redirecting to {location}; redirects are never followed, so the request was not processed and nobody received it. Fix `host` in kore-notify.yaml to the address Kore.ai really serves (https), then apply again"
            ));
            format!("REJECTED (HTTP {status} redirect to {location}, not followed); stopping")
        }
        Ok(SendResult::Unknown { reason } | SendResult::Unconfirmed { reason, .. }) => {
            t.unknown += 1;
            format!("UNKNOWN outcome: {reason}")
        }
        Err(e) => {
            // The journal could not be written: stop before sending anything else.
            stop.store(true, Ordering::SeqCst);
            let msg = e.to_string();
            *fatal.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            format!("STOPPED: {msg}")
        }
    }
}

fn send_all(
    opts: SendOptions,
    client: &impl KoreApi,
    book: &Arc<Mutex<Book>>,
    batches: Vec<Batch>,
    body: BodyOptions,
) -> Result<Tally> {
    let parallelism = opts.parallelism.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::system("start the async runtime"))?;
    let stop = AtomicBool::new(false);
    let tally = Mutex::new(Tally::default());
    let total = batches.len();
    let recipients = batches.iter().map(|b| b.members.len()).sum();
    let progress = super::progress::Progress::new(total, recipients, opts.shell, opts.color);
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    rt.block_on(async {
        use futures_util::StreamExt;
        futures_util::stream::iter(batches.into_iter().enumerate())
            .for_each_concurrent(parallelism, |(i, mut batch)| {
                let (stop, tally, fatal, progress) = (&stop, &tally, &fatal, &progress);
                async move {
                    let stopped = |recipients: usize| {
                        let s = stop.load(Ordering::SeqCst) || crate::interrupt::requested().is_some();
                        if s {
                            let mut t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            t.skipped += 1;
                            t.skipped_recipients += recipients;
                        }
                        s
                    };
                    if stopped(batch.members.len()) || !still_in_window(&mut batch, opts.now, tally) {
                        return;
                    }
                    // The rate-limit slot comes first: a batch is journaled only when it can leave at
                    // once. A run stopped meanwhile (401, redirect, journal failure, interrupt) skips it.
                    tokio::select! {
                        () = client.take_send_slot() => {}
                        () = crate::interrupt::wait() => {}
                    }
                    if stopped(batch.members.len()) || !still_in_window(&mut batch, opts.now, tally) {
                        return;
                    }
                    let Some(r) = send_one(client, book, &batch, body).await.transpose() else {
                        let mut t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        t.held_by_gate += batch.members.len();
                        return;
                    };
                    let bad = !matches!(r, Ok(SendResult::Accepted { .. }));
                    let line = {
                        let mut t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        tally_result(&mut t, r, batch.members.len(), stop, fatal)
                    };
                    let msg = format!(
                        "[{}/{}] {}: {}",
                        i + 1,
                        total,
                        crate::safe::line(&batch.label),
                        crate::safe::line(&line)
                    );
                    progress.done(i, batch.members.len(), msg, bad);
                }
            })
            .await;
    });
    let elapsed = progress.finish();
    if let Some(e) = fatal.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(e);
    }
    let mut tally = tally.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    tally.elapsed = elapsed;
    Ok(tally)
}

/// Drops the batch's recipients whose delivery window has closed by now (the plan's "now" plus
/// the time since), counting them; whether anyone is left to send. The same core as the plan's.
fn still_in_window(
    batch: &mut Batch<'_>,
    (now, read_at): (time::OffsetDateTime, std::time::Instant),
    tally: &Mutex<Tally>,
) -> bool {
    let before = batch.members.len();
    crate::window::plan::split(batch.n, &mut batch.members, |m| m.0, now + read_at.elapsed());
    let late = before - batch.members.len();
    if late > 0 {
        tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner).outside_window += late;
    }
    !batch.members.is_empty()
}

async fn send_one(
    client: &impl KoreApi,
    book: &Arc<Mutex<Book>>,
    batch: &Batch<'_>,
    opts: BodyOptions,
) -> Result<Option<SendResult>> {
    let n = batch.n;
    let as_sent: Vec<_> = batch.members.iter().map(|(i, _, _)| as_sent(n, &n.recipients[*i], opts)).collect();
    let recipients: Vec<&Recipient> = as_sent.iter().map(std::convert::AsRef::as_ref).collect();
    let body = kore::body(n, &recipients, opts.v2_field);
    // 1. Intent, durable before the request leaves.
    let req = tokio::task::block_in_place(|| -> Result<Option<u32>> {
        let mut b = lock(book);
        if !gate_admits(b.session.state(), batch) {
            return Ok(None);
        }
        let req = b.session.state().notifications.get(&n.key).map_or(0, |s| s.requests.len() as u32);
        let at = b.clock.stamp();
        journal_apply(
            &mut b,
            Entry::Intent {
                key: n.key.clone(),
                req,
                batch: crate::fingerprint::random_id(),
                channel: n.channel,
                api: n.api,
                content: StoredContent::from(&n.content),
                recipients: batch.members.iter().map(|(_, h, fp)| (*h, *fp)).collect(),
                at,
            },
        )?;
        Ok(Some(req))
    })?;
    let Some(req) = req else { return Ok(None) };
    // 2. The request.
    let result = client.send(n.api, &body).await;
    // 3. Outcome.
    let entry = outcome_entry(&n.key, req, &result);
    tokio::task::block_in_place(|| {
        let mut b = lock(book);
        journal_apply(&mut b, entry)
    })?;
    Ok(Some(result))
}

/// Whether the rollout gate still lets `batch` go, asked of the state as its intent is about to
/// be journaled (the same gate as the plan's; without a rollout, always).
fn gate_admits(st: &crate::state::State, batch: &Batch<'_>) -> bool {
    let (n, Some(wave)) = (batch.n, batch.wave) else { return true };
    let Some(ro) = n.rollout.as_deref() else { return true };
    let digest = crate::fingerprint::content_digest(n.api, n.channel, &StoredContent::from(&n.content));
    let entry = st.notifications.get(&n.key);
    let rec = crate::rollout::record(entry, &digest);
    let fresh = batch
        .members
        .iter()
        .filter(|(_, h, _)| {
            !rec.zip(entry)
                .and_then(|(r, e)| e.recipients.get(h).map(|rs| crate::rollout::in_rollout(r, rs)))
                .unwrap_or(false)
        })
        .count() as u64;
    crate::rollout::admits(ro, entry, &digest, wave, fresh)
}

/// The journal entry recording Kore.ai's answer to request `req` of `key`.
pub(crate) fn outcome_entry(key: &str, req: u32, result: &SendResult) -> Entry {
    let (outcome, request_id, status, error) = match result {
        SendResult::Accepted { request_id, status } => (Outcome::Accepted, request_id.clone(), status.clone(), None),
        SendResult::Redirected { status, location } => {
            (Outcome::Rejected, None, None, Some(format!("HTTP {status} redirect to {location} (not followed)")))
        }
        SendResult::Rejected { message, .. } | SendResult::Unauthorized { message } => {
            (Outcome::Rejected, None, None, Some(message.clone()))
        }
        SendResult::NotSent { message } => (Outcome::NotSent, None, None, Some(message.clone())),
        SendResult::Unknown { reason } => (Outcome::Unknown, None, None, Some(reason.clone())),
        SendResult::Unconfirmed { request_id, reason } => {
            (Outcome::Unknown, request_id.clone(), None, Some(reason.clone()))
        }
    };
    Entry::Outcome { key: key.to_string(), req, outcome, request_id, status, error }
}
