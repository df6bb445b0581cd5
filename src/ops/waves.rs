//! `apply` under canary waves: the halts the plan's gate found are recorded (with their figures)
//! before anything is sent, what each rollout stands at is said, and `apply --wait` carries the
//! rollouts on in the same process: statuses refreshed within the run's rate limiter, `observe`
//! waited out, the plan made again from the state and the next wave sent, until every wave is out,
//! one halts, or a wave waits for something only a person or a later run can give.
//!
//! Without `--wait`, an apply sends the wave its gate allows and exits 0 with the others pending:
//! the next apply (a scheduled run) asks the gate again. A halt exits 3.

use std::sync::Arc;

use crate::engine::send::{self, SendOptions};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::kore::RateLimiter;
use crate::manifest::Notification;
use crate::ops::Global;
use crate::plan::{Plan, Summary};
use crate::state::{Entry, Loaded, Session, StoredContent};

/// The halt entries for the halts the plan's gate found and the state does not hold yet.
pub(crate) fn halts(plan: &Plan, notifications: &[Notification]) -> Vec<Entry> {
    plan.notifications
        .iter()
        .filter_map(|p| {
            let r = p.rollout.as_ref().filter(|r| !r.halt_recorded)?;
            let halt = r.halt.clone()?;
            let n = notifications.iter().find(|n| n.key == p.key)?;
            let digest = crate::fingerprint::content_digest(n.api, n.channel, &StoredContent::from(&n.content));
            Some(Entry::Halt { key: p.key.clone(), digest, halt })
        })
        .collect()
}

/// Says what each rollout stands at; whether one is halted.
pub(crate) fn report(g: &Global, plan: &Plan) -> bool {
    let mut halted = false;
    for p in &plan.notifications {
        let Some(r) = &p.rollout else { continue };
        if let Some(h) = &r.halted {
            halted = true;
            g.shell.errln(crate::safe::for_output(&crate::safe::line(&format!(
                "`{}` halted: {h}. Nothing more of it is sent until `kore-notify state resume {}` (or a content change).",
                p.key, p.key
            ))));
        } else if r.later > 0 {
            let wave = r.waves.iter().find(|w| w.state == "next" || w.state == "pending").map_or(0, |w| w.wave);
            g.info(crate::safe::line(&format!(
                "`{}`: {} recipient(s) wait for later canary waves (wave {wave} next: {}); the next apply asks the gate again, or `apply --wait` carries the rollout on",
                p.key, r.later, r.gate
            )));
        }
    }
    halted
}

/// The part of `plan` that sends canary waves of the notifications in `keys` (nothing else is
/// sent by the later rounds of `apply --wait`: the approval, and the policy's verdict, were for
/// these rollouts).
fn only_waves(plan: &Plan, keys: &[String]) -> Plan {
    let mut p = plan.clone();
    for n in &mut p.notifications {
        if n.rollout.as_ref().is_none_or(|r| r.sending.is_none()) || !keys.contains(&n.key) {
            n.sends.clear();
        }
        n.records.clear();
        n.retry_unknown = false;
    }
    p.notifications.retain(|n| !n.sends.is_empty());
    p.summary = Summary::of(&p.notifications);
    p
}

/// What `apply --wait` needs to go on: the plan's inputs but the state (read from the session
/// each time) and the retries (this run's only), the run's limiter and options.
pub(crate) struct Carry<'a> {
    pub(crate) config: &'a crate::config::Config,
    pub(crate) target: &'a crate::config::Target,
    pub(crate) notifications: &'a [Notification],
    pub(crate) audience: &'a std::collections::BTreeMap<String, crate::plan::AudienceNote>,
    pub(crate) promotion: Option<&'a crate::plan::PromotionSources<'a>>,
    /// The target's test ledger, as the first plan read it (the policy's `testSent`).
    pub(crate) test_ledger: Option<&'a crate::state::State>,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) send: SendOptions,
    pub(crate) max_recipients: Option<usize>,
    pub(crate) timeout: std::time::Duration,
    /// The notifications whose waves it carries on.
    pub(crate) keys: Vec<String>,
}

impl Carry<'_> {
    /// Carries on only the rollouts of `keys`.
    pub(crate) fn only(self, keys: Vec<String>) -> Self {
        Carry { keys, ..self }
    }

    /// The plan again, from the session's state at `now`.
    fn replan(&self, loaded: &Loaded, now: time::OffsetDateTime) -> Plan {
        let retry = crate::plan::Retry::default();
        let inputs = crate::plan::TargetInputs {
            config: self.config,
            target: self.target,
            notifications: self.notifications,
            audience: self.audience,
            loaded,
            promotion: self.promotion,
            retry: &retry,
            clock: Some(self.send.clock),
            test_ledger: self.test_ledger,
        };
        crate::plan::for_target(&inputs, now)
    }

    /// Statuses refreshed under the session until every request is terminal (or the timeout).
    fn statuses(&self, g: &Global, session: &mut dyn Session) -> Result<Exit> {
        let poll = crate::engine::poll::PollOptions {
            parallelism: self.send.parallelism,
            shell: g.shell,
            timeout: Some(self.timeout),
            wait: true,
        };
        crate::engine::poll::refresh_until(self.target, g.env(), g.clock, self.limiter.clone(), session, &poll)
    }
}

/// `apply --wait`: statuses, then the next wave once its gate opens, until none is left to send in
/// this process. Returns the session and the worst end.
pub(crate) fn carry_on(g: &Global, c: &Carry, mut session: Box<dyn Session>) -> Result<(Box<dyn Session>, Exit)> {
    let mut code = Exit::Ok;
    // `--timeout` bounds the whole wait, observation times included.
    let deadline = std::time::Instant::now() + c.timeout;
    loop {
        code = code.max(c.statuses(g, &mut *session)?);
        if let Some(sig) = crate::interrupt::requested() {
            return Ok((session, Exit::Interrupted(sig)));
        }
        let now = g.now + g.started.elapsed();
        let plan = c.replan(session.loaded(), now);
        if plan.notifications.iter().all(|n| n.rollout.is_none()) {
            return Ok((session, code));
        }
        let halts = halts(&plan, c.notifications);
        for e in &halts {
            session.record(e)?;
        }
        if !halts.is_empty() {
            session.compact()?;
        }
        let waves = only_waves(&plan, &c.keys);
        let to_send = waves.summary.recipients_to_send;
        if to_send > 0 {
            if let Some(max) = c.max_recipients.filter(|m| to_send > *m) {
                return Err(Error::Refused(format!(
                    "the next canary wave would message {to_send} recipients, more than --max-recipients {max}; the rollout stops here (a later apply continues it)"
                )));
            }
            let creds = c.target.credentials(g.env())?;
            g.info(format!("canary: sending the next wave ({to_send} recipient(s))"));
            let prepared = send::prepare(session, g.clock, &waves, c.notifications, &[], &[], c.target.batch_size)?;
            let (s, tally) = send::execute(prepared, c.target, &c.config.origin, Some(creds), &c.limiter, c.send)?;
            session = s;
            code = code.max(super::apply::report(g, &tally, &waves)?);
            continue;
        }
        let next = plan
            .notifications
            .iter()
            .filter_map(|n| n.rollout.as_ref()?.next_at.as_deref().and_then(crate::rfc3339::parse))
            .min();
        let Some(until) = next else {
            if report(g, &plan) {
                code = code.max(Exit::Partial);
            }
            return Ok((session, code));
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if g.now + g.started.elapsed() + left < until {
            g.info(format!(
                "canary: the next wave may leave at {} (observe), after --timeout; the next apply continues the rollout",
                crate::rfc3339::to_second(until)
            ));
            return Ok((session, code));
        }
        g.info(format!("canary: waiting until {} (observe) for the next wave", crate::rfc3339::to_second(until)));
        while g.now + g.started.elapsed() < until {
            if let Some(sig) = crate::interrupt::requested() {
                return Ok((session, Exit::Interrupted(sig)));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}
