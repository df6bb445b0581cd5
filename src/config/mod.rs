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

use host::check_host;

pub(crate) use doc::ConfigDoc;

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
    crate::policy::FIELD,
    crate::policy::HOURS_FIELD,
];
pub(crate) const REVIEW_FIELDS: &[&str] = &["mask"];
pub(crate) const RATE_FIELDS: &[&str] = &["perMinute", "perHour"];
pub(crate) const TIMEOUT_FIELDS: &[&str] = &["connectSeconds", "requestSeconds"];

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) path: PathBuf,
    /// Directory of the config file; relative paths are resolved against it.
    pub(crate) dir: PathBuf,
    pub(crate) host: String,
    pub(crate) bot_id: String,
    /// Raw values, resolved only when talking to Kore.ai (plan never reads credentials).
    client_id_raw: String,
    client_secret_var: String,
    /// Where the state lives: a file inside the repository, or a PostgreSQL database.
    pub(crate) state: StateLocation,
    /// The repository root: every path named by the config or a manifest stays inside it.
    pub(crate) root: crate::files::Root,
    /// Variables manifests may expand.
    pub(crate) variables: Vec<String>,
    pub(crate) manifests: Vec<String>,
    pub(crate) v2_field: V2Field,
    /// `v2TemplateAsCustomMessage`.
    pub(crate) v2_template_as_custom_message: bool,
    pub(crate) batch_size: usize,
    pub(crate) per_minute: u32,
    pub(crate) per_hour: u32,
    pub(crate) connect_timeout: u32,
    pub(crate) request_timeout: u32,
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
    /// `policy:` (empty: everything is allowed) and `businessHours:` (see `src/policy/`).
    pub(crate) policy: crate::policy::Policy,
    pub(crate) business_hours: Option<crate::policy::BusinessHours>,
}

/// Where the state lives.
#[derive(Clone, Debug)]
pub(crate) enum StateLocation {
    /// A file inside the repository (the default, `.kore-notify/state.json`).
    File(PathBuf),
    /// A PostgreSQL database (`state: postgres://…` or `KORE_NOTIFY_STATE_URL`).
    Postgres(crate::state::pg::PgSpec),
}

impl StateLocation {
    /// The state file, when the state is kept in one.
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            StateLocation::File(p) => Some(p),
            StateLocation::Postgres(_) => None,
        }
    }
}

/// The environment variable that moves the state into PostgreSQL, whatever the config says.
pub(crate) const STATE_URL_VAR: &str = "KORE_NOTIFY_STATE_URL";

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
        let (host, bot_id) = target(&mut w, &f, &doc.pos);
        let (client_id_raw, client_secret_var) = credential_fields(&mut w, &f, &doc.pos);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = repository_root(&mut w, &f, &dir);
        let state = state_location(&mut w, &f, &doc.pos, root.as_ref(), &dir, env);
        let variables = declared_variables(&mut w, &f);
        let manifests = match f.get("manifests") {
            Some(n) => w.strings(n, "manifests").into_iter().map(|(s, _)| s).collect(),
            None => vec!["notifications".to_string()],
        };
        let (v2_field, v2_template_as_custom_message) = message_options(&mut w, &f);
        let limits = limits(&mut w, &f);
        let retention = f.get("retention").and_then(|n| retention(&mut w, n));
        let repository = f.get("repository").and_then(|n| repository_name(&mut w, n));
        let review_mask = review_mask(&mut w, &f);
        let business_hours = crate::policy::business_hours(&mut w, &f);
        let policy = crate::policy::policy(&mut w, &f, f.contains_key(crate::policy::HOURS_FIELD)).unwrap_or_default();
        if let (Some(vars), Some(secret)) = (&variables, &client_secret_var) {
            let mut creds = vec![secret.clone(), STATE_URL_VAR.to_string()];
            creds.extend(state_password_var(&f));
            check_no_credentials(&mut w, &f, vars, &creds, client_id_raw.as_deref().unwrap_or_default());
        }
        let clean = w.diags.errors() == errors_before;
        let (
            Some(host),
            Some(bot_id),
            Some(client_id_raw),
            Some(client_secret_var),
            Some(root),
            Some(state),
            Some(variables),
            true,
        ) = (host, bot_id, client_id_raw, client_secret_var, root, state, variables, clean)
        else {
            return Ok(None);
        };
        let origin = origin::origin(repository.as_deref(), root.path(), &dir);
        Ok(Some(Config {
            origin,
            review_mask,
            policy,
            business_hours,
            path: path.to_path_buf(),
            state,
            root,
            variables,
            dir,
            host: host.trim_end_matches('/').to_string(),
            bot_id,
            client_id_raw,
            client_secret_var,
            manifests,
            v2_field,
            v2_template_as_custom_message,
            batch_size: limits.batch_size,
            per_minute: limits.per_minute,
            per_hour: limits.per_hour,
            connect_timeout: limits.connect_timeout,
            request_timeout: limits.request_timeout,
            retention,
        }))
    }

    /// Resolves the credentials from the environment. Only apply and status --refresh call this.
    pub(crate) fn credentials(&self, env: &dyn Env) -> Result<Credentials> {
        /// The environment, with the variables already found missing set (to find the next one).
        struct Past<'a>(&'a dyn Env, &'a [(String, String)]);
        impl Env for Past<'_> {
            fn get(&self, name: &str) -> Option<String> {
                if self.1.iter().any(|(n, _)| n == name) { Some(String::new()) } else { self.0.get(name) }
            }
        }
        // Every missing variable at once, not one per run.
        let mut missing: Vec<(String, String)> = Vec::new();
        let client_id = loop {
            match interp::interpolate(&self.client_id_raw, &Past(env, &missing)) {
                Ok(v) => break v,
                Err(interp::InterpError::Undefined(name)) if missing.len() < 16 => {
                    missing.push((name, "clientId".into()));
                }
                Err(other) => {
                    return Err(Error::Config { path: self.path.clone(), message: format!("clientId: {other}") });
                }
            }
        };
        let client_secret = env.get(&self.client_secret_var).filter(|s| !s.is_empty());
        if client_secret.is_none() {
            missing.push((self.client_secret_var.clone(), "clientSecret".into()));
        }
        match (client_secret, missing.len()) {
            (Some(client_secret), 0) => Ok(Credentials { client_id, client_secret }),
            (_, 1) => {
                let (name, field) = missing.remove(0);
                Err(Error::MissingEnv { name, field })
            }
            _ => Err(Error::MissingEnvs(missing)),
        }
    }

    /// The identity of the target, part of every fingerprint: the same manifests sent to another
    /// bot are different messages. The host is left out on purpose, so moving to a new host URL
    /// for the same bot does not resend everything.
    pub(crate) fn target(&self) -> &str {
        &self.bot_id
    }

    /// This config's directory inside its git work tree (`""` or `"sub/dir/"`), for links to
    /// manifest lines.
    pub(crate) fn dir_in_work_tree(&self) -> String {
        origin::dir_in_work_tree(&self.dir)
    }

    /// What the policy's verdicts need from the config. The target is the config's one implicit
    /// target, named `default`.
    pub(crate) fn policy_context(&self) -> crate::policy::PolicyContext<'_> {
        crate::policy::PolicyContext { policy: &self.policy, hours: self.business_hours.as_ref(), target: "default" }
    }

    /// Whether other repositories may share the state (a database; a state file lives inside
    /// this repository).
    pub(crate) fn state_is_shared(&self) -> bool {
        matches!(self.state, StateLocation::Postgres(_))
    }
}

type Fields<'n> = std::collections::BTreeMap<String, &'n yaml::Node>;

/// Where the state lives unless the config says otherwise.
pub(crate) const DEFAULT_STATE: &str = ".kore-notify/state.json";
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

fn required(w: &mut Walker, f: &Fields, at: &Pos, name: &str) -> Option<String> {
    match f.get(name) {
        Some(n) => w.string(n, name),
        None => {
            w.error(at, name, format!("missing required field `{name}`"), format!("add `{name}: …` to {FILE_NAME}"));
            None
        }
    }
}

/// `host` and `botId`, checked.
fn target(w: &mut Walker, f: &Fields, at: &Pos) -> (Option<String>, Option<String>) {
    let host = required(w, f, at, "host");
    let bot_id = required(w, f, at, "botId");
    if let (Some(h), Some(n)) = (&host, f.get("host"))
        && let Err(msg) = check_host(h)
    {
        w.error(&n.pos, "host", msg, "use https://your-kore-host (http:// is allowed only for 127.0.0.1/localhost)");
    }
    if let (Some(b), Some(n)) = (&bot_id, f.get("botId"))
        && (b.is_empty() || b.contains(['/', '?', '#', ' ']))
    {
        w.error(
            &n.pos,
            "botId",
            format!("`{}` is not a valid bot or stream id", crate::safe::line(b)),
            "copy the Bot ID from General Settings, e.g. st-1234…",
        );
    }
    (host, bot_id)
}

/// `clientId` (raw, resolved only when talking to Kore.ai) and the variable `clientSecret` names.
fn credential_fields(w: &mut Walker, f: &Fields, at: &Pos) -> (Option<String>, Option<String>) {
    let client_id_raw = match f.get("clientId") {
        Some(n) => match &n.value {
            yaml::Value::Str(s) => Some(s.clone()),
            _ => {
                w.error(&n.pos, "clientId", "expected a string", "write clientId: ${KORE_CLIENT_ID}");
                None
            }
        },
        None => {
            w.error(at, "clientId", "missing required field `clientId`", "add `clientId: ${KORE_CLIENT_ID}`");
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
                    "clientSecret",
                    "a literal secret is not allowed in the config file",
                    "reference an environment variable instead: clientSecret: ${KORE_CLIENT_SECRET} (and remove the secret from git history)",
                );
                None
            }
        },
        None => {
            w.error(
                at,
                "clientSecret",
                "missing required field `clientSecret`",
                "add `clientSecret: ${KORE_CLIENT_SECRET}`",
            );
            None
        }
    };
    (client_id_raw, client_secret_var)
}

/// `v2MessageField` and `v2TemplateAsCustomMessage`.
fn message_options(w: &mut Walker, f: &Fields) -> (V2Field, bool) {
    let field = match f.get("v2MessageField").map(|n| w.one_of(n, "v2MessageField", &["message", "content"])) {
        Some(Some(s)) if s == "content" => V2Field::Content,
        _ => V2Field::Message,
    };
    let template = match f.get("v2TemplateAsCustomMessage") {
        Some(n) => match n.value {
            yaml::Value::Bool(b) => b,
            _ => {
                w.error(&n.pos, "v2TemplateAsCustomMessage", "expected true or false", "write true or false");
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
fn limits(w: &mut Walker, f: &Fields) -> Limits {
    let mut l = Limits {
        batch_size: f
            .get("batchSize")
            .and_then(|n| w.uint(n, "batchSize", 1, MAX_BATCH_SIZE))
            .unwrap_or(DEFAULT_BATCH_SIZE) as usize,
        per_minute: DEFAULT_PER_MINUTE,
        per_hour: DEFAULT_PER_HOUR,
        connect_timeout: DEFAULT_CONNECT_SECONDS,
        request_timeout: DEFAULT_REQUEST_SECONDS,
    };
    let rate = f.get("rateLimits").and_then(|n| w.fields(n, "rateLimits", RATE_FIELDS));
    let time = f.get("timeouts").and_then(|n| w.fields(n, "timeouts", TIMEOUT_FIELDS));
    let get = |w: &mut Walker, group: (&str, &Option<Fields>), name: &str, max: u64| -> Option<u32> {
        let n = group.1.as_ref()?.get(name)?;
        w.uint(n, &join(group.0, name), 1, max).map(|v| v as u32)
    };
    if let Some(v) = get(w, ("rateLimits", &rate), "perMinute", MAX_PER_MINUTE) {
        l.per_minute = v;
    }
    if let Some(v) = get(w, ("rateLimits", &rate), "perHour", MAX_PER_HOUR) {
        l.per_hour = v;
    }
    if let Some(v) = get(w, ("timeouts", &time), "connectSeconds", MAX_CONNECT_SECONDS) {
        l.connect_timeout = v;
    }
    if let Some(v) = get(w, ("timeouts", &time), "requestSeconds", MAX_REQUEST_SECONDS) {
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

/// Where the state lives: `KORE_NOTIFY_STATE_URL` when set; else `state:` as a PostgreSQL URL
/// (its password only as a `${VAR}` reference) or a path inside the repository root.
fn state_location(
    w: &mut Walker,
    f: &Fields,
    at: &Pos,
    root: Option<&crate::files::Root>,
    dir: &Path,
    env: &dyn Env,
) -> Option<StateLocation> {
    use crate::state::pg::{PgSpec, is_postgres_url};
    if let Some(url) = env.get(STATE_URL_VAR).filter(|v| !v.trim().is_empty()) {
        return match PgSpec::secret(&url, STATE_URL_VAR) {
            Ok(spec) => Some(StateLocation::Postgres(spec)),
            Err(e) => {
                w.error(
                    at,
                    "state",
                    format!("{STATE_URL_VAR}: {e}"),
                    "set it to postgres://user:password@host:5432/database, or unset it to use `state:`",
                );
                None
            }
        };
    }
    let node = f.get("state");
    if let Some(n) = node
        && let Some(raw) = n.as_str()
        && is_postgres_url(raw)
    {
        return match PgSpec::written(raw, "state in kore-notify.yaml") {
            Ok(spec) => Some(StateLocation::Postgres(spec)),
            Err(e) => {
                // The line is not shown: it may hold a password.
                w.redacted_error(
                    &n.pos,
                    "state",
                    e,
                    "state: postgres://user:${KORE_NOTIFY_PG_PASSWORD}@host:5432/database?sslmode=require",
                );
                None
            }
        };
    }
    let rel = node.and_then(|n| w.string(n, "state")).unwrap_or_else(|| DEFAULT_STATE.into());
    root.and_then(|r| state_inside(w, f, r, &dir.join(&rel))).map(StateLocation::File)
}

/// The state path, which must resolve inside the repository root.
fn state_inside(w: &mut Walker, f: &Fields, root: &crate::files::Root, path: &Path) -> Option<PathBuf> {
    match root.confine_new(path) {
        Ok(_) => Some(path.to_path_buf()),
        Err(e) => {
            let pos = f.get("state").map(|n| n.pos.clone()).unwrap_or_default();
            w.error(&pos, "state", format!("cannot keep the state there: {e}"), e.help());
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

/// The variable the password of a PostgreSQL `state:` URL comes from, when it names one (whether
/// or not `KORE_NOTIFY_STATE_URL` overrides it now: it may not tomorrow).
fn state_password_var(f: &Fields) -> Option<String> {
    let raw = f.get("state")?.as_str()?;
    let spec = crate::state::pg::PgSpec::written(raw, "state").ok()?;
    spec.password_var().map(str::to_string)
}

/// The variables the credentials come from (the client secret, the client id's references, the
/// state URL and its password) may never be declared for manifests.
fn check_no_credentials(w: &mut Walker, f: &Fields, vars: &[String], secret_vars: &[String], client_id_raw: &str) {
    let Some(n) = f.get("variables") else { return };
    for (i, v) in vars.iter().enumerate() {
        if secret_vars.contains(v) || client_id_raw.contains(&format!("${{{v}")) {
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

#[cfg(test)]
mod tests;
