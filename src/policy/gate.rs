//! Where the policy meets a plan: the facts of each notification that sends, its verdict attached
//! to the plan (`annotate_plan`), and at apply the gate (`Gate::judge`, pure): denied
//! notifications refuse the run, those whose `require` rules lack approvals are held back
//! (awaiting approval) unless the policy is overridden, which is recorded (`override_entry`).

use super::*;
use crate::plan::{Change, Plan, PlannedNotification};
use crate::state::{Entry, State};

/// What the config says that the plan's verdicts need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PolicyContext<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) hours: Option<&'a BusinessHours>,
    /// The target's name (one implicit target: `default`).
    pub(crate) target: &'a str,
}

/// The facts of one planned notification.
fn facts(
    cx: &PolicyContext,
    p: &PlannedNotification,
    audience: (bool, bool),
    span: (time::OffsetDateTime, f64),
) -> Facts {
    let mut kinds = Vec::new();
    let (mut new, mut second) = (0u64, 0u64);
    for r in &p.sends {
        let k = match r.change {
            Change::New => Kind::Send,
            Change::Changed => Kind::Resend,
            Change::Retry | Change::RetryFailed => Kind::Retry,
        };
        if k == Kind::Send {
            new += 1;
        } else {
            second += 1;
        }
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    // Recipients this content reaches later (their delivery window, a later canary wave) count
    // too: a rule on reach cannot be passed in slices, one wave or one time zone at a time.
    let later = p.recipients.waiting as u64;
    if p.action == crate::plan::Action::Resend {
        second += later;
    } else {
        new += later;
    }
    let (start, secs) = span;
    let end = start + time::Duration::seconds_f64(secs.clamp(0.0, 1e9));
    Facts {
        target: cx.target.to_string(),
        channel: p.channel.clone().unwrap_or_default(),
        api: p.api.clone().unwrap_or_default(),
        kinds,
        new,
        second,
        // A canary rollout reaches all its waves' recipients, whichever wave this apply sends.
        total: (p.sends.len() as u64 + later)
            .max(p.rollout.as_ref().map_or(0, |r| r.waves.iter().map(|w| w.recipients).sum())),
        inline: audience.0,
        csv: audience.1,
        content_changed: p.previous_content.is_some(),
        outside_business_hours: cx.hours.map(|h| h.outside(start, end)),
        hours: cx.hours.map(BusinessHours::text).unwrap_or_default(),
        test_sent: p.test_send.as_ref().is_some_and(|e| e.fresh),
    }
}

/// Attaches the policy's verdict to every notification that sends, and the latest override the
/// state records to every notification.
pub(crate) fn annotate_plan(
    plan: &mut Plan,
    cx: &PolicyContext,
    notifications: &[crate::manifest::Notification],
    state: &State,
    now: time::OffsetDateTime,
) {
    let audience: std::collections::HashMap<&str, (bool, bool)> =
        notifications.iter().map(|n| (n.key.as_str(), (n.audience.inline, n.audience.csv))).collect();
    let leaves: std::collections::HashMap<String, f64> = plan
        .forecast
        .as_ref()
        .map(|f| f.notifications.iter().map(|l| (l.key.clone(), l.last_leaves_after)).collect())
        .unwrap_or_default();
    for p in &mut plan.notifications {
        p.last_override =
            state.notifications.get(&p.key).and_then(|n| n.overrides.iter().rev().find(|o| o.gate == GATE).cloned());
        if !p.action.sends() || cx.policy.rules.is_empty() {
            continue;
        }
        let aud = audience.get(p.key.as_str()).copied().unwrap_or((true, false));
        let f = facts(cx, p, aud, (now, leaves.get(&p.key).copied().unwrap_or(0.0)));
        p.policy = evaluate(cx.policy, &f);
    }
}

/// How a policy changed (`plan --compare-to`): its rules before and after, one line each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct PolicyChange {
    pub(crate) before: Vec<String>,
    pub(crate) after: Vec<String>,
}

/// The change between the base version's policy and this one, when they differ.
pub(crate) fn policy_change(before: &Policy, after: &Policy) -> Option<PolicyChange> {
    (before != after).then(|| PolicyChange { before: describe(before), after: describe(after) })
}

/// What apply may use besides the plan: the approvals read, and `--override-policy --reason`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GateInput<'a> {
    pub(crate) approvals: Option<&'a ApprovalsFile>,
    pub(crate) override_reason: Option<&'a str>,
}

/// A notification sent despite its `require` rules.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Override {
    pub(crate) key: String,
    pub(crate) rules: Vec<String>,
}

/// The gate's decisions for one apply.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Gate {
    /// `key: rule denies: text`, one per denying rule.
    pub(crate) denied: Vec<String>,
    /// (key, what is missing), not sent.
    pub(crate) awaiting: Vec<(String, String)>,
    /// Sent without their approvals (`--override-policy`).
    pub(crate) overridden: Vec<Override>,
    /// (key, rule, approvers): the requirements met.
    pub(crate) approved: Vec<(String, String, Vec<String>)>,
}

impl Gate {
    /// The gate for `plan` (its verdicts attached): pure.
    pub(crate) fn judge(plan: &Plan, input: &GateInput) -> Gate {
        let mut g = Gate::default();
        for p in &plan.notifications {
            let Some(v) = p.policy.as_ref().filter(|_| p.action.sends()) else { continue };
            for t in v.rules.iter().filter(|t| t.effect == "deny") {
                let m = t.message.as_deref().unwrap_or_default();
                g.denied.push(format!("`{}`: policy rule `{}` denies: {m}", p.key, t.rule));
            }
            let mut missing = Vec::new();
            let mut unmet = Vec::new();
            for t in v.rules.iter().filter(|t| t.requires()) {
                let need = t.approvals.unwrap_or(1) as usize;
                let c = count_approvals(input.approvals, &t.from);
                if c.approvers.len() >= need {
                    g.approved.push((p.key.clone(), t.rule.clone(), c.approvers));
                } else {
                    missing.push(missing_text(t, need, &c, input.approvals));
                    unmet.push(t.rule.clone());
                }
            }
            if unmet.is_empty() {
                continue;
            }
            if input.override_reason.is_some() {
                g.overridden.push(Override { key: p.key.clone(), rules: unmet });
            } else {
                g.awaiting.push((p.key.clone(), missing.join("; ")));
            }
        }
        g
    }

    /// Takes the notifications awaiting approval out of `plan`: nothing is sent to them, their
    /// reason says why, and the summary counts only what is sent.
    pub(crate) fn withhold(&self, plan: &mut Plan) {
        for p in &mut plan.notifications {
            let Some((_, why)) = self.awaiting.iter().find(|(k, _)| *k == p.key) else { continue };
            p.reason = format!("awaiting approval, not sent: {why}");
            p.sends.clear();
            p.preview.clear();
        }
        let s = &mut plan.summary;
        s.notifications_to_send = plan.notifications.iter().filter(|p| p.action.sends() && !p.sends.is_empty()).count();
        s.recipients_to_send = plan.notifications.iter().filter(|p| p.action.sends()).map(|p| p.sends.len()).sum();
    }
}

/// `rule big-ivr needs 2 approval(s) from octo-org/comms on the final head commit: 1 counted
/// (bob); not counted: alice (the author …)`.
fn missing_text(t: &Triggered, need: usize, c: &Counted, file: Option<&ApprovalsFile>) -> String {
    let mut s = format!(
        "rule `{}` needs {need} approval(s) from {} on the pull request's final head commit",
        t.rule,
        t.from.join(", ")
    );
    match file.map(|f| &f.pull_request) {
        None => s.push_str(": no approvals were given to apply (`apply --approvals FILE`)"),
        Some(None) => s.push_str(": the commit was pushed without a pull request, so it has no approvals"),
        Some(Some(_)) => {
            let who = if c.approvers.is_empty() { String::new() } else { format!(" ({})", c.approvers.join(", ")) };
            s.push_str(&format!(": {} counted{who}", c.approvers.len()));
            if !c.not_counted.is_empty() {
                let nc: Vec<String> = c.not_counted.iter().map(|(l, w)| format!("{l} ({w})")).collect();
                s.push_str(&format!("; not counted: {}", nc.join(", ")));
            }
        }
    }
    if let Some(f) = file {
        let teams: Vec<&String> =
            t.from.iter().filter(|w| w.contains('/') && !f.teams.keys().any(|k| k.eq_ignore_ascii_case(w))).collect();
        if !teams.is_empty() {
            let names: Vec<&str> = teams.iter().map(|s| s.as_str()).collect();
            s.push_str(&format!("; the approvals file lists no members of {}", names.join(", ")));
        }
    }
    s
}

/// The gate an override of the policy is recorded under (`Override::gate`).
pub(crate) const GATE: &str = "policy";

/// The entry recording that `o` is sent despite its rules (gate `policy`, for the content sent).
pub(crate) fn override_entry(
    o: &Override,
    n: &crate::manifest::Notification,
    actor: &str,
    reason: &str,
    run_url: Option<&str>,
    at: String,
) -> Entry {
    let content = crate::state::StoredContent::from(&n.content);
    Entry::Override {
        key: o.key.clone(),
        channel: n.channel,
        api: n.api,
        record: crate::state::Override {
            gate: GATE.into(),
            content: crate::fingerprint::content_digest(n.api, n.channel, &content),
            rules: o.rules.clone(),
            actor: actor.to_string(),
            reason: reason.to_string(),
            run_url: run_url.map(str::to_string),
            at,
        },
        content,
    }
}
