//! Values given on the command line, checked before any command uses them. A value often comes
//! from a variable (`--retry-unknown=$KEY`, `state rm "$KEY"`); when that variable is unset the
//! value is empty, and an empty value must never widen what a command does (resend everything,
//! validate nothing). So every value that names a key, a request, a path or a list is refused
//! when it is empty, blank, padded with blank space, or holds a control or invisible character,
//! and keys must be keys. "Everything" is always said explicitly (`--retry-unknown=all`).
//!
//! Pure functions returning the message; the CLI turns it into an error (shown safely: a value
//! is quoted with its unsafe characters made visible).

use crate::safe;

/// The explicit spelling of "every notification" for the retry options.
pub(crate) const ALL: &str = "all";

/// Refuses an empty, blank or padded value, or one with a control or invisible character.
/// `option` names the flag or argument (`--retry-unknown`, `KEY`).
pub(crate) fn plain(option: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("{option}: the value is empty (an unset variable?); write it out"));
    }
    if v.trim().is_empty() {
        return Err(format!("{option}: the value is blank; write it out"));
    }
    if v.chars().any(safe::is_unsafe) {
        return Err(format!(
            "{option} `{}`: the value holds a control or invisible character (shown as <U+…>); write it without",
            safe::line(v)
        ));
    }
    if v.trim() != v {
        return Err(format!("{option} `{v}`: blank space around the value; write `{}`", v.trim()));
    }
    Ok(())
}

/// A notification key as the manifests allow it (1 to 128 letters, digits, `.`, `_`, `:`, `/`, `-`).
pub(crate) fn key(option: &str, v: &str) -> Result<(), String> {
    plain(option, v)?;
    if !crate::manifest::valid_key(v) {
        return Err(format!(
            "{option} `{v}`: not a notification key (1 to 128 letters, digits, `.`, `_`, `:`, `/` or `-`); `kore-notify state list` shows the keys"
        ));
    }
    Ok(())
}

/// A request as `state resolve` takes it: its number (`3`, `#3`), batch id or Kore.ai job id.
pub(crate) fn request(option: &str, v: &str) -> Result<(), String> {
    plain(option, v)?;
    let id = v.strip_prefix('#').unwrap_or(v);
    let odd = id.starts_with(['-', '.']) || !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if id.is_empty() || id.len() > 128 || odd {
        return Err(format!(
            "{option} `{v}`: not a request (its number as the plan shows it, `3` or `#3`, its batch id or Kore.ai's job id)"
        ));
    }
    Ok(())
}

/// A value that may be a URL holding a literal password (`state migrate --to`): checked like any
/// other, but a URL is never echoed in the refusal (the refusal of the literal password itself
/// comes later, also without it).
pub(crate) fn plain_url(option: &str, v: &str) -> Result<(), String> {
    if !(v.contains("://") || v.contains('@')) {
        return plain(option, v);
    }
    plain(option, v).map_err(|_| {
        let why = if v.chars().any(safe::is_unsafe) {
            "holds a control or invisible character"
        } else {
            "has blank space around it"
        };
        format!("{option}: the URL {why}; write it without (it is not shown here: it may hold a password)")
    })
}

/// `--commit`: a hex commit id of 7 to 64 digits.
pub(crate) fn commit(v: &str) -> Result<(), String> {
    plain("--commit", v)?;
    if !(7..=64).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("--commit `{v}`: not a commit id (7 to 64 hex digits)"));
    }
    Ok(())
}

/// `--run-url`: an https URL with no blank space and no Markdown or HTML delimiters.
pub(crate) fn run_url(v: &str) -> Result<(), String> {
    https_url("--run-url", v, true)
}

/// `--repo-url`: the repository's https address (`https://github.com/OWNER/REPO`), to which
/// `/blob/SHA/path#Lnn` is appended: no query or fragment either.
pub(crate) fn repo_url(v: &str) -> Result<(), String> {
    https_url("--repo-url", v, false)
}

/// An https URL a PR comment may link to: plain ASCII without blank space or Markdown/HTML
/// delimiters, a host, and no user part (`https://github.com@evil.example/` goes to
/// evil.example while it reads as github.com).
fn https_url(option: &str, v: &str, query: bool) -> Result<(), String> {
    plain(option, v)?;
    let bad = |c: char| {
        !c.is_ascii_graphic() || matches!(c, '(' | ')' | '<' | '>' | '"' | '`' | '[' | ']' | '\\' | '\'' | '|')
    };
    let parsed = url::Url::parse(v).ok().filter(|u| {
        u.scheme() == "https"
            && u.host_str().is_some_and(|h| !h.is_empty())
            && u.username().is_empty()
            && u.password().is_none()
            && u.fragment().is_none()
            && (query || u.query().is_none())
    });
    if !v.starts_with("https://") || v.contains(bad) || parsed.is_none() {
        let extra = if query { "" } else { ", a query or a fragment" };
        return Err(format!(
            "{option} `{v}`: not an https URL (https://host/…, without a user part{extra}, spaces, brackets or quotes)"
        ));
    }
    Ok(())
}

/// What a retry option selects: nothing (not given), everything, or some keys (and requests).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Selection {
    Nothing,
    /// `--retry-unknown=all` (`said_all`: said as `all`, as it must be; a bare flag is refused).
    All {
        said_all: bool,
    },
    Some(Vec<(String, Option<u32>)>),
}

/// Parses a retry option's values: `None` when not given, an empty list when given bare (every
/// notification, as documented), else `all` or `KEY` / `KEY#N` values. An empty or blank value is
/// refused (never "everything"), and so is `all` next to keys.
pub(crate) fn selection(option: &str, values: Option<&[String]>) -> Result<Selection, String> {
    let Some(values) = values else { return Ok(Selection::Nothing) };
    let per_request = if option.contains("unknown") { " (or KEY#N)" } else { "" };
    let hint = format!("write {option}=KEY{per_request}, or {option}={ALL} for every notification");
    // "Every notification" is never implied: a bare flag (`--retry-unknown $KEY` with KEY unset,
    // unquoted, arrives bare) resends nothing until it says which, or says `all`.
    if values.is_empty() {
        return Err(format!("{option} needs a value: it would resend to real people\n  help: {hint}"));
    }
    let mut out = Vec::new();
    for v in values {
        plain(option, v).map_err(|e| format!("{e}\n  help: {hint}"))?;
        if v == ALL {
            if values.len() > 1 {
                return Err(format!("{option}={ALL} selects every notification: give it alone, without keys"));
            }
            return Ok(Selection::All { said_all: true });
        }
        let (k, req) = match v.rsplit_once('#') {
            Some((k, r)) => {
                let n = r.parse::<u32>().map_err(|_| {
                    format!("{option}={v}: `{r}` is not a request number; write KEY or KEY#N (N as shown in the plan)")
                })?;
                (k, Some(n))
            }
            None => (v.as_str(), None),
        };
        key(option, k).map_err(|e| format!("{e}\n  help: {hint}"))?;
        out.push((k.to_string(), req));
    }
    Ok(Selection::Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(values: &[&str]) -> Result<Selection, String> {
        let v: Vec<String> = values.iter().map(|s| (*s).to_string()).collect();
        selection("--retry-unknown", Some(&v))
    }

    #[test]
    fn empty_blank_and_odd_values_never_select_everything() {
        for bad in ["", " ", "\t", " k", "k ", "k\u{1b}[2J", "k\u{202e}", "a b", "k#", "#3", "k#x", "k#-1", "ä"] {
            assert!(sel(&[bad]).is_err(), "{bad:?} accepted");
            assert!(sel(&["k", bad]).is_err(), "{bad:?} after a key accepted");
        }
        assert!(sel(&["all", "k"]).is_err());
        assert_eq!(sel(&["all"]), Ok(Selection::All { said_all: true }));
        assert!(
            selection("--retry-failed", Some(&[])).is_err_and(|e| e.contains("needs a value")),
            "a bare flag is never all"
        );
        assert_eq!(selection("--retry-failed", None), Ok(Selection::Nothing));
        assert_eq!(sel(&["k#2", "a/b"]), Ok(Selection::Some(vec![("k".into(), Some(2)), ("a/b".into(), None)])));
    }

    #[test]
    fn messages_show_unsafe_characters_visibly() {
        let e = sel(&["k\u{1b}]0;x\u{7}"]).unwrap_err();
        assert!(!e.chars().any(|c| safe::is_unsafe(c) && c != '\n'), "{e:?}");
        assert!(e.contains("<U+001B>"), "{e}");
    }

    #[test]
    fn requests_commits_and_urls() {
        assert!(request("REQUEST", "#3").is_ok() && request("REQUEST", "b-1_x.2").is_ok());
        for bad in ["", " ", "#", "--all", "3 ", "a/b"] {
            assert!(request("REQUEST", bad).is_err(), "{bad:?}");
        }
        assert!(commit("0123abc").is_ok() && commit("xyz1234").is_err() && commit("").is_err());
        assert!(run_url("https://github.com/o/r/actions/runs/1").is_ok());
        assert!(repo_url("https://github.com/o/r").is_ok() && repo_url("https://ghe.example:8443/o/r/").is_ok());
        for bad in [
            "",
            "http://x",
            "https://",
            "https://x y",
            "https://x)",
            "https://github.com@evil.example/o/r",
            "https://u:p@github.com/o/r",
            "https://github.com/o/`r`",
            "https://github.com/o/r]",
            "https://github.com/o/r\\x",
            "https://github.com/o/r\u{202e}",
            "https://github.com/o/r\u{1b}[2J",
            "https://github.com/o/r#x",
            "https://github.com/o/ré",
            "javascript:alert(1)//https://x",
        ] {
            assert!(run_url(bad).is_err(), "{bad:?}");
            assert!(repo_url(bad).is_err(), "{bad:?}");
        }
        assert!(repo_url("https://github.com/o/r?x=1").is_err());
        for v in
            [" postgres://kn:Sec9@h/db", "postgres://kn:Sec9@h/db\r", "postgres://kn:Sec9@h/db\u{202e}", "kn:Sec9@h\t"]
        {
            let e = plain_url("--to", v).expect_err(v);
            assert!(e.starts_with("--to: the URL") && !e.contains("Sec9"), "{e}");
        }
        assert!(plain_url("--to", "postgres://kn:${PW}@h/db").is_ok());
    }
}
