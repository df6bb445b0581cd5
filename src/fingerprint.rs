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

/// Defines a 128-bit hash newtype: 16 bytes in memory, 32 hex digits in JSON (`H16` in the JSON
/// Schemas). Keeping it as bytes saves two allocations per recipient, which matters at a million.
/// Each kind is its own type, so a recipient hash can never be passed where a fingerprint is
/// expected, or the other way round.
macro_rules! hash128 {
    ($(#[$doc:meta])* $name:ident, significant = $bytes:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// How many leading bytes are significant; the rest are zero once [`Self::normalized`].
            pub(crate) const SIGNIFICANT: usize = $bytes;

            /// A digest's first 16 bytes, normalized.
            fn of(digest: &[u8]) -> $name {
                let mut b = [0u8; 16];
                b.copy_from_slice(&digest[..16]);
                $name(b).normalized()
            }

            /// Only the significant bytes kept, the rest zeroed, so that the state stores them
            /// compactly; hashes of format-1 states (all 16 bytes) are normalized the same way when
            /// they are read, and then compare equal to the ones computed now.
            #[must_use]
            pub fn normalized(self) -> $name {
                let mut b = self.0;
                for x in b.iter_mut().skip(Self::SIGNIFICANT) {
                    *x = 0;
                }
                $name(b)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&to_hex(&self.0))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl std::str::FromStr for $name {
            type Err = NotHex;
            fn from_str(s: &str) -> Result<$name, NotHex> {
                let mut b = [0u8; 16];
                hex::decode_to_slice(s, &mut b).map_err(|_| NotHex(s.to_string()))?;
                Ok($name(b))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&to_hex(&self.0))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("32 hex digits")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }

        impl schemars::JsonSchema for $name {
            // One schema for both kinds: the JSON Schemas name it `H16`, as they always have.
            fn schema_name() -> std::borrow::Cow<'static, str> {
                "H16".into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "128-bit hash, hex"})
            }
        }
    };
}

hash128!(
    /// The state's name for a recipient: their identity hashed with the state's lineage as salt
    /// ([`recipient_hash`]), never the identity itself. 96 significant bits: a collision among a
    /// million recipients of one notification has odds of about 1 in 10^17.
    RecipientHash,
    significant = 12
);

hash128!(
    /// What one recipient is sent, reduced to a hash ([`recipient_fingerprint`]): when it changes,
    /// they would receive something different. 64 significant bits: a changed message mistaken for
    /// the one already sent has odds of 1 in 1.8 × 10^19 per recipient and change.
    Fingerprint,
    significant = 8
);

/// A hash that is not 32 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not 32 hex digits")]
pub struct NotHex(String);

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

/// Digest of what recipients read, independent of the bot and of the recipient: the API, the
/// channel and the content (type and value; placeholders unfilled). Promotion compares it across
/// targets: the same digest on staging and production is the same message.
pub(crate) fn content_digest(
    api: crate::manifest::Api,
    channel: crate::manifest::Channel,
    content: &crate::state::StoredContent,
) -> String {
    let v = json!({
        "api": api.as_str(),
        "channel": channel.as_str(),
        "content": {"type": content.kind, "value": content.value},
    });
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
pub(crate) fn recipient_fingerprint(ndigest: &str, r: &Recipient) -> Fingerprint {
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
    Fingerprint::of(&Sha256::digest(s.as_bytes()))
}

/// The state's name for a recipient: a salted hash, never the identity itself.
pub fn recipient_hash(lineage: &str, id: &str) -> RecipientHash {
    let mut h = Sha256::new();
    h.update(lineage.as_bytes());
    h.update([0u8]);
    h.update(id.as_bytes());
    RecipientHash::of(&h.finalize())
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
