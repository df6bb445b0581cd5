//! The policy in plans: each notification's verdict (the rules it triggered and why) and its last
//! override, in text and markdown; the comment's callouts (denied, needs approval) and, first of
//! all, a change of the policy itself (`--compare-to`), its rules before and after.

use super::*;
use crate::policy::Decision;

/// The verdict's lines for the text plan, indented.
pub(super) fn text_lines(out: &mut String, n: &PlannedNotification) {
    if let Some(v) = &n.policy {
        let _ = writeln!(out, "    policy: {}", decision_word(v.decision));
        for t in &v.rules {
            let _ = writeln!(out, "      {}", safe::line(&t.line()));
        }
    }
    if let Some(o) = &n.last_override {
        let _ = writeln!(out, "    {}", safe::line(&override_line(o)));
    }
}

fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "allowed",
        Decision::Warn => "allowed, with a warning",
        Decision::Require => "requires approval at apply",
        Decision::Deny => "DENIED: never sent (the plan fails)",
    }
}

fn override_line(o: &crate::state::Override) -> String {
    let run = o.run_url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
    format!(
        "last sent despite the policy (override of {}) by {} at {}{run}: {}",
        o.rules.join(", "),
        o.actor,
        o.at,
        o.reason
    )
}

/// The verdict for a notification's section of the comment.
pub(super) fn md_lines(d: &mut String, n: &PlannedNotification) {
    if let Some(v) = &n.policy {
        let _ = writeln!(d, "**Policy: {}**\n", decision_word(v.decision));
        for t in &v.rules {
            let _ = writeln!(d, "- {}", safe::md(&plurals(&t.line())));
        }
        d.push('\n');
    }
    if let Some(o) = &n.last_override {
        let _ = writeln!(d, "{}\n", safe::md(&override_line(o)));
    }
}

/// The notifications with a verdict of `d`.
fn with(plan: &Plan, d: Decision) -> Vec<&str> {
    plan.notifications
        .iter()
        .filter(|n| n.policy.as_ref().is_some_and(|v| v.decision == d))
        .map(|n| n.key.as_str())
        .collect()
}

/// Callouts under the headline: denied notifications, and those needing approvals at apply.
pub(super) fn md_callouts(plan: &Plan) -> String {
    let mut out = String::new();
    let denied = with(plan, Decision::Deny);
    if !denied.is_empty() {
        let keys: Vec<String> = denied.iter().map(|k| format!("<code>{}</code>", safe::html(k))).collect();
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> **Denied by the policy**: {}. The plan fails and apply would send nothing until the change or the policy changes.\n",
            keys.join(", ")
        );
    }
    let require = with(plan, Decision::Require);
    if !require.is_empty() {
        let keys: Vec<String> = require.iter().map(|k| format!("<code>{}</code>", safe::html(k))).collect();
        let _ = writeln!(
            out,
            "> [!IMPORTANT]\n> **Needs approvals**: {}. Each is sent only when this pull request's final commit has the approvals its rules require (see below); otherwise apply holds it back.\n",
            keys.join(", ")
        );
    }
    out
}

/// First in the comment: the policy changed, with its rules before and after.
pub(super) fn md_change(change: Option<&crate::policy::PolicyChange>) -> String {
    let Some(c) = change else { return String::new() };
    let cut = |v: &[String]| -> String {
        let text = if v.is_empty() { "(no policy: everything allowed)".to_string() } else { v.join("\n") };
        if text.chars().count() > 6000 { format!("{}…", text.chars().take(6000).collect::<String>()) } else { text }
    };
    let lines: Vec<String> =
        diff_lines(&cut(&c.before), &cut(&c.after)).into_iter().map(|(s, l)| format!("{s} {l}")).collect();
    format!(
        "> [!WARNING]\n> **This pull request changes the policy** (`policy:` in kore-notify.yaml): the rules before (−) and after (+). The rules below are judged with the new policy.\n\n{}\n",
        fenced("diff", &lines.join("\n"))
    )
}

/// The text plan's note of a policy change, first.
pub(super) fn text_change(change: Option<&crate::policy::PolicyChange>) -> String {
    let mut out = String::new();
    let Some(c) = change else { return out };
    let _ = writeln!(out, "The policy changed (compared with the base version):");
    let none = vec!["(no policy)".to_string()];
    let (before, after) =
        (if c.before.is_empty() { &none } else { &c.before }, if c.after.is_empty() { &none } else { &c.after });
    for (sign, line) in diff_lines(&before.join("\n"), &after.join("\n")) {
        let _ = writeln!(out, "  {sign} {}", safe::line(&line));
    }
    let _ = writeln!(out);
    out
}

/// The summary line's policy part: `2 denied by the policy, 1 needing approvals`.
pub(super) fn summary_parts(plan: &Plan, parts: &mut Vec<String>) {
    let (denied, require) = (with(plan, Decision::Deny).len(), with(plan, Decision::Require).len());
    if denied > 0 {
        parts.push(format!("{denied} denied by the policy"));
    }
    if require > 0 {
        parts.push(format!("{require} needing approvals"));
    }
}
