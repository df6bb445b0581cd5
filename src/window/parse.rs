//! `deliveryWindow:` as written, in a manifest or as a target's default: every problem reported
//! at its position (an unknown zone, a malformed time, an empty window), nothing assumed.

use std::collections::BTreeMap;

use super::{DAY_MINUTES, DAYS, DeliveryWindow, Zone};
use crate::walk::{Walker, index, join};
use crate::yaml::{Node, Value};

/// The fields of `deliveryWindow`.
pub(crate) const FIELDS: &[&str] = &["days", "from", "to", "timezone"];
/// The fields of `timezone: {…}`.
pub(crate) const ZONE_FIELDS: &[&str] = &["parameter"];
/// The field's name, in manifests and the config alike.
pub(crate) const FIELD: &str = "deliveryWindow";

/// What a `deliveryWindow` field says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Setting {
    /// `deliveryWindow: off`: none (in a manifest, not even the config's default).
    Off,
    On(DeliveryWindow),
}

const HELP: &str = "write e.g. `deliveryWindow: {days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"17:30\", timezone: Europe/Berlin}`, or `deliveryWindow: off`";

/// `deliveryWindow` of a manifest's or a target's fields, when present; `None` also when it has
/// an error (reported). `prefix` is where the fields are (`""`, or `targets.NAME`).
pub(crate) fn delivery_window(w: &mut Walker, f: &BTreeMap<String, &Node>, prefix: &str) -> Option<Setting> {
    let (node, field, g, errors) = match w.off_or_fields(f, prefix, FIELD, FIELDS, HELP)? {
        crate::walk::OffOr::Off => return Some(Setting::Off),
        crate::walk::OffOr::On { node, path, fields, errors } => (node, path, fields, errors),
    };
    let field = field.as_str();
    let days = days(w, g.get("days").copied(), field);
    let from = time_field(w, &g, node, field, "from");
    let to = time_field(w, &g, node, field, "to");
    let zone = match g.get("timezone") {
        Some(n) => zone_field(w, n, field),
        None => {
            let help = "add `timezone: Europe/Berlin` (an IANA zone), or `timezone: {parameter: tz}` to take each recipient's zone from their parameter `tz`";
            w.error(&node.pos, &join(field, "timezone"), "missing required field `timezone`", help);
            None
        }
    };
    if let (Some(a), Some(b), Some(n)) = (from, to, g.get("to"))
        && a == b
    {
        w.error(
            &n.pos,
            &join(field, "to"),
            "the window is empty: `to` equals `from`",
            "for the whole day write from: \"00:00\", to: \"24:00\"; a `to` earlier than `from` runs across midnight",
        );
    }
    if w.diags.errors() > errors {
        return None;
    }
    Some(Setting::On(DeliveryWindow { days: days?, from: from?, to: to?, zone: zone? }))
}

/// `days:` a non-empty list of `mon` … `sun`, each once; every day when left out.
fn days(w: &mut Walker, node: Option<&Node>, field: &str) -> Option<[bool; 7]> {
    let Some(node) = node else { return Some([true; 7]) };
    let path = join(field, "days");
    let items = w.seq(node, &path)?;
    if items.is_empty() {
        w.error(
            &node.pos,
            &path,
            "no days: the window would never open",
            "list the days it opens, e.g. [mon, tue, wed, thu, fri], or leave `days` out for every day",
        );
        return None;
    }
    let mut out = [false; 7];
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = index(&path, i);
        let Some(day) = w.one_of(item, &p, &DAYS) else {
            ok = false;
            continue;
        };
        let d = DAYS.iter().position(|x| *x == day).unwrap_or_default();
        if out[d] {
            w.error(&item.pos, &p, format!("`{day}` is listed twice"), "list each day once");
            ok = false;
        }
        out[d] = true;
    }
    ok.then_some(out)
}

/// `from:` or `to:`, a local time `HH:MM` (`to` may be `24:00`).
fn time_field(w: &mut Walker, g: &BTreeMap<String, &Node>, parent: &Node, field: &str, name: &str) -> Option<u16> {
    let path = join(field, name);
    let Some(n) = g.get(name) else {
        w.error(
            &parent.pos,
            &path,
            format!("missing required field `{name}`"),
            format!("add `{name}: \"09:00\"` (local time, HH:MM)"),
        );
        return None;
    };
    let s = w.string(n, &path)?;
    let m = minutes(&s, name == "to");
    if m.is_none() {
        let range = if name == "to" { "00:00 to 24:00" } else { "00:00 to 23:59" };
        w.error(
            &n.pos,
            &path,
            format!("`{}` is not a time of day", crate::safe::line(&s)),
            format!("write HH:MM on the 24-hour clock, from {range}, e.g. \"09:00\" or \"17:30\""),
        );
    }
    m
}

/// Minutes after midnight of `HH:MM` (or `H:MM`); `24:00` only when `end`.
pub(crate) fn minutes(s: &str, end: bool) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// `timezone:` an IANA zone, or `{parameter: NAME}`.
fn zone_field(w: &mut Walker, n: &Node, field: &str) -> Option<Zone> {
    let path = join(field, "timezone");
    if let Value::Map(_) = n.value {
        let g = w.fields(n, &path, ZONE_FIELDS)?;
        let Some(p) = g.get("parameter") else {
            w.error(
                &n.pos,
                &path,
                "missing `parameter`",
                "write `timezone: {parameter: tz}`: the recipients' parameter holding their IANA zone",
            );
            return None;
        };
        let name = w.string(p, &join(&path, "parameter"))?;
        if name.trim().is_empty() || name.trim() != name || name.len() > 200 || name.chars().any(char::is_control) {
            w.error(
                &p.pos,
                &join(&path, "parameter"),
                format!("`{}` is not a parameter name", crate::safe::line(&name)),
                "write the name of a CSV column or of an inline parameter, as written there",
            );
            return None;
        }
        return Some(Zone::Parameter(name));
    }
    let name = w.string(n, &path)?;
    if super::zone(&name).is_none() {
        w.error(&n.pos, &path, unknown_zone(&name), zone_help(&name));
        return None;
    }
    Some(Zone::Named(name))
}

/// The message for a zone the database does not know.
pub(crate) fn unknown_zone(name: &str) -> String {
    format!("`{}` is not an IANA time zone", crate::safe::line(name))
}

/// The help for an unknown zone: the nearest known name, when there is one.
pub(crate) fn zone_help(name: &str) -> String {
    let names: Vec<String> = jiff::tz::db().available().map(|n| n.as_str().to_string()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let exact_case = refs.iter().find(|n| n.eq_ignore_ascii_case(name));
    match exact_case.copied().or_else(|| crate::walk::suggest(name, &refs)) {
        Some(s) => format!(
            "did you mean `{s}`? names are written as in the IANA database, e.g. Europe/Berlin, America/New_York, UTC"
        ),
        None => "write a name from the IANA database, e.g. Europe/Berlin, America/New_York, Asia/Kolkata, UTC".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        for (s, end, m) in [
            ("09:00", false, Some(540)),
            ("9:00", false, Some(540)),
            ("00:00", false, Some(0)),
            ("23:59", false, Some(1439)),
            ("24:00", true, Some(1440)),
            ("24:00", false, None),
            ("24:01", true, None),
            ("12:60", false, None),
            ("9", false, None),
            ("9:0", false, None),
            ("09:00:00", false, None),
            ("-1:00", false, None),
            ("+9:00", false, None),
            ("९:००", false, None),
            ("", false, None),
        ] {
            assert_eq!(minutes(s, end), m, "{s:?}");
        }
    }
}
