//! Reading recipient rows in PostgreSQL's binary COPY format: a million rows arrive as one
//! stream and are decoded in place, with no per-row objects (the row protocol costs about twice
//! as much on the client).
//!
//! Format: an 11-byte signature, a flags word and a header extension; then per tuple a 16-bit
//! field count (-1 ends the data) and per field a 32-bit length (-1 for NULL) and its bytes.

use super::super::RecipientState;
use crate::fingerprint::{Fingerprint, RecipientHash};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// One recipient row.
pub(super) struct Row {
    /// The notification's id.
    pub(super) id: i64,
    pub(super) hash: RecipientHash,
    /// Its state, without its delivery (which refers to its notification's table).
    pub(super) state: RecipientState,
    /// The reported delivery: its status (as [`Decoder::status`] numbers them) and comment id.
    pub(super) delivery: Option<(u32, Option<i32>)>,
}

/// An incremental decoder: feed it chunks, take complete rows.
#[derive(Default)]
pub(super) struct Decoder {
    buf: Vec<u8>,
    header_done: bool,
    finished: bool,
    /// The delivery statuses seen (a few words), so a row carries a number, not a string.
    statuses: Vec<String>,
}

/// Why a stream could not be decoded (the server sent something else than it was asked for).
#[derive(Debug)]
pub(super) struct Malformed(pub(super) &'static str);

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Decoder {
    /// Adds a chunk and appends the complete rows it finishes to `out`.
    pub(super) fn feed(&mut self, chunk: &[u8], out: &mut Vec<Row>) -> Result<(), Malformed> {
        self.buf.extend_from_slice(chunk);
        let mut at = 0;
        if !self.header_done {
            if self.buf.len() < SIGNATURE.len() + 8 {
                return Ok(());
            }
            if &self.buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(Malformed("not a binary COPY stream"));
            }
            let ext = be_i32(&self.buf[SIGNATURE.len() + 4..]);
            let Ok(ext) = usize::try_from(ext) else { return Err(Malformed("bad header")) };
            if self.buf.len() < SIGNATURE.len() + 8 + ext {
                return Ok(());
            }
            at = SIGNATURE.len() + 8 + ext;
            self.header_done = true;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.rows(&mut buf, at, out);
        self.buf = buf;
        r
    }

    /// Decodes the complete tuples of `buf` from `at` into `out`, and drops them from `buf`.
    fn rows(&mut self, buf: &mut Vec<u8>, mut at: usize, out: &mut Vec<Row>) -> Result<(), Malformed> {
        while let Some((row, used)) = self.tuple(&buf[at..])? {
            at += used;
            match row {
                Some(r) => out.push(r),
                None => {
                    self.finished = true;
                    break;
                }
            }
        }
        buf.drain(..at);
        Ok(())
    }

    /// Whether the end-of-data marker was seen.
    pub(super) fn finished(&self) -> bool {
        self.finished
    }

    /// The delivery status numbered `i` in a row.
    pub(super) fn status(&self, i: u32) -> &str {
        self.statuses.get(i as usize).map_or("", String::as_str)
    }

    fn status_number(&mut self, word: &[u8]) -> u32 {
        match self.statuses.iter().position(|s| s.as_bytes() == word) {
            Some(i) => i as u32,
            None => {
                self.statuses.push(String::from_utf8_lossy(word).into_owned());
                self.statuses.len() as u32 - 1
            }
        }
    }

    /// One tuple from the start of `b`: `None` when incomplete; `Some((None, n))` at the end.
    #[allow(clippy::type_complexity)]
    fn tuple(&mut self, b: &[u8]) -> Result<Option<(Option<Row>, usize)>, Malformed> {
        if b.len() < 2 {
            return Ok(None);
        }
        let n = be_i16(b);
        if n == -1 {
            return Ok(Some((None, 2)));
        }
        if n != 6 {
            return Err(Malformed("unexpected column count"));
        }
        let mut fields: [Option<&[u8]>; 6] = [None; 6];
        let mut at = 2;
        for f in &mut fields {
            if b.len() < at + 4 {
                return Ok(None);
            }
            let len = be_i32(&b[at..]);
            at += 4;
            if len >= 0 {
                let len = len as usize;
                if b.len() < at + len {
                    return Ok(None);
                }
                *f = Some(&b[at..at + len]);
                at += len;
            }
        }
        let id = match fields[0] {
            Some(v) if v.len() == 8 => i64::from_be_bytes(v.try_into().map_err(|_| Malformed("id"))?),
            _ => return Err(Malformed("notification id")),
        };
        let h16 = |v: Option<&[u8]>| v.and_then(|v| <[u8; 16]>::try_from(v).ok());
        let (Some(hash), Some(fp)) = (h16(fields[1]).map(RecipientHash), h16(fields[2]).map(Fingerprint)) else {
            return Err(Malformed("a recipient hash"));
        };
        let req = match fields[3] {
            Some(v) if v.len() == 4 => Some(be_i32(v) as u32),
            None => None,
            _ => return Err(Malformed("request number")),
        };
        let comment = match fields[5] {
            Some(v) if v.len() == 4 => Some(be_i32(v)),
            None => None,
            _ => return Err(Malformed("comment id")),
        };
        let delivery = fields[4].map(|w| (self.status_number(w), comment));
        let state = RecipientState { fp: Some(fp), req, delivery: None, pending: None };
        Ok(Some((Some(Row { id, hash, state, delivery }), at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(out: &mut Vec<u8>, v: Option<&[u8]>) {
        match v {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    /// A stream split at every possible point decodes to the same rows.
    #[test]
    fn decodes_across_any_chunk_boundary() {
        let mut s = SIGNATURE.to_vec();
        s.extend_from_slice(&0i32.to_be_bytes());
        s.extend_from_slice(&0i32.to_be_bytes());
        let two = 2i32.to_be_bytes();
        let seven = 7i32.to_be_bytes();
        for i in 0..3u8 {
            s.extend_from_slice(&6i16.to_be_bytes());
            field(&mut s, Some(&(7i64 + i64::from(i)).to_be_bytes()));
            field(&mut s, Some(&[i; 16]));
            field(&mut s, Some(&[9; 16]));
            field(&mut s, if i == 1 { None } else { Some(&two) });
            field(&mut s, if i == 2 { Some(b"FAILURE") } else { None });
            field(&mut s, if i == 2 { Some(&seven) } else { None });
        }
        s.extend_from_slice(&(-1i16).to_be_bytes());
        for split in 0..s.len() {
            let (mut d, mut rows) = (Decoder::default(), Vec::new());
            d.feed(&s[..split], &mut rows).expect("first part");
            d.feed(&s[split..], &mut rows).expect("second part");
            assert!(d.finished(), "split at {split}");
            assert_eq!(rows.len(), 3, "split at {split}");
            assert_eq!(rows[2].id, 9);
            assert_eq!(rows[1].state.req, None);
            let (word, comment) = rows[2].delivery.expect("a delivery");
            assert_eq!((d.status(word), comment), ("FAILURE", Some(7)));
            assert!(rows[0].delivery.is_none());
            assert_eq!(rows[0].hash, RecipientHash([0; 16]));
        }
        let mut bad = s.clone();
        bad[0] = b'X';
        assert!(Decoder::default().feed(&bad, &mut Vec::new()).is_err());
    }
}
