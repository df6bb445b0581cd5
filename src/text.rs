//! Files that must be text (manifests, CSV audiences, message files, the config, plan files, the
//! state) are refused as soon as a chunk read is not: a hostile or mistaken file (a 500 MB sparse
//! file of NUL bytes named as an audience, an image, a spreadsheet saved in its own format) costs
//! one chunk of reading, not its size in memory. Text here is UTF-8 without NUL bytes: no file kind
//! we read has a NUL in it, and invalid UTF-8 can only be a wrong encoding or binary data.
//!
//! The pure core is [`check`], which validates a buffer incrementally (what was already checked is
//! not checked again) and names the first byte that is not text by line and column. [`Kind`] says
//! what each kind of file is, so an error names the right one and its fix. The reading itself
//! (known size, bounded, chunked) is in [`crate::files`].

use std::fmt;

/// Why a file is not text, and where: 1-based line and column (in characters) of the first
/// offending byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotText {
    pub(crate) line: u32,
    pub(crate) column: u32,
    /// A NUL byte (binary data); otherwise bytes that are not UTF-8.
    pub(crate) nul: bool,
}

impl fmt::Display for NotText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.nul { "a NUL byte" } else { "bytes that are not UTF-8" };
        write!(f, "{what} at line {}, column {}", self.line, self.column)
    }
}

/// Checks `buf[from..]`, knowing `buf[..from]` is text that ends on a character boundary. Returns
/// how far `buf` is now known to be text: `buf.len()`, or less when it ends inside a character
/// (read more, then check again from there; at the end of the file call [`finish`]).
pub(crate) fn check(buf: &[u8], from: usize) -> Result<usize, NotText> {
    let new = &buf[from..];
    let valid = match std::str::from_utf8(new) {
        Ok(_) => new.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(e) => {
            let bad = from + e.valid_up_to();
            return Err(nul_before(buf, from, bad).unwrap_or_else(|| at(buf, bad, false)));
        }
    };
    match nul_before(buf, from, from + valid) {
        Some(e) => Err(e),
        None => Ok(from + valid),
    }
}

/// At the end of a file checked up to `checked`: an unfinished character is not text.
pub(crate) fn finish(buf: &[u8], checked: usize) -> Result<(), NotText> {
    if checked < buf.len() { Err(at(buf, checked, false)) } else { Ok(()) }
}

/// The error for a buffer that `std::str::from_utf8` refused with `e`.
pub(crate) fn not_text_at(buf: &[u8], e: std::str::Utf8Error) -> NotText {
    at(buf, e.valid_up_to(), false)
}

/// The first NUL in `buf[from..to]` (text up to it), as an error.
fn nul_before(buf: &[u8], from: usize, to: usize) -> Option<NotText> {
    buf[from..to].iter().position(|&b| b == 0).map(|i| at(buf, from + i, true))
}

/// The position of byte `offset`, where `buf[..offset]` is valid UTF-8.
fn at(buf: &[u8], offset: usize, nul: bool) -> NotText {
    let before = &buf[..offset];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // Continuation bytes (10xxxxxx) do not start a character.
    let column = before[line_start..].iter().filter(|&&b| b & 0xc0 != 0x80).count() + 1;
    NotText { line: u32::try_from(line).unwrap_or(u32::MAX), column: u32::try_from(column).unwrap_or(u32::MAX), nul }
}

/// The line of the first JSON string in `text` longer than `max` bytes (as written, escapes
/// included), if any. Checked before a JSON file is parsed: a parser's error message quotes the
/// string it did not expect, so one huge string would cost its size again (and more) in memory
/// and output.
pub(crate) fn long_json_string(text: &str, max: usize) -> Option<u32> {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(q) = b[i..].iter().position(|&c| c == b'"') {
        let start = i + q + 1;
        let mut end = start;
        loop {
            match b[end..].iter().position(|&c| c == b'"' || c == b'\\') {
                // Unterminated: the parser says so, without quoting it.
                None => return None,
                Some(k) if b[end + k] == b'\\' => end = (end + k + 2).min(b.len()),
                Some(k) => {
                    end += k;
                    break;
                }
            }
        }
        if end - start > max {
            return Some(at(b, start, false).line);
        }
        i = end + 1;
    }
    None
}

/// A JSON parser's error as shown: its first 200 characters (the position comes first in
/// serde_json's wording only at the end, so it is added separately).
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    if full.chars().count() <= 200 {
        return full;
    }
    let head: String = full.chars().take(200).collect();
    format!("{head}… at line {} column {}", e.line(), e.column())
}

/// What a file is, for the words of an error and its fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Config,
    Manifest,
    CsvAudience,
    MessageFile,
    PlanFile,
    State,
}

impl Kind {
    /// The file, as a sentence names it.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Kind::Config => "the config",
            Kind::Manifest => "the manifest",
            Kind::CsvAudience => "the CSV audience",
            Kind::MessageFile => "the message file (valueFile)",
            Kind::PlanFile => "the plan file",
            Kind::State => "the state file",
        }
    }

    /// What it should hold.
    fn holds(self) -> &'static str {
        match self {
            Kind::Config | Kind::Manifest => "YAML text",
            Kind::CsvAudience => "CSV text",
            Kind::MessageFile => "the text of a message",
            Kind::PlanFile => "a kore-notify plan (JSON text)",
            Kind::State => "a kore-notify state (JSON text)",
        }
    }

    /// How to fix a file of this kind that is not text.
    pub(crate) fn fix(self) -> &'static str {
        match self {
            Kind::Config => "kore-notify.yaml is YAML text in UTF-8; save it as such",
            Kind::Manifest => {
                "manifests are YAML text in UTF-8: save it as such, or move this file out of the manifest directories (or narrow `manifests:` in kore-notify.yaml)"
            }
            Kind::CsvAudience => {
                "export the audience as CSV in UTF-8 (a spreadsheet's \"CSV UTF-8\"), and point identitiesFrom at that file"
            }
            Kind::MessageFile => "valueFile names a UTF-8 text file holding the message (or a .json WhatsApp template)",
            Kind::PlanFile => {
                "give the file `kore-notify plan --out FILE` wrote; if it was damaged, make and review the plan again"
            }
            Kind::State => {
                "the state file was damaged or replaced: restore state.json from its backup (state.json.backup) or from where CI keeps it"
            }
        }
    }

    /// The error's message: `{noun} is a binary file, not {holds}: {where}`, or for bytes that
    /// are not UTF-8, `{noun} is not {holds}: {where}`.
    pub(crate) fn message(self, e: &NotText) -> String {
        let (noun, holds) = (self.noun(), self.holds());
        if e.nul { format!("{noun} is a binary file, not {holds}: {e}") } else { format!("{noun} is not {holds}: {e}") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(buf: &[u8]) -> Result<(), NotText> {
        check(buf, 0).and_then(|n| finish(buf, n))
    }

    fn e(line: u32, column: u32, nul: bool) -> Result<(), NotText> {
        Err(NotText { line, column, nul })
    }

    #[test]
    fn text_and_what_is_not() {
        for (bytes, expected) in [
            (&b"a: 1\nb: 2\n"[..], Ok(())),
            ("Grüße, 日本 🎉\n".as_bytes(), Ok(())),
            (b"", Ok(())),
            (b"\0\0\0\0", e(1, 1, true)),
            (b"a,b\nx,\0y\n", e(2, 3, true)),
            ("é\0".as_bytes(), e(1, 2, true)),
            (b"key: a\nchannel: \xff\xfe\n", e(2, 10, false)),
            (b"\xef\xbb", e(1, 1, false)),
            (b"ok\n\xe6\x97", e(2, 1, false)),
            (b"\x89PNG\r\n\x1a\n\0\0", e(1, 1, false)),
            // The first problem is the one named, whichever kind it is.
            (b"a\0\xff", e(1, 2, true)),
            (b"a\xff\0", e(1, 2, false)),
        ] {
            assert_eq!(whole(bytes), expected, "{bytes:?}");
        }
    }

    /// Checked in chunks of every size, a buffer gives the same answer as checked whole: a
    /// character split between two reads is not mistaken for bad bytes.
    #[test]
    fn chunks_of_any_size_agree_with_the_whole() {
        let samples: [&[u8]; 4] =
            ["a é 日本 🎉\nz".as_bytes(), b"ab\n\xe6\x97\xa5\0x", "🎉🎉\n🎉".as_bytes(), b"x\n\xf0\x9f\x8e"];
        for sample in samples {
            for size in 1..=sample.len() {
                let mut checked = 0;
                let mut got = Ok(());
                for end in (size..).step_by(size).map(|e| e.min(sample.len())) {
                    match check(&sample[..end], checked) {
                        Ok(n) => checked = n,
                        Err(e) => {
                            got = Err(e);
                            break;
                        }
                    }
                    if end == sample.len() {
                        got = finish(sample, checked);
                        break;
                    }
                }
                assert_eq!(got, whole(sample), "{sample:?} in chunks of {size}");
            }
        }
    }

    #[test]
    fn long_strings_are_found_before_parsing() {
        let max = 4;
        for (text, line) in [
            (r#"{"a": "abcd", "b": ["x"]}"#, None),
            ("{\"a\":\n \"abcde\"}", Some(2)),
            (r#"{"abcde": 1}"#, Some(1)),
            // Escapes count as written, and an escaped quote does not end the string.
            (r#"["\"\"\"", "ab"]"#, Some(1)),
            (r#"["a\"b"]"#, None),
            (r#"["\\", "\\\\"]"#, None),
            (r#"["abc"#, None),
            (r#"["abc\"#, None),
            ("", None),
        ] {
            assert_eq!(long_json_string(text, max), line, "{text}");
        }
    }

    #[test]
    fn messages_name_the_kind() {
        let nul = NotText { line: 1, column: 1, nul: true };
        assert_eq!(
            Kind::CsvAudience.message(&nul),
            "the CSV audience is a binary file, not CSV text: a NUL byte at line 1, column 1"
        );
        let utf8 = NotText { line: 3, column: 7, nul: false };
        assert_eq!(
            Kind::PlanFile.message(&utf8),
            "the plan file is not a kore-notify plan (JSON text): bytes that are not UTF-8 at line 3, column 7"
        );
    }
}
