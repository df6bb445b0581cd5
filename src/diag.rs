//! Diagnostics: every problem found in the input, with the file, line, column and field path, what
//! is wrong and how to fix it. Validation collects all of them (not only the first) so a user fixes a
//! repository in one round trip. Rendering depends on where we run: a source snippet on a terminal,
//! `::error` workflow commands on GitHub Actions (annotations on the manifest lines), JSON for tools.

use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Error,
    Warning,
}

/// A position in a source file. Lines and columns are 1-based; 0 means "whole file".
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Diagnostic {
    pub(crate) severity: Severity,
    pub(crate) file: PathBuf,
    pub(crate) line: u32,
    pub(crate) column: u32,
    /// Field path inside the document, e.g. `identities[3].parameters.refId`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) field: String,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) help: Option<String>,
    /// The source line may hold a secret: never show it.
    #[serde(skip)]
    pub(crate) redact: bool,
}

impl Diagnostic {
    pub(crate) fn error(file: &Path, pos: Pos, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            field: field.into(),
            message: message.into(),
            help: None,
            redact: false,
        }
    }

    pub(crate) fn warning(file: &Path, pos: Pos, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(file, pos, field, message) }
    }

    #[must_use]
    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    fn location(&self) -> String {
        if self.line == 0 {
            self.file.display().to_string()
        } else {
            format!("{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }

    /// `file:line: field: message`, for lists.
    pub(crate) fn one_line(&self) -> String {
        format!("{}: {}", self.location(), self.headline())
    }

    fn headline(&self) -> String {
        if self.field.is_empty() { self.message.clone() } else { format!("{}: {}", self.field, self.message) }
    }
}

/// Collects diagnostics in the order they were found; sorted for output so runs are deterministic.
#[derive(Default, Debug)]
pub struct Diagnostics {
    pub(crate) items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }
    pub fn errors(&self) -> usize {
        self.items.iter().filter(|d| d.severity == Severity::Error).count()
    }
    pub(crate) fn warnings(&self) -> usize {
        self.items.iter().filter(|d| d.severity == Severity::Warning).count()
    }
    pub(crate) fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
    pub(crate) fn sort(&mut self) {
        // Paths compared as bytes: component-wise comparison is the slow part at 100,000 items.
        self.items.sort_by(|a, b| {
            (a.file.as_os_str(), a.line, a.column, a.severity, &a.message).cmp(&(
                b.file.as_os_str(),
                b.line,
                b.column,
                b.severity,
                &b.message,
            ))
        });
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DiagFormat {
    /// Source snippets (coloured when `color` is set).
    Human { color: bool },
    /// GitHub Actions workflow commands, which become annotations on the lines. `workspace`:
    /// the repository root (`GITHUB_WORKSPACE`) annotation paths are relative to.
    Github { workspace: Option<PathBuf> },
    /// One JSON document with every diagnostic.
    Json,
}

impl DiagFormat {
    /// Human output, unless we run inside GitHub Actions (settings the CLI resolved from the
    /// environment).
    pub(crate) fn detect(color: bool, github_actions: bool, workspace: Option<PathBuf>) -> Self {
        if github_actions { DiagFormat::Github { workspace } } else { DiagFormat::Human { color } }
    }
}

/// Annotation paths are relative to the repository root (`GITHUB_WORKSPACE`), whatever directory
/// kore-notify runs in (the workflow's `working-directory`), or GitHub puts them on no file.
fn annotation_path(file: &Path, workspace: Option<&Path>) -> PathBuf {
    let Some(workspace) = workspace.and_then(|w| std::fs::canonicalize(w).ok()) else {
        return file.to_path_buf();
    };
    let abs = std::env::current_dir().map_or_else(|_| file.to_path_buf(), |c| c.join(file));
    let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
    abs.strip_prefix(&workspace).map_or_else(|_| file.to_path_buf(), Path::to_path_buf)
}

/// Escapes a value for a GitHub workflow command (`%`, CR, LF; plus `:` and `,` in properties).
fn gh_escape(s: &str, property: bool) -> String {
    let mut out = s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

pub(crate) fn render(diags: &Diagnostics, format: &DiagFormat) -> String {
    match format {
        DiagFormat::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                version: u32,
                valid: bool,
                errors: usize,
                warnings: usize,
                diagnostics: &'a [Diagnostic],
            }
            let out = Out {
                version: 1,
                valid: diags.errors() == 0,
                errors: diags.errors(),
                warnings: diags.warnings(),
                diagnostics: &diags.items,
            };
            crate::safe::json(&serde_json::to_string_pretty(&out).unwrap_or_default()).into_owned() + "\n"
        }
        DiagFormat::Github { workspace } => {
            let mut out = String::new();
            for d in &diags.items {
                let kind = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let mut msg = crate::safe::line(&d.headline()).into_owned();
                if let Some(h) = &d.help {
                    msg.push_str("\nhelp: ");
                    msg.push_str(&crate::safe::line(h));
                }
                let file = annotation_path(&d.file, workspace.as_deref());
                let mut props = format!("file={}", gh_escape(&crate::safe::line(&file.to_string_lossy()), true));
                if d.line > 0 {
                    props.push_str(&format!(",line={},col={}", d.line, d.column));
                }
                if !d.field.is_empty() {
                    props.push_str(&format!(",title={}", gh_escape(&crate::safe::line(&d.field), true)));
                }
                out.push_str(&format!("::{kind} {props}::{}\n", gh_escape(&msg, false)));
            }
            out
        }
        &DiagFormat::Human { color } => {
            let mut out = String::new();
            let mut sources = Sources::default();
            for d in &diags.items {
                out.push_str(&render_human(d, color, &mut sources));
                out.push('\n');
            }
            out
        }
    }
}

fn render_human(d: &Diagnostic, color: bool, sources: &mut Sources) -> String {
    use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    // Everything shown may come from a hostile file: unsafe characters are made visible.
    let title = crate::safe::line(&d.headline()).into_owned();
    let source_line = if d.line > 0 && !d.redact { sources.line(&d.file, d.line) } else { None };
    let renderer = if color { Renderer::styled() } else { Renderer::plain() };
    let path = crate::safe::line(&d.file.display().to_string()).into_owned();
    let mut groups = Vec::new();
    match source_line {
        Some(raw) => {
            let chars: Vec<(usize, char)> = raw.char_indices().collect();
            let col = (d.column.max(1) as usize - 1).min(chars.len());
            let start = chars.get(col).map_or(raw.len(), |c| c.0);
            // Underline the token that starts at the column.
            let end = raw[start..]
                .find([' ', ',', ']', '}', '#'])
                .map_or(raw.len(), |i| start + i)
                .max((start + 1).min(raw.len()));
            let (text, start, end) = safe_span(&raw, start, end);
            let label = crate::safe::line(&d.field).into_owned();
            groups.push(
                level.clone().primary_title(title).element(
                    Snippet::source(text.clone())
                        .line_start(d.line as usize)
                        .path(path)
                        .annotation(AnnotationKind::Primary.span(start..end).label(label)),
                ),
            );
        }
        None => groups.push(Group::with_title(
            level.clone().primary_title(format!("{}: {title}", crate::safe::line(&d.location()))),
        )),
    }
    if let Some(h) = &d.help {
        groups.push(Group::with_title(Level::HELP.secondary_title(crate::safe::line(h).into_owned())));
    }
    renderer.render(&groups).clone()
}

/// A source line made safe to print, with the byte span `start..end` moved along.
fn safe_span(raw: &str, start: usize, end: usize) -> (String, usize, usize) {
    let mut out = String::with_capacity(raw.len());
    let (mut s, mut e) = (0, 0);
    for (i, c) in raw.char_indices() {
        if i == start {
            s = out.len();
        }
        if i == end {
            e = out.len();
        }
        let mut buf = [0u8; 4];
        out.push_str(&crate::safe::line(c.encode_utf8(&mut buf)));
    }
    if end >= raw.len() {
        e = out.len();
    }
    if start >= raw.len() {
        s = out.len();
    }
    (out, s, e.max(s))
}

/// Source lines for snippets, each file read once (so rendering is linear in the number of
/// diagnostics). Bounded: huge, unreadable or binary files, and very long lines, show no snippet.
#[derive(Default)]
struct Sources {
    files: std::collections::HashMap<PathBuf, Option<(String, Vec<usize>)>>,
}

impl Sources {
    fn line(&mut self, path: &Path, line: u32) -> Option<String> {
        let entry = self.files.entry(path.to_path_buf()).or_insert_with(|| {
            // Over the limit is refused before reading, binary at the first chunk.
            let text = crate::files::read_regular_text(path, 64 * 1024 * 1024).ok()?;
            let mut starts = vec![0];
            starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
            Some((text, starts))
        });
        let (text, starts) = entry.as_ref()?;
        let begin = *starts.get(line as usize - 1)?;
        let end = starts.get(line as usize).map_or(text.len(), |e| e - 1);
        let l = text.get(begin..end)?.trim_end_matches('\r');
        (l.len() <= 400).then(|| l.to_string())
    }
}
