//! What each recipient of an accepted request reads: the emulator's own placeholder filling, not
//! the client's scanner (`src/manifest.rs`), because the emulator is the oracle the client's
//! previews are tested against; sharing the code would make a bug in it invisible to the tests.
//!
//! The rule, as Kore.ai documents it by example (`Hello {name}!`): `{` + a name + `}` is replaced
//! by the parameter of that name, where a name is one or more ASCII letters, digits, `_`, `.` or
//! `-`. Everything else is delivered as written: a placeholder without a parameter, braces around
//! anything that is not a name, a `{` whose next brace is another `{`. Written as one plain pass
//! over the characters.

use serde_json::{Map, Value};

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'
}

/// `text` with its placeholders filled from `params` (string values; others as JSON).
pub(super) fn fill(text: &str, params: &Map<String, Value>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '{' {
            // The name runs to the next brace; it is a placeholder only if that brace closes it.
            let mut j = i + 1;
            while j < chars.len() && name_char(chars[j]) {
                j += 1;
            }
            if j > i + 1 && j < chars.len() && chars[j] == '}' {
                let name: String = chars[i + 1..j].iter().collect();
                if let Some(v) = params.get(&name) {
                    out.push_str(&as_text(v));
                    i = j + 1;
                    continue;
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// A JSON value as the text a recipient reads.
pub(super) fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The text each identity of a valid body reads, in order. v1: the message. v2: the identity's
/// customMessage filled with its parameters; without one, the main message, filled with the
/// parameters when `mode` is `message`, as written when it is `custom-only`.
pub(super) fn delivered_texts(v2: bool, body: &Value, mode: &str) -> Vec<String> {
    let ids = body.get("identities").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if !v2 {
        let m = body.pointer("/message/val").map(as_text).unwrap_or_default();
        return vec![m; ids.len()];
    }
    let main = body.pointer("/message/value").or_else(|| body.pointer("/content/value")).map(as_text);
    let main = main.unwrap_or_default();
    let none = Map::new();
    ids.iter()
        .map(|id| {
            let params = id.get("parameters").and_then(Value::as_object).unwrap_or(&none);
            match id.get("customMessage").and_then(Value::as_str) {
                Some(cm) => fill(cm, params),
                None if mode == "custom-only" => main.clone(),
                None => fill(&main, params),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_are_filled_and_everything_else_is_kept() {
        let p = json!({"name": "Ann", "ref.id": "R-1", "a-b_c": "x", "n": 5, "empty": ""});
        let p = p.as_object().cloned().unwrap_or_default();
        for (text, read) in [
            ("Hello {name}!", "Hello Ann!"),
            ("{name}{name}", "AnnAnn"),
            ("ref {ref.id} {a-b_c}", "ref R-1 x"),
            ("{missing} stays", "{missing} stays"),
            ("{{name}}", "{Ann}"),
            ("{ name }", "{ name }"),
            ("{}", "{}"),
            ("{na{name}}", "{naAnn}"),
            ("{name", "{name"),
            ("name}", "name}"),
            ("{n} and {empty}.", "5 and ."),
            ("{日本}", "{日本}"),
            ("function() { return {name}; }", "function() { return Ann; }"),
        ] {
            assert_eq!(fill(text, &p), read, "{text}");
        }
    }

    #[test]
    fn each_identity_reads_its_own_text() {
        let v1 = json!({"message": {"val": "Hi {name}"}, "identities": ["a", "b"]});
        assert_eq!(delivered_texts(false, &v1, "message"), vec!["Hi {name}", "Hi {name}"]);
        let v2 = json!({"message": {"value": "Hi {name}"}, "identities": [
            {"email": "a", "parameters": {"name": "A"}},
            {"email": "b", "customMessage": "Yo {name}", "parameters": {"name": "B"}},
            {"email": "c"},
        ]});
        assert_eq!(delivered_texts(true, &v2, "message"), vec!["Hi A", "Yo B", "Hi {name}"]);
        assert_eq!(delivered_texts(true, &v2, "custom-only"), vec!["Hi {name}", "Yo B", "Hi {name}"]);
    }
}
