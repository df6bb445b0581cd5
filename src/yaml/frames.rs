//! The builder's working state: mappings and sequences in progress, duplicate-key detection,
//! and YAML merge keys (`<<`).

use std::borrow::Cow;
use std::collections::HashMap;

use granit_parser::ScalarStyle;

use super::scalar::TagKind;
use super::tree::{Failure, fail};
use super::{Node, Value};
use crate::diag::Pos;

/// Places a copied subtree (an alias's or a merge's) at the position where it is used.
pub(super) fn place(n: &mut Node, pos: &Pos) {
    n.pos = pos.clone();
    match &mut n.value {
        Value::Seq(items) => items.iter_mut().for_each(|i| place(i, pos)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            place(k, pos);
            place(v, pos);
        }),
        _ => {}
    }
}

/// A mapping's entry in progress.
pub(super) enum Slot {
    /// Waiting for a key.
    Key,
    /// Key read, waiting for its value.
    Value(Node),
    /// A merge key read (`<<`), waiting for the mapping(s) to merge.
    Merge,
    /// A scalar key read but not resolved yet: the serde path resolved a key only once the
    /// parser had produced the next event, so a syntax error right after a key comes first.
    Pending(Box<PendingKey>),
}

pub(super) struct PendingKey {
    pub(super) value: String,
    pub(super) style: ScalarStyle,
    pub(super) kind: TagKind,
    pub(super) pos: Pos,
    pub(super) anchor: usize,
}

pub(super) enum Frame {
    /// `merge`: the list is a merge key's value, so each item must be a mapping.
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
        merge: bool,
    },
    Map(Box<MapFrame>),
}

pub(super) struct MapFrame {
    pub(super) pos: Pos,
    pub(super) anchor: usize,
    pub(super) entries: Vec<(Node, Node)>,
    pub(super) slot: Slot,
    /// Entries to merge at the end, in order (earlier ones win).
    pub(super) merges: Vec<(Node, Node)>,
    /// Key text → line of the key, once the mapping is too big for a linear scan.
    pub(super) index: Option<HashMap<String, u32>>,
    /// A document's root mapping reports duplicate keys at column 1 (as the serde path did).
    pub(super) root: bool,
}

/// Past this many entries, duplicate keys are found with a hash map instead of a scan.
pub(super) const SCAN: usize = 16;

impl MapFrame {
    /// Adds an entry, refusing a key the mapping already has (with both lines).
    pub(super) fn push(&mut self, k: Node, v: Node) -> Result<(), Failure> {
        if let Some(text) = dup_text(&k) {
            let first = match &mut self.index {
                Some(index) => index.insert(text.into_owned(), k.pos.line),
                None => {
                    self.entries.iter().find(|(e, _)| dup_text(e).is_some_and(|t| t == text)).map(|(e, _)| e.pos.line)
                }
            };
            if let Some(first) = first {
                let column = if self.root { 1 } else { self.pos.column.max(1) };
                let pos = Pos { line: k.pos.line, column };
                return fail(pos, super::duplicate_key_message(&k.key_text(), k.pos.line, first));
            }
        }
        self.entries.push((k, v));
        if self.index.is_none() && self.entries.len() >= SCAN {
            let keys = self.entries.iter().filter_map(|(k, _)| dup_text(k).map(|t| (t.into_owned(), k.pos.line)));
            self.index = Some(keys.collect());
        }
        Ok(())
    }

    /// Appends the merged entries whose key the mapping does not have yet.
    pub(super) fn finish(mut self) -> Result<(Pos, usize, Node), Failure> {
        let merges = std::mem::take(&mut self.merges);
        let mut seen: Vec<(u8, String)> = Vec::new();
        for (k, v) in merges {
            let fp = fingerprint(&k);
            let known = |f: &(u8, String)| self.entries.iter().any(|(e, _)| fingerprint(e).as_ref() == Some(f));
            if let Some(f) = fp {
                if seen.contains(&f) || known(&f) {
                    continue;
                }
                seen.push(f);
            }
            self.push(k, v)?;
        }
        let node = Node { value: Value::Map(self.entries), pos: self.pos.clone(), raw: None };
        Ok((self.pos, self.anchor, node))
    }
}

/// The text a key is compared by for duplicates (scalar keys only).
pub(super) fn dup_text(k: &Node) -> Option<Cow<'_, str>> {
    match &k.value {
        Value::Str(s) => Some(Cow::Borrowed(s)),
        Value::Seq(_) | Value::Map(_) => None,
        _ => Some(Cow::Owned(k.key_text())),
    }
}

/// The identity of a key for merging: its kind and text (`1` and `"1"` differ).
pub(super) fn fingerprint(k: &Node) -> Option<(u8, String)> {
    let kind = match &k.value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) => 2,
        Value::Float(_) => 3,
        Value::Str(_) => 4,
        Value::Seq(_) | Value::Map(_) => return None,
    };
    Some((kind, k.key_text()))
}

/// The value of a merge key: a mapping, or a list of mappings; their entries are placed where
/// each is written (the alias, or the inline mapping).
pub(super) fn merge_value(m: &mut MapFrame, node: Node) -> Result<(), Failure> {
    match node.value {
        Value::Map(entries) => {
            merge_entries(m, entries, &node.pos);
            Ok(())
        }
        Value::Seq(items) => {
            for item in items {
                let Value::Map(entries) = item.value else {
                    return fail(item.pos, MERGE_SHAPE);
                };
                merge_entries(m, entries, &item.pos);
            }
            Ok(())
        }
        _ => fail(node.pos, MERGE_SHAPE),
    }
}

pub(super) const MERGE_SHAPE: &str = "YAML merge value must be mapping or sequence of mappings";

pub(super) fn merge_entries(m: &mut MapFrame, entries: Vec<(Node, Node)>, pos: &Pos) {
    for (mut k, mut v) in entries {
        place(&mut k, pos);
        place(&mut v, pos);
        m.merges.push((k, v));
    }
}
