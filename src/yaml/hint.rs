//! What to do about a YAML syntax error, told by its cause. The parser's messages name the symptom
//! ("did not find expected key") at the place it noticed it; a hint must name the cause, because a
//! wrong hint is worse than none (quoting a `{…}` that was a real mapping turns it into text).
//!
//! Causes, checked in this order:
//! - a **tab** in the indentation (YAML indents with spaces only): the tab's line and column;
//! - an **indentation** mistake: a line indented deeper than the line above it although that line
//!   opens nothing, or to a column no line above it could be at; the column(s) it should start at;
//! - a plain value that **starts with `{`** and fails to parse as the flow mapping YAML reads it
//!   as, the error inside that value: quote it (`value: {name}, your order` → `"{name}, your order"`).
//!
//! Anything else gets no hint. Pure: the source text, the error's position and message in, the
//! hint out.

use crate::diag::Pos;

/// Parser messages about block structure, where indentation is the usual cause.
const BLOCK_STRUCTURE: [&str; 5] = [
    "mapping values are not allowed in this context",
    "did not find expected key",
    "did not find expected '-' indicator",
    "block sequence entries are not allowed in this context",
    "could not find expected ':'",
];

/// The hint for a parse error at `pos` with `message` in `text`, if its cause is known.
pub(super) fn hint(text: &str, pos: &Pos, message: &str) -> Option<String> {
    if pos.line == 0 {
        return None;
    }
    // Only the lines up to just after the error are looked at.
    let lines: Vec<&str> = text.lines().take(pos.line as usize + 1).collect();
    let at = pos.line as usize - 1;
    let line = lines.get(at)?;
    if let Some(h) = tab(&lines, at, message) {
        return Some(h);
    }
    if BLOCK_STRUCTURE.iter().any(|m| message.contains(m))
        && let Some(h) = indentation(&lines, at)
    {
        return Some(h);
    }
    brace(line, pos.column as usize)
}

/// The width of a line's indentation (spaces), and whether a tab is in it (its 0-based column).
fn indent(line: &str) -> (usize, Option<usize>) {
    let lead = line.len() - line.trim_start_matches([' ', '\t']).len();
    (line.len() - line.trim_start_matches(' ').len(), line[..lead].find('\t'))
}

/// A tab in the indentation of the error's line (or the next, where the parser may notice it
/// first, or the one before); with a message about a tab, a tab anywhere on the line.
fn tab(lines: &[&str], at: usize, message: &str) -> Option<String> {
    let about_tab = message.contains("tab");
    let found = [Some(at), at.checked_add(1), at.checked_sub(1)]
        .into_iter()
        .flatten()
        .find_map(|i| lines.get(i).and_then(|l| indent(l).1).map(|c| (i, c)))
        .or_else(|| if about_tab { lines[at].find('\t').map(|c| (at, c)) } else { None })?;
    let (i, byte) = found;
    let column = lines[i][..byte].chars().count() + 1;
    Some(format!("YAML indentation uses spaces; replace the tab at {}:{column} with spaces", i + 1))
}

/// Whether a line holds nothing for YAML (blank, or a comment).
fn is_blank(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// Whether a line opens a nested block on the lines below it (`key:`, `-`, `key: |`, `- >-`).
fn opens_block(line: &str) -> bool {
    let t = line.split(" #").next().unwrap_or(line).trim();
    let last = t.rsplit(' ').next().unwrap_or(t);
    let block_scalar = last.starts_with(['|', '>']) && last[1..].chars().all(|c| matches!(c, '+' | '-' | '1'..='9'));
    t.ends_with(':') || t == "-" || block_scalar
}

/// The columns (0-based) a line below `lines[..at]` may start at: the indentation of each line
/// of the chain of parents above it (each less indented than the one after it), and for a list
/// item (`- key: x`) also the column of its content.
fn levels(lines: &[&str], at: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut bound = usize::MAX;
    for i in (0..at).rev() {
        let l = lines[i];
        if is_blank(l) || l.starts_with("---") || l.starts_with("...") {
            continue;
        }
        let (n, _) = indent(l);
        if n < bound {
            let rest = &l[n..];
            if let Some(item) = rest.strip_prefix("- ") {
                // `- key: x`: the key's column is a level too (`  key2:` continues the item).
                let content = n + 2 + (item.len() - item.trim_start().len());
                if content < bound && !item.trim().is_empty() {
                    out.push((content, i));
                }
            }
            out.push((n, i));
            bound = n;
            if n == 0 {
                break;
            }
        }
    }
    // Deepest first; of two lines at one column, the nearer is named.
    out.sort_unstable_by_key(|l| (std::cmp::Reverse(l.0), std::cmp::Reverse(l.1)));
    out.dedup_by_key(|l| l.0);
    out
}

/// An indentation mistake on the error's line: the column(s) it should start at.
fn indentation(lines: &[&str], at: usize) -> Option<String> {
    let line = lines[at];
    if is_blank(line) {
        return None;
    }
    let (n, _) = indent(line);
    let above = (0..at).rev().find(|&i| !is_blank(lines[i]) && !lines[i].starts_with("---"))?;
    let (p, _) = indent(lines[above]);
    let no = at + 1;
    if n > p && !opens_block(lines[above]) {
        let prev = above + 1;
        return Some(format!(
            "indentation: line {no} is indented more than line {prev}, which opens no nested block: start it at column {} like line {prev}",
            p + 1
        ));
    }
    let levels = levels(lines, at);
    if n > p || levels.iter().any(|&(c, _)| c == n) {
        return None;
    }
    let deeper = levels.iter().rev().find(|&&(c, _)| c > n);
    let shallower = levels.iter().find(|&&(c, _)| c < n);
    let column_of = |&(c, i): &(usize, usize)| format!("column {} like line {}", c + 1, i + 1);
    // A list item (`- x`) most likely belongs with the list items: that level is named first.
    let is_item = |i: usize| {
        let t = lines[i].trim_start();
        t.starts_with("- ") || t == "-"
    };
    let item_level = |&(c, i): &(usize, usize)| is_item(i) && indent(lines[i]).0 == c;
    let expected = match (deeper, shallower) {
        (Some(d), Some(s)) if item_level(s) == is_item(at) && item_level(d) != is_item(at) => {
            format!("{}, or at {}", column_of(s), column_of(d))
        }
        (Some(d), Some(s)) => format!("{}, or at {}", column_of(d), column_of(s)),
        (Some(one), None) | (None, Some(one)) => column_of(one),
        (None, None) => return None,
    };
    Some(format!(
        "indentation: line {no} starts at column {}, which matches no line above it (YAML nests by indentation): start it at {expected}",
        n + 1
    ))
}

/// A plain value starting with `{` on the error's line, which the error falls inside: YAML read
/// it as a flow mapping, and if it is text it must be quoted.
fn brace(line: &str, column: usize) -> Option<String> {
    let chars: Vec<char> = line.chars().collect();
    let error = column.checked_sub(1)?;
    // The last `{` before the error that starts a value: after `key: `, `- `, `[` or `, `.
    let start = (0..=error.min(chars.len().checked_sub(1)?)).rev().find(|&i| {
        chars[i] == '{' && {
            let before: String = chars[..i].iter().collect();
            let b = before.trim_end();
            (b.ends_with(':') && before.len() > b.len()) || b.ends_with(['[', ',']) || b == "-" || b.ends_with(" -")
        }
    })?;
    // Inside a flow collection (an unclosed `{` or `[` before it) the value ends at the next `,`,
    // `}` or `]` of that collection; in a block it runs to the end of the line.
    let flow = {
        let mut depth = 0i32;
        for &c in &chars[..start] {
            match c {
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                _ => {}
            }
        }
        depth > 0
    };
    let end = if flow {
        let mut depth = 0i32;
        (start..chars.len())
            .find(|&i| {
                match chars[i] {
                    '{' | '[' => depth += 1,
                    '}' | ']' if depth > 0 => depth -= 1,
                    '}' | ']' | ',' if depth == 0 => return true,
                    _ => {}
                }
                false
            })
            .unwrap_or(chars.len())
    } else {
        chars.len()
    };
    if error > end {
        return None;
    }
    let value: String = chars[start..end].iter().collect::<String>().trim_end().to_string();
    let before: String = chars[..start].iter().collect();
    let key = before.trim_end().strip_suffix(':').map(|k| {
        let k = k.trim_start().trim_start_matches("- ");
        k.rsplit(['{', ',', '[']).next().unwrap_or(k).trim()
    });
    let quoted = format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""));
    let fix = match key {
        Some(k) if !k.is_empty() && !k.contains(['"', '\'', '{']) => format!("{k}: {quoted}"),
        _ => quoted,
    };
    Some(format!("unquoted, a value starting with `{{` is read as a YAML mapping; if it is text, quote it: {fix}"))
}

#[cfg(test)]
mod tests {
    use super::super::{parse_documents, parse_documents_full};

    /// Broken YAML of every class, through the real parser: the exact hint (or none).
    #[test]
    fn each_cause_gets_its_hint() {
        let head = "key: k\nchannel: ivr\n";
        let cases: [(&str, &str, Option<&str>); 16] = [
            // Tabs.
            (
                "tab indenting a key",
                "content:\n\ttype: text\n",
                Some("YAML indentation uses spaces; replace the tab at 4:1 with spaces"),
            ),
            (
                "tab after spaces",
                "content:\n  type: text\n \tvalue: hi\n",
                Some("YAML indentation uses spaces; replace the tab at 5:2 with spaces"),
            ),
            (
                "tab before a list item",
                "identities:\n\t- a\n",
                Some("YAML indentation uses spaces; replace the tab at 4:1 with spaces"),
            ),
            (
                "tab noticed a line early",
                "content:\n  type: text\n\tvalue: hi\n",
                Some("YAML indentation uses spaces; replace the tab at 5:1 with spaces"),
            ),
            // Indentation.
            (
                "key indented too far",
                "content:\n  type: text\n   value: hi\n",
                Some(
                    "indentation: line 5 is indented more than line 4, which opens no nested block: start it at column 3 like line 4",
                ),
            ),
            (
                "top-level key indented",
                " content: x\n",
                Some(
                    "indentation: line 3 is indented more than line 2, which opens no nested block: start it at column 1 like line 2",
                ),
            ),
            (
                "key indented too little",
                "content:\n  type: text\n value: hi\n",
                Some(
                    "indentation: line 5 starts at column 2, which matches no line above it (YAML nests by indentation): start it at column 3 like line 4, or at column 1 like line 3",
                ),
            ),
            (
                "after a deeper block",
                "content:\n    type: text\n  value: hi\n",
                Some(
                    "indentation: line 5 starts at column 3, which matches no line above it (YAML nests by indentation): start it at column 5 like line 4, or at column 1 like line 3",
                ),
            ),
            (
                "list item too far, after a flow mapping",
                "identities:\n  - email: a@x\n    parameters: {name: Ann}\n   - email: b@x\n",
                Some(
                    "indentation: line 6 starts at column 4, which matches no line above it (YAML nests by indentation): start it at column 3 like line 4, or at column 5 like line 5",
                ),
            ),
            (
                "list item too little, after a flow mapping",
                "identities:\n  - email: a@x\n    parameters: {name: Ann}\n - email: b@x\n",
                Some(
                    "indentation: line 6 starts at column 2, which matches no line above it (YAML nests by indentation): start it at column 3 like line 4, or at column 1 like line 3",
                ),
            ),
            (
                "key under a flow mapping",
                "identities:\n  - email: a@x\n    parameters: {name: Ann}\n      name: Bo\n",
                Some(
                    "indentation: line 6 is indented more than line 5, which opens no nested block: start it at column 5 like line 5",
                ),
            ),
            // A value starting with `{`.
            (
                "text after a placeholder",
                "content:\n  type: text\n  value: {name}, your order\n",
                Some(
                    "unquoted, a value starting with `{` is read as a YAML mapping; if it is text, quote it: value: \"{name}, your order\"",
                ),
            ),
            (
                "unclosed",
                "content:\n  value: {name\n",
                Some(
                    "unquoted, a value starting with `{` is read as a YAML mapping; if it is text, quote it: value: \"{name\"",
                ),
            ),
            (
                "inside a flow mapping",
                "content: {type: text, value: {name} hi}\n",
                Some(
                    "unquoted, a value starting with `{` is read as a YAML mapping; if it is text, quote it: value: \"{name} hi\"",
                ),
            ),
            // Neither: no hint rather than a wrong one.
            ("unclosed list", "identities: [a, b\n", None),
            ("mapping where a list goes on", "identities:\n  - a\n  b: 1\n", None),
        ];
        for (name, body, expected) in cases {
            let text = format!("{head}{body}");
            let full = parse_documents_full(&text).err().map(|e| e.help);
            assert_eq!(full, Some(expected.map(String::from)), "{name}:\n{text}");
            let fast = parse_documents(&text).err().map(|e| e.help);
            assert_eq!(fast, full, "{name}: the fast path steps aside to the same error");
        }
    }
}
