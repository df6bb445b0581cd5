//! Which repository a config belongs to, as a short digest recorded with every notification it
//! declares (its *origin*).
//!
//! Two repositories may share a state: the same bot and the same PostgreSQL database. A
//! notification one of them declares is absent from the other's manifests, yet it is not an
//! orphan there, and the other's `retention` must never retire it. So each notification records
//! which repository last declared it, and only that repository judges it orphaned.
//!
//! The identity is, in order: the config's `repository:` (a name the team picks), else the git
//! remote `origin` of the enclosing git work tree (normalised: `git@github.com:acme/x.git` and
//! `https://github.com/acme/x` are the same repository) with the config's directory inside it, else
//! the repository root's absolute path. Only a digest is stored: no path or URL reaches the state.

use std::path::Path;

use crate::fingerprint::sha256_hex;

/// The largest `.git/config` read.
const MAX_GIT_CONFIG: u64 = 1024 * 1024;

/// The directory (canonical) and the top of the git work tree that holds it.
fn work_tree(dir: &Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = std::fs::canonicalize(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }).ok()?;
    let top = dir.ancestors().find(|d| d.join(".git").exists())?.to_path_buf();
    Some((dir, top))
}

/// `dir` relative to the top of its git work tree, with a trailing `/` (`""` at the top, or
/// outside a work tree): what makes a path relative to `dir` a path in the repository.
pub(crate) fn dir_in_work_tree(dir: &Path) -> String {
    let Some((dir, top)) = work_tree(dir) else { return String::new() };
    let rel = dir.strip_prefix(&top).map(|p| p.to_string_lossy().replace('\\', "/")).unwrap_or_default();
    if rel.is_empty() { rel } else { format!("{rel}/") }
}

/// The origin digest of a repository named `explicit`, or found from `root` and the config's
/// directory `dir`.
pub(crate) fn origin(explicit: Option<&str>, root: &Path, dir: &Path) -> String {
    let identity = match explicit {
        Some(name) => format!("name:{}", name.trim()),
        None => git_identity(dir).unwrap_or_else(|| format!("path:{}", root.display())),
    };
    sha256_hex(identity.as_bytes())[..16].to_string()
}

/// `git:<remote>#<config dir inside the work tree>` when the config's directory is inside a git
/// work tree whose remote `origin` is set.
fn git_identity(dir: &Path) -> Option<String> {
    let (dir, top) = work_tree(dir)?;
    let top = top.as_path();
    // A linked work tree's `.git` is a file; its remotes are in the main one's config: no remote
    // is read then, and the path stands for the repository.
    let text = crate::files::read_named(&top.join(".git").join("config"), MAX_GIT_CONFIG).ok()?;
    let remote = origin_url(&String::from_utf8_lossy(&text))?;
    let inside = dir.strip_prefix(top).ok()?.to_string_lossy().replace('\\', "/");
    Some(format!("git:{}#{inside}", normalise(&remote)))
}

/// The `url` of `[remote "origin"]` in a git config file.
fn origin_url(config: &str) -> Option<String> {
    let mut in_origin = false;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_origin = line.replace(' ', "").eq_ignore_ascii_case("[remote\"origin\"]");
        } else if in_origin
            && let Some((k, v)) = line.split_once('=')
            && k.trim().eq_ignore_ascii_case("url")
        {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// `host/path` of a git URL, lower-case host, no scheme, user, port, `.git` or trailing `/`.
fn normalise(url: &str) -> String {
    let (rest, scp) = match url.split_once("://") {
        Some((_, rest)) => (rest, false),
        None => (url, true),
    };
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let (host, path) =
        if scp { rest.split_once(':').unwrap_or(("", rest)) } else { rest.split_once('/').unwrap_or((rest, "")) };
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let path = path.trim_start_matches('/').trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{host}/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_remote_in_every_spelling() {
        let want = "github.com/acme/notifications";
        for url in [
            "git@github.com:acme/notifications.git",
            "https://github.com/acme/notifications",
            "https://github.com/acme/notifications.git/",
            "ssh://git@GitHub.com:22/acme/notifications.git",
            "https://x-access-token:tok@github.com/acme/notifications",
        ] {
            assert_eq!(normalise(url), want, "{url}");
        }
        assert_ne!(normalise("git@github.com:acme/other.git"), want);
    }

    #[test]
    fn the_origin_remote_only() {
        let cfg = "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://h/up\n[remote \"origin\"]\n\turl = git@h:me/x.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n";
        assert_eq!(origin_url(cfg).as_deref(), Some("git@h:me/x.git"));
        assert_eq!(origin_url("[remote \"upstream\"]\n url = a\n"), None);
    }

    #[test]
    fn explicit_names_and_paths_differ() {
        let a = origin(Some("team-a"), Path::new("/r"), Path::new("/nonexistent-a"));
        let b = origin(Some("team-b"), Path::new("/r"), Path::new("/nonexistent-a"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        let p = origin(None, Path::new("/nonexistent-r1"), Path::new("/nonexistent-r1"));
        let q = origin(None, Path::new("/nonexistent-r2"), Path::new("/nonexistent-r2"));
        assert_ne!(p, q);
    }
}
