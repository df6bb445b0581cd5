//! The delivery report, end to end: the real binary against the real emulator (failures injected
//! by identity: `fail`/`invalid` ones fail with "Identity is not associated with the channel"),
//! and the HTML rendered by a real headless Chromium (`scripts/test.sh` installs Debian's
//! package when missing and exports KORE_NOTIFY_TEST_CHROMIUM).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

/// Chromium, from scripts/test.sh or the PATH; the test fails (never skips) without it.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("KORE_NOTIFY_TEST_CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join("chromium")).find(|p| p.is_file()))
        .unwrap_or_default();
    found.unwrap_or_else(|| {
        panic!("Chromium is needed to render the HTML report: run the tests with scripts/test.sh (it installs Debian's chromium package)")
    })
}

/// Chromium, headless, on a page: `args` (--dump-dom, --screenshot=…), its standard output.
fn browse(page: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().expect("profile");
    let mut child = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--window-size=412,2000", "--virtual-time-budget=2000"])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    for _ in 0..1200 {
        if child.try_wait().expect("wait").is_some() {
            return reader.join().expect("dom");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("chromium did not finish within 120 s");
}

/// The number of distinct colours and the share of non-white pixels of a PNG screenshot.
fn looks(png_file: &Path) -> (usize, f64) {
    let decoder = png::Decoder::new(std::fs::File::open(png_file).expect("screenshot"));
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("frame");
    let step = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(step).collect();
    let colours: std::collections::HashSet<&[u8]> = pixels.iter().copied().collect();
    let ink = pixels.iter().filter(|p| p.iter().take(3).any(|c| *c < 240)).count();
    (colours.len(), ink as f64 / pixels.len().max(1) as f64)
}

/// Every `data-metric="NAME">VALUE<` in `html`, in order.
fn metrics(html: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for part in html.split("data-metric=\"").skip(1) {
        let (name, rest) = part.split_once('"').expect("metric name");
        let value = rest.split_once('>').map_or("", |(_, v)| v.split('<').next().unwrap_or(""));
        out.push((name.to_string(), value.replace(',', "").parse().unwrap_or(usize::MAX)));
    }
    out
}

/// Every chart bar's `data-step="NAME" data-value="VALUE"` in `html`, in order.
fn bars(html: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for part in html.split("data-step=\"").skip(1) {
        let (name, rest) = part.split_once('"').expect("step");
        let value = rest.split("data-value=\"").nth(1).and_then(|v| v.split('"').next()).unwrap_or("");
        out.push((name.to_string(), value.parse().unwrap_or(usize::MAX)));
    }
    out
}

/// The part of the page for notification `key` (its section).
fn section<'h>(html: &'h str, key: &str) -> &'h str {
    let start = html.find(&format!("<section class=\"notification\" data-key=\"{key}\"")).expect(key);
    let rest = &html[start..];
    &rest[..rest.find("</section>").expect("section end")]
}

const STEPS: [&str; 8] = ["planned", "sent", "accepted", "delivered", "failed", "pending", "unknown", "notSent"];

/// A funnel from the JSON report, in the page's step order.
fn funnel(v: &serde_json::Value) -> Vec<usize> {
    STEPS.iter().map(|s| v[*s].as_u64().expect(s) as usize).collect()
}

/// A repository with failing identities on two channels, a CSV audience with columns, a scheduled
/// notification, and hostile text where a manifest may put it; applied and refreshed.
fn sent_repo(emu: &Emulator) -> Test {
    let csv = "email,team,firstName\nann@x.com,=HYPERLINK(\"http://evil\"),Ann\nbad.invalid@x.com,ops,Bea\ncy@x.com,-1+1,Cy\n";
    let t = Test::repo(&emu.url)
        .manifest(
            "a.yaml",
            "key: greet\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [ok1@x.com, fail1@x.com, ok2@x.com, \"<img src=x onerror=alert(1)>fail@x.com\"]\n",
        )
        .file("audience.csv", csv)
        .manifest(
            "b.yaml",
            "key: benefits\nchannel: ivr\ncontent: {type: template, value: \"Hi {firstName} of {team}\"}\nidentitiesFrom: ../audience.csv\n",
        )
        .manifest(
            "c.yaml",
            "key: later\nchannel: slack\ncontent: {type: text, value: later}\nidentities: [q@x.com]\nnotBefore: 2099-01-01T00:00:00Z\n",
        );
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    std::thread::sleep(Duration::from_millis(300));
    let (_, t) = t.args(["status", "--refresh"]).status(3).run();
    t
}

#[test]
fn the_html_report_renders_and_its_numbers_are_the_states_and_the_servers() {
    let emu = Emulator::start(&[]);
    let t = sent_repo(&emu);
    let (o, t) = t.args(["report", "--format", "json"]).status(0).run();
    let json: serde_json::Value = serde_json::from_str(&o.stdout).expect("json report");
    // The server's delivery log: every identity it processed, failed when it says `fail`/`invalid`.
    let log = emu.deliveries();
    let failing = |k: &String| k.contains("fail") || k.contains("invalid");
    assert!(log.values().all(|n| *n == 1), "{log:?}");
    let totals = &json["totals"];
    assert_eq!(totals["sent"], log.len(), "{json}");
    assert_eq!(totals["failed"], log.keys().filter(|k| failing(k)).count(), "{json}");
    assert_eq!(totals["delivered"], log.keys().filter(|k| !failing(k)).count(), "{json}");
    assert_eq!((totals["notSent"].as_u64(), totals["pending"].as_u64()), (Some(1), Some(0)), "{json}");
    assert_eq!(json["terminal"], true);

    let (_, t) = t.args(["report", "--out", "report.html"]).status(0).stderr_has("report written to").run();
    let page = t.path().join("report.html");
    let html = std::fs::read_to_string(&page).expect("html");
    for outside in ["<script", "<img", "<link", " src=\"", " href=", "url(", "@import"] {
        assert!(!html.contains(outside), "{outside}: no script, no outside asset");
    }
    assert!(html.contains("&lt;img src") && html.contains("@media print") && html.contains("name=\"viewport\""));
    let dom = browse(&page, &["--dump-dom".to_string()]);
    assert!(dom.contains("Delivery report") && !dom.contains("<img"), "{dom}");
    for n in json["notifications"].as_array().expect("notifications") {
        let key = n["key"].as_str().expect("key");
        let part = section(&dom, key);
        let table: Vec<usize> = metrics(part).into_iter().take(8).map(|(_, v)| v).collect();
        assert_eq!(table, funnel(&n["funnel"]), "{key}: the page's table is the state's funnel");
        let chart: Vec<usize> = bars(part).into_iter().take(8).map(|(_, v)| v).collect();
        assert_eq!(chart, table, "{key}: the funnel chart agrees with its table");
        // Each minute's stacked bars agree with the outcomes table, and add up to those sent.
        let by_minute: BTreeMap<String, usize> =
            bars(part).into_iter().skip(8).fold(BTreeMap::new(), |mut m, (k, v)| {
                *m.entry(k).or_default() += v;
                m
            });
        for (step, name) in [("delivered", "delivered"), ("failed", "failed"), ("pending", "pending")] {
            assert_eq!(
                by_minute.get(step).copied().unwrap_or(0),
                n["funnel"][name].as_u64().unwrap_or(0) as usize,
                "{key}"
            );
        }
    }
    let shot = t.path().join("shot.png");
    browse(&page, &[format!("--screenshot={}", shot.display())]);
    let (colours, ink) = looks(&shot);
    assert!(colours >= 8 && ink > 0.02, "the screenshot looks blank: {colours} colours, {ink:.3} ink");
}

#[test]
fn the_csv_joins_the_audience_columns_masks_on_request_and_runs_no_formula() {
    let emu = Emulator::start(&[]);
    let t = sent_repo(&emu);
    let (o, t) = t.args(["report", "--format", "csv", "--key", "benefits"]).status(0).run();
    let mut lines = o.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("notification,email,team,firstName,status,deliveryStatus,comment,unreachable,requestId,sentAt"),
        "the CSV audience's columns in its order"
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes())
                .records()
                .next()
                .expect("row")
                .expect("csv")
                .iter()
                .map(String::from)
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 3, "one row per recipient: {}", o.stdout);
    assert_eq!(rows[0][..5], ["benefits", "ann@x.com", "'=HYPERLINK(\"http://evil\")", "Ann", "delivered"]);
    assert_eq!(
        rows[1][..7],
        [
            "benefits",
            "bad.invalid@x.com",
            "ops",
            "Bea",
            "failed",
            "FAILURE",
            "Identity is not associated with the channel"
        ]
    );
    assert_eq!(rows[1][7], "yes", "flagged unreachable");
    assert_eq!(rows[2][2], "'-1+1");
    assert!(rows.iter().all(|r| r[8].starts_with("ds-") && r[9].starts_with("20")), "{rows:?}");
    assert!(!o.stdout.lines().any(|l| l.split(',').any(|c| c.starts_with(['=', '+', '-', '@']))), "{}", o.stdout);
    let (o, _) = t.args(["report", "--format", "csv", "--mask"]).status(0).run();
    for clear in ["ann@x.com", "bad.invalid", "Ann", "Bea", "ok1@x.com", "HYPERLINK"] {
        assert!(!o.stdout.contains(clear), "{clear} in a masked CSV:\n{}", o.stdout);
    }
    assert!(o.stdout.contains("a***@x***.com ~"), "{}", o.stdout);
    // Every notification, the scheduled one as not sent.
    assert!(o.stdout.lines().any(|l| l.starts_with("later,") && l.contains(",not sent,")), "{}", o.stdout);
}

#[test]
fn the_markdown_report_says_when_every_status_is_final() {
    let emu = Emulator::start(&["--job-ms", "1500"]);
    let t = Test::repo(&emu.url).manifest(
        "a.yaml",
        "key: greet\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [ok1@x.com, fail1@x.com]\n",
    );
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let (o, t) = t.args(["report", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.starts_with("<!-- kore-notify-report -->\n### kore-notify delivery report"), "{}", o.stdout);
    assert!(o.stdout.contains("| `greet` | msteams | 2 | 2 | 2 | 0 | 0 | 2 | 0 | 0 |"), "{}", o.stdout);
    std::thread::sleep(Duration::from_millis(1700));
    let (_, t) = t.args(["status", "--refresh"]).status(3).run();
    let (o, t) = t.args(["report", "--format", "markdown", "--mask"]).status(0).run();
    assert!(o.stdout.starts_with("<!-- kore-notify-report -->\n<!-- kore-notify-report: final -->\n"), "{}", o.stdout);
    assert!(o.stdout.contains("| `greet` | msteams | 2 | 2 | 2 | 1 | 1 | 0 | 0 | 0 |"), "{}", o.stdout);
    assert!(
        o.stdout.contains("Identity is not associated with the channel") && !o.stdout.contains("fail1@"),
        "{}",
        o.stdout
    );
    t.args(["report", "--key", "nope"]).status(1).stderr_has("no notification `nope`").run();
}

#[test]
fn unreachable_recipients_are_counted_and_left_out_on_request() {
    let emu = Emulator::start(&[]);
    let first = "key: first\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [ok@x.com, fail@x.com]\n";
    let t = Test::repo(&emu.url).manifest("a.yaml", first);
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    std::thread::sleep(Duration::from_millis(300));
    let (_, t) = t.args(["status", "--refresh"]).status(3).run();
    let second = |extra: &str| {
        format!(
            "key: second\nchannel: msteams\ncontent: {{type: text, value: again}}\nidentities: [ok@x.com, fail@x.com]\n{extra}"
        )
    };
    // Counted, and still sent by default.
    let t = t.manifest("b.yaml", &second(""));
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let plan: serde_json::Value = serde_json::from_str(&o.stdout).expect("plan");
    let p = &plan["targets"][0]["notifications"][1];
    assert_eq!((p["key"].as_str(), p["recipients"]["unreachable"].as_u64()), (Some("second"), Some(1)), "{p}");
    assert_eq!(p["sends"].as_array().map(Vec::len), Some(2));
    assert!(p["sends"].as_array().expect("sends").iter().any(|s| s["id"] == "fail@x.com" && s["unreachable"] == true));
    let (_, t) = t
        .args(["plan"])
        .status(0)
        .stdout_has("1 recipient(s) unreachable")
        .stdout_has("(unreachable: last delivery failed")
        .run();
    // Left out by the manifest, by the config's default, and sent when the manifest says false.
    for (manifest, config, left_out) in [
        ("skipUnreachable: true\n", "", true),
        ("", "skipUnreachable: true\n", true),
        ("skipUnreachable: false\n", "skipUnreachable: true\n", false),
    ] {
        let t = Test::repo(&emu.url)
            .file("kore-notify.yaml", &format!("{}{config}", config_for(&emu)))
            .file(".kore-notify/state.json", &std::fs::read_to_string(t.state_path()).expect("state"))
            .manifest("a.yaml", first)
            .manifest("b.yaml", &second(manifest));
        let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
        let plan: serde_json::Value = serde_json::from_str(&o.stdout).expect("plan");
        let p = &plan["targets"][0]["notifications"][1];
        let sends: Vec<&str> = p["sends"].as_array().expect("sends").iter().filter_map(|s| s["id"].as_str()).collect();
        if left_out {
            assert_eq!((sends, p["recipients"]["unreachableSkipped"].as_u64()), (vec!["ok@x.com"], Some(1)), "{p}");
            assert_eq!(p["skippedUnreachable"][0], "fail@x.com");
            t.args(["plan", "--format", "markdown"]).status(0).stdout_has("**Left out as unreachable**").run();
        } else {
            assert_eq!(sends, ["ok@x.com", "fail@x.com"], "{manifest}{config}");
        }
    }
    // Applied with the manifest's flag: the server never sees the unreachable recipient again.
    let t = t.manifest("b.yaml", &second("skipUnreachable: true\n"));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().get("msteams:fail@x.com"), Some(&1), "{:?}", emu.deliveries());
    assert_eq!(emu.deliveries().get("msteams:ok@x.com"), Some(&2));
    // A bad value is an error naming the field.
    t.manifest("b.yaml", &second("skipUnreachable: yes please\n"))
        .args(["validate"])
        .status(1)
        .stderr_has("skipUnreachable")
        .run();
}

fn config_for(emu: &Emulator) -> String {
    config(&emu.url)
}

/// Two targets, each its own emulator and state: `report` needs one, and covers that target's
/// state and notifications only; `skipUnreachable` at the top is every target's default, and a
/// target's own setting wins over it (each judging from its own state).
#[test]
fn each_target_reports_its_own_state_and_skips_unreachable_by_its_own_default() {
    let (st, pr) = (Emulator::start(&[]), Emulator::start(&[]));
    let target = |name: &str, emu: &Emulator, extra: &str| {
        format!(
            "  {name}:\n    host: {}\n    botId: st-{name}\n    clientId: ${{KORE_CLIENT_ID}}\n    clientSecret: ${{KORE_CLIENT_SECRET}}\n{extra}",
            emu.url
        )
    };
    let config = format!(
        "skipUnreachable: true\ntargets:\n{}{}manifests: [notifications]\n",
        target("staging", &st, ""),
        target("production", &pr, "    skipUnreachable: false\n")
    );
    let first = "key: first\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [ok@x.com, fail@x.com]\n";
    let probe = "key: probe\nchannel: msteams\ncontent: {type: text, value: probe}\nidentities: [ok@x.com]\ntargets: [staging]\n";
    let t = Test::new().file("kore-notify.yaml", &config).manifest("a.yaml", first).manifest("p.yaml", probe);
    let (_, t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    let (_, t) = t.args(["apply", "--target", "production", "--auto-approve"]).status(0).run();
    std::thread::sleep(Duration::from_millis(300));
    let (_, t) = t.args(["status", "--refresh", "--target", "staging"]).status(3).run();
    let (_, t) = t.args(["status", "--refresh", "--target", "production"]).status(3).run();

    let (_, t) = t.args(["report"]).status(1).stderr_has("choose one with --target").run();
    let report = |t: Test, name: &str| {
        let (o, t) = t.args(["report", "--format", "json", "--target", name]).status(0).run();
        (serde_json::from_str::<serde_json::Value>(&o.stdout).expect("report"), t)
    };
    let (staging, t) = report(t, "staging");
    let (production, t) = report(t, "production");
    let keys = |r: &serde_json::Value| -> Vec<String> {
        r["notifications"]
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(|n| n["key"].as_str().map(String::from))
            .collect()
    };
    assert_eq!((&staging["target"], &staging["bot"]), (&"staging".into(), &"st-staging".into()), "{staging}");
    assert_eq!((&production["target"], &production["bot"]), (&"production".into(), &"st-production".into()));
    assert_eq!(keys(&staging), ["first", "probe"]);
    assert_eq!(keys(&production), ["first"], "production's report shows only what was planned for it");
    // Each report's numbers are its own emulator's.
    for (r, emu) in [(&staging, &st), (&production, &pr)] {
        let log = emu.deliveries();
        assert_eq!(r["totals"]["sent"].as_u64(), Some(log.values().sum::<u64>()), "{r} {log:?}");
        assert_eq!(r["totals"]["failed"], 1, "{r}");
    }
    let (o, t) = t.args(["report", "--format", "markdown", "--target", "production"]).status(0).run();
    assert!(o.stdout.starts_with("<!-- kore-notify-report target=production -->\n"), "{}", o.stdout);
    assert!(o.stdout.contains("Target production · Bot st\\-production"), "{}", o.stdout);

    // A second notification: staging inherits `skipUnreachable: true`, production says false.
    let t = t.manifest("b.yaml", &first.replace("key: first", "key: second").replace("value: hi", "value: again"));
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let plan: serde_json::Value = serde_json::from_str(&o.stdout).expect("plan");
    for (i, name, sends) in [(0, "staging", vec!["ok@x.com"]), (1, "production", vec!["ok@x.com", "fail@x.com"])] {
        let p = &plan["targets"][i];
        assert_eq!(p["name"], name);
        let n = p["notifications"].as_array().expect("rows").iter().find(|n| n["key"] == "second").expect("second");
        let ids: Vec<&str> = n["sends"].as_array().expect("sends").iter().filter_map(|s| s["id"].as_str()).collect();
        assert_eq!(ids, sends, "{name}: {n}");
        assert_eq!(n["recipients"]["unreachable"], 1, "{name}: {n}");
    }
    let (_, t) = t.args(["apply", "--target", "staging", "--auto-approve"]).status(0).run();
    let (_, t) = t.args(["apply", "--target", "production", "--auto-approve"]).status(0).run();
    assert_eq!(st.deliveries().get("msteams:fail@x.com"), Some(&1), "staging skipped: {:?}", st.deliveries());
    assert_eq!(pr.deliveries().get("msteams:fail@x.com"), Some(&2), "production sent: {:?}", pr.deliveries());
    // A bad value names the target's field.
    t.file("kore-notify.yaml", &config.replace("skipUnreachable: false", "skipUnreachable: maybe"))
        .args(["validate"])
        .status(1)
        .stderr_has("targets.production.skipUnreachable")
        .run();
}
