//! The serde path the tree used to be built through (serde-saphyr into `Spanned<Value>`), kept
//! only so the property tests can check that the event-stream builder ([`super::tree`]) gives the
//! same trees and the same errors. Not used by the tool; remove it with those tests.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::{DUPLICATE_KEY, Node, ParseError, Value, hint, keep_number_text};
use crate::diag::Pos;

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v).map(Value::Int).or(Ok(Value::Float(v as f64)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        i64::try_from(v).map(Value::Int).or(Ok(Value::Float(v as f64)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i64::try_from(v).map(Value::Int).or(Ok(Value::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _v: &[u8]) -> Result<Value, E> {
        Err(E::custom("binary values (!!binary) are not supported"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(node(item));
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        while let Some(k) = map.next_key::<Spanned<Value>>()? {
            let v = map.next_value::<Spanned<Value>>()?;
            let k = node(k);
            if matches!(k.value, Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::Null | Value::Float(_))
                && let Some(first) = seen.insert(k.key_text(), k.pos.line)
            {
                return Err(de::Error::custom(super::duplicate_key_message(&k.key_text(), k.pos.line, first)));
            }
            entries.push((k, node(v)));
        }
        Ok(Value::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

fn node(s: Spanned<Value>) -> Node {
    Node {
        value: s.value,
        pos: Pos { line: s.referenced.line() as u32, column: s.referenced.column() as u32 },
        raw: None,
    }
}

fn options() -> serde_saphyr::Options {
    let mut opts = serde_saphyr::Options::default();
    opts.with_snippet = false;
    // Values are sent as text: keep `007`, `1_000`, `no`, `on`, `y`, `n` exactly as written
    // (YAML 1.2 core booleans only; no "Norway problem" for country codes or parameter names).
    opts.leading_zero_numbers_as_strings = true;
    opts.underscored_numbers_as_strings = true;
    opts.strict_booleans = true;
    // Repeated keys reach our visitor, which names both lines (instead of the library's text).
    opts.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    if let Some(b) = opts.budget.as_mut() {
        // Allow big inline audiences, but keep alias bombs and deep nesting bounded.
        b.max_nodes = 4_000_000;
        b.max_events = 8_000_000;
        b.max_depth = 64;
        b.max_aliases = 10_000;
        b.max_documents = 10_000;
    }
    opts
}

/// Parses every document of a YAML stream through serde, as the tool did before.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let docs: Vec<Option<Spanned<Value>>> =
        serde_saphyr::from_multiple_with_options(text, options()).map_err(|e| convert_error(e, text))?;
    let mut docs: Vec<Node> = docs.into_iter().flatten().map(node).filter(|n| n.value != Value::Null).collect();
    keep_number_text(text, &mut docs);
    Ok(docs)
}

fn convert_error(e: serde_saphyr::Error, text: &str) -> ParseError {
    let mut pos = e.location().map(|l| Pos { line: l.line() as u32, column: l.column() as u32 }).unwrap_or_default();
    let mut message = e.to_string();
    // serde-saphyr prefixes messages with the position; we print positions ourselves.
    if let Some(idx) = message.find(" at line ") {
        message.truncate(idx);
    }
    if let Some(i) = e.to_string().find(DUPLICATE_KEY) {
        // Our own message; it names both lines. Point at the second one.
        message = e.to_string()[i..].to_string();
        if let Some(idx) = message.find(" at line ") {
            message.truncate(idx);
        }
        let line = message.split("` on line ").nth(1).and_then(|t| t.split(':').next()).and_then(|t| t.parse().ok());
        if let Some(l) = line {
            pos = Pos { line: l, column: pos.column.max(1) };
        }
        return ParseError { pos, message, help: None };
    }
    let help = hint::hint(text, &pos, &message);
    let lower = message.to_lowercase();
    if lower.contains("budget") || lower.contains("alias") && lower.contains("limit") {
        message = format!("{message} (the document is too large or expands too many aliases)");
    }
    ParseError { pos, message: message.trim().to_string(), help }
}
