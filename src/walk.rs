//! Typed access to a parsed YAML tree that records diagnostics instead of failing fast. Each getter
//! reports what is wrong with the exact position and field path, and returns `None` so the caller
//! keeps going and the user sees every problem of a file in one run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::interp::{self, Env};
use crate::yaml::{Node, Value};

pub(crate) struct Walker<'a> {
    pub(crate) file: PathBuf,
    pub(crate) diags: &'a mut Diagnostics,
    pub(crate) env: &'a dyn Env,
    /// For manifests: the only variables they may expand (`None`: the config, which may use the
    /// environment).
    declared: Option<&'a [String]>,
    /// Variables expanded (name, value), in order of first use; the loader takes them per
    /// notification so the plan can show them.
    pub(crate) used: Vec<(String, String)>,
    /// Bytes that expansion may still add in this file.
    budget: usize,
}

/// The most that variable expansion may add to one file's text, in bytes.
pub(crate) const MAX_EXPANSION_BYTES: usize = 1024 * 1024;

/// What [`Walker::off_or_fields`] found.
pub(crate) enum OffOr<'n> {
    Off,
    /// The mapping: its node, its field path, its fields, and the error count before they were
    /// read (more errors after parsing them: the setting is invalid).
    On {
        node: &'n Node,
        path: String,
        fields: BTreeMap<String, &'n Node>,
        errors: usize,
    },
}

/// Builds a field path such as `identities[3].parameters.refId`.
pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_string() } else { format!("{path}.{field}") }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Levenshtein distance between `a` and `b`, ignoring ASCII case, for "did you mean"
/// suggestions. Allocation-free for names up to 64 characters (longer ones are never suggested).
fn distance(a: &str, b: &str) -> usize {
    const MAX: usize = 64;
    let b: Vec<char> = b.chars().take(MAX + 1).collect();
    if b.len() > MAX || a.chars().nth(MAX).is_some() {
        return usize::MAX;
    }
    let mut prev = [0usize; MAX + 1];
    let mut cur = [0usize; MAX + 1];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(!ca.eq_ignore_ascii_case(cb));
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

pub(crate) fn suggest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    let len = word.chars().count();
    known
        .iter()
        // The distance is at least the difference in length: skip what cannot be within 3.
        .filter(|k| k.chars().count().abs_diff(len) <= 3)
        .map(|k| (distance(word, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

impl<'a> Walker<'a> {
    pub(crate) fn new(file: &Path, diags: &'a mut Diagnostics, env: &'a dyn Env) -> Self {
        Walker { file: file.to_path_buf(), diags, env, declared: None, used: Vec::new(), budget: MAX_EXPANSION_BYTES }
    }

    /// A walker for a manifest: only `declared` variables expand.
    pub(crate) fn for_manifest(
        file: &Path,
        diags: &'a mut Diagnostics,
        env: &'a dyn Env,
        declared: &'a [String],
    ) -> Self {
        Walker { declared: Some(declared), ..Walker::new(file, diags, env) }
    }

    pub(crate) fn error(&mut self, pos: &Pos, field: &str, message: impl Into<String>, help: impl Into<String>) {
        let help = help.into();
        let mut d = Diagnostic::error(&self.file, pos.clone(), field, message);
        if !help.is_empty() {
            d = d.help(help);
        }
        self.diags.push(d);
    }

    /// An error whose source line must not be shown (it may contain a secret).
    pub(crate) fn redacted_error(
        &mut self,
        pos: &Pos,
        field: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let mut d = Diagnostic::error(&self.file, pos.clone(), field, message).help(help);
        d.redact = true;
        self.diags.push(d);
    }

    pub(crate) fn warning(&mut self, pos: &Pos, field: &str, message: impl Into<String>, help: impl Into<String>) {
        let help = help.into();
        let mut d = Diagnostic::warning(&self.file, pos.clone(), field, message);
        if !help.is_empty() {
            d = d.help(help);
        }
        self.diags.push(d);
    }

    /// A mapping with only `known` keys; unknown keys are reported with a suggestion.
    pub(crate) fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&str],
    ) -> Option<BTreeMap<String, &'n Node>> {
        let Value::Map(entries) = &node.value else {
            let what = if path.is_empty() { "the document" } else { path };
            self.error(
                &node.pos,
                path,
                format!("expected a mapping, found {}", node.kind()),
                format!("{what} must be a set of `field: value` lines"),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let name = k.key_text();
            if known.contains(&name.as_str()) {
                out.insert(name, v);
            } else {
                let help = match suggest(&name, known) {
                    Some(s) => format!("did you mean `{s}`? known fields: {}", known.join(", ")),
                    None => format!("known fields: {}", known.join(", ")),
                };
                self.error(&k.pos, &join(path, &name), format!("unknown field `{name}`"), help);
            }
        }
        Some(out)
    }

    /// Field `name` of `f`, when present: the word `off`, or a mapping of `known` fields (a
    /// manifest's setting, or a target default a manifest may turn off). `None` also when it is
    /// neither (reported, with `help`). `prefix` is where `f` is (`""`, or `targets.NAME`).
    pub(crate) fn off_or_fields<'n>(
        &mut self,
        f: &BTreeMap<String, &'n Node>,
        prefix: &str,
        name: &str,
        known: &[&str],
        help: &str,
    ) -> Option<OffOr<'n>> {
        let node: &'n Node = f.get(name)?;
        let path = join(prefix, name);
        if let Value::Str(s) = &node.value
            && s.trim() == "off"
        {
            return Some(OffOr::Off);
        }
        if !matches!(node.value, Value::Map(_)) {
            self.error(&node.pos, &path, format!("expected a mapping or `off`, found {}", node.kind()), help);
            return None;
        }
        let errors = self.diags.errors();
        let fields = self.fields(node, &path, known)?;
        Some(OffOr::On { node, path, fields, errors })
    }

    /// A string scalar, interpolated. Integers are accepted as their decimal text.
    pub(crate) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        let raw = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => {
                if let Some(text) = &node.raw {
                    self.warning(
                        &node.pos,
                        path,
                        format!("`{text}` is read as the number {i}, and {i} is what is used"),
                        format!("quote it to keep it as written: \"{text}\""),
                    );
                }
                i.to_string()
            }
            other => {
                // The source text as written (`1.50`, not `1.5`): a hint never changes the digits.
                let shown = match (other, &node.raw) {
                    (Value::Float(_), Some(text)) => text.to_string(),
                    (Value::Bool(b), _) => b.to_string(),
                    (Value::Float(f), None) => f.to_string(),
                    _ => String::new(),
                };
                let help = if shown.is_empty() {
                    "give a single text value".to_string()
                } else {
                    format!("quote it if you mean text: \"{shown}\"")
                };
                self.error(&node.pos, path, format!("expected a string, found {}", node.kind()), help);
                return None;
            }
        };
        self.interpolate(&raw, &node.pos, path)
    }

    pub(crate) fn interpolate(&mut self, raw: &str, pos: &Pos, path: &str) -> Option<String> {
        let limit = raw.len().saturating_add(self.budget);
        let scope = match self.declared {
            Some(names) => interp::Scope::Declared(names),
            None => interp::Scope::Config,
        };
        match interp::interpolate_bounded(raw, self.env, scope, limit, &mut self.used) {
            Ok(s) => {
                self.budget = self.budget.saturating_sub(s.len().saturating_sub(raw.len()));
                Some(s)
            }
            Err(interp::InterpError::TooLong(_)) => {
                self.budget = 0;
                self.error(
                    pos,
                    path,
                    format!("variable expansion in this file exceeds {MAX_EXPANSION_BYTES} bytes"),
                    "use shorter variable values or fewer references",
                );
                None
            }
            Err(e) => {
                let help = e.help();
                self.error(pos, path, e.to_string(), help);
                None
            }
        }
    }

    /// Whether a value that will be sent (a message, a custom message, a parameter) can be: a
    /// NUL is an error at `pos`, another control character a warning (see
    /// [`crate::inputs::check_sendable`]).
    pub(crate) fn sendable(&mut self, pos: &Pos, path: &str, s: &str) -> bool {
        match crate::inputs::check_sendable(s) {
            Ok(None) => true,
            Ok(Some(message)) => {
                self.warning(pos, path, message, crate::inputs::CONTROL_HELP);
                true
            }
            Err(message) => {
                self.error(pos, path, message, crate::inputs::NUL_HELP);
                false
            }
        }
    }

    /// A string that must be one of `allowed`.
    pub(crate) fn one_of(&mut self, node: &Node, path: &str, allowed: &[&str]) -> Option<String> {
        let s = self.string(node, path)?;
        if allowed.contains(&s.as_str()) {
            Some(s)
        } else {
            let help = match suggest(&s, allowed) {
                Some(m) => format!("did you mean `{m}`? allowed: {}", allowed.join(", ")),
                None => format!("allowed: {}", allowed.join(", ")),
            };
            self.error(&node.pos, path, format!("`{s}` is not a valid value"), help);
            None
        }
    }

    pub(crate) fn uint(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        match &node.value {
            Value::Int(i) if *i >= min as i64 && *i as u64 <= max => Some(*i as u64),
            Value::Int(i) => {
                self.error(
                    &node.pos,
                    path,
                    format!("{i} is out of range"),
                    format!("use a whole number from {min} to {max}"),
                );
                None
            }
            _ => {
                self.error(
                    &node.pos,
                    path,
                    format!("expected a number, found {}", node.kind()),
                    format!("use a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    pub(crate) fn seq<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.error(
                    &node.pos,
                    path,
                    format!("expected a list, found {}", node.kind()),
                    "write one `- item` per line",
                );
                None
            }
        }
    }

    /// A string or a list of strings.
    pub(crate) fn strings(&mut self, node: &Node, path: &str) -> Vec<(String, Pos)> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| self.string(n, &index(path, i)).map(|s| (s, n.pos.clone())))
                .collect(),
            _ => self.string(node, path).map(|s| vec![(s, node.pos.clone())]).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_stop_at_distance_three() {
        assert_eq!(distance("chanel", "channel"), 1);
        assert_eq!(distance("CHANNEL", "channel"), 0);
        assert_eq!(suggest("chanel", &["channel", "content"]), Some("channel"));
        assert_eq!(suggest("cxxxnel", &["channel"]), Some("channel"));
        assert_eq!(suggest("cxxxxel", &["channel"]), None);
        assert_eq!(suggest(&"a".repeat(100), &["a"]), None);
    }
}
