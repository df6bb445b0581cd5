//! `kore-notify test-send`: each notification the plan would send, its real texts (up to N
//! distinct variants from the first recipients' parameters and custom messages) sent to test
//! identities through the same bot, channel and body builder as `apply`, journaled and
//! rate-limited the same way, recorded in the test ledger (see [`crate::testsend`]) and never in
//! the recipients' state, which is only read.
//!
//! Per request: the record and the intent are journaled (durable) before it leaves, its outcome
//! after; a run killed in between leaves an unknown outcome, which counts as sent (never repeated
//! without `--again`). Delivery windows and `notBefore`/`notAfter` do not apply: a test goes to
//! the reviewer now.

use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::send::{BodyOptions, as_sent, outcome_entry};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::fingerprint::{Fingerprint, RecipientHash, content_digest, notification_digest, recipient_fingerprint};
use crate::kore::{Client, KoreApi, RateLimiter, SendResult};
use crate::manifest::{Channel, Notification, Recipient};
use crate::ops::{Global, load_workspace};
use crate::plan::{self, Plan};
use crate::state::{Entry, Session, StoredContent, TestSend};
use crate::testsend;

pub(crate) struct Options {
    /// A plan saved with `plan --out`: its notifications (for this target) are the ones tested.
    pub(crate) plan_file: Option<PathBuf>,
    /// `--to IDENTITY`: used on every channel.
    pub(crate) to: Vec<String>,
    /// `--reviewer LOGIN`: their identity per channel from `reviewers:`.
    pub(crate) reviewer: Option<String>,
    /// `--key KEY`: only these notifications.
    pub(crate) keys: Vec<String>,
    /// `--variants N`: distinct texts per notification.
    pub(crate) variants: usize,
    /// `--again`: send even what the ledger holds already.
    pub(crate) again: bool,
}

/// A test identity, on one channel or on all.
struct Who {
    channel: Option<Channel>,
    id: String,
}

/// One request to make: a variant of a notification to the test identities not sent it yet.
struct Job<'a> {
    n: &'a Notification,
    variant: u32,
    /// (as sent, ledger hash, fingerprint)
    to: Vec<(Recipient, RecipientHash, Fingerprint)>,
}

pub(crate) fn run(g: &Global, opts: &Options) -> Result<Exit> {
    crate::interrupt::install();
    let ws = load_workspace(g, &[])?;
    let t = ws.config.one(g.target.as_deref(), "kore-notify test-send")?;
    let who = identities(&ws.config, opts)?;
    let part = crate::ops::scoped(&ws, t);
    let notifications: &[Notification] = &part.notifications;
    let (plan, digest) = plan_and_digest(g, &ws, t, notifications, &part.audience, opts)?;
    let chosen = choose(&plan, notifications, &opts.keys)?;
    if chosen.is_empty() {
        g.info("Nothing to test: the plan sends nothing (name notifications with --key KEY).");
        return Ok(Exit::Ok);
    }
    let mut session = g.open(&*t.test_store(g.env(), g.clock)?, &g.command)?;
    if session.loaded().replayed > 0 {
        g.info(format!(
            "recovered {} test-ledger journal entries left by an interrupted run; test sends without a recorded answer count as sent (--again sends them again)",
            session.loaded().replayed
        ));
    }
    let jobs = jobs(g, t, &chosen, &who, &*session, opts);
    if jobs.is_empty() {
        g.info("Nothing to send: every variant was test-sent to these identities already (--again sends them again).");
        return Ok(Exit::Ok);
    }
    let creds = t.credentials(g.env())?;
    let limiter = Arc::new(RateLimiter::new(t.per_minute, t.per_hour));
    let client = Client::new(t, creds, limiter, g.clock).map_err(Error::Kore)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::system("start the async runtime"))?;
    let mut bad = 0;
    let mut sent = 0;
    for job in &jobs {
        if let Some(sig) = crate::interrupt::requested() {
            g.shell.errln(format!(
                "Interrupted by {}; the test sends not made yet were not sent.",
                crate::interrupt::name(sig)
            ));
            session.compact()?;
            return Ok(Exit::Interrupted(sig));
        }
        let r = rt.block_on(send_job(g, t, &client, &mut *session, job, &digest))?;
        let masked = masked(t, job);
        let line = match &r {
            SendResult::Accepted { request_id, .. } => {
                sent += 1;
                format!("accepted {}", request_id.as_deref().unwrap_or("without request id"))
            }
            SendResult::Rejected { status, message } => format!("REJECTED (HTTP {status}): {message}"),
            SendResult::Unauthorized { message } => format!("REJECTED (401): {message}"),
            SendResult::NotSent { message } => format!("NOT SENT: {message}"),
            SendResult::Redirected { status, location } => format!("REJECTED (HTTP {status} redirect to {location})"),
            SendResult::Unknown { reason } | SendResult::Unconfirmed { reason, .. } => {
                format!("UNKNOWN outcome: {reason}")
            }
        };
        if !matches!(r, SendResult::Accepted { .. }) {
            bad += 1;
        }
        g.shell.errln(crate::safe::line(&format!(
            "{} variant {} → {}: {line}",
            job.n.key,
            job.variant,
            masked.join(", ")
        )));
        if matches!(r, SendResult::Unauthorized { .. } | SendResult::NotSent { .. } | SendResult::Redirected { .. }) {
            break;
        }
    }
    session.compact()?;
    g.shell.outln(format!(
        "Test send: {sent} request(s) accepted, {bad} not; recorded in the test ledger ({}), never in the recipients' state.",
        session_place(t)
    ));
    Ok(if bad > 0 { Exit::Partial } else { Exit::Ok })
}

/// The target's plan now, and the digest test sends record: the plan file's (checked against the
/// manifests and the state, as `apply` checks it), or the plan's own. The recipients' state is
/// only read.
fn plan_and_digest(
    g: &Global,
    ws: &crate::ops::Workspace,
    t: &crate::config::Target,
    notifications: &[Notification],
    audience: &std::collections::BTreeMap<String, plan::AudienceNote>,
    opts: &Options,
) -> Result<(Plan, String)> {
    // The recipients' state is only read: a test send never writes it.
    let loaded = t.store(g.env(), g.clock)?.load()?;
    let source = crate::ops::promotion_state(g, &ws.config, t, &[])?;
    let promotion = match (&t.promotion, &source) {
        (Some(p), Some(s)) => {
            Some(plan::PromotionSources { from: &p.from, level: p.level, state: s.state(), skip: &[] })
        }
        _ => None,
    };
    let retry = plan::Retry::default();
    let ledger = ledger(g, t);
    let inputs = plan::TargetInputs {
        clock: Some(g.clock),
        config: &ws.config,
        target: t,
        notifications,
        audience,
        loaded: &loaded,
        promotion: promotion.as_ref(),
        retry: &retry,
        test_ledger: ledger.as_ref(),
    };
    let plan = plan::for_target(&inputs, g.now);
    let digest = match &opts.plan_file {
        Some(pf) => {
            let saved = crate::ops::plan::read_plan_file(pf)?;
            let digest = saved.digest.clone();
            let mut section = saved.targets.into_iter().find(|p| p.name == t.name).ok_or_else(|| Error::StalePlan {
                path: pf.clone(),
                message: format!("it has no plan for target `{}`", t.name),
            })?;
            plan::check_against(&mut section, &plan, notifications, |at| plan::for_target(&inputs, at))
                .map_err(|e| Error::StalePlan { path: pf.clone(), message: e.to_string() })?;
            digest
        }
        None => {
            let mut set = plan::PlanSet::new(vec![plan.clone()]);
            set.seal();
            set.digest
        }
    };
    Ok((plan, digest))
}

/// Where the test ledger is, for people.
fn session_place(t: &crate::config::Target) -> String {
    match t.state.file() {
        Some(p) => crate::files::display_path(&testsend::ledger_path(p)).display().to_string(),
        None => format!("PostgreSQL, target key {}#test-sends", t.identity()),
    }
}

fn masked(t: &crate::config::Target, job: &Job) -> Vec<String> {
    job.to.iter().map(|(r, ..)| crate::render::mask(&r.id, t.identity())).collect()
}

/// The test identities: `--to` (every channel) and the reviewer's (per channel).
fn identities(config: &crate::config::Config, opts: &Options) -> Result<Vec<Who>> {
    let mut out: Vec<Who> = opts.to.iter().map(|id| Who { channel: None, id: id.clone() }).collect();
    if let Some(login) = &opts.reviewer {
        let (_, ids) = config.reviewer(login).ok_or_else(|| {
            Error::Refused(format!(
                "--reviewer {}: no such login under `reviewers:` in {}; add them there (login → identity per channel)",
                crate::safe::line(login),
                crate::files::display_path(&config.path).display()
            ))
        })?;
        out.extend(ids.iter().map(|(ch, id)| Who { channel: Some(*ch), id: id.clone() }));
    }
    if out.is_empty() {
        return Err(Error::Refused(
            "test-send needs whom to send to: --to IDENTITY (repeatable) or --reviewer LOGIN".into(),
        ));
    }
    Ok(out)
}

/// The notifications to test, each with its recipients in the order variants are taken: `--key`
/// ones (any of the target's), or every one the plan sends.
fn choose<'a>(
    plan: &Plan,
    notifications: &'a [Notification],
    keys: &[String],
) -> Result<Vec<(&'a Notification, Vec<usize>)>> {
    let order = |n: &Notification| -> Vec<usize> {
        let planned = plan.notifications.iter().find(|p| p.key == n.key);
        let mut v: Vec<usize> = planned.map(|p| p.sends.iter().map(|r| r.index).collect()).unwrap_or_default();
        let planned: std::collections::HashSet<usize> = v.iter().copied().collect();
        v.extend((0..n.recipients.len()).filter(|i| !planned.contains(i)));
        v
    };
    if keys.is_empty() {
        let sends = plan.notifications.iter().filter(|p| p.action.sends());
        return Ok(sends
            .filter_map(|p| notifications.iter().find(|n| n.key == p.key))
            .map(|n| (n, order(n)))
            .collect());
    }
    keys.iter()
        .map(|k| {
            let n = notifications.iter().find(|n| &n.key == k).ok_or_else(|| {
                Error::Refused(format!("--key {}: no such notification on this target", crate::safe::line(k)))
            })?;
            Ok((n, order(n)))
        })
        .collect()
}

/// The requests to make, skipping what the ledger holds (unless `--again`).
fn jobs<'a>(
    g: &Global,
    t: &crate::config::Target,
    chosen: &[(&'a Notification, Vec<usize>)],
    who: &[Who],
    session: &dyn Session,
    opts: &Options,
) -> Vec<Job<'a>> {
    let ledger = session.state();
    let mut out = Vec::new();
    for (n, order) in chosen {
        let ids: Vec<&str> =
            who.iter().filter(|w| w.channel.is_none_or(|c| c == n.channel)).map(|w| w.id.as_str()).collect();
        if ids.is_empty() {
            g.info(format!("{}: no test identity on channel {}; skipped", n.key, n.channel.as_str()));
            continue;
        }
        let nd = notification_digest(t.identity(), n);
        let had = ledger.notifications.get(&n.key);
        for v in testsend::variants(n, order.iter().copied(), opts.variants) {
            let mut to = Vec::new();
            for id in &ids {
                let r = v.to(id);
                let fp = recipient_fingerprint(&nd, &r);
                let h = testsend::ledger_hash(&ledger.lineage, id, fp);
                if !opts.again && testsend::already_sent(had, h, fp) {
                    g.info(format!(
                        "{} variant {} → {}: test-sent already (same content); --again sends it again",
                        n.key,
                        v.index,
                        crate::render::mask(id, t.identity())
                    ));
                    continue;
                }
                to.push((r, h, fp));
            }
            if !to.is_empty() {
                out.push(Job { n, variant: v.index, to });
            }
        }
    }
    out
}

/// One test request: its record and intent durable first, then the request, then its outcome.
async fn send_job(
    g: &Global,
    t: &crate::config::Target,
    client: &Client,
    session: &mut dyn Session,
    job: &Job<'_>,
    plan_digest: &str,
) -> Result<SendResult> {
    let n = job.n;
    let opts = BodyOptions::of(t);
    let sent: Vec<_> = job.to.iter().map(|(r, ..)| as_sent(n, r, opts)).collect();
    let recipients: Vec<&Recipient> = sent.iter().map(std::convert::AsRef::as_ref).collect();
    let body = crate::kore::body(n, &recipients, opts.v2_field);
    // The rate-limit slot first: nothing is journaled for a request that cannot leave at once.
    client.take_send_slot().await;
    let req = session.state().notifications.get(&n.key).map_or(0, |s| s.requests.len() as u32);
    let content = StoredContent::from(&n.content);
    let at = g.clock.stamp();
    session.record(&Entry::TestSend {
        key: n.key.clone(),
        channel: n.channel,
        api: n.api,
        content: content.clone(),
        record: TestSend {
            req,
            to: masked(t, job),
            variant: job.variant,
            content: content_digest(n.api, n.channel, &content),
            plan: plan_digest.to_string(),
            actor: actor(g),
            // The run's time (`KORE_NOTIFY_NOW` when set), as the evidence's age is read against.
            at: crate::rfc3339::to_second(g.now + g.started.elapsed()),
        },
    })?;
    session.record(&Entry::Intent {
        key: n.key.clone(),
        req,
        batch: crate::fingerprint::random_id(),
        channel: n.channel,
        api: n.api,
        content,
        recipients: job.to.iter().map(|(_, h, fp)| (*h, *fp)).collect(),
        at,
    })?;
    let result = client.send(n.api, &body).await;
    session.record(&outcome_entry(&n.key, req, &result))?;
    Ok(result)
}

/// Who sends: the CI actor or the local user.
fn actor(g: &Global) -> String {
    g.env()
        .get("GITHUB_ACTOR")
        .or_else(|| g.env().get("USER"))
        .or_else(|| g.env().get("LOGNAME"))
        .filter(|a| !a.trim().is_empty())
        .map_or_else(|| "unknown".to_string(), |a| crate::safe::line(&a).into_owned())
}

/// The target's test ledger, read only (the plan's test-send evidence and the policy's
/// `testSent`; see [`plan::TargetInputs::test_ledger`]). A ledger that cannot be read is said,
/// and then proves nothing: every notification is `testSent: false`.
pub(crate) fn ledger(g: &Global, t: &crate::config::Target) -> Option<crate::state::State> {
    match t.test_store(g.env(), g.clock).and_then(|s| s.load().map_err(Error::from)) {
        Ok(l) => Some(l.state),
        Err(e) => {
            g.info(format!(
                "note: the test ledger cannot be read, so the plan shows no test-send evidence (the policy's testSent is false): {e}"
            ));
            None
        }
    }
}
