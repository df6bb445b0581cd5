//! One YAML document into one notification: every field checked, content resolved (`value`,
//! `valueFile`), recipients gathered and checked.

use super::*;

pub(super) fn parse_time(w: &mut Walker, node: &Node, path: &str) -> Option<time::OffsetDateTime> {
    let s = w.string(node, path)?;
    match crate::rfc3339::parse(&s) {
        Some(t) => Some(t),
        None => {
            w.error(
                &node.pos,
                path,
                format!("`{s}` is not an RFC 3339 date-time"),
                "write e.g. 2026-12-01T09:00:00Z or 2026-12-01T09:00:00+01:00",
            );
            None
        }
    }
}

type Fields<'n> = BTreeMap<String, &'n Node>;

pub(super) fn document(w: &mut Walker, file: &Path, doc: &Node, src: Sources) -> Option<Notification> {
    let root = src.root;
    let before = w.diags.errors();
    w.used.clear();
    let f = w.fields(doc, "", FIELDS)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let key = key(w, &f, &doc.pos);
    let (channel, api) = channel_and_api(w, &f, &doc.pos);
    let user_identity_type = match f.get("userIdentityType") {
        Some(n) => w.one_of(n, "userIdentityType", &["resolve"]).unwrap_or_default(),
        None => "resolve".to_string(),
    };
    let webhook_instance_name = f.get("webhookInstanceName").and_then(|n| {
        if channel.is_some_and(|c| c != Channel::Ivr) {
            w.error(&n.pos, "webhookInstanceName", "webhookInstanceName applies only to the ivr channel", "remove it");
        }
        w.string(n, "webhookInstanceName").filter(|s| w.sendable(&n.pos, "webhookInstanceName", s))
    });
    let content = match (f.get("content"), channel) {
        (Some(n), Some(ch)) => content(w, n, ch, dir, root),
        (Some(_), None) => None,
        (None, _) => {
            missing(w, &doc.pos, "content", "add `content: {type: text, value: \"…\"}`");
            None
        }
    };
    let (mut recipients, positions, csv_origin, audience_columns) =
        gather_recipients(w, &f, channel, (dir, root), &doc.pos, before);
    let (not_before, not_after) = window(w, &f);
    let on_change = match f.get("onChange").map(|n| w.one_of(n, "onChange", &["resend", "ignore"])) {
        Some(Some(s)) if s == "ignore" => OnChange::Ignore,
        _ => OnChange::Resend,
    };
    let previous_keys = previous_keys(w, &f, key.as_ref());
    let description = f.get("description").and_then(|n| w.string(n, "description"));
    let reuse_retired_key = match f.get("reuseRetiredKey") {
        Some(n) => match n.value {
            Value::Bool(b) => b,
            _ => {
                let found = format!("expected true or false, found {}", n.kind());
                w.error(&n.pos, "reuseRetiredKey", found, "write true or false");
                false
            }
        },
        None => false,
    };
    let skip_unreachable = crate::unreachable::skip_unreachable(w, &f, "");
    let targets = f.get("targets").and_then(|n| targets(w, n, src.targets));
    let (delivery_window, own_window, zone_parameters) = windows(w, &f, targets.as_deref(), src.default_windows);
    let own_rollout = f.contains_key(crate::rollout::parse::FIELD);
    let rollout = match crate::rollout::parse::rollout(w, &f, "") {
        Some(crate::rollout::parse::Setting::On(r)) => Some(std::sync::Arc::new(r)),
        _ => None,
    };
    let at = (positions.as_slice(), csv_origin.as_ref());
    recipient_checks(w, &f, channel, content.as_ref(), &mut recipients, at, &zone_parameters);
    for p in &zone_parameters {
        check_zones(w, p, &recipients, at);
    }
    if w.diags.errors() > before {
        return None;
    }
    let (key, channel, api, content) = (key?, channel?, api?, content?);
    let pos = f.get("key").map_or_else(|| doc.pos.clone(), |n| n.pos.clone());
    Some(Notification {
        key,
        source: Source { file: w.file.clone(), line: pos.line, column: pos.column },
        channel,
        api,
        user_identity_type,
        webhook_instance_name,
        content,
        recipients,
        not_before,
        not_after,
        on_change,
        previous_keys,
        description,
        reuse_retired_key,
        skip_unreachable,
        delivery_window,
        own_window,
        rollout,
        own_rollout,
        variables: std::mem::take(&mut w.used),
        audience_columns,
        audience: crate::manifest::Audience {
            inline: f.contains_key("identities"),
            csv: f.contains_key("identitiesFrom"),
        },
        targets,
    })
}

fn missing(w: &mut Walker, at: &Pos, name: &str, help: &str) {
    w.error(at, name, format!("missing required field `{name}`"), help);
}

/// `key`, valid.
fn key(w: &mut Walker, f: &Fields, at: &Pos) -> Option<String> {
    let Some(n) = f.get("key") else {
        missing(w, at, "key", "add `key: some-unique-name`; it identifies this notification forever");
        return None;
    };
    let key = w.string(n, "key")?;
    if !valid_key(&key) {
        w.error(
            &n.pos,
            "key",
            format!("`{}` is not a valid key", crate::safe::line(&key)),
            "use 1 to 128 letters, digits and . _ : / -",
        );
    }
    Some(key)
}

/// `channel`, and `api` (inferred from the channel, or checked against it).
fn channel_and_api(w: &mut Walker, f: &Fields, at: &Pos) -> (Option<Channel>, Option<Api>) {
    let channel = match f.get("channel") {
        Some(n) => w.one_of(n, "channel", CHANNELS).and_then(|s| Channel::parse(&s)),
        None => {
            missing(w, at, "channel", "add `channel: msteams` (or slack, ivr, hangouts, whatsapp)");
            None
        }
    };
    let Some(n) = f.get("api") else { return (channel, channel.map(Channel::api)) };
    let api = w.one_of(n, "api", &["v1", "v2"]).map(|s| if s == "v1" { Api::V1 } else { Api::V2 });
    match (api, channel) {
        (Some(a), Some(ch)) if a != ch.api() => {
            w.error(
                &n.pos,
                "api",
                format!("channel {} is served by API {}, not {}", ch.as_str(), ch.api().as_str(), a.as_str()),
                format!("remove `api` or set it to {}", ch.api().as_str()),
            );
            (channel, None)
        }
        _ => (channel, api),
    }
}

/// A notification's recipients, where each was written, the CSV audience (file, index of its first
/// recipient) and the CSV header row.
type Gathered = (Vec<Recipient>, Vec<Pos>, Option<(PathBuf, usize)>, Vec<String>);

/// Recipients from `identities` and `identitiesFrom`, their positions, and where the CSV rows
/// start (for diagnostics that point into the CSV file).
fn gather_recipients(
    w: &mut Walker,
    f: &Fields,
    channel: Option<Channel>,
    (dir, root): (&Path, &Root),
    at: &Pos,
    errors_before: usize,
) -> Gathered {
    let (mut recipients, mut positions, mut csv_origin, mut columns) = (Vec::new(), Vec::new(), None, Vec::new());
    let Some(ch) = channel else { return (recipients, positions, csv_origin, columns) };
    let (inline, from) = (f.get("identities"), f.get("identitiesFrom"));
    if let Some(n) = inline {
        identities(w, n, ch, &mut recipients, &mut positions);
    }
    if let Some(n) = from
        && let Some(rel) = w.string(n, "identitiesFrom")
    {
        let path = dir.join(&rel);
        let start = recipients.len();
        columns = csv_identities(w, root, (&path, &rel), &n.pos, ch, &mut recipients, &mut positions);
        csv_origin = Some((display_path(&path), start));
    }
    if inline.is_none() && from.is_none() {
        missing(w, at, "identities", "add `identities:` (a list) or `identitiesFrom: audience.csv`");
    } else if recipients.is_empty() && w.diags.errors() == errors_before {
        let at = inline.or(from).map_or(at, |n| &n.pos);
        w.error(at, "identities", "no recipients", "a notification needs at least one identity");
    }
    (recipients, positions, csv_origin, columns)
}

/// `notBefore` and `notAfter`, a non-empty window.
fn window(w: &mut Walker, f: &Fields) -> (Option<time::OffsetDateTime>, Option<time::OffsetDateTime>) {
    let not_before = f.get("notBefore").and_then(|n| parse_time(w, n, "notBefore"));
    let not_after = f.get("notAfter").and_then(|n| parse_time(w, n, "notAfter"));
    if let (Some(a), Some(b), Some(n)) = (not_before, not_after, f.get("notAfter"))
        && b <= a
    {
        w.error(
            &n.pos,
            "notAfter",
            "notAfter is not later than notBefore",
            "the send window would be empty; fix one of the two dates",
        );
    }
    (not_before, not_after)
}

/// `targets:`: names of the config's targets, at least one, each once.
fn targets(w: &mut Walker, n: &Node, known: Option<&[String]>) -> Option<Vec<String>> {
    let names = known.map_or_else(|| "production".into(), |k| k.join(", "));
    let items = w.strings(n, "targets");
    if items.is_empty() {
        w.error(
            &n.pos,
            "targets",
            "expected at least one target name",
            format!("write e.g. `targets: [{names}]`, or remove it to plan for every target"),
        );
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for (i, (t, pos)) in items.into_iter().enumerate() {
        if known.is_some_and(|k| !k.contains(&t)) || !crate::config::valid_name(&t) {
            w.error(
                &pos,
                &index("targets", i),
                format!("no target `{}` in the config", crate::safe::line(&t)),
                format!("the config's targets are: {names}"),
            );
            return None;
        }
        if out.contains(&t) {
            w.error(&pos, &index("targets", i), format!("target `{t}` is listed twice"), "list it once");
            return None;
        }
        out.push(t);
    }
    Some(out)
}

/// `previousKeys`: valid keys, not this notification's own.
fn previous_keys(w: &mut Walker, f: &Fields, key: Option<&String>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(n) = f.get("previousKeys") else { return out };
    for (i, (p, pos)) in w.strings(n, "previousKeys").into_iter().enumerate() {
        if !valid_key(&p) {
            w.error(
                &pos,
                &index("previousKeys", i),
                format!("`{}` is not a valid key", crate::safe::line(&p)),
                "use 1 to 128 letters, digits and . _ : / -",
            );
        } else if Some(&p) == key {
            w.error(&pos, &index("previousKeys", i), "a notification cannot list its own key as previous", "remove it");
        } else {
            out.push(p);
        }
    }
    out
}

pub(super) fn content(w: &mut Walker, node: &Node, ch: Channel, dir: &Path, root: &Root) -> Option<Content> {
    let f = w.fields(node, "content", CONTENT_FIELDS)?;
    let kind = content_type(w, &f, ch, &node.pos)?;
    let value = match (f.get("value"), f.get("valueFile")) {
        (Some(_), Some(vf)) => {
            w.error(&vf.pos, "content.valueFile", "both `value` and `valueFile` are set", "keep only one of them");
            return None;
        }
        (None, None) => {
            w.error(
                &node.pos,
                "content.value",
                "missing `value` (or `valueFile`)",
                "add `value: \"your message\"` or `valueFile: message.txt`",
            );
            return None;
        }
        (Some(v), None) => match &v.value {
            Value::Map(_) => {
                if !(ch == Channel::Whatsapp && kind == "template") {
                    w.error(
                        &v.pos,
                        "content.value",
                        "an object value is only allowed for whatsapp templates",
                        "write the message as a string; a value starting with `{` is read as a YAML mapping, so quote it: value: \"{name}…\"",
                    );
                    return None;
                }
                interpolate_json(w, v.to_json(), &v.pos, "content.value")?
            }
            _ => serde_json::Value::String(w.string(v, "content.value")?),
        },
        (None, Some(vf)) => value_file(w, &f, vf, (ch, &kind), (dir, root))?,
    };
    if value.as_str().is_some_and(|s| s.trim().is_empty()) {
        w.error(&node.pos, "content.value", "the message is empty", "write the text to send");
        return None;
    }
    // A valueFile taken as written (not interpolated) has its places in the file.
    let as_written = value.is_string() && !matches!(f.get("interpolate").map(|n| &n.value), Some(Value::Bool(true)));
    let at = match (f.get("value"), f.get("valueFile")) {
        (Some(v), _) => Origin::Value(&v.pos),
        (None, Some(vf)) => Origin::File(vf, dir, as_written),
        (None, None) => Origin::Value(&node.pos),
    };
    if !sendable_content(w, &value, &at) {
        return None;
    }
    if ch.api() == Api::V1
        && kind == "text"
        && let Some(text) = value.as_str()
    {
        warn_unfilled(w, ch, text, &at);
    }
    Some(Content { kind, value })
}

/// Where a message was written: inline, or in a valueFile (the field naming it, the manifest's
/// directory, and whether the text is the file's as written).
enum Origin<'a> {
    Value(&'a Pos),
    File(&'a Node, &'a Path, bool),
}

impl Origin<'_> {
    /// A diagnostic about `needle` in the message `text`: in a valueFile taken as written, at its
    /// place in that file; otherwise at the manifest's field.
    fn diag(&self, w: &mut Walker, text: &str, needle: &str, error: bool, message: String, help: &str) {
        match self {
            // (A path with `${…}` in it is shown at the field: the file's name is not as written.)
            Origin::File(vf, dir, true) if text.contains(needle) && !vf.as_str().is_some_and(|p| p.contains("${")) => {
                let before = &text[..text.find(needle).unwrap_or_default()];
                let line = before.matches('\n').count() as u32 + 1;
                let column = before.rsplit('\n').next().unwrap_or_default().chars().count() as u32 + 1;
                let file = display_path(&dir.join(vf.as_str().unwrap_or_default()));
                let pos = Pos { line, column };
                let d = if error {
                    Diagnostic::error(&file, pos, "", message)
                } else {
                    Diagnostic::warning(&file, pos, "", message)
                };
                w.diags.push(d.help(help));
            }
            Origin::File(vf, ..) if error => w.error(&vf.pos, "content.valueFile", message, help),
            Origin::File(vf, ..) => w.warning(&vf.pos, "content.valueFile", message, help),
            Origin::Value(pos) if error => w.error(pos, "content.value", message, help),
            Origin::Value(pos) => w.warning(pos, "content.value", message, help),
        }
    }
}

/// Every text of the message (a WhatsApp template's strings too) can be sent: a NUL is an error,
/// another control character a warning, where it was written.
fn sendable_content(w: &mut Walker, value: &serde_json::Value, at: &Origin) -> bool {
    match value {
        serde_json::Value::String(s) => {
            let control = crate::inputs::reported_control(s).map(String::from).unwrap_or_default();
            match crate::inputs::check_sendable(s) {
                Ok(None) => true,
                Ok(Some(message)) => {
                    at.diag(w, s, &control, false, message, crate::inputs::CONTROL_HELP);
                    true
                }
                Err(message) => {
                    at.diag(w, s, &control, true, message, crate::inputs::NUL_HELP);
                    false
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().all(|v| sendable_content(w, v, at)),
        serde_json::Value::Object(o) => o.values().all(|v| sendable_content(w, v, at)),
        _ => true,
    }
}

/// API v1 (msteams, slack) fills no placeholders: every recipient of a message with `{name}` in
/// it reads `{name}`. A warning, not an error (the braces may be meant), at the placeholder in a
/// valueFile (unless interpolation moved it), else at the value.
fn warn_unfilled(w: &mut Walker, ch: Channel, text: &str, at: &Origin) {
    let names = placeholders(text);
    let Some(first) = names.first() else { return };
    let shown: Vec<String> = names.iter().take(5).map(|n| format!("`{{{n}}}`")).collect();
    let more = if names.len() > 5 { format!(" and {} more", names.len() - 5) } else { String::new() };
    let message = format!(
        "{}{more} would reach every recipient as written: channel {} (API v1) fills no placeholders",
        shown.join(", "),
        ch.as_str()
    );
    let help = "write the text itself (v1 takes one text for everyone), or use a v2 channel (ivr, hangouts, whatsapp) with parameters; if the braces are meant to be read, ignore this warning";
    at.diag(w, text, &format!("{{{first}}}"), false, message, help);
}

/// `content.type`, one the channel takes.
fn content_type(w: &mut Walker, f: &Fields, ch: Channel, at: &Pos) -> Option<String> {
    let allowed = ch.content_types();
    let Some(n) = f.get("type") else {
        w.error(
            at,
            "content.type",
            "missing required field `type`",
            format!("add `type: text` (allowed: {})", allowed.join(", ")),
        );
        return None;
    };
    let s = w.string(n, "content.type")?;
    if !allowed.contains(&s.as_str()) {
        w.error(
            &n.pos,
            "content.type",
            format!("`{}` is not a content type of channel {}", crate::safe::line(&s), ch.as_str()),
            format!("allowed for {}: {}", ch.as_str(), allowed.join(", ")),
        );
        return None;
    }
    Some(s)
}

/// `content.valueFile`: the file's text (one trailing newline removed), taken as written unless
/// `interpolate: true`; a `.json` file for a WhatsApp template is its JSON object.
fn value_file(
    w: &mut Walker,
    f: &Fields,
    vf: &Node,
    (ch, kind): (Channel, &str),
    (dir, root): (&Path, &Root),
) -> Option<serde_json::Value> {
    let interpolate_file = match f.get("interpolate").map(|n| (n, &n.value)) {
        Some((_, Value::Bool(b))) => *b,
        Some((n, _)) => {
            w.error(
                &n.pos,
                "content.interpolate",
                format!("expected true or false, found {}", n.kind()),
                "write `interpolate: true` to expand ${…} in the valueFile",
            );
            return None;
        }
        None => false,
    };
    let rel = w.string(vf, "content.valueFile")?;
    let path = dir.join(&rel);
    let text = read_for_field(
        w,
        root,
        (&path, &rel),
        MAX_VALUE_FILE_BYTES,
        text::Kind::MessageFile,
        (&vf.pos, "content.valueFile"),
    )?;
    let text = text.strip_suffix('\n').map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t)).to_string();
    // The documented suffix is lowercase `.json`; `.JSON` stays a text value, as before.
    #[allow(clippy::case_sensitive_file_extension_comparisons)]
    let json = rel.ends_with(".json");
    if ch == Channel::Whatsapp && kind == "template" && json {
        return match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v @ serde_json::Value::Object(_)) => Some(v),
            _ => {
                w.error(
                    &vf.pos,
                    "content.valueFile",
                    format!("`{}` is not a JSON object", crate::safe::line(&rel)),
                    "a .json valueFile must hold one JSON object",
                );
                None
            }
        };
    }
    if interpolate_file {
        return Some(serde_json::Value::String(w.interpolate(&text, &vf.pos, "content.valueFile")?));
    }
    // A file is taken as written: scripts use `${…}` themselves.
    Some(serde_json::Value::String(text))
}

pub(super) fn interpolate_json(
    w: &mut Walker,
    v: serde_json::Value,
    pos: &Pos,
    path: &str,
) -> Option<serde_json::Value> {
    Some(match v {
        serde_json::Value::String(s) => serde_json::Value::String(w.interpolate(&s, pos, path)?),
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(|x| interpolate_json(w, x, pos, path)).collect::<Option<_>>()?)
        }
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.into_iter().map(|(k, x)| interpolate_json(w, x, pos, path).map(|x| (k, x))).collect::<Option<_>>()?,
        ),
        other => other,
    })
}
