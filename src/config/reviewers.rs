//! `reviewers:`: who may be sent a test of a notification before it goes out (`kore-notify
//! test-send --reviewer LOGIN`, and the CI workflow's `test-send` action), as a map from GitHub
//! login to an identity per channel:
//!
//! ```yaml
//! reviewers:
//!   octocat: {msteams: octo@example.com, whatsapp: "+4915100000000"}
//! ```
//!
//! The map lives in the config, which CI always reads from the default branch: whoever dispatches
//! a test send can only reach the identities written here, never an address a pull request adds.
//! Identities are written as they are (no `${VAR}`: nothing from the environment reaches them).

use std::collections::BTreeMap;

use super::Fields;
use crate::manifest::{CHANNELS, Channel};
use crate::walk::{Walker, join};
use crate::yaml;

/// Longest identity accepted (an email address is at most 254 characters).
const MAX_IDENTITY: usize = 320;

/// A reviewer's identity per channel, by GitHub login (as written; logins compare without case).
pub(crate) type Reviewers = BTreeMap<String, BTreeMap<Channel, String>>;

/// Whether `s` is a GitHub login: 1 to 39 letters, digits or single hyphens, not at either end.
pub(crate) fn valid_login(s: &str) -> bool {
    (1..=39).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// The reviewer `login` (without regard to case).
pub(crate) fn find<'r>(reviewers: &'r Reviewers, login: &str) -> Option<(&'r String, &'r BTreeMap<Channel, String>)> {
    reviewers.iter().find(|(l, _)| l.eq_ignore_ascii_case(login))
}

/// `reviewers:` read and checked; problems are reported at their line.
pub(super) fn reviewers(w: &mut Walker, f: &Fields) -> Reviewers {
    let mut out = Reviewers::new();
    let Some(node) = f.get("reviewers") else { return out };
    let yaml::Value::Map(entries) = &node.value else {
        w.error(
            &node.pos,
            "reviewers",
            "expected a mapping of GitHub logins",
            "write reviewers: {octocat: {msteams: octo@example.com}}",
        );
        return out;
    };
    for (k, v) in entries {
        let login = k.key_text();
        let path = join("reviewers", &login);
        if !valid_login(&login) {
            w.error(
                &k.pos,
                &path,
                format!("`{}` is not a GitHub login", crate::safe::line(&login)),
                "write the reviewer's GitHub login: letters, digits and single hyphens, at most 39",
            );
            continue;
        }
        if find(&out, &login).is_some() {
            w.error(
                &k.pos,
                &path,
                format!("`{login}` is listed twice"),
                "list each reviewer once (logins ignore case)",
            );
            continue;
        }
        let Some(fields) = w.fields(v, &path, CHANNELS) else { continue };
        let mut ids = BTreeMap::new();
        for (channel, n) in fields {
            let at = join(&path, &channel);
            let Some(ch) = Channel::parse(&channel) else { continue };
            match identity(&n.value) {
                Ok(id) => {
                    ids.insert(ch, id);
                }
                Err(why) => w.error(
                    &n.pos,
                    &at,
                    why,
                    format!("write the identity {login} is reached by on {channel}, e.g. {}", example(ch)),
                ),
            }
        }
        if ids.is_empty() {
            w.error(&v.pos, &path, "no identity", format!("give at least one channel: {{{}: …}}", CHANNELS[0]));
            continue;
        }
        out.insert(login, ids);
    }
    out
}

/// A reviewer's identity as written, or why it cannot be one.
fn identity(v: &yaml::Value) -> Result<String, String> {
    let s = match v {
        yaml::Value::Str(s) => s.as_str(),
        _ => return Err("expected the identity as a string".into()),
    };
    if s.trim().is_empty() {
        return Err("the identity is empty".into());
    }
    if s.trim() != s || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the identity has spaces or control characters".into());
    }
    if s.chars().count() > MAX_IDENTITY {
        return Err(format!("the identity is longer than {MAX_IDENTITY} characters"));
    }
    if s.contains("${") {
        return Err("reviewer identities are written as they are: no ${VAR}".into());
    }
    Ok(s.to_string())
}

fn example(ch: Channel) -> &'static str {
    match ch {
        Channel::Whatsapp => "\"+4915100000000\"",
        Channel::Hangouts => "spaces/AAAA1234",
        _ => "octo@example.com",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_github_logins() {
        for ok in ["octocat", "a", "O-c-t-o", "x1", &"a".repeat(39)] {
            assert!(valid_login(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a_b", "a b", "a.b", &"a".repeat(40), "ä"] {
            assert!(!valid_login(bad), "{bad}");
        }
    }

    #[test]
    fn identities_are_plain_printable_strings() {
        assert_eq!(identity(&yaml::Value::Str("o@x.com".into())), Ok("o@x.com".into()));
        for bad in ["", " ", " o@x.com", "o@x.com\n", "a b", "${MAIL}", &"a".repeat(321)] {
            assert!(identity(&yaml::Value::Str(bad.into())).is_err(), "{bad:?}");
        }
        assert!(identity(&yaml::Value::Int(4915)).is_err());
    }
}
