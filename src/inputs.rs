//! Pure checks that keep recipients' data from being silently reinterpreted: CSV quoting that the
//! `csv` crate accepts leniently (checked as the file streams by), control characters in text
//! that is sent, and the comparison key for near-duplicate recipients.

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
/// into the value). Also bounds a row (a quote never closed would otherwise make one row of the
/// rest of the file). Fed the file in chunks of any size; [`CsvScan::finish`] at its end.
#[derive(Debug)]
pub(crate) struct CsvScan {
    /// Most bytes in one row (quoted line breaks included).
    max_row: u64,
    line: u32,
    open_line: u32,
    in_quotes: bool,
    /// Inside quotes, a `"` was read: the next byte says whether it was `""` or the closing one.
    quote_seen: bool,
    field_start: bool,
    row_line: u32,
    row_bytes: u64,
}

impl CsvScan {
    pub(crate) fn new(max_row: u64) -> CsvScan {
        CsvScan {
            max_row,
            line: 1,
            open_line: 0,
            in_quotes: false,
            quote_seen: false,
            field_start: true,
            row_line: 1,
            row_bytes: 0,
        }
    }

    /// Checks the next bytes of the file; on a problem, how many of `chunk` come before it.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), (usize, QuoteError)> {
        let mut i = 0;
        while i < chunk.len() {
            // Runs of bytes that change nothing but the row's length are skipped in one step.
            if !self.quote_seen {
                let rest = &chunk[i..];
                let plain = if self.in_quotes {
                    rest.iter().position(|&b| b == b'"' || b == b'\n')
                } else {
                    rest.iter().position(|&b| matches!(b, b'"' | b',' | b'\n'))
                };
                let run = plain.unwrap_or(rest.len()) as u64;
                let room = self.max_row - self.row_bytes;
                if run > 0 {
                    self.field_start &= self.in_quotes;
                    // Up to the row's limit; the byte past it is refused below.
                    let step = run.min(room);
                    self.row_bytes += step;
                    i += step as usize;
                    if step == run {
                        continue;
                    }
                }
            }
            self.byte(chunk[i]).map_err(|e| (i, e))?;
            i += 1;
        }
        Ok(())
    }

    /// The line the next byte is on (1-based).
    pub(crate) fn line(&self) -> u32 {
        self.line
    }

    fn byte(&mut self, b: u8) -> Result<(), QuoteError> {
        self.row_bytes += 1;
        if self.row_bytes > self.max_row {
            let message = if self.in_quotes {
                format!(
                    "the row starting on line {} is longer than {} bytes: the quoted field opened on line {} is probably never closed",
                    self.row_line, self.max_row, self.open_line
                )
            } else {
                format!("the row starting on line {} is longer than {} bytes", self.row_line, self.max_row)
            };
            return Err(QuoteError { line: self.row_line, message });
        }
        if self.quote_seen {
            self.quote_seen = false;
            if b == b'"' {
                return Ok(());
            }
            self.in_quotes = false;
            if !matches!(b, b',' | b'\r' | b'\n') {
                return Err(QuoteError {
                    line: self.line,
                    message: format!(
                        "the quoted field opened on line {} closes here in the middle of a field: a quote is missing, and the lines in between were read as one value",
                        self.open_line
                    ),
                });
            }
        }
        if self.in_quotes {
            match b {
                b'"' => self.quote_seen = true,
                b'\n' => self.line += 1,
                _ => {}
            }
            return Ok(());
        }
        match b {
            b'"' if self.field_start => {
                self.in_quotes = true;
                self.open_line = self.line;
                self.field_start = false;
            }
            b',' => self.field_start = true,
            b'\n' => {
                self.line += 1;
                self.field_start = true;
                self.row_line = self.line;
                self.row_bytes = 0;
            }
            _ => self.field_start = false,
        }
        Ok(())
    }

    /// At the end of the file: a quote still open is never closed.
    pub(crate) fn finish(&self) -> Result<(), QuoteError> {
        if self.in_quotes && !self.quote_seen {
            return Err(QuoteError {
                line: self.open_line,
                message:
                    "a quoted field opened here is never closed: every following row would be read as part of this value"
                        .into(),
            });
        }
        Ok(())
    }
}

/// [`CsvScan`] over a whole text (rows unbounded).
#[cfg(test)]
pub(crate) fn check_quotes(text: &str) -> Result<(), QuoteError> {
    let mut scan = CsvScan::new(u64::MAX);
    scan.feed(text.as_bytes()).map_err(|(_, e)| e)?;
    scan.finish()
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

    /// Fed in chunks of every size, the scan finds what it finds on the whole text.
    #[test]
    fn quotes_in_chunks_of_any_size() {
        let samples = [
            "a,b\n\"x, y\",\"he said \"\"hi\"\"\"\n\"multi\nline\",z\n",
            "email,name\na@x.com,\"Ann\nb@x.com,Bob\n",
            "email,name\na@x.com,\"Ann\nb@x.com,\"Bob\"\n",
            "a\n\"\"\"\"",
            "a,\"b\"\"",
        ];
        for text in samples {
            let whole = check_quotes(text);
            for size in 1..=text.len() {
                let mut scan = CsvScan::new(u64::MAX);
                let got = text
                    .as_bytes()
                    .chunks(size)
                    .try_for_each(|c| scan.feed(c).map_err(|(_, e)| e))
                    .and_then(|()| scan.finish());
                assert_eq!(got, whole, "{text:?} in chunks of {size}");
            }
        }
    }

    #[test]
    fn rows_are_bounded() {
        let mut scan = CsvScan::new(10);
        assert_eq!(scan.feed(b"email\na@x.com\n").map_err(|(i, _)| i), Ok(()));
        let e = scan.feed(b"\"0123456789").err();
        assert_eq!(e.as_ref().map(|(i, e)| (*i, e.line)), Some((10, 3)));
        assert!(e.is_some_and(|(_, e)| e.message.contains("opened on line 3 is probably never closed")));
    }

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
