//! The status poller: asks the status APIs (v1 and v2) about every request that is not terminal
//! yet and records the per-recipient outcomes through a state session (`status --refresh`, and
//! `apply --wait` under the session it sent with).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::fingerprint::recipient_hash;
use crate::interp::Env;
use crate::kore::{Client, KoreApi, RateLimiter, is_terminal_status};
use crate::state::{Entry, Outcome, Session, State};

/// Asks Kore.ai for every non-terminal request and records answers; with `wait`, repeats until all
/// are terminal or the timeout passes. Returns 3 when some delivery failed or the wait timed out.
/// The caller holds `session` (apply --wait records under its own); `clock` stamps the tokens.
pub(crate) fn refresh_until(
    config: &Config,
    env: &dyn Env,
    clock: Clock,
    quiet: bool,
    session: &mut dyn Session,
    timeout: Option<Duration>,
    wait: bool,
) -> Result<Exit> {
    let creds = config.credentials(env)?;
    crate::interrupt::install();
    let limiter = Arc::new(RateLimiter::new(config.per_minute, config.per_hour));
    let client = Client::new(config, creds, limiter, clock)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::system("start the async runtime"))?;
    if open_requests(session.state()).is_empty() {
        // Nothing to ask: the state is left exactly as it is (no new serial, no journal).
        return Ok(if any_failed_delivery(session.state()) { Exit::Partial } else { Exit::Ok });
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
            match rt.block_on(KoreApi::status(&client, *api, id)) {
                Ok(js) => record_status(quiet, session, key, *req, id, js)?,
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
        return Ok(Exit::Interrupted(sig));
    }
    Ok(if failed || timed_out { Exit::Partial } else { Exit::Ok })
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
    quiet: bool,
    session: &mut dyn Session,
    key: &str,
    req: u32,
    id: &str,
    js: crate::kore::JobStatus,
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
    let recipients: Vec<(crate::fingerprint::RecipientHash, String, Option<String>)> = js
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
    if !quiet && is_terminal_status(&status) {
        notice(key, id, &format!("{status} ({delivered} delivered, {failed_n} failed)"));
    }
    Ok(())
}

/// A line about one request on stderr: key, id and server text made safe for a terminal or a log.
fn notice(key: &str, id: &str, what: &str) {
    let line = format!("{} request {}: {}", crate::safe::line(key), crate::safe::line(id), crate::safe::line(what));
    eprintln!("{}", crate::safe::for_output(&line));
}
