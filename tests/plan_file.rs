//! A saved plan file is bound to what it shows: `show` and `apply FILE` refuse any field changed
//! (the digest, or for a recomputed digest, apply's own plan at the instant the file was made), and
//! `show` never prints a control or invisible character from any field raw.

use serde_json::Value;

use crate::harness::*;

fn slack(key: &str, text: &str, ids: &[&str]) -> String {
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: '{text}'}}\nidentities: [{}]\n", ids.join(", "))
}

const ORDERS: &str = "key: orders\nchannel: ivr\ndescription: Order updates\ncontent: {type: text, value: 'Order {orderId} for {name}'}\nidentities:\n  - {email: ann@y.com, parameters: {orderId: A-100, name: Ann}}\n  - {email: bob@y.com, customMessage: 'Hi {name}', parameters: {orderId: B-200, name: Bob}}\n";

/// A repository whose saved plan (`plan.json`, with `--compare-to base`) has every kind of field:
/// a resend with its previous content, an orphan, parameters with previews and before → after
/// changes, a description, a variable, a send window.
fn fixture(emu: &Emulator) -> Test {
    let cfg = format!("{}variables: [RELEASE]\n", config(&emu.url));
    let t = Test::new()
        .file("kore-notify.yaml", &cfg)
        .env("RELEASE", "2026.11")
        .manifest("a.yaml", &slack("changed", "old text", &["a@y.com", "b@y.com"]))
        .manifest("g.yaml", &slack("gone", "bye", &["a@y.com"]))
        .manifest("o.yaml", ORDERS)
        .file("base/kore-notify.yaml", &cfg)
        .file("base/notifications/o.yaml", ORDERS);
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    std::fs::remove_file(t.path().join("notifications/g.yaml")).expect("rm");
    let t = t
        .manifest("a.yaml", &slack("changed", "new text", &["a@y.com", "b@y.com"]))
        .manifest("o.yaml", &ORDERS.replace("A-100", "A-101"))
        .manifest(
            "n.yaml",
            &format!(
                "{}description: Release note\nnotBefore: 2026-01-01T00:00:00Z\n",
                slack("news", "Release ${RELEASE}", &["c@y.com"])
            ),
        )
        .manifest("s.yaml", &format!("{}notBefore: 2099-01-01T00:00:00Z\n", slack("later", "soon", &["d@y.com"])));
    let (_, t) = t.args(["plan", "--out", "plan.json", "--compare-to", "base"]).status(0).run();
    t
}

/// JSON pointers to every scalar in `v`.
fn leaves(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(x, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, &format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at.to_string()),
    }
}

/// Writes `v` as `plan --out` would (through the plan type), resealed or with its digest as it
/// is; a value the plan type cannot hold is written as plain JSON. Whether it was a plan.
fn write(t: &Test, v: &Value, seal: bool) -> bool {
    let path = t.path().join("edited.json");
    match serde_json::from_value::<kore_notify::plan::PlanSet>(v.clone()) {
        Ok(mut p) => {
            if seal {
                p.seal();
            }
            std::fs::write(path, serde_json::to_vec_pretty(&p).expect("json")).expect("write");
            true
        }
        Err(_) => {
            std::fs::write(path, serde_json::to_vec_pretty(v).expect("json")).expect("write");
            false
        }
    }
}

fn original(t: &Test) -> Value {
    serde_json::from_slice(&std::fs::read(t.path().join("plan.json")).expect("plan")).expect("json")
}

#[test]
fn every_field_of_a_plan_file_is_bound() {
    let emu = Emulator::start(&[]);
    let mut t = fixture(&emu);
    let plan = original(&t);
    let mut paths = Vec::new();
    leaves(&plan, "", &mut paths);
    assert!(paths.len() > 60, "{paths:?}");
    for want in
        ["/digest", "/plannedAt", "/content/value", "/changes/0/after", "/preview/0/message", "/variables/RELEASE"]
    {
        assert!(paths.iter().any(|p| p.ends_with(want)), "the fixture has no {want}: {paths:?}");
    }
    for p in &paths {
        let mut v = plan.clone();
        let leaf = v.pointer_mut(p).expect("leaf");
        *leaf = match leaf.take() {
            Value::String(s) => Value::String(format!("{s}x")),
            Value::Number(n) => Value::from(n.as_u64().map_or(1, |n| n + 1)),
            Value::Bool(b) => Value::Bool(!b),
            Value::Null => Value::from(1),
            other => other,
        };
        // Changed and written back with its digest: both commands refuse it.
        write(&t, &v, false);
        let (_, t2) = t.args(["show", "edited.json"]).status(1).stderr_has("plan file edited.json").run();
        let (_, t2) = t2.args(["apply", "edited.json"]).status(1).stderr_has("plan file edited.json").run();
        t = t2;
        // With the digest recomputed (anyone can), apply still refuses: the file is not what the
        // manifests and state give. `before` of a change is the base version's, which apply cannot
        // see: it is bound by the digest only.
        if p != "/digest" && !p.ends_with("/before") && write(&t, &v, true) {
            let (o, t2) = t.args(["apply", "edited.json"]).run();
            assert!(o.status == 1 && o.stderr.contains("plan file edited.json"), "{p} was applied: {}", o.stderr);
            t = t2;
        }
    }
    let total = || emu.deliveries().values().sum::<u64>();
    assert_eq!(total(), 5, "a refused plan file sent something: {:?}", emu.deliveries());
    // The file as written is shown and applied.
    let (_, t) = t.args(["show", "plan.json"]).status(0).run();
    let (o, _) = t.args(["apply", "plan.json"]).status(0).run();
    assert!(o.stdout.contains("Apply:"), "{}", o.stdout);
    assert_eq!(total(), 9, "{:?}", emu.deliveries());
}

/// Anything a terminal could act on: controls (C0 but newline and tab, DEL, C1), bidirectional
/// overrides and isolates, zero-width characters.
fn raw_unsafe(s: &str) -> Option<char> {
    s.chars().find(|c| {
        (c.is_control() && !matches!(c, '\n' | '\t'))
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    })
}

#[test]
fn show_prints_no_field_raw() {
    let emu = Emulator::start(&[]);
    let mut t = fixture(&emu);
    let plan = original(&t);
    let mut paths = Vec::new();
    leaves(&plan, "", &mut paths);
    let mut shown = 0;
    for p in paths.iter().filter(|p| plan.pointer(p).is_some_and(Value::is_string)) {
        let mut v = plan.clone();
        let s = v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
        *v.pointer_mut(p).expect("leaf") =
            Value::String(format!("{s}\u{1b}]0;x\u{7}\u{1b}[2J\r\u{9b}1m\u{202e}\u{200b}\u{7f}"));
        let plan_ok = write(&t, &v, true);
        for args in [
            vec!["show", "edited.json", "--color", "never", "--verbose"],
            vec!["show", "edited.json", "--format", "markdown"],
            vec!["show", "edited.json", "--format", "json"],
        ] {
            let (o, t2) = t.args(args.clone()).status(i32::from(!plan_ok)).run();
            t = t2;
            for (name, out) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
                assert!(raw_unsafe(out).is_none(), "{p} {args:?}: {:?} raw in {name}:\n{out}", raw_unsafe(out));
            }
        }
        shown += usize::from(plan_ok);
    }
    assert!(shown > 20, "only {shown} fields could be shown");
}

/// A plan whose text depends on the clock (an orphan's retirement date, with a `retention`) is
/// still applied later, as long as what it sends is the same; a send window that opened since is
/// refused.
#[test]
fn a_plan_file_is_checked_at_the_instant_it_was_made() {
    let emu = Emulator::start(&[]);
    let cfg = format!("{}retention: 30d\n", config(&emu.url));
    let t = Test::new()
        .file("kore-notify.yaml", &cfg)
        .manifest("g.yaml", &slack("gone", "bye", &["a@y.com"]))
        .manifest("a.yaml", &slack("now", "hi", &["a@y.com"]));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    std::fs::remove_file(t.path().join("notifications/g.yaml")).expect("rm");
    let t = t
        .manifest("b.yaml", &slack("more", "hello", &["b@y.com"]))
        .manifest("w.yaml", &format!("{}notBefore: 2026-11-24T10:00:00Z\n", slack("window", "w", &["c@y.com"])));
    let (_, t) = t.args(["plan", "--out", "plan.json"]).status(0).run();
    let (_, t) = t
        .env("KORE_NOTIFY_NOW", "2026-11-24T11:00:00Z")
        .args(["apply", "plan.json"])
        .status(1)
        .stderr_has("a notBefore or notAfter passed")
        .run();
    // Half an hour later the plan reads differently (the orphan retires later), sends the same.
    let t = t.env("KORE_NOTIFY_NOW", "2026-11-24T09:30:00Z");
    let (later, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let later: Value = serde_json::from_str(&later.stdout).expect("json");
    assert_ne!(
        later["targets"][0]["notifications"],
        original(&t)["targets"][0]["notifications"],
        "the plan does not depend on the clock"
    );
    let (o, _) = t.args(["apply", "plan.json"]).status(0).run();
    assert!(o.stdout.contains("Apply: 1 request(s) accepted"), "{}", o.stdout);
    assert_eq!(emu.deliveries().len(), 2);
}
