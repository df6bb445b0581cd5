//! The report as markdown: the delivery-report comment on the merged pull request and the CI job
//! summary. It starts with its own sticky marker (distinct from the plan comment's), and says in a
//! second marker when every status is terminal, so CI stops updating it. Untrusted text (keys,
//! Kore.ai's comments, recipients) is escaped with the plan comment's helpers; the whole stays
//! within GitHub's comment size.

use std::fmt::Write;

use super::*;
use crate::safe::{html, md};
use crate::units::thousands;

/// The first line of the report comment (of a config without `targets:`; see [`marker`]).
pub(crate) const MARKER: &str = "<!-- kore-notify-report -->";
/// The second line once every status is terminal: CI leaves the comment alone from then on.
pub(crate) const FINAL: &str = "<!-- kore-notify-report: final -->";
/// Reasons listed per notification.
const REASONS: usize = 10;

/// The first line of the report comment: [`MARKER`], or with a target named, one marker per
/// target (`<!-- kore-notify-report target=NAME -->`), so each target's comment on a pull request
/// is its own. Target names are lowercase letters, digits, `-` and `_` (checked by the config);
/// anything else is dropped here too, so no name can close the HTML comment.
pub(crate) fn marker(target: Option<&str>) -> String {
    match target {
        None => MARKER.to_string(),
        Some(t) => {
            let name: String =
                t.chars().filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_')).collect();
            format!("<!-- kore-notify-report target={name} -->")
        }
    }
}

/// The markdown document.
pub(crate) fn markdown(r: &Report) -> String {
    let mut out = format!("{}\n", marker(r.target.as_deref()));
    if r.terminal {
        let _ = writeln!(out, "{FINAL}");
    }
    let _ = writeln!(out, "### kore-notify delivery report\n");
    let state = if r.terminal {
        "every status is final".to_string()
    } else {
        let open = r.notifications.iter().filter(|n| !n.terminal).count();
        format!("{open} notification(s) still waiting for final statuses; this report is updated until they arrive")
    };
    let target = r.target.as_deref().map(|t| format!("Target {} · ", md(t))).unwrap_or_default();
    let _ = writeln!(out, "{target}Bot {} · {} · {state}.\n", md(&r.bot), md(&r.generated_at));
    if r.notifications.is_empty() {
        out.push_str("Nothing sent yet.\n");
        return out;
    }
    out.push_str(
        "| notification | channel | planned | sent | accepted | delivered | failed | pending | unknown | not sent |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for n in &r.notifications {
        let f = &n.funnel;
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            crate::safe::line(&n.key).replace('`', "'"),
            md(&n.channel),
            thousands(f.planned),
            thousands(f.sent),
            thousands(f.accepted),
            thousands(f.delivered),
            thousands(f.failed),
            thousands(f.pending),
            thousands(f.unknown),
            thousands(f.not_sent)
        );
    }
    if r.channels.len() > 1 {
        out.push_str("\n**Per channel**\n\n| channel | notifications | sent | delivered | failed | pending |\n|---|---:|---:|---:|---:|---:|\n");
        for c in &r.channels {
            let f = &c.funnel;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md(&c.channel),
                c.notifications,
                thousands(f.sent),
                thousands(f.delivered),
                thousands(f.failed),
                thousands(f.pending)
            );
        }
    }
    for n in r.notifications.iter().filter(|n| !n.failures.is_empty()) {
        let _ = writeln!(
            out,
            "\n<details><summary>{} failed deliver{} of <code>{}</code></summary>\n",
            thousands(n.funnel.failed),
            if n.funnel.failed == 1 { "y" } else { "ies" },
            html(&n.key)
        );
        for g in n.failures.iter().take(REASONS) {
            let examples: Vec<String> = g.examples.iter().map(|e| md(e)).collect();
            let permanent = if g.permanent { " (permanent: unreachable on this channel)" } else { "" };
            let _ = writeln!(
                out,
                "- **{}**: {}{permanent} — e.g. {}",
                thousands(g.count),
                md(&g.reason),
                examples.join(", ")
            );
        }
        if n.failures.len() > REASONS {
            let _ = writeln!(out, "- … and {} more reasons (`kore-notify report`)", n.failures.len() - REASONS);
        }
        out.push_str("\n</details>\n");
    }
    if r.totals.unknown > 0 {
        let _ = writeln!(
            out,
            "\n**{} recipient(s) in requests with an unknown outcome**: decide with `kore-notify state resolve`.",
            thousands(r.totals.unknown)
        );
    }
    cut(out)
}

/// Within GitHub's comment size, cut at a line with a note.
fn cut(mut out: String) -> String {
    let limit = crate::render::MARKDOWN_LIMIT;
    if out.len() <= limit {
        return out;
    }
    let mut at = limit - 200;
    while !out.is_char_boundary(at) {
        at -= 1;
    }
    let at = out[..at].rfind('\n').unwrap_or(at);
    out.truncate(at);
    if out.matches("<details>").count() > out.matches("</details>").count() {
        out.push_str("\n</details>");
    }
    out.push_str("\n\n… cut to fit a comment: the HTML and CSV artifacts have everything.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_report_is_cut_at_a_line_and_closes_what_it_opened() {
        let long =
            format!("{MARKER}\n<details><summary>x</summary>\n\n{}", "- a line of a failure list\n".repeat(5000));
        let cut = cut(long);
        assert!(cut.len() <= crate::render::MARKDOWN_LIMIT, "{}", cut.len());
        assert!(cut.starts_with(MARKER) && cut.ends_with("the HTML and CSV artifacts have everything.\n"));
        assert_eq!(cut.matches("<details>").count(), cut.matches("</details>").count());
    }
}
