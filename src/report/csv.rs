//! The report as CSV: one row per recipient, joined to the audience. Columns: `notification`,
//! the audience's columns (the CSV `identitiesFrom` header's identity field and parameters, or
//! the inline identities' parameters; the union when several notifications are reported), then
//! `status`, `deliveryStatus`, `comment` (Kore.ai's), `unreachable`, `requestId` and `sentAt`.
//!
//! Identities and values are in clear unless `--mask`. Every cell is one line of safe text
//! (control characters shown as `<U+XXXX>`), and a cell a spreadsheet would run as a formula
//! (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, which
//! spreadsheets show as text: a hostile manifest or server comment cannot run anything in the
//! program that opens the file. A phone number `+4478…` therefore reads `'+4478…`.

use super::*;

/// The fixed columns after the audience's.
const TAIL: &[&str] = &["status", "deliveryStatus", "comment", "unreachable", "requestId", "sentAt"];

/// A cell as a spreadsheet may open it: one line of safe text, never a formula.
pub(crate) fn cell(s: &str) -> String {
    let s = crate::safe::line(s);
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        // `line` already shows a raw tab or CR visibly; the check above is for what it lets through.
        _ => s.into_owned(),
    }
}

/// The CSV document.
pub(crate) fn csv(report: &Report) -> String {
    let mut audience: Vec<&str> = Vec::new();
    for n in &report.notifications {
        for c in &n.columns {
            if !audience.contains(&c.as_str()) {
                audience.push(c);
            }
        }
    }
    let mask = report.masked.then_some(report.bot.as_str());
    let mut w = ::csv::WriterBuilder::new().terminator(::csv::Terminator::CRLF).from_writer(Vec::new());
    let mut header = vec!["notification"];
    header.extend(&audience);
    header.extend(TAIL);
    let _ = w.write_record(header.iter().map(|h| cell(h)));
    for n in &report.notifications {
        // Where each of this notification's columns goes in the union.
        let at: Vec<usize> = n.columns.iter().map(|c| audience.iter().position(|a| a == c).unwrap_or(0)).collect();
        for r in &n.recipients {
            let mut row = vec![String::new(); audience.len()];
            row[at[0]] = who(r, mask);
            let mut values = r.params.iter();
            for (i, c) in n.columns.iter().enumerate().skip(1) {
                let v = if c == "customMessage" { r.custom_message.clone() } else { values.next().cloned().flatten() };
                row[at[i]] = v.map(|v| value(&v, mask)).unwrap_or_default();
            }
            let mut record = vec![cell(&n.key)];
            record.extend(row.iter().map(|v| cell(v)));
            record.push(cell(r.status.as_str()));
            record.push(cell(r.delivery_status.as_deref().unwrap_or("")));
            record.push(cell(r.comment.as_deref().unwrap_or("")));
            record.push(if r.unreachable { "yes".into() } else { String::new() });
            record.push(cell(r.request_id.as_deref().unwrap_or("")));
            record.push(cell(r.sent_at.as_deref().unwrap_or("")));
            let _ = w.write_record(&record);
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cell_opens_as_a_formula_or_breaks_a_line() {
        for hostile in ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "a\nb", "=\u{1b}[2J"] {
            let c = cell(hostile);
            assert!(!c.starts_with(['=', '+', '-', '@', '\t', '\r']), "{hostile:?} → {c:?}");
            assert!(!c.chars().any(crate::safe::is_unsafe), "{hostile:?} → {c:?}");
        }
        assert_eq!(cell("+447700900123"), "'+447700900123");
        assert_eq!(cell("ann@example.com"), "ann@example.com");
        assert_eq!(cell("Grüße"), "Grüße");
    }
}
