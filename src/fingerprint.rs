//! Fingerprints: what decides what a person receives, reduced to a hash.
//!
//! A recipient's fingerprint is the SHA-256 of the canonical JSON of the notification-level part
//! (target, API version, channel, identity type, webhook, content) and the recipient-level part
//! (identity, custom message, parameters). The notification-level part is hashed once and its
//! digest embedded, so a million recipients cost a million small hashes, not a million big ones.
//! The key is left out on purpose: renaming a key (with `previousKeys`) does not change what anyone
//! receives. Recipient identities are stored only as hashes salted with the state's lineage.

use serde_json::json;
use sha2::{Digest, Sha256};

/// A 128-bit hash (recipient hash or fingerprint): 16 bytes in memory, 32 hex digits in JSON.
/// Keeping it as bytes saves two allocations per recipient, which matters at a million.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct H16(pub [u8; 16]);

impl H16 {
    fn of(digest: &[u8]) -> H16 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        H16(b)
    }

    /// Significant bytes of a recipient hash: 96 bits (a collision among a million recipients
    /// of one notification has odds of about 1 in 10^17).
    pub(crate) const KEY_BYTES: usize = 12;
    /// Significant bytes of a fingerprint: 64 bits (a changed message mistaken for the one
    /// already sent has odds of 1 in 1.8 × 10^19 per recipient and change).
    pub(crate) const FP_BYTES: usize = 8;

    /// The first `n` bytes, the rest zeroed. Recipient hashes and fingerprints keep only their
    /// significant bytes (see [`H16::KEY_BYTES`], [`H16::FP_BYTES`]), so that the state stores
    /// them compactly; hashes of format-1 states (all 16 bytes) are truncated the same way when
    /// they are read, and then compare equal to the ones computed now.
    #[must_use]
    pub(crate) fn truncated(self, n: usize) -> H16 {
        let mut b = self.0;
        for x in b.iter_mut().skip(n) {
            *x = 0;
        }
        H16(b)
    }

    /// As a recipient hash ([`H16::KEY_BYTES`] significant bytes).
    #[must_use]
    pub(crate) fn as_key(self) -> H16 {
        self.truncated(Self::KEY_BYTES)
    }

    /// As a fingerprint ([`H16::FP_BYTES`] significant bytes).
    #[must_use]
    pub fn as_fp(self) -> H16 {
        self.truncated(Self::FP_BYTES)
    }
}

impl std::fmt::Display for H16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl std::fmt::Debug for H16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "H16({self})")
    }
}

impl std::str::FromStr for H16 {
    type Err = String;
    fn from_str(s: &str) -> Result<H16, String> {
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b).map_err(|_| format!("`{s}` is not 32 hex digits"))?;
        Ok(H16(b))
    }
}

impl serde::Serialize for H16 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for H16 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<H16, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = H16;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("32 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<H16, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl schemars::JsonSchema for H16 {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "H16".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "128-bit hash, hex"})
    }
}

use crate::manifest::{Notification, Recipient};

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Digest of everything shared by all recipients of a notification.
pub(crate) fn notification_digest(target: &str, n: &Notification) -> String {
    let v = json!({
        "target": target,
        "api": n.api.as_str(),
        "channel": n.channel.as_str(),
        "userIdentityType": n.user_identity_type,
        "webhookInstanceName": n.webhook_instance_name,
        "content": {"type": n.content.kind, "value": n.content.value},
    });
    // serde_json's map is a BTreeMap: keys come out sorted, which makes this canonical.
    sha256_hex(v.to_string().as_bytes())
}

/// Appends `s` as a JSON string, escaped exactly as serde_json does.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Rare: let serde_json do the escaping. Serialising a str cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

/// Lower-case hex, without the per-character iterator of `hex::encode` (hot at 1M recipients).
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 0x0f) as usize]);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Canonical JSON of one recipient, with the notification digest: keys in sorted order.
pub(crate) fn recipient_fingerprint(ndigest: &str, r: &Recipient) -> H16 {
    let mut s = String::with_capacity(160);
    s.push('{');
    if let Some(cm) = &r.custom_message {
        s.push_str("\"customMessage\":");
        push_json_str(&mut s, cm);
        s.push(',');
    }
    s.push_str("\"id\":");
    push_json_str(&mut s, &r.id);
    s.push_str(",\"n\":\"");
    s.push_str(ndigest);
    s.push_str("\",\"parameters\":{");
    for (i, (k, v)) in r.parameters.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_json_str(&mut s, k);
        s.push(':');
        push_json_str(&mut s, v);
    }
    s.push_str("}}");
    H16::of(&Sha256::digest(s.as_bytes())).as_fp()
}

/// The state's name for a recipient: a salted hash, never the identity itself.
pub fn recipient_hash(lineage: &str, id: &str) -> H16 {
    let mut h = Sha256::new();
    h.update(lineage.as_bytes());
    h.update([0u8]);
    h.update(id.as_bytes());
    H16::of(&h.finalize()).as_key()
}

/// A random 128-bit identifier formatted like a UUID v4.
pub(crate) fn random_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = to_hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_changes_with_every_input() {
        let r = Recipient { id: "a@x".into(), custom_message: None, parameters: crate::manifest::Params::default() };
        let base = recipient_fingerprint("d1", &r);
        assert_eq!(base, recipient_fingerprint("d1", &r.clone()));
        assert_ne!(base, recipient_fingerprint("d2", &r));
        let mut r2 = r.clone();
        r2.parameters.insert("name", "A".to_string());
        assert_ne!(base, recipient_fingerprint("d1", &r2));
        let mut r3 = r.clone();
        r3.custom_message = Some("hi".into());
        assert_ne!(base, recipient_fingerprint("d1", &r3));
        assert_ne!(recipient_hash("l1", "a@x"), recipient_hash("l2", "a@x"));
        assert_eq!(random_id().len(), 36);
        assert_eq!(to_hex(&[0x00, 0xab, 0xff]), hex::encode([0x00, 0xab, 0xff]));
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\n");
        assert_eq!(s, serde_json::to_string("a\"b\\c\n").unwrap_or_default());
    }
}
