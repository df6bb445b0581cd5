//! The report as one self-contained HTML page: inline CSS and SVG, no JavaScript (a
//! Content-Security-Policy forbids scripts and every outside fetch), no external assets. Readable
//! on a phone (viewport, one column, tables scroll sideways) and printable (`@media print`). Every
//! chart has a `<title>` and a `<desc>`, and every figure is also a table with the same numbers;
//! numbers carry `data-metric` / `data-value` attributes so a test can compare page and state.
//!
//! All text that came from manifests, the state or the server goes through `crate::safe::html`
//! (entities, unsafe characters made visible), attributes included.

use std::fmt::Write;

use super::series::{Minute, Outcomes};
use super::*;
use crate::safe::html as esc;
use crate::units::thousands;

const STYLE: &str = "
:root{--ok:#1a7f37;--bad:#cf222e;--wait:#bf8700;--unk:#6e7781;--ink:#1f2328;--line:#d0d7de;--bar:#0969da}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--ink);background:#fff}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:1.6rem 0 .4rem;word-break:break-all}
h3{font-size:1rem;margin:1rem 0 .3rem}
.meta{color:#57606a;margin:.2rem 0 1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(7.5rem,1fr));gap:.5rem}
.card{border:1px solid var(--line);border-radius:6px;padding:.5rem}
.card b{display:block;font-size:1.4rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.3rem 0 .8rem;font-size:.92rem}
th,td{border-bottom:1px solid var(--line);padding:.25rem .5rem;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.5rem 0}figcaption{font-size:.9rem;color:#57606a}
svg{width:100%;height:auto;display:block}
svg text{font-size:11px;fill:var(--ink)}
.ok{fill:var(--ok)}.bad{fill:var(--bad)}.wait{fill:var(--wait)}.unk{fill:var(--unk)}.bar{fill:var(--bar)}
.limit{stroke:var(--bad);stroke-dasharray:4 3}
section.notification{border-top:2px solid var(--line);margin-top:1.5rem}
.tag{display:inline-block;padding:0 .4rem;border-radius:4px;font-size:.85rem;border:1px solid var(--line)}
@media (max-width:30rem){body{font-size:15px}main{padding:.6rem}}
@media print{body{font-size:10pt}main{max-width:none;padding:0}section.notification{break-inside:avoid-page}
.scroll{overflow:visible}a{color:inherit;text-decoration:none}}
";

/// Fresh ids for `aria-labelledby`.
struct Ids(usize);

impl Ids {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("c{}", self.0)
    }
}

/// The HTML document.
pub(crate) fn html(r: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    let (target, titled) = match r.target.as_deref() {
        Some(t) => (format!("Target <code>{}</code> · ", esc(t)), format!("{} · ", esc(t))),
        None => (String::new(), String::new()),
    };
    let _ = writeln!(out, "<title>kore-notify delivery report · {titled}{}</title>", esc(&r.bot));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(out, "<h1>Delivery report</h1>");
    let status = if r.terminal { "every status is final" } else { "some statuses are not final yet" };
    let _ = writeln!(
        out,
        "<p class=\"meta\">{target}Bot <code>{}</code> · generated {} · limit {}/min, {}/h · {status}{}</p>",
        esc(&r.bot),
        esc(&r.generated_at),
        thousands(r.per_minute as usize),
        thousands(r.per_hour as usize),
        if r.masked { " · recipients masked" } else { "" }
    );
    let mut ids = Ids(0);
    out.push_str(&totals(r));
    for n in &r.notifications {
        out.push_str(&notification(n, r.per_minute, &mut ids));
    }
    if r.notifications.is_empty() {
        out.push_str("<p>Nothing sent yet.</p>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// The totals as cards, and per channel as a table.
fn totals(r: &Report) -> String {
    let mut out =
        String::from("<section id=\"totals\" data-key=\"\">\n<h2>All notifications</h2>\n<div class=\"cards\">\n");
    for (name, v) in r.totals.steps() {
        let _ = writeln!(out, "<div class=\"card\">{name}<b data-metric=\"{name}\">{}</b></div>", thousands(v));
    }
    out.push_str("</div>\n<h3>Per channel</h3>\n<div class=\"scroll\"><table>\n<thead><tr><th>channel</th><th class=\"n\">notifications</th>");
    for (name, _) in r.totals.steps() {
        let _ = write!(out, "<th class=\"n\">{name}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for c in &r.channels {
        let _ = write!(
            out,
            "<tr data-channel=\"{}\"><td>{}</td><td class=\"n\">{}</td>",
            esc(&c.channel),
            esc(&c.channel),
            c.notifications
        );
        for (name, v) in c.funnel.steps() {
            let _ = write!(out, "<td class=\"n\" data-metric=\"{name}\">{}</td>", thousands(v));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n</section>\n");
    out
}

fn notification(n: &NotificationReport, per_minute: u32, ids: &mut Ids) -> String {
    let mut out = format!("<section class=\"notification\" data-key=\"{}\">\n", esc(&n.key));
    let _ = writeln!(out, "<h2>{}</h2>", esc(&n.key));
    let state = if n.terminal { "final" } else { "waiting for statuses" };
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} ({}) · {} request(s){} · <span class=\"tag\">{state}</span></p>",
        esc(&n.channel),
        esc(&n.api),
        n.requests,
        n.source.as_deref().map(|s| format!(" · declared in <code>{}</code>", esc(s))).unwrap_or_default()
    );
    out.push_str(&funnel(n, ids));
    out.push_str(&failures(n));
    out.push_str(&requests_chart(&n.requests_per_minute, per_minute, ids));
    out.push_str(&outcomes_chart(&n.deliveries_by_minute, ids));
    out.push_str("</section>\n");
    out
}

/// A chart's opening: an accessible SVG with a title and a description.
fn svg_open(ids: &mut Ids, (w, h): (usize, usize), title: &str, desc: &str) -> String {
    let (t, d) = (ids.next(), ids.next());
    format!(
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"{t} {d}\" xmlns=\"http://www.w3.org/2000/svg\">\n<title id=\"{t}\">{}</title>\n<desc id=\"{d}\">{}</desc>\n",
        esc(title),
        esc(desc)
    )
}

/// The funnel: a horizontal bar per step, and the same numbers as a table.
fn funnel(n: &NotificationReport, ids: &mut Ids) -> String {
    let steps = n.funnel.steps();
    let max = steps.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let desc: Vec<String> = steps.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let mut out = String::from("<figure>\n");
    out.push_str(&svg_open(ids, (600, 24 * steps.len() + 8), &format!("Funnel of {}", n.key), &desc.join(", ")));
    for (i, (name, v)) in steps.iter().enumerate() {
        let class = match *name {
            "delivered" => "ok",
            "failed" => "bad",
            "pending" => "wait",
            "unknown" | "not sent" => "unk",
            _ => "bar",
        };
        let width = (*v as f64 / max as f64 * 420.0).round();
        let y = 4 + i * 24;
        let _ = writeln!(
            out,
            "<g><title>{name}: {v}</title><text x=\"0\" y=\"{}\">{name}</text><rect class=\"{class}\" data-step=\"{name}\" data-value=\"{v}\" x=\"90\" y=\"{y}\" width=\"{width}\" height=\"18\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
            y + 13,
            96.0 + width,
            y + 13,
            thousands(*v)
        );
    }
    out.push_str("</svg>\n<figcaption>Funnel: planned → sent → accepted → delivered, failed, pending; unknown; not sent.</figcaption>\n</figure>\n");
    out.push_str("<div class=\"scroll\"><table class=\"funnel\">\n<thead><tr>");
    for (name, _) in steps {
        let _ = write!(out, "<th class=\"n\">{name}</th>");
    }
    out.push_str("</tr></thead>\n<tbody><tr>");
    for (name, v) in steps {
        let _ = write!(out, "<td class=\"n\" data-metric=\"{name}\">{}</td>", thousands(v));
    }
    out.push_str("</tr></tbody></table></div>\n");
    out
}

/// Failure reasons, grouped, with counts and examples.
fn failures(n: &NotificationReport) -> String {
    if n.failures.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h3>Failures by reason</h3>\n<div class=\"scroll\"><table class=\"failures\">\n<thead><tr><th>reason (Kore.ai's comment)</th><th class=\"n\">recipients</th><th>examples</th></tr></thead>\n<tbody>\n",
    );
    for g in &n.failures {
        let examples: Vec<String> = g.examples.iter().map(|e| format!("<code>{}</code>", esc(e))).collect();
        let permanent = if g.permanent { " <span class=\"tag\">permanent: unreachable</span>" } else { "" };
        let _ = writeln!(
            out,
            "<tr><td>{}{permanent}</td><td class=\"n\" data-metric=\"failure\">{}</td><td>{}</td></tr>",
            if g.reason.is_empty() { "(no comment)".to_string() } else { esc(&g.reason) },
            thousands(g.count),
            examples.join(", ")
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// Send requests per minute as bars, with the configured limit as a line (or said to be off the
/// scale), and the same numbers as a table.
fn requests_chart(series: &[Minute], per_minute: u32, ids: &mut Ids) -> String {
    if series.is_empty() {
        return String::new();
    }
    let peak = series.iter().map(|m| m.requests).max().unwrap_or(0).max(1);
    let limit = per_minute as usize;
    let scale = if limit <= peak * 2 { peak.max(limit) } else { peak } as f64 * 1.15;
    let (w, h, top, base) = (bars_width(series.len()), 180usize, 10.0, 150.0);
    let desc = format!("peak {peak} request(s) in a minute, limit {limit} per minute, over {} minute(s)", series.len());
    let mut out = String::from("<h3>Send requests per minute</h3>\n<figure>\n");
    out.push_str(&svg_open(ids, (w, h), "Send requests per minute against the limit", &desc));
    let slot = (w as f64 - 40.0) / series.len() as f64;
    for (i, m) in series.iter().enumerate() {
        let bh = (m.requests as f64 / scale * (base - top)).round();
        let x = 40.0 + i as f64 * slot;
        let _ = writeln!(
            out,
            "<rect class=\"bar\" data-value=\"{}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh}\"><title>{} · {} request(s)</title></rect>",
            m.requests,
            base - bh,
            bar(slot),
            esc(&m.minute),
            m.requests
        );
    }
    if (limit as f64) <= scale {
        let y = base - (limit as f64 / scale * (base - top));
        let _ = writeln!(
            out,
            "<line class=\"limit\" x1=\"40\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"42\" y=\"{:.1}\">limit {limit}/min</text>",
            y - 3.0
        );
    } else {
        let _ = writeln!(out, "<text x=\"42\" y=\"12\">limit {limit}/min (above the scale)</text>");
    }
    axis(&mut out, series.first().map(|m| m.minute.as_str()), series.last().map(|m| m.minute.as_str()), peak, w);
    out.push_str("</svg>\n<figcaption>Bars: send requests that left in each minute (UTC); line: the configured limit.</figcaption>\n</figure>\n");
    out.push_str("<div class=\"scroll\"><table class=\"rpm\">\n<thead><tr><th>minute (UTC)</th><th class=\"n\">requests</th><th class=\"n\">limit</th></tr></thead>\n<tbody>\n");
    for m in series {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\" data-metric=\"requests\">{}</td><td class=\"n\">{limit}</td></tr>",
            esc(&m.minute),
            m.requests
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// Outcomes by the minute their request left, as stacked bars, and the same numbers as a table.
fn outcomes_chart(series: &[Outcomes], ids: &mut Ids) -> String {
    if series.is_empty() {
        return String::new();
    }
    let total = |o: &Outcomes| o.delivered + o.failed + o.pending + o.unknown;
    let peak = series.iter().map(total).max().unwrap_or(0).max(1);
    let (w, h, top, base) = (bars_width(series.len()), 180usize, 10.0, 150.0);
    let sums =
        series.iter().fold([0; 4], |a, o| [a[0] + o.delivered, a[1] + o.failed, a[2] + o.pending, a[3] + o.unknown]);
    let desc = format!(
        "delivered {}, failed {}, pending {}, unknown {}, by the minute their request left",
        sums[0], sums[1], sums[2], sums[3]
    );
    let mut out = String::from("<h3>Deliveries over time</h3>\n<figure>\n");
    out.push_str(&svg_open(ids, (w, h), "Outcomes by the minute their request left", &desc));
    let slot = (w as f64 - 40.0) / series.len() as f64;
    for (i, o) in series.iter().enumerate() {
        let x = 40.0 + i as f64 * slot;
        let mut y = base;
        for (name, class, v) in [
            ("delivered", "ok", o.delivered),
            ("failed", "bad", o.failed),
            ("pending", "wait", o.pending),
            ("unknown", "unk", o.unknown),
        ] {
            let bh = v as f64 / peak as f64 / 1.15 * (base - top);
            y -= bh;
            let _ = writeln!(
                out,
                "<rect class=\"{class}\" data-step=\"{name}\" data-value=\"{v}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>{} · {name} {v}</title></rect>",
                bar(slot),
                esc(&o.minute)
            );
        }
    }
    axis(&mut out, series.first().map(|m| m.minute.as_str()), series.last().map(|m| m.minute.as_str()), peak, w);
    out.push_str("</svg>\n<figcaption>Green delivered, red failed, amber pending, grey unknown, stacked by the minute their request left (UTC): the state keeps when requests left, not when each message arrived.</figcaption>\n</figure>\n");
    out.push_str("<div class=\"scroll\"><table class=\"outcomes\">\n<thead><tr><th>minute (UTC)</th><th class=\"n\">delivered</th><th class=\"n\">failed</th><th class=\"n\">pending</th><th class=\"n\">unknown</th></tr></thead>\n<tbody>\n");
    for o in series {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\" data-metric=\"delivered\">{}</td><td class=\"n\" data-metric=\"failed\">{}</td><td class=\"n\" data-metric=\"pending\">{}</td><td class=\"n\" data-metric=\"unknown\">{}</td></tr>",
            esc(&o.minute),
            o.delivered,
            o.failed,
            o.pending,
            o.unknown
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// The time charts' width: the funnel's, so text reads the same size in both.
fn bars_width(_bars: usize) -> usize {
    600
}

/// A bar's width in a slot: most of it, at most 40.
fn bar(slot: f64) -> f64 {
    (slot * 0.8).clamp(1.0, 40.0)
}

/// The time axis (first and last minute) and the peak.
fn axis(out: &mut String, first: Option<&str>, last: Option<&str>, peak: usize, w: usize) {
    let _ = writeln!(out, "<line x1=\"40\" x2=\"{w}\" y1=\"150\" y2=\"150\" stroke=\"#8c959f\"/>");
    let _ = writeln!(out, "<text x=\"0\" y=\"20\">{peak}</text><text x=\"0\" y=\"150\">0</text>");
    if let Some(f) = first {
        let _ = writeln!(out, "<text x=\"40\" y=\"168\">{}</text>", esc(f));
    }
    if let Some(l) = last.filter(|l| Some(*l) != first) {
        let _ = writeln!(out, "<text x=\"{w}\" y=\"168\" text-anchor=\"end\">{}</text>", esc(l));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report whose every text field is hostile: markup, an attribute breakout, control and
    /// invisible characters.
    fn hostile(text: &str) -> Report {
        let funnel = Funnel { planned: 2, sent: 2, accepted: 2, delivered: 1, failed: 1, ..Funnel::default() };
        let n = NotificationReport {
            key: text.into(),
            channel: text.into(),
            api: text.into(),
            source: Some(text.into()),
            terminal: false,
            requests: 1,
            last_sent_at: None,
            funnel,
            failures: vec![FailureGroup {
                reason: text.into(),
                count: 1,
                permanent: true,
                examples: vec![text.into()],
            }],
            requests_per_minute: vec![Minute { minute: text.into(), requests: 1 }],
            deliveries_by_minute: vec![Outcomes {
                minute: text.into(),
                delivered: 1,
                failed: 1,
                ..Outcomes::default()
            }],
            columns: vec![],
            recipients: vec![],
        };
        Report {
            format_version: REPORT_FORMAT,
            bot: text.into(),
            target: Some(text.into()),
            generated_at: text.into(),
            per_minute: 600,
            per_hour: 18_000,
            masked: false,
            terminal: false,
            totals: funnel,
            channels: vec![ChannelTotal { channel: text.into(), notifications: 1, funnel }],
            notifications: vec![n],
        }
    }

    #[test]
    fn hostile_text_is_only_text() {
        for text in [
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "' onmouseover='x",
            "a\u{1b}[2Jb\u{202e}c\u{200b}d\r\ne",
            "</title></svg><style>*{display:none}</style>",
        ] {
            let page = html(&hostile(text));
            for raw in ["<script", "<img", "<style>*", "onerror=alert(1)>", "' onmouseover", "</title></svg>"] {
                assert!(!page.contains(raw), "{text:?} left {raw:?} raw");
            }
            assert!(!page.chars().any(|c| c != '\n' && crate::safe::is_unsafe(c) && c != '\u{2060}'), "{text:?}");
            assert_eq!(page.matches("<style>").count(), 1);
            assert_eq!(page.matches("<svg ").count(), page.matches("</svg>").count());
        }
    }
}
