//! Builds the positioned tree straight from granit-parser's event stream (the parser under
//! serde-saphyr), one event at a time on an explicit stack: no serde visitors, no `Spanned<T>`
//! wrappers, no recursion (so no stack overflow however deep the input), one allocation per string.
//! Going through serde cost about three times the parse itself; this is what makes a repository of
//! inline audiences plan at the speed of the parser.
//!
//! It reproduces what the serde path produced, position for position: an alias expands to a copy
//! of its anchor's tree, every node of which is placed at the alias (where the value is *used*);
//! merge keys (`<<: *base`, `<<: [*a, *b]`) add the entries a mapping does not have itself, placed
//! at the merged value. Hostile input is bounded by [`Limits`]: aliases count as the nodes they
//! *expand* to, so an alias bomb fails before it is built.

use std::borrow::Cow;

use granit_parser::{Event, Parser, ScanError, Span, Tag};

use super::frames::*;
use super::scalar::{self, NodeKind, TagKind};
use super::{Node, Value};
use crate::diag::Pos;

/// Budgets (the values the serde path was configured with).
pub(super) struct Limits {
    /// Nodes (scalars, lists, mappings), counting every node an alias expands to.
    pub(crate) max_nodes: u64,
    /// Parser events, counting the events an alias replays.
    pub(crate) max_events: u64,
    /// Nesting of lists and mappings, through aliases too.
    pub(crate) max_depth: u32,
    /// Alias references in the file.
    pub(crate) max_aliases: u64,
    /// Documents in the file.
    pub(crate) max_documents: u64,
    /// Events replayed by aliases in one document.
    pub(crate) max_replayed: u64,
    /// Distinct anchors in the file.
    pub(crate) max_anchors: u64,
    /// Events kept for anchors (nested anchors count once per enclosing anchor).
    pub(crate) max_recorded: u64,
    /// Bytes of scalar text, counting alias expansions.
    pub(crate) max_scalar_bytes: u64,
    /// Merge keys (`<<`) in the file.
    pub(crate) max_merge_keys: u64,
}

pub(super) const LIMITS: Limits = Limits {
    max_nodes: 4_000_000,
    max_events: 8_000_000,
    max_depth: 64,
    max_aliases: 10_000,
    max_documents: 10_000,
    max_replayed: 1_000_000,
    max_anchors: 50_000,
    max_recorded: 1_000_000,
    max_scalar_bytes: 64 * 1024 * 1024,
    max_merge_keys: 10_000,
};

/// Why the tree could not be built: where, and the message.
#[derive(Debug)]
pub(super) struct Failure {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

pub(super) fn fail<T>(pos: Pos, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure { pos, message: message.into() })
}

fn budget<T>(pos: Pos, what: &str, field: &str, n: u64) -> Result<T, Failure> {
    fail(pos, format!("budget breached: {what} {{ {field}: {n} }}"))
}

/// The size of a subtree, for charging an alias the nodes it expands to.
#[derive(Clone, Copy, Default)]
struct Size {
    nodes: u64,
    events: u64,
    depth: u32,
    scalar_bytes: u64,
}

fn size_of(n: &Node) -> Size {
    match &n.value {
        Value::Seq(items) => items.iter().map(size_of).fold(container(), add_child),
        Value::Map(entries) => entries.iter().flat_map(|(k, v)| [size_of(k), size_of(v)]).fold(container(), add_child),
        Value::Str(s) => Size { nodes: 1, events: 1, depth: 0, scalar_bytes: s.len() as u64 },
        _ => Size { nodes: 1, events: 1, depth: 0, scalar_bytes: 8 },
    }
}

fn container() -> Size {
    Size { nodes: 1, events: 2, depth: 1, scalar_bytes: 0 }
}

fn add_child(acc: Size, c: Size) -> Size {
    Size {
        nodes: acc.nodes + c.nodes,
        events: acc.events + c.events,
        depth: acc.depth.max(c.depth + 1),
        scalar_bytes: acc.scalar_bytes + c.scalar_bytes,
    }
}

/// An anchored node, ready to be copied where an alias uses it.
struct Anchored {
    node: Node,
    size: Size,
}

#[derive(Default)]
struct Counters {
    events: u64,
    nodes: u64,
    scalar_bytes: u64,
    documents: u64,
    aliases: u64,
    anchors: u64,
    merge_keys: u64,
    recorded: u64,
    /// Events replayed by aliases in the current document.
    replayed: u64,
}

struct Builder {
    docs: Vec<Node>,
    stack: Vec<Frame>,
    /// Anchors of the current document, by the parser's anchor id.
    anchors: Vec<Option<Anchored>>,
    /// Anchor ids already counted (ids are unique across the stream).
    defined: Vec<bool>,
    n: Counters,
    last: Pos,
}

fn pos_of(span: &Span) -> Pos {
    Pos { line: span.start.line() as u32, column: span.start.col() as u32 + 1 }
}

/// Parses every document of `text` into trees.
pub(super) fn build(text: &str) -> Result<Vec<Node>, Failure> {
    let mut options = granit_parser::Options::default();
    // As serde-saphyr set the parser up, so that syntax errors read and fall the same.
    options.max_buffered_comment_events = 32;
    let mut b = Builder {
        docs: Vec::new(),
        stack: Vec::new(),
        anchors: Vec::new(),
        defined: Vec::new(),
        n: Counters::default(),
        last: Pos::default(),
    };
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.map_err(scan_failure)?;
        let pos = pos_of(&span);
        b.event(event, pos)?;
    }
    b.finish()
}

fn scan_failure(e: ScanError) -> Failure {
    let m = e.marker();
    let pos = Pos { line: m.line() as u32, column: m.col() as u32 + 1 };
    let message = match e.kind() {
        granit_parser::ErrorKind::UnknownAnchor => "alias references unknown anchor".to_string(),
        _ => e.info(),
    };
    Failure { pos, message }
}

impl Builder {
    fn event(&mut self, event: Event<'_>, pos: Pos) -> Result<(), Failure> {
        if let Some(Frame::Map(m)) = self.stack.last_mut()
            && matches!(m.slot, Slot::Pending(_))
            && let Slot::Pending(k) = std::mem::replace(&mut m.slot, Slot::Key)
        {
            let value = scalar::resolve(Cow::Owned(k.value), k.style, k.kind).or_else(|e| fail(k.pos.clone(), e))?;
            self.complete(Node { value, pos: k.pos, raw: None }, k.anchor)?;
        }
        self.n.events += 1;
        if self.n.events > LIMITS.max_events {
            return budget(pos, "Events", "events", self.n.events);
        }
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let kind = Self::check_tag(tag.as_deref(), NodeKind::Scalar, &pos)?;
                self.count_node(&pos, value.len() as u64 + tag.as_ref().map_or(0, |t| t.to_string().len() as u64))?;
                self.anchor(anchor, &pos)?;
                if let Some(Frame::Map(m)) = self.stack.last_mut() {
                    match m.slot {
                        Slot::Key if scalar::is_merge_key(&value, style, kind) => return self.merge_key(pos, anchor),
                        // `<<:` with nothing after it merges nothing; any other scalar is refused.
                        Slot::Merge if scalar::is_null(&value, style, kind) => {
                            m.slot = Slot::Key;
                            return Ok(());
                        }
                        Slot::Merge => return fail(pos, MERGE_SHAPE),
                        Slot::Key => {
                            let key = PendingKey { value: value.into_owned(), style, kind, pos, anchor };
                            m.slot = Slot::Pending(Box::new(key));
                            return Ok(());
                        }
                        _ => {}
                    }
                }
                let value = scalar::resolve(value, style, kind).or_else(|m| fail(pos.clone(), m))?;
                self.complete(Node { value, pos, raw: None }, anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                Self::check_tag(tag.as_deref(), NodeKind::Seq, &pos)?;
                self.open(&pos, anchor, tag.as_deref())?;
                let merge = matches!(self.stack.last(), Some(Frame::Map(m)) if matches!(m.slot, Slot::Merge));
                self.stack.push(Frame::Seq { pos, anchor, items: Vec::new(), merge });
                Ok(())
            }
            Event::MappingStart(_, anchor, tag) => {
                Self::check_tag(tag.as_deref(), NodeKind::Map, &pos)?;
                self.open(&pos, anchor, tag.as_deref())?;
                let root = self.stack.is_empty();
                let m = MapFrame {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    slot: Slot::Key,
                    merges: Vec::new(),
                    index: None,
                    root,
                };
                self.stack.push(Frame::Map(Box::new(m)));
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(pos),
            Event::Alias(id) => self.alias(id, pos),
            Event::DocumentStart(..) => {
                self.n.documents += 1;
                if self.n.documents > LIMITS.max_documents {
                    return budget(pos, "Documents", "documents", self.n.documents);
                }
                self.new_document(pos);
                Ok(())
            }
            Event::DocumentEnd => {
                self.new_document(pos);
                Ok(())
            }
            _ => {
                self.last = pos;
                Ok(())
            }
        }
    }

    /// Anchors are per document.
    fn new_document(&mut self, pos: Pos) {
        self.anchors.clear();
        self.n.replayed = 0;
        self.last = pos;
    }

    fn check_tag(tag: Option<&Tag>, node: NodeKind, pos: &Pos) -> Result<TagKind, Failure> {
        let kind = TagKind::of(tag);
        match kind.requires() {
            Some(required) if required != node => {
                let spelling = tag.map(Tag::original).unwrap_or_default();
                if kind == TagKind::Include {
                    return fail(pos.clone(), "!include currently only supports the scalar form: !include <path>");
                }
                fail(pos.clone(), format!("unsupported tag `{spelling}`"))
            }
            _ => Ok(kind),
        }
    }

    fn count_node(&mut self, pos: &Pos, scalar_bytes: u64) -> Result<(), Failure> {
        self.last = pos.clone();
        self.n.nodes += 1;
        if self.n.nodes > LIMITS.max_nodes {
            return budget(pos.clone(), "Nodes", "nodes", self.n.nodes);
        }
        self.n.scalar_bytes += scalar_bytes;
        if self.n.scalar_bytes > LIMITS.max_scalar_bytes {
            return budget(pos.clone(), "ScalarBytes", "total_scalar_bytes", self.n.scalar_bytes);
        }
        Ok(())
    }

    /// Counts a distinct anchor.
    fn anchor(&mut self, id: usize, pos: &Pos) -> Result<(), Failure> {
        if id == 0 {
            return Ok(());
        }
        if self.defined.len() <= id {
            self.defined.resize(id + 1, false);
        }
        if !std::mem::replace(&mut self.defined[id], true) {
            self.n.anchors += 1;
            if self.n.anchors > LIMITS.max_anchors {
                return budget(pos.clone(), "Anchors", "anchors", self.n.anchors);
            }
        }
        Ok(())
    }

    fn open(&mut self, pos: &Pos, anchor: usize, tag: Option<&Tag>) -> Result<(), Failure> {
        self.count_node(pos, tag.map_or(0, |t| t.to_string().len() as u64))?;
        let depth = self.stack.len() as u32 + 1;
        if depth > LIMITS.max_depth {
            return budget(pos.clone(), "Depth", "depth", u64::from(depth));
        }
        self.anchor(anchor, pos)
    }

    fn close(&mut self, pos: Pos) -> Result<(), Failure> {
        self.last = pos.clone();
        let (pos, anchor, node) = match self.stack.pop() {
            Some(Frame::Seq { pos, anchor, items, .. }) => {
                let node = Node { value: Value::Seq(items), pos: pos.clone(), raw: None };
                (pos, anchor, node)
            }
            Some(Frame::Map(m)) => {
                if !matches!(m.slot, Slot::Key) {
                    return fail(pos, "unexpected mapping end");
                }
                m.finish()?
            }
            None => return fail(pos, "unexpected end of a collection"),
        };
        let _ = pos;
        self.complete(node, anchor)
    }

    fn merge_key(&mut self, pos: Pos, anchor: usize) -> Result<(), Failure> {
        self.n.merge_keys += 1;
        if self.n.merge_keys > LIMITS.max_merge_keys {
            return budget(pos, "MergeKeys", "merge_keys", self.n.merge_keys);
        }
        if anchor != 0 {
            self.remember(anchor, Node { value: Value::Str("<<".into()), pos, raw: None })?;
        }
        if let Some(Frame::Map(m)) = self.stack.last_mut() {
            m.slot = Slot::Merge;
        }
        Ok(())
    }

    /// A node is complete: remember it for aliases when anchored, and hand it to its parent.
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), Failure> {
        if anchor != 0 {
            self.remember(anchor, node.clone())?;
        }
        self.attach(node)
    }

    /// Keeps an anchored node for the aliases that use it.
    fn remember(&mut self, anchor: usize, node: Node) -> Result<(), Failure> {
        let size = size_of(&node);
        self.n.recorded += size.events;
        if self.n.recorded > LIMITS.max_recorded {
            return budget(node.pos, "RecordedAnchorEvents", "recorded_anchor_events", self.n.recorded);
        }
        if self.anchors.len() <= anchor {
            self.anchors.resize_with(anchor + 1, || None);
        }
        self.anchors[anchor] = Some(Anchored { node, size });
        Ok(())
    }

    fn attach(&mut self, node: Node) -> Result<(), Failure> {
        match self.stack.last_mut() {
            None => {
                if node.value != Value::Null {
                    self.docs.push(node);
                }
                Ok(())
            }
            Some(Frame::Seq { items, merge, .. }) => {
                if *merge && !matches!(node.value, Value::Map(_)) {
                    return fail(node.pos, MERGE_SHAPE);
                }
                items.push(node);
                Ok(())
            }
            Some(Frame::Map(m)) => match std::mem::replace(&mut m.slot, Slot::Key) {
                Slot::Key => {
                    m.slot = Slot::Value(node);
                    Ok(())
                }
                Slot::Value(k) => m.push(k, node),
                Slot::Merge => merge_value(m, node),
                Slot::Pending(_) => fail(node.pos, "unexpected key"),
            },
        }
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), Failure> {
        self.last = pos.clone();
        self.n.aliases += 1;
        if self.n.aliases > LIMITS.max_aliases {
            return budget(pos, "Aliases", "aliases", self.n.aliases);
        }
        let open = self.stack.iter().any(|f| match f {
            Frame::Seq { anchor, .. } => *anchor == id,
            Frame::Map(m) => m.anchor == id,
        });
        if open {
            return fail(pos, "recursive references require weak recursion types");
        }
        let Some(Some(a)) = self.anchors.get(id) else {
            return fail(pos, "alias references unknown anchor");
        };
        let size = a.size;
        let merged = match self.stack.last() {
            Some(Frame::Seq { merge: true, .. }) => !matches!(a.node.value, Value::Map(_)),
            _ => false,
        };
        if merged {
            // A list item merged through an alias must be a mapping; refused where it is defined.
            return fail(a.node.pos.clone(), MERGE_SHAPE);
        }
        if let Some(Frame::Map(m)) = self.stack.last_mut()
            && matches!(m.slot, Slot::Merge)
            && size.depth == 0
        {
            // A scalar merged through an alias: nothing when null, else refused where it is defined.
            if a.node.value == Value::Null {
                m.slot = Slot::Key;
                return Ok(());
            }
            return fail(a.node.pos.clone(), MERGE_SHAPE);
        }
        self.charge(size, &pos)?;
        let Some(Some(a)) = self.anchors.get(id) else {
            return fail(pos, "alias references unknown anchor");
        };
        let mut node = a.node.clone();
        place(&mut node, &pos);
        self.attach(node)
    }

    /// Charges an alias for everything it expands to.
    fn charge(&mut self, size: Size, pos: &Pos) -> Result<(), Failure> {
        self.n.replayed += size.events;
        if self.n.replayed > LIMITS.max_replayed {
            return fail(
                pos.clone(),
                format!(
                    "alias replay limit exceeded: total_replayed_events={} > {}",
                    self.n.replayed, LIMITS.max_replayed
                ),
            );
        }
        self.n.events += size.events;
        if self.n.events > LIMITS.max_events {
            return budget(pos.clone(), "Events", "events", self.n.events);
        }
        self.n.nodes += size.nodes;
        if self.n.nodes > LIMITS.max_nodes {
            return budget(pos.clone(), "Nodes", "nodes", self.n.nodes);
        }
        self.n.scalar_bytes += size.scalar_bytes;
        if self.n.scalar_bytes > LIMITS.max_scalar_bytes {
            return budget(pos.clone(), "ScalarBytes", "total_scalar_bytes", self.n.scalar_bytes);
        }
        let depth = self.stack.len() as u32 + size.depth;
        if depth > LIMITS.max_depth {
            return budget(pos.clone(), "Depth", "depth", u64::from(depth));
        }
        Ok(())
    }

    /// End of input: the alias/anchor ratio check (many aliases of few anchors is a bomb's shape).
    fn finish(self) -> Result<Vec<Node>, Failure> {
        let (aliases, anchors) = (self.n.aliases, self.n.anchors);
        if aliases >= 100 && (anchors == 0 || aliases > 10 * anchors) {
            return fail(
                self.last,
                format!("budget breached: AliasAnchorRatio {{ aliases: {aliases}, anchors: {anchors} }}"),
            );
        }
        Ok(self.docs)
    }
}
