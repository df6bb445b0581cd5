//! The fast path returns exactly the full parser's tree (values and positions) whenever it returns
//! one, and takes the shape it was written for.

use proptest::prelude::*;

use super::super::tree;

/// The fast path's answer and the full parser's, both as text (so `.nan` compares too).
fn both(text: &str) -> (Option<String>, String) {
    let fast = super::build(text).map(|d| format!("{d:?}"));
    let full = match tree::build(text) {
        Ok(mut d) => {
            super::super::keep_number_text(text, &mut d);
            format!("{d:?}")
        }
        Err(e) => format!("error {}:{} {}", e.pos.line, e.pos.column, e.message),
    };
    (fast, full)
}

/// Where two renderings first differ, with some context.
fn diff(a: &str, b: &str) -> String {
    let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let from = a.floor_char_boundary(at.saturating_sub(200));
    let to = |s: &str| s.ceil_char_boundary((at + 120).min(s.len()));
    format!("fast: …{}…\nfull: …{}…", &a[from..to(a)], &b[b.floor_char_boundary(from)..to(b)])
}

#[track_caller]
fn same(text: &str) {
    let (fast, full) = both(text);
    let Some(fast) = fast else { panic!("the fast path stepped aside on\n{text}") };
    assert!(fast == full, "\n{text}\n{}", diff(&fast, &full));
}

#[track_caller]
fn steps_aside(text: &str) {
    let (fast, full) = both(text);
    assert_eq!(fast, None, "the fast path took\n{text}\nthe full parser says {full}");
}

#[test]
fn takes_inline_audiences_and_builds_the_same_tree() {
    same(
        "---\nkey: bench/notification-0\nchannel: ivr\ncontent:\n  type: text\n  value: 'Hello {name}, notification 0 about {ref}.'\nidentities:\n  - email: user0.n0@example.com\n    customMessage: 'Hi {name}, your reference {ref} is ready.'\n    parameters: {name: Name0, ref: REF-0-0}\n  - email: user1.n0@example.com\n    parameters: {name: José Ñandú, ref: \"R\\\"1\\n\"}\n---\nkey: b\n",
    );
}

#[test]
fn takes_the_usual_shapes() {
    for text in [
        "a: 1\nb:\n  - x\n  - y\n",
        "a:\n- x\n- y\nb: 2\n",
        "# head\n\na: hello world   # a comment\n\n  # indented comment\nb: 'it''s'  # c\nc: \"q \\\\ \\/ \\t\"\n",
        "- a: 1\n  b:\n    c: 2\n- [x, 'y', \"z\"]\n- {}\n- []\n- plain text, with {braces} and a#hash\n",
        "key: 007\nn: 1_000\nf: 1.50\np: +49151\nh: 0x1F\nb: yes\nt: true\nz: ~\nnull: x\n1: one\n1.5: f\n",
        "  a: 1\n  b: 2\n",
        "---\n---\na: 1\n---\n- x\n",
        "- a:\n  - x\n  - y\n- b\n",
        "m: {a: 1, b: 'x, y', c: \"}\"}\nu: ü\n",
        "e: {s: ü, x: y}\nk: [ä, 'ö', ü]\n",
        "url: http://example.com/a?b=c\nmsg: 50% off, today - only\n",
        "n: -5\nf: -1.50\nm: {a: -1, b: -x}\nl: [-2, -y]\nd: ---\n",
    ] {
        same(text);
    }
}

#[test]
fn steps_aside_for_everything_else() {
    for text in [
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "<<: {a: 1}\n",
        "a: |\n  block\n",
        "a: >\n  folded\n",
        "a: one\n  two\n",
        "a: 'one\n  two'\n",
        "a:\tb\n",
        "a: b\r\n",
        "a: 1\na: 2\n",
        "a:\nb: 1\n",
        "a: {b: {c: 1}}\n",
        "a: [1, [2]]\n",
        "a: {b: 1,}\n",
        "a: b: c\n",
        "a: \"\\x41\"\n",
        "? a\n: b\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: 1\n...\n",
        "- - a\n",
        "-\n  a: 1\n",
        "hello\n",
        "a: .inf\n",
        "\"a\": 1\n",
        "a: 1\n b: 2\n",
        "a:\n    b: 1\n  c: 2\n",
        "a: x\u{85}y\n",
        "a: x\u{2028}y\n",
        "ü: 1\n",
        "e: {ß: 1}\n",
    ] {
        steps_aside(text);
    }
}

/// Numbers are the YAML 1.2 core schema's forms only, in the fast path and the full parser alike:
/// every other spelling that looks numeric is text, digits as written.
#[test]
fn only_core_schema_numbers_are_numbers() {
    use super::super::Value;
    let int = |i: i64| Some(Value::Int(i));
    let text = |s: &str| Some(Value::Str(s.to_string()));
    let cases: [(&str, Option<Value>); 24] = [
        ("5", int(5)),
        ("+12", int(12)),
        ("-7", int(-7)),
        ("0o17", int(15)),
        ("0x1F", int(31)),
        ("0xff", int(255)),
        ("1.5", Some(Value::Float(1.5))),
        ("-.5e3", Some(Value::Float(-500.0))),
        ("0b101", text("0b101")),
        ("0B101", text("0B101")),
        ("-0b1", text("-0b1")),
        ("0b", text("0b")),
        ("0X1F", text("0X1F")),
        ("-0x1F", text("-0x1F")),
        ("+0x1F", text("+0x1F")),
        ("0O17", text("0O17")),
        ("-0o17", text("-0o17")),
        ("012", text("012")),
        ("1_000", text("1_000")),
        ("1:20", text("1:20")),
        ("190:20:30", text("190:20:30")),
        ("0x", text("0x")),
        ("0xZZ", text("0xZZ")),
        ("+inf", text("+inf")),
    ];
    for (written, expected) in cases {
        for doc in [format!("a: {written}\n"), format!("a: [{written}]\n"), format!("- {written}\n")] {
            // The fast path may step aside (a `:` in a flow list); when it answers, it agrees.
            let (fast, full) = both(&doc);
            assert!(fast.is_none_or(|f| f == full), "{doc}");
            let docs = tree::build(&doc).unwrap_or_default();
            let value = match &docs[0].value {
                Value::Map(e) => match &e[0].1.value {
                    Value::Seq(items) => items[0].value.clone(),
                    v => v.clone(),
                },
                Value::Seq(items) => items[0].value.clone(),
                v => v.clone(),
            };
            assert_eq!(Some(value), expected, "{doc}");
        }
    }
    // Not finite: refused, not sent.
    for written in ["+.inf", ".inf", "-.Inf", ".NaN", ".nan"] {
        assert!(tree::build(&format!("a: {written}\n")).is_err(), "{written}");
    }
}

#[test]
fn long_lines_read_the_same_in_bounded_time() {
    // A number's spelling is kept only on lines of at most 4096 bytes as written (trailing
    // spaces count), as the full parser's trees have it.
    same(&format!("a: 1.50{}\nb: 2.50\n", " ".repeat(4100)));
    // One flow mapping of 20,000 entries on one line: positions found without rescanning it.
    let entries: Vec<String> = (0..20_000).map(|i| format!("k{i}: v{i}")).collect();
    same(&format!("m: {{{}}}\n", entries.join(", ")));
    // Outside ASCII, a line that long is left to the full parser.
    steps_aside(&format!("m: {{{}}}\n", entries.join(", ").replace('v', "é")));
}

#[test]
fn what_the_full_parser_refuses_is_left_to_it() {
    // An implicit key is at most 1024 characters.
    let k = "k".repeat(1025);
    for text in
        [format!("{k}: 1\n"), format!("- {k}: 1\n"), format!("a:\n  {k}: 1\n"), format!("m: {{a: 1, {k}: 1}}\n")]
    {
        steps_aside(&text);
    }
    // It looks ahead past at most 32 comments for a key's value (a commented-out audience).
    let old = "# - email: old@example.com\n".repeat(33);
    for text in [
        format!("identities:\n{old}  - email: a@example.com\n"),
        format!("identities:\n{old}- email: a@example.com\n"),
        format!("identities: # old ones below\n{}  - email: a@example.com\n", "#\n".repeat(32)),
        format!("- a:\n{old}  - x\n"),
        format!("a:\n{}  b: 1\n", "# c\n\n".repeat(33)),
    ] {
        steps_aside(&text);
    }
    same(&format!("identities:\n{}  - email: a@example.com\n", "# old\n".repeat(31)));
    same(&format!("a: 1\n{}b: 2\n", "# many comments between entries\n".repeat(100)));
    // Comments count against its event budget.
    assert!(super::build(&format!("a: 1\n{}", "#\n".repeat(4_000_001))).is_none());
}

/// A small deterministic generator of manifests in (and near) the fast path's shape.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn scalar(&mut self) -> String {
        const PLAIN: [&str; 20] = [
            "hello",
            "a b c",
            "Hello {name}, x",
            "007",
            "1_000",
            "1.50",
            "+49151",
            "0x1F",
            "true",
            "no",
            "~",
            "3",
            "José",
            "日本語 テキスト",
            "a#b",
            "http://x/y",
            "-5",
            "-1.5e3",
            "-x y",
            "--",
        ];
        const QUOTED: [&str; 7] =
            ["'it''s'", "\"a \\\"q\\\" \\n\"", "'#not a comment'", "\"\"", "''", "'x: y'", "\"é\""];
        let s = if self.chance(30) { self.pick(&QUOTED) } else { self.pick(&PLAIN) };
        if self.chance(10) { format!("{s}   # note") } else { s.to_string() }
    }

    fn flow(&mut self) -> String {
        const VALUES: [&str; 10] = ["Name0", "REF-0-1", "José", "1", "'a, b'", "\"}\"", "x y", "true", "-5", "-a"];
        const KEYS: [&str; 5] = ["name", "ref", "n", "é_no", "k1"];
        let n = self.next() % 4;
        if self.chance(50) {
            let keys: Vec<String> = (0..n).map(|i| format!("{}{i}", self.pick(&KEYS))).collect();
            let body: Vec<String> =
                keys.iter().map(|k| format!("{}: {}", k.replace('é', "e"), self.pick(&VALUES))).collect();
            format!("{{{}}}", body.join(", "))
        } else {
            let body: Vec<&str> = (0..n).map(|_| self.pick(&VALUES)).collect();
            format!("[{}]", body.join(", "))
        }
    }

    fn inline(&mut self) -> String {
        if self.chance(25) { self.flow() } else { self.scalar() }
    }

    /// A block node at indentation `indent`, as lines (the first line's indentation included).
    fn block(&mut self, indent: usize, depth: u32, out: &mut String) {
        const KEYS: [&str; 10] =
            ["key", "email", "customMessage", "parameters", "x_1", "n.m", "p-q", "null", "1", "on"];
        let pad = " ".repeat(indent);
        let entries = 1 + self.next() % 4;
        let seq = self.chance(35);
        let mut used = Vec::new();
        for i in 0..entries {
            if i > 0 && self.chance(8) {
                out.push_str(if self.chance(50) { "\n" } else { "  # comment\n" });
            }
            if seq {
                let gap = if self.chance(85) { " " } else { "   " };
                out.push_str(&format!("{pad}-{gap}"));
                if depth < 4 && self.chance(40) {
                    // A compact mapping: its first key on the item's line.
                    let mut inner = String::new();
                    self.block(indent + 1 + gap.len(), depth + 1, &mut inner);
                    let inner = inner.trim_start_matches(' ');
                    if inner.starts_with('-') || inner.is_empty() {
                        out.push_str("plain\n");
                    } else {
                        out.push_str(inner);
                    }
                } else {
                    out.push_str(&self.inline());
                    out.push('\n');
                }
                continue;
            }
            let key = self.pick(&KEYS);
            if used.contains(&key) {
                continue;
            }
            used.push(key);
            if depth < 4 && self.chance(40) {
                out.push_str(&format!("{pad}{key}:\n"));
                let step = if self.chance(20) {
                    0
                } else if self.chance(50) {
                    2
                } else {
                    4
                };
                let mut inner = String::new();
                self.block(indent + step, depth + 1, &mut inner);
                if step == 0 && !inner.trim_start().starts_with('-') {
                    out.push_str(&format!("{pad}  x: 1\n"));
                } else {
                    out.push_str(&inner);
                }
            } else {
                out.push_str(&format!("{pad}{key}: {}\n", self.inline()));
            }
        }
    }

    fn file(&mut self) -> String {
        let mut out = String::new();
        for d in 0..=(self.next() % 3) {
            if d > 0 || self.chance(50) {
                out.push_str("---\n");
            }
            let mut doc = String::new();
            self.block(0, 0, &mut doc);
            if doc.trim_start().starts_with('-') && self.chance(50) {
                doc = "k: v\n".into();
            }
            out.push_str(&doc);
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Generated manifests in the shape: the fast path takes them, with the full parser's trees.
    #[test]
    fn generated_manifests_read_the_same(seed in 1..u64::MAX) {
        let text = Gen(seed).file();
        let (fast, full) = both(&text);
        prop_assert!(fast.is_some(), "stepped aside on\n{}\nfull: {}", text, full);
        let fast = fast.unwrap_or_default();
        prop_assert!(fast == full, "\n{}\n{}", text, diff(&fast, &full));
    }

    /// Mutated manifests: whenever the fast path still answers, it is the full parser's answer.
    #[test]
    fn mutated_manifests_read_the_same_or_step_aside(
        seed in 1..u64::MAX,
        edits in proptest::collection::vec((any::<usize>(), 0..40usize, any::<bool>()), 1..5),
    ) {
        const CHARS: &[char] = &[' ', ':', '#', '-', '\'', '"', '{', '}', '[', ']', ',', '\n', '\t', '&', '*', '!', '|', '>', '?', '%', '@', '`', '\\', 'a', '1', '.', 'é', '\u{85}'];
        let mut text: Vec<char> = Gen(seed).file().chars().collect();
        for (at, c, insert) in edits {
            let at = at % (text.len() + 1);
            let c = CHARS[c % CHARS.len()];
            if insert || at == text.len() { text.insert(at, c) } else { text[at] = c }
        }
        let text: String = text.into_iter().collect();
        let (fast, full) = both(&text);
        if let Some(fast) = fast {
            prop_assert!(fast == full, "\n{}\n{}", text, diff(&fast, &full));
        }
    }
}
