//! The policy (`policy:` in the config): rules over the facts of a plan — which target, channel
//! and API, whether it is a first send, a second message or a retry, how many people, where the
//! audience comes from, whether the text changed, whether the sends land outside business hours —
//! each with one effect: `allow`, `warn`, `require` approvals or `deny`.
//!
//! Why here and not in review habits: kore-notify knows the exact effect of every change, so the
//! rules judge that effect (not an estimated audience), and `apply` checks the approvals of the
//! pull request that brought the change, bound to its final head commit (see `approvals.rs`).
//!
//! Evaluation (pure: a policy and one notification's facts give a verdict with its reasons):
//! every rule whose `when` matches is triggered, top to bottom. A triggered `deny` denies,
//! whatever else matched: nothing lifts it (not an `allow`, not `--override-policy`). A triggered
//! `allow` exempts the notification from the `warn` and `require` rules below it. Every other
//! triggered `require` must be met on its own (its approvals from its own `from`), and every
//! `warn` is shown. No policy, or no rule matched: allowed. The parser is `parse.rs`, business
//! hours `hours.rs`, the approvals file and its counting `approvals.rs`, apply's gate `gate.rs`.

use serde::{Deserialize, Serialize};

mod approvals;
mod at_apply;
mod gate;
mod hours;
mod parse;

pub(crate) use approvals::{ApprovalsFile, Counted, count_approvals, read_approvals};
pub(crate) use at_apply::{actor, check_reason, load_approvals, run_url};
pub(crate) use gate::{
    GATE, Gate, GateInput, PolicyChange, PolicyContext, annotate_plan, override_entry, policy_change,
};
pub(crate) use hours::BusinessHours;
pub(crate) use parse::{FIELD, HOURS_FIELD, MAX_APPROVALS, business_hours, policy};

/// The rules, in the order written.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Policy {
    pub(crate) rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) when: When,
    pub(crate) effect: Effect,
}

/// The conditions of a rule: all must hold (a list inside one condition: any of its values).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct When {
    pub(crate) target: Vec<String>,
    pub(crate) channel: Vec<String>,
    pub(crate) api: Vec<String>,
    pub(crate) action: Vec<Kind>,
    /// `recipients: {new|second|total: THRESHOLD}`.
    pub(crate) recipients: Vec<(Measure, Threshold)>,
    pub(crate) audience: Vec<Source>,
    pub(crate) content_changed: Option<bool>,
    pub(crate) outside_business_hours: Option<bool>,
}

/// What a notification's sends are: a first message (`send`), a second one to people who had an
/// earlier version (`resend`), or a retry of an unknown or failed delivery (`retry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Send,
    Resend,
    Retry,
}

impl Kind {
    pub(crate) const NAMES: &'static [&'static str] = &["send", "resend", "retry"];
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Send => "send",
            Kind::Resend => "resend",
            Kind::Retry => "retry",
        }
    }
}

/// Which recipients a threshold counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Measure {
    /// Never sent this notification before.
    New,
    /// Had an earlier version (changed content), or are retried.
    Second,
    /// Everyone this apply would message for the notification.
    Total,
}

impl Measure {
    pub(crate) const NAMES: &'static [&'static str] = &["new", "second", "total"];
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Measure::New => "new",
            Measure::Second => "second",
            Measure::Total => "total",
        }
    }
}

/// `>N`, `>=N`, `<N`, `<=N`, `=N`; a bare number means at least (`>=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Threshold {
    pub(crate) op: Op,
    pub(crate) n: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

impl Threshold {
    pub(crate) fn holds(self, v: u64) -> bool {
        match self.op {
            Op::Gt => v > self.n,
            Op::Ge => v >= self.n,
            Op::Lt => v < self.n,
            Op::Le => v <= self.n,
            Op::Eq => v == self.n,
        }
    }
    pub(crate) fn text(self) -> String {
        let op = match self.op {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
        };
        format!("{op}{}", self.n)
    }
}

/// Where a notification's recipients come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Inline,
    Csv,
}

impl Source {
    pub(crate) const NAMES: &'static [&'static str] = &["inline", "csv"];
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Effect {
    Allow,
    Warn(String),
    Require { approvals: u32, from: Vec<String> },
    Deny(String),
}

impl Effect {
    pub(crate) fn word(&self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Warn(_) => "warn",
            Effect::Require { .. } => "require",
            Effect::Deny(_) => "deny",
        }
    }
}

/// What the plan knows of one notification, for the rules.
#[derive(Clone, Debug, Default)]
pub(crate) struct Facts {
    pub(crate) target: String,
    pub(crate) channel: String,
    pub(crate) api: String,
    pub(crate) kinds: Vec<Kind>,
    pub(crate) new: u64,
    pub(crate) second: u64,
    pub(crate) total: u64,
    pub(crate) inline: bool,
    pub(crate) csv: bool,
    pub(crate) content_changed: bool,
    /// Whether some of its sends would land outside the target's business hours (`None`: no
    /// business hours configured).
    pub(crate) outside_business_hours: Option<bool>,
    /// The business hours, in words (for the verdict's reasons).
    pub(crate) hours: String,
}

/// The decision for one notification, strongest effect first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Decision {
    Allow,
    Warn,
    Require,
    Deny,
}

/// The policy's verdict on one notification: its decision and every rule it triggered, with why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Verdict {
    pub(crate) decision: Decision,
    pub(crate) rules: Vec<Triggered>,
}

/// A rule a notification triggered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Triggered {
    /// The rule's `name`.
    pub(crate) rule: String,
    /// allow, warn, require or deny.
    pub(crate) effect: String,
    /// The facts that matched its `when`, in words (`channel ivr; recipients.total 1500 >1000`).
    pub(crate) why: String,
    /// The text of a `warn` or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
    /// `require`: how many approvals, from whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) approvals: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) from: Vec<String>,
    /// A `warn` or `require` below a triggered `allow`: the allow rule that exempts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exempted_by: Option<String>,
}

impl Triggered {
    /// Whether this rule still asks for approvals (a `require` not exempted).
    pub(crate) fn requires(&self) -> bool {
        self.effect == "require" && self.exempted_by.is_none()
    }

    /// The rule in one line, for people.
    pub(crate) fn line(&self) -> String {
        let what = match (self.effect.as_str(), &self.message, self.approvals) {
            ("require", _, Some(n)) => format!("requires {n} approval(s) from {}", self.from.join(", ")),
            ("warn", Some(m), _) => format!("warns: {m}"),
            ("deny", Some(m), _) => format!("denies: {m}"),
            _ => "allows".to_string(),
        };
        let exempt = self.exempted_by.as_ref().map(|a| format!(" (exempted by allow rule `{a}`)")).unwrap_or_default();
        format!("policy rule `{}` {what}{exempt} — {}", self.rule, self.why)
    }
}

/// Why `when` matches `f`, in words; `None` when it does not.
fn matches(when: &When, f: &Facts) -> Option<String> {
    let mut why = Vec::new();
    let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(v));
    for (name, list, v) in
        [("target", &when.target, &f.target), ("channel", &when.channel, &f.channel), ("api", &when.api, &f.api)]
    {
        if !listed(list, v) {
            return None;
        }
        if !list.is_empty() {
            why.push(format!("{name} {v}"));
        }
    }
    if !when.action.is_empty() {
        let hit: Vec<&str> = when.action.iter().filter(|k| f.kinds.contains(k)).map(|k| k.as_str()).collect();
        if hit.is_empty() {
            return None;
        }
        why.push(format!("action {}", hit.join(", ")));
    }
    for (m, t) in &when.recipients {
        let v = match m {
            Measure::New => f.new,
            Measure::Second => f.second,
            Measure::Total => f.total,
        };
        if !t.holds(v) {
            return None;
        }
        why.push(format!("recipients.{} {v} {}", m.as_str(), t.text()));
    }
    if !when.audience.is_empty() {
        let hit: Vec<&str> = when
            .audience
            .iter()
            .filter(|s| match s {
                Source::Inline => f.inline,
                Source::Csv => f.csv,
            })
            .map(|s| if *s == Source::Csv { "csv" } else { "inline" })
            .collect();
        if hit.is_empty() {
            return None;
        }
        why.push(format!("audience {}", hit.join(", ")));
    }
    if let Some(want) = when.content_changed {
        if want != f.content_changed {
            return None;
        }
        why.push(format!("contentChanged {want}"));
    }
    if let Some(want) = when.outside_business_hours {
        if f.outside_business_hours != Some(want) {
            return None;
        }
        let side = if want { "outside" } else { "inside" };
        why.push(format!("sends land {side} business hours ({})", f.hours));
    }
    Some(if why.is_empty() { "matches every send".into() } else { why.join("; ") })
}

/// The verdict of `policy` on one notification's facts: `None` when no rule matched (allowed).
pub(crate) fn evaluate(policy: &Policy, f: &Facts) -> Option<Verdict> {
    let mut rules = Vec::new();
    let mut allowed_by: Option<String> = None;
    let mut decision = Decision::Allow;
    for r in &policy.rules {
        let Some(why) = matches(&r.when, f) else { continue };
        let mut t = Triggered {
            rule: r.name.clone(),
            effect: r.effect.word().into(),
            why,
            message: None,
            approvals: None,
            from: Vec::new(),
            exempted_by: None,
        };
        match &r.effect {
            Effect::Allow => {
                allowed_by.get_or_insert_with(|| r.name.clone());
            }
            Effect::Warn(m) => {
                t.message = Some(m.clone());
                t.exempted_by.clone_from(&allowed_by);
            }
            Effect::Require { approvals, from } => {
                (t.approvals, t.from) = (Some(*approvals), from.clone());
                t.exempted_by.clone_from(&allowed_by);
            }
            Effect::Deny(m) => t.message = Some(m.clone()),
        }
        let d = match (&r.effect, &t.exempted_by) {
            (_, Some(_)) | (Effect::Allow, _) => Decision::Allow,
            (Effect::Warn(_), None) => Decision::Warn,
            (Effect::Require { .. }, None) => Decision::Require,
            (Effect::Deny(_), None) => Decision::Deny,
        };
        decision = decision.max(d);
        rules.push(t);
    }
    (!rules.is_empty()).then_some(Verdict { decision, rules })
}

/// A policy as lines, one per rule (for `plan --compare-to`: the rules before and after).
pub(crate) fn describe(policy: &Policy) -> Vec<String> {
    policy.rules.iter().map(describe_rule).collect()
}

fn describe_rule(r: &Rule) -> String {
    let w = &r.when;
    let mut when = Vec::new();
    for (name, list) in [("target", &w.target), ("channel", &w.channel), ("api", &w.api)] {
        if !list.is_empty() {
            when.push(format!("{name}: {}", list.join("|")));
        }
    }
    if !w.action.is_empty() {
        when.push(format!("action: {}", w.action.iter().map(|k| k.as_str()).collect::<Vec<_>>().join("|")));
    }
    for (m, t) in &w.recipients {
        when.push(format!("recipients.{}: {}", m.as_str(), t.text()));
    }
    if !w.audience.is_empty() {
        let names: Vec<&str> = w.audience.iter().map(|s| if *s == Source::Csv { "csv" } else { "inline" }).collect();
        when.push(format!("audience: {}", names.join("|")));
    }
    if let Some(b) = w.content_changed {
        when.push(format!("contentChanged: {b}"));
    }
    if let Some(b) = w.outside_business_hours {
        when.push(format!("outsideBusinessHours: {b}"));
    }
    let effect = match &r.effect {
        Effect::Allow => "allow".to_string(),
        Effect::Warn(m) => format!("warn: {m}"),
        Effect::Require { approvals, from } => format!("require: {approvals} approval(s) from {}", from.join(", ")),
        Effect::Deny(m) => format!("deny: {m}"),
    };
    let when = if when.is_empty() { "every send".to_string() } else { when.join(", ") };
    format!("{}: when {when} → {effect}", r.name)
}

#[cfg(test)]
mod tests;
