//! Plan rendering for people: `text` for terminals and logs, `markdown` for pull-request comments.
//! (`json` is the serialised [`Plan`].) Output is deterministic: the same plan renders to the same
//! bytes.

use std::fmt::Write;

use crate::plan::{Action, Change, Plan, PlanSet, PlannedNotification, UnknownRequest};
use crate::safe;
use crate::state::StoredContent;

mod markdown;
mod policy;
mod targets;

use markdown::*;
pub(crate) use markdown::{Review, markdown};

/// GitHub refuses comments over 65,536 characters; we stay well below.
pub(crate) const MARKDOWN_LIMIT: usize = 65_000;
const TEXT_RECIPIENTS: usize = 10;
/// Openings of a delivery window listed per notification (the JSON plan lists all).
const WINDOW_GROUPS: usize = 10;

/// How a plan is shown: `plan --format`, `show --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
    Markdown,
}

/// A plan in `format`: text (coloured with `color`, every recipient with `verbose`), the JSON
/// plan document, or the pull-request comment.
pub(crate) fn document(set: &PlanSet, format: Format, color: bool, verbose: bool, review: &Review) -> String {
    // A change of the policy comes first (`plan --compare-to`).
    let change = set.policy_change.as_ref();
    match (format, set.targets.as_slice()) {
        (Format::Json, _) => safe::json(&(serde_json::to_string_pretty(set).unwrap_or_default() + "\n")).into_owned(),
        (Format::Text, [one]) => policy::text_change(change) + &text(one, color, verbose),
        (Format::Markdown, [one]) => markdown(one, review, change),
        (Format::Text, _) => policy::text_change(change) + &targets::text_set(set, color, verbose),
        (Format::Markdown, _) => targets::markdown_set(set, review),
    }
}

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
    fn action(&self, a: Action) -> String {
        let (sym, code) = match a {
            Action::Send => ("+", "32"),
            Action::Resend => ("~", "33"),
            Action::SendToAdded => ("+", "32"),
            Action::Record => ("=", "36"),
            Action::NoOp => (" ", "2"),
            Action::Scheduled => ("…", "36"),
            Action::Expired => ("x", "2"),
            Action::Waiting => ("…", "36"),
            Action::RetryFailed => ("~", "33"),
            Action::Blocked => ("!", "31;1"),
            Action::Orphaned => ("?", "35"),
            Action::AwaitingPromotion => ("⏸", "33"),
            Action::Observing => ("…", "36"),
            Action::Halted => ("!", "31;1"),
        };
        self.paint(code, &format!("{sym} {}", a.as_str()))
    }
}

pub(crate) fn diff_lines(old: &str, new: &str) -> Vec<(char, String)> {
    let diff = similar::TextDiff::from_lines(old, new);
    diff.iter_all_changes()
        .map(|c| {
            let sign = match c.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            (sign, c.value().trim_end_matches('\n').to_string())
        })
        .collect()
}

fn change_word(c: Change) -> &'static str {
    match c {
        Change::New => "new",
        Change::Changed => "changed",
        Change::Retry => "retry",
        Change::RetryFailed => "retry failed",
    }
}

pub(crate) fn text(plan: &Plan, color: bool, verbose: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    let b = &plan.binding;
    let state = if b.state_lineage.is_empty() {
        "no state yet".to_string()
    } else {
        let lineage: String = b.state_lineage.chars().take(8).collect();
        format!("state serial {}, lineage {}", b.state_serial, safe::line(&lineage))
    };
    let named = if plan.name.is_empty() || plan.name == crate::config::IMPLICIT {
        String::new()
    } else {
        format!("target {} · ", safe::line(&plan.name))
    };
    match plan.host.as_deref() {
        Some(h) => {
            let _ = writeln!(
                out,
                "kore-notify plan for {named}{} · bot {} ({state})\n",
                safe::line(h),
                safe::line(&b.target)
            );
        }
        None => {
            let _ = writeln!(out, "kore-notify plan for bot {} ({state})\n", safe::line(&b.target));
        }
    }
    for n in &plan.notifications {
        if n.action == Action::NoOp
            && !verbose
            && n.recipients.failed == 0
            && n.recipients.in_flight == 0
            && n.recipients.unreachable == 0
        {
            continue;
        }
        text_head(&mut out, &st, n);
        text_recipients(&mut out, &st, n, verbose);
        text_content(&mut out, &st, n);
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "{}", summary_line(plan));
    if let Some(f) = plan.forecast.as_ref().filter(|f| f.requests + f.later_requests > 0) {
        let _ = writeln!(out, "Forecast: {}.", f.line());
    }
    out
}

/// The action, key, channel and source; the reason, variables, unknown requests, removals.
fn text_head(out: &mut String, st: &Style, n: &PlannedNotification) {
    let mut head = format!("{}  {}", st.action(n.action), st.paint("1", &safe::line(&n.key)));
    if let (Some(c), Some(a)) = (&n.channel, &n.api) {
        let _ = write!(head, "  ({}, {})", safe::line(c), safe::line(a));
    }
    if let Some(s) = &n.source {
        let _ = write!(head, "  {}", st.paint("2", &safe::line(s)));
    }
    let _ = writeln!(out, "{head}");
    if let Some(r) = &n.renamed_from {
        let _ = writeln!(
            out,
            "    renamed from {}: recipients already sent under the old key are not resent",
            safe::line(r)
        );
    }
    let _ = writeln!(out, "    {}", safe::line(&n.reason));
    if let Some(w) = &n.delivery_window {
        let _ = writeln!(out, "    delivery window {}: {}", safe::line(&w.window), safe::line(&w.line(WINDOW_GROUPS)));
    }
    if let Some(r) = &n.rollout {
        let _ = writeln!(out, "    {}", safe::line(&r.line()));
    }
    if let Some(e) = n.promotion.as_ref().and_then(|p| p.evidence.as_ref()) {
        let _ = writeln!(out, "    promotion evidence: {}", safe::line(e));
    }
    if let Some(e) = &n.test_send {
        let _ = writeln!(out, "    test send: {}", safe::line(&e.text));
    }
    policy::text_lines(out, n);
    if !n.variables.is_empty() {
        let vars: Vec<String> =
            n.variables.iter().map(|(k, v)| format!("{}={}", safe::line(k), safe::line(&quote_if_needed(v)))).collect();
        let _ = writeln!(out, "    variables: {}", vars.join(", "));
    }
    for u in &n.unknown_requests {
        let _ = writeln!(out, "    {}", safe::line(&unknown_line(&n.key, u)));
    }
    if n.recipients.removed > 0 {
        let _ =
            writeln!(out, "    {} recipient(s) removed from the manifest (nothing is unsent)", n.recipients.removed);
    }
    if !n.skipped_unreachable.is_empty() {
        let shown: Vec<String> =
            n.skipped_unreachable.iter().take(TEXT_RECIPIENTS).map(|i| safe::line(i).into_owned()).collect();
        let more = n.skipped_unreachable.len().saturating_sub(TEXT_RECIPIENTS);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let _ = writeln!(out, "    left out as unreachable: {}{more}", shown.join(", "));
    }
}

/// Who receives it, with what changed for them when known.
fn text_recipients(out: &mut String, st: &Style, n: &PlannedNotification, verbose: bool) {
    if n.sends.is_empty() {
        return;
    }
    let limit = if verbose { usize::MAX } else { TEXT_RECIPIENTS };
    let _ = writeln!(out, "    recipients ({}):", n.sends.len());
    // Mark the recipients whose reason differs from the notification's headline.
    let mixed = n.sends.iter().any(|r| r.change != n.sends[0].change);
    let quoted = |x: &Option<String>| x.as_deref().map_or_else(|| "(none)".to_string(), |x| format!("{x:?}"));
    for r in n.sends.iter().take(limit) {
        let mut id = safe::line(&r.id).into_owned();
        if !r.changes.is_empty() {
            let what: Vec<String> =
                r.changes.iter().map(|c| format!("{} {} → {}", c.field, quoted(&c.before), quoted(&c.after))).collect();
            id = format!("{id}  [{}]", safe::line(&what.join("; ")));
        }
        if r.unreachable {
            id.push_str("  (unreachable: last delivery failed for a permanent reason)");
        }
        if mixed {
            let _ = writeln!(out, "      {} {id} ({})", st.paint("32", "+"), change_word(r.change));
        } else {
            let _ = writeln!(out, "      {} {id}", st.paint("32", "+"));
        }
    }
    if n.sends.len() > limit {
        let _ = writeln!(out, "      … and {} more (--verbose or --format json lists all)", n.sends.len() - limit);
    }
}

/// The content (or its diff against what was sent) and the "as delivered" previews.
fn text_content(out: &mut String, st: &Style, n: &PlannedNotification) {
    if n.action.sends() || matches!(n.action, Action::Record | Action::Scheduled | Action::Waiting | Action::Observing)
    {
        match (&n.previous_content, &n.content) {
            (Some(old), Some(new)) => {
                let _ = writeln!(out, "    content ({} → {}):", safe::line(&old.kind), safe::line(&new.kind));
                for (sign, line) in diff_lines(&old.display(), &new.display()) {
                    let l = format!("      {sign} {}", safe::line(&line));
                    let code = match sign {
                        '-' => "31",
                        '+' => "32",
                        _ => "2",
                    };
                    let _ = writeln!(out, "{}", st.paint(code, &l));
                }
            }
            (None, Some(c)) => {
                let _ = writeln!(out, "    content ({}):", safe::line(&c.kind));
                for line in c.display().lines() {
                    let _ = writeln!(out, "      {}", safe::line(line));
                }
            }
            _ => {}
        }
    }
    if !n.preview.is_empty() {
        let _ = writeln!(out, "    as delivered (first {}, placeholders filled in):", n.preview.len());
        for p in &n.preview {
            let _ = writeln!(out, "      {}: {}", safe::line(&p.id), one_line(&p.message));
            if let Some(alt) = &p.if_parameters_fill_only_custom_message {
                let _ = writeln!(
                    out,
                    "        (or, if Kore.ai fills parameters only into a customMessage: {})",
                    one_line(alt)
                );
            }
        }
    }
}

/// One unknown request, for people: which, since when, why, how many held, how to decide.
pub(crate) fn unknown_line(key: &str, u: &UnknownRequest) -> String {
    let mut s = format!("unknown request #{} (batch {}", u.index, u.batch.chars().take(8).collect::<String>());
    if let Some(id) = &u.request_id {
        s.push_str(&format!(", Kore.ai id {id}"));
    }
    s.push_str(&format!(", {}): {} recipient(s)", u.sent_at, u.recipients));
    if u.retried {
        s.push_str(", sent again now (--retry-unknown)");
    } else {
        s.push_str(&format!(", {} held back; `kore-notify state resolve {key} {}` lists them", u.held, u.index));
    }
    if let Some(r) = &u.reason {
        s.push_str(&format!(" — {}", one_line(r)));
    }
    s
}

pub(crate) fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut parts = Vec::new();
    for a in ["no-op", "record", "scheduled", "waiting", "awaiting promotion", "expired", "blocked", "orphaned"] {
        if let Some(c) = s.by_action.get(a) {
            parts.push(format!("{c} {a}"));
        }
    }
    if s.recipients_held > 0 {
        parts.push(format!(
            "{} recipient(s) held back by {} request(s) with an unknown outcome",
            s.recipients_held, s.unknown_requests
        ));
    }
    policy::summary_parts(plan, &mut parts);
    let rest = if parts.is_empty() { String::new() } else { format!("; {}", parts.join(", ")) };
    format!("Plan: {} notification(s) to send to {} recipient(s){rest}.", s.notifications_to_send, s.recipients_to_send)
}

/// Masks an identity for public comments, hiding the local part and most of the domain of an
/// email, the middle of a phone number, all but the first character of anything else; a short
/// hash keyed with `key` (the target) keeps different recipients apart:
/// `j***@e***.com ~3fa2`, `+91******10 ~0b7c`, `A*** ~91de`.
pub(crate) fn mask(id: &str, key: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let tag = {
        use sha2::Digest;
        let d =
            sha2::Sha256::new().chain_update(key.as_bytes()).chain_update([0]).chain_update(id.as_bytes()).finalize();
        crate::fingerprint::to_hex(&d[..2])
    };
    let first = |s: &str| s.chars().next().filter(|c| c.is_alphanumeric()).map(String::from).unwrap_or_default();
    if let Some((local, domain)) = id.rsplit_once('@') {
        let tld = domain.rsplit_once('.').map(|(_, t)| format!(".{t}")).unwrap_or_default();
        return format!("{}***@{}***{tld} ~{tag}", first(local), first(domain));
    }
    let digits = chars.iter().filter(|c| c.is_ascii_digit()).count();
    if digits >= 6 && digits + 4 >= chars.len() {
        let head: String = chars.iter().take(3).collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        return format!("{head}{}{tail} ~{tag}", "*".repeat(chars.len().saturating_sub(5)));
    }
    format!("{}*** ~{tag}", first(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_hide_and_distinguish() {
        let m = |s| mask(s, "k");
        assert!(m("john@example.com").starts_with("j***@e***.com ~"), "{}", m("john@example.com"));
        assert!(m("+919876543210").starts_with("+91********10 ~"));
        assert!(m("AAQAPWixxxx").starts_with("A*** ~"));
        assert!(!m("@org/team").contains("org"), "{}", m("@org/team"));
        assert_ne!(m("ann@example.com"), m("amy@example.com"));
        assert_ne!(mask("ann@example.com", "k"), mask("ann@example.com", "other"));
    }

    #[test]
    fn warnings_in_comments_leave_quoted_values_out() {
        assert_eq!(
            redact_quoted(
                "n.yaml:7:5: identities[2]: identity \"a\\\"b@example.com\\r\" is sent as `a\"b@example.com`"
            ),
            "n.yaml:7:5: identities[2]: identity …"
        );
        assert_eq!(
            redact_quoted("n.yaml:2:1: parameter `unused`secret@victim.com` is used by no placeholder"),
            "n.yaml:2:1: parameter …"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(safe::md("<img src=x>|[a](b)"), "&lt;img src\\=x&gt;&#124;\\[a\\]\\(b\\)");
        assert!(fenced("text", "```\n</details>").starts_with("````text"));
    }
}
