//! Recipient-level rules across a whole notification: identities trimmed, duplicates and near
//! duplicates, placeholders every recipient has a parameter for.

use super::*;

/// Recipient-level checks of one notification: whitespace, near duplicates (unless
/// `allowNearDuplicates: true`), then duplicates and placeholders.
pub(super) fn recipient_checks(
    w: &mut Walker,
    f: &BTreeMap<String, &Node>,
    channel: Option<Channel>,
    content: Option<&Content>,
    recipients: &mut [Recipient],
    (positions, csv): (&[Pos], Option<&(PathBuf, usize)>),
    zone_parameters: &[String],
) {
    let allow_near_duplicates = match f.get("allowNearDuplicates") {
        Some(n) => match n.value {
            Value::Bool(b) => b,
            _ => {
                let found = format!("expected true or false, found {}", n.kind());
                w.error(&n.pos, "allowNearDuplicates", found, "write true or false");
                false
            }
        },
        None => false,
    };
    if let (Some(ch), Some(c)) = (channel, content) {
        let at = Locator { positions, csv };
        trim_identities(w, recipients, &at);
        check_near_duplicates(w, ch, recipients, &at, allow_near_duplicates);
        check_recipients(w, ch, c, recipients, (positions, csv), zone_parameters);
    }
}

/// Where recipient `i` was written: an item of `identities`, or a row of the CSV audience.
pub(super) struct Locator<'a> {
    positions: &'a [Pos],
    /// The CSV file and the index of its first recipient.
    csv: Option<&'a (PathBuf, usize)>,
}

impl<'a> Locator<'a> {
    pub(super) fn new(positions: &'a [Pos], csv: Option<&'a (PathBuf, usize)>) -> Locator<'a> {
        Locator { positions, csv }
    }

    pub(super) fn diag(&self, w: &Walker, i: usize, error: bool, msg: String, help: String) -> Diagnostic {
        let pos = self.positions.get(i).cloned().unwrap_or_default();
        let (file, path) = match self.csv {
            Some((file, start)) if i >= *start => (file.clone(), format!("identitiesFrom[row {}]", pos.line)),
            _ => (w.file.clone(), index("identities", i)),
        };
        let d =
            if error { Diagnostic::error(&file, pos, path, msg) } else { Diagnostic::warning(&file, pos, path, msg) };
        d.help(help)
    }

    fn path(&self, i: usize) -> String {
        match self.csv {
            Some((file, start)) if i >= *start => {
                format!("{} row {}", file.display(), self.positions.get(i).map_or(0, |p| p.line))
            }
            _ => index("identities", i),
        }
    }
}

/// Identities are trimmed of surrounding whitespace (a warning says so, naming the line): ` a@x`
/// and `a@x` are one person. Control characters inside an identity (a line break from a broken
/// CSV quote) are an error.
pub(super) fn trim_identities(w: &mut Walker, recipients: &mut [Recipient], at: &Locator) {
    let mut warned = 0usize;
    for (i, r) in recipients.iter_mut().enumerate() {
        let trimmed = r.id.trim();
        if trimmed.chars().any(char::is_control) {
            let d = at.diag(
                w,
                i,
                true,
                format!("identity {:?} contains a line break or control character", r.id),
                "an identity is one line of text; check the quoting of this row".into(),
            );
            w.diags.push(d);
        } else if trimmed.len() != r.id.len() {
            warned += 1;
            if warned <= MAX_RECIPIENT_DIAGS {
                let d = at.diag(
                    w,
                    i,
                    false,
                    format!("identity {:?} has surrounding whitespace; it is sent as `{trimmed}`", r.id),
                    "remove the spaces around the identity".into(),
                );
                w.diags.push(d);
            }
            r.id = trimmed.to_string();
        }
    }
    if warned > MAX_RECIPIENT_DIAGS {
        let d = at.diag(w, 0, false, format!("{warned} identities with surrounding whitespace in all ({MAX_RECIPIENT_DIAGS} listed above); they are trimmed"), String::new());
        w.diags.push(d);
    }
}

/// Identities that reach the same person although written differently (`A@Example.com` and
/// `a@example.com`; `+91 98765 43210` and `919876543210`) would each be sent the message: an
/// error, unless the manifest says `allowNearDuplicates: true`. Exact duplicates are reported by
/// `check_recipients`.
pub(super) fn check_near_duplicates(
    w: &mut Walker,
    ch: Channel,
    recipients: &[Recipient],
    at: &Locator,
    allowed: bool,
) {
    if allowed {
        return;
    }
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(recipients.len());
    let mut count = 0usize;
    for (i, r) in recipients.iter().enumerate() {
        let key = crate::inputs::identity_key(ch, &r.id);
        match seen.get(&key) {
            Some(&first) if recipients[first].id != r.id => {
                count += 1;
                if count <= MAX_RECIPIENT_DIAGS {
                    let msg = format!(
                        "`{}` reaches the same recipient as `{}` ({})",
                        r.id,
                        recipients[first].id,
                        at.path(first)
                    );
                    let help = "e-mail addresses are compared without case and phone numbers by their digits: remove one; if they really are different recipients, set `allowNearDuplicates: true` on this notification".to_string();
                    let d = at.diag(w, i, true, msg, help);
                    w.diags.push(d);
                }
            }
            Some(_) => {}
            None => {
                seen.insert(key, i);
            }
        }
    }
    if count > MAX_RECIPIENT_DIAGS {
        let d = at.diag(
            w,
            0,
            true,
            format!("{count} near-duplicate recipients in all ({MAX_RECIPIENT_DIAGS} listed above)"),
            "remove them, or set `allowNearDuplicates: true`".into(),
        );
        w.diags.push(d);
    }
}

/// Recipient-level rules across the whole notification: duplicates, placeholders that some
/// recipient has no parameter for (error) and parameters that no placeholder uses (warning).
pub(super) fn check_recipients(
    w: &mut Walker,
    ch: Channel,
    content: &Content,
    recipients: &[Recipient],
    (positions, csv): (&[Pos], Option<&(PathBuf, usize)>),
    zone_parameters: &[String],
) {
    let at = Locator { positions, csv };
    check_duplicates(w, recipients, &at);
    if ch.api() == Api::V2 && content.kind != "script" {
        check_placeholders(w, content, recipients, &at, zone_parameters);
    }
}

/// A diagnostic on recipient `i`'s field (`field` inside its path; empty: the recipient).
fn report(w: &mut Walker, at: &Locator, i: usize, field: &str, error: bool, msg: String, help: String) {
    let mut d = at.diag(w, i, error, msg, help);
    if !field.is_empty() {
        d.field = join(&d.field, field);
    }
    w.diags.push(d);
}

/// The same identity twice in one notification: the first ones listed, then a count.
fn check_duplicates(w: &mut Walker, recipients: &[Recipient], at: &Locator) {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(recipients.len());
    let mut count = 0usize;
    for (i, r) in recipients.iter().enumerate() {
        if let Some(&first) = seen.get(r.id.as_str()) {
            count += 1;
            if count <= MAX_RECIPIENT_DIAGS {
                let msg = format!("duplicate recipient `{}`", crate::safe::line(&r.id));
                let help = format!("already listed at {}; each person receives a notification once", at.path(first));
                report(w, at, i, "", true, msg, help);
            }
        } else {
            seen.insert(&r.id, i);
        }
    }
    if count > MAX_RECIPIENT_DIAGS {
        let msg = format!("{count} duplicate recipients in all ({MAX_RECIPIENT_DIAGS} listed above)");
        report(w, at, 0, "", true, msg, "remove the repeated identities".into());
    }
}

/// Every `{placeholder}` of the message (and of a recipient's customMessage) has a parameter for
/// every recipient (an error); a parameter no placeholder uses is a warning (except the one the
/// delivery windows take each recipient's time zone from).
fn check_placeholders(
    w: &mut Walker,
    content: &Content,
    recipients: &[Recipient],
    at: &Locator,
    zone_parameters: &[String],
) {
    let from_content: Vec<&str> = match &content.value {
        serde_json::Value::String(s) => placeholders(s),
        _ => Vec::new(),
    };
    let mut missing = 0usize;
    let mut unused: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in recipients.iter().enumerate() {
        let mut needed = from_content.clone();
        for p in r.custom_message.as_deref().map(placeholders).unwrap_or_default() {
            if !needed.contains(&p) {
                needed.push(p);
            }
        }
        for p in needed.iter().filter(|p| !r.parameters.contains_key(p)) {
            missing += 1;
            if missing <= MAX_RECIPIENT_DIAGS {
                let msg = format!("placeholder {{{p}}} has no parameter `{p}` for `{}`", crate::safe::line(&r.id));
                let help = format!("add `{p}` to this recipient's parameters, or remove {{{p}}} from the message");
                report(w, at, i, "parameters", true, msg, help);
            }
        }
        for name in
            r.parameters.keys().filter(|n| !needed.contains(n) && !zone_parameters.iter().any(|z| z.as_str() == *n))
        {
            unused.entry(name).or_insert(i);
        }
    }
    if missing > MAX_RECIPIENT_DIAGS {
        let msg = format!("{missing} missing parameters in all ({MAX_RECIPIENT_DIAGS} listed above)");
        report(w, at, 0, "parameters", true, msg, "every placeholder needs a parameter for every recipient".into());
    }
    for (name, i) in unused {
        let msg = format!("parameter `{name}` is used by no placeholder");
        let help = format!("add {{{name}}} to the message or customMessage, or drop the parameter");
        report(w, at, i, &join("parameters", name), false, msg, help);
    }
}
