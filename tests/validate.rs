use crate::harness::*;

const HOST: &str = "https://kore.example.com";

fn broken(manifest: &str) -> Test {
    Test::repo(HOST).manifest("n.yaml", manifest).args(["validate"]).status(1)
}

#[test]
fn examples_are_valid() {
    Test::new()
        .args(["--config", &examples_dir().join("kore-notify.yaml").to_string_lossy(), "validate"])
        .status(0)
        .stdout_has("valid: 7 notification(s), 1263 recipient(s)")
        .run();
}

#[test]
fn unknown_field_names_file_line_field_and_suggestion() {
    broken("key: a\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [a@x.com]\nnotBefor: 2026-01-01T00:00:00Z\n")
        .stderr_has("notifications/n.yaml:5:1")
        .stderr_has("unknown field `notBefor`")
        .stderr_has("did you mean `notBefore`")
        .run();
}

#[test]
fn every_error_of_a_run_is_reported() {
    let (o, _) = broken(
        "key: a b\nchannel: msteams\ncontent: {type: template, value: hi}\nidentities: [a@x.com, a@x.com]\nonChange: maybe\n",
    )
    .run();
    for needle in ["`a b` is not a valid key", "`template` is not a content type", "`maybe` is not a valid value"] {
        assert!(o.stderr.contains(needle), "missing {needle}: {}", o.stderr);
    }
    assert!(o.stderr.contains("3 error(s)") || o.stderr.contains("error(s)"), "{}", o.stderr);
}

#[test]
fn unknown_channel() {
    broken("key: a\nchannel: telegram\ncontent: {type: text, value: hi}\nidentities: [a]\n")
        .stderr_has("n.yaml:2:10")
        .stderr_has("channel: `telegram` is not a valid value")
        .run();
}

#[test]
fn wrong_identity_field_for_channel() {
    broken("key: a\nchannel: hangouts\ncontent: {type: text, value: hi}\nidentities:\n  - email: a@x.com\n")
        .stderr_has("n.yaml:5:12")
        .stderr_has("identities[0].email")
        .stderr_has("rename `email` to `spaceId`")
        .run();
}

#[test]
fn no_identities() {
    broken("key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: []\n")
        .stderr_has("no recipients")
        .run();
    broken("key: a\nchannel: slack\ncontent: {type: text, value: hi}\n")
        .stderr_has("missing required field `identities`")
        .run();
}

#[test]
fn too_many_and_too_long_parameters() {
    let params: Vec<String> = (0..21).map(|i| format!("p{i}: v")).collect();
    broken(&format!(
        "key: a\nchannel: ivr\ncontent: {{type: text, value: hi}}\nidentities:\n  - email: a@x.com\n    parameters: {{{}}}\n",
        params.join(", ")
    ))
    .stderr_has("identities[0].parameters")
    .stderr_has("21 parameters; Kore.ai accepts at most 20")
    .run();
    broken(&format!(
        "key: a\nchannel: ivr\ncontent: {{type: text, value: 'hi {{name}}'}}\nidentities:\n  - email: a@x.com\n    parameters:\n      name: {}\n",
        "x".repeat(201)
    ))
    .stderr_has("n.yaml:7:13")
    .stderr_has("identities[0].parameters.name")
    .stderr_has("201 characters")
    .run();
}

#[test]
fn placeholder_without_parameter() {
    broken(
        "key: a\nchannel: ivr\ncontent: {type: text, value: 'Hi {name}, ref {refId}'}\nidentities:\n  - email: a@x.com\n    parameters: {name: A, refId: R}\n  - email: b@x.com\n    parameters: {name: B}\n",
    )
    .stderr_has("n.yaml:7:5")
    .stderr_has("identities[1].parameters")
    .stderr_has("placeholder {refId} has no parameter `refId` for `b@x.com`")
    .run();
}

#[test]
fn unused_parameter_is_a_warning_not_an_error() {
    Test::repo(HOST)
        .manifest("n.yaml", "key: a\nchannel: ivr\ncontent: {type: text, value: 'Hi {name}'}\nidentities:\n  - email: a@x.com\n    parameters: {name: A, extra: E}\n")
        .args(["validate"])
        .status(0)
        .stderr_has("warning")
        .stderr_has("parameter `extra` is used by no placeholder")
        .run();
}

#[test]
fn duplicate_keys_across_files_and_duplicate_recipients() {
    Test::repo(HOST)
        .manifest("a.yaml", "key: same\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n")
        .manifest("b.yaml", "key: same\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a, b]\n")
        .manifest("c.yaml", "key: other\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a, b, a]\n")
        .args(["validate"])
        .status(1)
        .stderr_has("notifications/b.yaml:1:6")
        .stderr_has("duplicate key `same`")
        .stderr_has("already used at notifications/a.yaml:1")
        .stderr_has("c.yaml:4:20")
        .stderr_has("duplicate recipient `a`")
        .run();
}

#[test]
fn invalid_dates() {
    broken("key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\nnotBefore: tomorrow\n")
        .stderr_has("n.yaml:5:12")
        .stderr_has("`tomorrow` is not an RFC 3339 date-time")
        .run();
    broken("key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\nnotBefore: 2026-12-02T00:00:00Z\nnotAfter: 2026-12-01T00:00:00Z\n")
        .stderr_has("notAfter is not later than notBefore")
        .run();
}

#[test]
fn v1_channel_refuses_identity_objects_and_v2_value_objects() {
    broken("key: a\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities:\n  - {email: a@x.com}\n")
        .stderr_has("takes identities as plain strings")
        .run();
    broken("key: a\nchannel: ivr\ncontent: {type: text, value: {a: 1}}\nidentities: [a@x.com]\n")
        .stderr_has("only allowed for whatsapp templates")
        .run();
    broken("key: a\nchannel: msteams\napi: v2\ncontent: {type: text, value: hi}\nidentities: [a]\n")
        .stderr_has("served by API v1")
        .run();
    broken("key: a\nchannel: hangouts\nwebhookInstanceName: W\ncontent: {type: text, value: hi}\nidentities: [a]\n")
        .stderr_has("only to the ivr channel")
        .run();
}

#[test]
fn literal_secret_in_config_is_refused_without_echoing_it() {
    let (o, _) = Test::new()
        .file(
            "kore-notify.yaml",
            "host: https://kore.example.com\nbotId: st-1\nclientId: cs-1\nclientSecret: hunter2-literal\n",
        )
        .manifest("n.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n")
        .args(["validate"])
        .status(1)
        .stderr_has("kore-notify.yaml:4:15")
        .stderr_has("a literal secret is not allowed")
        .stderr_has("${KORE_CLIENT_SECRET}")
        .run();
    assert!(!o.stderr.contains("hunter2"), "{}", o.stderr);
}

#[test]
fn undefined_variable_names_it_and_where() {
    let manifest = "key: a\nchannel: slack\ncontent: {type: text, value: 'Hi ${TEAM_NAME}'}\nidentities: [a]\n";
    broken(manifest).stderr_has("n.yaml:3:30").stderr_has("variable TEAM_NAME is not declared for manifests").run();
    Test::repo(HOST)
        .file("kore-notify.yaml", &format!("{}variables: [TEAM_NAME]\n", config(HOST)))
        .manifest("n.yaml", manifest)
        .args(["validate"])
        .status(1)
        .stderr_has("n.yaml:3:30")
        .stderr_has("environment variable TEAM_NAME is not set")
        .run();
    Test::new()
        .file("kore-notify.yaml", "host: ${KORE_HOST_UNSET}\nbotId: st-1\nclientId: a\nclientSecret: ${S}\n")
        .args(["validate"])
        .status(1)
        .stderr_has("kore-notify.yaml:1:7")
        .stderr_has("KORE_HOST_UNSET")
        .run();
}

#[test]
fn plain_http_refused_for_remote_hosts() {
    Test::repo("http://kore.example.com").args(["validate"]).status(1).stderr_has("plain http is refused").run();
}

#[test]
fn csv_audiences() {
    Test::repo(HOST)
        .manifest(
            "n.yaml",
            "key: a\nchannel: ivr\ncontent: {type: text, value: 'Hi {name}'}\nidentitiesFrom: ../aud.csv\n",
        )
        .file("aud.csv", "email,name\na@x.com,A\nb@x.com,B\n")
        .args(["validate"])
        .status(0)
        .stdout_has("2 recipient(s)")
        .run();
    Test::repo(HOST)
        .manifest(
            "n.yaml",
            "key: a\nchannel: ivr\ncontent: {type: text, value: 'Hi {name}'}\nidentitiesFrom: ../aud.csv\n",
        )
        .file("aud.csv", "spaceId,name\na@x.com,A\n")
        .args(["validate"])
        .status(1)
        .stderr_has("aud.csv:1:1")
        .stderr_has("identifies recipients by `email`")
        .run();
    Test::repo(HOST)
        .manifest(
            "n.yaml",
            "key: a\nchannel: ivr\ncontent: {type: text, value: 'Hi {name}'}\nidentitiesFrom: ../aud.csv\n",
        )
        .file("aud.csv", "email,name\na@x.com,A\nb@x.com\nc@x.com,\n")
        .args(["validate"])
        .status(1)
        .stderr_has("aud.csv:3")
        .run();
    Test::repo(HOST)
        .manifest(
            "n.yaml",
            "key: a\nchannel: ivr\ncontent: {type: text, value: 'Hi {name}'}\nidentitiesFrom: ../aud.csv\n",
        )
        .file("aud.csv", "email,name\na@x.com,A\nc@x.com,\n")
        .args(["validate"])
        .status(1)
        .stderr_has("aud.csv:3:1")
        .stderr_has("placeholder {name} has no parameter")
        .run();
}

#[test]
fn several_documents_per_file_and_value_file() {
    Test::repo(HOST)
        .manifest("n.yaml", "key: a\nchannel: slack\ncontent: {type: text, valueFile: msg.txt}\nidentities: [a]\n---\nkey: b\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [b]\n")
        .manifest("msg.txt", "hello from a file\n")
        .args(["validate"])
        .status(0)
        .stdout_has("2 notification(s)")
        .run();
    broken("key: a\nchannel: slack\ncontent: {type: text, valueFile: missing.txt}\nidentities: [a]\n")
        .stderr_has("n.yaml:3:34")
        .stderr_has("cannot use `missing.txt`")
        .run();
}

#[test]
fn github_annotations_and_json_format() {
    let manifest = "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\nfoo: 1\n";
    Test::repo(HOST)
        .manifest("n.yaml", manifest)
        .env("GITHUB_ACTIONS", "true")
        .args(["validate"])
        .status(1)
        .stderr_has("::error file=notifications/n.yaml,line=5,col=1,title=foo::foo: unknown field `foo`")
        .run();
    let (o, _) = Test::repo(HOST).manifest("n.yaml", manifest).args(["validate", "--format", "json"]).status(1).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["line"], 5);
    assert_eq!(v["diagnostics"][0]["field"], "foo");
}

#[test]
fn config_is_found_from_a_subdirectory_and_paths_can_be_given() {
    Test::repo(HOST)
        .manifest("n.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n")
        .cwd("notifications")
        .args(["validate"])
        .status(0)
        .run();
    Test::new()
        .file("elsewhere/x.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n")
        .args(["validate", "elsewhere"])
        .status(0)
        .stdout_has("1 notification(s)")
        .run();
}

/// YAML 1.1 booleans (`n`, `no`, `on`, `y`) and numbers with leading zeros or underscores are
/// text to Kore.ai: parameter names and values keep exactly what was written.
#[test]
fn yaml_scalars_keep_their_text() {
    let t = Test::repo(HOST).manifest(
        "n.yaml",
        "key: a\nchannel: ivr\ncontent: {type: text, value: '{n} {on} {zip} {count}'}\nidentities:\n  - email: a@x.com\n    parameters: {n: NO, on: yes, zip: 007, count: 1_000}\n",
    );
    let (o, _) = t.args(["plan", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let text = v.to_string();
    assert!(!text.contains("false"), "a YAML 1.1 boolean leaked into the plan: {text}");
    let sends = &v["targets"][0]["notifications"][0]["sends"][0];
    assert_eq!(sends["id"], "a@x.com", "{text}");
}
