//! The YAML tree is built from parser events (`yaml::parse_documents`); it used to be built through
//! serde (`yaml::serde_path::parse_documents`). Until the serde path is removed, these properties
//! check that both read every input the same way: the same trees (values, positions, number
//! spellings) and the same errors (position and message), on arbitrary text, on YAML-shaped token
//! soup, and on real manifests with bytes and lines mutated.
//!
//! Three differences are intended: `!!binary` is refused (the serde path decoded it into text);
//! budget breaches are reported where the event builder counts them (an alias is charged up front
//! for everything it expands to), so for those only "both refuse" is required; and plain scalars
//! that look numeric but are not numbers in the YAML 1.2 core schema (`0b101`, `-0x1F`, `0X1F`)
//! are text in the tree, numbers in the serde path, so for inputs holding such a spelling only
//! "both accept" or "both refuse" is required (the fast path and the full parser, which must agree
//! on those too, are held together by the tests in `src/yaml/fast_tests.rs`). One is tolerated:
//! when a tagged key fails to resolve (`!!int a: *x`) and the input is also broken right after it,
//! the two paths may name either problem first (the serde path's order depends on how far the
//! scanner had read ahead); both refuse the file.

use kore_notify::yaml::{self, Node, ParseError};
use proptest::prelude::*;

const MANIFESTS: [&str; 7] = [
    include_str!("../examples/notifications/hr-benefits-enrolment.yaml"),
    include_str!("../examples/notifications/hr-new-year-greeting.yaml"),
    include_str!("../examples/notifications/it-expense-reminder.yaml"),
    include_str!("../examples/notifications/it-password-reset.yaml"),
    include_str!("../examples/notifications/orders-shipped.yaml"),
    include_str!("../examples/notifications/orders-whatsapp-catalogue.yaml"),
    "base: &b {channel: slack, n: 007, ok: no}\n---\nkey: a\n<<: *b\nidentities:\n  - {email: a@x, customMessage: \"hi #1\", parameters: {n: 1.50, m: +49151}}\n  - &r {email: b@x, parameters: {n: 0x1F, on: y}}\n  - *r\n",
];

fn show(r: &Result<Vec<Node>, ParseError>) -> String {
    match r {
        Ok(d) => format!("{d:?}"),
        Err(e) => format!("error {}:{} {} (help: {:?})", e.pos.line, e.pos.column, e.message, e.help),
    }
}

/// A scalar that does not fit its tag or place (`!!int a`, `!!bool yes`, `.inf`, `<<: x`).
fn is_resolution(e: &ParseError) -> bool {
    [
        "invalid u64",
        "invalid i64",
        "invalid floating point",
        "invalid boolean",
        "non-finite float",
        "tagged scalar",
        "YAML merge value",
    ]
    .iter()
    .any(|m| e.message.starts_with(m))
}

/// Whether `text` spells a number the core schema does not have: a binary, signed or upper-case
/// radix prefix (`0b1`, `-0x1F`, `+0o7`, `0X1F`).
fn has_non_core_number(text: &str) -> bool {
    let b = text.as_bytes();
    (1..b.len()).any(|i| {
        b[i - 1] == b'0'
            && (matches!(b[i], b'b' | b'B' | b'X' | b'O')
                || matches!(b[i], b'x' | b'o') && i >= 2 && matches!(b[i - 2], b'+' | b'-'))
    })
}

fn is_budget(e: &ParseError) -> bool {
    e.message.contains("budget breached") || e.message.contains("alias replay")
}

/// Both paths agree on `text` (see the module docs for the two intended differences). Run on a
/// big stack: serde's recursion reaches the depth budget (64) on a debug build's frames.
fn agree(text: &str) -> Result<(), TestCaseError> {
    let text = text.to_string();
    let run = std::thread::Builder::new().stack_size(256 << 20).spawn(move || compare(&text));
    run.map_err(|e| TestCaseError::fail(e.to_string()))?.join().unwrap_or_else(|_| Err(TestCaseError::fail("panicked")))
}

fn compare(text: &str) -> Result<(), TestCaseError> {
    let new = yaml::parse_documents(text);
    let old = yaml::serde_path::parse_documents(text);
    match (&new, &old) {
        (Err(n), _) if n.message.contains("!!binary") => Ok(()),
        (Err(_), Err(o)) if o.message.contains("!!binary") => Ok(()),
        (Err(n), Err(o)) if is_budget(n) || is_budget(o) => Ok(()),
        (Err(n), Err(o)) if n.message != o.message && (is_resolution(n) || is_resolution(o)) => Ok(()),
        (Err(n), Err(o)) => {
            prop_assert_eq!(&n.pos, &o.pos, "{:?}\nnew {}\nold {}", text, show(&new), show(&old));
            prop_assert_eq!(&n.message, &o.message, "{:?}", text);
            prop_assert_eq!(&n.help, &o.help, "{:?}", text);
            Ok(())
        }
        (Ok(_), Ok(_)) if has_non_core_number(text) => Ok(()),
        (Ok(n), Ok(o)) => {
            prop_assert_eq!(n, o, "{:?}", text);
            Ok(())
        }
        _ => Err(TestCaseError::fail(format!("{text:?}\nnew {}\nold {}", show(&new), show(&old)))),
    }
}

/// One edit of a manifest: a byte replaced, inserted or removed; a line removed, repeated or
/// swapped with the next.
#[derive(Clone, Debug)]
enum Edit {
    Byte(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    DropLine(usize),
    RepeatLine(usize),
    SwapLines(usize),
}

fn edit(text: &str, e: &Edit) -> String {
    let mut b = text.as_bytes().to_vec();
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let n = lines.len().max(1);
    match *e {
        Edit::Byte(i, c) if !b.is_empty() => {
            let at = i % b.len();
            b[at] = c;
        }
        Edit::Insert(i, c) => b.insert(i % (b.len() + 1), c),
        Edit::Remove(i) if !b.is_empty() => drop(b.remove(i % b.len())),
        Edit::DropLine(i) if !lines.is_empty() => drop(lines.remove(i % n)),
        Edit::RepeatLine(i) if !lines.is_empty() => lines.insert(i % n, lines[i % n]),
        Edit::SwapLines(i) if lines.len() > 1 => lines.swap(i % (n - 1), i % (n - 1) + 1),
        _ => {}
    }
    if matches!(e, Edit::DropLine(_) | Edit::RepeatLine(_) | Edit::SwapLines(_)) {
        return lines.concat();
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    let byte = prop::sample::select(b" \n\t-:,[]{}&*!#'\"|>?<~0.x%@".to_vec());
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, c)| Edit::Byte(i, c)),
        (any::<usize>(), byte).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::DropLine),
        any::<usize>().prop_map(Edit::RepeatLine),
        any::<usize>().prop_map(Edit::SwapLines),
    ]
}

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "key: ",
        "- ",
        "&a ",
        "&b ",
        "*a ",
        "*b ",
        "[",
        "]",
        "{",
        "}",
        ": ",
        ", ",
        "\n",
        "  ",
        "---\n",
        "...\n",
        "!!binary ",
        "!!str ",
        "!!int ",
        "!!float ",
        "!!bool ",
        "!!null ",
        "!!seq ",
        "!!map ",
        "! ",
        "!x ",
        "'",
        "\"",
        "<<: ",
        "# c\n",
        " #x",
        "x",
        "1",
        "007",
        "1_0",
        "0x1F",
        "0b101",
        "-0x1F",
        "0X1F",
        "+0o17",
        "0o17",
        "1:20",
        "+1",
        "-2",
        "1.50",
        "1e3",
        ".inf",
        "no",
        "on",
        "y",
        "true",
        "True",
        "~",
        "null",
        "|\n",
        ">-\n",
        "? ",
        "%YAML 1.2\n",
        "\t",
        "é",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn event_tree_agrees_with_serde_on_arbitrary_text(text in "(?s).{0,300}") {
        agree(&text)?;
    }

    #[test]
    fn event_tree_agrees_with_serde_on_yaml_tokens(parts in prop::collection::vec(token(), 0..120)) {
        agree(&parts.concat())?;
    }

    #[test]
    fn event_tree_agrees_with_serde_on_mutated_manifests(
        m in 0..MANIFESTS.len(),
        edits in prop::collection::vec(arb_edit(), 0..6),
    ) {
        let text = edits.iter().fold(MANIFESTS[m].to_string(), |t, e| edit(&t, e));
        agree(&text)?;
    }
}

#[test]
fn the_parity_check_can_fail() {
    // A tree with a different position must not pass.
    let text = "a: 1\n";
    let mut docs = yaml::parse_documents(text).unwrap_or_default();
    docs[0].pos.line = 9;
    assert_ne!(Ok(docs), yaml::serde_path::parse_documents(text).map_err(|e| e.message));
}

#[test]
fn known_cases_agree() {
    for text in [
        "base: &b {a: 1, c: 2}\nm:\n  <<: [*b, {a: 9, d: 4}]\n  c: 3\n",
        "x:\n  b: 0\n  b: [1, 2]\n",
        "x: {b: 0, b: 1}\n",
        "a: &x [1, &y {k: v}]\nb: *x\nc: *y\n",
        "a: &a [*a]\n",
        "<<: 5\n",
        "&k key: 1\n*k : 2\n",
        "--- &a x\n--- *a\n",
        "- !!int 0x10\n- 010\n- 1_000\n- +12\n- 1.50\n- yes\n- True\n- Null\n- \"null\"\n- !\n",
        "- 0b101\n- -0x1F\n- 0X1F\n- 0o17\n- +0o17\n- 1:20\n- !!int 0b101\n- &n 0b1\n- *n\n0b11: k\n",
        "a: [0b101, -0x1F, {0X1F: 0b1}]\n",
        "- !!int 010\n",
        "x: .inf\n",
        "x: [1, 2\n",
        "value: {name}, your order\n",
        &format!("key: {}{}\n", "[".repeat(100), "]".repeat(100)),
    ] {
        if let Err(e) = agree(text) {
            panic!("{e}");
        }
    }
}

#[test]
fn binary_is_refused() {
    let e = yaml::parse_documents("x: !!binary aGVsbG8=\n").err().map(|e| (e.pos.line, e.pos.column, e.message));
    assert_eq!(e, Some((1, 13, "binary values (!!binary) are not supported".to_string())));
}
