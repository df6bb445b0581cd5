//! What Kore.ai's status API reported for a recipient: a delivery status and its comment.
//!
//! Kore.ai answers every successful delivery with the same boilerplate comment ("Notification has
//! been sent successfully"), and every failure of a kind with the same text. Kept per recipient,
//! a million reported recipients grew a 38 MB snapshot to 170 MB. So each distinct (status,
//! comment) is kept once, in the notification's table (`deliveries`), and a recipient refers to
//! it by index: in memory (`RecipientState::delivery`), in the snapshot (` #0` on the recipient's
//! line, three bytes whatever the text) and in the journal (a status entry lists its distinct
//! comments once). In PostgreSQL, comments are rows of their own, referred to by id.
//!
//! The table's order is stable: a new text is appended, so a new or changed delivery changes its
//! recipient's line and adds at most one table line. Texts nobody refers to any more are dropped
//! when a status is recorded: from the end of the table always, from anywhere once they outnumber
//! the texts in use (later indices then move). The table stays bounded by what is in use,
//! whatever a server reports, and in the usual case a change stays a one-line diff.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One reported outcome: Kore.ai's delivery status (SUCCESS, FAILURE, …) and its comment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Delivery {
    pub(crate) status: String,
    pub(crate) comment: Option<String>,
}

/// Whether a delivery status fits in a one-word form (a line of the snapshot, a table entry).
pub(super) fn plain_word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Delivery {
    /// Whether Kore.ai reported the delivery as failed.
    pub(crate) fn failed(&self) -> bool {
        matches!(self.status.as_str(), "FAILURE" | "FAILED")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Obj {
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

/// A table entry is one string, `STATUS` or `STATUS COMMENT` (split at the first space); a status
/// that is not one plain word is an object `{"status", "comment"}`.
impl Serialize for Delivery {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !plain_word(&self.status) {
            return Obj { status: self.status.clone(), comment: self.comment.clone() }.serialize(s);
        }
        match &self.comment {
            None => s.serialize_str(&self.status),
            Some(c) => s.serialize_str(&format!("{} {c}", self.status)),
        }
    }
}

impl<'de> Deserialize<'de> for Delivery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Delivery, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Delivery;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a delivery: \"STATUS[ COMMENT]\" or {\"status\", \"comment\"}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Delivery, E> {
                let (status, comment) = match v.split_once(' ') {
                    Some((s, c)) => (s, Some(c.to_string())),
                    None => (v, None),
                };
                if !plain_word(status) {
                    return Err(E::custom(format!("`{status}` is not a delivery status")));
                }
                Ok(Delivery { status: status.to_string(), comment })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, m: A) -> Result<Delivery, A::Error> {
                let o = Obj::deserialize(de::value::MapAccessDeserializer::new(m))?;
                Ok(Delivery { status: o.status, comment: o.comment })
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Delivery {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Delivery".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A delivery status reported by Kore.ai and its comment, kept once per notification: \"STATUS\" or \"STATUS COMMENT\" (split at the first space), or an object when the status is not one word.",
            "anyOf": [
                {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}( [\\s\\S]*)?$"},
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["status"],
                    "properties": {"status": {"type": "string"}, "comment": {"type": "string"}}
                }
            ]
        })
    }
}

/// Adds deliveries to a table, each distinct one once. Lookups of the same borrowed (status,
/// comment) are cached, so recording a thousand recipients with two texts costs two searches.
pub(super) struct Interner<'t, 'e> {
    table: &'t mut Vec<Delivery>,
    seen: HashMap<(&'e str, Option<&'e str>), u32>,
}

impl<'t, 'e> Interner<'t, 'e> {
    pub(super) fn new(table: &'t mut Vec<Delivery>) -> Self {
        Interner { table, seen: HashMap::new() }
    }

    /// The index of (`status`, `comment`) in the table, appended when it is new.
    pub(super) fn index(&mut self, status: &'e str, comment: Option<&'e str>) -> u32 {
        if let Some(i) = self.seen.get(&(status, comment)) {
            return *i;
        }
        let found = self.table.iter().position(|d| d.status == status && d.comment.as_deref() == comment);
        let i = found.unwrap_or_else(|| {
            self.table.push(Delivery { status: status.to_string(), comment: comment.map(str::to_string) });
            self.table.len() - 1
        }) as u32;
        self.seen.insert((status, comment), i);
        i
    }
}

/// The index of `d` in `table`, appended when it is new (reading older formats: a few texts).
pub(super) fn intern(table: &mut Vec<Delivery>, d: Delivery) -> u32 {
    match table.iter().position(|t| *t == d) {
        Some(i) => i as u32,
        None => {
            table.push(d);
            (table.len() - 1) as u32
        }
    }
}

/// Drops unused entries (see the module doc): `used[i]` says whether entry `i` is referred to.
/// Returns the new index of every old one when entries other than the last ones were dropped (the
/// caller then renumbers its references), `None` when no reference moves.
pub(super) fn prune(table: &mut Vec<Delivery>, used: &[bool]) -> Option<Vec<u32>> {
    let in_use = used.iter().filter(|u| **u).count();
    if table.len() - in_use > in_use {
        let mut map = vec![u32::MAX; table.len()];
        let mut next = 0;
        let old = std::mem::take(table);
        for (i, d) in old.into_iter().enumerate() {
            if used[i] {
                map[i] = next;
                next += 1;
                table.push(d);
            }
        }
        return Some(map);
    }
    while !table.is_empty() && !used[table.len() - 1] {
        table.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(status: &str, comment: Option<&str>) -> Delivery {
        Delivery { status: status.into(), comment: comment.map(Into::into) }
    }

    #[test]
    fn entries_round_trip_as_one_string_or_an_object() {
        for x in [
            d("SUCCESS", Some("Notification has been sent successfully")),
            d("SUCCESS", None),
            d("FAILURE", Some("")),
            d("FAILURE", Some(" leading space, and \"quotes\" ")),
            d("IN PROGRESS", Some("x")),
            d("", None),
        ] {
            let json = serde_json::to_string(&x).expect("serialize");
            assert_eq!(serde_json::from_str::<Delivery>(&json).expect(&json), x, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&d("SUCCESS", Some("Notification has been sent successfully"))).expect("json"),
            "\"SUCCESS Notification has been sent successfully\""
        );
        assert!(serde_json::from_str::<Delivery>("\"no/word here\"").is_err());
    }

    #[test]
    fn pruning_keeps_indices_unless_unused_entries_outnumber_used_ones() {
        let mut t = vec![d("A", None), d("B", None), d("C", None), d("D", None)];
        // Unused at the end: dropped, nothing moves.
        assert_eq!(prune(&mut t, &[true, false, true, false]), None);
        assert_eq!(t.len(), 3);
        // One unused in the middle, fewer than the used ones: kept.
        assert_eq!(prune(&mut t, &[true, false, true]), None);
        assert_eq!(t.len(), 3);
        // Two unused, one used: renumbered.
        assert_eq!(prune(&mut t, &[false, false, true]), Some(vec![u32::MAX, u32::MAX, 0]));
        assert_eq!(t, vec![d("C", None)]);
        assert_eq!(prune(&mut t, &[false]), Some(vec![u32::MAX]));
        assert!(t.is_empty());
    }

    #[test]
    fn the_interner_adds_each_distinct_delivery_once() {
        let mut t = vec![d("SUCCESS", Some("ok"))];
        let mut i = Interner::new(&mut t);
        assert_eq!(i.index("SUCCESS", Some("ok")), 0);
        assert_eq!(i.index("FAILURE", Some("no")), 1);
        assert_eq!(i.index("FAILURE", Some("no")), 1);
        assert_eq!(i.index("SUCCESS", None), 2);
        assert_eq!(t.len(), 3);
        assert_eq!(intern(&mut t, d("FAILURE", Some("no"))), 1);
    }
}
