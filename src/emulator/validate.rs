//! Request bodies checked as strictly as the Kore.ai API pages describe them (412 with Kore's
//! error shape otherwise): v1 `message: {type, val}` with string identities, v2 `message` or
//! `content` (as the bot expects) with identity objects, parameters and custom messages.

use super::*;

pub(super) fn check_keys(obj: &serde_json::Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), String> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("{at}: additional property `{k}` is not allowed"));
        }
    }
    Ok(())
}

pub(super) fn str_field<'a>(obj: &'a serde_json::Map<String, Value>, k: &str, at: &str) -> Result<&'a str, String> {
    obj.get(k).and_then(Value::as_str).ok_or_else(|| format!("{at}.{k} is required and must be a string"))
}

/// Validates a send body; returns (channel, identities).
/// A v1 body: `message: {type, val}`, identities as strings.
pub(super) fn validate_v1(
    obj: &serde_json::Map<String, Value>,
    channel: String,
    ids: &[Value],
) -> Result<(String, Vec<String>), String> {
    if !["msteams", "slack"].contains(&channel.as_str()) {
        return Err(format!("channel `{channel}` is not supported by this API; accepted: msteams, slack"));
    }
    check_keys(obj, &["channel", "userIdentityType", "message", "identities"], "body")?;
    if str_field(obj, "userIdentityType", "body")? != "resolve" {
        return Err("userIdentityType must be `resolve`".into());
    }
    let m = obj.get("message").and_then(Value::as_object).ok_or("message is required and must be an object")?;
    check_keys(m, &["type", "val"], "message")?;
    let t = str_field(m, "type", "message")?;
    if !["text", "script"].contains(&t) {
        return Err(format!("message.type `{t}` must be text or script"));
    }
    if str_field(m, "val", "message")?.is_empty() {
        return Err("message.val must not be empty".into());
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            id.as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
                .ok_or(format!("identities[{i}] must be a non-empty string"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|out| (channel, out))
}

pub(super) fn validate(v2: bool, body: &Value, v2_field: &str) -> Result<(String, Vec<String>), String> {
    let obj = body.as_object().ok_or("the body must be a JSON object")?;
    let channel = str_field(obj, "channel", "body")?.to_string();
    let ids = obj.get("identities").and_then(Value::as_array).ok_or("identities is required and must be an array")?;
    if ids.is_empty() || ids.len() > 1000 {
        return Err(format!("identities must have 1 to 1000 items, got {}", ids.len()));
    }
    if !v2 {
        return validate_v1(obj, channel, ids);
    }
    let mut out = Vec::with_capacity(ids.len());
    let field = match channel.as_str() {
        "ivr" => "email",
        "hangouts" => "spaceId",
        "whatsapp" => "phoneNumber",
        other => {
            return Err(format!(
                "channel `{other}` is not supported in public API v2; accepted: ivr, hangouts, whatsapp"
            ));
        }
    };
    let msg_keys: Vec<&str> = ["message", "content"].into_iter().filter(|k| obj.contains_key(*k)).collect();
    let msg_key = match (msg_keys.as_slice(), v2_field) {
        ([k], "either") => *k,
        ([k], f) if *k == f => *k,
        ([k], f) => {
            return Err(format!("additional property `{k}` is not allowed; this bot expects `{f}`"));
        }
        ([], _) => return Err("message is required".into()),
        _ => return Err("additional property: only one of message and content is allowed".into()),
    };
    let mut allowed = vec!["channel", "userIdentityType", "identities", msg_key];
    if channel == "ivr" {
        allowed.push("webhookInstanceName");
    }
    check_keys(obj, &allowed, "body")?;
    if let Some(u) = obj.get("userIdentityType")
        && u.as_str() != Some("resolve")
    {
        return Err("userIdentityType must be `resolve`".into());
    }
    if let Some(w) = obj.get("webhookInstanceName") {
        w.as_str().ok_or("webhookInstanceName must be a string")?;
    }
    let m = obj.get(msg_key).and_then(Value::as_object).ok_or(format!("{msg_key} must be an object"))?;
    check_keys(m, &["type", "value"], msg_key)?;
    let t = str_field(m, "type", msg_key)?;
    if !["text", "template", "script"].contains(&t) {
        return Err(format!("{msg_key}.type `{t}` must be text, template or script"));
    }
    match m.get("value") {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(Value::Object(_)) if channel == "whatsapp" && t == "template" => {}
        _ => {
            return Err(format!("{msg_key}.value must be a non-empty string (or an object for whatsapp templates)"));
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let at = format!("identities[{i}]");
        let o = id.as_object().ok_or(format!("{at} must be an object"))?;
        check_keys(o, &[field, "customMessage", "parameters"], &at)?;
        let v = str_field(o, field, &at)?;
        if v.is_empty() {
            return Err(format!("{at}.{field} must not be empty"));
        }
        if let Some(cm) = o.get("customMessage") {
            cm.as_str().ok_or(format!("{at}.customMessage must be a string"))?;
        }
        if let Some(p) = o.get("parameters") {
            let p = p.as_object().ok_or(format!("{at}.parameters must be an object"))?;
            if p.len() > 20 {
                return Err(format!("{at}.parameters has {} properties; at most 20", p.len()));
            }
            for (k, v) in p {
                let s = v.as_str().ok_or(format!("{at}.parameters.{k} must be a string"))?;
                if s.chars().count() > 200 {
                    return Err(format!("{at}.parameters.{k} is longer than 200 characters"));
                }
            }
        }
        out.push(v.to_string());
    }
    Ok((channel, out))
}
