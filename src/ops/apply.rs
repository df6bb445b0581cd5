//! `kore-notify apply`: send exactly what the plan shows, at most once.
//!
//! Pipeline: load and validate → lock the state → absorb a journal left by a dead run → plan →
//! confirm → for each batch: journal the intent (fsync) → POST → journal the outcome (fsync) →
//! compact the journal into a new snapshot. If the process dies anywhere, the journal says which
//! batches may have been sent (intent without outcome = unknown); those are never resent without
//! `--retry-unknown` or `state resolve`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::poll::PollOptions;
use crate::engine::send::{self, SendOptions, Tally};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::kore::RateLimiter;
use crate::ops::{Global, load_workspace};
use crate::plan::{self, Action, Plan, Retry, check_retry};
use crate::render::{self, Format};
use crate::state::{self, Entry, Session};

pub(crate) struct Options {
    pub(crate) plan_file: Option<PathBuf>,
    pub(crate) auto_approve: bool,
    pub(crate) parallelism: usize,
    pub(crate) max_recipients: Option<usize>,
    pub(crate) retry: Retry,
    pub(crate) wait: bool,
    pub(crate) timeout: Duration,
    /// `--approvals FILE`, for the policy's `require` rules.
    pub(crate) approvals: Option<PathBuf>,
    /// `--override-policy` (with `--reason`): send despite the policy's `require` rules.
    pub(crate) override_policy: bool,
    /// `--skip-promotion KEY`: pass the promotion gate of these notifications knowingly.
    pub(crate) skip_promotion: Vec<String>,
    /// `--reason TEXT`, required with `--skip-promotion` and `--override-policy`, recorded with
    /// them.
    pub(crate) reason: Option<String>,
}

fn confirm(g: &Global, config: &crate::config::Target, plan: &Plan) -> Result<bool> {
    let (n, r) = (plan.summary.notifications_to_send, plan.summary.recipients_to_send);
    g.shell.err(format!(
        "\nkore-notify will send {n} notification{} to {r} recipient{} through {}{} (bot {}). This cannot be undone.\nOnly 'yes' will be accepted to approve.\n\n  Enter a value: ",
        if n == 1 { "" } else { "s" },
        if r == 1 { "" } else { "s" },
        if config.implicit { String::new() } else { format!("target {}: ", config.name) },
        crate::safe::line(&config.host),
        crate::safe::line(&config.bot_id)
    ));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(Error::system("read the answer"))?;
    Ok(line.trim() == "yes")
}

pub(crate) fn run(g: &Global, opts: &Options) -> Result<Exit> {
    let mut counts = Vec::new();
    let r = run_counted(g, opts, &mut counts);
    g.events_summary(&counts, &r);
    r
}

/// [`run`], saying what it did in `counts` (for the `--events` summary).
fn run_counted(g: &Global, opts: &Options, counts: &mut Vec<(&'static str, usize)>) -> Result<Exit> {
    crate::interrupt::install();
    let ws = load_workspace(g, &[])?;
    let t = ws.config.one(g.target.as_deref(), "kore-notify apply")?;
    let skip = check_skip(t, opts)?;
    let part = crate::ops::scoped(&ws, t);
    let notifications: &[crate::manifest::Notification] = &part.notifications;
    // One limiter for the run: sends and `--wait`'s status calls share Kore.ai's windows.
    let limiter = Arc::new(RateLimiter::new(t.per_minute, t.per_hour));
    let mut session = g.open(&*t.store(g.env(), g.clock)?, &g.command)?;
    let loaded = session.loaded();
    crate::ops::check_retired(g, &ws, &loaded.state)?;
    if loaded.replayed > 0 {
        g.info(format!(
            "recovered {} journal entries left by an interrupted run; requests without a recorded answer are now unknown",
            loaded.replayed
        ));
    }
    check_retry(&loaded.state, &opts.retry)?;
    let source = crate::ops::promotion_state(g, &ws.config, t, &[])?;
    let promotion = match (&t.promotion, &source) {
        (Some(p), Some(s)) => {
            Some(plan::PromotionSources { from: &p.from, level: p.level, state: s.state(), skip: &skip })
        }
        _ => None,
    };
    let ledger = crate::ops::test_send::ledger(g, t);
    let inputs = plan::TargetInputs {
        config: &ws.config,
        target: t,
        notifications,
        audience: &part.audience,
        loaded,
        promotion: promotion.as_ref(),
        retry: &opts.retry,
        test_ledger: ledger.as_ref(),
        clock: Some(g.clock),
    };
    let mut plan = plan::for_target(&inputs, g.now);
    if let Some(pf) = &opts.plan_file {
        let saved = crate::ops::plan::read_plan_file(pf)?;
        let mut section = saved.targets.into_iter().find(|p| p.name == t.name).ok_or_else(|| Error::StalePlan {
            path: pf.clone(),
            message: format!(
                "it has no plan for target `{}`; run `kore-notify plan --out` again and review it",
                t.name
            ),
        })?;
        plan::check_against(&mut section, &plan, notifications, |at| plan::for_target(&inputs, at))
            .map_err(|e| Error::StalePlan { path: pf.clone(), message: e.to_string() })?;
    }
    if let Some(e) = crate::ops::too_late(&plan, g.now) {
        return Err(e);
    }
    let overrides = promotion_overrides(g, &plan, notifications, &skip, opts);
    let gate = gate(g, &ws, &mut plan, opts)?;
    // Every missing credential named at once, before the plan is shown.
    let creds = if plan.summary.recipients_to_send > 0 { Some(t.credentials(g.env())?) } else { None };
    if !g.quiet {
        let set = plan::PlanSet::new(vec![plan.clone()]);
        let text = render::document(&set, Format::Text, g.color, g.verbose, &render::Review::default());
        g.shell.err(crate::safe::for_output(&text));
    }
    let held = plan.summary.recipients_held;
    let to_send = plan.summary.recipients_to_send;
    let to_record: usize = plan.notifications.iter().map(|n| n.records.len()).sum();
    let renames: Vec<(&str, &str)> =
        plan.notifications.iter().filter_map(|n| n.renamed_from.as_deref().map(|f| (f, n.key.as_str()))).collect();
    let mut chores = housekeeping(g, &ws, t, notifications, &plan, &loaded.state);
    // A halt the gate found is recorded with its figures, whatever else this run does.
    chores.extend(crate::ops::waves::halts(&plan, notifications));
    report_awaiting(g, &plan);
    let policy_overrides = policy_overrides(g, notifications, &gate, opts);
    let gated = if gate.awaiting.is_empty() { Exit::Ok } else { Exit::Partial };
    // What `--wait` needs to carry canary waves on (only the rollouts the policy let through).
    let carry_on = |limiter| {
        carry(g, (&ws.config, t, notifications), (&part.audience, promotion.as_ref(), ledger.as_ref()), limiter, opts)
            .only(rolling_keys(&plan, &gate))
    };
    if to_send == 0 && to_record == 0 && renames.is_empty() {
        g.info("Nothing to send.");
        if t.state_is_shared() {
            chores.extend(loaded.state.claims(&ws.config.origin, notifications.iter().map(|n| n.key.as_str())));
        }
        if !chores.is_empty() {
            for e in &chores {
                session.record(e)?;
            }
            session.compact()?;
            report_chores(g, &chores);
        }
        report_held(g, &plan);
        let halted = crate::ops::waves::report(g, &plan);
        let mut code = if held > 0 || halted { Exit::Partial } else { gated };
        if opts.wait {
            let rolling = plan.notifications.iter().any(|n| n.rollout.is_some());
            code = code.max(wait_after(g, t, opts, limiter, session, (rolling && !halted).then_some(carry_on))?);
        }
        return Ok(code);
    }
    if !approved(g, t, &plan, opts)? {
        g.info("Apply cancelled; nothing was sent.");
        return Ok(Exit::Error);
    }
    if let Some(sig) = crate::interrupt::requested() {
        g.shell.errln(format!("Interrupted by {} before anything was sent.", crate::interrupt::name(sig)));
        return Ok(Exit::Interrupted(sig));
    }
    // A knowing override is recorded (durably) before anything it lets through is sent.
    for e in &overrides {
        session.record(e)?;
    }

    let send_opts = SendOptions {
        parallelism: opts.parallelism,
        shell: g.shell,
        color: g.shell.err_color,
        clock: g.clock,
        now: (g.now, g.started),
    };
    chores.extend(policy_overrides);
    let prepared = send::prepare(session, g.clock, &plan, notifications, &renames, &chores, t.batch_size)?;
    report_chores(g, &chores);
    let (session, tally) = send::execute(prepared, t, &ws.config.origin, creds, &limiter, send_opts)?;
    counts.extend([
        ("accepted", tally.accepted),
        ("recipientsAccepted", tally.recipients_accepted),
        ("rejected", tally.rejected),
        ("unknown", tally.unknown),
        ("notSent", tally.not_sent + tally.skipped),
    ]);

    let mut code = report(g, &tally, &plan)?.max(gated);
    if tally.held_by_gate > 0 {
        g.shell.errln(format!(
            "{} recipient(s) were not sent: the canary gate no longer let their wave go when their batch was about to leave. `kore-notify plan` shows why.",
            tally.held_by_gate
        ));
        code = code.max(Exit::Partial);
    }
    if let Some(sig) = crate::interrupt::requested() {
        g.shell.errln(format!(
            "Interrupted by {}: the requests in flight finished and are recorded; {} batch(es) to {} recipient(s) were not sent. Run `kore-notify apply` again to send them.",
            crate::interrupt::name(sig),
            tally.skipped,
            tally.skipped_recipients
        ));
        return Ok(Exit::Interrupted(sig));
    }
    let rolling = plan.notifications.iter().any(|n| n.rollout.is_some());
    // Carried on, the waves report their own halts.
    if !(opts.wait && rolling) && crate::ops::waves::report(g, &plan) {
        code = code.max(Exit::Partial);
    }
    if opts.wait {
        code = code.max(wait_after(g, t, opts, limiter, session, rolling.then_some(carry_on))?);
    }
    Ok(code)
}

/// `--wait`: the canary waves carried on in this process when `waves` makes them, else the
/// statuses polled until terminal (or the timeout).
fn wait_after<'a>(
    g: &Global,
    t: &crate::config::Target,
    opts: &Options,
    limiter: Arc<RateLimiter>,
    mut session: Box<dyn Session>,
    waves: Option<impl FnOnce(Arc<RateLimiter>) -> crate::ops::waves::Carry<'a>>,
) -> Result<Exit> {
    match waves {
        Some(carry) => Ok(crate::ops::waves::carry_on(g, &carry(limiter), session)?.1),
        None => wait_for(g, t, limiter, &mut *session, opts),
    }
}

/// The notifications whose later waves `apply --wait` may send: those with a rollout that the
/// policy gate let through in this run's plan.
fn rolling_keys(plan: &Plan, gate: &crate::policy::Gate) -> Vec<String> {
    plan.notifications
        .iter()
        .filter(|n| n.rollout.is_some() && !gate.awaiting.iter().any(|(k, _)| *k == n.key))
        .map(|n| n.key.clone())
        .collect()
}

/// What `apply --wait` needs to carry canary waves on (the plan's inputs but the state).
fn carry<'a>(
    g: &Global,
    (config, target, notifications): (
        &'a crate::config::Config,
        &'a crate::config::Target,
        &'a [crate::manifest::Notification],
    ),
    (audience, promotion, test_ledger): (
        &'a std::collections::BTreeMap<String, plan::AudienceNote>,
        Option<&'a plan::PromotionSources<'a>>,
        Option<&'a crate::state::State>,
    ),
    limiter: Arc<RateLimiter>,
    opts: &Options,
) -> crate::ops::waves::Carry<'a> {
    crate::ops::waves::Carry {
        config,
        target,
        notifications,
        audience,
        promotion,
        test_ledger,
        limiter,
        send: SendOptions {
            parallelism: opts.parallelism,
            shell: g.shell,
            color: g.shell.err_color,
            clock: g.clock,
            now: (g.now, g.started),
        },
        max_recipients: opts.max_recipients,
        timeout: opts.timeout,
        keys: Vec::new(),
    }
}

/// `--skip-promotion KEY… --reason TEXT`: checked before anything is read. Returns the keys.
fn check_skip(t: &crate::config::Target, opts: &Options) -> Result<Vec<String>> {
    if opts.skip_promotion.is_empty() {
        if opts.reason.is_some() && !opts.override_policy {
            return Err(Error::Refused(
                "--reason goes with --skip-promotion KEY or --override-policy: it says why the gate is passed".into(),
            ));
        }
        return Ok(Vec::new());
    }
    if t.promotion.is_none() {
        return Err(Error::Refused(format!(
            "--skip-promotion: target `{}` has no promotion gate (no promoteFrom in kore-notify.yaml)",
            t.name
        )));
    }
    let reason = opts.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(Error::Refused(
            "--skip-promotion needs --reason TEXT: why this content goes out without proof on the other target (it is recorded in the state)"
                .into(),
        ));
    }
    if reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(Error::Refused("--reason: at most 500 characters on one line, no control characters".into()));
    }
    Ok(opts.skip_promotion.clone())
}

/// The override entries for `--skip-promotion`: one per key that needs it (it is awaiting
/// promotion without the flag). A key that does not is said and ignored.
fn promotion_overrides(
    g: &Global,
    plan: &Plan,
    notifications: &[crate::manifest::Notification],
    skip: &[String],
    opts: &Options,
) -> Vec<Entry> {
    let site = crate::state::RunSite::from_env(g.env());
    let actor = g
        .env()
        .get("GITHUB_ACTOR")
        .or_else(|| g.env().get("USER"))
        .or_else(|| g.env().get("LOGNAME"))
        .filter(|a| !a.trim().is_empty())
        .map_or_else(|| "unknown".to_string(), |a| crate::safe::line(&a).into_owned());
    let mut out = Vec::new();
    for key in skip {
        let p = plan.notifications.iter().find(|n| &n.key == key);
        let note = p.and_then(|n| n.promotion.as_ref());
        match (p, note) {
            (Some(n), Some(note))
                if note.overridden
                    && n.action.sends()
                    && note.evidence.as_deref().is_some_and(|e| e.contains("(--skip-promotion)")) =>
            {
                let Some(m) = notifications.iter().find(|m| &m.key == key) else { continue };
                let (channel, api, content) = (m.channel, m.api, crate::state::StoredContent::from(&m.content));
                out.push(Entry::Override {
                    key: key.clone(),
                    channel,
                    api,
                    content,
                    record: crate::state::Override {
                        gate: "promotion".into(),
                        content: note.content.clone(),
                        reason: opts.reason.clone().unwrap_or_default().trim().to_string(),
                        actor: actor.clone(),
                        at: crate::rfc3339::to_second(g.now),
                        run_url: site.ci_run().map(str::to_string),
                        rules: Vec::new(),
                    },
                });
            }
            _ => g.info(format!(
                "--skip-promotion {}: not awaiting promotion on this target; nothing to pass",
                crate::safe::line(key)
            )),
        }
    }
    out
}

/// Says which notifications wait for promotion (they are sent once the other target proves them).
fn report_awaiting(g: &Global, plan: &Plan) {
    let waiting: Vec<&str> =
        plan.notifications.iter().filter(|n| n.action == Action::AwaitingPromotion).map(|n| n.key.as_str()).collect();
    if let (Some(first), Some(p)) = (waiting.first(), plan.notifications.iter().find_map(|n| n.promotion.as_ref())) {
        g.info(format!(
            "{} notification(s) await promotion from `{}` ({}): nothing of them is sent until the same content is {} there, or `--skip-promotion {} --reason TEXT`",
            waiting.len(),
            p.from,
            waiting.iter().map(|k| crate::safe::line(k).into_owned()).collect::<Vec<_>>().join(", "),
            p.level.as_str(),
            crate::safe::line(first)
        ));
    }
}

/// Whether the run may send: approval on a terminal, `--auto-approve`, or a reviewed plan file;
/// and within `--max-recipients`.
fn approved(g: &Global, config: &crate::config::Target, plan: &Plan, opts: &Options) -> Result<bool> {
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
        return confirm(g, config, plan);
    }
    Ok(true)
}

/// The policy at apply: the approvals read (a missing or malformed file refuses the run), a
/// denied notification refuses the run, those missing approvals are taken out of `plan` (unless
/// `--override-policy`). See `src/policy/`.
fn gate(g: &Global, ws: &crate::ops::Workspace, plan: &mut Plan, opts: &Options) -> Result<crate::policy::Gate> {
    let approvals = match &opts.approvals {
        Some(p) => Some(crate::policy::load_approvals(p, g.env(), &ws.config.dir).map_err(Error::Refused)?),
        None => None,
    };
    let input = crate::policy::GateInput { approvals: approvals.as_ref(), override_reason: override_reason(opts) };
    let gate = crate::policy::Gate::judge(plan, &input);
    if !gate.denied.is_empty() {
        let lines: Vec<String> = gate.denied.iter().map(|l| crate::safe::line(l).into_owned()).collect();
        return Err(Error::Refused(format!(
            "the policy denies this apply; nothing was sent:\n  {}",
            lines.join("\n  ")
        )));
    }
    gate.withhold(plan);
    for line in gate.lines(approvals.as_ref()) {
        g.shell.errln(line);
    }
    Ok(gate)
}

/// `--override-policy --reason TEXT`: the reason.
fn override_reason(opts: &Options) -> Option<&str> {
    opts.reason.as_deref().map(str::trim).filter(|_| opts.override_policy)
}

/// The entries recording `--override-policy` for each notification it lets through.
fn policy_overrides(
    g: &Global,
    notifications: &[crate::manifest::Notification],
    gate: &crate::policy::Gate,
    opts: &Options,
) -> Vec<Entry> {
    let Some(reason) = override_reason(opts) else { return Vec::new() };
    if gate.overridden.is_empty() {
        g.info("--override-policy: no notification needed it; nothing is recorded");
    }
    let (actor, run) = (crate::policy::actor(g.env()), crate::policy::run_url(g.env()));
    let at = crate::rfc3339::to_second(g.now);
    let mut out = Vec::new();
    for o in &gate.overridden {
        let Some(n) = notifications.iter().find(|n| n.key == o.key) else { continue };
        out.push(crate::policy::override_entry(o, n, &actor, reason, run.as_deref(), at.clone()));
    }
    out
}

/// Entries that send nothing and need no approval (recorded after renames): orphan dates recorded
/// (or cleared when a key comes back), tombstones for notifications orphaned longer than the
/// config's `retention` with every request settled, and tombstones dropped for keys reused with
/// `reuseRetiredKey: true`.
fn housekeeping(
    g: &Global,
    ws: &crate::ops::Workspace,
    t: &crate::config::Target,
    notifications: &[crate::manifest::Notification],
    plan: &Plan,
    st: &state::State,
) -> Vec<Entry> {
    let now = crate::rfc3339::to_second(g.now);
    let (origin, shared) = (ws.config.origin.as_str(), t.state_is_shared());
    let mut out = Vec::new();
    for p in &plan.notifications {
        if p.action == Action::Orphaned {
            let Some(n) = st.notifications.get(&p.key) else { continue };
            // Only this repository's own: a shared state's notification of unknown origin is
            // shown, never recorded as orphaned nor retired.
            if n.declared_by(origin, shared) != state::Declared::Here {
                continue;
            }
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
    for n in notifications.iter().filter(|n| n.reuse_retired_key) {
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
            Entry::Override { key, record: o, .. } if o.gate == crate::policy::GATE => format!(
                "Policy overridden: `{key}` is sent despite rule(s) {} without their approvals, by {}: {} (recorded in the state)",
                o.rules.join(", "),
                o.actor,
                o.reason
            ),
            _ => continue,
        };
        g.info(crate::safe::for_output(&crate::safe::line(&line)));
    }
}

/// Tells about recipients held back by unknown requests (the run exits 3 for them).
fn report_held(g: &Global, plan: &Plan) {
    if plan.summary.recipients_held == 0 {
        return;
    }
    g.shell.errln(format!(
        "{} recipient(s) were held back by {} request(s) with an unknown outcome: they may have received it already. Decide per request with `kore-notify state resolve KEY REQUEST --sent|--not-sent` (it lists their recipients) or `kore-notify apply --retry-unknown=KEY#REQUEST`.",
        plan.summary.recipients_held, plan.summary.unknown_requests
    ));
}

/// The closing lines and the exit code: 3 when a request was rejected or unknown, or some planned
/// recipient was held back.
pub(crate) fn report(g: &Global, tally: &Tally, plan: &Plan) -> Result<Exit> {
    g.shell.outln(format!(
        "Apply: {} request(s) accepted ({} recipient(s)), {} rejected, {} unknown{}, in {}{}.",
        tally.accepted,
        tally.recipients_accepted,
        tally.rejected,
        tally.unknown,
        if tally.skipped + tally.not_sent > 0 {
            format!(", {} not sent", tally.skipped + tally.not_sent)
        } else {
            String::new()
        },
        crate::units::clock(tally.elapsed),
        plan.forecast.as_ref().map_or(String::new(), |f| format!(" (forecast {})", crate::plan::duration(f.seconds)))
    ));
    if tally.outside_window > 0 {
        g.shell.errln(format!(
            "{} recipient(s) were not sent: their delivery window closed during the apply. The next apply inside their window sends them.",
            tally.outside_window
        ));
    }
    if let Some(msg) = &tally.stopped_by {
        return Err(Error::Refused(msg.clone()));
    }
    if tally.unknown > 0 {
        g.shell.errln(format!(
            "{} request(s) have an unknown outcome: they may have been delivered. Their recipients are held back (nobody else is); `kore-notify plan` lists them, decide with `kore-notify state resolve KEY REQUEST --sent|--not-sent` or `kore-notify apply --retry-unknown=KEY#REQUEST`.",
            tally.unknown
        ));
    }
    report_held(g, plan);
    let partial = tally.rejected > 0 || tally.unknown > 0 || plan.summary.recipients_held > 0;
    Ok(if partial { Exit::Partial } else { Exit::Ok })
}

/// `--wait`: polls statuses under the session that sent, within the same rate limiter.
fn wait_for(
    g: &Global,
    config: &crate::config::Target,
    limiter: Arc<RateLimiter>,
    session: &mut dyn Session,
    opts: &Options,
) -> Result<Exit> {
    let poll = PollOptions { parallelism: opts.parallelism, shell: g.shell, timeout: Some(opts.timeout), wait: true };
    crate::engine::poll::refresh_until(config, g.env(), g.clock, limiter, session, &poll)
}
