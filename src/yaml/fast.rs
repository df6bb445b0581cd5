//! A fast path for the shape nearly every manifest has: block mappings and sequences of one-line
//! scalars and one-line flow mappings and lists, indented with spaces. Inline audiences make
//! manifests of megabytes in exactly this shape, and the full event parser reads them at about
//! 40 MB/s; this reads them at several times that, straight into the same positioned tree.
//!
//! It only ever says yes or "not mine": anything outside that shape — anchors, aliases, tags,
//! merge keys, block and multi-line scalars, escapes other than the common ones, tabs, control
//! characters, a duplicate key, a scalar that does not resolve, anything near a budget — makes it
//! step aside, and the full parser ([`super::tree`]) reads the file from the start, with its
//! diagnostics and budgets. So it never reports an error of its own, and every tree it returns is
//! the tree the full parser builds (positions included): a property test holds the two to that.
//! Scalars resolve through the same [`scalar::resolve`], and numbers keep their spelling as the
//! full parser's trees do.

use std::borrow::Cow;
use std::collections::HashSet;

use granit_parser::ScalarStyle;

use super::frames::{SCAN, dup_text};
use super::scalar::{self, TagKind};
use super::{Node, Value};
use crate::diag::Pos;

/// The fast path steps aside; the full parser reads the file.
struct Bail;

type R<T> = Result<T, Bail>;

/// Well inside the full parser's budgets (4,000,000 nodes, depth 64, 10,000 documents), so a
/// file read here could not have breached one there.
const MAX_NODES: u64 = 1_000_000;
const MAX_DEPTH: usize = 32;
const MAX_DOCUMENTS: usize = 1_000;
/// Comments count as events there (8,000,000 at most, with every node's).
const MAX_COMMENTS: u64 = 4_000_000;
/// The full parser looks ahead past at most 32 comments between a key and its value.
const MAX_COMMENTS_AFTER_KEY: u64 = 32;
/// YAML's limit on an implicit key is 1024 characters; keys are ASCII here.
const MAX_KEY: usize = 1_000;

/// The trees of `text`'s documents, or `None` when the full parser must read it.
pub(super) fn build(text: &str) -> Option<Vec<Node>> {
    if !plain_characters(text.as_bytes()) {
        return None;
    }
    let mut p = Reader { text, at: 0, no: 1, nodes: 0, comments: 0 };
    p.stream().ok().filter(|_| p.comments <= MAX_COMMENTS)
}

/// No control characters (tabs and carriage returns included), no C1 controls, line or paragraph
/// separators, byte order marks or non-characters: the characters YAML treats specially or refuses.
/// And no line longer than [`super::LONG_LINE`] outside ASCII, so that every position is found in
/// bounded time (an ASCII line's column is its byte offset).
fn plain_characters(b: &[u8]) -> bool {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let (mut line_start, mut ascii) = (0, true);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c >= 0x80 {
            ascii = false;
        }
        let refused = match c {
            b'\n' => {
                if !ascii && i - line_start > super::LONG_LINE {
                    return false;
                }
                (line_start, ascii) = (i + 1, true);
                false
            }
            0..0x20 | 0x7f => true,
            0xc2 => at(i + 1) < 0xa0,
            0xe2 => at(i + 1) == 0x80 && matches!(at(i + 2), 0xa8 | 0xa9),
            0xef => at(i + 1) == 0xbb && at(i + 2) == 0xbf || at(i + 1) == 0xbf && matches!(at(i + 2), 0xbe | 0xbf),
            _ => false,
        };
        if refused {
            return false;
        }
        i += 1;
    }
    ascii || b.len() - line_start <= super::LONG_LINE
}

/// Content starting at byte `at` of line `no` (1-based); `at` is its indentation for a whole line.
/// `line` is without its trailing spaces; `width` is the length of the line as written.
#[derive(Clone, Copy)]
struct Seg<'t> {
    no: u32,
    line: &'t str,
    width: usize,
    ascii: bool,
    at: usize,
}

impl<'t> Seg<'t> {
    /// The content.
    fn text(&self) -> &'t str {
        &self.line[self.at..]
    }

    fn pos(&self, byte: usize) -> Pos {
        let column = if self.ascii { byte } else { self.line[..byte].chars().count() };
        Pos { line: self.no, column: column as u32 + 1 }
    }

    fn from(self, at: usize) -> Seg<'t> {
        Seg { at, ..self }
    }
}

/// Reads forward, one line at a time (nothing is collected up front).
struct Reader<'t> {
    text: &'t str,
    /// Byte offset and number (1-based) of the next line not yet taken.
    at: usize,
    no: u32,
    nodes: u64,
    /// Comments (lines and ends of lines): the full parser counts each as an event.
    comments: u64,
}

impl<'t> Reader<'t> {
    /// The next line with content (blank and comment lines skipped for good), not taken.
    fn peek(&mut self) -> Option<Seg<'t>> {
        while self.at < self.text.len() {
            let rest = &self.text[self.at..];
            let written = &rest[..rest.find('\n').unwrap_or(rest.len())];
            let line = written.trim_end_matches(' ');
            let at = line.len() - line.trim_start_matches(' ').len();
            let content = &line[at..];
            if !content.is_empty() && !content.starts_with('#') {
                return Some(Seg { no: self.no, line, width: written.len(), ascii: line.is_ascii(), at });
            }
            if !content.is_empty() {
                self.comments += 1;
            }
            self.skip(written.len());
        }
        None
    }

    fn skip(&mut self, len: usize) {
        self.at += len + 1;
        self.no += 1;
    }

    /// Takes the line [`Reader::peek`] returned.
    fn advance(&mut self, s: Seg<'_>) {
        self.skip(s.width);
    }

    fn take(&mut self) -> Option<Seg<'t>> {
        let s = self.peek()?;
        self.advance(s);
        Some(s)
    }

    fn count(&mut self) -> R<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES || self.comments > MAX_COMMENTS { Err(Bail) } else { Ok(()) }
    }

    fn stream(&mut self) -> R<Vec<Node>> {
        let mut docs = Vec::new();
        let mut markers = 0;
        while let Some(s) = self.take() {
            if s.at == 0 && is_document_marker(s.text()) {
                markers += 1;
                if s.text() != "---" || markers > MAX_DOCUMENTS {
                    return Err(Bail);
                }
                continue;
            }
            if s.at == 0 && s.text().starts_with(['%', '.']) {
                return Err(Bail);
            }
            docs.push(self.block(s, 1)?);
            match self.peek() {
                Some(s) if !(s.at == 0 && is_document_marker(s.text())) => return Err(Bail),
                _ => {}
            }
        }
        Ok(docs)
    }

    /// A block mapping or sequence starting at `s` (taken).
    fn block(&mut self, s: Seg<'t>, depth: usize) -> R<Node> {
        if depth > MAX_DEPTH {
            return Err(Bail);
        }
        if is_item(s.text()) {
            self.sequence(s, depth, false)
        } else if key_len(s.text()).is_some() {
            self.mapping(s, depth)
        } else {
            Err(Bail)
        }
    }

    /// A block mapping whose first key starts at `first` (taken); every key at that column.
    fn mapping(&mut self, first: Seg<'t>, depth: usize) -> R<Node> {
        self.count()?;
        let col = first.at;
        let mut entries: Vec<(Node, Node)> = Vec::new();
        let mut seen: Option<HashSet<String>> = None;
        let mut s = first;
        loop {
            let text = s.text();
            let len = key_len(text).ok_or(Bail)?;
            let key = self.scalar(&text[..len], ScalarStyle::Plain, s.pos(s.at))?;
            let value = self.value(s.from(s.at + len + 1), col, depth)?;
            if duplicate(&entries, &mut seen, &key) {
                return Err(Bail);
            }
            entries.push((key, value));
            match self.peek() {
                Some(n) if n.at == col && !(col == 0 && is_document_marker(n.text())) => {
                    if is_item(n.text()) {
                        return Err(Bail);
                    }
                    self.advance(n);
                    s = n;
                }
                Some(n) if n.at > col => return Err(Bail),
                _ => break,
            }
        }
        Ok(Node { value: Value::Map(entries), pos: first.pos(first.at), raw: None })
    }

    /// The value after `key:` (`rest` starts after the colon) of a mapping whose keys are at `col`.
    fn value(&mut self, rest: Seg<'t>, col: usize, depth: usize) -> R<Node> {
        let text = rest.line[rest.at..].trim_start_matches(' ');
        if !text.is_empty() && !text.starts_with('#') {
            return self.inline(rest.from(rest.line.len() - text.len()), depth);
        }
        let before = self.comments;
        if !text.is_empty() {
            self.comments += 1;
        }
        let next = self.peek();
        if self.comments - before >= MAX_COMMENTS_AFTER_KEY {
            return Err(Bail);
        }
        match next {
            Some(n) if n.at > col => {
                self.advance(n);
                self.block(n, depth + 1)
            }
            // A list may sit at its key's own column.
            Some(n) if n.at == col && is_item(n.text()) => {
                self.advance(n);
                self.sequence(n, depth + 1, true)
            }
            // An empty value (null) is left to the full parser, which places it.
            _ => Err(Bail),
        }
    }

    /// A block sequence whose first `- ` is at `first` (taken); every item at that column.
    /// `indentless`: a mapping's value at its key's own column, which the full parser places at
    /// the first item's content rather than at its `-`.
    fn sequence(&mut self, first: Seg<'t>, depth: usize, indentless: bool) -> R<Node> {
        self.count()?;
        let col = first.at;
        let mut items = Vec::new();
        let mut pos = first.pos(first.at);
        let mut s = first;
        loop {
            let after = &s.line[s.at + 1..];
            let content = s.line.len() - after.trim_start_matches(' ').len();
            let item = s.from(content);
            if indentless && items.is_empty() {
                pos = item.pos(content);
            }
            let text = item.text();
            if text.is_empty() || text.starts_with('#') || is_item(text) {
                return Err(Bail);
            }
            items.push(if key_len(text).is_some() {
                self.mapping(item, depth + 1)?
            } else {
                self.inline(item, depth + 1)?
            });
            match self.peek() {
                Some(n) if n.at == col && is_item(n.text()) => {
                    self.advance(n);
                    s = n;
                }
                Some(n) if n.at > col => return Err(Bail),
                _ => break,
            }
        }
        Ok(Node { value: Value::Seq(items), pos, raw: None })
    }

    /// A value written on the rest of the line from `s.at`: a scalar, or a flow mapping or list.
    fn inline(&mut self, s: Seg<'t>, depth: usize) -> R<Node> {
        if depth > MAX_DEPTH {
            return Err(Bail);
        }
        let text = s.text();
        let (node, used) = match text.as_bytes()[0] {
            b'{' | b'[' => self.flow(s)?,
            b'"' | b'\'' => self.quoted(s)?,
            _ => {
                let end = text.find(" #").unwrap_or(text.len());
                let value = text[..end].trim_end_matches(' ');
                if !plain_block(value) {
                    return Err(Bail);
                }
                (number_text(self.scalar(value, ScalarStyle::Plain, s.pos(s.at))?, s), end)
            }
        };
        let rest = &text[used..];
        if rest.is_empty() {
            Ok(node)
        } else if rest.starts_with(' ') && rest.trim_start_matches(' ').starts_with('#') {
            self.comments += 1;
            Ok(node)
        } else {
            Err(Bail)
        }
    }

    /// A quoted scalar on one line at `s.at`; with the bytes of `s.text()` it takes.
    fn quoted(&mut self, s: Seg<'t>) -> R<(Node, usize)> {
        let text = s.text();
        let (value, len, style) = if text.starts_with('"') {
            let (v, len) = double_quoted(text).ok_or(Bail)?;
            (v, len, ScalarStyle::DoubleQuoted)
        } else {
            let (v, len) = single_quoted(text).ok_or(Bail)?;
            (v, len, ScalarStyle::SingleQuoted)
        };
        Ok((self.scalar_owned(value, style, s.pos(s.at))?, len))
    }

    /// A one-line flow mapping `{k: v, …}` or list `[a, …]` of scalars at `s.at`; with the bytes
    /// of `s.text()` it takes.
    fn flow(&mut self, s: Seg<'t>) -> R<(Node, usize)> {
        self.count()?;
        let text = s.text();
        let map = text.starts_with('{');
        let close = if map { b'}' } else { b']' };
        let b = text.as_bytes();
        let skip = |mut i: usize| {
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            i
        };
        let mut entries = Vec::new();
        let mut items = Vec::new();
        let mut seen = None;
        let mut i = skip(1);
        if b.get(i) != Some(&close) {
            loop {
                let key = if map {
                    let len = key_len(&text[i..]).ok_or(Bail)?;
                    let key = self.scalar(&text[i..i + len], ScalarStyle::Plain, s.pos(s.at + i))?;
                    i = skip(i + len + 1);
                    Some(key)
                } else {
                    None
                };
                let (value, len) = match b.get(i) {
                    Some(b'"' | b'\'') => self.quoted(s.from(s.at + i))?,
                    _ => {
                        let len = text[i..].find([',', '}', ']']).ok_or(Bail)?;
                        let value = text[i..i + len].trim_end_matches(' ');
                        if !plain_flow(value) {
                            return Err(Bail);
                        }
                        (number_text(self.scalar(value, ScalarStyle::Plain, s.pos(s.at + i))?, s.from(s.at + i)), len)
                    }
                };
                match key {
                    Some(key) if duplicate(&entries, &mut seen, &key) => return Err(Bail),
                    Some(key) => entries.push((key, value)),
                    None => items.push(value),
                }
                i = skip(i + len);
                match b.get(i) {
                    Some(b',') if b.get(skip(i + 1)) != Some(&close) => i = skip(i + 1),
                    Some(&c) if c == close => break,
                    _ => return Err(Bail),
                }
            }
        }
        let value = if map { Value::Map(entries) } else { Value::Seq(items) };
        Ok((Node { value, pos: s.pos(s.at), raw: None }, i + 1))
    }

    fn scalar(&mut self, text: &str, style: ScalarStyle, pos: Pos) -> R<Node> {
        self.count()?;
        let value = scalar::resolve(Cow::Borrowed(text), style, TagKind::None).map_err(|_| Bail)?;
        Ok(Node { value, pos, raw: None })
    }

    fn scalar_owned(&mut self, text: String, style: ScalarStyle, pos: Pos) -> R<Node> {
        self.count()?;
        let value = scalar::resolve(Cow::Owned(text), style, TagKind::None).map_err(|_| Bail)?;
        Ok(Node { value, pos, raw: None })
    }
}

/// A number value keeps its text as written when that differs from its usual spelling, exactly as
/// [`super::keep_number_text`] finds it for the full parser's trees.
fn number_text(mut n: Node, s: Seg<'_>) -> Node {
    let canonical = match n.value {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        _ => return n,
    };
    if s.width > super::LONG_LINE {
        return n;
    }
    let token = s.line[s.at..].split(|c: char| matches!(c, ',' | ']' | '}' | '#') || c.is_whitespace()).next();
    if let Some(token) = token.filter(|t| !t.is_empty() && *t != canonical) {
        n.raw = Some(token.into());
    }
    n
}

fn is_document_marker(text: &str) -> bool {
    text.starts_with("---") && matches!(text.as_bytes().get(3), None | Some(b' '))
}

/// A block sequence item: `-` then a space (or the end of the line).
fn is_item(text: &str) -> bool {
    text.starts_with('-') && matches!(text.as_bytes().get(1), None | Some(b' '))
}

/// The length of a plain key (letters, digits, `_`, then also `-`, `.`, `/`) followed by `:` and a
/// space or the end of the line.
fn key_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    if !b.first()?.is_ascii_alphanumeric() && b[0] != b'_' {
        return None;
    }
    let len = b.iter().position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/')))?;
    (len <= MAX_KEY && b[len] == b':' && matches!(b.get(len + 1), None | Some(b' '))).then_some(len)
}

/// Whether `key` is already in the mapping (compared as the full parser compares keys).
fn duplicate(entries: &[(Node, Node)], seen: &mut Option<HashSet<String>>, key: &Node) -> bool {
    let Some(text) = dup_text(key) else { return false };
    if let Some(set) = seen {
        return !set.insert(text.into_owned());
    }
    if entries.iter().any(|(k, _)| dup_text(k).is_some_and(|t| t == text)) {
        return true;
    }
    if entries.len() + 1 >= SCAN {
        let mut set: HashSet<String> = entries.iter().filter_map(|(k, _)| dup_text(k).map(Cow::into_owned)).collect();
        set.insert(text.into_owned());
        *seen = Some(set);
    }
    false
}

/// YAML's indicators: a plain scalar starting with one of these is left to the full parser.
const INDICATORS: &[u8] = b"-?:,[]{}#&*!|>'\"%@`";

/// Whether a plain scalar may start this way: not with an indicator, except `-` followed by
/// something other than a space (`-5`, `-x`).
fn plain_start(v: &str) -> bool {
    match v.as_bytes() {
        [] => false,
        [b'-', next, ..] => *next != b' ',
        [first, ..] => !INDICATORS.contains(first),
    }
}

/// A one-line plain scalar in block context (its comment already cut off).
fn plain_block(v: &str) -> bool {
    plain_start(v) && !v.ends_with(':') && !v.contains(": ")
}

/// A plain scalar inside a flow mapping or list (up to the next `,`, `}` or `]`).
fn plain_flow(v: &str) -> bool {
    plain_start(v) && !v.contains([':', '#', '[', ']', '{', '}'])
}

/// `'…'` with `''` for a quote: the value and the bytes taken.
fn single_quoted(text: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut rest = &text[1..];
    loop {
        let end = rest.find('\'')?;
        out.push_str(&rest[..end]);
        if rest[end + 1..].starts_with('\'') {
            out.push('\'');
            rest = &rest[end + 2..];
        } else {
            return Some((out, text.len() - rest.len() + end + 1));
        }
    }
}

/// `"…"` with the common escapes (`\\ \" \/ \n \t \r`): the value and the bytes taken.
fn double_quoted(text: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut rest = &text[1..];
    loop {
        let end = rest.find(['"', '\\'])?;
        out.push_str(&rest[..end]);
        if rest.as_bytes()[end] == b'"' {
            return Some((out, text.len() - rest.len() + end + 1));
        }
        out.push(match rest.as_bytes().get(end + 1)? {
            b'\\' => '\\',
            b'"' => '"',
            b'/' => '/',
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            _ => return None,
        });
        rest = &rest[end + 2..];
    }
}

#[cfg(test)]
#[path = "fast_tests.rs"]
mod tests;
