//! Targets: the Kore.ai bots one repository sends through (dev → staging → production), each
//! with its own host, credentials, state, limits and audience rule, and an optional promotion
//! gate. A config without `targets:` has one implicit target made of today's top-level fields,
//! so an existing repository upgrades with nothing to change: same state, same fingerprints.
//!
//! With `targets:`, the settings that are not a target's identity (batch size, limits, timeouts,
//! v2 options) may still be written at the top as defaults every target inherits; the identity
//! (host, bot, credentials, state, audience, promotion) must be written per target.

use super::*;

/// The name of the implicit target of a config without `targets:`.
pub(crate) const IMPLICIT: &str = "default";

/// Fields a target may have (inside `targets: {NAME: …}`, or at the top without `targets:`).
pub(crate) const TARGET_FIELDS: &[&str] = &[
    "host",
    "botId",
    "clientId",
    "clientSecret",
    "state",
    "v2MessageField",
    "v2TemplateAsCustomMessage",
    "batchSize",
    "rateLimits",
    "timeouts",
    "audience",
    "promoteFrom",
    "promotion",
    "skipUnreachable",
    crate::policy::HOURS_FIELD,
    "deliveryWindow",
    "rollout",
];

/// Target fields that may also be written at the top of a config with `targets:`, as defaults.
pub(crate) const INHERITED: &[&str] = &[
    "v2MessageField",
    "v2TemplateAsCustomMessage",
    "batchSize",
    "rateLimits",
    "timeouts",
    "skipUnreachable",
    "deliveryWindow",
    crate::policy::HOURS_FIELD,
    "rollout",
];

pub(crate) const AUDIENCE_FIELDS: &[&str] = &["only", "replaceWith"];

/// Largest audience list file read.
const MAX_AUDIENCE_BYTES: u64 = 16 * 1024 * 1024;

/// One bot to send through.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) name: String,
    /// Made of the top-level fields of a config without `targets:`.
    pub(crate) implicit: bool,
    /// The config file (for messages about credentials).
    pub(crate) config_path: PathBuf,
    pub(crate) host: String,
    pub(crate) bot_id: String,
    /// Raw values, resolved only when talking to Kore.ai (plan never reads credentials).
    client_id_raw: String,
    client_secret_var: String,
    /// Where this target's state lives.
    pub(crate) state: crate::state::StoreSpec,
    pub(crate) v2_field: V2Field,
    /// `v2TemplateAsCustomMessage`.
    pub(crate) v2_template_as_custom_message: bool,
    pub(crate) batch_size: usize,
    pub(crate) per_minute: u32,
    pub(crate) per_hour: u32,
    pub(crate) connect_timeout: u32,
    pub(crate) request_timeout: u32,
    /// `audience:`: who this target may reach.
    pub(crate) audience: Option<Audience>,
    /// `promoteFrom:` and `promotion:`: the target whose evidence this one needs.
    pub(crate) promotion: Option<Promotion>,
    /// `skipUnreachable`: the default of manifests that do not say (see `crate::unreachable`).
    pub(crate) skip_unreachable: bool,
    /// `businessHours:`, in this target's timezone (the policy's `outsideBusinessHours`).
    pub(crate) business_hours: Option<crate::policy::BusinessHours>,
    /// `deliveryWindow:` the window of this target's notifications whose manifests do not write
    /// their own (`None`, or `off`: any time).
    pub(crate) delivery_window: Option<std::sync::Arc<crate::window::DeliveryWindow>>,
    /// `rollout:` the canary waves of this target's notifications whose manifests do not write
    /// their own (`None`, or `off`: everyone at once).
    pub(crate) rollout: Option<std::sync::Arc<crate::rollout::Rollout>>,
}

/// `audience:` of a target, so a non-production target never reaches production users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    /// `only`: recipients outside the list are left out of this target's plan.
    Only(AudienceList),
    /// `replaceWith`: each notification goes to these identities instead, with the parameters
    /// (and custom messages) of its first recipients.
    ReplaceWith(AudienceList),
}

/// The identities of an audience rule, and where they were written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AudienceList {
    pub(crate) identities: Vec<String>,
    /// `inline`, or the file's path as written.
    pub(crate) source: String,
}

impl Audience {
    pub(crate) fn list(&self) -> &AudienceList {
        match self {
            Audience::Only(l) | Audience::ReplaceWith(l) => l,
        }
    }
    pub(crate) fn rule(&self) -> &'static str {
        match self {
            Audience::Only(_) => "only",
            Audience::ReplaceWith(_) => "replaceWith",
        }
    }
}

/// `promoteFrom: NAME` with `promotion: accepted|delivered`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Promotion {
    pub(crate) from: String,
    pub(crate) level: PromotionLevel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PromotionLevel {
    /// Kore.ai accepted a request with the same content on the other target.
    Accepted,
    /// Kore.ai reported a request with the same content as delivered (status SUCCESS).
    Delivered,
}

impl PromotionLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PromotionLevel::Accepted => "accepted",
            PromotionLevel::Delivered => "delivered",
        }
    }
}

impl Target {
    #[cfg(test)]
    pub(super) fn for_tests(name: &str, audience: Option<Audience>) -> Target {
        Target {
            name: name.to_string(),
            implicit: false,
            config_path: PathBuf::from(FILE_NAME),
            host: "http://127.0.0.1:1".into(),
            bot_id: format!("st-{name}"),
            client_id_raw: "id".into(),
            client_secret_var: "SECRET".into(),
            state: crate::state::StoreSpec::File(PathBuf::from(format!(".kore-notify/{name}.json"))),
            v2_field: V2Field::Message,
            v2_template_as_custom_message: true,
            batch_size: 1000,
            per_minute: DEFAULT_PER_MINUTE,
            per_hour: DEFAULT_PER_HOUR,
            connect_timeout: DEFAULT_CONNECT_SECONDS,
            request_timeout: DEFAULT_REQUEST_SECONDS,
            audience,
            promotion: None,
            skip_unreachable: false,
            business_hours: None,
            delivery_window: None,
            rollout: None,
        }
    }

    /// The identity of the target, part of every fingerprint: the same manifests sent to another
    /// bot are different messages. The host and the target's name are left out on purpose, so
    /// moving to a new host URL, or naming the target, does not resend everything.
    pub(crate) fn identity(&self) -> &str {
        &self.bot_id
    }

    /// Whether other repositories may share the state (a database; a state file lives inside
    /// this repository).
    pub(crate) fn state_is_shared(&self) -> bool {
        self.state.is_shared()
    }

    /// The state store of this target.
    pub(crate) fn store(&self, env: &dyn Env, clock: crate::clock::Clock) -> Result<Box<dyn crate::state::StateStore>> {
        crate::state::store_for(&self.state, self.identity(), env, clock)
    }

    /// The store of this target's test ledger (`kore-notify test-send`): a second state beside
    /// the target's, never the recipients' one. A file store keeps it in `<state>.test-sends.json`
    /// next to the state file (`state.json` → `state.test-sends.json`); PostgreSQL under the
    /// target key `<botId>#test-sends`. Each has its own lock and journal.
    pub(crate) fn test_store(
        &self,
        env: &dyn Env,
        clock: crate::clock::Clock,
    ) -> Result<Box<dyn crate::state::StateStore>> {
        let spec = match &self.state {
            crate::state::StoreSpec::File(p) => crate::state::StoreSpec::File(crate::testsend::ledger_path(p)),
            pg @ crate::state::StoreSpec::Postgres(_) => pg.clone(),
        };
        crate::state::store_for(&spec, &format!("{}#test-sends", self.identity()), env, clock)
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
        let field = |f: &str| if self.implicit { f.to_string() } else { format!("targets.{}.{f}", self.name) };
        // Every missing variable at once, not one per run.
        let mut missing: Vec<(String, String)> = Vec::new();
        let client_id = loop {
            match interp::interpolate(&self.client_id_raw, &Past(env, &missing)) {
                Ok(v) => break v,
                Err(interp::InterpError::Undefined(name)) if missing.len() < 16 => {
                    missing.push((name, field("clientId")));
                }
                Err(other) => {
                    return Err(Error::Config {
                        path: self.config_path.clone(),
                        message: format!("{}: {other}", field("clientId")),
                    });
                }
            }
        };
        let client_secret = env.get(&self.client_secret_var).filter(|s| !s.is_empty());
        if client_secret.is_none() {
            missing.push((self.client_secret_var.clone(), field("clientSecret")));
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

    /// The variables this target's credentials come from (the client secret, the client id's
    /// references, the state URL's password).
    fn credential_vars(&self, written_state: Option<&str>) -> Vec<String> {
        let mut out = vec![self.client_secret_var.clone()];
        out.extend(written_state.and_then(crate::state::StoreSpec::password_var_of));
        out
    }

    /// Whether the client id refers to variable `var`.
    pub(super) fn client_id_mentions(&self, var: &str) -> bool {
        self.client_id_raw.contains(&format!("${{{var}"))
    }
}

/// Whether `name` can name a target: it appears in GitHub environment names
/// (`kore-notify-NAME`), state paths and messages.
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=40).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_'))
}

/// What every target is parsed with.
pub(super) struct Context<'a> {
    pub(super) path: &'a Path,
    pub(super) dir: &'a Path,
    pub(super) root: Option<&'a crate::files::Root>,
    pub(super) env: &'a dyn Env,
}

/// The targets of a config: `targets:`, or the implicit one. Problems are reported; a target
/// with a problem is left out (the caller sees the errors).
pub(super) fn targets(w: &mut Walker, f: &Fields, at: &Pos, cx: &Context) -> (Vec<Target>, Vec<String>) {
    let Some(node) = f.get("targets") else {
        let written = f.get("state").and_then(|n| n.as_str()).map(str::to_string);
        let t = one(w, f, at, cx, IMPLICIT, "");
        let vars = t.as_ref().map(|t| t.credential_vars(written.as_deref())).unwrap_or_default();
        return (t.into_iter().collect(), vars);
    };
    for (name, n) in f.iter().filter(|(k, _)| TARGET_FIELDS.contains(&k.as_str()) && !INHERITED.contains(&k.as_str())) {
        w.error(
            &n.pos,
            name,
            format!("`{name}` belongs to a target when the config has `targets:`"),
            format!("move it into each target: targets: {{NAME: {{{name}: …}}}}"),
        );
    }
    let yaml::Value::Map(entries) = &node.value else {
        w.error(
            &node.pos,
            "targets",
            "expected a mapping of target names",
            "write targets: {staging: {host: …}, production: {…}}",
        );
        return (Vec::new(), Vec::new());
    };
    if entries.is_empty() {
        w.error(&node.pos, "targets", "no targets", "name at least one: targets: {production: {host: …, botId: …}}");
    }
    let defaults: Fields =
        f.iter().filter(|(k, _)| INHERITED.contains(&k.as_str())).map(|(k, v)| (k.clone(), *v)).collect();
    let (mut out, mut vars) = (Vec::new(), Vec::new());
    for (k, v) in entries {
        let name = k.key_text();
        let path = join("targets", &name);
        if !valid_name(&name) {
            w.error(
                &k.pos,
                &path,
                format!("`{}` is not a target name", crate::safe::line(&name)),
                "use 1 to 40 lowercase letters, digits, - and _, starting with a letter (it names GitHub environments and state files)",
            );
            continue;
        }
        let Some(tf) = w.fields(v, &path, TARGET_FIELDS) else { continue };
        let mut merged = defaults.clone();
        merged.extend(tf);
        let written = merged.get("state").and_then(|n| n.as_str()).map(str::to_string);
        if let Some(t) = one(w, &merged, &v.pos, cx, &name, &path) {
            vars.extend(t.credential_vars(written.as_deref()));
            out.push(t);
        }
    }
    check_apart(w, &out, node);
    check_promotions(w, &out, f);
    (out, vars)
}

/// One target from its fields (`prefix` is `""` for the implicit one, `targets.NAME` otherwise).
fn one(w: &mut Walker, f: &Fields, at: &Pos, cx: &Context, name: &str, prefix: &str) -> Option<Target> {
    let before = w.diags.errors();
    let (host, bot_id) = host_and_bot(w, f, at, prefix);
    let (client_id_raw, client_secret_var) = credential_fields(w, f, at, prefix);
    let state = cx.root.and_then(|root| state_spec(w, f, at, cx, root, name, prefix));
    let (v2_field, v2_template_as_custom_message) = message_options(w, f, prefix);
    let limits = limits(w, f, prefix);
    let audience = f.get("audience").and_then(|n| audience(w, n, cx, &join(prefix, "audience")));
    let promotion = promotion(w, f, name, prefix);
    let skip_unreachable = crate::unreachable::skip_unreachable(w, f, prefix).unwrap_or(false);
    let business_hours = crate::policy::business_hours(w, f, prefix);
    let delivery_window = match crate::window::parse::delivery_window(w, f, prefix) {
        Some(crate::window::parse::Setting::On(d)) => Some(std::sync::Arc::new(d)),
        _ => None,
    };
    let rollout = match crate::rollout::parse::rollout(w, f, prefix) {
        Some(crate::rollout::parse::Setting::On(r)) => Some(std::sync::Arc::new(r)),
        _ => None,
    };
    let (Some(host), Some(bot_id), Some(client_id_raw), Some(client_secret_var), Some(state)) =
        (host, bot_id, client_id_raw, client_secret_var, state)
    else {
        return None;
    };
    if w.diags.errors() > before {
        return None;
    }
    Some(Target {
        name: name.to_string(),
        implicit: prefix.is_empty(),
        config_path: cx.path.to_path_buf(),
        host: host.trim_end_matches('/').to_string(),
        bot_id,
        client_id_raw,
        client_secret_var,
        state,
        v2_field,
        v2_template_as_custom_message,
        batch_size: limits.batch_size,
        per_minute: limits.per_minute,
        per_hour: limits.per_hour,
        connect_timeout: limits.connect_timeout,
        request_timeout: limits.request_timeout,
        audience,
        promotion,
        skip_unreachable,
        business_hours,
        delivery_window,
        rollout,
    })
}

/// The target's state: `state:` (default `.kore-notify/state.json` for the implicit target,
/// `.kore-notify/NAME.json` for a named one), or `KORE_NOTIFY_STATE_URL`.
fn state_spec(
    w: &mut Walker,
    f: &Fields,
    at: &Pos,
    cx: &Context,
    root: &crate::files::Root,
    name: &str,
    prefix: &str,
) -> Option<crate::state::StoreSpec> {
    let node = f.get("state");
    // A database URL is taken as written (its password is a `${VAR}` the store resolves when it
    // connects); a path is interpolated like any other value.
    let written = match node {
        Some(n) if n.as_str().is_some_and(crate::state::pg::is_postgres_url) => n.as_str().map(str::to_string),
        Some(n) => Some(w.string(n, &join(prefix, "state"))?),
        None => None,
    };
    let default =
        if prefix.is_empty() { crate::state::DEFAULT_STATE.to_string() } else { format!(".kore-notify/{name}.json") };
    let env_url = cx.env.get(crate::state::STATE_URL_VAR);
    match crate::state::StoreSpec::parse(written.as_deref(), &default, env_url.as_deref(), root, cx.dir) {
        Ok(s) => Some(s),
        Err(e) => {
            let pos = node.map_or_else(|| at.clone(), |n| n.pos.clone());
            let field = join(prefix, "state");
            if e.redact {
                w.redacted_error(&pos, &field, e.message, e.help);
            } else {
                w.error(&pos, &field, e.message, e.help);
            }
            None
        }
    }
}

/// Two targets never share a state: not the same file, and not the same bot in one database.
fn check_apart(w: &mut Walker, targets: &[Target], node: &yaml::Node) {
    for (i, a) in targets.iter().enumerate() {
        for b in &targets[..i] {
            let same = match (&a.state, &b.state) {
                (crate::state::StoreSpec::File(_), crate::state::StoreSpec::File(_)) => {
                    a.state.place() == b.state.place()
                }
                _ => a.state.place() == b.state.place() && a.bot_id == b.bot_id,
            };
            if same {
                w.error(
                    &node.pos,
                    &join("targets", &a.name),
                    format!("targets `{}` and `{}` would keep their state in the same place", b.name, a.name),
                    "give each target its own `state:` (a file each, or its own bot in a database)",
                );
            }
        }
    }
}

/// `promoteFrom` names another target, and promotions do not go round in a circle.
fn check_promotions(w: &mut Walker, targets: &[Target], f: &Fields) {
    let pos = f.get("targets").map(|n| n.pos.clone()).unwrap_or_default();
    for t in targets {
        let Some(p) = &t.promotion else { continue };
        let field = format!("targets.{}.promoteFrom", t.name);
        if !targets.iter().any(|o| o.name == p.from) {
            let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            w.error(
                &pos,
                &field,
                format!("no target `{}`", crate::safe::line(&p.from)),
                format!("name one of: {}", names.join(", ")),
            );
            continue;
        }
        // Walk the chain: a circle means nothing could ever be sent.
        let mut seen = vec![t.name.as_str()];
        let mut at = p.from.as_str();
        while let Some(next) = targets.iter().find(|o| o.name == at) {
            if seen.contains(&at) {
                w.error(
                    &pos,
                    &field,
                    format!("promotion goes round in a circle ({} → {at})", seen.join(" → ")),
                    "one target must have no promoteFrom",
                );
                break;
            }
            seen.push(at);
            match &next.promotion {
                Some(q) => at = q.from.as_str(),
                None => break,
            }
        }
    }
}

/// `promoteFrom: NAME` and `promotion: accepted|delivered` (default accepted).
fn promotion(w: &mut Walker, f: &Fields, name: &str, prefix: &str) -> Option<Promotion> {
    let level =
        match f.get("promotion").map(|n| (n, w.one_of(n, &join(prefix, "promotion"), &["accepted", "delivered"]))) {
            Some((_, Some(s))) if s == "delivered" => PromotionLevel::Delivered,
            Some((n, _)) if !f.contains_key("promoteFrom") => {
                w.error(
                    &n.pos,
                    &join(prefix, "promotion"),
                    "`promotion` needs `promoteFrom`",
                    "add promoteFrom: staging (the target whose sends prove the content), or remove it",
                );
                return None;
            }
            _ => PromotionLevel::Accepted,
        };
    let n = f.get("promoteFrom")?;
    let from = w.string(n, &join(prefix, "promoteFrom"))?;
    if prefix.is_empty() {
        w.error(
            &n.pos,
            "promoteFrom",
            "a config without `targets:` has no other target to promote from",
            "declare targets: {staging: {…}, production: {…, promoteFrom: staging}}",
        );
        return None;
    }
    if from == name {
        w.error(
            &n.pos,
            &join(prefix, "promoteFrom"),
            "a target cannot promote from itself",
            "name the target whose sends prove the content, e.g. staging",
        );
        return None;
    }
    Some(Promotion { from, level })
}

/// `audience: {only: FILE|[…]}` or `audience: {replaceWith: FILE|[…]}`.
fn audience(w: &mut Walker, n: &yaml::Node, cx: &Context, path: &str) -> Option<Audience> {
    let f = w.fields(n, path, AUDIENCE_FIELDS)?;
    if f.len() != 1 {
        w.error(
            &n.pos,
            path,
            "expected exactly one of `only` and `replaceWith`",
            "write audience: {only: [qa@example.com]} or audience: {replaceWith: audiences/seeds.txt}",
        );
        return None;
    }
    let (rule, node) = f.iter().next()?;
    let field = join(path, rule);
    let list = match &node.value {
        yaml::Value::Seq(_) => {
            let ids: Vec<String> = w.strings(node, &field).into_iter().map(|(s, _)| s.trim().to_string()).collect();
            AudienceList { identities: ids, source: "inline".into() }
        }
        _ => {
            let rel = w.string(node, &field)?;
            let ids = audience_file(w, node, cx, &field, &rel)?;
            AudienceList { identities: ids, source: rel }
        }
    };
    if list.identities.iter().any(String::is_empty) || list.identities.is_empty() {
        w.error(
            &node.pos,
            &field,
            "expected at least one identity, and no empty one",
            "list the test identities, e.g. [qa1@example.com, qa2@example.com]",
        );
        return None;
    }
    if let Some(bad) = list.identities.iter().find(|s| s.chars().any(char::is_control)) {
        w.error(
            &node.pos,
            &field,
            format!("identity `{}` holds a control character", crate::safe::line(bad)),
            "remove it",
        );
        return None;
    }
    Some(if rule == "only" { Audience::Only(list) } else { Audience::ReplaceWith(list) })
}

/// An audience list file: one identity per line (`#` starts a comment), or a `.csv` file's first
/// column after its header. Inside the repository root, read with a size limit.
fn audience_file(w: &mut Walker, node: &yaml::Node, cx: &Context, field: &str, rel: &str) -> Option<Vec<String>> {
    let root = cx.root?;
    let path = cx.dir.join(rel);
    let text = match root
        .confine(&path)
        .map_err(|e| e.to_string())
        .and_then(|p| crate::files::read_named_text(&p, MAX_AUDIENCE_BYTES).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => {
            w.error(&node.pos, field, format!("cannot read `{}`: {e}", crate::safe::line(rel)), "give a file inside the repository, relative to kore-notify.yaml: one identity per line, or a CSV whose first column holds them");
            return None;
        }
    };
    let csv = rel.to_ascii_lowercase().ends_with(".csv");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if (csv && i == 0) || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = if csv { first_csv_field(line) } else { line.to_string() };
        out.push(id);
    }
    Some(out)
}

/// The first field of a CSV line (quotes removed).
fn first_csv_field(line: &str) -> String {
    if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    out.push('"');
                    chars.next();
                }
                '"' => break,
                c => out.push(c),
            }
        }
        out.trim().to_string()
    } else {
        line.split(',').next().unwrap_or_default().trim().to_string()
    }
}
