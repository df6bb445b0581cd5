//! The one place YAML is parsed. Files are read into a small tree of [`Node`]s that remember where
//! every value (and every mapping key) came from; the config and manifest loaders walk that tree and
//! report *all* problems with exact positions, instead of stopping at serde's first error.
//!
//! The tree is built straight from the parser's event stream ([`tree`]), not through serde: inline
//! audiences make manifests of megabytes, and serde's `Spanned<T>` wrappers tripled the cost of the
//! parse. Files in the plain shape nearly all manifests have are read by a faster path ([`fast`])
//! that steps aside for anything else and returns the same trees. Scalars resolve as the YAML 1.2 core schema with our choices ([`scalar`]: no "Norway
//! problem", `007` and `1_000` stay text). `serde_path` keeps the former serde build for the
//! parity property tests only.
//!
//! Hostile input is bounded here: budgets while parsing (nodes and events counting alias
//! expansions, nesting depth, aliases, documents), duplicate mapping keys refused, `!!binary`
//! refused; the size cap and the text check are the reader's (`crate::files`, `crate::text`).
//! Nothing in this module panics on bad input.

use crate::diag::Pos;

mod fast;
mod frames;
mod hint;
mod scalar;
#[doc(hidden)]
pub mod serde_path;
mod tree;

/// Largest YAML file we read. Audiences belong in CSV files (`identitiesFrom`), which stream.
pub(crate) const MAX_YAML_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
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
    pub(crate) value: Value,
    pub pos: Pos,
    /// For numbers whose source text differs from their value's usual spelling (`1.50`,
    /// `+4915…`, `0x1F`): the text as written, so messages quote it exactly.
    pub(crate) raw: Option<Box<str>>,
}

impl Node {
    pub(crate) fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Key of a mapping entry as text (keys that are not strings are shown as YAML would).
    pub(crate) fn key_text(&self) -> String {
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
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => serde_json::Value::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                serde_json::Value::Object(entries.iter().map(|(k, v)| (k.key_text(), v.to_json())).collect())
            }
        }
    }
}

/// Marks our own duplicate-key message, so its position is the second occurrence's.
const DUPLICATE_KEY: &str = "duplicate key ";

/// A parse failure with its position (0 when unknown).
#[derive(Debug)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
    /// How to fix it, when we can tell (e.g. quote a value starting with `{`).
    pub help: Option<String>,
}

/// Parses every document of a YAML stream. Empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match fast::build(text) {
        Some(docs) => Ok(docs),
        None => parse_documents_full(text),
    }
}

/// [`parse_documents`] without the fast path: every file through the full event parser (for the
/// parse benchmark).
#[doc(hidden)]
pub fn parse_documents_full(text: &str) -> Result<Vec<Node>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut docs = tree::build(text).map_err(|f| parse_error(f.pos, f.message, text))?;
    keep_number_text(text, &mut docs);
    Ok(docs)
}

/// The message of a refused duplicate key, naming both lines.
fn duplicate_key_message(key: &str, line: u32, first: u32) -> String {
    format!("{DUPLICATE_KEY}`{key}` on line {line}: the same mapping already has it on line {first}; keep one of them")
}

/// A parse failure as users see it: budget breaches say what they mean, and a hint names the
/// cause when it is known ([`hint`]).
fn parse_error(pos: Pos, message: String, text: &str) -> ParseError {
    let mut message = escape_controls(message);
    if message.starts_with(DUPLICATE_KEY) {
        return ParseError { pos, message, help: None };
    }
    let help = hint::hint(text, &pos, &message);
    let lower = message.to_lowercase();
    if lower.contains("budget") || lower.contains("alias") && lower.contains("limit") {
        message = format!("{message} (the document is too large or expands too many aliases)");
    }
    ParseError { pos, message: message.trim().to_string(), help }
}

/// Lines longer than this are not inspected for comment cuts and number spellings.
const LONG_LINE: usize = 4096;

/// The source line `line` (1-based) from character column `column` (1-based) on.
fn from_column<'t>(lines: &[&'t str], line: u32, column: u32) -> Option<&'t str> {
    let l = lines.get((line as usize).checked_sub(1)?)?;
    // A huge single line (a flow list of a whole audience) would make each lookup O(line): such
    // lines are not inspected.
    if l.len() > LONG_LINE {
        return None;
    }
    let start = l.char_indices().nth((column as usize).checked_sub(1)?).map(|(i, _)| i)?;
    Some(&l[start..])
}

/// Records the source text of numbers written differently from their value (`1.50`, `+49…`).
/// The source is split into lines only when there is a number to look up.
fn keep_number_text(text: &str, docs: &mut [Node]) {
    let mut lines: Option<Vec<&str>> = None;
    for d in docs {
        number_text(text, &mut lines, d);
    }
}

fn number_text<'t>(text: &'t str, lines: &mut Option<Vec<&'t str>>, n: &mut Node) {
    match &mut n.value {
        Value::Seq(items) => items.iter_mut().for_each(|i| number_text(text, lines, i)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| number_text(text, lines, v)),
        Value::Int(_) | Value::Float(_) => {
            let canonical = match n.value {
                Value::Int(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                _ => String::new(),
            };
            let lines = lines.get_or_insert_with(|| text.lines().collect());
            let token: String = from_column(lines, n.pos.line, n.pos.column)
                .unwrap_or_default()
                .chars()
                .take_while(|c| !matches!(c, ',' | ']' | '}' | '#') && !c.is_whitespace())
                .collect();
            if !token.is_empty() && token != canonical {
                n.raw = Some(token.into());
            }
        }
        _ => {}
    }
}

/// A plain (unquoted) scalar that a ` #` cut short: in YAML ` #` starts a comment, so
/// `value: Order #{orderId} ships today` is `Order`.
#[derive(Debug, PartialEq)]
pub(crate) struct CommentCut {
    pub(crate) pos: Pos,
    /// Field path, e.g. `content.value`.
    pub(crate) path: String,
    /// The value as parsed.
    pub(crate) value: String,
    /// The value and the comment after it, as the source line has them.
    pub(crate) written: String,
}

/// Finds string values cut by a comment whose text touches the `#` (`#{orderId}`, `#42`): a
/// comment written on purpose has a space after `#` and is not reported.
pub(crate) fn comment_cuts(text: &str, docs: &[Node]) -> Vec<CommentCut> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    // Most files have no comment touching its text: nothing to look for.
    if !has_touching_comment(text) {
        return out;
    }
    let lines: Vec<&str> = text.lines().collect();
    for d in docs {
        find_cuts(&lines, d, &mut Vec::new(), &mut out);
    }
    out
}

/// Whether some `#` is followed by something other than ASCII whitespace (a superset of the cuts
/// [`cut_by_comment`] reports).
fn has_touching_comment(text: &str) -> bool {
    let b = text.as_bytes();
    text.match_indices('#').any(|(i, _)| b.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()))
}

/// A step of a field path, formatted only when a cut is found.
enum Step<'n> {
    Key(&'n Node),
    Index(usize),
}

fn path_text(steps: &[Step<'_>]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            Step::Key(k) if out.is_empty() => out.push_str(&k.key_text()),
            Step::Key(k) => {
                out.push('.');
                out.push_str(&k.key_text());
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn find_cuts<'n>(lines: &[&str], n: &'n Node, path: &mut Vec<Step<'n>>, out: &mut Vec<CommentCut>) {
    match &n.value {
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                find_cuts(lines, item, path, out);
                path.pop();
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                path.push(Step::Key(k));
                find_cuts(lines, v, path, out);
                path.pop();
            }
        }
        Value::Str(s) => {
            if let Some(written) = cut_by_comment(lines, &n.pos, s) {
                out.push(CommentCut { pos: n.pos.clone(), path: path_text(path), value: s.clone(), written });
            }
        }
        _ => {}
    }
}

/// When the plain scalar `value` starting at `pos` ends just before ` #X` (X not a space), the
/// value and the rest of its last line.
fn cut_by_comment(lines: &[&str], pos: &Pos, value: &str) -> Option<String> {
    let first = from_column(lines, pos.line, pos.column)?;
    if first.starts_with(['"', '\'', '|', '>', '&', '*', '!']) {
        return None;
    }
    let (mut line, mut seg, mut rest, mut consumed) = (pos.line, first, value, String::new());
    loop {
        let seg_t = seg.trim_start();
        let common = seg_t.char_indices().zip(rest.chars()).take_while(|((_, a), b)| a == b).count();
        let byte = seg_t.char_indices().nth(common).map_or(seg_t.len(), |(i, _)| i);
        if common == rest.chars().count() {
            let after = &seg_t[byte..];
            let comment = after.trim_start();
            let touches = comment.strip_prefix('#').is_some_and(|c| c.starts_with(|ch: char| !ch.is_whitespace()));
            if after.starts_with([' ', '\t']) && touches {
                consumed.push_str(seg_t.trim_end());
                return Some(consumed);
            }
            return None;
        }
        // A multi-line plain scalar: the next line continues it after one folded space.
        if byte != seg_t.trim_end().len() || !rest[byte..].starts_with(' ') {
            return None;
        }
        consumed.push_str(seg_t.trim_end());
        consumed.push(' ');
        rest = &rest[byte + 1..];
        line += 1;
        seg = lines.get(line as usize - 1)?;
    }
}

/// Parses a single-document YAML file (the config).
pub(crate) fn parse_document(text: &str) -> Result<Option<Node>, ParseError> {
    let mut docs = parse_documents(text)?;
    if docs.len() > 1 {
        return Err(ParseError {
            pos: docs[1].pos.clone(),
            message: "expected a single YAML document".into(),
            help: None,
        });
    }
    Ok(docs.pop())
}

/// Messages quote the input (a key, a value): control characters are escaped so that they cannot
/// drive the terminal the diagnostics are printed on.
fn escape_controls(message: String) -> String {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !message.contains(unsafe_char) {
        return message;
    }
    message.chars().flat_map(|c| if unsafe_char(c) { c.escape_debug().collect() } else { vec![c] }).collect()
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
        let err = parse_documents("a: 1\nb: 0\na: 2\n").err().map(|e| (e.pos.line, e.message));
        assert_eq!(
            err,
            Some((
                3,
                "duplicate key `a` on line 3: the same mapping already has it on line 1; keep one of them".to_string()
            ))
        );
    }

    #[test]
    fn comment_cuts_are_found() {
        let text = "a: Order #{orderId} ships\nb: fine # a comment\nc: \"quoted #{x}\"\nd: two\n  lines #42\n";
        let docs = parse_documents(text).map_err(|e| e.message).unwrap_or_default();
        let cuts = comment_cuts(text, &docs);
        let got: Vec<(&str, &str, &str)> =
            cuts.iter().map(|c| (c.path.as_str(), c.value.as_str(), c.written.as_str())).collect();
        assert_eq!(got, vec![("a", "Order", "Order #{orderId} ships"), ("d", "two lines", "two lines #42")]);
    }

    #[test]
    fn numbers_keep_their_text_and_braces_get_a_hint() {
        let docs = parse_documents("a: 1.50\nb: 2\nc: [+49151]\n").map_err(|e| e.message).unwrap_or_default();
        let Value::Map(e) = &docs[0].value else { panic!("not a map") };
        assert_eq!(e[0].1.raw.as_deref(), Some("1.50"));
        assert_eq!(e[1].1.raw, None);
        let Value::Seq(items) = &e[2].1.value else { panic!("not a seq") };
        assert_eq!(items[0].raw.as_deref(), Some("+49151"));
        let err = parse_documents("value: {name}, your order\n").err().and_then(|e| e.help).unwrap_or_default();
        assert!(err.contains("value: \"{name}, your order\""), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_documents(&text).is_err());
    }
}
