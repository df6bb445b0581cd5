//! Loading a repository of manifests: find the files (directories walked in sorted order, globs
//! expanded, symlink loops detected), parse every YAML document, resolve `valueFile` and
//! `identitiesFrom`, and check every documented constraint of the Kore.ai API (the README lists them). All
//! problems of a run are collected; the caller decides whether errors stop it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::files::{self, FileError, Root, display_path};
use crate::interp::Env;
use crate::manifest::*;
use crate::text;
use crate::walk::{Walker, index, join};
use crate::yaml::{self, Node, Value};

mod csv_read;
mod document;
mod find;
mod identities;
mod recipients;
mod zones;

use document::*;
pub use find::find_files;
use identities::*;
use recipients::*;
use zones::*;

/// Most recipients in one notification: bounds the memory a hostile audience can take (about
/// 250 bytes per recipient in a plan).
pub(crate) const MAX_RECIPIENTS: usize = 1_000_000;
/// Largest CSV audience or valueFile we read.
pub(crate) const MAX_CSV_BYTES: u64 = 512 * 1024 * 1024;
pub(crate) const MAX_VALUE_FILE_BYTES: u64 = 1024 * 1024;
/// Per notification and kind, how many recipient-level problems are listed before summarising.
const MAX_RECIPIENT_DIAGS: usize = 10;

/// The manifests of a repository, loaded and validated: their notifications, and the files read.
#[derive(Debug)]
pub struct LoadedManifests {
    pub notifications: Vec<Notification>,
    pub(crate) files: Vec<PathBuf>,
}

/// Reads a file with a size cap enforced while reading, as UTF-8 text (refused at the first chunk
/// that is not); with a `root`, the file must resolve inside it. Problems become diagnostics that
/// never show the file's content, naming the kind of file and the fix.
fn read_text(root: Option<&Root>, path: &Path, cap: u64, kind: text::Kind, diags: &mut Diagnostics) -> Option<String> {
    let shown = display_path(path);
    let read = match root {
        Some(r) => r.read_text(path, cap),
        None => files::read_named_text(path, cap),
    };
    let noun = kind.noun();
    let (pos, message, help) = match read {
        Ok(t) => return Some(t),
        Err(FileError::TooLarge(cap)) => (
            Pos::default(),
            format!("{noun} is too large (limit {cap} bytes)"),
            "split it into several files, or keep large audiences in a CSV file with identitiesFrom",
        ),
        Err(FileError::NotText(e)) => (Pos { line: e.line, column: e.column }, kind.message(&e), kind.fix()),
        Err(e) => (Pos::default(), format!("cannot read {noun}: {e}"), e.help()),
    };
    diags.push(Diagnostic::error(&shown, pos, "", message).help(help));
    None
}

/// Reads the file a manifest field names (`valueFile`, `identitiesFrom`), confined to the root;
/// a problem is reported at the field, naming the path as written, with the reader's own help
/// (outside the repository, hidden, too large, …).
fn read_for_field(
    w: &mut Walker,
    root: &Root,
    (path, written): (&Path, &str),
    cap: u64,
    kind: text::Kind,
    (pos, field): (&Pos, &str),
) -> Option<String> {
    let mut sub = Diagnostics::default();
    let text = read_text(Some(root), path, cap, kind, &mut sub);
    if text.is_none() {
        if sub.items.first().is_some_and(|d| d.line > 0) {
            // A problem at a place in the file itself (bytes that are not text): shown there.
            w.diags.extend(sub);
            return None;
        }
        let d = sub.items.first();
        let why = d.map(|d| d.message.clone()).unwrap_or_default();
        let help = d.and_then(|d| d.help.clone()).unwrap_or_else(|| "the path is relative to the manifest file".into());
        w.error(pos, field, format!("cannot use `{}`: {why}", crate::safe::line(written)), help);
    }
    text
}

/// Where a repository's files may come from, and which variables manifests may expand.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub root: &'a Root,
    pub variables: &'a [String],
    pub env: &'a dyn Env,
    /// The config's target names, which a manifest's `targets:` may list (`None`: no config,
    /// any name is taken).
    pub targets: Option<&'a [String]>,
    /// The default `deliveryWindow` of each target that has one, by target name, for manifests
    /// without their own (their recipients' zone parameters are checked here; the window is set
    /// when the notifications are scoped to a target).
    pub default_windows: &'a [(String, std::sync::Arc<crate::window::DeliveryWindow>)],
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").field("root", &self.root).field("variables", &self.variables).finish_non_exhaustive()
    }
}

/// Loads and validates every manifest in `files`, on all cores; results keep the file order.
pub fn load_repo(mut files: Vec<PathBuf>, src: Sources, diags: &mut Diagnostics) -> LoadedManifests {
    // One loader per core (at most 4): each may hold a file's worst-case tree within the YAML
    // budgets, so memory is bounded by the thread count, not the number of files. Parsers
    // recurse: loader threads get a stack at least as big as the main thread's.
    let results = crate::parallel::fan_out(&mut files, 4, Some(64 * 1024 * 1024), |part| load_files(part, src));
    let results = results.into_iter().map(|r| {
        r.unwrap_or_else(|e| {
            let mut d = Diagnostics::default();
            d.push(Diagnostic::error(Path::new("."), Pos::default(), "", format!("cannot start a thread: {e}")));
            (Vec::new(), d)
        })
    });
    let mut notifications = Vec::new();
    for (ns, d) in results {
        notifications.extend(ns);
        diags.extend(d);
    }
    check_repo(&notifications, diags);
    LoadedManifests { notifications, files }
}

fn load_files(files: &[PathBuf], src: Sources) -> (Vec<Notification>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut notifications = Vec::new();
    for file in files {
        // Manifest files were confined when found (paths given on the command line are the
        // user's own); what they name is confined to the root below.
        let Some(text) = read_text(None, file, yaml::MAX_YAML_BYTES, text::Kind::Manifest, &mut diags) else {
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
            if let Some(n) = document(&mut w, file, doc, src) {
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
