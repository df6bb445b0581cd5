//! The pull-request comment: within the size limit, widest reach first, every user text escaped
//! for its context (Markdown, raw HTML, fenced code), recipients masked, and what a reviewer must
//! not miss (the limit, second messages, what happens on merge, warnings) up front.

use super::*;

/// What the pull-request comment adds to the plan: where it was made, the limit it is held to,
/// and the validation warnings.
#[derive(Clone, Debug, Default)]
pub(crate) struct Review {
    /// The commit planned against (hex).
    pub(crate) commit: Option<String>,
    /// The CI run that made the plan (https).
    pub(crate) run_url: Option<String>,
    /// `--max-recipients`: the most people one apply may message.
    pub(crate) max_recipients: Option<usize>,
    /// Validation warnings, one line each (`file:line: message`).
    pub(crate) warnings: Vec<String>,
}

impl Review {
    /// The plan's reach, when it is over `max_recipients`: everyone it sends to now, and everyone
    /// scheduled, whom a later apply will send to (a limit they breach would block every apply
    /// once their window opens).
    pub(crate) fn over_limit(&self, plan: &Plan) -> Option<(usize, usize)> {
        let n =
            plan.summary.recipients_to_send + plan.notifications.iter().map(|n| n.recipients.waiting).sum::<usize>();
        self.max_recipients.filter(|m| n > *m).map(|m| (n, m))
    }

    /// "Planned against `abc1234` (run)": only a hex commit and an https URL are shown.
    fn provenance(&self) -> String {
        let commit =
            self.commit.as_deref().filter(|c| (7..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()));
        let run = self.run_url.as_deref().filter(|u| {
            u.starts_with("https://")
                && !u.contains(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '<' | '>' | '"'))
        });
        match (commit, run) {
            (Some(c), Some(r)) => format!("Planned against `{}` · [run]({r})\n\n", &c[..c.len().min(12)]),
            (Some(c), None) => format!("Planned against `{}`\n\n", &c[..c.len().min(12)]),
            (None, Some(r)) => format!("[Run]({r})\n\n"),
            (None, None) => String::new(),
        }
    }

    /// What a reviewer must not miss: a breach of the limit, people who would get a second
    /// message, and what happens on merge.
    fn attention(&self, plan: &Plan) -> String {
        let mut out = String::new();
        if let Some((n, m)) = self.over_limit(plan) {
            let _ = writeln!(
                out,
                "> [!CAUTION]\n> **Over the limit**: this plan would message {n} recipients; `max-recipients` is {m}. After merge, apply would refuse every run until the plan is reduced or the limit raised.\n"
            );
        } else if let Some(m) = self.max_recipients {
            let _ = writeln!(out, "Reach: {} of at most {m} recipients per apply.\n", plan.summary.recipients_to_send);
        }
        let second = second_messages(plan);
        if second > 0 {
            let _ = writeln!(
                out,
                "> [!WARNING]\n> **{second} recipient(s) would receive a second message** for a notification they already received (changed content, or a retry); they are marked *second* below.\n"
            );
        }
        let waiting: usize = plan.notifications.iter().map(|n| n.recipients.waiting).sum();
        let _ = write!(out, "**On merge**: apply sends to {} recipient(s) now", plan.summary.recipients_to_send);
        if waiting > 0 {
            let _ = write!(out, "; {waiting} scheduled recipient(s) are sent by the first run after their `notBefore`");
        }
        if plan.summary.recipients_held > 0 {
            let _ =
                write!(out, "; {} recipient(s) wait for a decision on unknown requests", plan.summary.recipients_held);
        }
        out.push_str(".\n\n");
        out
    }

    /// The validation warnings, folded, within `room` characters.
    fn warnings_block(&self, room: usize) -> String {
        if self.warnings.is_empty() {
            return String::new();
        }
        let mut out = format!("\n<details><summary>{} validation warning(s)</summary>\n\n", self.warnings.len());
        let mut shown = 0;
        for w in &self.warnings {
            let line = format!("- {}\n", safe::md(&redact_quoted(w)));
            if out.len() + line.len() + 100 > room {
                break;
            }
            out.push_str(&line);
            shown += 1;
        }
        if shown < self.warnings.len() {
            let _ = writeln!(out, "- … and {} more (`kore-notify validate` lists them)", self.warnings.len() - shown);
        }
        out.push_str("\n</details>\n");
        if out.len() > room { String::new() } else { out }
    }
}

/// A diagnostic for a public comment: everything from its first quoted value on (identities,
/// values, between `"…"` or backticks) is left out, whatever those values contain; the location,
/// the field and the first words say where to look (`kore-notify validate` shows the rest).
pub(super) fn redact_quoted(s: &str) -> String {
    match s.find(['"', '`']) {
        Some(i) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Recipients who already received this notification and would receive it again.
pub(super) fn second_messages(plan: &Plan) -> usize {
    plan.notifications
        .iter()
        .flat_map(|n| &n.sends)
        .filter(|r| matches!(r.change, Change::Changed | Change::Retry | Change::RetryFailed))
        .count()
}

/// The recipients column: who gets it now, and who else is concerned.
pub(super) fn recipients_cell(n: &PlannedNotification) -> String {
    let second =
        n.sends.iter().filter(|r| matches!(r.change, Change::Changed | Change::Retry | Change::RetryFailed)).count();
    let mut cell = n.sends.len().to_string();
    let mut notes = Vec::new();
    if second > 0 {
        notes.push(format!("{second} second"));
    }
    if n.recipients.waiting > 0 {
        notes.push(format!("{} at notBefore", n.recipients.waiting));
    }
    if n.recipients.removed > 0 {
        notes.push(format!("{} removed", n.recipients.removed));
    }
    if !notes.is_empty() {
        let _ = write!(cell, " ({})", notes.join(", "));
    }
    cell
}

/// A variable's value as shown in plans: quoted when blank at either end or empty.
pub(super) fn quote_if_needed(v: &str) -> String {
    if v.is_empty() || v.trim() != v { format!("{v:?}") } else { v.to_string() }
}

/// A fenced code block that the content cannot close early.
pub(super) fn fenced(lang: &str, body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' || c == '~' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest.max(2) + 1);
    // Unsafe characters visible; HTML-looking text neutralised too, for renderers that ignore
    // fences inside <details>.
    let body = safe::text(&body.replace('<', "‹").replace('>', "›")).into_owned();
    format!("{fence}{lang}\n{body}\n{fence}\n")
}

/// A message on one line, for previews: line breaks shown as `⏎`, long text cut, unsafe
/// characters visible.
pub(super) fn one_line(s: &str) -> String {
    let flat = safe::line(&s.replace("\r\n", "\n").replace('\n', " ⏎ ")).into_owned();
    if flat.chars().count() > 300 { format!("{}…", flat.chars().take(300).collect::<String>()) } else { flat }
}

pub(super) fn content_block(n: &PlannedNotification) -> String {
    let cut = |c: &StoredContent| {
        let d = c.display();
        if d.chars().count() > 2000 { format!("{}…", d.chars().take(2000).collect::<String>()) } else { d }
    };
    match (&n.previous_content, &n.content) {
        (Some(old), Some(new)) => {
            let lines: Vec<String> =
                diff_lines(&cut(old), &cut(new)).into_iter().map(|(s, l)| format!("{s} {l}")).collect();
            fenced("diff", &lines.join("\n"))
        }
        (None, Some(c)) => fenced("text", &cut(c)),
        _ => String::new(),
    }
}

/// The pull-request comment. Always within [`MARKDOWN_LIMIT`] characters, widest reach first; when
/// something does not fit, it says what was left out.
pub(crate) fn markdown(plan: &Plan, review: &Review) -> String {
    // Keyed with the target: the same recipient masks the same way in every comment.
    let key = plan.binding.target.as_str();
    let mut head = String::from("<!-- kore-notify-plan -->\n### kore-notify plan\n\n");
    head.push_str(&review.provenance());
    // The summary is our own text (numbers and fixed words), safe as it is.
    let _ = writeln!(head, "**{}**\n", summary_line(plan));
    head.push_str(&review.attention(plan));
    let mut shown: Vec<&PlannedNotification> = plan
        .notifications
        .iter()
        .filter(|n| n.action != Action::NoOp || n.recipients.failed > 0 || n.recipients.in_flight > 0)
        .collect();
    shown.sort_by(|a, b| {
        b.sends.len().cmp(&a.sends.len()).then(b.records.len().cmp(&a.records.len())).then(a.key.cmp(&b.key))
    });
    let noop = plan.notifications.len() - shown.len();
    let mut table =
        String::from("| action | notification | channel | recipients | details |\n|---|---|---|---:|---|\n");
    let mut details = String::new();
    let tail_reserve = 600;
    let mut left_out = (0usize, 0usize);
    let mut details_omitted = 0usize;
    for (i, n) in shown.iter().enumerate() {
        let row = md_row(n);
        let d = md_details(n, key);
        let used = head.len() + table.len() + details.len() + tail_reserve;
        if used + row.len() + d.len() > MARKDOWN_LIMIT {
            if used + row.len() <= MARKDOWN_LIMIT && details.len() + d.len() > MARKDOWN_LIMIT / 2 {
                table.push_str(&row);
                details_omitted += 1;
                continue;
            }
            left_out = (shown.len() - i, shown[i..].iter().map(|n| n.sends.len()).sum());
            break;
        }
        table.push_str(&row);
        details.push_str(&d);
    }
    let mut out = head;
    if shown.is_empty() {
        out.push_str("No changes: nothing would be sent.\n");
    } else {
        out.push_str(&table);
        out.push('\n');
        out.push_str(&details);
    }
    out.push_str(&md_tail(left_out, details_omitted, noop));
    out.push_str(&review.warnings_block(MARKDOWN_LIMIT.saturating_sub(out.len() + 200)));
    if out.chars().count() > MARKDOWN_LIMIT {
        // Never exceed the limit, whatever the content.
        out = out.chars().take(MARKDOWN_LIMIT - 100).collect();
        out.push_str("\n\n> **Truncated** to fit the comment size limit.\n");
    }
    out
}

/// One notification's table row.
pub(super) fn md_row(n: &PlannedNotification) -> String {
    format!(
        "| {} | `{}` | {} | {} | {} |\n",
        safe::md(n.action.as_str()),
        safe::line(&n.key).replace('`', "'").replace('|', "\\|"),
        safe::md(n.channel.as_deref().unwrap_or("")),
        recipients_cell(n),
        safe::md(&n.reason)
    )
}

/// What the comment says when it had to leave things out, and the unchanged count.
pub(super) fn md_tail(left_out: (usize, usize), details_omitted: usize, noop: usize) -> String {
    let mut out = String::new();
    if left_out.0 > 0 {
        let _ = writeln!(
            out,
            "> **{} more notification(s) to {} recipient(s) are not shown** (comment size limit). The job summary and `kore-notify plan` show the full plan.\n",
            left_out.0, left_out.1
        );
    }
    if details_omitted > 0 {
        let _ = writeln!(
            out,
            "> Recipients and content of {details_omitted} notification(s) in the table are not shown (comment size limit); the job summary has them.\n"
        );
    }
    if noop > 0 {
        let _ = writeln!(out, "{noop} notification(s) unchanged.");
    }
    out
}

/// One notification's folded details: variables, recipients (masked), what changes for those who
/// get a second message, unknown requests, the content (or its diff) and previews.
pub(super) fn md_details(n: &PlannedNotification, key: &str) -> String {
    let mut d = format!(
        "<details><summary>{} <code>{}</code> — {} recipient(s)</summary>\n\n",
        safe::html(n.action.as_str()),
        safe::html(&n.key),
        n.sends.len()
    );
    if !n.variables.is_empty() {
        let vars: Vec<String> =
            n.variables.iter().map(|(k, v)| format!("{}={}", safe::md(k), safe::md(&quote_if_needed(v)))).collect();
        let _ = write!(d, "Variables: {}\n\n", vars.join(", "));
    }
    if !n.sends.is_empty() {
        d.push_str(&md_recipients(n, key));
    }
    for u in &n.unknown_requests {
        let _ = write!(d, "{}\n\n", safe::md(&unknown_line(&n.key, u)));
    }
    let mut content = content_block(n);
    if !n.preview.is_empty() {
        let lines: Vec<String> =
            n.preview.iter().map(|p| format!("{}: {}", mask(&p.id, key), one_line(&p.message))).collect();
        let _ = write!(content, "\nAs delivered (first {}):\n\n{}", n.preview.len(), fenced("text", &lines.join("\n")));
    }
    if n.sends.is_empty() && n.unknown_requests.is_empty() && content.trim().is_empty() {
        // Nothing to unfold (an orphan): the table row says it all.
        return String::new();
    }
    d.push_str(&content);
    d.push_str("\n</details>\n\n");
    d
}

/// The recipients line (masked, second messages marked) and what changes for them.
pub(super) fn md_recipients(n: &PlannedNotification, key: &str) -> String {
    let second =
        |r: &crate::plan::PlannedRecipient| matches!(r.change, Change::Changed | Change::Retry | Change::RetryFailed);
    let list: Vec<String> = n
        .sends
        .iter()
        .take(20)
        .map(|r| format!("{}{}", safe::md(&mask(&r.id, key)), if second(r) { " *(second)*" } else { "" }))
        .collect();
    let mut d = format!("Recipients: {}", list.join(", "));
    if n.sends.len() > 20 {
        let _ = write!(d, " … and {} more", n.sends.len() - 20);
    }
    d.push_str("\n\n");
    let masked = |x: &Option<String>| x.as_deref().map_or_else(|| "(none)".to_string(), |x| mask(x, key));
    let changed: Vec<String> = n
        .sends
        .iter()
        .filter(|r| !r.changes.is_empty())
        .take(20)
        .map(|r| {
            let what: Vec<String> =
                r.changes.iter().map(|c| format!("{} {} → {}", c.field, masked(&c.before), masked(&c.after))).collect();
            format!("- {}: {}", safe::md(&mask(&r.id, key)), safe::md(&what.join("; ")))
        })
        .collect();
    if !changed.is_empty() {
        let _ = write!(d, "What changes for those who get a second message:\n\n{}\n\n", changed.join("\n"));
    }
    d
}
