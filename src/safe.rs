//! Output safety: text that came from a manifest, a CSV file or the server is untrusted, and must
//! never reach a terminal, a log or a pull-request comment able to act as anything but text.
//!
//! - [`line`] and [`text`] make any string safe for a terminal or a log: C0 and C1 control
//!   characters (escape sequences, carriage returns, bells), DEL, bidirectional overrides and
//!   isolates, zero-width characters and line/paragraph separators are shown visibly as `<U+XXXX>`
//!   (with `\n` and `\t` for newline and tab in [`line`]). Printable text, accents and emoji pass
//!   unchanged, so a reviewer reads the message as its recipient will.
//! - [`workflow_safe`] neutralises lines that GitHub Actions would read as workflow commands
//!   (`::set-output …`, `##[…]`) in human output when running inside Actions.
//! - [`md`] and [`html`] escape for the two contexts of the pull-request comment (Markdown text and
//!   raw HTML such as `<summary>`), and both neutralise what GitHub would turn into a notification
//!   or a link: `@user` and `@org/team` mentions, `#123` and `GH-123` references, commit SHAs and
//!   bare URLs. [`fenced`]-style code blocks only need [`text`] and a fence the content cannot close.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must never reach an output raw.
pub(crate) fn is_unsafe(c: char) -> bool {
    // Every format character (Unicode category Cf), variation selector, invisible filler and
    // control character: each can hide text, reorder it or make two strings look identical.
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{ad}' | '\u{34f}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{890}' | '\u{891}'
        | '\u{8e2}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}' | '\u{180b}'..='\u{180f}'
        | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{2800}' | '\u{3164}'
        | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}' | '\u{fff0}'..='\u{fffb}'
        | '\u{110bd}' | '\u{110cd}' | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e007f}' | '\u{e0100}'..='\u{e01ef}')
}

fn visible(out: &mut String, c: char, keep_newlines: bool) {
    match c {
        '\n' if keep_newlines => out.push('\n'),
        '\t' if keep_newlines => out.push('\t'),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        c => {
            let _ = write!(out, "<U+{:04X}>", c as u32);
        }
    }
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe(c) {
            visible(&mut out, c, keep_newlines);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of untrusted text: every unsafe character shown visibly, newlines and tabs included.
pub(crate) fn line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Untrusted text of several lines: line breaks (`\n`) and tabs kept, everything else unsafe shown
/// visibly (a `\r` too, so that nothing overwrites a line already printed).
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// JSON text as it may be printed: every unsafe character (which can only be inside a string: the
/// encoder escapes C0 controls itself, and a raw newline is layout) written as a `\uXXXX` escape,
/// a surrogate pair beyond U+FFFF. The same JSON value, and nothing a terminal would act on.
pub(crate) fn json(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c != '\n' && is_unsafe(c);
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if bad(c) {
            for unit in c.encode_utf16(&mut [0u16; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether this process runs inside GitHub Actions, where stdout and stderr are scanned for
/// workflow commands: resolved once by the CLI from the environment ([`set_github_actions`]);
/// false until then.
static GITHUB_ACTIONS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Sets, once at start-up, whether this process runs inside GitHub Actions (the CLI's settings).
pub(crate) fn set_github_actions(yes: bool) {
    let _ = GITHUB_ACTIONS.set(yes);
}

pub(crate) fn in_github_actions() -> bool {
    GITHUB_ACTIONS.get().copied().unwrap_or(false)
}

/// Lines that GitHub Actions would take as workflow commands get a visible prefix (`::cmd::` at
/// the start of a line), and the older `##[cmd]` form, which the runner finds anywhere in a line,
/// is broken with a word joiner; so untrusted text cannot set outputs, mask values, forge
/// annotations or stop command processing. Applied to human output when running inside Actions.
pub(crate) fn workflow_safe(s: &str) -> Cow<'_, str> {
    let is_command = |l: &str| l.trim_start().starts_with("::");
    if !s.lines().any(is_command) && !s.contains("##[") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for l in s.split_inclusive('\n') {
        if is_command(l) {
            out.push_str("» ");
        }
        out.push_str(&l.replace("##[", "#\u{2060}#["));
    }
    Cow::Owned(out)
}

/// Human output as it may be printed here: workflow-command lines neutralised inside Actions.
pub(crate) fn for_output(s: &str) -> Cow<'_, str> {
    if in_github_actions() { workflow_safe(s) } else { Cow::Borrowed(s) }
}

/// The word joiner GitHub's mention and reference detection stops at; invisible when rendered.
const JOIN: char = '\u{2060}';

/// Inserts a word joiner where GitHub would otherwise create a mention, an issue or commit
/// reference, or an autolink. The text reads the same; nothing links or notifies.
fn defuse(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut hex_run = 0usize;
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let prev = if i == 0 { ' ' } else { chars[i - 1] };
        out.push(c);
        hex_run = if c.is_ascii_hexdigit() { hex_run + 1 } else { 0 };
        let split = match c {
            // @user, @org/team; #123 (only at a word start: `key#1` links nothing and must stay
            // copyable); GH-123 is caught by '-' followed by a digit after GH.
            '@' => next.is_ascii_alphanumeric() || next == '_',
            '#' => !prev.is_alphanumeric() && (next.is_ascii_alphanumeric() || next == '_'),
            // scheme://  and  www.
            ':' => next == '/',
            '.' => i >= 3 && chars[i - 3..i].iter().collect::<String>().eq_ignore_ascii_case("www"),
            '-' => i >= 2 && chars[i - 2..i].iter().collect::<String>().eq_ignore_ascii_case("gh"),
            // A run of hex digits long enough to be a commit SHA is broken every 6 characters.
            _ => hex_run >= 6 && next.is_ascii_hexdigit(),
        };
        if split {
            out.push(JOIN);
            if hex_run >= 6 {
                hex_run = 0;
            }
        }
    }
    out
}

/// Untrusted text for Markdown (a table cell or a paragraph): markup characters escaped, line
/// breaks flattened, unsafe characters visible, mentions and autolinks neutralised.
pub(crate) fn md(s: &str) -> String {
    escaped(s, |c| match c {
        '|' => Some("&#124;"),
        '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.' | '!' | '~' | '"' | '\''
        | ':' | '=' | '$' => Some("\\"),
        _ => None,
    })
}

/// Untrusted text inside raw HTML (`<summary>`, `<code>`): HTML-escaped, no Markdown escapes (they
/// would show as literal backslashes there), unsafe characters visible, mentions and autolinks
/// neutralised.
pub(crate) fn html(s: &str) -> String {
    escaped(s, |c| match c {
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    })
}

/// One line of untrusted text, defused, with `<`, `>` and `&` as HTML entities and each other
/// character `extra` names replaced by its entity, or (for `"\\"`) prefixed with a backslash.
fn escaped(s: &str, extra: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in defuse(&line(s)).chars() {
        match (c, extra(c)) {
            ('<', _) => out.push_str("&lt;"),
            ('>', _) => out.push_str("&gt;"),
            ('&', _) => out.push_str("&amp;"),
            (c, Some("\\")) => {
                out.push('\\');
                out.push(c);
            }
            (_, Some(entity)) => out.push_str(entity),
            (c, None) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_is_made_visible() {
        assert_eq!(line("a\x1b[2Jb\rc\nd\te"), "a<U+001B>[2Jb<U+000D>c\\nd\\te");
        assert_eq!(text("a\nb\r\n\u{202e}x\u{200b}"), "a\nb<U+000D>\n<U+202E>x<U+200B>");
        assert_eq!(line("\u{9b}31m"), "<U+009B>31m");
        assert!(matches!(line("Grüße, 日本 🎉"), Cow::Borrowed(_)));
        for hidden in ['\u{e0101}', '\u{1d173}', '\u{13430}', '\u{1bca0}', '\u{2066}', '\u{feff}'] {
            assert!(line(&format!("x{hidden}@y.com")).contains("<U+"), "{hidden:?}");
        }
    }

    #[test]
    fn json_keeps_its_value_and_shows_nothing_raw() {
        let v = serde_json::json!({"a": "x\u{1b}[2J\u{9b}\u{202e}\u{e0101}\n\u{7f}é"});
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        let safe = json(&text);
        assert!(!safe.chars().any(|c| c != '\n' && is_unsafe(c)), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).ok(), Some(v));
        assert!(matches!(json("{\n  \"a\": \"é\"\n}"), Cow::Borrowed(_)));
    }

    #[test]
    fn workflow_commands_are_neutralised() {
        assert_eq!(
            workflow_safe("ok\n  ::set-output name=x::1\nnotes ##[error]x\n"),
            "ok\n»   ::set-output name=x::1\nnotes #\u{2060}#[error]x\n"
        );
        assert!(matches!(workflow_safe("a :: b\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn mentions_references_and_links_are_defused() {
        let j = JOIN;
        assert_eq!(html("@org/team #12 GH-3"), format!("@{j}org/team #{j}12 GH-{j}3"));
        assert_eq!(html("see https://x.y and www.x.y"), format!("see https:{j}//x.y and www.{j}x.y"));
        assert_eq!(html("abcdef0123456789"), format!("abcdef{j}012345{j}6789"));
        assert_eq!(html("a@b.c <i>'x'</i>"), format!("a@{j}b.c &lt;i&gt;&#39;x&#39;&lt;/i&gt;"));
        assert_eq!(html("hr/benefits-enrolment-2027"), "hr/benefits-enrolment-2027");
        assert_eq!(html("--retry-unknown=k#1"), "--retry-unknown=k#1");
        assert_eq!(md("a|b *c*"), "a&#124;b \\*c\\*");
    }
}
