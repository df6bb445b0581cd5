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
