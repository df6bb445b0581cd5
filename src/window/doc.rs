//! The JSON Schema source of `deliveryWindow` (manifests, targets and the top of the config), as
//! users write it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// When each recipient may be sent, in their local time: on the listed days, from `from` until
/// `to` (a `to` earlier than `from` runs across midnight into the next day), in `timezone`. The
/// window opens when the local clock first shows `from` and closes when it first shows `to`: a
/// time the daylight-saving change skips opens it at the jump, a time shown twice means the
/// first. Recipients outside their window are not sent; a later apply (a scheduled run) sends
/// them once it opens. `off`: no window, even when the target (or the top of the config) has one.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum DeliveryWindowDoc {
    Off(OffDoc),
    Window(WindowDoc),
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OffDoc {
    Off,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WindowDoc {
    /// The days the window opens on, each once. Default: every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 7))]
    pub(crate) days: Option<Vec<DayDoc>>,
    /// Local opening time, HH:MM on the 24-hour clock.
    #[schemars(regex(pattern = r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$"))]
    pub(crate) from: String,
    /// Local closing time, HH:MM (24:00: the end of the day); earlier than `from`: the next day.
    #[schemars(regex(pattern = r"^(([01]?[0-9]|2[0-3]):[0-5][0-9]|24:00)$"))]
    pub(crate) to: String,
    pub(crate) timezone: ZoneDoc,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DayDoc {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// An IANA time zone (Europe/Berlin, America/New_York, UTC), or `{parameter: NAME}`: each
/// recipient's zone from their parameter NAME (a CSV column or an inline parameter).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum ZoneDoc {
    Named(String),
    Parameter(ParameterZoneDoc),
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ParameterZoneDoc {
    /// The recipients' parameter holding their IANA zone.
    pub(crate) parameter: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn loader_fields_match_schema() {
        crate::assert_fields_match_schema::<super::WindowDoc>(super::super::parse::FIELDS);
        crate::assert_fields_match_schema::<super::ParameterZoneDoc>(super::super::parse::ZONE_FIELDS);
    }
}
