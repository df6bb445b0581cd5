//! `${VAR}` interpolation in config and manifest string values. Interpolation happens after YAML
//! parsing, on scalar strings only, so a variable can never inject YAML structure. `${VAR:-default}`
//! supplies a default; `$${` writes a literal `${`. An undefined variable is an error naming it.

/// Looks variables up; the environment in production, a map in tests.
pub trait Env: Sync {
    fn get(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum InterpError {
    Undefined(String),
    Malformed(String),
}

impl std::fmt::Display for InterpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpError::Undefined(n) => write!(f, "environment variable {n} is not set"),
            InterpError::Malformed(m) => write!(f, "{m}"),
        }
    }
}

impl InterpError {
    pub fn help(&self) -> String {
        match self {
            InterpError::Undefined(n) => {
                format!("export {n}=… before running, or give a default with ${{{n}:-value}}")
            }
            InterpError::Malformed(_) => "write ${NAME} or ${NAME:-default}; use $${ for a literal ${".into(),
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Returns the single variable name when `s` is exactly one `${NAME}` reference.
pub fn sole_reference(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("${")?.strip_suffix('}')?;
    valid_name(inner).then_some(inner)
}

pub fn interpolate(s: &str, env: &dyn Env) -> Result<String, InterpError> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
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
            match (env.get(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(InterpError::Undefined(name.to_string())),
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
            self.0.get(name).map(|s| s.to_string())
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
}
