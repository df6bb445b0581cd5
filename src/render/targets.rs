//! A plan over several targets: first a matrix of notifications × targets (the action and the
//! recipients of each cell), widest reach first, then each target's own plan. A plan of one
//! target renders exactly as a plan always has.

use super::*;

/// The recipients a cell reaches now or later (sent now, awaiting promotion or scheduled).
fn reach(n: &PlannedNotification) -> usize {
    n.sends.len() + n.recipients.waiting
}

/// One cell: `send 3`, `awaiting promotion 2`, `no-op`, or `—` (not planned for that target).
fn cell(n: Option<&PlannedNotification>) -> String {
    match n {
        None => "—".into(),
        Some(n) if reach(n) > 0 => format!("{} {}", n.action.as_str(), thousands(reach(n))),
        Some(n) => n.action.as_str().to_string(),
    }
}

/// The rows of the matrix: every key of any target, widest reach first.
fn rows(set: &PlanSet) -> Vec<(String, Vec<Option<&PlannedNotification>>)> {
    let mut keys: Vec<&str> = set.targets.iter().flat_map(|p| p.notifications.iter().map(|n| n.key.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rows: Vec<(String, Vec<Option<&PlannedNotification>>)> = keys
        .into_iter()
        .map(|k| (k.to_string(), set.targets.iter().map(|p| p.notifications.iter().find(|n| n.key == k)).collect()))
        .collect();
    let widest = |cells: &[Option<&PlannedNotification>]| cells.iter().flatten().map(|n| reach(n)).max().unwrap_or(0);
    rows.sort_by(|a, b| widest(&b.1).cmp(&widest(&a.1)).then(a.0.cmp(&b.0)));
    rows
}

/// The matrix as text, columns aligned.
pub(super) fn text_matrix(set: &PlanSet) -> String {
    let names: Vec<String> = set.targets.iter().map(|p| safe::line(&p.name).into_owned()).collect();
    let rows: Vec<(String, Vec<String>)> = rows(set)
        .into_iter()
        .map(|(k, cells)| (safe::line(&k).into_owned(), cells.into_iter().map(cell).collect()))
        .collect();
    let mut widths: Vec<usize> =
        std::iter::once("notification".len()).chain(names.iter().map(|n| n.chars().count())).collect();
    for (k, cells) in &rows {
        widths[0] = widths[0].max(k.chars().count());
        for (i, c) in cells.iter().enumerate() {
            widths[i + 1] = widths[i + 1].max(c.chars().count());
        }
    }
    let line = |first: &str, rest: &[String]| {
        let mut l = format!("  {first:<w$}", w = widths[0]);
        for (i, c) in rest.iter().enumerate() {
            let _ = write!(l, "  {c:<w$}", w = widths[i + 1]);
        }
        l.trim_end().to_string()
    };
    let mut out = format!("kore-notify plan for {} targets: {}\n\n", set.targets.len(), names.join(", "));
    let _ = writeln!(out, "{}", line("notification", &names));
    for (k, cells) in &rows {
        let _ = writeln!(out, "{}", line(k, cells));
    }
    out
}

/// Every target's plan as text, after the matrix.
pub(super) fn text_set(set: &PlanSet, color: bool, verbose: bool) -> String {
    let mut out = text_matrix(set);
    for p in &set.targets {
        let _ = write!(out, "\n── target {} ──\n", safe::line(&p.name));
        out.push_str(&text(p, color, verbose));
    }
    let s = &set.summary;
    let _ = writeln!(
        out,
        "\nAll targets: {} notification(s) to send to {} recipient(s).",
        s.notifications_to_send, s.recipients_to_send
    );
    out
}

/// Most matrix rows shown in a comment.
const MATRIX_ROWS: usize = 50;

/// The pull-request comment over several targets, within [`MARKDOWN_LIMIT`].
pub(super) fn markdown_set(set: &PlanSet, review: &Review) -> String {
    let mut out = String::from("<!-- kore-notify-plan -->\n### kore-notify plan\n\n");
    out.push_str(&super::policy::md_change(set.policy_change.as_ref()));
    let s = &set.summary;
    let _ = writeln!(
        out,
        "**On merge: {} across {} targets** ({})\n",
        count(s.recipients_to_send, "recipient"),
        set.targets.len(),
        set.targets.iter().map(|p| format!("<code>{}</code>", safe::html(&p.name))).collect::<Vec<_>>().join(" → ")
    );
    let mut table = String::from("| notification |");
    for p in &set.targets {
        let _ = write!(table, " {} |", safe::md(&p.name));
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(set.targets.len()));
    table.push('\n');
    let rows = rows(set);
    for (k, cells) in rows.iter().take(MATRIX_ROWS) {
        let _ = write!(table, "| <code>{}</code> |", safe::html(k));
        for c in cells {
            let _ = write!(table, " {} |", safe::md(&cell(*c)));
        }
        table.push('\n');
    }
    if rows.len() > MATRIX_ROWS {
        let _ = writeln!(
            table,
            "\n… and {} more notifications (the sections below and `kore-notify plan` list them)",
            rows.len() - MATRIX_ROWS
        );
    }
    out.push_str(&table);
    out.push('\n');
    let tail = 300;
    for (i, p) in set.targets.iter().enumerate() {
        let left = set.targets.len() - i;
        let room = MARKDOWN_LIMIT.saturating_sub(out.len() + tail) / left;
        let _ = writeln!(out, "#### Target <code>{}</code>\n", safe::html(&p.name));
        out.push_str(&body(p, review, room, i + 1 == set.targets.len()));
    }
    if out.chars().count() > MARKDOWN_LIMIT {
        out = out.chars().take(MARKDOWN_LIMIT - 100).collect();
        out.push_str("\n\n> **Truncated** to fit the comment size limit.\n");
    }
    out
}
