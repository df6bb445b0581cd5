//! `${VAR}` interpolation in config and manifest string values. Interpolation happens after YAML
//! parsing, on scalar strings only, so a variable can never inject YAML structure. `${VAR:-default}`
//! supplies a default; `$${` writes a literal `${`. An undefined variable is an error naming it.
//!
//! Manifests are untrusted (they arrive in pull requests): they may expand only the variables the
//! config declares in `variables:`, never the ambient environment, never the
//! credentials, never a name that looks like a secret ([`looks_secret`]). Expansion output is
//! bounded ([`interpolate_bounded`]), so `${BIG}` repeated cannot exhaust memory.

/// Looks variables up; the environment in production (`cli::ProcessEnv`), a map in tests.
pub trait Env: Sync {
    fn get(&self, name: &str) -> Option<String>;
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InterpError {
    Undefined(String),
    Malformed(String),
    /// A manifest used a variable the config does not declare for manifests.
    Undeclared(String),
    /// The expanded text would exceed the limit (bytes).
    TooLong(usize),
    /// A config field (other than the credentials) used a secret-looking variable: its value
    /// would appear in plans.
    Secret(String),
}

impl std::fmt::Display for InterpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpError::Undefined(n) => write!(f, "environment variable {n} is not set"),
            InterpError::Malformed(m) => write!(f, "{m}"),
            InterpError::Undeclared(n) => {
                write!(f, "variable {n} is not declared for manifests")
            }
            InterpError::TooLong(limit) => {
                write!(f, "variable expansion exceeds the limit of {limit} bytes")
            }
            InterpError::Secret(n) => write!(f, "variable {n} looks like a secret and cannot be used here"),
        }
    }
}

impl InterpError {
    pub(crate) fn help(&self) -> String {
        match self {
            InterpError::Undefined(n) => {
                format!("export {n}=… before running, or give a default with ${{{n}:-value}}")
            }
            InterpError::Malformed(_) => "write ${NAME} or ${NAME:-default}; use $${ for a literal ${".into(),
            InterpError::Undeclared(n) if looks_secret(n) => format!(
                "manifests can never expand credentials or secret-looking variables; write $${{{n}}} for a literal ${{{n}}}"
            ),
            InterpError::Undeclared(n) => format!(
                "add `{n}` to `variables:` in kore-notify.yaml (the reviewer then sees its value in the plan), or write $${{{n}}} for a literal ${{{n}}}"
            ),
            InterpError::TooLong(_) => "use shorter variable values, or fewer references".into(),
            InterpError::Secret(_) => {
                "only clientId and clientSecret may reference credentials; this value appears in plans and logs".into()
            }
        }
    }
}

pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Returns the single variable name when `s` is exactly one `${NAME}` reference.
pub(crate) fn sole_reference(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("${")?.strip_suffix('}')?;
    valid_name(inner).then_some(inner)
}

/// Whether a variable name looks like it holds a secret: a word such as SECRET, TOKEN, PASSWORD,
/// KEY, CREDENTIALS, AUTH, PRIVATE, COOKIE or SESSION, or a Kore.ai client variable.
pub(crate) fn looks_secret(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "SECRET",
        "SECRETS",
        "TOKEN",
        "TOKENS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASS",
        "PWD",
        "PASSPHRASE",
        "KEY",
        "KEYS",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "AUTH",
        "PRIVATE",
        "COOKIE",
        "SESSION",
        "SIGNATURE",
        "CERT",
        "PAT",
        "JWT",
        "DSN",
    ];
    const PARTS: &[&str] = &["SECRET", "TOKEN", "PASSWORD", "PASSWD", "APIKEY", "CREDENTIAL", "PRIVATE"];
    let upper = name.to_ascii_uppercase();
    upper.starts_with("KORE_CLIENT")
        || upper.split('_').any(|w| WORDS.contains(&w))
        || PARTS.iter().any(|p| upper.contains(p))
}

/// Which variables a value may expand.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// Config fields other than the credentials: any variable that does not look like a secret.
    Config,
    /// Manifests: only the declared variables (never a secret-looking one).
    Declared(&'a [String]),
    /// Anything (the credentials themselves).
    Any,
}

/// Interpolates like [`interpolate`], with an output limit in bytes, within `scope` (`used`
/// collects each variable expanded and its value).
pub(crate) fn interpolate_bounded(
    s: &str,
    env: &dyn Env,
    scope: Scope,
    limit: usize,
    used: &mut Vec<(String, String)>,
) -> Result<String, InterpError> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let lookup = |name: &str| -> Result<Option<String>, InterpError> {
        match scope {
            Scope::Declared(names) if !names.iter().any(|n| n == name) || looks_secret(name) => {
                Err(InterpError::Undeclared(name.to_string()))
            }
            Scope::Config if looks_secret(name) => Err(InterpError::Secret(name.to_string())),
            _ => Ok(env.get(name)),
        }
    };
    expand(s, &lookup, limit, used)
}

pub(crate) fn interpolate(s: &str, env: &dyn Env) -> Result<String, InterpError> {
    interpolate_bounded(s, env, Scope::Any, usize::MAX, &mut Vec::new())
}

fn expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Result<Option<String>, InterpError>,
    limit: usize,
    used: &mut Vec<(String, String)>,
) -> Result<String, InterpError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        let after = &rest[idx..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| InterpError::Malformed(format!("unclosed variable reference in {s:?}")))?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if !valid_name(name) {
                return Err(InterpError::Malformed(format!("invalid variable name {name:?} in ${{{expr}}}")));
            }
            let value = match (lookup(name)?, default) {
                (Some(v), Some(d)) if v.is_empty() => d.to_string(),
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => return Err(InterpError::Undefined(name.to_string())),
            };
            if out.len() + value.len() > limit {
                return Err(InterpError::TooLong(limit));
            }
            out.push_str(&value);
            if !used.iter().any(|(n, _)| n == name) {
                used.push((name.to_string(), value));
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, &'static str>);
    impl Env for MapEnv {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).map(std::string::ToString::to_string)
        }
    }

    #[test]
    fn interpolates_defaults_and_escapes() {
        let env = MapEnv(HashMap::from([("A", "x"), ("E", "")]));
        assert_eq!(interpolate("a${A}b", &env), Ok("axb".into()));
        assert_eq!(interpolate("${B:-d}", &env), Ok("d".into()));
        assert_eq!(interpolate("${E:-d}", &env), Ok("d".into()));
        assert_eq!(interpolate("$${A} $5", &env), Ok("${A} $5".into()));
        assert_eq!(interpolate("${B}", &env), Err(InterpError::Undefined("B".into())));
        assert!(matches!(interpolate("${A", &env), Err(InterpError::Malformed(_))));
        assert!(matches!(interpolate("${1A}", &env), Err(InterpError::Malformed(_))));
        assert_eq!(sole_reference(" ${KORE_SECRET} "), Some("KORE_SECRET"));
        assert_eq!(sole_reference("abc${X}"), None);
    }

    #[test]
    fn manifests_expand_only_declared_non_secret_variables_within_a_limit() {
        let env = MapEnv(HashMap::from([("RELEASE", "r1"), ("KORE_CLIENT_SECRET", "x"), ("BIG", "0123456789")]));
        let names = vec!["RELEASE".to_string(), "BIG".to_string(), "GITHUB_TOKEN".to_string()];
        let mut used = Vec::new();
        let run =
            |s: &str, used: &mut Vec<(String, String)>| interpolate_bounded(s, &env, Scope::Declared(&names), 25, used);
        assert_eq!(run("v ${RELEASE}", &mut used), Ok("v r1".into()));
        assert_eq!(used, vec![("RELEASE".to_string(), "r1".to_string())]);
        assert_eq!(
            run("${KORE_CLIENT_SECRET:-x}", &mut used),
            Err(InterpError::Undeclared("KORE_CLIENT_SECRET".into()))
        );
        assert_eq!(run("${GITHUB_TOKEN}", &mut used), Err(InterpError::Undeclared("GITHUB_TOKEN".into())));
        assert_eq!(run("${HOME}", &mut used), Err(InterpError::Undeclared("HOME".into())));
        assert_eq!(run("${BIG}${BIG}", &mut used), Ok("01234567890123456789".into()));
        assert_eq!(run("${BIG}${BIG}${BIG}", &mut used), Err(InterpError::TooLong(25)));
        for secret in
            ["DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "NPM_TOKEN", "MY_API_KEY", "KORE_CLIENT_ID"]
        {
            assert!(looks_secret(secret), "{secret}");
        }
        for plain in ["RELEASE", "TEAM_NAME", "KEYNOTE_URL", "MONKEY"] {
            assert!(!looks_secret(plain), "{plain}");
        }
        let cfg = |s: &str| interpolate_bounded(s, &env, Scope::Config, 100, &mut Vec::new());
        assert_eq!(cfg("st-${KORE_CLIENT_SECRET}"), Err(InterpError::Secret("KORE_CLIENT_SECRET".into())));
        assert_eq!(cfg("v${RELEASE}"), Ok("vr1".into()));
    }
}
