//! The compact encoding of a notification's recipients in a format-2 snapshot: one line per
//! recipient, sorted by recipient hash, so a committed state still diffs line by line.
//!
//! A settled recipient (the usual case) is one string, fields separated by a space:
//!
//! ```text
//! "HASH FP"                    fingerprint recorded without a request (onChange: ignore)
//! "HASH FP REQ"                received FP with request REQ
//! "HASH FP REQ DELIVERY"       … and Kore.ai reported DELIVERY (e.g. SUCCESS, FAILURE)
//! ```
//!
//! HASH is the 96-bit salted recipient hash (16 base64url characters), FP the 64-bit fingerprint
//! (11 base64url characters), both without padding. Anything else (a pending send, a delivery
//! comment) is an object: `{"h": HASH, "fp": FP, "req": N, "delivery": "…", "comment": "…",
//! "pending": {"fp": FP, "req": N}}`, absent fields omitted.
//!
//! Format-1 snapshots stored recipients as an object keyed by 32 hex digits, each value an object
//! (`{"fp": HEX, "req": N, …}`); it is still read.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Pending, RecipientState};
use crate::fingerprint::{Fingerprint, RecipientHash};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Characters of an encoded recipient hash and fingerprint.
pub(super) const KEY_CHARS: usize = 16;
pub(super) const FP_CHARS: usize = 11;

/// base64url without padding.
fn encode(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
}

/// A recipient line or object that is not one: shown inside the snapshot's "invalid state".
#[derive(Debug, PartialEq, thiserror::Error)]
pub(super) enum BadRecipient {
    #[error("`{0}` is not a recipient hash ({KEY_CHARS} base64url characters)")]
    Hash(String),
    #[error("`{0}` is not a fingerprint ({FP_CHARS} base64url characters)")]
    Fingerprint(String),
    #[error("recipient `{0}` is not `HASH FP [REQ [DELIVERY]]`")]
    Shape(String),
    #[error("recipient `{line}`: `{req}` is not a request number")]
    Request { line: String, req: String },
    #[error("recipient `{line}`: `{delivery}` is not a delivery status")]
    Delivery { line: String, delivery: String },
    #[error("recipient `{0}` has too many fields")]
    TooManyFields(String),
}

fn value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    }))
}

/// Decodes exactly `n` bytes from canonical base64url without padding (unused bits zero).
fn decode(s: &str, n: usize) -> Option<[u8; 16]> {
    let s = s.as_bytes();
    if s.len() != (n * 4).div_ceil(3) {
        return None;
    }
    let mut out = [0u8; 16];
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut k = 0;
    for &c in s {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if k < n {
                out[k] = (acc >> bits) as u8;
                k += 1;
            }
            acc &= (1 << bits) - 1;
        }
    }
    (k == n && acc == 0).then_some(out)
}

pub(super) fn encode_key(h: &RecipientHash, out: &mut String) {
    encode(&h.0[..RecipientHash::SIGNIFICANT], out);
}

pub(super) fn encode_fp(h: &Fingerprint, out: &mut String) {
    encode(&h.0[..Fingerprint::SIGNIFICANT], out);
}

fn decode_key(s: &str) -> Result<RecipientHash, BadRecipient> {
    decode(s, RecipientHash::SIGNIFICANT).map(RecipientHash).ok_or_else(|| BadRecipient::Hash(s.to_string()))
}

fn decode_fp(s: &str) -> Result<Fingerprint, BadRecipient> {
    decode(s, Fingerprint::SIGNIFICANT).map(Fingerprint).ok_or_else(|| BadRecipient::Fingerprint(s.to_string()))
}

/// Whether a delivery status fits in the one-line form.
fn plain_word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The one-line form, when it holds everything.
fn line(h: &RecipientHash, r: &RecipientState) -> Option<String> {
    let fp = r.fp.as_ref()?;
    if r.pending.is_some() || r.comment.is_some() {
        return None;
    }
    if r.delivery.as_deref().is_some_and(|d| r.req.is_none() || !plain_word(d)) {
        return None;
    }
    let mut s = String::with_capacity(40);
    encode_key(h, &mut s);
    s.push(' ');
    encode_fp(fp, &mut s);
    if let Some(req) = r.req {
        s.push(' ');
        s.push_str(&req.to_string());
    }
    if let Some(d) = &r.delivery {
        s.push(' ');
        s.push_str(d);
    }
    Some(s)
}

fn parse_line(s: &str) -> Result<(RecipientHash, RecipientState), BadRecipient> {
    let mut parts = s.split(' ');
    let (Some(h), Some(fp)) = (parts.next(), parts.next()) else {
        return Err(BadRecipient::Shape(s.to_string()));
    };
    let mut r = RecipientState { fp: Some(decode_fp(fp)?), ..RecipientState::default() };
    if let Some(req) = parts.next() {
        r.req = Some(req.parse().map_err(|_| BadRecipient::Request { line: s.to_string(), req: req.to_string() })?);
    }
    if let Some(d) = parts.next() {
        if !plain_word(d) {
            return Err(BadRecipient::Delivery { line: s.to_string(), delivery: d.to_string() });
        }
        r.delivery = Some(d.to_string());
    }
    if parts.next().is_some() {
        return Err(BadRecipient::TooManyFields(s.to_string()));
    }
    Ok((decode_key(h)?, r))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingObj {
    fp: String,
    req: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Obj {
    h: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    req: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<PendingObj>,
}

fn to_obj(h: &RecipientHash, r: &RecipientState) -> Obj {
    let key = |h: &RecipientHash| {
        let mut s = String::new();
        encode_key(h, &mut s);
        s
    };
    let fp = |h: &Fingerprint| {
        let mut s = String::new();
        encode_fp(h, &mut s);
        s
    };
    Obj {
        h: key(h),
        fp: r.fp.as_ref().map(fp),
        req: r.req,
        delivery: r.delivery.clone(),
        comment: r.comment.clone(),
        pending: r.pending.as_ref().map(|p| PendingObj { fp: fp(&p.fp), req: p.req }),
    }
}

fn from_obj(o: Obj) -> Result<(RecipientHash, RecipientState), BadRecipient> {
    Ok((
        decode_key(&o.h)?,
        RecipientState {
            fp: o.fp.as_deref().map(decode_fp).transpose()?,
            req: o.req,
            delivery: o.delivery,
            comment: o.comment,
            pending: o
                .pending
                .map(|p| Ok::<_, BadRecipient>(Pending { fp: decode_fp(&p.fp)?, req: p.req }))
                .transpose()?,
        },
    ))
}

pub(super) fn serialize<S: Serializer>(m: &BTreeMap<RecipientHash, RecipientState>, s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(m.len()))?;
    for (h, r) in m {
        match line(h, r) {
            Some(l) => seq.serialize_element(&l)?,
            None => seq.serialize_element(&to_obj(h, r))?,
        }
    }
    seq.end()
}

/// One element of the format-2 list.
struct Elem(RecipientHash, RecipientState);

impl<'de> Deserialize<'de> for Elem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Elem, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Elem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a recipient: \"HASH FP [REQ [DELIVERY]]\" or an object")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Elem, E> {
                parse_line(v).map(|(h, r)| Elem(h, r)).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Elem, A::Error> {
                let o = Obj::deserialize(de::value::MapAccessDeserializer::new(m))?;
                from_obj(o).map(|(h, r)| Elem(h, r)).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<RecipientHash, RecipientState>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<RecipientHash, RecipientState>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of recipients (format 2) or an object of recipients (format 1)")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(Elem(h, r)) = seq.next_element()? {
                if out.insert(h, r).is_some() {
                    return Err(de::Error::custom("a recipient hash is listed twice"));
                }
            }
            Ok(out)
        }
        /// Format 1: `{"HEX": {"fp": "HEX", …}}`, full 16-byte hashes, truncated to the
        /// significant bytes kept since format 2.
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((h, mut r)) = m.next_entry::<RecipientHash, RecipientState>()? {
                r.fp = r.fp.map(Fingerprint::normalized);
                if let Some(p) = r.pending.as_mut() {
                    p.fp = p.fp.normalized();
                }
                out.insert(h.normalized(), r);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// The schema of the recipient list (format 2).
pub(super) struct Schema;

impl schemars::JsonSchema for Schema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Recipients".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let key = format!("[A-Za-z0-9_-]{{{KEY_CHARS}}}");
        let fp = format!("[A-Za-z0-9_-]{{{FP_CHARS}}}");
        schemars::json_schema!({
            "description": "Recipients sorted by hash, one per line. A settled recipient is \"HASH FP [REQ [DELIVERY]]\": HASH the 96-bit salted recipient hash and FP the 64-bit fingerprint of what they last received, both base64url without padding; REQ the index of the request that carried it; DELIVERY Kore.ai's delivery status. Anything else (a pending send, a delivery comment) is an object.",
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "string", "pattern": format!("^{key} {fp}( [0-9]+( [A-Za-z0-9_-]{{1,64}})?)?$")},
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["h"],
                        "properties": {
                            "h": {"type": "string", "pattern": format!("^{key}$")},
                            "fp": {"type": "string", "pattern": format!("^{fp}$")},
                            "req": {"type": "integer", "minimum": 0},
                            "delivery": {"type": "string"},
                            "comment": {"type": "string"},
                            "pending": {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["fp", "req"],
                                "properties": {
                                    "fp": {"type": "string", "pattern": format!("^{fp}$")},
                                    "req": {"type": "integer", "minimum": 0}
                                }
                            }
                        }
                    }
                ]
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_roundtrip_and_canonical() {
        let h = RecipientHash([0xfb; 16]).normalized();
        let mut s = String::new();
        encode_key(&h, &mut s);
        assert_eq!(s.len(), KEY_CHARS);
        assert_eq!(decode_key(&s), Ok(h));
        let f = Fingerprint([0xff; 16]).normalized();
        let mut s = String::new();
        encode_fp(&f, &mut s);
        assert_eq!(s.len(), FP_CHARS);
        assert_eq!(decode_fp(&s), Ok(f));
        // Non-zero unused bits, wrong length, foreign characters: refused.
        let mut bad = s.clone();
        bad.pop();
        bad.push('_');
        assert!(decode_fp(&bad).is_err());
        assert!(decode_fp(&s[..10]).is_err());
        assert!(decode_fp("AAAAAAAAAA=").is_err());
        let r = RecipientState { fp: Some(f), req: Some(3), delivery: Some("SUCCESS".into()), ..Default::default() };
        let l = line(&h, &r).expect("one line");
        assert_eq!(parse_line(&l), Ok((h, r)));
    }
}
