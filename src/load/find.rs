//! Finding manifest files: directories walked (each once, never outside the root, bounded) and
//! globs matched against what the walk finds.

use super::*;

pub(super) fn is_yaml(p: &Path) -> bool {
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
pub(crate) const MAX_WALK_ENTRIES: usize = 200_000;
pub(super) const MAX_WALK_DEPTH: usize = 32;

/// A directory walk that visits every directory once, stays in the root and is bounded.
pub(super) struct Walk<'a, 'd> {
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
