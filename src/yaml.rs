//! The one place YAML is parsed. Files are read into a small tree of [`Node`]s that remember where
//! every value (and every mapping key) came from; the config and manifest loaders walk that tree and
//! report *all* problems with exact positions, instead of stopping at serde's first error.
//!
//! Hostile input is bounded here: a size cap before parsing, serde-saphyr's budgets (alias
//! expansion, nesting depth, node and event counts) while parsing, and duplicate mapping keys
//! refused. Nothing in this module panics on bad input.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diag::Pos;

/// Largest YAML file we read. Audiences belong in CSV files (`identitiesFrom`), which stream.
pub const MAX_YAML_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Key of a mapping entry as text (keys that are not strings are shown as YAML would).
    pub fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".into(),
            _ => "<complex key>".into(),
        }
    }

    /// Converts to JSON (used for WhatsApp template objects).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
            }
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => serde_json::Value::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                serde_json::Value::Object(entries.iter().map(|(k, v)| (k.key_text(), v.to_json())).collect())
            }
        }
    }
}

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
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Value>>()? {
            let v = map.next_value::<Spanned<Value>>()?;
            entries.push((node(k), node(v)));
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
    Node { value: s.value, pos: Pos { line: s.referenced.line() as u32, column: s.referenced.column() as u32 } }
}

/// A parse failure with its position (0 when unknown).
#[derive(Debug)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

fn options() -> serde_saphyr::Options {
    let mut opts = serde_saphyr::Options::default();
    opts.with_snippet = false;
    // Values are sent as text: keep `007`, `1_000`, `no`, `on`, `y`, `n` exactly as written
    // (YAML 1.2 core booleans only; no "Norway problem" for country codes or parameter names).
    opts.leading_zero_numbers_as_strings = true;
    opts.underscored_numbers_as_strings = true;
    opts.strict_booleans = true;
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

/// Checks that bytes are UTF-8 text (not binary) before YAML sees them.
pub fn check_text(bytes: &[u8]) -> Result<&str, ParseError> {
    if bytes.contains(&0) {
        return Err(ParseError { pos: Pos::default(), message: "this is a binary file, not YAML text".into() });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() as u32 + 1;
        let column = valid.iter().rev().take_while(|b| **b != b'\n').count() as u32 + 1;
        ParseError { pos: Pos { line, column }, message: "the file is not valid UTF-8 text".into() }
    })
}

/// Parses every document of a YAML stream. Empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let docs: Vec<Option<Spanned<Value>>> =
        serde_saphyr::from_multiple_with_options(text, options()).map_err(convert_error)?;
    Ok(docs.into_iter().flatten().map(node).filter(|n| n.value != Value::Null).collect())
}

/// Parses a single-document YAML file (the config).
pub fn parse_document(text: &str) -> Result<Option<Node>, ParseError> {
    let mut docs = parse_documents(text)?;
    if docs.len() > 1 {
        return Err(ParseError { pos: docs[1].pos.clone(), message: "expected a single YAML document".into() });
    }
    Ok(docs.pop())
}

fn convert_error(e: serde_saphyr::Error) -> ParseError {
    let pos = e.location().map(|l| Pos { line: l.line() as u32, column: l.column() as u32 }).unwrap_or_default();
    let mut message = e.to_string();
    // serde-saphyr prefixes messages with the position; we print positions ourselves.
    if let Some(idx) = message.find(" at line ") {
        message.truncate(idx);
    }
    let lower = message.to_lowercase();
    if lower.contains("budget") || lower.contains("alias") && lower.contains("limit") {
        message = format!("{message} (the document is too large or expands too many aliases)");
    }
    ParseError { pos, message: message.trim().to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_recorded() {
        let docs = parse_documents("a: 1\nb:\n  - x\n  - y\n").map_err(|e| e.message).unwrap_or_default();
        assert_eq!(docs.len(), 1);
        let Value::Map(entries) = &docs[0].value else { panic!("not a map") };
        assert_eq!(entries[1].0.pos, Pos { line: 2, column: 1 });
        let Value::Seq(items) = &entries[1].1.value else { panic!("not a seq") };
        assert_eq!(items[1].pos, Pos { line: 4, column: 5 });
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse_documents("a: 1\na: 2\n").err().map(|e| e.pos.line);
        assert_eq!(err, Some(2));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_documents(&text).is_err());
    }
}
