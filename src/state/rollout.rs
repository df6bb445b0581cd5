//! What a notification's canary rollout recorded: the waves started for one content, and a halt
//! with its figures (see `crate::rollout` for the gate that reads it). A rollout belongs to the
//! content it was started for: a changed content starts a new one, and an old halt stops nothing.

use serde::{Deserialize, Serialize};

/// The rollout of one content of a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRecord {
    /// The content digest it is for ([`crate::fingerprint::content_digest`]).
    pub(crate) digest: String,
    /// The waves started, in order.
    pub(crate) waves: Vec<WaveMark>,
    /// Set when a wave's failure rate went over the limit: nothing more is sent until
    /// `state resume` (or a content change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) halt: Option<HaltRecord>,
    /// Waves before this one are not judged again (a `state resume` accepted them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) judged_from: u32,
    /// Resumes recorded, with who and when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) resumed: Vec<ResumeRecord>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A wave started: its index (0 is wave 1), the recipients the rollout reaches with it
/// (cumulative), and the first request that carried it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaveMark {
    pub(crate) wave: u32,
    pub(crate) upto: u64,
    pub(crate) from_req: u32,
    pub(crate) at: String,
}

/// The figures a rollout halted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HaltRecord {
    /// The waves judged (0-based, inclusive): `first` to `wave`.
    pub(crate) first: u32,
    pub(crate) wave: u32,
    /// Failed deliveries (ignored reasons excluded) among `sample` reported ones.
    pub(crate) failed: u64,
    pub(crate) sample: u64,
    /// The limit, in hundredths of a percent (`2%` is 200).
    pub(crate) limit: u32,
    pub(crate) at: String,
}

/// A `state resume`: who and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResumeRecord {
    pub(crate) actor: String,
    pub(crate) at: String,
    /// The halt it lifted, in words.
    pub(crate) halt: String,
}

impl HaltRecord {
    /// `7.4% failed in wave 1 (limit 2%)`, `3.0% failed in waves 2–3 (limit 2%)`.
    pub(crate) fn line(&self) -> String {
        let waves = if self.first == self.wave {
            format!("wave {}", self.wave + 1)
        } else {
            format!("waves {}–{}", self.first + 1, self.wave + 1)
        };
        format!(
            "{} failed in {waves} (limit {}; {} of {} reported deliveries)",
            percent_of(self.failed, self.sample),
            crate::rollout::percent(self.limit),
            self.failed,
            self.sample
        )
    }
}

/// `7.4%`: one decimal.
pub(crate) fn percent_of(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}
