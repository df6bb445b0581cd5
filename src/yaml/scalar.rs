//! How a YAML scalar becomes a [`Value`]: the YAML 1.2 core schema, as we configured serde-saphyr
//! before the tree was built from parser events (so that every file reads the same as before).
//!
//! Values are sent as text, so the resolution is conservative: only `true`/`false` (in three
//! spellings) are booleans — `no`, `on`, `y` stay strings (no "Norway problem"); numbers with a
//! redundant leading zero (`007`) or with underscores (`1_000`) stay strings, digits as written;
//! integers are the core schema's forms only (`0b101`, `-0x1F`, `0X1F` and `1:20` are strings);
//! quoted and block scalars are always strings; `.inf`/`.nan` and literals that overflow `f64` are
//! refused rather than silently becoming non-finite. Explicit tags (`!!str`, `!!int`, …) select a
//! type; `!!binary` is refused.

use std::borrow::Cow;

use granit_parser::{ScalarStyle, Tag};

use super::Value;

/// The YAML tag namespace of the core schema (`!!x` is `tag:yaml.org,2002:x`).
const YAML_NS: &str = "tag:yaml.org,2002:";

/// What an explicit tag asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TagKind {
    None,
    /// `!` alone: a string, whatever it looks like.
    NonSpecific,
    Str,
    Int,
    Float,
    Bool,
    Null,
    Seq,
    Map,
    Binary,
    TimeStamp,
    Merge,
    Value,
    Include,
    /// `!time`, `!degrees`, `!radians`: conversions we do not enable.
    Robotics,
    Other,
}

impl TagKind {
    pub(super) fn of(tag: Option<&Tag>) -> TagKind {
        let Some(tag) = tag else { return TagKind::None };
        let include = ["!include", "tag:yaml.org,2002:include", "tag:yaml.org,2002:!include"];
        if include.iter().any(|p| tag.suffix_in_namespace(p).is_some_and(|r| r.is_empty() || r.starts_with('#'))) {
            return TagKind::Include;
        }
        if let Some(core) = tag.core_suffix().and_then(core_name) {
            return core;
        }
        if let Some(suffix) = tag.suffix_in_namespace(YAML_NS) {
            return match suffix.as_ref() {
                "merge" => TagKind::Merge,
                "value" => TagKind::Value,
                s => named(s.strip_prefix('!').unwrap_or(s)),
            };
        }
        let Some(suffix) = tag.suffix_in_namespace("!") else { return TagKind::Other };
        match suffix.as_ref() {
            "" | "!" => TagKind::NonSpecific,
            "!timestamp" => TagKind::TimeStamp,
            "!binary" => TagKind::Binary,
            name => match name.strip_prefix('!') {
                Some(name) => core_name(name).unwrap_or(TagKind::Other),
                None => named(name),
            },
        }
    }

    /// The node kind a tag requires (`!!seq` on a scalar is refused), when it has one.
    pub(super) fn requires(self) -> Option<NodeKind> {
        match self {
            TagKind::Seq => Some(NodeKind::Seq),
            TagKind::Map => Some(NodeKind::Map),
            TagKind::None | TagKind::NonSpecific | TagKind::Other => None,
            _ => Some(NodeKind::Scalar),
        }
    }

    fn is_core(self) -> bool {
        matches!(
            self,
            TagKind::Int | TagKind::Float | TagKind::Bool | TagKind::Null | TagKind::Seq | TagKind::Map | TagKind::Str
        )
    }

    fn forces_string(self) -> bool {
        matches!(self, TagKind::Str | TagKind::NonSpecific)
    }

    fn can_be_string(self) -> bool {
        matches!(
            self,
            TagKind::None
                | TagKind::Str
                | TagKind::Merge
                | TagKind::Value
                | TagKind::Other
                | TagKind::Include
                | TagKind::NonSpecific
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NodeKind {
    Scalar,
    Seq,
    Map,
}

fn core_name(name: &str) -> Option<TagKind> {
    Some(match name {
        "null" => TagKind::Null,
        "bool" => TagKind::Bool,
        "int" => TagKind::Int,
        "float" => TagKind::Float,
        "map" => TagKind::Map,
        "seq" => TagKind::Seq,
        "str" => TagKind::Str,
        _ => return None,
    })
}

fn named(name: &str) -> TagKind {
    match name {
        "timestamp" => TagKind::TimeStamp,
        "binary" => TagKind::Binary,
        "include" => TagKind::Include,
        "time" | "degrees" | "radians" => TagKind::Robotics,
        n => core_name(n).unwrap_or(TagKind::Other),
    }
}

/// Whether a mapping key is the merge key `<<` (plain and untagged, or tagged `!!merge`).
pub(super) fn is_merge_key(value: &str, style: ScalarStyle, tag: TagKind) -> bool {
    value == "<<" && (tag == TagKind::Merge || tag == TagKind::None && style == ScalarStyle::Plain)
}

/// Resolves one scalar. The error is the message; the position is the scalar's.
pub(super) fn resolve(value: Cow<'_, str>, style: ScalarStyle, tag: TagKind) -> Result<Value, String> {
    match tag {
        TagKind::Null => return Ok(Value::Null),
        TagKind::Bool => return yaml12_bool(&value).map(Value::Bool).ok_or_else(|| INVALID_BOOL.to_string()),
        TagKind::Int => return int(&value).ok_or_else(|| int_error(&value)),
        TagKind::Float => return float(&value)?.ok_or_else(|| "invalid floating point".to_string()),
        TagKind::Robotics => return Err("invalid floating point".into()),
        TagKind::Binary => return Err(BINARY.into()),
        _ => {}
    }
    let plain = style == ScalarStyle::Plain;
    if is_null(&value, style, tag) {
        return Ok(Value::Null);
    }
    if !plain || !tag.can_be_string() || tag.forces_string() {
        if !tag.can_be_string() {
            return Err("cannot deserialize tagged scalar into string".into());
        }
        return Ok(Value::Str(value.into_owned()));
    }
    if let Some(b) = yaml12_bool(&value) {
        return Ok(Value::Bool(b));
    }
    let t = trim(&value);
    // Every number (and every refused one: `.inf`, `1e999`) starts with one of these.
    if !t.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
        return Ok(Value::Str(value.into_owned()));
    }
    if leading_zero_decimal(t) || t.contains('_') {
        return Ok(Value::Str(value.into_owned()));
    }
    // Plain: only the core schema's integer forms (decimal with an optional sign, `0o17`,
    // `0x1F`); `0b101`, `-0x1F`, `0X1F` are text, as YAML 1.2 reads them.
    let number = match radix(t.strip_prefix(['+', '-']).unwrap_or(t)) {
        (10, _) if t.starts_with('-') => signed(t).map(Value::Int),
        (10, _) => unsigned(t).map(wide),
        (8 | 16, _) if core_prefix(t) => unsigned(t).map(wide),
        _ => return Ok(Value::Str(value.into_owned())),
    };
    if let Some(n) = number {
        return Ok(n);
    }
    Ok(float(&value)?.unwrap_or_else(|| Value::Str(value.into_owned())))
}

/// Whether a scalar is null: `!!null`, or plain `~`, `null`, empty… without a tag that says otherwise.
pub(super) fn is_null(value: &str, style: ScalarStyle, tag: TagKind) -> bool {
    tag == TagKind::Null
        || style == ScalarStyle::Plain
            && !tag.is_core()
            && !tag.forces_string()
            && !matches!(tag, TagKind::Binary | TagKind::TimeStamp | TagKind::Robotics)
            && is_nullish(value)
}

pub(super) const BINARY: &str = "binary values (!!binary) are not supported";
const INVALID_BOOL: &str = "invalid boolean (strict mode expects true/false)";

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

fn is_nullish(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn yaml12_bool(s: &str) -> Option<bool> {
    match trim(s) {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// `0127`, `+0127`, `-0127`: a decimal integer with a redundant leading zero.
fn leading_zero_decimal(t: &str) -> bool {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An `!!int` scalar: signed when it starts with `-`, else unsigned (`u64` beyond `i64` is a float,
/// as the serde path had it).
fn int(s: &str) -> Option<Value> {
    let t = trim(s);
    if t.starts_with('-') { signed(t).map(Value::Int) } else { unsigned(t).map(wide) }
}

fn int_error(s: &str) -> String {
    if trim(s).starts_with('-') { "invalid i64".into() } else { "invalid u64".into() }
}

fn wide(v: u64) -> Value {
    i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64))
}

/// Whether `t` starts with a radix prefix of the core schema: `0o` or `0x`, lowercase, unsigned.
fn core_prefix(t: &str) -> bool {
    t.starts_with("0x") || t.starts_with("0o")
}

/// Splits `0x…`, `0o…`, `0b…` prefixes (`!!int` takes all three, and a sign; a plain scalar
/// only what [`core_prefix`] allows).
fn radix(rest: &str) -> (u32, &str) {
    for (p, r) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(d) = rest.strip_prefix(p) {
            return (r, d);
        }
    }
    (10, rest)
}

/// Digits in `radix`, single underscores allowed between digits; `None` on overflow of `u128`.
fn digits(d: &str, radix: u32) -> Option<u128> {
    let b = d.as_bytes();
    let mut val: u128 = 0;
    let mut saw = false;
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            if i == 0 || b[i - 1] == b'_' || i + 1 >= b.len() || b[i + 1] == b'_' {
                return None;
            }
            continue;
        }
        let v = (c as char).to_digit(radix)?;
        val = val.checked_mul(u128::from(radix))?.checked_add(u128::from(v))?;
        saw = true;
    }
    saw.then_some(val)
}

fn unsigned(t: &str) -> Option<u64> {
    if t.starts_with('-') {
        return None;
    }
    let (r, d) = radix(t.strip_prefix('+').unwrap_or(t));
    if r == 10 && d.starts_with('0') && d != "0" {
        return None;
    }
    u64::try_from(digits(d, r)?).ok()
}

fn signed(t: &str) -> Option<i64> {
    let (neg, rest) = match t.strip_prefix('+') {
        Some(r) => (false, r),
        None => t.strip_prefix('-').map_or((false, t), |r| (true, r)),
    };
    let (r, d) = radix(rest);
    if r == 10 && d.starts_with('0') && d != "0" {
        return None;
    }
    let mag = i128::try_from(digits(d, r)?).ok()?;
    i64::try_from(if neg { -mag } else { mag }).ok()
}

/// A YAML 1.2 float: `Ok(None)` when the text is not one, an error when it is one that is not
/// finite (`.inf`, `.nan`, `1e999`): such values are refused, not sent.
fn float(s: &str) -> Result<Option<Value>, String> {
    let t = trim(s);
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let special = matches!(unsigned, ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF");
    let refused = || Err(format!("non-finite float `{s}` rejected by the configured policy"));
    if special {
        return refused();
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(Value::Float(v))),
        Ok(v) if v.is_infinite() && unsigned.as_bytes().first().is_some_and(u8::is_ascii_digit) => refused(),
        _ => Ok(None),
    }
}
