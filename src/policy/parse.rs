//! Reading `policy:` and `businessHours:` from the config's field map, every problem reported
//! with its position, field and fix (an unknown condition, a threshold such as `>1k`, two effects
//! in one rule, an empty `from`, …), like every other field.

use super::*;
use crate::diag::Pos;
use crate::walk::{Walker, index, join};
use crate::yaml::{Node, Value};

type Fields<'n> = std::collections::BTreeMap<String, &'n Node>;

/// The config field holding the rules.
pub(crate) const FIELD: &str = "policy";
/// The config field holding the business hours.
pub(crate) const HOURS_FIELD: &str = "businessHours";

const RULE_FIELDS: &[&str] = &["name", "when", "allow", "warn", "require", "deny"];
const EFFECTS: &[&str] = &["allow", "warn", "require", "deny"];
const WHEN_FIELDS: &[&str] =
    &["target", "channel", "api", "action", "recipients", "audience", "contentChanged", "outsideBusinessHours"];
const REQUIRE_FIELDS: &[&str] = &["approvals", "from"];
const HOURS_FIELDS: &[&str] = &["utcOffset", "days", "from", "to"];
const CHANNELS: &[&str] = &["msteams", "slack", "ivr", "hangouts", "whatsapp"];
/// The most approvals a rule may ask for.
pub(crate) const MAX_APPROVALS: u64 = 20;
/// The most rules a policy may have.
const MAX_RULES: usize = 500;
const THRESHOLD_HELP: &str = "write a whole number with an optional comparison, e.g. \">1000\", \">=500\", \"<10\" (a bare number means at least)";

/// The config's targets, as the policy is checked against them: each name, and whether it has
/// business hours. `None` when the targets themselves have errors (then nothing is checked
/// against them, so a mistake is reported once, where it is).
pub(crate) type Targets<'a> = Option<&'a [(String, bool)]>;

/// `policy:`, checked; `None` when absent or wrong (the problems are in the diagnostics). A
/// `target` condition must name a target of the config, and an `outsideBusinessHours` condition
/// needs the business hours of every target the rule concerns.
pub(crate) fn policy(w: &mut Walker, f: &Fields, targets: Targets) -> Option<Policy> {
    let node = f.get(FIELD)?;
    if matches!(node.value, Value::Null) {
        return Some(Policy::default());
    }
    let items = w.seq(node, FIELD)?;
    if items.len() > MAX_RULES {
        w.error(&node.pos, FIELD, format!("{} rules, more than {MAX_RULES}", items.len()), "merge rules");
        return None;
    }
    let before = w.diags.errors();
    let mut rules = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index(FIELD, i);
        if let Some(r) = rule(w, item, &path, targets) {
            if names.contains(&r.name) {
                let fix = "give every rule its own name: verdicts and approvals name it";
                w.error(&item.pos, &join(&path, "name"), format!("a second rule named `{}`", r.name), fix);
            }
            names.push(r.name.clone());
            rules.push(r);
        }
    }
    (w.diags.errors() == before).then_some(Policy { rules })
}

fn rule(w: &mut Walker, item: &Node, path: &str, targets: Targets) -> Option<Rule> {
    let f = w.fields(item, path, RULE_FIELDS)?;
    let name = match f.get("name") {
        Some(n) => {
            let s = w.string(n, &join(path, "name"))?;
            if s.trim().is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
                w.error(
                    &n.pos,
                    &join(path, "name"),
                    "expected a name of 1 to 100 printable characters",
                    "e.g. `name: big-ivr`",
                );
                return None;
            }
            s
        }
        None => {
            w.error(
                &item.pos,
                &join(path, "name"),
                "missing required field `name`",
                "add `name: …` (verdicts and approvals name the rule)",
            );
            return None;
        }
    };
    let when = match f.get("when") {
        Some(n) => when(w, n, &join(path, "when"), targets)?,
        None => When::default(),
    };
    let given: Vec<&str> = EFFECTS.iter().copied().filter(|e| f.contains_key(*e)).collect();
    let effect = match given.as_slice() {
        [one] => effect(w, f[*one], &join(path, one), one)?,
        [] => {
            w.error(
                &item.pos,
                path,
                format!("rule `{name}` has no effect"),
                "add one of: allow: true, warn: TEXT, require: {approvals: N, from: [...]}, deny: TEXT",
            );
            return None;
        }
        many => {
            let at = &f[many[1]].pos;
            w.error(
                at,
                &join(path, many[1]),
                format!("rule `{name}` has {} effects ({})", many.len(), many.join(", ")),
                "a rule has exactly one effect: split it into one rule per effect",
            );
            return None;
        }
    };
    Some(Rule { name, when, effect })
}

fn effect(w: &mut Walker, n: &Node, path: &str, which: &str) -> Option<Effect> {
    let text = |w: &mut Walker, what: &str| -> Option<String> {
        let s = w.string(n, path)?;
        if s.trim().is_empty() || s.chars().count() > 500 || s.chars().any(char::is_control) {
            w.error(
                &n.pos,
                path,
                format!("expected {what} of 1 to 500 printable characters"),
                format!("e.g. `{which}: WhatsApp sends need legal sign-off first`"),
            );
            return None;
        }
        Some(s)
    };
    match which {
        "allow" => match n.value {
            Value::Bool(true) | Value::Null => Some(Effect::Allow),
            _ => {
                w.error(&n.pos, path, "expected `allow: true`", "write `allow: true`, or leave the rule out");
                None
            }
        },
        "warn" => text(w, "a warning").map(Effect::Warn),
        "deny" => text(w, "a reason").map(Effect::Deny),
        _ => require(w, n, path),
    }
}

fn require(w: &mut Walker, n: &Node, path: &str) -> Option<Effect> {
    let f = w.fields(n, path, REQUIRE_FIELDS)?;
    let approvals = match f.get("approvals") {
        Some(a) => w.uint(a, &join(path, "approvals"), 1, MAX_APPROVALS)? as u32,
        None => {
            w.error(
                &n.pos,
                &join(path, "approvals"),
                "missing required field `approvals`",
                "add `approvals: 2` (how many distinct people)",
            );
            return None;
        }
    };
    let Some(from_node) = f.get("from") else {
        w.error(
            &n.pos,
            &join(path, "from"),
            "missing required field `from`",
            "add `from: [github-login, org/team]`: who may approve",
        );
        return None;
    };
    let fpath = join(path, "from");
    let from = w.strings(from_node, &fpath);
    if from.is_empty() {
        w.error(
            &from_node.pos,
            &fpath,
            "`from` is empty: nobody could approve",
            "list GitHub logins or org/team slugs, e.g. `from: [octo-org/comms]`",
        );
        return None;
    }
    let mut out = Vec::new();
    for (i, (who, pos)) in from.into_iter().enumerate() {
        if !valid_approver(&who) {
            w.error(
                &pos,
                &index(&fpath, i),
                format!("`{}` is not a GitHub login or org/team", crate::safe::line(&who)),
                "write a login (letters, digits, -) or org/team-slug, e.g. octo-org/comms",
            );
            return None;
        }
        out.push(who);
    }
    Some(Effect::Require { approvals, from: out })
}

/// A GitHub login (`octocat`) or a team (`org/team-slug`).
pub(crate) fn valid_approver(s: &str) -> bool {
    match s.split_once('/') {
        Some((org, team)) => crate::policy::approvals::valid_login(org) && valid_slug(team),
        None => crate::policy::approvals::valid_login(s),
    }
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn when(w: &mut Walker, n: &Node, path: &str, targets: Targets) -> Option<When> {
    let f = w.fields(n, path, WHEN_FIELDS)?;
    let before = w.diags.errors();
    let mut out = When::default();
    if let Some(n) = f.get("target") {
        out.target = target_names(w, n, &join(path, "target"), targets);
    }
    out.channel = words(w, f.get("channel"), &join(path, "channel"), CHANNELS);
    out.api = words(w, f.get("api"), &join(path, "api"), &["v1", "v2"]);
    out.action = words(w, f.get("action"), &join(path, "action"), Kind::NAMES)
        .iter()
        .map(|s| match s.as_str() {
            "send" => Kind::Send,
            "resend" => Kind::Resend,
            _ => Kind::Retry,
        })
        .collect();
    out.audience = words(w, f.get("audience"), &join(path, "audience"), Source::NAMES)
        .iter()
        .map(|s| if s == "csv" { Source::Csv } else { Source::Inline })
        .collect();
    if let Some(r) = f.get("recipients") {
        out.recipients = recipients(w, r, &join(path, "recipients"));
    }
    out.content_changed = f.get("contentChanged").and_then(|n| boolean(w, n, &join(path, "contentChanged")));
    if let Some(b) = f.get("outsideBusinessHours") {
        out.outside_business_hours = boolean(w, b, &join(path, "outsideBusinessHours"));
        check_hours(w, b, &join(path, "outsideBusinessHours"), &out.target, targets);
    }
    (w.diags.errors() == before).then_some(out)
}

/// `target:`: one name or a list, each a target of the config (a misspelt name would make the
/// rule silently judge nothing).
fn target_names(w: &mut Walker, n: &Node, path: &str, targets: Targets) -> Vec<String> {
    let names: Vec<(String, Pos)> = w.strings(n, path);
    let Some(ts) = targets else { return names.into_iter().map(|(s, _)| s).collect() };
    for (name, pos) in &names {
        if !ts.iter().any(|(t, _)| t.eq_ignore_ascii_case(name)) {
            let known: Vec<&str> = ts.iter().map(|(t, _)| t.as_str()).collect();
            w.error(
                pos,
                path,
                format!("no target `{}` in this config", crate::safe::line(name)),
                format!(
                    "name one of its targets: {} (a config without `targets:` has one, `{}`)",
                    known.join(", "),
                    crate::config::IMPLICIT
                ),
            );
        }
    }
    names.into_iter().map(|(s, _)| s).collect()
}

/// An `outsideBusinessHours` condition needs the business hours of every target the rule
/// concerns (those its `target` names, else all): without them it would never match there.
fn check_hours(w: &mut Walker, b: &Node, path: &str, named: &[String], targets: Targets) {
    let Some(ts) = targets else { return };
    let concerned = |t: &str| named.is_empty() || named.iter().any(|n| n.eq_ignore_ascii_case(t));
    let lacking: Vec<&str> = ts.iter().filter(|(t, h)| !h && concerned(t)).map(|(t, _)| t.as_str()).collect();
    if lacking.is_empty() {
        return;
    }
    let sample =
        "businessHours: {utcOffset: \"+01:00\", days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"18:00\"}";
    let implicit = matches!(ts, [(t, _)] if t == crate::config::IMPLICIT);
    let (message, fix) = if implicit {
        ("`outsideBusinessHours` needs the business hours".to_string(), format!("add `{sample}` to the config"))
    } else {
        let each: Vec<String> = lacking.iter().map(|t| format!("targets.{t}")).collect();
        (
            format!("`outsideBusinessHours` needs the business hours of target(s) {}", lacking.join(", ")),
            format!(
                "add `{sample}` at the top of the config (a default every target inherits) or to {}",
                each.join(", ")
            ),
        )
    };
    w.error(&b.pos, path, message, fix);
}

/// A word or a list of words, each one of `allowed`.
fn words(w: &mut Walker, n: Option<&&Node>, path: &str, allowed: &[&str]) -> Vec<String> {
    let Some(n) = n else { return Vec::new() };
    let items: Vec<&Node> = match &n.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![*n],
    };
    if items.is_empty() {
        w.error(&n.pos, path, "an empty list matches nothing", format!("list one or more of: {}", allowed.join(", ")));
    }
    let many = matches!(n.value, Value::Seq(_));
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| w.one_of(item, &if many { index(path, i) } else { path.to_string() }, allowed))
        .collect()
}

fn boolean(w: &mut Walker, n: &Node, path: &str) -> Option<bool> {
    match n.value {
        Value::Bool(b) => Some(b),
        _ => {
            w.error(&n.pos, path, format!("expected true or false, found {}", n.kind()), "write true or false");
            None
        }
    }
}

/// `recipients: {new|second|total: THRESHOLD}`.
fn recipients(w: &mut Walker, n: &Node, path: &str) -> Vec<(Measure, Threshold)> {
    let Some(f) = w.fields(n, path, Measure::NAMES) else { return Vec::new() };
    let mut out = Vec::new();
    for (name, m) in [("new", Measure::New), ("second", Measure::Second), ("total", Measure::Total)] {
        let Some(v) = f.get(name) else { continue };
        let p = join(path, name);
        let parsed = match &v.value {
            Value::Int(i) if *i >= 0 => Some(Threshold { op: Op::Ge, n: *i as u64 }),
            Value::Str(s) => threshold(s),
            _ => None,
        };
        match parsed {
            Some(t) => out.push((m, t)),
            None => {
                let shown = v
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| v.raw.as_ref().map(ToString::to_string))
                    .unwrap_or_else(|| v.kind().to_string());
                w.error(&v.pos, &p, format!("`{}` is not a threshold", crate::safe::line(&shown)), THRESHOLD_HELP);
            }
        }
    }
    if f.is_empty() {
        w.error(
            &n.pos,
            path,
            "no threshold given",
            "write e.g. `recipients: {total: \">1000\"}` (new, second or total)",
        );
    }
    out
}

/// `>1000`, `>= 500`, `<10`, `<=10`, `=3`, `1000` (at least).
pub(crate) fn threshold(s: &str) -> Option<Threshold> {
    let s = s.trim();
    let (op, rest) = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt), ("=", Op::Eq)]
        .into_iter()
        .find_map(|(p, op)| s.strip_prefix(p).map(|r| (op, r)))
        .unwrap_or((Op::Ge, s));
    let digits = rest.trim();
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Threshold { op, n: digits.parse().ok()? })
}

/// `businessHours:`, checked.
pub(crate) fn business_hours(w: &mut Walker, f: &Fields, prefix: &str) -> Option<BusinessHours> {
    let node = f.get(HOURS_FIELD)?;
    let field = join(prefix, HOURS_FIELD);
    let g = w.fields(node, &field, HOURS_FIELDS)?;
    let p = |name: &str| join(&field, name);
    let Some(o) = g.get("utcOffset") else {
        w.error(
            &node.pos,
            &p("utcOffset"),
            "missing required field `utcOffset`",
            "add `utcOffset: \"+01:00\"` (a fixed offset: it does not follow daylight saving time)",
        );
        return None;
    };
    let text = w.string(o, &p("utcOffset"))?;
    let Some(offset) = hours::offset(&text) else {
        w.error(
            &o.pos,
            &p("utcOffset"),
            format!("`{}` is not a UTC offset", crate::safe::line(&text)),
            "write +HH:MM or -HH:MM (e.g. \"+01:00\") or UTC; a zone name such as Europe/Paris is not supported",
        );
        return None;
    };
    let mut days = [true, true, true, true, true, false, false];
    if g.contains_key("days") {
        let names = words(w, g.get("days"), &p("days"), hours::DAY_NAMES);
        days = [false; 7];
        for d in names {
            if let Some(i) = hours::DAY_NAMES.iter().position(|x| *x == d) {
                days[i] = true;
            }
        }
    }
    let time_of = |w: &mut Walker, name: &str, default: u32| -> Option<u32> {
        let Some(n) = g.get(name) else { return Some(default) };
        let s = w.string(n, &p(name))?;
        let m = hours::clock_minutes(&s);
        if m.is_none() {
            w.error(
                &n.pos,
                &p(name),
                format!("`{}` is not a time of day", crate::safe::line(&s)),
                "write HH:MM, e.g. \"09:00\" (quoted)",
            );
        }
        m
    };
    let (from, to) = (time_of(w, "from", 9 * 60)?, time_of(w, "to", 17 * 60)?);
    if from >= to {
        w.error(&node.pos, &field, "`from` must come before `to`", "e.g. from: \"09:00\", to: \"18:00\"");
        return None;
    }
    Some(BusinessHours { offset, days, from, to })
}
