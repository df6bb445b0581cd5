//! Hostile input: each must be a clear error (exit 1), quickly, never a panic or a hang.

use std::time::{Duration, Instant};

use crate::harness::*;

fn rejects(t: Test, needle: &str) {
    let start = Instant::now();
    let (o, _) = t.args(["validate"]).status(1).stderr_has(needle).run();
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    assert!(!o.stderr.contains("RUST_BACKTRACE"), "{}", o.stderr);
}

fn repo() -> Test {
    Test::repo("https://kore.example.com")
}

#[test]
fn alias_bomb() {
    let mut y = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    let names = ["b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let mut prev = "a";
    for n in names {
        y.push_str(&format!("{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        prev = n;
    }
    rejects(repo().manifest("bomb.yaml", &y), "bomb.yaml");
}

#[test]
fn deep_nesting() {
    let y = format!("key: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    rejects(repo().manifest("deep.yaml", &y), "deep.yaml");
    let mut block = String::new();
    for i in 0..10_000 {
        block.push_str(&" ".repeat(i.min(2000)));
        block.push_str("- \n");
    }
    rejects(repo().manifest("deep2.yaml", &format!("key:\n{}", "  - ".repeat(5000) + "x\n")), "deep2.yaml");
}

#[test]
fn huge_file() {
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    let big = line.repeat(50 * 1024 * 1024 / line.len());
    rejects(repo().manifest("big.yaml", &big), "too large");
}

#[test]
fn invalid_utf8_and_binary() {
    rejects(repo().bytes("notifications/bad.yaml", b"key: a\nchannel: \xff\xfe\n"), "bad.yaml:2:10");
    rejects(repo().bytes("notifications/bin.yaml", &[0x7f, b'E', b'L', b'F', 0, 0, 1, 2, 3]), "binary file");
}

#[test]
fn duplicate_mapping_keys() {
    rejects(
        repo().manifest(
            "dup.yaml",
            "key: a\nchannel: slack\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [a]\n",
        ),
        "dup.yaml:3",
    );
}

#[test]
fn symlink_loop_in_manifest_directory() {
    let t = repo().manifest("ok.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n");
    std::os::unix::fs::symlink(t.path().join("notifications"), t.path().join("notifications/loop")).expect("symlink");
    rejects(t, "symlink loop");
}

#[test]
fn broken_yaml_syntax_and_wrong_shapes() {
    rejects(repo().manifest("s.yaml", "key: a\nchannel: [slack\n"), "s.yaml:");
    rejects(repo().manifest("s.yaml", "- just\n- a list\n"), "expected a mapping, found a list");
    rejects(
        repo().manifest("s.yaml", "key: a\nchannel: slack\ncontent: hello\nidentities: [a]\n"),
        "content: expected a mapping",
    );
    rejects(
        repo().manifest("s.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: a\n"),
        "identities: expected a list",
    );
    rejects(
        repo().manifest("s.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [true]\n"),
        "quote it",
    );
}

const MIB: u64 = 1024 * 1024;

/// A repository whose one notification takes its message from a file and its audience from a
/// CSV file, all valid.
fn with_files() -> Test {
    repo()
        .manifest(
            "n.yaml",
            "key: k\nchannel: ivr\ncontent: {type: text, valueFile: ../messages/m.txt}\nidentitiesFrom: ../audiences/a.csv\n",
        )
        .file("messages/m.txt", "Hello {name}\n")
        .file("audiences/a.csv", "email,name\na@x.com,Ann\n")
}

/// Every kind of file that must be text, when it is binary (a huge sparse file of NUL bytes just
/// under its size limit, or text with a NUL or bytes that are not UTF-8 later on): refused with an
/// error naming the kind of file, where, and the fix, never read whole (the sparse files are
/// hundreds of megabytes; bench/hostile.sh measures time and memory).
#[test]
fn binary_files_of_every_kind_are_refused_naming_the_kind() {
    type Case = (&'static str, &'static [u8], u64, &'static [&'static str], &'static [&'static str]);
    let csv: &[&str] = &["the CSV audience is a binary file, not CSV text", "CSV UTF-8"];
    let cases: Vec<Case> = vec![
        ("audiences/a.csv", b"", 510 * 1000 * 1000, &["validate"], csv),
        ("audiences/a.csv", b"email,name\na@x.com,Ann\n", 100 * MIB, &["plan"], &["audiences/a.csv:3:1"]),
        (
            "audiences/a.csv",
            b"email,name\na@x.com,Jos\xe9\n",
            0,
            &["validate"],
            &[
                "audiences/a.csv:2:12",
                "the CSV audience is not CSV text: bytes that are not UTF-8 at line 2, column 12",
            ],
        ),
        (
            "messages/m.txt",
            b"Hello",
            MIB - 1,
            &["validate"],
            &["messages/m.txt:1:6", "the message file (valueFile) is a binary file, not the text of a message"],
        ),
        (
            "notifications/bin.yaml",
            b"",
            16 * MIB - 1,
            &["validate"],
            &["notifications/bin.yaml:1:1", "the manifest is a binary file, not YAML text", "manifest directories"],
        ),
        (
            "kore-notify.yaml",
            b"host: x\n",
            MIB - 1,
            &["validate"],
            &["kore-notify.yaml:2:1", "the config is a binary file, not YAML text"],
        ),
        (
            "plan.json",
            b"",
            255 * MIB,
            &["show", "plan.json"],
            &[
                "the plan file is a binary file, not a kore-notify plan (JSON text): a NUL byte at line 1, column 1",
                "kore-notify plan --out FILE",
            ],
        ),
        (
            "plan.json",
            b"{\n",
            255 * MIB,
            &["apply", "plan.json", "--auto-approve"],
            &["the plan file is a binary file, not a kore-notify plan (JSON text): a NUL byte at line 2, column 1"],
        ),
        (
            ".kore-notify/state.json",
            b"",
            2048 * MIB - 1,
            &["plan"],
            &[
                "the state file is a binary file, not a kore-notify state (JSON text): a NUL byte at line 1, column 1",
                "state.json.backup",
                "left untouched",
            ],
        ),
        (
            ".kore-notify/state.json",
            b"{\"formatVersion\": 2,\n\xff",
            0,
            &["status"],
            &["the state file is not a kore-notify state (JSON text): bytes that are not UTF-8 at line 2, column 1"],
        ),
        (
            ".kore-notify/state.json.journal",
            b"",
            10 * MIB,
            &["plan"],
            &["a line with a NUL byte: the file is corrupted", "left untouched"],
        ),
    ];
    for (rel, head, len, args, needles) in cases {
        let len = len.max(head.len() as u64);
        let t = with_files().sparse(rel, head, len);
        if rel.ends_with(".journal") {
            // NUL bytes, then a line break: a complete line that cannot be an entry.
            let append = std::fs::OpenOptions::new().append(true).open(t.path().join(rel));
            append.and_then(|mut f| std::io::Write::write_all(&mut f, b"\n")).expect("append");
        }
        let mut t = t.args(args.iter().copied()).status(1);
        for n in needles {
            t = t.stderr_has(n);
        }
        let (o, _) = t.run();
        assert!(!o.stderr.contains("panicked"), "{rel}: {}", o.stderr);
        assert!(o.stderr.len() < 4096, "{rel}: the error is short, whatever the file: {}", o.stderr);
    }
}

/// A plan file that is text but holds a huge string (where a parser would quote it in its error):
/// refused before parsing, with a short error.
#[test]
fn a_plan_file_with_a_huge_string_is_refused_briefly() {
    let mut json = b"{\"formatVersion\": 2, \"targets\": \"".to_vec();
    json.resize(json.len() + 40 * MIB as usize, b'x');
    json.extend_from_slice(b"\"}\n");
    for args in [&["show", "plan.json"][..], &["apply", "plan.json", "--auto-approve"]] {
        let t = with_files().bytes("plan.json", &json).args(args.iter().copied()).status(1);
        let (o, _) = t.stderr_has("not a kore-notify plan file").stderr_has("line 1 has a string of more than").run();
        assert!(o.stderr.len() < 4096, "{}", o.stderr.len());
    }
    // A string that fits is quoted at most in part.
    let mut json = b"{\"formatVersion\": 2, \"targets\": \"".to_vec();
    json.resize(json.len() + MIB as usize, b'x');
    json.extend_from_slice(b"\"}\n");
    let t = with_files().bytes("plan.json", &json).args(["show", "plan.json"]).status(1);
    let (o, _) = t.stderr_has("invalid type: string \"xxx").stderr_has("at line 1 column").run();
    assert!(o.stderr.len() < 4096, "{}", o.stderr.len());
}
