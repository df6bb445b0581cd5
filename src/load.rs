//! Loading a repository of manifests: find the files (directories walked in sorted order, globs
//! expanded, symlink loops detected), parse every YAML document, resolve `valueFile` and
//! `identitiesFrom`, and check every documented constraint of the Kore.ai API (the README lists them). All
//! problems of a run are collected; the caller decides whether errors stop it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::files::{self, FileError, Root};
use crate::interp::Env;
use crate::manifest::*;
use crate::walk::{Walker, index, join};
use crate::yaml::{self, Node, Value};

/// Most recipients in one notification: bounds the memory a hostile audience can take (about
/// 250 bytes per recipient in a plan).
pub const MAX_RECIPIENTS: usize = 1_000_000;
/// Largest CSV audience or valueFile we read.
pub const MAX_CSV_BYTES: u64 = 512 * 1024 * 1024;
pub const MAX_VALUE_FILE_BYTES: u64 = 1024 * 1024;
/// Per notification and kind, how many recipient-level problems are listed before summarising.
const MAX_RECIPIENT_DIAGS: usize = 10;

pub struct Repo {
    pub notifications: Vec<Notification>,
    pub files: Vec<PathBuf>,
}

/// Shows a path relative to the current directory when it is below it (GitHub annotations and
/// terminals both want repository-relative paths).
pub fn display_path(p: &Path) -> PathBuf {
    let cwd = std::env::current_dir().ok();
    let rel = cwd.as_deref().and_then(|c| p.strip_prefix(c).ok()).unwrap_or(p);
    let rel = rel.strip_prefix(".").unwrap_or(rel);
    // `notifications/../audiences/a.csv` → `audiences/a.csv`: shorter, and what GitHub needs to
    // put an annotation on the right file. Lexical, for display only.
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            std::path::Component::ParentDir
                if matches!(out.components().next_back(), Some(std::path::Component::Normal(_))) =>
            {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Expands manifest paths (files, directories, globs) relative to `base` into a sorted file list.
/// With a `root` (paths from the config), every directory walked and file found must resolve
/// inside it, outside hidden directories. Symlinks are followed, but every directory is visited
/// once (a graph of links cannot blow up the walk) and at most [`MAX_WALK_ENTRIES`] entries are
/// examined.
pub fn find_files(root: Option<&Root>, base: &Path, specs: &[String], diags: &mut Diagnostics) -> Vec<PathBuf> {
    let mut walk = Walk { root, visited: HashSet::new(), stack: Vec::new(), entries: 0, out: Vec::new(), diags };
    for spec in specs {
        let full = if Path::new(spec).is_absolute() { PathBuf::from(spec) } else { base.join(spec) };
        if spec.contains(['*', '?', '[']) {
            walk.glob(base, spec, &full);
        } else if full.is_dir() {
            walk.dir(&full, 0, is_yaml);
        } else if full.is_file() {
            walk.out.push(full);
        } else {
            walk.diags.push(
                Diagnostic::error(&display_path(&full), Pos::default(), "manifests", "no such file or directory")
                    .help("fix the path in `manifests:` of kore-notify.yaml or on the command line"),
            );
        }
    }
    let Walk { mut out, diags, .. } = walk;
    if let Some(root) = root {
        out.retain(|p| match root.confine_visible(p) {
            Ok(_) => true,
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        &display_path(p),
                        Pos::default(),
                        "manifests",
                        format!("cannot read this manifest: {e}"),
                    )
                    .help(e.help()),
                );
                false
            }
        });
    }
    let mut seen = HashSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    out
}

/// Most directory entries one run examines while looking for manifests.
pub const MAX_WALK_ENTRIES: usize = 200_000;
const MAX_WALK_DEPTH: usize = 32;

/// A directory walk that visits every directory once, stays in the root and is bounded.
struct Walk<'a, 'd> {
    root: Option<&'a Root>,
    /// Canonical directories already walked (a diamond of links is walked once).
    visited: HashSet<PathBuf>,
    /// Canonical directories on the current path (a link back to one of them is a loop).
    stack: Vec<PathBuf>,
    entries: usize,
    out: Vec<PathBuf>,
    diags: &'d mut Diagnostics,
}

impl Walk<'_, '_> {
    fn error(&mut self, path: &Path, message: impl Into<String>, help: &str) {
        self.diags.push(Diagnostic::error(&display_path(path), Pos::default(), "", message).help(help.to_string()));
    }

    /// A glob: its literal leading directories are walked, every regular file found is matched.
    fn glob(&mut self, base: &Path, spec: &str, full: &Path) {
        let pattern = match glob::Pattern::new(&full.to_string_lossy()) {
            Ok(p) => p,
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(base, Pos::default(), "manifests", format!("invalid glob `{spec}`: {e}"))
                        .help("see https://docs.rs/glob for the pattern syntax"),
                );
                return;
            }
        };
        let literal: PathBuf =
            full.components().take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '['])).collect();
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        if literal.is_dir() {
            let mut found = Vec::new();
            std::mem::swap(&mut found, &mut self.out);
            self.dir(&literal, 0, |p| pattern.matches_path_with(p, opts));
            std::mem::swap(&mut found, &mut self.out);
            found.sort();
            self.out.extend(found);
        }
    }

    fn dir(&mut self, dir: &Path, depth: usize, wanted: impl Fn(&Path) -> bool + Copy) {
        let canonical = match std::fs::canonicalize(dir) {
            Ok(c) => c,
            Err(e) => {
                let msg = if crate::files::is_symlink_loop(&e) { "symlink loop".to_string() } else { e.to_string() };
                return self.error(dir, format!("cannot read directory: {msg}"), "remove the looping symlink");
            }
        };
        if let Some(root) = self.root
            && !canonical.starts_with(root.path())
        {
            // Never walked: its file names must not reach an output either.
            return self.error(
                dir,
                "this directory leads outside the repository (through a symlink); it is not read",
                "keep manifests inside the repository; remove the symlink",
            );
        }
        if self.stack.contains(&canonical) || depth > MAX_WALK_DEPTH {
            return self.error(
                dir,
                "symlink loop: this directory leads back to one of its parents",
                "remove the symlink that points to a parent directory",
            );
        }
        if !self.visited.insert(canonical.clone()) {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return self.error(dir, format!("cannot read directory: {e}"), "check its permissions"),
        };
        let mut paths = Vec::new();
        for e in entries.flatten() {
            self.entries += 1;
            if self.entries > MAX_WALK_ENTRIES {
                return self.error(
                    dir,
                    format!("more than {MAX_WALK_ENTRIES} files and directories to look through for manifests"),
                    "point `manifests:` at the directories that hold manifests",
                );
            }
            paths.push(e.path());
        }
        paths.sort();
        self.stack.push(canonical);
        for p in paths {
            self.entry(&p, depth, wanted);
        }
        self.stack.pop();
    }

    fn entry(&mut self, p: &Path, depth: usize, wanted: impl Fn(&Path) -> bool + Copy) {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            return;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => self.dir(p, depth + 1, wanted),
            Ok(m) if m.is_file() && wanted(p) => self.out.push(p.to_path_buf()),
            Ok(_) if wanted(p) && is_yaml(p) => self.error(
                p,
                "cannot read this manifest: it is not a regular file",
                "manifests must be regular files; remove it or rename it",
            ),
            Ok(_) => {}
            Err(e) if crate::files::is_symlink_loop(&e) => self.error(p, "symlink loop", "remove the looping symlink"),
            Err(_) => {}
        }
    }
}

/// Reads a file with a size cap enforced while reading, as UTF-8 text; with a `root`, the file
/// must resolve inside it. Problems become diagnostics that never show the file's content.
fn read_text(root: Option<&Root>, path: &Path, cap: u64, what: &str, diags: &mut Diagnostics) -> Option<String> {
    let shown = display_path(path);
    let read = match root {
        Some(r) => r.read(path, cap),
        None => std::fs::canonicalize(path).map_err(|_| FileError::NotFound).and_then(|c| files::read_regular(&c, cap)),
    };
    let bytes = match read {
        Ok(b) => b,
        Err(FileError::TooLarge(cap)) => {
            diags.push(
                Diagnostic::error(&shown, Pos::default(), "", format!("{what} is too large (limit {cap} bytes)"))
                    .help("split it into several files, or keep large audiences in a CSV file with identitiesFrom"),
            );
            return None;
        }
        Err(e) => {
            diags
                .push(Diagnostic::error(&shown, Pos::default(), "", format!("cannot read {what}: {e}")).help(e.help()));
            return None;
        }
    };
    match yaml::check_text(&bytes) {
        Ok(t) => Some(t.to_string()),
        Err(e) => {
            diags.push(Diagnostic::error(&shown, e.pos, "", e.message).help(format!("{what} must be UTF-8 text")));
            None
        }
    }
}

/// Where a repository's files may come from, and which variables manifests may expand.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub root: &'a Root,
    pub variables: &'a [String],
    pub env: &'a dyn Env,
}

/// Loads and validates every manifest in `files`, on all cores; results keep the file order.
pub fn load_repo(files: Vec<PathBuf>, src: Sources, diags: &mut Diagnostics) -> Repo {
    // One loader per core (at most 4): each may hold a file's worst-case tree within the YAML
    // budgets, so memory is bounded by the thread count, not the number of files.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
    let chunk = files.len().div_ceil(threads).max(1);
    let results: Vec<(Vec<Notification>, Diagnostics)> = std::thread::scope(|s| {
        // Parsers recurse: give loader threads a stack at least as big as the main thread's.
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                std::thread::Builder::new().stack_size(64 * 1024 * 1024).spawn_scoped(s, move || load_files(part, src))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                Err(e) => {
                    let mut d = Diagnostics::default();
                    d.push(Diagnostic::error(
                        Path::new("."),
                        Pos::default(),
                        "",
                        format!("cannot start a thread: {e}"),
                    ));
                    (Vec::new(), d)
                }
            })
            .collect()
    });
    let mut notifications = Vec::new();
    for (ns, d) in results {
        notifications.extend(ns);
        diags.extend(d);
    }
    check_repo(&notifications, diags);
    Repo { notifications, files }
}

fn load_files(files: &[PathBuf], src: Sources) -> (Vec<Notification>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut notifications = Vec::new();
    for file in files {
        // Manifest files were confined when found (paths given on the command line are the
        // user's own); what they name is confined to the root below.
        let Some(text) = read_text(None, file, yaml::MAX_YAML_BYTES, "manifest", &mut diags) else {
            continue;
        };
        let shown = display_path(file);
        let docs = match yaml::parse_documents(&text) {
            Ok(d) => d,
            Err(e) => {
                let mut d = Diagnostic::error(&shown, e.pos, "", format!("invalid YAML: {}", e.message));
                if let Some(h) = e.help {
                    d = d.help(h);
                }
                diags.push(d);
                continue;
            }
        };
        warn_comment_cuts(&shown, &text, &docs, &mut diags);
        drop(text);
        let mut w = Walker::for_manifest(&shown, &mut diags, src.env, src.variables);
        for doc in &docs {
            if let Some(n) = document(&mut w, file, doc, src.root) {
                notifications.push(n);
            }
        }
    }
    (notifications, diags)
}

/// Warns about plain values a ` #` cut short (`value: Order #{orderId} ships` is `Order`).
fn warn_comment_cuts(file: &Path, text: &str, docs: &[Node], diags: &mut Diagnostics) {
    for c in yaml::comment_cuts(text, docs) {
        let quoted = c.written.replace('"', "\\\"");
        diags.push(
            Diagnostic::warning(
                file,
                c.pos,
                c.path,
                format!(
                    "the value is `{}`: in YAML, ` #` starts a comment, so the rest of the line is dropped",
                    c.value
                ),
            )
            .help(format!("if `#` is part of the text, quote the value: \"{quoted}\"")),
        );
    }
}

/// Repository-wide rules: unique keys, previousKeys that do not collide.
fn check_repo(ns: &[Notification], diags: &mut Diagnostics) {
    let mut keys: HashMap<&str, &Notification> = HashMap::new();
    for n in ns {
        if let Some(first) = keys.get(n.key.as_str()) {
            diags.push(
                Diagnostic::error(
                    &n.source.file,
                    Pos { line: n.source.line, column: n.source.column },
                    "key",
                    format!("duplicate key `{}`", n.key),
                )
                .help(format!(
                    "already used at {}:{}; every notification needs its own key",
                    first.source.file.display(),
                    first.source.line
                )),
            );
        } else {
            keys.insert(&n.key, n);
        }
    }
    let mut previous: HashMap<&str, &Notification> = HashMap::new();
    for n in ns {
        for p in &n.previous_keys {
            let pos = Pos { line: n.source.line, column: n.source.column };
            if keys.contains_key(p.as_str()) {
                diags.push(
                    Diagnostic::error(
                        &n.source.file,
                        pos,
                        "previousKeys",
                        format!("`{p}` is still the key of a notification"),
                    )
                    .help("a previous key must no longer be in use"),
                );
            } else if let Some(other) = previous.insert(p, n) {
                diags.push(
                    Diagnostic::error(
                        &n.source.file,
                        pos,
                        "previousKeys",
                        format!("`{p}` is also a previous key of `{}`", other.key),
                    )
                    .help("a renamed notification can continue only one earlier key"),
                );
            }
        }
    }
}

fn parse_time(w: &mut Walker, node: &Node, path: &str) -> Option<time::OffsetDateTime> {
    let s = w.string(node, path)?;
    match time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339) {
        Ok(t) => Some(t),
        Err(_) => {
            w.error(
                &node.pos,
                path,
                format!("`{s}` is not an RFC 3339 date-time"),
                "write e.g. 2026-12-01T09:00:00Z or 2026-12-01T09:00:00+01:00",
            );
            None
        }
    }
}

fn document(w: &mut Walker, file: &Path, doc: &Node, root: &Root) -> Option<Notification> {
    let before = w.diags.errors();
    w.used.clear();
    let f = w.fields(doc, "", FIELDS)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let missing = |w: &mut Walker, name: &str, help: &str| {
        w.error(&doc.pos, name, format!("missing required field `{name}`"), help);
    };
    let key_node = f.get("key");
    let key = match key_node {
        Some(n) => w.string(n, "key"),
        None => {
            missing(w, "key", "add `key: some-unique-name`; it identifies this notification forever");
            None
        }
    };
    if let (Some(k), Some(n)) = (&key, key_node)
        && !valid_key(k)
    {
        w.error(&n.pos, "key", format!("`{k}` is not a valid key"), "use 1 to 128 letters, digits and . _ : / -");
    }
    let channel = match f.get("channel") {
        Some(n) => w.one_of(n, "channel", CHANNELS).and_then(|s| Channel::parse(&s)),
        None => {
            missing(w, "channel", "add `channel: msteams` (or slack, ivr, hangouts, whatsapp)");
            None
        }
    };
    let api = match (f.get("api"), channel) {
        (Some(n), ch) => {
            let a = w.one_of(n, "api", &["v1", "v2"]).map(|s| if s == "v1" { Api::V1 } else { Api::V2 });
            match (a, ch) {
                (Some(a), Some(ch)) if a != ch.api() => {
                    w.error(
                        &n.pos,
                        "api",
                        format!("channel {} is served by API {}, not {}", ch.as_str(), ch.api().as_str(), a.as_str()),
                        format!("remove `api` or set it to {}", ch.api().as_str()),
                    );
                    None
                }
                (a, _) => a,
            }
        }
        (None, ch) => ch.map(Channel::api),
    };
    let user_identity_type = match f.get("userIdentityType") {
        Some(n) => w.one_of(n, "userIdentityType", &["resolve"]).unwrap_or_default(),
        None => "resolve".to_string(),
    };
    let webhook_instance_name = match f.get("webhookInstanceName") {
        Some(n) => {
            let v = w.string(n, "webhookInstanceName");
            if channel.is_some_and(|c| c != Channel::Ivr) {
                w.error(
                    &n.pos,
                    "webhookInstanceName",
                    "webhookInstanceName applies only to the ivr channel",
                    "remove it",
                );
            }
            v
        }
        None => None,
    };
    let content = match (f.get("content"), channel) {
        (Some(n), Some(ch)) => content(w, n, ch, dir, root),
        (Some(_), None) => None,
        (None, _) => {
            missing(w, "content", "add `content: {type: text, value: \"…\"}`");
            None
        }
    };
    let mut recipients = Vec::new();
    let mut positions = Vec::new();
    let mut have_identities = false;
    if let (Some(n), Some(ch)) = (f.get("identities"), channel) {
        have_identities = true;
        identities(w, n, ch, &mut recipients, &mut positions);
    }
    let mut csv_origin: Option<(PathBuf, usize)> = None;
    if let (Some(n), Some(ch)) = (f.get("identitiesFrom"), channel) {
        have_identities = true;
        if let Some(rel) = w.string(n, "identitiesFrom") {
            let path = dir.join(&rel);
            let start = recipients.len();
            csv_identities(w, root, (&path, &rel), &n.pos, ch, &mut recipients, &mut positions);
            csv_origin = Some((display_path(&path), start));
        }
    }
    if !have_identities && channel.is_some() {
        missing(w, "identities", "add `identities:` (a list) or `identitiesFrom: audience.csv`");
    } else if have_identities && recipients.is_empty() && w.diags.errors() == before {
        let at = f.get("identities").or_else(|| f.get("identitiesFrom")).map_or(&doc.pos, |n| &n.pos);
        w.error(at, "identities", "no recipients", "a notification needs at least one identity");
    }
    let not_before = f.get("notBefore").and_then(|n| parse_time(w, n, "notBefore"));
    let not_after = f.get("notAfter").and_then(|n| parse_time(w, n, "notAfter"));
    if let (Some(a), Some(b), Some(n)) = (not_before, not_after, f.get("notAfter"))
        && b <= a
    {
        w.error(
            &n.pos,
            "notAfter",
            "notAfter is not later than notBefore",
            "the send window would be empty; fix one of the two dates",
        );
    }
    let on_change = match f.get("onChange") {
        Some(n) => match w.one_of(n, "onChange", &["resend", "ignore"]).as_deref() {
            Some("ignore") => OnChange::Ignore,
            _ => OnChange::Resend,
        },
        None => OnChange::Resend,
    };
    let mut previous_keys = Vec::new();
    if let Some(n) = f.get("previousKeys") {
        for (i, (p, pos)) in w.strings(n, "previousKeys").into_iter().enumerate() {
            if !valid_key(&p) {
                w.error(
                    &pos,
                    &index("previousKeys", i),
                    format!("`{p}` is not a valid key"),
                    "use 1 to 128 letters, digits and . _ : / -",
                );
            } else if Some(&p) == key.as_ref() {
                w.error(
                    &pos,
                    &index("previousKeys", i),
                    "a notification cannot list its own key as previous",
                    "remove it",
                );
            } else {
                previous_keys.push(p);
            }
        }
    }
    let description = f.get("description").and_then(|n| w.string(n, "description"));

    recipient_checks(w, &f, channel, content.as_ref(), &mut recipients, &positions, csv_origin.as_ref());
    if w.diags.errors() > before {
        return None;
    }
    let (key, channel, api, content) = (key?, channel?, api?, content?);
    let pos = key_node.map(|n| n.pos.clone()).unwrap_or_else(|| doc.pos.clone());
    Some(Notification {
        key,
        source: Source { file: w.file.clone(), line: pos.line, column: pos.column },
        channel,
        api,
        user_identity_type,
        webhook_instance_name,
        content,
        recipients,
        not_before,
        not_after,
        on_change,
        previous_keys,
        description,
        variables: std::mem::take(&mut w.used),
    })
}

fn content(w: &mut Walker, node: &Node, ch: Channel, dir: &Path, root: &Root) -> Option<Content> {
    let f = w.fields(node, "content", CONTENT_FIELDS)?;
    let kind = match f.get("type") {
        Some(n) => {
            let allowed = ch.content_types();
            let s = w.string(n, "content.type")?;
            if !allowed.contains(&s.as_str()) {
                w.error(
                    &n.pos,
                    "content.type",
                    format!("`{s}` is not a content type of channel {}", ch.as_str()),
                    format!("allowed for {}: {}", ch.as_str(), allowed.join(", ")),
                );
                return None;
            }
            s
        }
        None => {
            w.error(
                &node.pos,
                "content.type",
                "missing required field `type`",
                format!("add `type: text` (allowed: {})", ch.content_types().join(", ")),
            );
            return None;
        }
    };
    let value = match (f.get("value"), f.get("valueFile")) {
        (Some(_), Some(vf)) => {
            w.error(&vf.pos, "content.valueFile", "both `value` and `valueFile` are set", "keep only one of them");
            return None;
        }
        (None, None) => {
            w.error(
                &node.pos,
                "content.value",
                "missing `value` (or `valueFile`)",
                "add `value: \"your message\"` or `valueFile: message.txt`",
            );
            return None;
        }
        (Some(v), None) => match &v.value {
            Value::Map(_) => {
                if !(ch == Channel::Whatsapp && kind == "template") {
                    w.error(
                        &v.pos,
                        "content.value",
                        "an object value is only allowed for whatsapp templates",
                        "write the message as a string; a value starting with `{` is read as a YAML mapping, so quote it: value: \"{name}…\"",
                    );
                    return None;
                }
                interpolate_json(w, v.to_json(), &v.pos, "content.value")?
            }
            _ => serde_json::Value::String(w.string(v, "content.value")?),
        },
        (None, Some(vf)) => {
            let interpolate_file = match f.get("interpolate") {
                Some(n) => match &n.value {
                    Value::Bool(b) => *b,
                    _ => {
                        w.error(
                            &n.pos,
                            "content.interpolate",
                            format!("expected true or false, found {}", n.kind()),
                            "write `interpolate: true` to expand ${…} in the valueFile",
                        );
                        return None;
                    }
                },
                None => false,
            };
            let rel = w.string(vf, "content.valueFile")?;
            let path = dir.join(&rel);
            let mut sub = Diagnostics::default();
            let Some(text) = read_text(Some(root), &path, MAX_VALUE_FILE_BYTES, "valueFile", &mut sub) else {
                let why = sub.items.first().map(|d| d.message.clone()).unwrap_or_default();
                w.error(
                    &vf.pos,
                    "content.valueFile",
                    format!("cannot use `{rel}`: {why}"),
                    "the path is relative to the manifest file",
                );
                return None;
            };
            let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_string();
            if ch == Channel::Whatsapp && kind == "template" && rel.ends_with(".json") {
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v @ serde_json::Value::Object(_)) => v,
                    _ => {
                        w.error(
                            &vf.pos,
                            "content.valueFile",
                            format!("`{rel}` is not a JSON object"),
                            "a .json valueFile must hold one JSON object",
                        );
                        return None;
                    }
                }
            } else if interpolate_file {
                serde_json::Value::String(w.interpolate(&text, &vf.pos, "content.valueFile")?)
            } else {
                // A file is taken as written: scripts use `${…}` themselves.
                serde_json::Value::String(text)
            }
        }
    };
    if value.as_str().is_some_and(|s| s.trim().is_empty()) {
        w.error(&node.pos, "content.value", "the message is empty", "write the text to send");
        return None;
    }
    Some(Content { kind, value })
}

fn interpolate_json(w: &mut Walker, v: serde_json::Value, pos: &Pos, path: &str) -> Option<serde_json::Value> {
    Some(match v {
        serde_json::Value::String(s) => serde_json::Value::String(w.interpolate(&s, pos, path)?),
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(|x| interpolate_json(w, x, pos, path)).collect::<Option<_>>()?)
        }
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.into_iter().map(|(k, x)| interpolate_json(w, x, pos, path).map(|x| (k, x))).collect::<Option<_>>()?,
        ),
        other => other,
    })
}

fn identities(w: &mut Walker, node: &Node, ch: Channel, out: &mut Vec<Recipient>, positions: &mut Vec<Pos>) {
    let Some(items) = w.seq(node, "identities") else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let path = index("identities", i);
        match (ch.identity_field(), &item.value) {
            (None, Value::Map(_)) => {
                w.error(
                    &item.pos,
                    &path,
                    format!("channel {} (API v1) takes identities as plain strings", ch.as_str()),
                    "write `- john@example.com`; customMessage and parameters are v2 features",
                );
            }
            (_, Value::Map(_)) => {
                if let Some(r) = identity_object(w, item, &path, ch) {
                    out.push(r);
                    positions.push(item.pos.clone());
                }
            }
            _ => {
                if let Some(id) = w.string(item, &path) {
                    out.push(Recipient { id, custom_message: None, parameters: Params::new() });
                    positions.push(item.pos.clone());
                }
            }
        }
    }
}

const ID_FIELDS: &[&str] = &["email", "spaceId", "phoneNumber", "customMessage", "parameters"];

fn identity_object(w: &mut Walker, item: &Node, path: &str, ch: Channel) -> Option<Recipient> {
    let field = ch.identity_field()?;
    let f = w.fields(item, path, ID_FIELDS)?;
    let mut ok = true;
    for other in ["email", "spaceId", "phoneNumber"] {
        if other != field
            && let Some(n) = f.get(other)
        {
            w.error(
                &n.pos,
                &join(path, other),
                format!("channel {} identifies recipients by `{field}`, not `{other}`", ch.as_str()),
                format!("rename `{other}` to `{field}`"),
            );
            ok = false;
        }
    }
    let id = match f.get(field) {
        Some(n) => w.string(n, &join(path, field)),
        None => {
            if ok {
                w.error(
                    &item.pos,
                    &join(path, field),
                    format!("missing `{field}`"),
                    format!("channel {} needs `{field}` in every identity", ch.as_str()),
                );
            }
            None
        }
    };
    let custom_message = f.get("customMessage").and_then(|n| w.string(n, &join(path, "customMessage")));
    let mut parameters = Params::new();
    if let Some(n) = f.get("parameters") {
        let ppath = join(path, "parameters");
        match &n.value {
            Value::Map(entries) => {
                if entries.len() > MAX_PARAMETERS {
                    w.error(
                        &n.pos,
                        &ppath,
                        format!("{} parameters; Kore.ai accepts at most {MAX_PARAMETERS}", entries.len()),
                        "remove the ones no placeholder uses",
                    );
                    ok = false;
                }
                for (k, v) in entries {
                    let name = k.key_text();
                    let vpath = join(&ppath, &name);
                    if let Some(val) = w.string(v, &vpath) {
                        if val.chars().count() > MAX_PARAMETER_LEN {
                            w.error(
                                &v.pos,
                                &vpath,
                                format!(
                                    "{} characters; Kore.ai accepts at most {MAX_PARAMETER_LEN}",
                                    val.chars().count()
                                ),
                                "shorten the value",
                            );
                            ok = false;
                        }
                        parameters.insert(name, val);
                    } else {
                        ok = false;
                    }
                }
            }
            _ => {
                w.error(
                    &n.pos,
                    &ppath,
                    format!("expected a mapping, found {}", n.kind()),
                    "write `parameters: {name: Alice}`",
                );
                ok = false;
            }
        }
    }
    match (id, ok) {
        (Some(id), true) => Some(Recipient { id, custom_message, parameters }),
        _ => None,
    }
}

fn csv_identities(
    w: &mut Walker,
    root: &Root,
    (path, written): (&Path, &str),
    pos: &Pos,
    ch: Channel,
    out: &mut Vec<Recipient>,
    positions: &mut Vec<Pos>,
) {
    let shown = display_path(path);
    let mut sub = Diagnostics::default();
    let Some(text) = read_text(Some(root), path, MAX_CSV_BYTES, "CSV audience", &mut sub) else {
        let why = sub.items.first().map(|d| d.message.clone()).unwrap_or_default();
        w.error(
            pos,
            "identitiesFrom",
            format!("cannot use `{}`: {why}", crate::safe::line(written)),
            "the path is relative to the manifest file, and must stay inside the repository",
        );
        return;
    };
    if let Err(q) = crate::inputs::check_quotes(&text) {
        w.diags.push(
            Diagnostic::error(&shown, Pos { line: q.line, column: 1 }, "", format!("invalid CSV: {}", q.message))
                .help("close the quote, or double a quote that is part of the text (\"\")"),
        );
        return;
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => {
            w.diags.push(Diagnostic::error(&shown, Pos { line: 1, column: 1 }, "", format!("invalid CSV header: {e}")));
            return;
        }
    };
    let mut err = |line: u32, column: u32, field: String, msg: String, help: &str| {
        w.diags.push(Diagnostic::error(&shown, Pos { line, column }, field, msg).help(help.to_string()));
    };
    match (ch.identity_field(), headers.first()) {
        (_, None) => {
            return err(
                1,
                1,
                String::new(),
                "the CSV file has no header row".into(),
                "the first row names the columns: the identity field, then parameter names",
            );
        }
        (Some(field), Some(h)) if h != field => {
            return err(
                1,
                1,
                String::new(),
                format!("the first column is `{h}`, but channel {} identifies recipients by `{field}`", ch.as_str()),
                "rename the first column header",
            );
        }
        (None, Some(_)) if headers.len() > 1 => {
            return err(
                1,
                1,
                String::new(),
                format!(
                    "channel {} (API v1) takes no parameters, but the CSV has {} columns",
                    ch.as_str(),
                    headers.len()
                ),
                "keep only the identity column",
            );
        }
        _ => {}
    }
    let param_names = headers.iter().skip(1).filter(|h| *h != "customMessage").count();
    if param_names > MAX_PARAMETERS {
        return err(
            1,
            1,
            String::new(),
            format!("{param_names} parameter columns; Kore.ai accepts at most {MAX_PARAMETERS}"),
            "remove the columns no placeholder uses",
        );
    }
    let mut seen_headers = HashSet::new();
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() || !seen_headers.insert(h) {
            return err(
                1,
                i as u32 + 1,
                String::new(),
                format!("column {} has an empty or repeated header `{h}`", i + 1),
                "give every column a unique name",
            );
        }
    }
    let names: Vec<std::sync::Arc<str>> = headers.iter().map(|h| std::sync::Arc::from(h.as_str())).collect();
    let mut record = csv::StringRecord::new();
    let mut errors = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line() as u32).unwrap_or(0);
                err(
                    line,
                    1,
                    String::new(),
                    format!("invalid CSV: {e}"),
                    "every row needs the same number of columns as the header",
                );
                return;
            }
        }
        let line = record.position().map(|p| p.line() as u32).unwrap_or(0);
        if out.len() >= MAX_RECIPIENTS {
            err(
                line,
                1,
                String::new(),
                format!("more than {MAX_RECIPIENTS} recipients in one notification"),
                "split the audience over several notifications",
            );
            return;
        }
        // Surrounding whitespace is trimmed with a warning, like every identity (`trim_identities`).
        let id = record.get(0).unwrap_or_default().to_string();
        if id.trim().is_empty() {
            errors += 1;
            if errors <= MAX_RECIPIENT_DIAGS {
                err(line, 1, headers[0].clone(), "empty identity".into(), "fill in the first column or delete the row");
            }
            continue;
        }
        let mut r = Recipient { id, custom_message: None, parameters: Params::new() };
        for (col, value) in record.iter().enumerate().skip(1) {
            let name = &headers[col];
            if value.is_empty() {
                continue;
            }
            if name == "customMessage" {
                r.custom_message = Some(value.to_string());
            } else if value.chars().count() > MAX_PARAMETER_LEN {
                errors += 1;
                if errors <= MAX_RECIPIENT_DIAGS {
                    err(
                        line,
                        col as u32 + 1,
                        name.clone(),
                        format!("{} characters; Kore.ai accepts at most {MAX_PARAMETER_LEN}", value.chars().count()),
                        "shorten the value",
                    );
                }
            } else {
                r.parameters.insert(names[col].clone(), value.to_string());
            }
        }
        out.push(r);
        positions.push(Pos { line, column: 1 });
    }
    if errors > MAX_RECIPIENT_DIAGS {
        err(0, 0, String::new(), format!("… and {} more problems in this file", errors - MAX_RECIPIENT_DIAGS), "");
    }
}

/// Recipient-level checks of one notification: whitespace, near duplicates (unless
/// `allowNearDuplicates: true`), then duplicates and placeholders.
fn recipient_checks(
    w: &mut Walker,
    f: &BTreeMap<String, &Node>,
    channel: Option<Channel>,
    content: Option<&Content>,
    recipients: &mut [Recipient],
    positions: &[Pos],
    csv: Option<&(PathBuf, usize)>,
) {
    let allow_near_duplicates = match f.get("allowNearDuplicates") {
        Some(n) => match n.value {
            Value::Bool(b) => b,
            _ => {
                let found = format!("expected true or false, found {}", n.kind());
                w.error(&n.pos, "allowNearDuplicates", found, "write true or false");
                false
            }
        },
        None => false,
    };
    if let (Some(ch), Some(c)) = (channel, content) {
        let at = Locator { positions, csv };
        trim_identities(w, recipients, &at);
        check_near_duplicates(w, ch, recipients, &at, allow_near_duplicates);
        check_recipients(w, ch, c, recipients, positions, csv);
    }
}

/// Where recipient `i` was written: an item of `identities`, or a row of the CSV audience.
struct Locator<'a> {
    positions: &'a [Pos],
    /// The CSV file and the index of its first recipient.
    csv: Option<&'a (PathBuf, usize)>,
}

impl Locator<'_> {
    fn diag(&self, w: &Walker, i: usize, error: bool, msg: String, help: String) -> Diagnostic {
        let pos = self.positions.get(i).cloned().unwrap_or_default();
        let (file, path) = match self.csv {
            Some((file, start)) if i >= *start => (file.clone(), format!("identitiesFrom[row {}]", pos.line)),
            _ => (w.file.clone(), index("identities", i)),
        };
        let d =
            if error { Diagnostic::error(&file, pos, path, msg) } else { Diagnostic::warning(&file, pos, path, msg) };
        d.help(help)
    }

    fn path(&self, i: usize) -> String {
        match self.csv {
            Some((file, start)) if i >= *start => {
                format!("{} row {}", file.display(), self.positions.get(i).map(|p| p.line).unwrap_or(0))
            }
            _ => index("identities", i),
        }
    }
}

/// Identities are trimmed of surrounding whitespace (a warning says so, naming the line): ` a@x`
/// and `a@x` are one person. Control characters inside an identity (a line break from a broken
/// CSV quote) are an error.
fn trim_identities(w: &mut Walker, recipients: &mut [Recipient], at: &Locator) {
    let mut warned = 0usize;
    for (i, r) in recipients.iter_mut().enumerate() {
        let trimmed = r.id.trim();
        if trimmed.chars().any(char::is_control) {
            let d = at.diag(
                w,
                i,
                true,
                format!("identity {:?} contains a line break or control character", r.id),
                "an identity is one line of text; check the quoting of this row".into(),
            );
            w.diags.push(d);
        } else if trimmed.len() != r.id.len() {
            warned += 1;
            if warned <= MAX_RECIPIENT_DIAGS {
                let d = at.diag(
                    w,
                    i,
                    false,
                    format!("identity {:?} has surrounding whitespace; it is sent as `{trimmed}`", r.id),
                    "remove the spaces around the identity".into(),
                );
                w.diags.push(d);
            }
            r.id = trimmed.to_string();
        }
    }
    if warned > MAX_RECIPIENT_DIAGS {
        let d = at.diag(w, 0, false, format!("{warned} identities with surrounding whitespace in all ({MAX_RECIPIENT_DIAGS} listed above); they are trimmed"), String::new());
        w.diags.push(d);
    }
}

/// Identities that reach the same person although written differently (`A@Example.com` and
/// `a@example.com`; `+91 98765 43210` and `919876543210`) would each be sent the message: an
/// error, unless the manifest says `allowNearDuplicates: true`. Exact duplicates are reported by
/// `check_recipients`.
fn check_near_duplicates(w: &mut Walker, ch: Channel, recipients: &[Recipient], at: &Locator, allowed: bool) {
    if allowed {
        return;
    }
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(recipients.len());
    let mut count = 0usize;
    for (i, r) in recipients.iter().enumerate() {
        let key = crate::inputs::identity_key(ch, &r.id);
        match seen.get(&key) {
            Some(&first) if recipients[first].id != r.id => {
                count += 1;
                if count <= MAX_RECIPIENT_DIAGS {
                    let msg = format!(
                        "`{}` reaches the same recipient as `{}` ({})",
                        r.id,
                        recipients[first].id,
                        at.path(first)
                    );
                    let help = "e-mail addresses are compared without case and phone numbers by their digits: remove one; if they really are different recipients, set `allowNearDuplicates: true` on this notification".to_string();
                    let d = at.diag(w, i, true, msg, help);
                    w.diags.push(d);
                }
            }
            Some(_) => {}
            None => {
                seen.insert(key, i);
            }
        }
    }
    if count > MAX_RECIPIENT_DIAGS {
        let d = at.diag(
            w,
            0,
            true,
            format!("{count} near-duplicate recipients in all ({MAX_RECIPIENT_DIAGS} listed above)"),
            "remove them, or set `allowNearDuplicates: true`".into(),
        );
        w.diags.push(d);
    }
}

/// Recipient-level rules across the whole notification: duplicates, placeholders that some
/// recipient has no parameter for (error) and parameters that no placeholder uses (warning).
fn check_recipients(
    w: &mut Walker,
    ch: Channel,
    content: &Content,
    recipients: &[Recipient],
    positions: &[Pos],
    csv: Option<&(PathBuf, usize)>,
) {
    let locate = |i: usize| -> (PathBuf, Pos, String) {
        let pos = positions.get(i).cloned().unwrap_or_default();
        match csv {
            Some((file, start)) if i >= *start => {
                let path = format!("identitiesFrom[row {}]", pos.line);
                (file.clone(), pos, path)
            }
            _ => (PathBuf::new(), pos, index("identities", i)),
        }
    };
    let uses_parameters = ch.api() == Api::V2 && content.kind != "script";
    let content_placeholders: Vec<String> = match (&content.value, uses_parameters) {
        (serde_json::Value::String(s), true) => placeholders(s).into_iter().map(String::from).collect(),
        _ => Vec::new(),
    };
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(recipients.len());
    let (mut dup_count, mut missing_count) = (0usize, 0usize);
    let mut unused: BTreeMap<&str, usize> = BTreeMap::new();
    let report = |w: &mut Walker, i: usize, field: String, msg: String, help: String| {
        let (file, pos, path) = locate(i);
        let field = if field.is_empty() { path } else { join(&path, &field) };
        if file.as_os_str().is_empty() {
            w.error(&pos, &field, msg, help);
        } else {
            w.diags.push(Diagnostic::error(&file, pos, field, msg).help(help));
        }
    };
    for (i, r) in recipients.iter().enumerate() {
        if let Some(first) = seen.insert(&r.id, i) {
            seen.insert(&r.id, first);
            dup_count += 1;
            if dup_count <= MAX_RECIPIENT_DIAGS {
                let (_, _, first_path) = locate(first);
                report(
                    w,
                    i,
                    String::new(),
                    format!("duplicate recipient `{}`", r.id),
                    format!("already listed at {first_path}; each person receives a notification once"),
                );
            }
        }
        if !uses_parameters {
            continue;
        }
        let mut needed: Vec<&str> = content_placeholders.iter().map(String::as_str).collect();
        if let Some(cm) = &r.custom_message {
            for p in placeholders(cm) {
                if !needed.contains(&p) {
                    needed.push(p);
                }
            }
        }
        for p in &needed {
            if !r.parameters.contains_key(p) {
                missing_count += 1;
                if missing_count <= MAX_RECIPIENT_DIAGS {
                    report(
                        w,
                        i,
                        "parameters".into(),
                        format!("placeholder {{{p}}} has no parameter `{p}` for `{}`", r.id),
                        format!("add `{p}` to this recipient's parameters, or remove {{{p}}} from the message"),
                    );
                }
            }
        }
        for name in r.parameters.keys() {
            if !needed.contains(&name) {
                unused.entry(name).or_insert(i);
            }
        }
    }
    if dup_count > MAX_RECIPIENT_DIAGS {
        report(
            w,
            0,
            String::new(),
            format!("{} duplicate recipients in all ({} listed above)", dup_count, MAX_RECIPIENT_DIAGS),
            "remove the repeated identities".into(),
        );
    }
    if missing_count > MAX_RECIPIENT_DIAGS {
        report(
            w,
            0,
            "parameters".into(),
            format!("{missing_count} missing parameters in all ({MAX_RECIPIENT_DIAGS} listed above)"),
            "every placeholder needs a parameter for every recipient".into(),
        );
    }
    for (name, i) in unused {
        let (file, pos, path) = locate(i);
        let field = join(&join(&path, "parameters"), name);
        let d = Diagnostic::warning(
            if file.as_os_str().is_empty() { &w.file } else { &file },
            pos,
            field,
            format!("parameter `{name}` is used by no placeholder"),
        )
        .help(format!("add {{{name}}} to the message or customMessage, or drop the parameter"));
        w.diags.push(d);
    }
}
