//! Pure checks that keep recipients' data from being silently reinterpreted: CSV quoting that the
//! `csv` crate accepts leniently, and the comparison key for near-duplicate recipients.

use crate::manifest::Channel;

/// A quoting problem in CSV text, with its 1-based line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct QuoteError {
    pub(crate) line: u32,
    pub(crate) message: String,
}

/// Checks RFC 4180 quoting, which the `csv` crate reads leniently: a quote opened and never
/// closed swallows every following row into one field (silently, at the end of the file), and a
/// quote closed in the middle of a field means one is missing (the rows in between were folded
/// into the value).
pub(crate) fn check_quotes(text: &str) -> Result<(), QuoteError> {
    let bytes = text.as_bytes();
    let (mut line, mut open_line) = (1u32, 0u32);
    let (mut in_quotes, mut field_start) = (false, true);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'"' if bytes.get(i + 1) == Some(&b'"') => i += 1,
                b'"' => {
                    in_quotes = false;
                    if !matches!(bytes.get(i + 1), None | Some(b',' | b'\r' | b'\n')) {
                        return Err(QuoteError {
                            line,
                            message: format!(
                                "the quoted field opened on line {open_line} closes here in the middle of a field: a quote is missing, and the lines in between were read as one value"
                            ),
                        });
                    }
                }
                b'\n' => line += 1,
                _ => {}
            }
        } else {
            match b {
                b'"' if field_start => {
                    in_quotes = true;
                    open_line = line;
                }
                b',' => {
                    field_start = true;
                    i += 1;
                    continue;
                }
                b'\n' => {
                    line += 1;
                    field_start = true;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            field_start = false;
        }
        i += 1;
    }
    if in_quotes {
        return Err(QuoteError {
            line: open_line,
            message:
                "a quoted field opened here is never closed: every following row would be read as part of this value"
                    .into(),
        });
    }
    Ok(())
}

/// Whether `c` is a control character in a message, parameter or custom message that is worth
/// a word: every C0 control but tab, line feed and carriage return, DEL, and the C1 controls
/// (U+0080 to U+009F, usually text decoded with the wrong encoding). Tab and line breaks are text.
pub(crate) fn is_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Control characters in text that is sent. NUL cannot be sent: PostgreSQL cannot store it (a
/// state there would fail mid-apply) and no chat client shows it, so it is an error (`Err`). Any
/// other control character can be sent, escaped in JSON, and is shown visibly in every output of
/// this tool; recipients' apps show it as nothing or as a box, so it is a warning (`Ok(Some)`).
/// Each message names the character and where it is in the value (1-based character, and line
/// when the value has several).
pub(crate) fn check_sendable(s: &str) -> Result<Option<String>, String> {
    let Some((i, c)) =
        s.chars().enumerate().find(|(_, c)| *c == '\0').or_else(|| s.chars().enumerate().find(|(_, c)| is_control(*c)))
    else {
        return Ok(None);
    };
    let name = match c {
        '\0' => " (NUL)",
        '\u{1b}' => " (ESC)",
        '\u{7}' => " (BEL)",
        '\u{7f}' => " (DEL)",
        _ => "",
    };
    let before: String = s.chars().take(i).collect();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    let place = if s.contains('\n') {
        format!("line {line}, character {column} of the value")
    } else {
        format!("character {column} of the value")
    };
    let what = format!("the control character U+{:04X}{name} at {place}", c as u32);
    if c == '\0' {
        Err(format!("{what} cannot be sent"))
    } else {
        Ok(Some(format!("{what} is sent as it is, and recipients' apps show it as nothing or as a box")))
    }
}

/// The control character [`check_sendable`] reports in `s`, for finding its place in a file.
pub(crate) fn reported_control(s: &str) -> Option<char> {
    if s.contains('\0') { Some('\0') } else { s.chars().find(|c| is_control(*c)) }
}

/// What to do about a NUL in text that is sent.
pub(crate) const NUL_HELP: &str = "remove it (in YAML a double-quoted \"\\0\" or \"\\x00\" writes one)";
/// What to do about another control character in text that is sent.
pub(crate) const CONTROL_HELP: &str = "remove it unless it is meant: of the control characters only tab and line breaks read as text (in YAML a double-quoted \"\\a\" or \"\\e\" writes one)";

/// The key under which two identities reach the same person: e-mail addresses compared without
/// case (`A@Example.com` is `a@example.com`), phone numbers by their digits (`+91 98765 43210` is
/// `919876543210`). Other identities (Google Chat spaces, user ids) are compared as written.
pub(crate) fn identity_key(ch: Channel, id: &str) -> String {
    if ch == Channel::Whatsapp {
        let digits: String = id.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            return digits;
        }
    }
    if id.contains('@') { id.to_lowercase() } else { id.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes() {
        assert!(check_quotes("a,b\n\"x, y\",\"he said \"\"hi\"\"\"\n\"multi\nline\",z\n").is_ok());
        assert!(check_quotes("a,b\nx,b\"c\n").is_ok(), "a quote inside an unquoted field is literal");
        let e = check_quotes("email,name\na@x.com,\"Ann\nb@x.com,Bob\n");
        assert_eq!(e.map_err(|e| e.line), Err(2));
        let e = check_quotes("email,name\na@x.com,\"Ann\nb@x.com,\"Bob\"\n");
        assert_eq!(e.map_err(|e| e.line), Err(3));
    }

    #[test]
    fn control_characters_in_sent_text() {
        for ok in ["plain", "tab\there", "two\nlines\r\n", "Grüße 🎉", "\u{a0}non-breaking", "\u{200b}"] {
            assert_eq!(check_sendable(ok), Ok(None), "{ok:?}");
        }
        let refused = |m: &str| Err(format!("the control character {m} cannot be sent"));
        let warned = |m: &str| {
            Ok(Some(format!(
                "the control character {m} is sent as it is, and recipients' apps show it as nothing or as a box"
            )))
        };
        for (text, expected) in [
            ("a\0b", refused("U+0000 (NUL) at character 2 of the value")),
            // NUL first, wherever it is.
            ("\u{7}a\0", refused("U+0000 (NUL) at character 3 of the value")),
            ("x\ny\u{7}", warned("U+0007 (BEL) at line 2, character 2 of the value")),
            ("\u{1b}[31m", warned("U+001B (ESC) at character 1 of the value")),
            ("é\u{85}", warned("U+0085 at character 2 of the value")),
            ("\u{7f}", warned("U+007F (DEL) at character 1 of the value")),
            ("\u{b}\u{c}", warned("U+000B at character 1 of the value")),
        ] {
            assert_eq!(check_sendable(text), expected, "{text:?}");
        }
        // Exactly the C0 and C1 controls and DEL, but tab, line feed and carriage return.
        for c in (0..=0x0010_ffff).filter_map(char::from_u32) {
            let flagged = check_sendable(&c.to_string()) != Ok(None);
            assert_eq!(
                flagged,
                ('\0'..='\u{1f}').contains(&c) && !"\t\n\r".contains(c) || ('\u{7f}'..='\u{9f}').contains(&c),
                "{c:?}"
            );
        }
    }

    #[test]
    fn identity_keys() {
        assert_eq!(identity_key(Channel::Ivr, "A@Example.com"), identity_key(Channel::Ivr, "a@example.com"));
        assert_eq!(identity_key(Channel::Whatsapp, "+91 98765-43210"), "919876543210");
        assert_ne!(identity_key(Channel::Hangouts, "spaces/AAA"), identity_key(Channel::Hangouts, "spaces/aaa"));
    }
}
