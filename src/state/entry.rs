//! The journal's entries: every change to a state is one of these, recorded durably, then folded
//! by `State::replay` (live and on replay alike).

use super::*;

/// One journal line.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Entry {
    /// First line of a journal: which snapshot it continues.
    Begin {
        lineage: String,
        serial: u64,
        at: String,
    },
    Intent {
        key: String,
        req: u32,
        batch: String,
        channel: Channel,
        api: Api,
        content: StoredContent,
        /// (recipient hash, fingerprint)
        recipients: Vec<(RecipientHash, Fingerprint)>,
        at: String,
    },
    Outcome {
        key: String,
        req: u32,
        outcome: Outcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// `onChange: ignore`: new fingerprints recorded without sending.
    Record {
        key: String,
        channel: Channel,
        api: Api,
        content: StoredContent,
        recipients: Vec<(RecipientHash, Fingerprint)>,
        at: String,
    },
    /// Unknown requests settled by a decision (`state resolve`) or by Kore's status API.
    Resolve {
        key: String,
        sent: bool,
        /// The request settled; absent (journals of older versions): every unknown request of `key`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u32>,
    },
    /// Unknown requests of `key` about to be retried (`--retry-unknown`).
    Retry {
        key: String,
        /// The request retried; absent (journals of older versions): every unknown request of `key`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u32>,
    },
    /// A job status from Kore.ai's status API, with the recipients whose reported delivery changed.
    Status {
        key: String,
        req: u32,
        status: String,
        delivered: u32,
        failed: u32,
        /// The distinct comments of `recipients`, each once.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        comments: Vec<String>,
        /// (recipient hash, status, comment): the comment an index into `comments` (journals of
        /// earlier versions: the text itself).
        recipients: Vec<(RecipientHash, String, Option<CommentRef>)>,
    },
    Rename {
        from: String,
        to: String,
    },
    Remove {
        key: String,
    },
    /// `key` is in the state but no longer in the manifests since `since`; `None`: it is back.
    Orphan {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// `key`, orphaned longer than the retention with every request settled, replaced by a
    /// tombstone (its recipients dropped).
    Retire {
        key: String,
        at: String,
    },
    /// The tombstone of `key` dropped: a manifest reuses the key (`reuseRetiredKey: true`).
    Revive {
        key: String,
    },
    /// `key` is declared by the repository whose identity digests to `origin`: only that
    /// repository judges it orphaned (several repositories may share a state).
    Claim {
        key: String,
        origin: String,
    },
    /// A gate of `key` passed knowingly, recorded before anything is sent: `apply --skip-promotion
    /// KEY --reason TEXT` (gate `promotion`), or `apply --override-policy --reason TEXT` (gate
    /// `policy`: sent despite the `require` rules named, without their approvals). Creates the
    /// notification when it is new.
    Override {
        key: String,
        channel: Channel,
        api: Api,
        content: StoredContent,
        record: Override,
    },
    /// A test send (`kore-notify test-send`), recorded in the test ledger (never in the
    /// recipients' state) before the intent of the request that carries it.
    TestSend {
        key: String,
        channel: Channel,
        api: Api,
        content: StoredContent,
        record: TestSend,
    },
    /// A canary wave of `key` starts (journaled before its first request): wave `wave` (0-based)
    /// of the rollout of the content digesting to `digest`, reaching `upto` recipients in all,
    /// its requests from `from_req` on. Creates the notification when it is new.
    Wave {
        key: String,
        channel: Channel,
        api: Api,
        content: StoredContent,
        digest: String,
        wave: u32,
        upto: u64,
        from_req: u32,
        at: String,
    },
    /// The rollout of `key` (content `digest`) halts: a wave's failure rate went over the limit.
    Halt {
        key: String,
        digest: String,
        halt: HaltRecord,
    },
    /// `state resume KEY`: the halt lifted, the waves it judged accepted.
    Resume {
        key: String,
        record: ResumeRecord,
    },
}

/// A recipient's comment in a status entry: an index into the entry's `comments`, or the text
/// itself (as journals of earlier versions wrote it).
#[derive(Clone, Debug, PartialEq)]
pub enum CommentRef {
    Index(u32),
    Text(String),
}

impl Serialize for CommentRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            CommentRef::Index(i) => s.serialize_u32(*i),
            CommentRef::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for CommentRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<CommentRef, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CommentRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a comment index or a comment")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<CommentRef, E> {
                u32::try_from(v).map(CommentRef::Index).map_err(|_| E::custom("comment index out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<CommentRef, E> {
                Ok(CommentRef::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for CommentRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CommentRef".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An index into the entry's comments, or (journals of earlier versions) the comment itself.",
            "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]
        })
    }
}
