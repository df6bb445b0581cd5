//! The JSON Schema source of `rollout` (manifests, targets and the top of the config), as users
//! write it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Canary waves: the notification is sent in growing waves, and the next wave leaves only when
/// the previous one's requests are terminal (status refresh), `observe` has passed since it was
/// sent, and its failure rate is at or under `maxFailureRate`. Above it the notification halts
/// until `kore-notify state resume KEY` or a content change. `off`: everyone at once, even when the
/// target (or the top of the config) has a rollout.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RolloutSettingDoc {
    Off(RolloutOffDoc),
    Rollout(RolloutDoc),
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RolloutOffDoc {
    Off,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RolloutDoc {
    /// Cumulative wave sizes, growing, the last `"100%"`: a number of recipients or a quoted
    /// percentage of the rollout's recipients (`[50, "10%", "100%"]`). Recipients are cut in a
    /// stable order (a hash of the key and the identity).
    #[schemars(length(min = 1, max = 20))]
    pub(crate) waves: Vec<WaveDoc>,
    /// How long after a wave was sent the next may leave (`15m`, `1h`); default 15m, at most 7d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) observe: Option<String>,
    /// The share of failed deliveries a wave may reach (`"2%"`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\s*[0-9]{1,3}(\.[0-9]{1,2})?\s*%\s*$"))]
    pub(crate) max_failure_rate: Option<String>,
    /// Reported deliveries needed before the rate is judged (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000_000))]
    pub(crate) min_sample: Option<u64>,
    /// Failures whose Kore.ai comment contains one of these (case ignored) are not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ignore_reasons: Option<Vec<String>>,
}

/// A number of recipients, or a quoted percentage.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum WaveDoc {
    Count(#[schemars(range(min = 1))] u64),
    Percent(#[schemars(regex(pattern = r"^\s*[0-9]{1,3}(\.[0-9]{1,2})?\s*%\s*$"))] String),
}

#[cfg(test)]
mod tests {
    #[test]
    fn loader_fields_match_schema() {
        crate::assert_fields_match_schema::<super::RolloutDoc>(super::super::parse::FIELDS);
    }
}
