//! The request bodies, exactly as Kore.ai's API pages specify them: v1 (`message`) and v2 (a
//! `message` or `content` field, identities as objects with their own custom message and
//! parameters).

use serde_json::{Value, json};

use crate::config::V2Field;
use crate::manifest::{Api, Notification, Recipient};

/// The request body for one batch.
pub(crate) fn body(n: &Notification, recipients: &[&Recipient], v2_field: V2Field) -> Value {
    match n.api {
        Api::V1 => json!({
            "channel": n.channel.as_str(),
            "userIdentityType": n.user_identity_type,
            "message": {"type": n.content.kind, "val": n.content.value},
            "identities": recipients.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        }),
        Api::V2 => {
            let field = n.channel.identity_field().unwrap_or("email");
            let ids: Vec<Value> = recipients
                .iter()
                .map(|r| {
                    let mut o = serde_json::Map::new();
                    o.insert(field.into(), r.id.clone().into());
                    if let Some(cm) = &r.custom_message {
                        o.insert("customMessage".into(), cm.clone().into());
                    }
                    if !r.parameters.is_empty() {
                        o.insert("parameters".into(), serde_json::to_value(&r.parameters).unwrap_or_default());
                    }
                    Value::Object(o)
                })
                .collect();
            let mut b = serde_json::Map::new();
            b.insert("channel".into(), n.channel.as_str().into());
            if let Some(w) = &n.webhook_instance_name {
                b.insert("webhookInstanceName".into(), w.clone().into());
            }
            b.insert("userIdentityType".into(), n.user_identity_type.clone().into());
            b.insert(v2_field.as_str().into(), json!({"type": n.content.kind, "value": n.content.value}));
            b.insert("identities".into(), Value::Array(ids));
            Value::Object(b)
        }
    }
}
