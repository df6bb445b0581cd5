//! A CSV audience streams from its file into the `csv` reader, checked as the bytes pass: text
//! (no NUL, valid UTF-8; refused at the first chunk that is not), quoting ([`CsvScan`]), the size
//! limit and a bound on each row. So the file is never held whole: a 500 MB audience costs its
//! recipients, a 500 MB binary file or a row that never ends costs one chunk or one row, and the
//! first problem stops the reading where it is.

use std::io::Read;

use crate::inputs::{CsvScan, QuoteError};
use crate::text::NotText;

/// Most bytes in one CSV row: 20 parameters of 200 characters, a custom message and an identity
/// fit many times over.
pub(super) const MAX_CSV_ROW: u64 = 1024 * 1024;

/// Why reading stopped.
#[derive(Debug)]
pub(super) enum Problem {
    NotText(NotText),
    Quotes(QuoteError),
    TooLarge(u64),
}

/// The file's bytes, checked on their way to the `csv` reader. The first problem ends the reading
/// (the bytes before it are passed on, then an error) and stays here for the caller to report.
pub(super) struct Checked<R> {
    inner: R,
    cap: u64,
    read: u64,
    scan: CsvScan,
    /// The end of an unfinished UTF-8 character at the end of the last chunk.
    carry: Vec<u8>,
    /// The column the next byte is at (its line is the scan's).
    column: u32,
    pub(super) problem: Option<Problem>,
}

impl<R: Read> Checked<R> {
    pub(super) fn new(inner: R, cap: u64) -> Checked<R> {
        Checked { inner, cap, read: 0, scan: CsvScan::new(MAX_CSV_ROW), carry: Vec::new(), column: 1, problem: None }
    }

    /// Checks the next `bytes` of the file: how many of them to pass on, all of them unless a
    /// problem was found (then kept in `problem`), which ends them.
    fn check(&mut self, bytes: &[u8]) -> usize {
        // The end of an unfinished character, carried from the last chunk (and passed on then).
        let mut joined = std::mem::take(&mut self.carry);
        let carried = joined.len();
        joined.extend_from_slice(bytes);
        let (valid, unfinished) = match std::str::from_utf8(&joined) {
            Ok(_) => (joined.len(), false),
            Err(e) => (e.valid_up_to(), e.error_len().is_none()),
        };
        let nul = joined[..valid].iter().position(|&b| b == 0);
        let text = &joined[..nul.unwrap_or(valid)];
        let scanned = match self.scan.feed(text) {
            Ok(()) => text.len(),
            Err((i, e)) => {
                self.problem = Some(Problem::Quotes(e));
                i
            }
        };
        // The column after what was scanned: characters since the last line break.
        let chars = |b: &[u8]| b.iter().filter(|&&b| b & 0xc0 != 0x80).count() as u32;
        let done = &text[..scanned];
        match done.iter().rposition(|&b| b == b'\n') {
            Some(nl) => self.column = chars(&done[nl + 1..]) + 1,
            None => self.column += chars(done),
        }
        if self.problem.is_none() {
            let line = self.scan.line();
            let here = |nul| Problem::NotText(NotText { line, column: self.column, nul });
            if nul.is_some() {
                self.problem = Some(here(true));
            } else if valid < joined.len() && !unfinished {
                self.problem = Some(here(false));
            } else if unfinished {
                self.carry = joined[valid..].to_vec();
            }
        }
        if self.problem.is_some() { scanned.saturating_sub(carried).min(bytes.len()) } else { bytes.len() }
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let stop = || std::io::Error::new(std::io::ErrorKind::InvalidData, "the CSV audience was refused");
        if self.problem.is_some() {
            return Err(stop());
        }
        let n = self.inner.read(out)?;
        self.read += n as u64;
        if self.read > self.cap {
            self.problem = Some(Problem::TooLarge(self.cap));
            return Err(stop());
        }
        if n == 0 {
            let end = if self.carry.is_empty() {
                self.scan.finish().map_err(Problem::Quotes)
            } else {
                Err(Problem::NotText(NotText { line: self.scan.line(), column: self.column, nul: false }))
            };
            if let Err(p) = end {
                self.problem = Some(p);
                return Err(stop());
            }
            return Ok(0);
        }
        let good = self.check(&out[..n]);
        if self.problem.is_some() && good == 0 {
            return Err(stop());
        }
        Ok(good)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that gives at most `step` bytes per read.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Everything the wrapper passes on, and the problem it stopped at.
    fn pass(bytes: &[u8], step: usize) -> (Vec<u8>, Option<String>) {
        let mut c = Checked::new(Trickle(bytes, step), 1 << 20);
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        (out, c.problem.map(|p| format!("{p:?}")))
    }

    /// Whatever the size of the reads, good files pass whole and a problem is found at the same
    /// place, with nothing after it passed on.
    #[test]
    fn reads_of_any_size_agree() {
        let samples: [(&[u8], Option<&str>); 6] = [
            ("email,name\na@x,José 日本 🎉\n\"b@x\",\"q \"\"x\"\"\"\n".as_bytes(), None),
            (b"email\na@x\n\0\0\0", Some("NotText(NotText { line: 3, column: 1, nul: true })")),
            (b"email\n\xc3\xa9\xff\n", Some("NotText(NotText { line: 2, column: 2, nul: false })")),
            (b"email\na\xe6\x97", Some("NotText(NotText { line: 2, column: 2, nul: false })")),
            (
                b"email,n\na,\"open\nb,c\n",
                Some(
                    "Quotes(QuoteError { line: 2, message: \"a quoted field opened here is never closed: every following row would be read as part of this value\" })",
                ),
            ),
            (
                b"email,n\na,\"x\"y\nb,c\n",
                Some(
                    "Quotes(QuoteError { line: 2, message: \"the quoted field opened on line 2 closes here in the middle of a field: a quote is missing, and the lines in between were read as one value\" })",
                ),
            ),
        ];
        for (bytes, problem) in samples {
            for step in 1..=bytes.len() {
                let (out, got) = pass(bytes, step);
                assert_eq!(got.as_deref(), problem, "{bytes:?} in reads of {step}");
                if problem.is_none() {
                    assert_eq!(out, bytes, "in reads of {step}");
                } else {
                    assert!(bytes.starts_with(&out), "passed on only what came before the problem");
                }
            }
        }
    }

    #[test]
    fn the_limit_holds_while_reading() {
        let mut c = Checked::new(Trickle(&[b'a'; 100], 10), 50);
        let mut buf = [0u8; 64];
        while c.read(&mut buf).is_ok_and(|n| n > 0) {}
        assert!(matches!(c.problem, Some(Problem::TooLarge(50))));
    }
}
