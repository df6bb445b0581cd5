//! The target config, `kore-notify.yaml`: which Kore.ai host and bot to talk to, how to
//! authenticate (environment variable references only: a secret must never be committed), where the
//! state and the manifests live, and the limits to keep. Found by walking up from the current
//! directory, like git finds `.git`, or given with `--config FILE`.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostics, Pos};
use crate::error::{Error, Result};
use crate::interp::{self, Env};
use crate::walk::{Walker, join};
use crate::yaml;

mod doc;
mod host;
mod origin;
mod reviewers;
mod target;

use host::check_host;

pub(crate) use doc::ConfigDoc;
pub(crate) use reviewers::{Reviewers, valid_login};
#[cfg(test)]
pub(crate) use target::AudienceList;
pub(crate) use target::{Audience, IMPLICIT, PromotionLevel, Target, valid_name};

pub(crate) const FILE_NAME: &str = "kore-notify.yaml";
/// Also accepted.
pub(crate) const ALT_FILE_NAME: &str = "kore-notify.yml";

/// A file in `dir` that looks like a misnamed config (`kore_notify.yaml`, `.kore-notify.yaml`,
/// `Kore-Notify.yml`, `kore-notify.yaml.txt`, …), as a hint.
fn near_miss(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else { return String::new() };
    for e in entries.flatten().take(1000) {
        let name = e.file_name().to_string_lossy().to_lowercase();
        let squashed: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
        if squashed.starts_with("korenotify")
            && (name.contains(".yaml") || name.contains(".yml") || name.contains(".json"))
        {
            return format!(
                "\n  help: found `{}`; the config must be named {FILE_NAME} (or {ALT_FILE_NAME})",
                crate::safe::line(&e.file_name().to_string_lossy())
            );
        }
    }
    String::new()
}
/// Largest config file we read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum V2Field {
    Message,
    Content,
}

impl V2Field {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            V2Field::Message => "message",
            V2Field::Content => "content",
        }
    }
}

pub(crate) const FIELDS: &[&str] = &[
    "host",
    "botId",
    "clientId",
    "clientSecret",
    "state",
    "root",
    "variables",
    "manifests",
    "v2MessageField",
    "v2TemplateAsCustomMessage",
    "batchSize",
    "rateLimits",
    "timeouts",
    "retention",
    "repository",
    "review",
    "skipUnreachable",
    "targets",
    "audience",
    "promoteFrom",
    "promotion",
    crate::policy::FIELD,
    crate::policy::HOURS_FIELD,
    "deliveryWindow",
    "reviewers",
    "rollout",
];
pub(crate) const REVIEW_FIELDS: &[&str] = &["mask"];
pub(crate) const RATE_FIELDS: &[&str] = &["perMinute", "perHour"];
pub(crate) const TIMEOUT_FIELDS: &[&str] = &["connectSeconds", "requestSeconds"];

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) path: PathBuf,
    /// Directory of the config file; relative paths are resolved against it.
    pub(crate) dir: PathBuf,
    /// The bots this repository sends through: `targets:`, or the one implicit target made of
    /// the top-level fields. Never empty.
    pub(crate) targets: Vec<Target>,
    /// The repository root: every path named by the config or a manifest stays inside it.
    pub(crate) root: crate::files::Root,
    /// Variables manifests may expand.
    pub(crate) variables: Vec<String>,
    pub(crate) manifests: Vec<String>,
    /// `retention`: how long a notification stays orphaned (in the state, no longer in the
    /// manifests) before it is replaced by a tombstone. `None` (the default): kept forever.
    pub(crate) retention: Option<std::time::Duration>,
    /// Digest of this repository's identity, recorded with every notification it declares: only
    /// the repository that declared a notification judges it orphaned (see `origin.rs`).
    pub(crate) origin: String,
    /// `review: {mask: true}`: identities and parameter values masked in pull-request comments and
    /// job summaries (for audiences generated at CI time from outside the repository). Default:
    /// shown as written, as everyone who sees the pull request sees the committed files anyway.
    pub(crate) review_mask: bool,
    /// `reviewers:`: GitHub login → identity per channel, for `test-send --reviewer LOGIN`.
    pub(crate) reviewers: Reviewers,
    /// `policy:` (empty: everything is allowed; see `src/policy/`). Its rules judge each
    /// target's plan; the business hours are the target's (`Target::business_hours`).
    pub(crate) policy: crate::policy::Policy,
}

pub(crate) struct Credentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("client_id", &self.client_id).field("client_secret", &"<redacted>").finish()
    }
}

impl Config {
    /// Finds `kore-notify.yaml` in `start` or the nearest parent directory.
    pub(crate) fn discover(start: &Path) -> Result<PathBuf> {
        let mut dir = Some(start);
        while let Some(d) = dir {
            let (yaml, alt) = (d.join(FILE_NAME), d.join(ALT_FILE_NAME));
            match (yaml.is_file(), alt.is_file()) {
                (true, true) => {
                    return Err(Error::Config {
                        path: crate::files::display_path(&alt),
                        message: format!("both {FILE_NAME} and {ALT_FILE_NAME} are here; keep one"),
                    });
                }
                (true, false) => return Ok(yaml),
                (false, true) => return Ok(alt),
                (false, false) => {}
            }
            dir = d.parent();
        }
        Err(Error::NoConfig { start: start.to_path_buf(), hint: near_miss(start) })
    }

    /// Loads and validates a config file; problems are added to `diags`.
    pub(crate) fn load(path: &Path, env: &dyn Env, diags: &mut Diagnostics) -> Result<Option<Config>> {
        let shown = crate::files::display_path(path);
        let mut w = Walker::new(&shown, diags, env);
        let text = match crate::files::read_named_text(path, MAX_CONFIG_BYTES) {
            Ok(t) => t,
            Err(crate::files::FileError::NotText(e)) => {
                let kind = crate::text::Kind::Config;
                w.error(&Pos { line: e.line, column: e.column }, "", kind.message(&e), kind.fix());
                return Ok(None);
            }
            Err(e) => return Err(Error::Config { path: shown.clone(), message: format!("cannot read: {e}") }),
        };
        let Some(doc) = parse(&mut w, &text) else { return Ok(None) };
        let errors_before = w.diags.errors();
        let Some(f) = w.fields(&doc, "", FIELDS) else { return Ok(None) };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = repository_root(&mut w, &f, &dir);
        let cx = target::Context { path, dir: &dir, root: root.as_ref(), env };
        let before_targets = w.diags.errors();
        let (targets, mut creds) = target::targets(&mut w, &f, &doc.pos, &cx);
        // The policy is checked against the targets when they have no errors of their own.
        let known: Option<Vec<(String, bool)>> = (w.diags.errors() == before_targets)
            .then(|| targets.iter().map(|t| (t.name.clone(), t.business_hours.is_some())).collect());
        let variables = declared_variables(&mut w, &f);
        let manifests = match f.get("manifests") {
            Some(n) => w.strings(n, "manifests").into_iter().map(|(s, _)| s).collect(),
            None => vec!["notifications".to_string()],
        };
        let retention = f.get("retention").and_then(|n| retention(&mut w, n));
        let repository = f.get("repository").and_then(|n| repository_name(&mut w, n));
        let review_mask = review_mask(&mut w, &f);
        let reviewers = reviewers::reviewers(&mut w, &f);
        let policy = crate::policy::policy(&mut w, &f, known.as_deref()).unwrap_or_default();
        if let Some(vars) = &variables {
            creds.push(crate::state::STATE_URL_VAR.to_string());
            check_no_credentials(&mut w, &f, vars, &creds, &targets);
        }
        let clean = w.diags.errors() == errors_before;
        let (Some(root), Some(variables), true, false) = (root, variables, clean, targets.is_empty()) else {
            return Ok(None);
        };
        let origin = origin::origin(repository.as_deref(), root.path(), &dir);
        Ok(Some(Config {
            origin,
            review_mask,
            reviewers,
            policy,
            path: path.to_path_buf(),
            targets,
            root,
            variables,
            dir,
            manifests,
            retention,
        }))
    }

    /// The targets a command covers: the one named (`--target`, `KORE_NOTIFY_TARGET`), or all.
    pub(crate) fn select(&self, wanted: Option<&str>) -> Result<Vec<&Target>> {
        match wanted {
            None => Ok(self.targets.iter().collect()),
            Some(name) => self.named(name).map(|t| vec![t]),
        }
    }

    /// The one target a state-changing command works on: the one named, or the only one. With
    /// several and none named, an error that lists them.
    pub(crate) fn one(&self, wanted: Option<&str>, command: &str) -> Result<&Target> {
        match (wanted, self.targets.as_slice()) {
            (Some(name), _) => self.named(name),
            (None, [only]) => Ok(only),
            (None, _) => Err(Error::Refused(format!(
                "`{command}` works on one target and this config has {}: {}; choose one with --target NAME (or KORE_NOTIFY_TARGET)",
                self.targets.len(),
                self.target_list()
            ))),
        }
    }

    /// The target called `name`, or an error that lists them.
    pub(crate) fn named(&self, name: &str) -> Result<&Target> {
        self.targets.iter().find(|t| t.name == name).ok_or_else(|| {
            Error::Refused(format!(
                "no target `{}` in {}: its targets are {}",
                crate::safe::line(name),
                crate::files::display_path(&self.path).display(),
                self.target_list()
            ))
        })
    }

    fn target_list(&self) -> String {
        self.target_names().join(", ")
    }

    /// The reviewer `login` (logins compare without case): their login as written and identities.
    pub(crate) fn reviewer(
        &self,
        login: &str,
    ) -> Option<(&String, &std::collections::BTreeMap<crate::manifest::Channel, String>)> {
        reviewers::find(&self.reviewers, login)
    }

    /// The targets' names, in the config's order.
    pub(crate) fn target_names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name.clone()).collect()
    }

    /// The default `deliveryWindow` of each target that has one, by target name.
    pub(crate) fn default_windows(&self) -> Vec<(String, std::sync::Arc<crate::window::DeliveryWindow>)> {
        self.targets.iter().filter_map(|t| Some((t.name.clone(), t.delivery_window.clone()?))).collect()
    }

    /// This config's directory inside its git work tree (`""` or `"sub/dir/"`), for links to
    /// manifest lines.
    pub(crate) fn dir_in_work_tree(&self) -> String {
        origin::dir_in_work_tree(&self.dir)
    }

    /// What the policy's verdicts on target `t`'s plan need from the config.
    pub(crate) fn policy_context<'a>(&'a self, t: &'a Target) -> crate::policy::PolicyContext<'a> {
        crate::policy::PolicyContext { policy: &self.policy, hours: t.business_hours.as_ref(), target: &t.name }
    }
}

type Fields<'n> = std::collections::BTreeMap<String, &'n yaml::Node>;

/// Defaults (and ranges, in `limits`) shared with the schema documentation in `ConfigDoc`.
pub(crate) const DEFAULT_BATCH_SIZE: u64 = 1000;
pub(crate) const DEFAULT_PER_MINUTE: u32 = 600;
pub(crate) const DEFAULT_PER_HOUR: u32 = 18_000;
pub(crate) const DEFAULT_CONNECT_SECONDS: u32 = 10;
pub(crate) const DEFAULT_REQUEST_SECONDS: u32 = 60;
/// Ranges, shared with the schema in `ConfigDoc` (its `range` attributes name these).
pub(crate) const MAX_BATCH_SIZE: u64 = 1000;
pub(crate) const MAX_PER_MINUTE: u64 = 1_000_000;
pub(crate) const MAX_PER_HOUR: u64 = 100_000_000;
pub(crate) const MAX_CONNECT_SECONDS: u64 = 600;
pub(crate) const MAX_REQUEST_SECONDS: u64 = 3600;

/// The config as one YAML document; problems reported.
fn parse(w: &mut Walker, text: &str) -> Option<yaml::Node> {
    match yaml::parse_document(text) {
        Ok(Some(n)) => Some(n),
        Ok(None) => {
            w.error(&Pos::default(), "", "the config file is empty", "`kore-notify init` writes one");
            None
        }
        Err(e) => {
            w.error(&e.pos, "", format!("invalid YAML: {}", e.message), "");
            None
        }
    }
}

fn required(w: &mut Walker, f: &Fields, at: &Pos, prefix: &str, name: &str) -> Option<String> {
    let field = join(prefix, name);
    match f.get(name) {
        Some(n) => w.string(n, &field),
        None => {
            let place = if prefix.is_empty() { FILE_NAME.to_string() } else { format!("{prefix} in {FILE_NAME}") };
            w.error(at, &field, format!("missing required field `{field}`"), format!("add `{name}: …` to {place}"));
            None
        }
    }
}

/// `host` and `botId`, checked.
fn host_and_bot(w: &mut Walker, f: &Fields, at: &Pos, prefix: &str) -> (Option<String>, Option<String>) {
    let host = required(w, f, at, prefix, "host");
    let bot_id = required(w, f, at, prefix, "botId");
    if let (Some(h), Some(n)) = (&host, f.get("host"))
        && let Err(msg) = check_host(h)
    {
        w.error(
            &n.pos,
            &join(prefix, "host"),
            msg,
            "use https://your-kore-host (http:// is allowed only for 127.0.0.1/localhost)",
        );
    }
    if let (Some(b), Some(n)) = (&bot_id, f.get("botId"))
        && (b.is_empty() || b.contains(['/', '?', '#', ' ']))
    {
        w.error(
            &n.pos,
            &join(prefix, "botId"),
            format!("`{}` is not a valid bot or stream id", crate::safe::line(b)),
            "copy the Bot ID from General Settings, e.g. st-1234…",
        );
    }
    (host, bot_id)
}

/// `clientId` (raw, resolved only when talking to Kore.ai) and the variable `clientSecret` names.
fn credential_fields(w: &mut Walker, f: &Fields, at: &Pos, prefix: &str) -> (Option<String>, Option<String>) {
    let (id_field, secret_field) = (join(prefix, "clientId"), join(prefix, "clientSecret"));
    let client_id_raw = match f.get("clientId") {
        Some(n) => match &n.value {
            yaml::Value::Str(s) => Some(s.clone()),
            _ => {
                w.error(&n.pos, &id_field, "expected a string", "write clientId: ${KORE_CLIENT_ID}");
                None
            }
        },
        None => {
            w.error(at, &id_field, format!("missing required field `{id_field}`"), "add `clientId: ${KORE_CLIENT_ID}`");
            None
        }
    };
    let client_secret_var = match f.get("clientSecret") {
        Some(n) => match n.as_str().map(interp::sole_reference) {
            Some(Some(var)) => Some(var.to_string()),
            _ => {
                // Never echo the value: it may be a real secret.
                w.redacted_error(
                    &n.pos,
                    &secret_field,
                    "a literal secret is not allowed in the config file",
                    "reference an environment variable instead: clientSecret: ${KORE_CLIENT_SECRET} (and remove the secret from git history)",
                );
                None
            }
        },
        None => {
            w.error(
                at,
                &secret_field,
                format!("missing required field `{secret_field}`"),
                "add `clientSecret: ${KORE_CLIENT_SECRET}`",
            );
            None
        }
    };
    (client_id_raw, client_secret_var)
}

/// `v2MessageField` and `v2TemplateAsCustomMessage`.
fn message_options(w: &mut Walker, f: &Fields, prefix: &str) -> (V2Field, bool) {
    let field =
        match f.get("v2MessageField").map(|n| w.one_of(n, &join(prefix, "v2MessageField"), &["message", "content"])) {
            Some(Some(s)) if s == "content" => V2Field::Content,
            _ => V2Field::Message,
        };
    let template = match f.get("v2TemplateAsCustomMessage") {
        Some(n) => match n.value {
            yaml::Value::Bool(b) => b,
            _ => {
                w.error(
                    &n.pos,
                    &join(prefix, "v2TemplateAsCustomMessage"),
                    "expected true or false",
                    "write true or false",
                );
                true
            }
        },
        None => true,
    };
    (field, template)
}

struct Limits {
    batch_size: usize,
    per_minute: u32,
    per_hour: u32,
    connect_timeout: u32,
    request_timeout: u32,
}

/// `batchSize`, `rateLimits` and `timeouts`, each within its range.
fn limits(w: &mut Walker, f: &Fields, prefix: &str) -> Limits {
    let mut l = Limits {
        batch_size: f
            .get("batchSize")
            .and_then(|n| w.uint(n, &join(prefix, "batchSize"), 1, MAX_BATCH_SIZE))
            .unwrap_or(DEFAULT_BATCH_SIZE) as usize,
        per_minute: DEFAULT_PER_MINUTE,
        per_hour: DEFAULT_PER_HOUR,
        connect_timeout: DEFAULT_CONNECT_SECONDS,
        request_timeout: DEFAULT_REQUEST_SECONDS,
    };
    let (rate_path, time_path) = (join(prefix, "rateLimits"), join(prefix, "timeouts"));
    let rate = f.get("rateLimits").and_then(|n| w.fields(n, &rate_path, RATE_FIELDS));
    let time = f.get("timeouts").and_then(|n| w.fields(n, &time_path, TIMEOUT_FIELDS));
    let get = |w: &mut Walker, group: (&str, &Option<Fields>), name: &str, max: u64| -> Option<u32> {
        let n = group.1.as_ref()?.get(name)?;
        w.uint(n, &join(group.0, name), 1, max).map(|v| v as u32)
    };
    if let Some(v) = get(w, (&rate_path, &rate), "perMinute", MAX_PER_MINUTE) {
        l.per_minute = v;
    }
    if let Some(v) = get(w, (&rate_path, &rate), "perHour", MAX_PER_HOUR) {
        l.per_hour = v;
    }
    if let Some(v) = get(w, (&time_path, &time), "connectSeconds", MAX_CONNECT_SECONDS) {
        l.connect_timeout = v;
    }
    if let Some(v) = get(w, (&time_path, &time), "requestSeconds", MAX_REQUEST_SECONDS) {
        l.request_timeout = v;
    }
    l
}

/// `retention`: a duration such as `90d` or `26weeks` (humantime), at least a day; `off`: none.
fn retention(w: &mut Walker, n: &yaml::Node) -> Option<std::time::Duration> {
    let s = w.string(n, "retention")?;
    let s = s.trim();
    if s == "off" {
        return None;
    }
    match humantime::parse_duration(s) {
        Ok(d) if d >= std::time::Duration::from_secs(86_400) => Some(d),
        Ok(_) => {
            w.error(
                &n.pos,
                "retention",
                format!("`{s}` is shorter than a day"),
                "write at least 1d (e.g. 90d); a tombstone drops per-recipient records for good",
            );
            None
        }
        Err(e) => {
            w.error(
                &n.pos,
                "retention",
                format!("`{s}` is not a duration ({e})"),
                "write e.g. 90d, 26weeks or 1year, or `off` to keep orphaned notifications forever",
            );
            None
        }
    }
}

/// The repository root (`root:`, default the config's directory), which must exist.
fn repository_root(w: &mut Walker, f: &Fields, dir: &Path) -> Option<crate::files::Root> {
    let (rel, pos) = match f.get("root") {
        Some(n) => (w.string(n, "root")?, n.pos.clone()),
        None => (".".to_string(), Pos::default()),
    };
    let base = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    match crate::files::Root::new(&base.join(&rel)) {
        Ok(r) => Some(r),
        Err(e) => {
            w.error(
                &pos,
                "root",
                format!("cannot use `{rel}` as the repository root: {e}"),
                "give an existing directory, relative to kore-notify.yaml",
            );
            None
        }
    }
}

/// `review: {mask: BOOL}`: whether comments and job summaries mask identities and values.
fn review_mask(w: &mut Walker, f: &Fields) -> bool {
    let Some(group) = f.get("review").and_then(|n| w.fields(n, "review", REVIEW_FIELDS)) else { return false };
    match group.get("mask") {
        Some(n) => match n.value {
            yaml::Value::Bool(b) => b,
            _ => {
                w.error(
                    &n.pos,
                    "review.mask",
                    "expected true or false",
                    "write `review: {mask: true}` or leave it out",
                );
                false
            }
        },
        None => false,
    }
}

/// `repository:`: a name for this repository among those that share a state (1 to 200 printable
/// characters).
fn repository_name(w: &mut Walker, n: &yaml::Node) -> Option<String> {
    let name = w.string(n, "repository")?;
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control) {
        w.error(
            &n.pos,
            "repository",
            "expected a name of 1 to 200 printable characters",
            "write e.g. `repository: acme/notifications`, the same in every clone of this repository",
        );
        return None;
    }
    Some(trimmed.to_string())
}

/// `variables:`: valid names, none of them secret-looking.
fn declared_variables(w: &mut Walker, f: &Fields) -> Option<Vec<String>> {
    let Some(n) = f.get("variables") else { return Some(Vec::new()) };
    let items = w.seq(n, "variables")?;
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let path = crate::walk::index("variables", i);
        let Some(name) = item.as_str() else {
            w.error(&item.pos, &path, "expected a variable name", "write e.g. `- RELEASE_NAME`");
            ok = false;
            continue;
        };
        if !interp::valid_name(name) {
            w.error(
                &item.pos,
                &path,
                format!("`{}` is not a variable name", crate::safe::line(name)),
                "use letters, digits and _, not starting with a digit; no ${…}",
            );
            ok = false;
        } else if interp::looks_secret(name) {
            w.error(
                &item.pos,
                &path,
                format!("`{name}` looks like a secret; manifests may never expand secrets"),
                "manifests come from pull requests and their values appear in plans and messages: declare only non-secret variables",
            );
            ok = false;
        } else {
            out.push(name.to_string());
        }
    }
    ok.then_some(out)
}

/// The variables the credentials come from (each target's client secret and client id
/// references, the state URL and its password) may never be declared for manifests.
fn check_no_credentials(w: &mut Walker, f: &Fields, vars: &[String], secret_vars: &[String], targets: &[Target]) {
    let Some(n) = f.get("variables") else { return };
    for (i, v) in vars.iter().enumerate() {
        if secret_vars.contains(v) || targets.iter().any(|t| t.client_id_mentions(v)) {
            w.error(
                &n.pos,
                &crate::walk::index("variables", i),
                format!(
                    "`{v}` holds a credential (clientId, clientSecret, the state URL or its password); manifests may never expand it"
                ),
                "remove it from `variables:`",
            );
        }
    }
}

/// Targets for unit tests elsewhere.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A target `name` on a loopback host, its state a file, with `audience`.
    pub(crate) fn target(name: &str, audience: Option<Audience>) -> Target {
        target::Target::for_tests(name, audience)
    }
}

#[cfg(test)]
mod tests;
