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
    /// Required without `targets:`; with it, written per target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    /// Bot ID or Stream ID (General Settings in the App Builder), e.g. st-xxxx. Required without
    /// `targets:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) bot_id: Option<String>,
    /// Client ID of the app; may be a `${VAR}` reference. Required without `targets:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<String>,
    /// Client secret of the app. Must be an environment variable reference such as
    /// `${KORE_CLIENT_SECRET}`. Required without `targets:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\s*\$\{[A-Za-z_][A-Za-z0-9_]*\}\s*$"))]
    pub(crate) client_secret: Option<String>,
    /// Several bots (dev → staging → production), by name (lowercase letters, digits, - and _):
    /// each with its own host, bot, credentials, state, limits and audience rule. Without it, the
    /// fields above make one target, `default`. With it, `batchSize`, `rateLimits`, `timeouts`,
    /// `businessHours` and the v2 options written here are defaults every target inherits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z][a-z0-9_-]{0,39}$"}))]
    pub(crate) targets: Option<std::collections::BTreeMap<String, TargetDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audience: Option<AudienceDoc>,
    /// Only in a target: the target whose sends prove the content first (see `promotion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) promote_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) promotion: Option<super::PromotionLevel>,
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
    /// Who may be sent a test of a notification before it goes out (`kore-notify test-send
    /// --reviewer LOGIN`, the workflow's `test-send` action): GitHub login → the identity they
    /// are reached by on each channel, written as it is (no `${VAR}`), e.g.
    /// `{octocat: {msteams: octo@example.com, whatsapp: "+4915100000000"}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$"}))]
    pub(crate) reviewers: Option<std::collections::BTreeMap<String, ReviewerDoc>>,
    /// Leave out of every plan the recipients whose last delivery on a channel failed for a
    /// permanent reason ("Identity is not associated with the channel"); a manifest's own
    /// `skipUnreachable` wins. Default false: they are counted as unreachable and sent. With
    /// `targets:`, the default of every target that does not say.
    pub(crate) skip_unreachable: Option<bool>,
    /// Rules over each notification's plan (who may send what to how many), top to bottom. Every
    /// matching rule applies: a `deny` always wins (the plan fails, nothing is sent); an `allow`
    /// exempts from the `warn` and `require` rules below it; each `require` needs its approvals
    /// at apply (`apply --approvals FILE`); every `warn` is shown. No policy: everything is allowed.
    pub(crate) policy: Option<Vec<RuleDoc>>,
    pub(crate) business_hours: Option<BusinessHoursDoc>,
    /// The delivery window of every manifest that does not set its own `deliveryWindow`; with
    /// `targets:`, the default of every target that does not set its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delivery_window: Option<crate::window::doc::DeliveryWindowDoc>,
    /// The canary waves of every manifest that does not set its own `rollout`; with `targets:`,
    /// the default of every target that does not set its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rollout: Option<crate::rollout::doc::RolloutSettingDoc>,
}

/// One policy rule: a name, conditions (`when`, all must hold; absent: every send) and exactly
/// one effect (allow, warn, require or deny).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["allow"]}, {"required": ["warn"]}, {"required": ["require"]}, {"required": ["deny"]}
]))]
pub(crate) struct RuleDoc {
    /// Unique among the rules: verdicts and approvals name it.
    #[schemars(length(min = 1, max = 100))]
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) when: Option<WhenDoc>,
    /// Allowed, and exempt from the `warn` and `require` rules below (never from a `deny`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("const" = true))]
    pub(crate) allow: Option<bool>,
    /// Shown with the notification in every plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 500))]
    pub(crate) warn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) require: Option<RequireDoc>,
    /// Never sent: the plan fails (exit 1) and apply refuses to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 500))]
    pub(crate) deny: Option<String>,
}

/// Approvals of the merged pull request, checked at apply.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RequireDoc {
    /// Distinct people, neither the author nor bots, approving the final head commit.
    #[schemars(range(min = 1, max = crate::policy::MAX_APPROVALS))]
    pub(crate) approvals: u32,
    /// GitHub logins or org/team slugs allowed to approve.
    #[schemars(length(min = 1))]
    #[schemars(extend("items" = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9-]{0,38}(/[A-Za-z0-9._-]{1,100})?$"}))]
    pub(crate) from: Vec<String>,
}

/// Conditions over one notification's plan. A list means any of its values.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WhenDoc {
    /// The target's name, as under `targets:` (a config without `targets:` has one target,
    /// `default`). Each target is planned on its own, so a rule judges one target's sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<OneOrMany<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) channel: Option<OneOrMany<crate::manifest::Channel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api: Option<OneOrMany<crate::manifest::Api>>,
    /// send (a first message), resend (a second message: the content changed for people who had
    /// it), retry (an unknown or failed delivery sent again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) action: Option<OneOrMany<ActionDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) recipients: Option<RecipientsDoc>,
    /// Where the recipients come from: inline (`identities`) or csv (`identitiesFrom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audience: Option<OneOrMany<AudienceSourceDoc>>,
    /// Whether the text differs from what was last sent (a first send is not a change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) content_changed: Option<bool>,
    /// Whether sends, from the plan's time to the forecast's last request, land outside the
    /// target's `businessHours` (which every target the rule concerns needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) outside_business_hours: Option<bool>,
    /// Whether the target's test ledger holds an accepted test send of the notification's
    /// current content (`kore-notify test-send`), made by the plan's time: `testSent: false`
    /// with `deny` makes a test send a precondition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) test_sent: Option<bool>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ActionDoc {
    Send,
    Resend,
    Retry,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AudienceSourceDoc {
    Inline,
    Csv,
}

/// Thresholds on the recipients this apply would message: `">1000"`, `">=500"`, `"<10"`,
/// `"<=10"`, `"=3"`; a bare number means at least.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RecipientsDoc {
    /// Recipients who never had this notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) new: Option<ThresholdDoc>,
    /// Recipients who get a second message (changed content, or a retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) second: Option<ThresholdDoc>,
    /// Everyone this apply would message for the notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) total: Option<ThresholdDoc>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum ThresholdDoc {
    AtLeast(#[schemars(range(min = 0))] u64),
    Compare(#[schemars(regex(pattern = r"^\s*(>=|<=|>|<|=)?\s*[0-9]{1,15}\s*$"))] String),
}

/// Business hours for `outsideBusinessHours`: days and hours at a fixed UTC offset (it does not
/// follow daylight saving time).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BusinessHoursDoc {
    /// `+HH:MM`, `-HH:MM` or `UTC`.
    #[schemars(regex(pattern = r"^\s*([+-]([01][0-9]|2[0-3]):[0-5][0-9]|UTC|utc|Z)\s*$"))]
    pub(crate) utc_offset: String,
    /// Working days. Default mon to fri.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) days: Option<Vec<DayDoc>>,
    /// Opening time, `HH:MM`. Default 09:00.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\s*([01][0-9]|2[0-4]):[0-5][0-9]\s*$"))]
    pub(crate) from: Option<String>,
    /// Closing time, `HH:MM` (24:00 allowed). Default 17:00.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\s*([01][0-9]|2[0-4]):[0-5][0-9]\s*$"))]
    pub(crate) to: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DayDoc {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
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

/// One target under `targets:`.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TargetDoc {
    /// Kore.ai environment URL of this target.
    pub(crate) host: String,
    /// Bot ID or Stream ID of this target.
    pub(crate) bot_id: String,
    /// Client ID of this target's app; may be a `${VAR}` reference.
    pub(crate) client_id: String,
    /// Client secret of this target's app, as an environment variable reference.
    #[schemars(regex(pattern = r"^\s*\$\{[A-Za-z_][A-Za-z0-9_]*\}\s*$"))]
    pub(crate) client_secret: String,
    /// This target's state: a file inside the repository (default `.kore-notify/NAME.json`) or a
    /// `postgres://` URL. Two targets never share one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) v2_message_field: Option<V2Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) v2_template_as_custom_message: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::MAX_BATCH_SIZE))]
    pub(crate) batch_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rate_limits: Option<RateLimitsDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeouts: Option<TimeoutsDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audience: Option<AudienceDoc>,
    /// Another target's name: a notification is sent here only once the same content (what
    /// recipients read, whatever the bot and the recipient) was accepted there (or delivered,
    /// with `promotion: delivered`). `apply --skip-promotion KEY --reason TEXT` passes the gate
    /// knowingly, recorded in the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) promote_from: Option<String>,
    /// What the other target must show: `accepted` (default: Kore.ai accepted a request with
    /// the same content) or `delivered` (its status is SUCCESS: run `status --refresh` there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) promotion: Option<super::PromotionLevel>,
    /// Leave out of this target's plans the recipients whose last delivery on a channel (in
    /// this target's state) failed for a permanent reason; a manifest's own `skipUnreachable`
    /// wins. Default: the top-level `skipUnreachable`, else false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) skip_unreachable: Option<bool>,
    /// This target's business hours (for the policy's `outsideBusinessHours`), in its own
    /// timezone; overrides the top-level default.
    pub(crate) business_hours: Option<BusinessHoursDoc>,
    /// The delivery window of this target's notifications whose manifests do not set their own
    /// `deliveryWindow` (`off`: none, even when the top of the config has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delivery_window: Option<crate::window::doc::DeliveryWindowDoc>,
    /// The canary waves of this target's notifications whose manifests do not set their own
    /// `rollout` (`off`: none, even when the top of the config has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rollout: Option<crate::rollout::doc::RolloutSettingDoc>,
}

/// Who a target may reach, so a non-production target never reaches production users. Exactly
/// one of the two. A list inline, or a file inside the repository: one identity per line (`#`
/// comments), or a `.csv` file's first column after its header. Compared without regard to case.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AudienceDoc {
    /// Recipients outside the list are left out of this target's plan (counted, shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) only: Option<IdentityListDoc>,
    /// Each notification goes to these identities instead, the k-th with the parameters and
    /// custom message of its k-th recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) replace_with: Option<IdentityListDoc>,
}

/// Identities inline, or a file of them.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum IdentityListDoc {
    List(Vec<String>),
    File(String),
}

/// A reviewer's identity per channel (at least one).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub(crate) struct ReviewerDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 320))]
    pub(crate) msteams: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 320))]
    pub(crate) slack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 320))]
    pub(crate) ivr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 320))]
    pub(crate) hangouts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 320))]
    pub(crate) whatsapp: Option<String>,
}
