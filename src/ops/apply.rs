//! `kore-notify apply`: send exactly what the plan shows, at most once.
//!
//! Pipeline: load and validate → lock the state → absorb a journal left by a dead run → plan →
//! confirm → for each batch: journal the intent (fsync) → POST → journal the outcome (fsync) →
//! compact the journal into a new snapshot. If the process dies anywhere, the journal says which
//! batches may have been sent (intent without outcome = unknown); those are never resent without
//! `--retry-unknown` or `state resolve`.

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::{self, Client, KoreApi, SendResult};
use crate::error::{Error, Result, exit};
use crate::fingerprint::H16;
use crate::manifest::{Notification, Recipient};
use crate::ops::plan::{Format, Retry, check_retry, compute, render};
use crate::ops::{Global, load_workspace, status};
use crate::plan::{Action, Plan};
use crate::ratelimit::RateLimiter;
use crate::state::{self, Entry, Outcome, Session, StoredContent};

pub struct Options {
    pub plan_file: Option<PathBuf>,
    pub auto_approve: bool,
    pub parallelism: usize,
    pub max_recipients: Option<usize>,
    pub retry: Retry,
    pub wait: bool,
    pub timeout: Duration,
}

/// Shared by the batch tasks: the writer's session on the state (entries recorded durably, then
/// folded into its state).
struct Book {
    session: Box<dyn Session>,
}

struct Batch<'a> {
    n: &'a Notification,
    /// (recipient index, hash, fingerprint)
    members: Vec<(usize, H16, H16)>,
    label: String,
}

#[derive(Default)]
struct Tally {
    accepted: usize,
    rejected: usize,
    unknown: usize,
    /// Batches not started (the run stopped: 401, a redirect, an interrupt, a journal failure).
    skipped: usize,
    skipped_recipients: usize,
    recipients_accepted: usize,
    /// Why the run stopped early (401, a redirect), as the error to report.
    stopped_by: Option<String>,
}

fn confirm(plan: &Plan) -> Result<bool> {
    eprint!(
        "\nkore-notify will send {} notification(s) to {} recipient(s). This cannot be undone.\nOnly 'yes' will be accepted to approve.\n\n  Enter a value: ",
        plan.summary.notifications_to_send, plan.summary.recipients_to_send
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| Error::Io(format!("cannot read the answer: {e}")))?;
    Ok(line.trim() == "yes")
}

pub fn run(g: &Global, opts: &Options) -> Result<i32> {
    crate::interrupt::install();
    let ws = load_workspace(g, &[])?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut session = state::store_for(&ws.config, g.env())?.open(&command)?;
    let loaded = session.loaded();
    crate::ops::check_retired(g, &ws, &loaded.state)?;
    if loaded.replayed > 0 {
        g.info(format!(
            "recovered {} journal entries left by an interrupted run; requests without a recorded answer are now unknown",
            loaded.replayed
        ));
    }
    check_retry(&loaded.state, &opts.retry)?;
    let plan = compute(g, &ws, loaded, &opts.retry);
    if let Some(pf) = &opts.plan_file {
        check_plan_file(pf, &plan)?;
    }
    if !g.quiet {
        eprint!("{}", crate::safe::for_output(&render(g, &plan, Format::Text, &crate::render::Review::default())));
    }
    let held = plan.summary.recipients_held;
    let to_send = plan.summary.recipients_to_send;
    let to_record: usize = plan.notifications.iter().map(|n| n.records.len()).sum();
    let renames: Vec<(&str, &str)> =
        plan.notifications.iter().filter_map(|n| n.renamed_from.as_deref().map(|f| (f, n.key.as_str()))).collect();
    let chores = housekeeping(g, &ws, &plan, &loaded.state);
    if to_send == 0 && to_record == 0 && renames.is_empty() {
        g.info("Nothing to send.");
        if !chores.is_empty() {
            for e in &chores {
                session.record(e)?;
            }
            session.compact()?;
            report_chores(g, &chores);
        }
        report_held(&plan);
        let mut code = if held > 0 { exit::PARTIAL } else { exit::OK };
        if opts.wait {
            code = code.max(wait_for(g, &ws.config, &mut *session, opts.timeout)?);
        }
        return Ok(code);
    }
    if !approved(g, &plan, opts)? {
        g.info("Apply cancelled; nothing was sent.");
        return Ok(exit::ERROR);
    }
    let creds = if to_send > 0 { Some(ws.config.credentials(g.env())?) } else { None };
    if let Some(sig) = crate::interrupt::requested() {
        eprintln!("Interrupted by {} before anything was sent.", crate::interrupt::name(sig));
        return Ok(crate::interrupt::exit_code(sig));
    }

    let book = Arc::new(Mutex::new(Book { session }));
    let by_key: std::collections::HashMap<&str, &Notification> =
        ws.repo.notifications.iter().map(|n| (n.key.as_str(), n)).collect();
    bookkeeping(&book, &plan, &by_key, &renames, &chores)?;
    report_chores(g, &chores);
    let batches = make_batches(&plan, &by_key, ws.config.batch_size);

    let tally = if let Some(creds) = creds {
        let limiter = Arc::new(RateLimiter::new(ws.config.per_minute, ws.config.per_hour));
        let client = Client::new(&ws.config, creds, limiter).map_err(Error::Io)?;
        let body = BodyOptions {
            v2_field: ws.config.v2_field,
            template_as_custom_message: ws.config.v2_template_as_custom_message,
        };
        send_all(g, &client, &book, batches, opts.parallelism.max(1), body)?
    } else {
        Tally::default()
    };

    // The session (and its lock) lives until the end of the run: `--wait` records statuses under it.
    let mut book = Arc::try_unwrap(book)
        .map_err(|_| Error::Io("internal: batch tasks still running".into()))?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    book.session.compact()?;

    let mut code = report(&tally, &plan)?;
    if let Some(sig) = crate::interrupt::requested() {
        eprintln!(
            "Interrupted by {}: the requests in flight finished and are recorded; {} batch(es) to {} recipient(s) were not sent. Run `kore-notify apply` again to send them.",
            crate::interrupt::name(sig),
            tally.skipped,
            tally.skipped_recipients
        );
        return Ok(crate::interrupt::exit_code(sig));
    }
    if opts.wait {
        let w = wait_for(g, &ws.config, &mut *book.session, opts.timeout)?;
        code = code.max(w);
    }
    Ok(code)
}

/// Whether the run may send: approval on a terminal, `--auto-approve`, or a reviewed plan file;
/// and within `--max-recipients`.
fn approved(g: &Global, plan: &Plan, opts: &Options) -> Result<bool> {
    let _ = g;
    let to_send = plan.summary.recipients_to_send;
    if let Some(max) = opts.max_recipients
        && to_send > max
    {
        return Err(Error::Refused(format!(
            "this apply would message {to_send} recipients, more than --max-recipients {max}; review the plan and raise the limit if it is intended"
        )));
    }
    if to_send > 0 && !opts.auto_approve && opts.plan_file.is_none() {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Refused(
                "apply needs approval: run it on a terminal to confirm, or pass --auto-approve (for CI) or a reviewed plan file".into(),
            ));
        }
        return confirm(plan);
    }
    Ok(true)
}

/// Bookkeeping that sends nothing comes first: renames, retries, recorded changes.
fn bookkeeping(
    book: &Arc<Mutex<Book>>,
    plan: &Plan,
    by_key: &std::collections::HashMap<&str, &Notification>,
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
    for p in plan.notifications.iter().filter(|p| !p.records.is_empty()) {
        let Some(n) = by_key.get(p.key.as_str()) else {
            continue;
        };
        journal_apply(
            &mut b,
            Entry::Record {
                key: p.key.clone(),
                channel: n.channel,
                api: n.api,
                content: StoredContent::from(&n.content),
                recipients: p.records.iter().map(|r| (r.hash, r.fingerprint)).collect(),
                at: state::now_rfc3339(),
            },
        )?;
    }
    Ok(())
}

/// Entries that send nothing and need no approval (recorded after renames): orphan dates recorded
/// (or cleared when a key comes back), tombstones for notifications orphaned longer than the
/// config's `retention` with every request settled, and tombstones dropped for keys reused with
/// `reuseRetiredKey: true`.
fn housekeeping(g: &Global, ws: &crate::ops::Workspace, plan: &Plan, st: &state::State) -> Vec<Entry> {
    let now = state::format_time(g.now);
    let mut out = Vec::new();
    for p in &plan.notifications {
        if p.action == Action::Orphaned {
            let Some(n) = st.notifications.get(&p.key) else { continue };
            if n.orphaned_since.is_none() {
                out.push(Entry::Orphan { key: p.key.clone(), since: Some(now.clone()) });
            } else if ws.config.retention.is_some_and(|r| n.due_for_tombstone(r, g.now)) {
                out.push(Entry::Retire { key: p.key.clone(), at: now.clone() });
            }
        } else {
            let from = p.renamed_from.as_deref().unwrap_or(&p.key);
            if st.notifications.get(from).is_some_and(|n| n.orphaned_since.is_some()) {
                out.push(Entry::Orphan { key: p.key.clone(), since: None });
            }
        }
    }
    for n in ws.repo.notifications.iter().filter(|n| n.reuse_retired_key) {
        if st.tombstones.contains_key(&n.key) {
            out.push(Entry::Revive { key: n.key.clone() });
        }
    }
    out
}

/// Says what [`housekeeping`] recorded.
fn report_chores(g: &Global, chores: &[Entry]) {
    for e in chores {
        let line = match e {
            Entry::Orphan { key, since: Some(s) } => format!("`{key}` is orphaned since {s} (recorded in the state)"),
            Entry::Orphan { key, since: None } => format!("`{key}` is back in the manifests: no longer orphaned"),
            Entry::Retire { key, .. } => format!(
                "`{key}` was orphaned longer than the retention: replaced by a tombstone (key, content digest, dates, counts); its key cannot be reused without `reuseRetiredKey: true`"
            ),
            Entry::Revive { key } => format!("`{key}`: retired key reused (reuseRetiredKey: true), tombstone dropped"),
            _ => continue,
        };
        g.info(crate::safe::for_output(&crate::safe::line(&line)));
    }
}

fn make_batches<'a>(
    plan: &Plan,
    by_key: &std::collections::HashMap<&str, &'a Notification>,
    batch_size: usize,
) -> Vec<Batch<'a>> {
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
            });
        }
    }
    batches
}

/// Tells about recipients held back by unknown requests (the run exits 3 for them).
fn report_held(plan: &Plan) {
    if plan.summary.recipients_held == 0 {
        return;
    }
    eprintln!(
        "{} recipient(s) were held back by {} request(s) with an unknown outcome: they may have received it already. Decide per request with `kore-notify state resolve KEY REQUEST --sent|--not-sent` (it lists their recipients) or `kore-notify apply --retry-unknown=KEY#REQUEST`.",
        plan.summary.recipients_held, plan.summary.unknown_requests
    );
}

/// The closing lines and the exit code: 3 when a request was rejected or unknown, or some planned
/// recipient was held back.
fn report(tally: &Tally, plan: &Plan) -> Result<i32> {
    println!(
        "Apply: {} request(s) accepted ({} recipient(s)), {} rejected, {} unknown{}.",
        tally.accepted,
        tally.recipients_accepted,
        tally.rejected,
        tally.unknown,
        if tally.skipped > 0 { format!(", {} not sent", tally.skipped) } else { String::new() }
    );
    if let Some(msg) = &tally.stopped_by {
        return Err(Error::Refused(msg.clone()));
    }
    if tally.unknown > 0 {
        eprintln!(
            "{} request(s) have an unknown outcome: they may have been delivered. Their recipients are held back (nobody else is); `kore-notify plan` lists them, decide with `kore-notify state resolve KEY REQUEST --sent|--not-sent` or `kore-notify apply --retry-unknown=KEY#REQUEST`.",
            tally.unknown
        );
    }
    report_held(plan);
    let partial = tally.rejected > 0 || tally.unknown > 0 || plan.summary.recipients_held > 0;
    Ok(if partial { exit::PARTIAL } else { exit::OK })
}

/// How request bodies are built (from the config).
#[derive(Clone, Copy)]
struct BodyOptions {
    v2_field: crate::config::V2Field,
    /// `v2TemplateAsCustomMessage` (default true).
    template_as_custom_message: bool,
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
fn as_sent<'a>(n: &Notification, r: &'a Recipient, opts: BodyOptions) -> Cow<'a, Recipient> {
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

fn wait_for(g: &Global, config: &crate::config::Config, session: &mut dyn Session, timeout: Duration) -> Result<i32> {
    status::refresh_until(g, config, session, Some(timeout), true)
}

fn lock(book: &Arc<Mutex<Book>>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|p| p.into_inner())
}

/// Journals an entry (fsync) and applies it to the in-memory state.
fn journal_apply(b: &mut Book, e: Entry) -> Result<()> {
    b.session.record(&e)
}

fn check_plan_file(path: &std::path::Path, current: &Plan) -> Result<()> {
    let bytes = crate::files::read_named(path, crate::ops::plan::MAX_PLAN_BYTES)
        .map_err(|e| Error::StalePlan { path: path.to_path_buf(), message: format!("cannot read: {e}") })?;
    let saved: Plan = serde_json::from_slice(&bytes).map_err(|e| Error::StalePlan {
        path: path.to_path_buf(),
        message: format!("not a kore-notify plan file: {e}"),
    })?;
    let stale = |what: &str| Error::StalePlan {
        path: path.to_path_buf(),
        message: format!("{what} changed since the plan was made; run `kore-notify plan --out` again and review it"),
    };
    let (s, c) = (&saved.binding, &current.binding);
    if s.tool_version != c.tool_version {
        return Err(stale("the kore-notify version"));
    }
    if s.state_lineage != c.state_lineage || s.state_serial != c.state_serial || s.state_digest != c.state_digest {
        return Err(stale("the state"));
    }
    if s.manifests_digest != c.manifests_digest || s.target != c.target {
        return Err(stale("the manifests"));
    }
    let sends = |p: &Plan| -> Vec<(String, Action, Vec<H16>)> {
        p.notifications
            .iter()
            .map(|n| (n.key.clone(), n.action, n.sends.iter().map(|r| r.fingerprint).collect()))
            .collect()
    };
    if sends(&saved) != sends(current) {
        return Err(stale("what would be sent (the send windows or retry options)"));
    }
    Ok(())
}

/// A progress bar on a terminal (plain lines otherwise, or nothing with --quiet).
fn progress_bar(g: &Global, total: usize) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || g.quiet {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} batches {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(pb)
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
            *fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            format!("STOPPED: {msg}")
        }
    }
}

fn send_all(
    g: &Global,
    client: &impl KoreApi,
    book: &Arc<Mutex<Book>>,
    batches: Vec<Batch>,
    parallelism: usize,
    body: BodyOptions,
) -> Result<Tally> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("cannot start the async runtime: {e}")))?;
    let stop = AtomicBool::new(false);
    let tally = Mutex::new(Tally::default());
    let total = batches.len();
    let progress = progress_bar(g, total);
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    rt.block_on(async {
        use futures_util::StreamExt;
        futures_util::stream::iter(batches.into_iter().enumerate())
            .for_each_concurrent(parallelism, |(i, batch)| {
                let (stop, tally, fatal, progress) = (&stop, &tally, &fatal, &progress);
                async move {
                    let stopped = || {
                        let s = stop.load(Ordering::SeqCst) || crate::interrupt::requested().is_some();
                        if s {
                            let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                            t.skipped += 1;
                            t.skipped_recipients += batch.members.len();
                        }
                        s
                    };
                    if stopped() {
                        return;
                    }
                    // The rate-limit slot comes first: a batch is journaled only when it can leave at
                    // once. A run stopped meanwhile (401, redirect, journal failure, interrupt) skips it.
                    tokio::select! {
                        () = client.take_send_slot() => {}
                        () = crate::interrupt::wait() => {}
                    }
                    if stopped() {
                        return;
                    }
                    let r = send_one(client, book, &batch, body).await;
                    let line = {
                        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                        tally_result(&mut t, r, batch.members.len(), stop, fatal)
                    };
                    let msg = format!(
                        "[{}/{}] {}: {}",
                        i + 1,
                        total,
                        crate::safe::line(&batch.label),
                        crate::safe::line(&line)
                    );
                    match progress {
                        Some(pb) => {
                            pb.inc(1);
                            pb.println(msg);
                        }
                        None if !g.quiet => eprintln!("{msg}"),
                        None => {}
                    }
                }
            })
            .await;
    });
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if let Some(e) = fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(tally.into_inner().unwrap_or_else(|p| p.into_inner()))
}

async fn send_one(
    client: &impl KoreApi,
    book: &Arc<Mutex<Book>>,
    batch: &Batch<'_>,
    opts: BodyOptions,
) -> Result<SendResult> {
    let n = batch.n;
    let as_sent: Vec<_> = batch.members.iter().map(|(i, _, _)| as_sent(n, &n.recipients[*i], opts)).collect();
    let recipients: Vec<&Recipient> = as_sent.iter().map(|r| r.as_ref()).collect();
    let body = client::body(n, &recipients, opts.v2_field);
    // 1. Intent, durable before the request leaves.
    let req = tokio::task::block_in_place(|| -> Result<u32> {
        let mut b = lock(book);
        let req = b.session.state().notifications.get(&n.key).map(|s| s.requests.len() as u32).unwrap_or(0);
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
                at: state::now_rfc3339(),
            },
        )?;
        Ok(req)
    })?;
    // 2. The request.
    let result = client.send(n.api, &body).await;
    // 3. Outcome.
    let entry = match &result {
        SendResult::Accepted { request_id, status } => Entry::Outcome {
            key: n.key.clone(),
            req,
            outcome: Outcome::Accepted,
            request_id: request_id.clone(),
            status: status.clone(),
            error: None,
        },
        SendResult::Redirected { status, location } => Entry::Outcome {
            key: n.key.clone(),
            req,
            outcome: Outcome::Rejected,
            request_id: None,
            status: None,
            error: Some(format!("HTTP {status} redirect to {location} (not followed)")),
        },
        SendResult::Rejected { message, .. } | SendResult::Unauthorized { message } => Entry::Outcome {
            key: n.key.clone(),
            req,
            outcome: Outcome::Rejected,
            request_id: None,
            status: None,
            error: Some(message.clone()),
        },
        SendResult::Unknown { reason } => Entry::Outcome {
            key: n.key.clone(),
            req,
            outcome: Outcome::Unknown,
            request_id: None,
            status: None,
            error: Some(reason.clone()),
        },
        SendResult::Unconfirmed { request_id, reason } => Entry::Outcome {
            key: n.key.clone(),
            req,
            outcome: Outcome::Unknown,
            request_id: request_id.clone(),
            status: None,
            error: Some(reason.clone()),
        },
    };
    tokio::task::block_in_place(|| {
        let mut b = lock(book);
        journal_apply(&mut b, entry)
    })?;
    Ok(result)
}
