//! Diagnostics that name the cause: broken YAML gets the hint of its cause (or none), control
//! characters that cannot be sent are refused where they were written, `{placeholders}` in a v1
//! message are a warning, and numbers are the YAML 1.2 core schema's only. Through the binary.

use crate::harness::*;

const HOST: &str = "https://kore.example.com";
const HEAD: &str = "key: k\nchannel: ivr\n";

/// The `error:` and `help:` lines of a failed validate, positions included.
fn validate_errors(manifest: &str) -> String {
    let (o, _) = Test::repo(HOST).manifest("n.yaml", manifest).args(["validate", "--color", "never"]).status(1).run();
    o.stderr
        .lines()
        .filter(|l| l.starts_with("error") || l.starts_with("help") || l.contains("-->"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every class of broken YAML, as validate reports it: the hint names the cause (a tab, an
/// indentation, a value starting with `{`) or there is none; following the `{…}` hint never
/// applies to a line that only follows a mapping.
#[test]
fn broken_yaml_gets_the_hint_of_its_cause() {
    let cases = [
        ("tab", "content:\n\ttype: text\n"),
        ("tab after spaces", "content:\n  type: text\n \tvalue: hi\n"),
        ("tab noticed a line early", "content:\n  type: text\n\tvalue: hi\n"),
        ("over-indented key", "content:\n  type: text\n   value: hi\n"),
        ("under-indented key", "content:\n  type: text\n value: hi\n"),
        (
            "over-indented list item after a flow mapping",
            "identities:\n  - email: a@x\n    parameters: {name: Ann}\n   - email: b@x\n",
        ),
        (
            "under-indented list item after a flow mapping",
            "identities:\n  - email: a@x\n    parameters: {name: Ann}\n - email: b@x\n",
        ),
        (
            "key nested under a flow mapping",
            "identities:\n  - email: a@x\n    parameters: {name: Ann}\n      name: Bo\n",
        ),
        ("text after a placeholder", "content:\n  type: text\n  value: {name}, your order is late\n"),
        ("placeholder inside a flow mapping", "content: {type: text, value: {name} hi}\n"),
        ("unclosed flow list", "identities: [a@x, b@x\n"),
    ];
    let mut report = String::new();
    for (name, body) in cases {
        report.push_str(&format!("## {name}\n{}\n\n", validate_errors(&format!("{HEAD}{body}"))));
    }
    insta::assert_snapshot!("broken_yaml_hints", report);
    // Following a `{…}` hint fixes the file.
    let fixed = format!(
        "{HEAD}content:\n  type: text\n  value: \"{{name}}, your order is late\"\nidentities:\n  - {{email: a@x, parameters: {{name: A}}}}\n"
    );
    Test::repo(HOST).manifest("n.yaml", &fixed).args(["validate"]).status(0).run();
}

/// Control characters in every place text that is sent comes from: a NUL (which cannot be sent
/// or stored) is an error where it was written, in validate and plan alike, never a database
/// error at apply; any other control character is a warning there.
#[test]
fn control_characters_are_reported_where_written() {
    type Case<'a> = (&'a str, Vec<(&'a str, &'a [u8])>, String, &'a str, String);
    let v2 = "key: k\nchannel: ivr\ncontent: {type: text, value: \"hi {name}\"}\n";
    let csv = format!("{v2}identitiesFrom: ../a.csv\n");
    let nul = |m: &str| format!("the control character {m} cannot be sent");
    let other = |m: &str| format!("the control character {m} is sent as it is");
    let cases: Vec<Case> = vec![
        ("NUL escaped in the message", vec![], "key: k\nchannel: slack\ncontent: {type: text, value: \"a\\0b\"}\nidentities: [a]\n".into(), "notifications/n.yaml:3:30", nul("U+0000 (NUL) at character 2 of the value")),
        ("NUL in a parameter", vec![], format!("{v2}identities:\n  - {{email: a@x, parameters: {{name: \"A\\x00\"}}}}\n"), "notifications/n.yaml:5:37", nul("U+0000 (NUL) at character 2 of the value")),
        ("NUL in a customMessage", vec![], format!("{v2}identities:\n  - {{email: a@x, customMessage: \"x\\0\", parameters: {{name: A}}}}\n"), "notifications/n.yaml:5:33", nul("U+0000 (NUL) at character 2 of the value")),
        ("NUL in a WhatsApp template", vec![], "key: k\nchannel: whatsapp\ncontent:\n  type: template\n  value: {name: t, language: {code: en}, text: \"a\\0\"}\nidentities: [\"+4915100000000\"]\n".into(), "notifications/n.yaml:5:10", nul("U+0000 (NUL) at character 2 of the value")),
        ("ESC in a multi-line message", vec![], "key: k\nchannel: slack\ncontent:\n  type: text\n  value: \"one\\ntwo \\e[31m\"\nidentities: [a]\n".into(), "notifications/n.yaml:5:10", other("U+001B (ESC) at line 2, character 5 of the value")),
        ("BEL in a valueFile", vec![("m.txt", b"line one\nline \x07two\n")], "key: k\nchannel: slack\ncontent: {type: text, valueFile: ../m.txt}\nidentities: [a]\n".into(), "m.txt:2:6", other("U+0007 (BEL) at line 2, character 6 of the value")),
        ("C1 control in a parameter", vec![], format!("{v2}identities:\n  - {{email: a@x, parameters: {{name: \"A\\x85\"}}}}\n"), "notifications/n.yaml:5:37", other("U+0085 at character 2 of the value")),
        ("DEL in a customMessage", vec![], format!("{v2}identities:\n  - {{email: a@x, customMessage: \"hi\\x7f\", parameters: {{name: A}}}}\n"), "notifications/n.yaml:5:33", other("U+007F (DEL) at character 3 of the value")),
        ("vertical tab in a CSV cell", vec![("a.csv", b"email,name\na@x,A\x0bB\n")], csv.clone(), "a.csv:2:2", other("U+000B at character 2 of the value")),
        ("ESC in a CSV customMessage", vec![("a.csv", b"email,name,customMessage\na@x,A,\"hi \x1b[2J\"\n")], csv, "a.csv:2:3", other("U+001B (ESC) at character 4 of the value")),
    ];
    for (name, files, manifest, place, message) in cases {
        let mut t = Test::repo(HOST).manifest("n.yaml", &manifest);
        for (rel, bytes) in files {
            t = t.bytes(rel, bytes);
        }
        let refused = message.ends_with("cannot be sent");
        let status = i32::from(refused);
        let (o, t) = t.args(["validate", "--color", "never"]).status(status).stderr_has(&message).run();
        let at = o.stderr.lines().skip_while(|l| !l.contains(&message)).nth(1).unwrap_or_default();
        assert!(at.ends_with(place), "{name}: expected at {place}:\n{}", o.stderr);
        let help = if refused { "remove it (in YAML" } else { "remove it unless it is meant" };
        assert!(o.stderr.contains(help), "{name}: {}", o.stderr);
        let (o, _) = t.args(["plan", "--color", "never"]).status(status).stderr_has(&message).run();
        assert!(!o.stdout.contains('\u{1b}') && !o.stdout.contains('\u{7}'), "{name}: raw in the plan");
    }
    // Tabs and line breaks are text.
    let ok = "key: k\nchannel: slack\ncontent: {type: text, value: \"a\\tb\\r\\nc\"}\nidentities: [a]\n";
    let (o, _) = Test::repo(HOST).manifest("n.yaml", ok).args(["validate"]).status(0).run();
    assert!(!o.stderr.contains("control character"), "{}", o.stderr);
}

/// `{placeholder}` in a v1 message (msteams, slack), which Kore.ai sends as written: a warning in
/// validate and plan, at the value or at its place in a valueFile; not for scripts, not for v2.
#[test]
fn placeholders_in_a_v1_message_are_a_warning() {
    let manifest = "key: a\nchannel: slack\ncontent: {type: text, value: \"Hi {name}, ref {ref}\"}\nidentities: [x]\n---\nkey: b\nchannel: msteams\ncontent: {type: text, valueFile: ../m.txt}\nidentities: [x]\n---\nkey: c\nchannel: msteams\ncontent: {type: script, value: \"f({x})\"}\nidentities: [x]\n---\nkey: d\nchannel: ivr\ncontent: {type: text, value: \"Hi {name}\"}\nidentities: [{email: x@y, parameters: {name: X}}]\n";
    let t = Test::repo(HOST).manifest("n.yaml", manifest).file("m.txt", "Hello,\nyour code: {code}\n");
    let warning = "would reach every recipient as written: channel";
    let (o, t) = t
        .args(["validate", "--color", "never"])
        .status(0)
        .stderr_has(
            "`{name}`, `{ref}` would reach every recipient as written: channel slack (API v1) fills no placeholders",
        )
        .stderr_has("notifications/n.yaml:3:30")
        .stderr_has("`{code}` would reach every recipient as written: channel msteams (API v1)")
        .stderr_has("m.txt:2:12")
        .stdout_has("2 warning(s)")
        .run();
    assert_eq!(o.stderr.matches(warning).count(), 2, "{}", o.stderr);
    let (o, _) = t.args(["plan", "--color", "never"]).status(0).stderr_has("m.txt:2:12").run();
    assert_eq!(o.stderr.matches(warning).count(), 2, "{}", o.stderr);
}

/// Only the core schema's numbers are numbers: `0b101` and `-0x1F` reach the recipient as
/// written (no "read as the number" warning), while `0x1F` is the number it always was.
#[test]
fn numbers_outside_the_core_schema_are_text() {
    let manifest = "key: k\nchannel: ivr\ncontent: {type: text, value: \"{a} {b} {c}\"}\nidentities:\n  - {email: x@y, parameters: {a: 0b101, b: -0x1F, c: 0x1F}}\n";
    let (o, _) = Test::repo(HOST)
        .manifest("n.yaml", manifest)
        .args(["plan", "--format", "json"])
        .status(0)
        .stderr_has("`0x1F` is read as the number 31")
        .run();
    assert!(!o.stderr.contains("`0b101` is read") && !o.stderr.contains("`-0x1F` is read"), "{}", o.stderr);
    assert!(o.stdout.contains("0b101 -0x1F 31"), "{}", o.stdout);
}
