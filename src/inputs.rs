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
    fn identity_keys() {
        assert_eq!(identity_key(Channel::Ivr, "A@Example.com"), identity_key(Channel::Ivr, "a@example.com"));
        assert_eq!(identity_key(Channel::Whatsapp, "+91 98765-43210"), "919876543210");
        assert_ne!(identity_key(Channel::Hangouts, "spaces/AAA"), identity_key(Channel::Hangouts, "spaces/aaa"));
    }
}
