//! `rollout:` as written, in a manifest or as a target's default: every problem reported at its
//! position, nothing assumed.

use std::collections::BTreeMap;

use super::{Rollout, WaveSize};
use crate::walk::{Walker, index, join};
use crate::yaml::{Node, Value};

/// The fields of `rollout`.
pub(crate) const FIELDS: &[&str] = &["waves", "observe", "maxFailureRate", "minSample", "ignoreReasons"];
/// The field's name, in manifests and the config alike.
pub(crate) const FIELD: &str = "rollout";

/// Defaults of the fields left out.
const OBSERVE: std::time::Duration = std::time::Duration::from_secs(15 * 60);
const MAX_FAILURE_RATE: u32 = 200;
const MIN_SAMPLE: u64 = 20;
const MAX_WAVES: usize = 20;

/// What a `rollout` field says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Setting {
    /// `rollout: off`: everyone at once (in a manifest, not even the target's default).
    Off,
    On(Rollout),
}

const HELP: &str = "write e.g. `rollout: {waves: [50, \"10%\", \"100%\"], observe: 15m, maxFailureRate: \"2%\", minSample: 20}`, or `rollout: off`";

/// `rollout` of a manifest's or a target's fields, when present; `None` also when it has an error
/// (reported). `prefix` is where the fields are (`""`, or `targets.NAME`).
pub(crate) fn rollout(w: &mut Walker, f: &BTreeMap<String, &Node>, prefix: &str) -> Option<Setting> {
    let (node, field, g, errors) = match w.off_or_fields(f, prefix, FIELD, FIELDS, HELP)? {
        crate::walk::OffOr::Off => return Some(Setting::Off),
        crate::walk::OffOr::On { node, path, fields, errors } => (node, path, fields, errors),
    };
    let field = field.as_str();
    let waves = match g.get("waves") {
        Some(n) => waves(w, n, &join(field, "waves")),
        None => {
            w.error(&node.pos, &join(field, "waves"), "missing required field `waves`", HELP);
            None
        }
    };
    let observe = g.get("observe").map_or(Some(OBSERVE), |n| observe(w, n, &join(field, "observe")));
    let rate = g.get("maxFailureRate").map_or(Some(MAX_FAILURE_RATE), |n| {
        let path = join(field, "maxFailureRate");
        let s = match &n.value {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        };
        let p = s.as_deref().and_then(parse_percent).filter(|p| *p <= 10_000);
        if p.is_none() {
            w.error(
                &n.pos,
                &path,
                format!("expected a percentage such as \"2%\", found {}", shown(n)),
                "write a share of failed deliveries from \"0%\" to \"100%\", e.g. \"2%\" or \"0.5%\" (quoted)",
            );
        }
        p
    });
    let min_sample =
        g.get("minSample").map_or(Some(MIN_SAMPLE), |n| w.uint(n, &join(field, "minSample"), 1, 1_000_000_000));
    let ignore_reasons = g.get("ignoreReasons").map_or_else(Vec::new, |n| {
        let path = join(field, "ignoreReasons");
        let items = w.strings(n, &path);
        for (s, pos) in &items {
            if s.trim().is_empty() || s.chars().count() > 300 || s.chars().any(char::is_control) {
                w.error(pos, &path, "an empty, over-long or multi-line reason", "write part of Kore.ai's comment on one line (at most 300 characters), e.g. \"Identity is not associated with the channel\"");
            }
        }
        items.into_iter().map(|(s, _)| s.trim().to_string()).collect()
    });
    if w.diags.errors() > errors {
        return None;
    }
    Some(Setting::On(Rollout {
        waves: waves?,
        observe: observe?,
        max_failure_rate: rate?,
        min_sample: min_sample?,
        ignore_reasons,
    }))
}

/// A node as quoted in a message.
fn shown(n: &Node) -> String {
    match &n.value {
        Value::Str(s) => format!("`{}`", crate::safe::line(s)),
        _ => n.raw.as_deref().map_or_else(|| n.kind().to_string(), |r| format!("`{}`", crate::safe::line(r))),
    }
}

/// `2%`, `0.5%`, `12.25%`: hundredths of a percent.
pub(crate) fn parse_percent(s: &str) -> Option<u32> {
    let n = s.trim().strip_suffix('%')?.trim_end();
    let (whole, frac) = n.split_once('.').unwrap_or((n, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 3 || !digits(whole) || frac.len() > 2 || !digits(frac) {
        return None;
    }
    let frac = format!("{frac:0<2}");
    Some(whole.parse::<u32>().ok()? * 100 + frac.parse::<u32>().ok()?)
}

/// `waves: [50, "10%", "100%"]`: 1 to 20 cumulative sizes, growing, the last "100%".
fn waves(w: &mut Walker, node: &Node, path: &str) -> Option<Vec<WaveSize>> {
    let items = w.seq(node, path)?;
    let help = "list cumulative sizes, growing, ending with \"100%\": e.g. [50, \"10%\", \"100%\"] (50 recipients, then up to 10%, then everyone)";
    if items.is_empty() || items.len() > MAX_WAVES {
        w.error(&node.pos, path, format!("{} waves: expected 1 to {MAX_WAVES}", items.len()), help);
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let size = match &item.value {
            Value::Int(n) if *n >= 1 => Some(WaveSize::Count(*n as u64)),
            Value::Str(s) => parse_percent(s).filter(|p| (1..=10_000).contains(p)).map(WaveSize::Percent),
            _ => None,
        };
        let Some(size) = size else {
            w.error(
                &item.pos,
                &p,
                format!("{} is not a wave size", shown(item)),
                "write a number of recipients (at least 1) or a quoted percentage over 0 and up to \"100%\"",
            );
            return None;
        };
        let shrinks = match (out.last(), size) {
            (Some(WaveSize::Count(a)), WaveSize::Count(b)) => b <= *a,
            (Some(WaveSize::Percent(a)), WaveSize::Percent(b)) => b <= *a,
            _ => false,
        };
        if shrinks {
            w.error(&item.pos, &p, "the wave is not larger than the one before it", help);
            return None;
        }
        out.push(size);
    }
    if out.last() != Some(&WaveSize::Percent(10_000)) {
        let last = items.last().unwrap_or(node);
        w.error(
            &last.pos,
            &index(path, items.len() - 1),
            "the last wave must be \"100%\": the rollout reaches everyone once every gate passed",
            help,
        );
        return None;
    }
    Some(out)
}

/// `observe: 15m`: a duration (humantime), at most a week.
fn observe(w: &mut Walker, n: &Node, path: &str) -> Option<std::time::Duration> {
    let s = w.string(n, path)?;
    let help =
        "write a duration such as 15m, 1h or 90s (at most 7d): how long after a wave was sent the next may leave";
    match humantime::parse_duration(s.trim()) {
        Ok(d) if d <= std::time::Duration::from_secs(7 * 86_400) => Some(d),
        Ok(_) => {
            w.error(&n.pos, path, format!("`{}` is longer than a week", crate::safe::line(&s)), help);
            None
        }
        Err(e) => {
            w.error(&n.pos, path, format!("`{}` is not a duration ({e})", crate::safe::line(&s)), help);
            None
        }
    }
}
