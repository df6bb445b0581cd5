//! Values given to flags and arguments: an empty value (an unset variable), a blank one, one padded
//! with spaces, one with a control character, and an unknown key are refused by every command that
//! takes a key, a request, a path or a list, through the binary; nothing is sent or written, and
//! "everything" must be said explicitly.

use crate::harness::*;

/// A state with one request of unknown outcome (`a`, its connection dropped) and one failed
/// delivery (`b`, to fail@y.com): what the retry flags would resend.
fn repo(emu: &Emulator) -> Test {
    let t = Test::repo(&emu.url)
        .manifest("a.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [x@y.com]\n")
        .manifest(
            "b.yaml",
            "key: b\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [ok@y.com, fail@y.com]\n",
        );
    let (_, t) =
        t.args(["apply", "--auto-approve", "--parallelism", "1", "--wait", "--timeout", "30s"]).status(3).run();
    let (o, t) = t.args(["status"]).status(3).run();
    assert!(o.stdout.contains('a') && o.stdout.contains('b'), "{}", o.stdout);
    t
}

fn raw_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
}

#[test]
fn every_value_flag_refuses_empty_blank_padded_odd_and_unknown_values() {
    let emu = Emulator::start(&["--schedule", "1=drop"]);
    let mut t = repo(&emu);
    let sent = emu.deliveries();
    let state = std::fs::read(t.state_path()).expect("state");
    // (command line with V for the value, whether an unknown key applies)
    let flags: &[(&[&str], bool)] = &[
        (&["plan", "--retry-unknown=V"], true),
        (&["plan", "--retry-failed=V"], true),
        (&["apply", "--auto-approve", "--retry-unknown=V"], true),
        (&["apply", "--auto-approve", "--retry-failed=V"], true),
        (&["apply", "--auto-approve", "--retry-unknown=a", "--retry-unknown=V"], true),
        (&["status", "V"], true),
        (&["status", "a", "V"], true),
        (&["state", "show", "V"], true),
        (&["state", "rm", "V", "--yes"], true),
        (&["state", "resolve", "V", "--sent"], true),
        (&["state", "resolve", "a", "V", "--sent"], true),
        (&["state", "migrate", "--to", "V"], false),
        (&["validate", "V"], true),
        (&["plan", "--commit", "V"], true),
        (&["plan", "--run-url", "V"], true),
        (&["plan", "--repo-url", "V"], true),
        (&["apply", "--auto-approve", "--events", "V"], false),
        (&["status", "--events", "V"], false),
        (&["plan", "--out", "V"], false),
        (&["plan", "--compare-to", "V"], false),
        (&["plan", "--max-recipients", "V"], true),
        (&["show", "V"], true),
        (&["apply", "V"], true),
        (&["apply", "--auto-approve", "--timeout", "V"], true),
        (&["apply", "--auto-approve", "--parallelism", "V"], true),
        (&["init", "V"], false),
        (&["--config", "V", "plan"], true),
        (&["-C", "V", "plan"], true),
    ];
    let values = ["", " ", "\t", " a", "a ", "a\u{1b}[2J", "a\r", "a\u{202e}", "a\n"];
    for (line, unknown_applies) in flags {
        let unknown: &[&str] = if *unknown_applies { &["nokey", "no-such-key#3"] } else { &[] };
        for v in values.iter().chain(unknown) {
            let args: Vec<String> = line.iter().map(|a| a.replace('V', v)).collect();
            let (o, t2) = t.args(args.clone()).run();
            t = t2;
            assert_eq!(o.status, 1, "{args:?} was accepted:\n{}\n{}", o.stdout, o.stderr);
            assert!(o.stderr.starts_with("error: "), "{args:?}: {}", o.stderr);
            assert!(!t.path().join(v).exists() || v.trim().is_empty(), "{args:?} created {v:?}");
            assert!(!raw_control(&o.stderr) && !raw_control(&o.stdout), "{args:?}: raw control in {:?}", o.stderr);
            assert_eq!(emu.deliveries(), sent, "{args:?} sent something");
            assert_eq!(std::fs::read(t.state_path()).expect("state"), state, "{args:?} changed the state");
        }
    }
    // Empty values say how to write "everything".
    t.args(["apply", "--retry-unknown="])
        .status(1)
        .stderr_has("--retry-unknown=all")
        .run()
        .1
        .args(["apply", "--retry-failed="])
        .status(1)
        .stderr_has("--retry-failed=all")
        .run();
}

#[test]
fn everything_is_said_explicitly_and_all_is_never_a_key_by_accident() {
    let emu = Emulator::start(&["--schedule", "1=drop"]);
    let t = repo(&emu);
    let before: u64 = emu.deliveries().values().sum();
    // A bare flag (what `--retry-unknown $KEY` becomes with KEY unset) is never "all".
    let mut t = t;
    for flag in ["--retry-unknown", "--retry-failed"] {
        for cmd in ["plan", "apply"] {
            let args = if cmd == "apply" { vec![cmd, "--auto-approve", flag] } else { vec![cmd, flag] };
            t = t.args(args).status(1).stderr_has("needs a value").stderr_has("=all").run().1;
        }
    }
    assert_eq!(emu.deliveries().values().sum::<u64>(), before, "a bare flag resends nothing");
    // `all` beside keys is refused; alone it resends every unknown request, then every failure.
    let (_, t) = t
        .args(["apply", "--auto-approve", "--retry-unknown=all", "--retry-unknown=a"])
        .status(1)
        .stderr_has("give it alone")
        .run();
    let (o, t) = t.args(["plan", "--retry-unknown=all", "--format", "json"]).status(0).run();
    assert!(o.stdout.contains("\"retryUnknown\": true"), "{}", o.stdout);
    let (_, t) = t.args(["apply", "--auto-approve", "--retry-unknown=all"]).run();
    assert_eq!(emu.deliveries().values().sum::<u64>(), before + 1);
    let (_, t) = t.args(["apply", "--auto-approve", "--retry-failed=all"]).run();
    assert_eq!(emu.deliveries().values().sum::<u64>(), before + 2);
    // A notification keyed `all`: `--retry-unknown=all` is ambiguous; `all#N` names its request.
    let t = t.manifest("c.yaml", "key: all\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [z@y.com]\n");
    let (_, mut t) = t.args(["apply", "--auto-approve"]).status(0).run();
    for flag in ["--retry-unknown=all", "--retry-failed=all"] {
        t = t.args(["plan", flag]).status(1).stderr_has("is ambiguous").run().1;
    }
    t.args(["plan", "--retry-unknown=all#0"]).status(1).stderr_has("request #0 of `all` has no unknown outcome").run();
}

/// `state migrate --to` with a literal password in any spelling (user part, `password=`,
/// `options=`), padded, cut by a control character, `=` or a separate argument: refused, and the
/// password is in no output.
#[test]
fn a_migrate_target_with_a_literal_password_is_never_echoed() {
    let t = Test::repo("https://kore.example.com")
        .manifest("a.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [x@y.com]\n");
    let urls = [
        "postgres://kn:Sec9@127.0.0.1:1/db",
        "postgresql://kn:Se/c?9@127.0.0.1:1/db",
        "POSTGRES://kn@127.0.0.1:1/db?password=Sec9",
        "postgres://kn@127.0.0.1:1/db?pass%77ord=Sec9&password=x",
        "postgres://kn@127.0.0.1:1/db?options=-c%20password%3DSec9",
        "postgres://kn:Sec@9@127.0.0.1:1/db",
    ];
    let mut t = t;
    for url in urls {
        for v in [url.to_string(), format!(" {url}"), format!("{url} "), format!("{url}\r"), format!("{url}\u{1b}[2J")]
        {
            for args in [
                vec!["state".to_string(), "migrate".into(), "--to".into(), v.clone()],
                vec!["state".into(), "migrate".into(), format!("--to={v}")],
            ] {
                let (o, t2) = t.args(args.clone()).status(1).run();
                t = t2;
                assert!(o.stderr.contains("--to"), "{args:?}: {}", o.stderr);
                for part in ["Sec9", "Se/c?9", "Sec@9"] {
                    assert!(!o.stderr.contains(part) && !o.stdout.contains(part), "{args:?}: {}", o.stderr);
                }
            }
        }
    }
}
