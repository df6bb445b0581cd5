//! Recipients from a manifest (`identities`) or a CSV audience (`identitiesFrom`).

use super::*;

pub(super) fn identities(w: &mut Walker, node: &Node, ch: Channel, out: &mut Vec<Recipient>, positions: &mut Vec<Pos>) {
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

pub(super) const ID_FIELDS: &[&str] = &["email", "spaceId", "phoneNumber", "customMessage", "parameters"];

pub(super) fn identity_object(w: &mut Walker, item: &Node, path: &str, ch: Channel) -> Option<Recipient> {
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
    let custom_message = f.get("customMessage").and_then(|n| {
        let at = join(path, "customMessage");
        let s = w.string(n, &at)?;
        if w.sendable(&n.pos, &at, &s) {
            Some(s)
        } else {
            ok = false;
            None
        }
    });
    let parameters = match f.get("parameters") {
        Some(n) => parameters(w, n, &join(path, "parameters")),
        None => Some(Params::new()),
    };
    let parameters = parameters.filter(|_| ok)?;
    Some(Recipient { id: id?, custom_message, parameters })
}

/// A recipient's `parameters`: a mapping of at most 20 text values of at most 200 characters.
fn parameters(w: &mut Walker, n: &Node, ppath: &str) -> Option<Params> {
    let Value::Map(entries) = &n.value else {
        w.error(&n.pos, ppath, format!("expected a mapping, found {}", n.kind()), "write `parameters: {name: Alice}`");
        return None;
    };
    let mut ok = true;
    if entries.len() > MAX_PARAMETERS {
        w.error(
            &n.pos,
            ppath,
            format!("{} parameters; Kore.ai accepts at most {MAX_PARAMETERS}", entries.len()),
            "remove the ones no placeholder uses",
        );
        ok = false;
    }
    let mut parameters = Params::new();
    for (k, v) in entries {
        let name = k.key_text();
        let vpath = join(ppath, &name);
        let Some(val) = w.string(v, &vpath).filter(|s| w.sendable(&v.pos, &vpath, s)) else {
            ok = false;
            continue;
        };
        if val.chars().count() > MAX_PARAMETER_LEN {
            let msg = format!("{} characters; Kore.ai accepts at most {MAX_PARAMETER_LEN}", val.chars().count());
            w.error(&v.pos, &vpath, msg, "shorten the value");
            ok = false;
        }
        parameters.insert(name, val);
    }
    ok.then_some(parameters)
}

pub(super) fn csv_identities(
    w: &mut Walker,
    root: &Root,
    (path, written): (&Path, &str),
    pos: &Pos,
    ch: Channel,
    out: &mut Vec<Recipient>,
    positions: &mut Vec<Pos>,
) -> Vec<String> {
    let shown = display_path(path);
    let file = match root.open(path, MAX_CSV_BYTES) {
        Ok(f) => f,
        Err(e) => {
            cannot_use(w, written, pos, &e);
            return Vec::new();
        }
    };
    let (start, mark) = (out.len(), w.diags.items.len());
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(csv_read::Checked::new(file, MAX_CSV_BYTES));
    let headers = reader.headers().map(|h| h.iter().map(|s| s.trim().to_string()).collect::<Vec<String>>());
    let headers = match headers {
        Ok(h) => Some(h),
        Err(_) if reader.get_ref().problem.is_some() => None,
        Err(e) => {
            w.diags.push(Diagnostic::error(&shown, Pos { line: 1, column: 1 }, "", format!("invalid CSV header: {e}")));
            return Vec::new();
        }
    };
    if let Some(headers) = &headers {
        if let Err((column, message, help)) = check_headers(headers, ch) {
            w.diags.push(Diagnostic::error(&shown, Pos { line: 1, column }, "", message).help(help));
            return Vec::new();
        }
        let mut sink = CsvSink { diags: w.diags, file: &shown, errors: 0, warnings: 0 };
        csv_rows(&mut reader, headers, &mut sink, out, positions);
    }
    // A problem with the file itself (not text, quoting, too large) is reported alone: what its
    // rows said before it is dropped, as they were read from a file that is not what it seems.
    if let Some(problem) = reader.get_mut().problem.take() {
        out.truncate(start);
        positions.truncate(start);
        w.diags.items.truncate(mark);
        report_problem(w, &shown, (written, pos), problem);
    }
    headers.unwrap_or_default()
}

/// An `identitiesFrom` that cannot be opened, reported at the field.
fn cannot_use(w: &mut Walker, written: &str, pos: &Pos, e: &FileError) {
    let (why, help) = match e {
        FileError::TooLarge(cap) => (
            format!("the CSV audience is too large (limit {cap} bytes)"),
            "split it into several files, or the audience over several notifications",
        ),
        e => (format!("cannot read the CSV audience: {e}"), e.help()),
    };
    w.error(pos, "identitiesFrom", format!("cannot use `{}`: {why}", crate::safe::line(written)), help);
}

fn report_problem(w: &mut Walker, shown: &Path, (written, pos): (&str, &Pos), problem: csv_read::Problem) {
    let kind = text::Kind::CsvAudience;
    let d = match problem {
        csv_read::Problem::NotText(e) => {
            Diagnostic::error(shown, Pos { line: e.line, column: e.column }, "", kind.message(&e)).help(kind.fix())
        }
        csv_read::Problem::Quotes(q) => {
            Diagnostic::error(shown, Pos { line: q.line, column: 1 }, "", format!("invalid CSV: {}", q.message))
                .help("close the quote, or double a quote that is part of the text (\"\"); a row holds one recipient")
        }
        csv_read::Problem::TooLarge(cap) => return cannot_use(w, written, pos, &FileError::TooLarge(cap)),
    };
    w.diags.push(d);
}

/// The header row: the channel's identity field first (v1: alone), then at most 20 parameter
/// columns (and `customMessage`), every name unique. Errors: (column, message, help).
fn check_headers(headers: &[String], ch: Channel) -> Result<(), (u32, String, &'static str)> {
    match (ch.identity_field(), headers.first()) {
        (_, None) => {
            return Err((
                1,
                "the CSV file has no header row".into(),
                "the first row names the columns: the identity field, then parameter names",
            ));
        }
        (Some(field), Some(h)) if h != field => {
            return Err((
                1,
                format!(
                    "the first column is `{}`, but channel {} identifies recipients by `{field}`",
                    crate::safe::line(h),
                    ch.as_str()
                ),
                "rename the first column header",
            ));
        }
        (None, Some(_)) if headers.len() > 1 => {
            return Err((
                1,
                format!(
                    "channel {} (API v1) takes no parameters, but the CSV has {} columns",
                    ch.as_str(),
                    headers.len()
                ),
                "keep only the identity column",
            ));
        }
        _ => {}
    }
    let param_names = headers.iter().skip(1).filter(|h| *h != "customMessage").count();
    if param_names > MAX_PARAMETERS {
        return Err((
            1,
            format!("{param_names} parameter columns; Kore.ai accepts at most {MAX_PARAMETERS}"),
            "remove the columns no placeholder uses",
        ));
    }
    let mut seen = HashSet::new();
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() || !seen.insert(h) {
            return Err((
                i as u32 + 1,
                format!("column {} has an empty or repeated header `{}`", i + 1, crate::safe::line(h)),
                "give every column a unique name",
            ));
        }
    }
    Ok(())
}

/// Where row problems go: the first [`MAX_RECIPIENT_DIAGS`] errors and warnings are listed, then
/// a count.
struct CsvSink<'a> {
    diags: &'a mut Diagnostics,
    file: &'a Path,
    errors: usize,
    warnings: usize,
}

impl CsvSink<'_> {
    fn error(&mut self, (line, column): (u32, u32), field: &str, message: String, help: &str) {
        self.diags.push(Diagnostic::error(self.file, Pos { line, column }, field, message).help(help.to_string()));
    }

    /// A row problem, listed while few.
    fn row_error(&mut self, at: (u32, u32), field: &str, message: String, help: &str) {
        self.errors += 1;
        if self.errors <= MAX_RECIPIENT_DIAGS {
            self.error(at, field, message, help);
        }
    }

    /// A control character in a cell (not NUL), listed while few.
    fn row_warning(&mut self, (line, column): (u32, u32), field: &str, message: String) {
        self.warnings += 1;
        if self.warnings <= MAX_RECIPIENT_DIAGS {
            let d = Diagnostic::warning(self.file, Pos { line, column }, field, message);
            self.diags.push(d.help(crate::inputs::CONTROL_HELP));
        }
    }
}

/// The rows: one recipient each (empty cells are absent parameters), within the recipient cap.
fn csv_rows(
    reader: &mut csv::Reader<csv_read::Checked<std::fs::File>>,
    headers: &[String],
    sink: &mut CsvSink,
    out: &mut Vec<Recipient>,
    positions: &mut Vec<Pos>,
) {
    let names: Vec<std::sync::Arc<str>> = headers.iter().map(|h| std::sync::Arc::from(h.as_str())).collect();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            // The file itself has a problem: the caller reports it.
            Err(_) if reader.get_ref().problem.is_some() => return,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as u32);
                let help = "every row needs the same number of columns as the header";
                return sink.error((line, 1), "", format!("invalid CSV: {e}"), help);
            }
        }
        let line = record.position().map_or(0, |p| p.line() as u32);
        if out.len() >= MAX_RECIPIENTS {
            let msg = format!("more than {MAX_RECIPIENTS} recipients in one notification");
            return sink.error((line, 1), "", msg, "split the audience over several notifications");
        }
        // Surrounding whitespace is trimmed with a warning, like every identity (`trim_identities`).
        let id = record.get(0).unwrap_or_default().to_string();
        if id.trim().is_empty() {
            sink.row_error(
                (line, 1),
                &headers[0],
                "empty identity".into(),
                "fill in the first column or delete the row",
            );
            continue;
        }
        let mut r = Recipient { id, custom_message: None, parameters: Params::new() };
        for (col, value) in record.iter().enumerate().skip(1).filter(|(_, v)| !v.is_empty()) {
            let name = &headers[col];
            if value.contains('\n') {
                // Legal CSV, but usually a quote closed a line late: the next rows folded into
                // this value. Said, so nobody is dropped silently.
                sink.diags.push(
                    Diagnostic::warning(
                        sink.file,
                        Pos { line, column: col as u32 + 1 },
                        name.clone(),
                        "this quoted value spans several lines",
                    )
                    .help("if the following rows were meant as recipients, close the quote on this line"),
                );
            }
            // Kept as read either way: an error stops the run, and no other error follows from it.
            match crate::inputs::check_sendable(value) {
                Ok(None) => {}
                Ok(Some(message)) => sink.row_warning((line, col as u32 + 1), name, message),
                Err(message) => sink.row_error((line, col as u32 + 1), name, message, crate::inputs::NUL_HELP),
            }
            if name == "customMessage" {
                r.custom_message = Some(value.to_string());
            } else if value.chars().count() > MAX_PARAMETER_LEN {
                let msg = format!("{} characters; Kore.ai accepts at most {MAX_PARAMETER_LEN}", value.chars().count());
                sink.row_error((line, col as u32 + 1), name, msg, "shorten the value");
            } else {
                r.parameters.insert(names[col].clone(), value.to_string());
            }
        }
        out.push(r);
        positions.push(Pos { line, column: 1 });
    }
    if sink.errors > MAX_RECIPIENT_DIAGS {
        let msg = format!("… and {} more problems in this file", sink.errors - MAX_RECIPIENT_DIAGS);
        sink.error((0, 0), "", msg, "");
    }
    if sink.warnings > MAX_RECIPIENT_DIAGS {
        let msg =
            format!("… and {} more cells with control characters in this file", sink.warnings - MAX_RECIPIENT_DIAGS);
        sink.diags.push(Diagnostic::warning(sink.file, Pos::default(), "", msg));
    }
}
