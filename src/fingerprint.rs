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

use crate::manifest::{Notification, Recipient};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Digest of everything shared by all recipients of a notification.
pub fn notification_digest(target: &str, n: &Notification) -> String {
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

fn push_json_str(out: &mut String, s: &str) {
    // Strings serialise infallibly.
    out.push_str(&serde_json::Value::String(s.to_string()).to_string());
}

/// Canonical JSON of one recipient, with the notification digest: keys in sorted order.
pub fn recipient_fingerprint(ndigest: &str, r: &Recipient) -> String {
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
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

/// The state's name for a recipient: a salted hash, never the identity itself.
pub fn recipient_hash(lineage: &str, id: &str) -> String {
    let mut h = Sha256::new();
    h.update(lineage.as_bytes());
    h.update([0u8]);
    h.update(id.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// A random 128-bit identifier formatted like a UUID v4.
pub fn random_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn fingerprint_changes_with_every_input() {
        let r = Recipient {
            id: "a@x".into(),
            custom_message: None,
            parameters: BTreeMap::new(),
        };
        let base = recipient_fingerprint("d1", &r);
        assert_eq!(base, recipient_fingerprint("d1", &r.clone()));
        assert_ne!(base, recipient_fingerprint("d2", &r));
        let mut r2 = r.clone();
        r2.parameters.insert("name".into(), "A".into());
        assert_ne!(base, recipient_fingerprint("d1", &r2));
        let mut r3 = r.clone();
        r3.custom_message = Some("hi".into());
        assert_ne!(base, recipient_fingerprint("d1", &r3));
        assert_ne!(recipient_hash("l1", "a@x"), recipient_hash("l2", "a@x"));
        assert_eq!(random_id().len(), 36);
    }
}
