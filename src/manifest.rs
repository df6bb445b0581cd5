//! Notification manifests: the resolved model and its JSON Schema source.
//!
//! A manifest document describes one notification (the README's Manifests section). The loader (`load.rs`) turns YAML
//! into [`Notification`]s, checking every documented Kore.ai constraint first, so nothing that
//! reaches `plan` or `apply` can be refused by the API for a reason we could have seen.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Microsoft Teams (API v1).
    Msteams,
    /// Slack (API v1).
    Slack,
    /// Webhook / IVR (API v2), identities `{email}`.
    Ivr,
    /// Google Chat (API v2), identities `{spaceId}`.
    Hangouts,
    /// WhatsApp (API v2), identities `{phoneNumber}`.
    Whatsapp,
}

pub(crate) const CHANNELS: &[&str] = &["msteams", "slack", "ivr", "hangouts", "whatsapp"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    V1,
    V2,
}

impl Api {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Api::V1 => "v1",
            Api::V2 => "v2",
        }
    }
}

impl Channel {
    pub(crate) fn parse(s: &str) -> Option<Channel> {
        Some(match s {
            "msteams" => Channel::Msteams,
            "slack" => Channel::Slack,
            "ivr" => Channel::Ivr,
            "hangouts" => Channel::Hangouts,
            "whatsapp" => Channel::Whatsapp,
            _ => return None,
        })
    }
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Channel::Msteams => "msteams",
            Channel::Slack => "slack",
            Channel::Ivr => "ivr",
            Channel::Hangouts => "hangouts",
            Channel::Whatsapp => "whatsapp",
        }
    }
    pub(crate) fn api(self) -> Api {
        match self {
            Channel::Msteams | Channel::Slack => Api::V1,
            _ => Api::V2,
        }
    }
    /// The identity field of v2 identity objects (`None` for v1, whose identities are strings).
    pub(crate) fn identity_field(self) -> Option<&'static str> {
        match self {
            Channel::Ivr => Some("email"),
            Channel::Hangouts => Some("spaceId"),
            Channel::Whatsapp => Some("phoneNumber"),
            _ => None,
        }
    }
    pub(crate) fn content_types(self) -> &'static [&'static str] {
        match self.api() {
            Api::V1 => &["text", "script"],
            Api::V2 => &["text", "template", "script"],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnChange {
    /// Changed recipients receive the new content (default).
    Resend,
    /// Record the new content without sending it to people who already received the old one.
    Ignore,
}

// ----- JSON Schema source (documents as written by users) -----

/// One notification manifest document.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    title = "kore-notify manifest",
    description = "One Kore.ai proactive notification. Several may share a file as separate YAML documents."
)]
pub(crate) struct ManifestDoc {
    /// Idempotency key, unique across the repository; names the notification forever.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9._:/-]+$"))]
    pub(crate) key: String,
    pub(crate) channel: Channel,
    /// API version; inferred from the channel when omitted (msteams/slack: v1; ivr/hangouts/whatsapp: v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api: Option<Api>,
    /// Identity resolution; Kore.ai accepts `resolve` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["resolve"]))]
    pub(crate) user_identity_type: Option<String>,
    /// Webhook instance name (ivr only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) webhook_instance_name: Option<String>,
    pub(crate) content: ContentDoc,
    /// Recipients. v1 channels: strings. v2 channels: objects with the channel's identity field, or a string shorthand for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) identities: Option<Vec<IdentityDoc>>,
    /// A CSV file (relative to the manifest) whose header row is the identity field, then parameter names (and optionally customMessage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) identities_from: Option<String>,
    /// RFC 3339 time before which nothing is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub(crate) not_before: Option<String>,
    /// RFC 3339 time after which nothing is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub(crate) not_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) on_change: Option<OnChange>,
    /// Earlier keys of this notification (a rename that must not resend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) previous_keys: Option<Vec<String>>,
    /// The config's targets this notification is planned and sent for (names under `targets:`
    /// in kore-notify.yaml). Default: every target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) targets: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// Allow identities that reach the same recipient although written differently (e-mail
    /// addresses differing only in case, phone numbers with the same digits). Default false: they
    /// are an error, since each would be sent the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) allow_near_duplicates: Option<bool>,
    /// Use a key that was retired (its notification orphaned longer than the config's
    /// `retention` and replaced by a tombstone): the tombstone is dropped and the notification is
    /// planned as new, so everyone listed receives it. Default false: a retired key is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reuse_retired_key: Option<bool>,
    /// Leave out recipients whose last delivery on this channel failed for a permanent reason
    /// ("Identity is not associated with the channel"): the plan counts them as unreachable and
    /// sends them nothing. Default: the target's `skipUnreachable` (false unless set in the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) skip_unreachable: Option<bool>,
    /// When each recipient may be sent, in their local time; overrides the target's
    /// `deliveryWindow` (`off`: any time, even when the target has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delivery_window: Option<crate::window::doc::DeliveryWindowDoc>,
    /// Canary waves; overrides the target's `rollout` (`off`: everyone at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rollout: Option<crate::rollout::doc::RolloutSettingDoc>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ContentDoc {
    /// `text` or `script` (v1); `text`, `template` or `script` (v2).
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["text", "template", "script"]))]
    pub(crate) kind: String,
    /// The message: a string, or a JSON object for WhatsApp templates. Exactly one of value and valueFile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<ContentValueDoc>,
    /// A file beside the manifest holding the message (one trailing newline is removed). Must stay inside the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) value_file: Option<String>,
    /// Expand `${NAME}` (declared variables only) in the valueFile's text. Default false: a file is sent as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) interpolate: Option<bool>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum ContentValueDoc {
    Text(String),
    Object(serde_json::Map<String, serde_json::Value>),
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum IdentityDoc {
    /// v1 identity, or v2 shorthand for the channel's identity field.
    Plain(String),
    Object(IdentityObjectDoc),
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct IdentityObjectDoc {
    /// Identity for the ivr channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
    /// Identity for the hangouts channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) space_id: Option<String>,
    /// Identity for the whatsapp channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) phone_number: Option<String>,
    /// Overrides the message for this recipient; may use {placeholders}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) custom_message: Option<String>,
    /// Values for {placeholders}: at most 20, each a string of at most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 20))]
    pub(crate) parameters: Option<BTreeMap<String, ParameterValue>>,
}

/// A parameter value: a string of at most 200 characters.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub(crate) struct ParameterValue(#[schemars(length(max = 200))] pub String);

pub(crate) const FIELDS: &[&str] = &[
    "key",
    "channel",
    "api",
    "userIdentityType",
    "webhookInstanceName",
    "content",
    "identities",
    "identitiesFrom",
    "notBefore",
    "notAfter",
    "onChange",
    "previousKeys",
    "description",
    "allowNearDuplicates",
    "reuseRetiredKey",
    "skipUnreachable",
    "deliveryWindow",
    "rollout",
    "targets",
];
pub(crate) const CONTENT_FIELDS: &[&str] = &["type", "value", "valueFile", "interpolate"];
pub(crate) const MAX_PARAMETERS: usize = 20;
pub(crate) const MAX_PARAMETER_LEN: usize = 200;

// ----- resolved model -----

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Content {
    #[serde(rename = "type")]
    pub kind: String,
    /// A string, or a JSON object (WhatsApp templates).
    pub value: serde_json::Value,
}

impl Content {
    /// Text shown in plans and diffs.
    pub(crate) fn display(&self) -> String {
        match &self.value {
            serde_json::Value::String(s) => s.clone(),
            other => serde_json::to_string_pretty(other).unwrap_or_default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    /// The channel identity (email, spaceId, phoneNumber, or the v1 identity string).
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_message: Option<String>,
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub parameters: Params,
}

/// A recipient's parameters, sorted by name. Names are shared (`Arc<str>`) across the recipients of
/// a CSV audience, and a small sorted vector costs a fraction of a `BTreeMap` per recipient: this
/// matters at a million recipients.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(std::sync::Arc<str>, String)>);

impl Params {
    pub(crate) fn new() -> Params {
        Params(Vec::new())
    }
    pub(crate) fn insert(&mut self, name: impl Into<std::sync::Arc<str>>, value: String) {
        let name = name.into();
        match self.0.binary_search_by(|(k, _)| k.as_ref().cmp(name.as_ref())) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(name)).ok().map(|i| self.0[i].1.as_str())
    }
    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<std::sync::Arc<str>>> FromIterator<(K, String)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, String)>>(iter: I) -> Self {
        let mut p = Params::new();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p
    }
}

impl Serialize for Params {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k.as_ref(), v)?;
        }
        m.end()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Source {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Debug)]
pub struct Notification {
    pub key: String,
    pub source: Source,
    pub channel: Channel,
    pub api: Api,
    pub user_identity_type: String,
    pub webhook_instance_name: Option<String>,
    pub content: Content,
    pub recipients: Vec<Recipient>,
    pub not_before: Option<time::OffsetDateTime>,
    pub not_after: Option<time::OffsetDateTime>,
    pub on_change: OnChange,
    pub previous_keys: Vec<String>,
    pub description: Option<String>,
    /// `reuseRetiredKey: true`: a tombstone of this key is dropped and it plans as new.
    pub reuse_retired_key: bool,
    /// `skipUnreachable`: `None` takes the target's default.
    pub skip_unreachable: Option<bool>,
    /// Variables this notification expanded, with their values (shown in the plan).
    pub variables: Vec<(String, String)>,
    /// The `identitiesFrom` CSV's header row, in its order (empty for inline identities): the
    /// delivery report's CSV joins outcomes to these columns.
    pub audience_columns: Vec<String>,
    /// When each recipient may be sent, in their local time: the manifest's `deliveryWindow`, or
    /// (once scoped to a target, see [`crate::plan::audience_for_target`]) the target's default
    /// (`None`: any time).
    pub delivery_window: Option<std::sync::Arc<crate::window::DeliveryWindow>>,
    /// Whether the manifest writes `deliveryWindow` (a window, or `off`): a target's default
    /// does not apply then.
    pub own_window: bool,
    /// Canary waves: the manifest's `rollout`, or (once scoped to a target) the target's default
    /// (`None`: everyone at once).
    pub rollout: Option<std::sync::Arc<crate::rollout::Rollout>>,
    /// Whether the manifest writes `rollout` (waves, or `off`): a target's default does not apply.
    pub own_rollout: bool,
    /// `targets:`: the config's targets this notification is planned for (`None`: all).
    pub targets: Option<Vec<String>>,
    /// Where its recipients come from (the policy's `audience` condition).
    pub audience: Audience,
}

/// Where a notification's recipients come from: listed inline (`identities`), a CSV file
/// (`identitiesFrom`), or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Audience {
    pub inline: bool,
    pub csv: bool,
}

/// A piece of a message text, as Kore.ai reads it.
enum Piece<'a> {
    /// Text delivered as written (including braces around anything that is not a name).
    Text(&'a str),
    /// A `{placeholder}`'s name.
    Placeholder(&'a str),
}

/// Whether `name` may be a placeholder's: letters, digits, `_`, `.` and `-`, at least one.
fn placeholder_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The one placeholder scanner: `text` cut into literal text and `{placeholder}`s, in order. A
/// `{` followed by another `{` before any `}` is literal (`{{x}}` holds the placeholder `x`);
/// braces around anything that is not a name are literal text.
fn scan<'a>(text: &'a str, mut piece: impl FnMut(Piece<'a>)) {
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find(['{', '}']) {
            Some(end) if after.as_bytes()[end] == b'}' => {
                let name = &after[..end];
                if placeholder_name(name) {
                    piece(Piece::Text(&rest[..start]));
                    piece(Piece::Placeholder(name));
                } else {
                    piece(Piece::Text(&rest[..start + end + 2]));
                }
                rest = &after[end + 1..];
            }
            Some(end) => {
                piece(Piece::Text(&rest[..start + 1 + end]));
                rest = &after[end..];
            }
            None => break,
        }
    }
    piece(Piece::Text(rest));
}

/// Finds `{placeholder}` names in a text, each once. Names are letters, digits, `_`, `.` and `-`.
pub(crate) fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    scan(text, |p| {
        if let Piece::Placeholder(name) = p
            && !out.contains(&name)
        {
            out.push(name);
        }
    });
    out
}

/// Fills `{placeholder}`s from parameters, as Kore.ai does when it delivers a message; unknown
/// placeholders are left as written. For previews in plans only: the API receives the template.
pub(crate) fn render_placeholders(text: &str, params: &Params) -> String {
    let mut out = String::with_capacity(text.len());
    scan(text, |p| match p {
        Piece::Text(t) => out.push_str(t),
        Piece::Placeholder(name) => match params.get(name) {
            Some(v) => out.push_str(v),
            None => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        },
    });
    out
}

pub(crate) fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 128 && key.chars().all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c))
}

/// Notifications for unit tests elsewhere.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A v1 Slack text notification with no recipients.
    pub(crate) fn notification(key: &str) -> Notification {
        Notification {
            key: key.to_string(),
            source: Source { file: PathBuf::from("n.yaml"), line: 1, column: 1 },
            channel: Channel::Slack,
            api: Api::V1,
            user_identity_type: "resolve".into(),
            webhook_instance_name: None,
            content: Content { kind: "text".into(), value: "hi".into() },
            recipients: Vec::new(),
            not_before: None,
            not_after: None,
            on_change: OnChange::Resend,
            previous_keys: Vec::new(),
            description: None,
            reuse_retired_key: false,
            skip_unreachable: None,
            variables: Vec::new(),
            audience_columns: Vec::new(),
            delivery_window: None,
            own_window: false,
            rollout: None,
            own_rollout: false,
            targets: None,
            audience: Audience::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders() {
        assert_eq!(placeholders("Hi {name}, ref {refId} {name} {} {{x}} {a b}"), vec!["name", "refId", "x"]);
        assert!(placeholders("function() { return 1; }").is_empty());
    }

    #[test]
    fn fills_placeholders_by_the_same_rule() {
        let params: Params = [("name", "Ann"), ("a b", "no"), ("", "no")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            render_placeholders("Hi {name}, {{name}} {a b} {} {missing} { {name", &params),
            "Hi Ann, {Ann} {a b} {} {missing} { {name"
        );
    }

    #[test]
    fn keys() {
        assert!(valid_key("hr/2026:reset-password.v2"));
        assert!(!valid_key("has space"));
        assert!(!valid_key(""));
        assert!(!valid_key(&"a".repeat(129)));
    }

    #[test]
    fn loader_fields_match_schema() {
        crate::assert_fields_match_schema::<ManifestDoc>(FIELDS);
    }
}
