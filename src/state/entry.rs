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
    Status {
        key: String,
        req: u32,
        status: String,
        delivered: u32,
        failed: u32,
        /// (recipient hash, status, comment)
        recipients: Vec<(RecipientHash, String, Option<String>)>,
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
}
