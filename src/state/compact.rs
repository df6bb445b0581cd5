//! The compact encoding of a notification in a snapshot (formats 2 and 3): one line per
//! recipient, sorted by recipient hash, so a committed state still diffs line by line.
//!
//! A settled recipient (the usual case) is one string, fields separated by a space:
//!
//! ```text
//! "HASH FP"                    fingerprint recorded without a request (onChange: ignore)
//! "HASH FP REQ"                received FP with request REQ
//! "HASH FP REQ #D"             … and Kore.ai reported the notification's delivery D
//! "HASH FP REQ DELIVERY"       format 2: … and reported the status DELIVERY (no comment)
//! ```
//!
//! HASH is the 96-bit salted recipient hash (16 base64url characters), FP the 64-bit fingerprint
//! (11 base64url characters), both without padding; D an index into the notification's
//! `deliveries` (status and comment, each distinct one kept once: see `delivery.rs`). Anything
//! else (a pending send) is an object: `{"h": HASH, "fp": FP, "req": N, "delivery": D, "pending":
//! {"fp": FP, "req": N}}`, absent fields omitted (format 2 wrote `"delivery"` as the status and
//! added `"comment"`; still read).
//!
//! Format-1 snapshots stored recipients as an object keyed by 32 hex digits, each value an object
//! (`{"fp": HEX, "req": N, "delivery": "…", "comment": "…"}`); it is still read.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::delivery::{self, Delivery, plain_word};
use super::{
    ContentMark, NotificationState, Override, Pending, RecipientState, RequestState, RolloutRecord, StoredContent,
    TestSend,
};
use crate::fingerprint::{Fingerprint, RecipientHash};
use crate::manifest::{Api, Channel};

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
    #[error("recipient `{0}` is not `HASH FP [REQ [#DELIVERY]]`")]
    Shape(String),
    #[error("recipient `{line}`: `{req}` is not a request number")]
    Request { line: String, req: String },
    #[error("recipient `{line}`: `{delivery}` is not a delivery status or `#` and an index")]
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

/// The one-line form, when it holds everything.
fn line(h: &RecipientHash, r: &RecipientState) -> Option<String> {
    let fp = r.fp.as_ref()?;
    if r.pending.is_some() || (r.delivery.is_some() && r.req.is_none()) {
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
    if let Some(d) = r.delivery {
        s.push_str(" #");
        s.push_str(&d.to_string());
    }
    Some(s)
}

/// A recipient as read: its state, and the delivery an older format wrote as text (to be kept
/// in the notification's table).
pub(super) type Elem = (RecipientHash, RecipientState, Option<Delivery>);

fn parse_line(s: &str) -> Result<Elem, BadRecipient> {
    let mut parts = s.split(' ');
    let (Some(h), Some(fp)) = (parts.next(), parts.next()) else {
        return Err(BadRecipient::Shape(s.to_string()));
    };
    let mut r = RecipientState { fp: Some(decode_fp(fp)?), ..RecipientState::default() };
    let mut given = None;
    if let Some(req) = parts.next() {
        r.req = Some(req.parse().map_err(|_| BadRecipient::Request { line: s.to_string(), req: req.to_string() })?);
    }
    if let Some(d) = parts.next() {
        let bad = || BadRecipient::Delivery { line: s.to_string(), delivery: d.to_string() };
        match d.strip_prefix('#') {
            Some(i) if !i.starts_with('+') => r.delivery = Some(i.parse().map_err(|_| bad())?),
            Some(_) => return Err(bad()),
            None if plain_word(d) => given = Some(Delivery { status: d.to_string(), comment: None }),
            None => return Err(bad()),
        }
    }
    if parts.next().is_some() {
        return Err(BadRecipient::TooManyFields(s.to_string()));
    }
    Ok((decode_key(h)?, r, given))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingObj {
    fp: String,
    req: u32,
}

/// An object's `delivery`: an index into the notification's table, or (format 2) a status.
enum DeliveryField {
    Index(u32),
    Status(String),
}

impl Serialize for DeliveryField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DeliveryField::Index(i) => s.serialize_u32(*i),
            DeliveryField::Status(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for DeliveryField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DeliveryField, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DeliveryField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a delivery index or a delivery status")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DeliveryField, E> {
                u32::try_from(v).map(DeliveryField::Index).map_err(|_| E::custom("delivery index out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DeliveryField, E> {
                Ok(DeliveryField::Status(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
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
    delivery: Option<DeliveryField>,
    /// Format 2 only (with a `delivery` status).
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
        delivery: r.delivery.map(DeliveryField::Index),
        comment: None,
        pending: r.pending.as_ref().map(|p| PendingObj { fp: fp(&p.fp), req: p.req }),
    }
}

fn from_obj(o: Obj) -> Result<Elem, BadRecipient> {
    let mut r = RecipientState {
        fp: o.fp.as_deref().map(decode_fp).transpose()?,
        req: o.req,
        delivery: None,
        pending: o.pending.map(|p| Ok::<_, BadRecipient>(Pending { fp: decode_fp(&p.fp)?, req: p.req })).transpose()?,
    };
    let given = match o.delivery {
        Some(DeliveryField::Index(i)) if o.comment.is_none() => {
            r.delivery = Some(i);
            None
        }
        Some(DeliveryField::Index(i)) => {
            return Err(BadRecipient::Delivery { line: o.h, delivery: format!("#{i} with a comment") });
        }
        Some(DeliveryField::Status(status)) => Some(Delivery { status, comment: o.comment }),
        None => None,
    };
    Ok((decode_key(&o.h)?, r, given))
}

/// A notification's recipients as written: lines (or objects), sorted by hash.
struct Lines<'a>(&'a BTreeMap<RecipientHash, RecipientState>);

impl Serialize for Lines<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (h, r) in self.0 {
            match line(h, r) {
                Some(l) => seq.serialize_element(&l)?,
                None => seq.serialize_element(&to_obj(h, r))?,
            }
        }
        seq.end()
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn no_deliveries(d: &&[Delivery]) -> bool {
    d.is_empty()
}

impl Serialize for NotificationState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            channel: Channel,
            api: Api,
            content: &'a StoredContent,
            requests: &'a [RequestState],
            #[serde(skip_serializing_if = "no_deliveries")]
            deliveries: &'a [Delivery],
            recipients: Lines<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            orphaned_since: Option<&'a String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            origin: Option<&'a String>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            contents: &'a [ContentMark],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            overrides: &'a [Override],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            test_sends: &'a [TestSend],
            #[serde(skip_serializing_if = "Option::is_none")]
            rollout: Option<&'a RolloutRecord>,
        }
        Out {
            channel: self.channel,
            api: self.api,
            content: &self.content,
            requests: &self.requests,
            deliveries: &self.deliveries,
            recipients: Lines(&self.recipients),
            orphaned_since: self.orphaned_since.as_ref(),
            origin: self.origin.as_ref(),
            contents: &self.contents,
            overrides: &self.overrides,
            test_sends: &self.test_sends,
            rollout: self.rollout.as_ref(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for NotificationState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NotificationState, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct In {
            channel: Channel,
            api: Api,
            content: StoredContent,
            #[serde(default)]
            requests: Vec<RequestState>,
            #[serde(default)]
            deliveries: Vec<Delivery>,
            #[serde(default, deserialize_with = "recipients")]
            recipients: Vec<Elem>,
            #[serde(default)]
            orphaned_since: Option<String>,
            #[serde(default)]
            origin: Option<String>,
            #[serde(default)]
            contents: Vec<ContentMark>,
            #[serde(default)]
            overrides: Vec<Override>,
            #[serde(default)]
            test_sends: Vec<TestSend>,
            rollout: Option<RolloutRecord>,
        }
        let i = In::deserialize(d)?;
        let mut deliveries = i.deliveries;
        let recipients = resolve(i.recipients, &mut deliveries).map_err(de::Error::custom)?;
        Ok(NotificationState {
            channel: i.channel,
            api: i.api,
            content: i.content,
            requests: i.requests,
            deliveries,
            recipients,
            orphaned_since: i.orphaned_since,
            origin: i.origin,
            contents: i.contents,
            overrides: i.overrides,
            test_sends: i.test_sends,
            rollout: i.rollout,
        })
    }
}

/// The recipients read, their indices checked against the table and the deliveries of older
/// formats added to it; a hash listed twice is refused.
fn resolve(mut elems: Vec<Elem>, table: &mut Vec<Delivery>) -> Result<BTreeMap<RecipientHash, RecipientState>, String> {
    let written = table.len();
    let mut pairs = Vec::with_capacity(elems.len());
    for (h, mut r, given) in elems.drain(..) {
        if let Some(i) = r.delivery.filter(|i| *i as usize >= written) {
            return Err(format!("recipient `{}` refers to delivery #{i}, which `deliveries` does not list", short(&h)));
        }
        if let Some(d) = given {
            r.delivery = Some(delivery::intern(table, d));
        }
        pairs.push((h, r));
    }
    if !pairs.is_sorted_by(|a, b| a.0 < b.0) {
        pairs.sort_by_key(|p| p.0);
    }
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("recipient `{}` is listed twice", short(&w[0].0)));
    }
    // Sorted and distinct: built in bulk.
    Ok(pairs.into_iter().collect())
}

fn short(h: &RecipientHash) -> String {
    let mut s = String::new();
    encode_key(h, &mut s);
    s
}

impl<'de> Deserialize<'de> for ElemOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ElemOf, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ElemOf;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a recipient: \"HASH FP [REQ [#DELIVERY]]\" or an object")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ElemOf, E> {
                parse_line(v).map(ElemOf).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<ElemOf, A::Error> {
                let o = Obj::deserialize(de::value::MapAccessDeserializer::new(m))?;
                from_obj(o).map(ElemOf).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// One element of the format-2 and -3 list.
struct ElemOf(Elem);

/// A recipient of format 1.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Recipient {
    #[serde(default)]
    fp: Option<Fingerprint>,
    #[serde(default)]
    req: Option<u32>,
    #[serde(default)]
    delivery: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    pending: Option<Pending>,
}

fn recipients<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Elem>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<Elem>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of recipients (formats 2 and 3) or an object of recipients (format 1)")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(ElemOf(e)) = seq.next_element()? {
                out.push(e);
            }
            Ok(out)
        }
        /// Format 1: `{"HEX": {"fp": "HEX", …}}`, full 16-byte hashes, truncated to the
        /// significant bytes kept since format 2.
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((h, v)) = m.next_entry::<RecipientHash, V1Recipient>()? {
                let r = RecipientState {
                    fp: v.fp.map(Fingerprint::normalized),
                    req: v.req,
                    delivery: None,
                    pending: v.pending.map(|p| Pending { fp: p.fp.normalized(), req: p.req }),
                };
                let given = v.delivery.map(|status| Delivery { status, comment: v.comment });
                out.push((h.normalized(), r, given));
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
            "description": "Recipients sorted by hash, one per line. A settled recipient is \"HASH FP [REQ [#D]]\": HASH the 96-bit salted recipient hash and FP the 64-bit fingerprint of what they last received, both base64url without padding; REQ the index of the request that carried it; D the index in the notification's deliveries of what Kore.ai reported (format 2 wrote the status itself). Anything else (a pending send) is an object.",
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "string", "pattern": format!("^{key} {fp}( [0-9]+( #[0-9]+| [A-Za-z0-9_-]{{1,64}})?)?$")},
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["h"],
                        "properties": {
                            "h": {"type": "string", "pattern": format!("^{key}$")},
                            "fp": {"type": "string", "pattern": format!("^{fp}$")},
                            "req": {"type": "integer", "minimum": 0},
                            "delivery": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]},
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
        let r = RecipientState { fp: Some(f), req: Some(3), delivery: Some(12), ..Default::default() };
        let l = line(&h, &r).expect("one line");
        assert!(l.ends_with(" 3 #12"), "{l}");
        assert_eq!(parse_line(&l), Ok((h, r.clone(), None)));
        // Format 2: the status word, no comment.
        let old = l.replace(" #12", " SUCCESS");
        let given = Some(Delivery { status: "SUCCESS".into(), comment: None });
        assert_eq!(parse_line(&old), Ok((h, RecipientState { delivery: None, ..r }, given)));
        for bad in [" #", " #x", " #+1", " #-1", " #99999999999", " SUCCESS!"] {
            assert!(parse_line(&l.replace(" #12", bad)).is_err(), "{bad}");
        }
    }
}
