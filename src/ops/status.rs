//! `kore-notify status`: what was delivered. Offline from the state by default; `--refresh` asks
//! the status APIs (v1 and v2) for every request that is not terminal yet and records the
//! per-recipient outcomes in the state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{Client, is_terminal_status};
use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::fingerprint::recipient_hash;
use crate::ops::{Global, load_workspace};
use crate::ratelimit::RateLimiter;
use crate::state::{self, Entry, Outcome, Session, State};

pub struct Options {
    pub keys: Vec<String>,
    pub refresh: bool,
    pub json: bool,
    /// A CI job summary: masked recipients, Kore.ai's comments, what is blocked.
    pub markdown: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    key: String,
    channel: String,
    requests: usize,
    accepted: usize,
    rejected: usize,
    unknown: usize,
    recipients: usize,
    delivered: usize,
    failed: usize,
    pending: usize,
    failures: Vec<Failure>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    recipient: String,
    comment: String,
}

pub fn run(g: &Global, opts: &Options) -> Result<i32> {
    let ws = load_workspace(g, &[])?;
    if opts.refresh {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let mut session = state::store_for(&ws.config, g.env())?.open(&command)?;
        refresh_until(g, &ws.config, &mut *session, None, false)?;
    }
    let loaded = state::store_for(&ws.config, g.env())?.load()?;
    let st = &loaded.state;
    for k in &opts.keys {
        if !st.notifications.contains_key(k) {
            return Err(Error::Refused(format!(
                "no notification `{k}` in the state; `kore-notify state list` shows the keys"
            )));
        }
    }
    // Map recipient hashes back to identities through the manifests (the state holds no identities).
    let mut names: HashMap<crate::fingerprint::H16, String> = HashMap::new();
    for n in &ws.repo.notifications {
        for r in &n.recipients {
            names.insert(recipient_hash(&st.lineage, &r.id), r.id.clone());
        }
    }
    let mut rows = Vec::new();
    let mut any_failed = false;
    for (key, n) in &st.notifications {
        if !opts.keys.is_empty() && !opts.keys.contains(key) {
            continue;
        }
        let count = |o: &[Outcome]| n.requests.iter().filter(|r| o.contains(&r.outcome)).count();
        let mut row = Row {
            key: key.clone(),
            channel: n.channel.as_str().into(),
            requests: n.requests.len(),
            accepted: count(&[Outcome::Accepted, Outcome::ResolvedSent]),
            rejected: count(&[Outcome::Rejected]),
            unknown: count(&[Outcome::Unknown, Outcome::Pending]),
            recipients: n.recipients.values().filter(|r| r.fp.is_some()).count(),
            delivered: 0,
            failed: 0,
            pending: 0,
            failures: vec![],
        };
        for (h, r) in &n.recipients {
            if r.fp.is_none() {
                continue;
            }
            match r.delivery.as_deref() {
                Some("SUCCESS") => row.delivered += 1,
                Some(_) => {
                    row.failed += 1;
                    row.failures.push(Failure {
                        recipient: names
                            .get(h)
                            .cloned()
                            .unwrap_or_else(|| format!("(removed recipient {})", &h.to_string()[..8])),
                        comment: r.comment.clone().unwrap_or_default().trim_matches('\'').to_string(),
                    });
                }
                None => row.pending += 1,
            }
        }
        row.failures.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        any_failed |= row.failed > 0 || row.unknown > 0 || row.rejected > 0;
        rows.push(row);
    }
    if opts.json {
        // JSON escapes control characters itself; the text is for people.
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"formatVersion": 1, "notifications": rows}))
                .unwrap_or_default()
        );
    } else if opts.markdown {
        print!("{}", crate::safe::for_output(&status_markdown(&rows, ws.config.target())));
    } else {
        print!("{}", crate::safe::for_output(&status_table(g, &rows)));
    }
    Ok(if any_failed { exit::PARTIAL } else { exit::OK })
}

/// The status for a CI job summary: what was sent and delivered, failures with Kore.ai's comments
/// (recipients masked as in plan comments), unknown requests waiting for a decision.
fn status_markdown(rows: &[Row], mask_key: &str) -> String {
    use crate::safe::md;
    use std::fmt::Write;
    let mut out = String::from("### kore-notify status\n\n");
    if rows.is_empty() {
        out.push_str("Nothing sent yet.\n");
        return out;
    }
    out.push_str("| notification | channel | recipients | delivered | failed | pending | requests |\n|---|---|---:|---:|---:|---:|---|\n");
    for r in rows {
        let mut req = format!("{} accepted", r.accepted);
        if r.rejected > 0 {
            let _ = write!(req, ", {} rejected", r.rejected);
        }
        if r.unknown > 0 {
            let _ = write!(req, ", **{} unknown** (blocked: `kore-notify state resolve`)", r.unknown);
        }
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {req} |",
            crate::safe::line(&r.key).replace('`', "'"),
            md(&r.channel),
            r.recipients,
            r.delivered,
            r.failed,
            r.pending
        );
    }
    for r in rows.iter().filter(|r| !r.failures.is_empty()) {
        let _ = writeln!(
            out,
            "\n<details><summary>{} failed delivery(ies) of <code>{}</code></summary>\n",
            r.failures.len(),
            crate::safe::html(&r.key)
        );
        for f in r.failures.iter().take(50) {
            let who = if f.recipient.starts_with('(') {
                f.recipient.clone()
            } else {
                crate::render::mask(&f.recipient, mask_key)
            };
            let _ = writeln!(out, "- {}: {}", md(&who), md(&f.comment));
        }
        if r.failures.len() > 50 {
            let _ = writeln!(out, "- … and {} more (`kore-notify status --verbose`)", r.failures.len() - 50);
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// The status as text: every string from the manifests, the state or Kore.ai made safe.
fn status_table(g: &Global, rows: &[Row]) -> String {
    use crate::safe::line;
    use std::fmt::Write;
    let mut out = String::new();
    {
        let _ = writeln!(
            out,
            "{:<40} {:>8} {:>10} {:>9} {:>7} {:>8}  requests",
            "notification", "channel", "recipients", "delivered", "failed", "pending"
        );
        for r in rows {
            let mut req = format!("{} accepted", r.accepted);
            if r.rejected > 0 {
                req.push_str(&format!(", {} rejected", r.rejected));
            }
            if r.unknown > 0 {
                req.push_str(&format!(", {} UNKNOWN", r.unknown));
            }
            let _ = writeln!(
                out,
                "{:<40} {:>8} {:>10} {:>9} {:>7} {:>8}  {req}",
                line(&r.key),
                r.channel,
                r.recipients,
                r.delivered,
                r.failed,
                r.pending
            );
            for f in r.failures.iter().take(if g.verbose { usize::MAX } else { 10 }) {
                let _ = writeln!(out, "    failed: {}: {}", line(&f.recipient), line(&f.comment));
            }
            if r.failures.len() > 10 && !g.verbose {
                let _ = writeln!(out, "    … and {} more failures (--verbose)", r.failures.len() - 10);
            }
        }
        if rows.is_empty() {
            let _ = writeln!(out, "(nothing sent yet)");
        }
    }
    out
}

/// Asks Kore.ai for every non-terminal request and records answers; with `wait`, repeats until all
/// are terminal or the timeout passes. Returns 3 when some delivery failed or the wait timed out.
/// `already_locked`: the caller (apply --wait) holds the state lock.
pub fn refresh_until(
    g: &Global,
    config: &Config,
    session: &mut dyn Session,
    timeout: Option<Duration>,
    wait: bool,
) -> Result<i32> {
    let creds = config.credentials(g.env())?;
    crate::interrupt::install();
    let limiter = Arc::new(RateLimiter::new(config.per_minute, config.per_hour));
    let client = Client::new(config, creds, limiter).map_err(Error::Io)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("cannot start the async runtime: {e}")))?;
    if open_requests(session.state()).is_empty() {
        // Nothing to ask: the state is left exactly as it is (no new serial, no journal).
        return Ok(if any_failed_delivery(session.state()) { exit::PARTIAL } else { exit::OK });
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut failed = false;
    let mut timed_out = false;
    loop {
        let open = open_requests(session.state());
        if open.is_empty() {
            break;
        }
        for (key, req, api, id) in &open {
            if crate::interrupt::requested().is_some() {
                break;
            }
            match rt.block_on(client.status(*api, id)) {
                Ok(js) => record_status(g, session, key, *req, id, js)?,
                Err(msg) => notice(key, id, &format!("status unavailable: {msg}")),
            }
        }
        if !wait || crate::interrupt::requested().is_some() {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            timed_out = true;
            eprintln!("timed out waiting for delivery statuses; `kore-notify status --refresh` checks again later");
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    failed |= any_failed_delivery(session.state());
    session.compact()?;
    if let Some(sig) = crate::interrupt::requested() {
        eprintln!("Interrupted by {}: the statuses received so far are recorded.", crate::interrupt::name(sig));
        return Ok(crate::interrupt::exit_code(sig));
    }
    Ok(if failed || timed_out { exit::PARTIAL } else { exit::OK })
}

/// Whether some recipient's delivery failed. Per recipient: a failure retried since (`apply
/// --retry-failed`) and delivered no longer counts.
fn any_failed_delivery(st: &State) -> bool {
    st.notifications
        .values()
        .any(|n| n.recipients.values().any(|r| r.fp.is_some() && r.delivery.as_deref().is_some_and(|d| d != "SUCCESS")))
}

/// Requests to ask Kore.ai about: accepted (or settled as sent) and not terminal yet, and unknown
/// ones whose answer carried a job id.
fn open_requests(st: &State) -> Vec<(String, u32, crate::manifest::Api, String)> {
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
                open.then(|| (k.clone(), i as u32, n.api, id))
            })
        })
        .collect()
}

/// Records a job status. An unknown request whose job Kore.ai's status API knows was processed:
/// it is settled as sent first, so its recipients are not held back any more.
fn record_status(
    g: &Global,
    session: &mut dyn Session,
    key: &str,
    req: u32,
    id: &str,
    js: crate::client::JobStatus,
) -> Result<()> {
    let was_unknown = session
        .state()
        .notifications
        .get(key)
        .and_then(|n| n.requests.get(req as usize))
        .is_some_and(|r| r.outcome.is_unknown());
    if was_unknown {
        session.record(&Entry::Resolve { key: key.to_string(), sent: true, req: Some(req) })?;
        let what = "Kore.ai knows this job, so it was processed; its unknown outcome is settled as sent";
        notice(key, &format!("#{req} ({id})"), what);
    }
    // Server text is kept only in a safe, bounded form.
    let clean = |s: &str, max: usize| crate::safe::line(s).chars().take(max).collect::<String>();
    let status = js.status.map_or_else(|| "UNKNOWN".into(), |s| clean(&s, 40));
    let recipients: Vec<(crate::fingerprint::H16, String, Option<String>)> = js
        .status_logs
        .iter()
        .filter_map(|l| {
            let id = l.original_id.as_ref()?;
            Some((
                recipient_hash(&session.state().lineage, id),
                clean(l.status.as_deref().unwrap_or_default(), 40),
                l.comments.as_deref().map(|c| clean(c, 300)),
            ))
        })
        .collect();
    let delivered = recipients.iter().filter(|r| r.1 == "SUCCESS").count() as u32;
    let failed_n = recipients.iter().filter(|r| r.1 != "SUCCESS").count() as u32;
    let e =
        Entry::Status { key: key.to_string(), req, status: status.clone(), delivered, failed: failed_n, recipients };
    session.record(&e)?;
    if !g.quiet && is_terminal_status(&status) {
        notice(key, id, &format!("{status} ({delivered} delivered, {failed_n} failed)"));
    }
    Ok(())
}

/// A line about one request on stderr: key, id and server text made safe for a terminal or a log.
fn notice(key: &str, id: &str, what: &str) {
    let line = format!("{} request {}: {}", crate::safe::line(key), crate::safe::line(id), crate::safe::line(what));
    eprintln!("{}", crate::safe::for_output(&line));
}
