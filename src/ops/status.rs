//! `kore-notify status`: what was delivered. Offline from the state by default; `--refresh` asks
//! the status APIs (v1 and v2) for every request that is not terminal yet and records the
//! per-recipient outcomes in the state.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::engine::poll::PollOptions;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::fingerprint::recipient_hash;
use crate::kore::RateLimiter;
use crate::ops::{Global, load_workspace_with};
use crate::state::{self, Outcome};

pub(crate) struct Options {
    pub(crate) keys: Vec<String>,
    pub(crate) refresh: bool,
    pub(crate) json: bool,
    /// A CI job summary: masked recipients, Kore.ai's comments, what is blocked.
    pub(crate) markdown: bool,
    /// Status calls in flight at once (`--parallelism`).
    pub(crate) parallelism: usize,
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
    /// Requests another run is sending right now (it holds the state's lock).
    in_flight: usize,
    /// Who is sending them.
    #[serde(skip_serializing_if = "Option::is_none")]
    in_flight_by: Option<String>,
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

pub(crate) fn run(g: &Global, opts: &Options) -> Result<Exit> {
    // A read-only status of a config with several targets covers each in turn (text and
    // markdown); a refresh, and JSON (one document), need one target.
    if g.target.is_none() && !opts.refresh && !opts.json {
        let mut diags = crate::diag::Diagnostics::default();
        let names = crate::config::Config::load(&crate::ops::config_path(g)?, g.env(), &mut diags)?
            .map(|c| c.target_names())
            .unwrap_or_default();
        if names.len() > 1 {
            let mut code = Exit::Ok;
            for name in names {
                g.shell.outln(format!("── target {name} ──"));
                let one = Global { target: Some(name), ..g.clone() };
                code = code.max(run_one(&one, opts)?);
            }
            return Ok(code);
        }
    }
    run_one(g, opts)
}

/// The status of one target (the one chosen, or the only one).
fn run_one(g: &Global, opts: &Options) -> Result<Exit> {
    // The refresh needs only the config and the state: it runs while the manifests load (they
    // only name failed recipients), so a large repository costs the refresh no time.
    let refresh = |config: &crate::config::Config| -> Result<Option<Box<dyn state::Session>>> {
        let t = config.one(g.target.as_deref(), "kore-notify status")?;
        if !opts.refresh {
            return Ok(None);
        }
        let mut s = g.open(&*t.store(g.env(), g.clock)?, &g.command)?;
        let limiter = Arc::new(RateLimiter::new(t.per_minute, t.per_hour));
        let poll = PollOptions { parallelism: opts.parallelism, shell: g.shell, timeout: None, wait: false };
        crate::engine::poll::refresh_until(t, g.env(), g.clock, limiter, &mut *s, &poll)?;
        Ok(Some(s))
    };
    let (ws, refreshed) = load_workspace_with(g, &[], refresh)?;
    let bot = ws.config.one(g.target.as_deref(), "kore-notify status")?.identity().to_string();
    // After a refresh, the status shown is the session's state (not read again).
    let (session, loaded);
    let st = match refreshed? {
        Some(s) => {
            session = s;
            session.state()
        }
        None => {
            loaded = ws.config.one(g.target.as_deref(), "kore-notify status")?.store(g.env(), g.clock)?.load()?;
            &loaded.state
        }
    };
    for k in &opts.keys {
        if !st.notifications.contains_key(k) {
            return Err(Error::Refused(format!(
                "no notification `{k}` in the state; `kore-notify state list` shows the keys"
            )));
        }
    }
    let shown = |key: &String| opts.keys.is_empty() || opts.keys.contains(key);
    // Map the failed recipients' hashes back to identities through the manifests (the state holds
    // no identities); nothing to map when nothing failed.
    let failed: HashSet<crate::fingerprint::RecipientHash> = st
        .notifications
        .iter()
        .filter(|(k, _)| shown(k))
        .flat_map(|(_, n)| {
            n.recipients
                .iter()
                .filter(|(_, r)| r.fp.is_some() && n.delivery(r).is_some_and(|d| d.status != "SUCCESS"))
                .map(|(h, _)| *h)
        })
        .collect();
    let mut names: HashMap<crate::fingerprint::RecipientHash, String> = HashMap::new();
    for r in ws.manifests.notifications.iter().flat_map(|n| &n.recipients).filter(|_| !failed.is_empty()) {
        let h = recipient_hash(&st.lineage, &r.id);
        if failed.contains(&h) {
            names.insert(h, r.id.clone());
        }
    }
    let mut rows = Vec::new();
    let mut any_failed = false;
    for (key, n) in &st.notifications {
        if !shown(key) {
            continue;
        }
        let count = |o: &[Outcome]| n.requests.iter().filter(|r| o.contains(&r.outcome)).count();
        let mut row = Row {
            key: key.clone(),
            channel: n.channel.as_str().into(),
            requests: n.requests.len(),
            accepted: count(&[Outcome::Accepted, Outcome::ResolvedSent]),
            rejected: count(&[Outcome::Rejected]),
            // A pending request in a state read by a reader is being sent by a live run (a dead
            // run's are unknown once read).
            unknown: count(&[Outcome::Unknown]),
            in_flight: count(&[Outcome::Pending]),
            in_flight_by: n.requests.iter().find(|r| r.outcome == Outcome::Pending).and_then(|r| r.error.clone()),
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
            let delivery = n.delivery(r);
            match delivery.map(|d| d.status.as_str()) {
                Some("SUCCESS") => row.delivered += 1,
                Some(_) => {
                    row.failed += 1;
                    row.failures.push(Failure {
                        recipient: names
                            .get(h)
                            .cloned()
                            .unwrap_or_else(|| format!("(removed recipient {})", &h.to_string()[..8])),
                        comment: delivery
                            .and_then(|d| d.comment.as_deref())
                            .unwrap_or_default()
                            .trim_matches('\'')
                            .to_string(),
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
        // JSON escapes C0 controls itself; the rest of the unsafe characters are escaped too.
        let json = serde_json::to_string_pretty(&serde_json::json!({"formatVersion": 1, "notifications": rows}));
        g.shell.outln(crate::safe::json(&json.unwrap_or_default()));
    } else if opts.markdown {
        g.shell.out(crate::safe::for_output(&status_markdown(&rows, ws.config.review_mask.then_some(bot.as_str()))));
    } else {
        g.shell.out(crate::safe::for_output(&status_table(g, &rows)));
    }
    Ok(if any_failed { Exit::Partial } else { Exit::Ok })
}

/// The status for a CI job summary: what was sent and delivered, failures with Kore.ai's comments
/// (recipients masked as in plan comments), unknown requests waiting for a decision.
fn status_markdown(rows: &[Row], mask_key: Option<&str>) -> String {
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
        if r.in_flight > 0 {
            let _ = write!(req, ", {} in flight (another run is sending them)", r.in_flight);
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
            // As written, like the plan comment; masked when the config asks (`review: {mask: true}`).
            let who = match mask_key {
                Some(key) if !f.recipient.starts_with('(') => crate::render::mask(&f.recipient, key),
                _ => f.recipient.clone(),
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
            if r.in_flight > 0 {
                req.push_str(&format!(", {} {}", r.in_flight, line(r.in_flight_by.as_deref().unwrap_or("in flight"))));
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
