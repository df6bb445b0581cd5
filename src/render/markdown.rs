//! The pull-request comment: within the size limit, widest reach first, every user text escaped
//! for its context (Markdown, raw HTML, fenced code), and what a reviewer must not miss up front:
//! one headline (counts by kind, the reach against the limit, where it goes), then per
//! notification who gets what — each recipient with what changes for them up to a bound, grouped
//! by identical change above it, removed recipients named — linked to its manifest line.
//!
//! Identities and parameter values are shown as written: they come from files committed in the
//! repository, which everyone who sees the pull request can read anyway. `review: {mask: true}`
//! in the config masks them (distinguishable, not readable), for audiences generated at CI time.

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
    /// Mask identities and parameter values (`review: {mask: true}`).
    pub(crate) mask: bool,
    /// The repository's web address (`https://github.com/OWNER/REPO`), for links to manifest
    /// lines at `commit`.
    pub(crate) repo_url: Option<String>,
    /// The config's directory inside the git work tree (`""` or `"sub/dir/"`): manifest paths
    /// are relative to it, links to the work tree's root.
    pub(crate) path_prefix: String,
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

    /// The commit planned against, when it is a hex commit id.
    fn commit(&self) -> Option<&str> {
        self.commit.as_deref().filter(|c| (7..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// A link to a manifest line (`file:line`) at the planned commit, when the repository
    /// and the commit are known; the location as text otherwise.
    fn source_link(&self, source: &str) -> String {
        let (file, line) = match source.rsplit_once(':') {
            Some((f, l)) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => (f, l),
            _ => return format!("<code>{}</code>", safe::html(source)),
        };
        let repo = self.repo_url.as_deref().filter(|u| crate::args::repo_url(u).is_ok());
        let label = format!("{}{file}:{line}", self.path_prefix);
        match (repo, self.commit()) {
            (Some(r), Some(c)) => {
                let path: String = format!("{}{file}", self.path_prefix)
                    .split('/')
                    .map(|seg| {
                        url::form_urlencoded::byte_serialize(seg.as_bytes()).collect::<String>().replace('+', "%20")
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                format!("[{}]({}/blob/{c}/{path}#L{line})", safe::md(&label), r.trim_end_matches('/'))
            }
            _ => format!("<code>{}</code>", safe::html(&label)),
        }
    }

    /// "planned against `abc1234` · [run](…)": only a hex commit and an https URL are shown.
    fn provenance(&self) -> String {
        let commit = self.commit();
        let run = self.run_url.as_deref().filter(|u| crate::args::run_url(u).is_ok());
        match (commit, run) {
            (Some(c), Some(r)) => format!("planned against `{}` · [run]({r})", &c[..c.len().min(12)]),
            (Some(c), None) => format!("planned against `{}`", &c[..c.len().min(12)]),
            (None, Some(r)) => format!("[run]({r})"),
            (None, None) => String::new(),
        }
    }

    /// The headline: what happens on merge in one line (counts by kind, the reach against the
    /// limit), where it goes, and the callouts a reviewer must not miss.
    fn headline(&self, plan: &Plan) -> String {
        let mut out = String::new();
        let sum = &plan.summary;
        let second = second_messages(plan);
        let new = sum.recipients_to_send - second;
        let waiting: usize = plan.notifications.iter().map(|n| n.recipients.waiting).sum();
        let removed: usize = plan.notifications.iter().map(|n| n.recipients.removed).sum();
        let mut kinds = Vec::new();
        if new > 0 {
            kinds.push(format!("{} new", thousands(new)));
        }
        if second > 0 {
            kinds.push(count(second, "second message"));
        }
        if removed > 0 {
            kinds.push(format!("{} removed", thousands(removed)));
        }
        if waiting > 0 {
            kinds.push(format!("{} scheduled", thousands(waiting)));
        }
        if sum.recipients_held > 0 {
            kinds.push(format!("{} held back", thousands(sum.recipients_held)));
        }
        let reach = match self.max_recipients {
            Some(m) => format!("{} of at most {}", count(sum.recipients_to_send, "recipient"), thousands(m)),
            None => count(sum.recipients_to_send, "recipient"),
        };
        let kinds = if kinds.is_empty() { String::new() } else { format!(" — {}", kinds.join(" · ")) };
        let _ = writeln!(out, "**On merge: {reach}**{kinds}\n");
        let mut dest = Vec::new();
        if let Some(h) = plan.host.as_deref().filter(|h| !h.is_empty()) {
            dest.push(format!("to <code>{}</code>", safe::html(h)));
        }
        dest.push(format!("bot <code>{}</code>", safe::html(&plan.binding.target)));
        let provenance = self.provenance();
        if !provenance.is_empty() {
            dest.push(provenance);
        }
        let _ = writeln!(out, "Sends {}\n", dest.join(" · "));
        if let Some(f) = plan.forecast.as_ref().filter(|f| f.requests + f.later_requests > 0) {
            let _ = writeln!(out, "Forecast: {}\n", f.line());
        }
        if let Some((n, m)) = self.over_limit(plan) {
            let _ = writeln!(
                out,
                "> [!CAUTION]\n> **Over the limit**: {} counting the scheduled ones, and `max-recipients` is {}. After merge, apply would refuse every run until the plan is reduced or the limit raised.\n",
                count(n, "recipient"),
                thousands(m)
            );
        }
        if second > 0 {
            let _ = writeln!(
                out,
                "> [!WARNING]\n> **{} would receive a second message** of a notification they already received (changed content, or a retry): marked *second* below.\n",
                count(second, "recipient")
            );
        }
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

/// Recipients listed one by one per notification; above this, grouped by identical change.
const LISTED: usize = 50;
/// Recipients named per group, and removed recipients named per notification.
const NAMED: usize = 3;
const REMOVED_NAMED: usize = 50;
/// Notifications unfolded at first (the widest reach first); the rest are folded.
const UNFOLDED: usize = 5;

pub(super) use crate::units::thousands;

/// `1 recipient`, `2 recipients` (nouns that take an `s`).
pub(super) fn count(n: usize, noun: &str) -> String {
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// Our own texts (plan reasons) with `N thing(s)` made singular or plural by their number.
pub(super) fn plurals(s: &str) -> String {
    let words: Vec<&str> = s.split(' ').collect();
    let mut out = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        match w.find("(s)") {
            Some(at) => {
                // The number is the word before, or the one before that (`1 changed recipient(s)`).
                let number = |back: usize| {
                    (i >= back).then(|| words[i - back].trim_start_matches(['(', '[']).parse::<u64>().ok()).flatten()
                };
                let one = number(1).or_else(|| number(2)) == Some(1);
                out.push(format!("{}{}{}", &w[..at], if one { "" } else { "s" }, &w[at + 3..]));
            }
            None => out.push((*w).to_string()),
        }
    }
    out.join(" ")
}

/// How the comment shows identities and values: as written, or masked.
struct Shown<'a> {
    mask: bool,
    key: &'a str,
}

impl Shown<'_> {
    fn who(&self, id: &str) -> String {
        let id = if self.mask { mask(id, self.key) } else { id.to_string() };
        format!("<code>{}</code>", safe::html(&id))
    }

    fn value(&self, v: Option<&str>) -> String {
        match v {
            None => "(none)".into(),
            Some(v) if self.mask => format!("<code>{}</code>", safe::html(&mask(v, self.key))),
            Some(v) => format!("<code>{}</code>", safe::html(&quote_if_needed(v))),
        }
    }

    /// What changes for one recipient, in words.
    fn change(&self, r: &crate::plan::PlannedRecipient) -> String {
        let what = self.what_changes(r);
        if r.unreachable {
            format!("{what} — *unreachable*: their last delivery failed for a permanent reason")
        } else {
            what
        }
    }

    fn what_changes(&self, r: &crate::plan::PlannedRecipient) -> String {
        match r.change {
            Change::New => "new".into(),
            Change::Changed if !r.changes.is_empty() => {
                let what: Vec<String> = r
                    .changes
                    .iter()
                    .map(|c| {
                        let field = c.field.strip_prefix("parameters.").unwrap_or(&c.field);
                        format!(
                            "{} {} → {}",
                            safe::html(field),
                            self.value(c.before.as_deref()),
                            self.value(c.after.as_deref())
                        )
                    })
                    .collect();
                format!("*second*: {}", what.join("; "))
            }
            Change::Changed => "*second*: changed content".into(),
            Change::Retry => "*second*: retry of a request with an unknown outcome".into(),
            Change::RetryFailed => "*second*: retry after a failed delivery".into(),
        }
    }
}

/// A notification's counts for its summary line: `4 new recipients, 1,250 second messages`.
fn section_counts(n: &PlannedNotification) -> String {
    let second = n.sends.iter().filter(|r| r.change != Change::New).count();
    let new = n.sends.len() - second;
    let mut parts = Vec::new();
    if new > 0 {
        parts.push(format!("{} new recipient{}", thousands(new), if new == 1 { "" } else { "s" }));
    }
    if second > 0 {
        parts.push(count(second, "second message"));
    }
    if !n.records.is_empty() {
        parts.push(format!("{} recorded without sending", thousands(n.records.len())));
    }
    if n.recipients.waiting > 0 {
        parts.push(format!("{} scheduled", count(n.recipients.waiting, "recipient")));
    }
    if n.recipients.unknown > 0 {
        parts.push(format!("{} held back", thousands(n.recipients.unknown)));
    }
    if n.recipients.in_flight > 0 {
        parts.push(format!("{} in flight", thousands(n.recipients.in_flight)));
    }
    if n.recipients.removed > 0 {
        parts.push(format!("{} removed", thousands(n.recipients.removed)));
    }
    if n.recipients.unreachable_skipped > 0 {
        parts.push(format!("{} unreachable left out", thousands(n.recipients.unreachable_skipped)));
    } else if n.recipients.unreachable > 0 {
        parts.push(format!("{} unreachable", thousands(n.recipients.unreachable)));
    }
    if parts.is_empty() { "nothing sent".into() } else { parts.join(", ") }
}

/// Who gets what: each recipient with what changes for them, or (above [`LISTED`]) one line per
/// identical change with its count and a few names.
fn who_gets_what(n: &PlannedNotification, shown: &Shown) -> String {
    let mut d = String::new();
    if n.sends.len() <= LISTED {
        for r in &n.sends {
            let _ = writeln!(d, "- {} — {}", shown.who(&r.id), shown.change(r));
        }
    } else {
        let mut groups: std::collections::BTreeMap<String, Vec<&str>> = std::collections::BTreeMap::new();
        for r in &n.sends {
            groups.entry(shown.change(r)).or_default().push(&r.id);
        }
        let mut groups: Vec<(String, Vec<&str>)> = groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        for (change, ids) in groups.iter().take(LISTED) {
            let names: Vec<String> = ids.iter().take(NAMED).map(|id| shown.who(id)).collect();
            let more =
                if ids.len() > NAMED { format!(" and {} more", thousands(ids.len() - NAMED)) } else { String::new() };
            let _ = writeln!(d, "- **{}** — {change}: {}{more}", count(ids.len(), "recipient"), names.join(", "));
        }
        if groups.len() > LISTED {
            let rest: usize = groups[LISTED..].iter().map(|g| g.1.len()).sum();
            let _ = writeln!(
                d,
                "- … and {} with other changes (`kore-notify plan --format json` lists all)",
                count(rest, "recipient")
            );
        }
    }
    d.push('\n');
    d
}

/// The recipients left out as unreachable (`skipUnreachable: true`), a bounded list.
fn unreachable_line(n: &PlannedNotification, shown: &Shown) -> String {
    if n.skipped_unreachable.is_empty() {
        return String::new();
    }
    let names: Vec<String> = n.skipped_unreachable.iter().take(REMOVED_NAMED).map(|id| shown.who(id)).collect();
    let more = match n.skipped_unreachable.len().checked_sub(REMOVED_NAMED) {
        Some(m) if m > 0 => format!(" and {} more", thousands(m)),
        _ => String::new(),
    };
    format!(
        "**Left out as unreachable** (their last delivery failed for a permanent reason; skipUnreachable): {}{more}\n\n",
        names.join(", ")
    )
}

/// The removed recipients, named when the base version is known (`--compare-to`).
fn removed_line(n: &PlannedNotification, shown: &Shown) -> String {
    if !n.removed_ids.is_empty() {
        let names: Vec<String> = n.removed_ids.iter().take(REMOVED_NAMED).map(|id| shown.who(id)).collect();
        let more = if n.removed_ids.len() > REMOVED_NAMED {
            format!(" and {} more", thousands(n.removed_ids.len() - REMOVED_NAMED))
        } else {
            String::new()
        };
        return format!("**Removed** (nothing is unsent): {}{more}\n\n", names.join(", "));
    }
    if n.recipients.removed > 0 {
        return format!(
            "**Removed** (nothing is unsent): {} no longer in the manifest (the plan names them when given the base version, `--compare-to`)\n\n",
            count(n.recipients.removed, "recipient")
        );
    }
    String::new()
}

/// One notification: a summary line (action, key, counts), where it is declared, why, who gets
/// what, who was removed, unknown requests, the content (or its diff) and previews.
fn md_section(n: &PlannedNotification, review: &Review, shown: &Shown, open: bool) -> String {
    let mut d = format!(
        "<details{}><summary><b>{}</b> <code>{}</code> — {}</summary>\n\n",
        if open { " open" } else { "" },
        safe::html(n.action.as_str()),
        safe::html(&n.key),
        section_counts(n)
    );
    let mut place = Vec::new();
    if let (Some(c), Some(a)) = (&n.channel, &n.api) {
        place.push(format!("{} ({})", safe::md(c), safe::md(a)));
    }
    if let Some(src) = &n.source {
        place.push(review.source_link(src));
    }
    if let Some(r) = &n.renamed_from {
        place.push(format!("renamed from <code>{}</code>", safe::html(r)));
    }
    if !place.is_empty() {
        let _ = writeln!(d, "{}\n", place.join(" · "));
    }
    // A plain send's reason only repeats the counts of the summary line.
    if !matches!(n.action, Action::Send | Action::SendToAdded) || n.recipients.unreachable > 0 {
        let _ = writeln!(d, "{}\n", safe::md(&plurals(&n.reason)));
    }
    if let (Some(a), Action::Send | Action::SendToAdded) = (&n.audience, n.action) {
        let _ = writeln!(d, "{}\n", safe::md(&a.line()));
    }
    if let Some(e) = n.promotion.as_ref().and_then(|p| p.evidence.as_ref()) {
        let _ = writeln!(d, "Promotion: {}\n", safe::md(e));
    }
    if let Some(e) = &n.test_send {
        let _ = writeln!(d, "Test send: {}\n", safe::md(&e.text));
    }
    super::policy::md_lines(&mut d, n);
    if !n.variables.is_empty() {
        let vars: Vec<String> =
            n.variables.iter().map(|(k, v)| format!("{}={}", safe::md(k), safe::md(&quote_if_needed(v)))).collect();
        let _ = write!(d, "Variables: {}\n\n", vars.join(", "));
    }
    if let Some(w) = &n.delivery_window {
        let _ = write!(d, "**Delivery window** {}: {}\n\n", safe::md(&w.window), safe::md(&w.line(WINDOW_GROUPS)));
    }
    if let Some(r) = &n.rollout {
        let _ = write!(d, "**Canary waves** {}\n\n", safe::md(&r.line()));
    }
    if !n.sends.is_empty() {
        d.push_str("**Who gets what**\n\n");
        d.push_str(&who_gets_what(n, shown));
    }
    d.push_str(&removed_line(n, shown));
    d.push_str(&unreachable_line(n, shown));
    for u in &n.unknown_requests {
        let _ = write!(d, "{}\n\n", safe::md(&plurals(&unknown_line(&n.key, u))));
    }
    let mut content = content_block(n);
    if !content.is_empty() {
        let label = if n.previous_content.is_some() && n.content.is_some() { "**Text** (diff)" } else { "**Text**" };
        content = format!("{label}\n\n{content}");
    }
    if !n.preview.is_empty() {
        let lines: Vec<String> = n
            .preview
            .iter()
            .map(|p| {
                let id = if shown.mask { mask(&p.id, shown.key) } else { p.id.clone() };
                format!("{}: {}", id, one_line(&p.message))
            })
            .collect();
        let _ =
            write!(content, "\n**As delivered** (first {}):\n\n{}", n.preview.len(), fenced("text", &lines.join("\n")));
    }
    d.push_str(&content);
    d.push_str("\n</details>\n\n");
    d
}

/// A notification in one line, when its section does not fit.
fn md_line(n: &PlannedNotification) -> String {
    format!("- <b>{}</b> <code>{}</code> — {}\n", safe::html(n.action.as_str()), safe::html(&n.key), section_counts(n))
}

/// The pull-request comment. Always within [`MARKDOWN_LIMIT`] characters, widest reach first; when
/// something does not fit, it says what was left out.
/// A change of the policy (`change`) comes first.
pub(crate) fn markdown(plan: &Plan, review: &Review, change: Option<&crate::policy::PolicyChange>) -> String {
    let mut out = String::from("<!-- kore-notify-plan -->\n### kore-notify plan\n\n");
    out.push_str(&super::policy::md_change(change));
    out.push_str(&body(plan, review, MARKDOWN_LIMIT.saturating_sub(out.len()), true));
    out
}

/// One target's comment within `limit` characters: the headline, the notifications, and (with
/// `warnings`) the validation warnings.
pub(super) fn body(plan: &Plan, review: &Review, limit: usize, warnings: bool) -> String {
    // Masks keyed with the target: the same recipient masks the same way in every comment.
    let shown = Shown { mask: review.mask, key: plan.binding.target.as_str() };
    let mut out = review.headline(plan);
    out.push_str(&super::policy::md_callouts(plan));
    let mut listed: Vec<&PlannedNotification> = plan
        .notifications
        .iter()
        .filter(|n| {
            n.action != Action::NoOp
                || n.recipients.failed > 0
                || n.recipients.in_flight > 0
                || n.recipients.removed > 0
                || n.recipients.unreachable > 0
        })
        .collect();
    listed.sort_by(|a, b| {
        b.sends.len().cmp(&a.sends.len()).then(b.records.len().cmp(&a.records.len())).then(a.key.cmp(&b.key))
    });
    let unchanged = plan.notifications.len() - listed.len();
    let tail_reserve = 600.min(limit / 4);
    let (mut folded_to_lines, mut left_out, mut left_out_recipients) = (0usize, 0usize, 0usize);
    if listed.is_empty() {
        out.push_str("No changes: nothing would be sent.\n\n");
    }
    for (i, n) in listed.iter().enumerate() {
        let section = md_section(n, review, &shown, i < UNFOLDED);
        if out.len() + section.len() + tail_reserve <= limit {
            out.push_str(&section);
            continue;
        }
        let line = md_line(n);
        if out.len() + line.len() + tail_reserve <= limit {
            out.push_str(&line);
            folded_to_lines += 1;
        } else {
            left_out += 1;
            left_out_recipients += n.sends.len();
        }
    }
    if folded_to_lines > 0 {
        let _ = writeln!(
            out,
            "\n> Who gets what for {} is not shown (comment size limit): the job summary and `kore-notify plan` show it.\n",
            count(folded_to_lines, "notification")
        );
    }
    if left_out > 0 {
        let _ = writeln!(
            out,
            "> **{} more sending to {} are not shown** (comment size limit): the job summary and `kore-notify plan` show the full plan.\n",
            count(left_out, "notification"),
            count(left_out_recipients, "recipient")
        );
    }
    if unchanged > 0 {
        let _ = writeln!(out, "{} unchanged.", count(unchanged, "notification"));
    }
    if warnings {
        out.push_str(&review.warnings_block(limit.saturating_sub(out.len() + 200)));
    }
    if out.chars().count() > limit {
        // Never exceed the limit, whatever the content.
        out = out.chars().take(limit.saturating_sub(100)).collect();
        out.push_str("\n\n> **Truncated** to fit the comment size limit.\n");
    }
    out
}
