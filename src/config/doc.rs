//! The JSON Schema source for `kore-notify.yaml`: the fields as users write them, with the
//! documentation editors show. The loader accepts exactly these fields (a test keeps them in step).

use super::*;

/// The JSON Schema source for `kore-notify.yaml`. The loader below accepts exactly these fields;
/// a unit test keeps the two in step.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "kore-notify config", description = "Target and settings for kore-notify (kore-notify.yaml).")]
pub(crate) struct ConfigDoc {
    /// Kore.ai environment URL, e.g. https://platform.kore.ai (http:// only for loopback hosts).
    pub(crate) host: String,
    /// Bot ID or Stream ID (General Settings in the App Builder), e.g. st-xxxx.
    pub(crate) bot_id: String,
    /// Client ID of the app; may be a `${VAR}` reference.
    pub(crate) client_id: String,
    /// Client secret of the app. Must be an environment variable reference such as `${KORE_CLIENT_SECRET}`.
    #[schemars(regex(pattern = r"^\s*\$\{[A-Za-z_][A-Za-z0-9_]*\}\s*$"))]
    pub(crate) client_secret: String,
    /// State file path, relative to this file and inside the repository root. Default `.kore-notify/state.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<String>,
    /// The repository root, relative to this file (default: this file's directory). Every file the
    /// config and the manifests name must resolve inside it, after symlinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) root: Option<String>,
    /// Environment variables that manifests may expand with `${NAME}` (nothing else: manifests may
    /// arrive in pull requests). Never credentials or secret-looking names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("items" = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}))]
    pub(crate) variables: Option<Vec<String>>,
    /// Manifest files, directories or globs, relative to this file. Default `notifications`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) manifests: Option<Vec<String>>,
    /// Name of the message field in v2 request bodies (`message` or `content`). Default `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) v2_message_field: Option<V2Field>,
    /// Also send the notification's text as the `customMessage` of v2 recipients who have
    /// parameters and no customMessage, so they read the filled text whichever way Kore.ai applies
    /// `parameters` (its v2 page says both). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) v2_template_as_custom_message: Option<bool>,
    /// Identities per request, 1 to 1000. Default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::MAX_BATCH_SIZE))]
    pub(crate) batch_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rate_limits: Option<RateLimitsDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeouts: Option<TimeoutsDoc>,
    /// How long a notification removed from the manifests (orphaned) keeps its per-recipient
    /// records before `apply` (or `state compact`) replaces them by a tombstone: its key, last
    /// content digest, dates and counts. A duration of at least a day, e.g. `90d`, `26weeks`,
    /// `1year`. Default `off`: orphaned notifications are kept forever. Requests with an unknown
    /// outcome are never dropped. A tombstoned key cannot be reused unless the manifest says
    /// `reuseRetiredKey: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\s*(off|([0-9]+\s*[a-zA-Z]+\s*)+)\s*$"))]
    pub(crate) retention: Option<String>,
    /// This repository's name among those that share one state (the same bot and PostgreSQL
    /// database). Each notification records which repository declared it, and only that
    /// repository treats it as orphaned or retires it. Default: the git remote `origin` of the
    /// enclosing work tree (with this file's directory inside it), else the repository root's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) review: Option<ReviewDoc>,
    /// Leave out of every plan the recipients whose last delivery on a channel failed for a
    /// permanent reason ("Identity is not associated with the channel"); a manifest's own
    /// `skipUnreachable` wins. Default false: they are counted as unreachable and sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) skip_unreachable: Option<bool>,
}

/// How pull-request comments and job summaries show recipients.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ReviewDoc {
    /// Mask identities and parameter values (`j***@e***.com ~3fa2`, distinguishable but not
    /// readable): for audiences generated at CI time from outside the repository. Default false:
    /// shown as written, as everyone who can see the pull request can read the committed files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mask: Option<bool>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RateLimitsDoc {
    /// Requests per rolling minute (send and status together). Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::MAX_PER_MINUTE))]
    pub(crate) per_minute: Option<u32>,
    /// Requests per rolling hour. Default 18000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::MAX_PER_HOUR))]
    pub(crate) per_hour: Option<u32>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TimeoutsDoc {
    /// Seconds to establish a connection. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::MAX_CONNECT_SECONDS))]
    pub(crate) connect_seconds: Option<u32>,
    /// Seconds for a whole request. Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::MAX_REQUEST_SECONDS))]
    pub(crate) request_seconds: Option<u32>,
}
