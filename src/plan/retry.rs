//! What a run sends again besides new and changed recipients (`--retry-unknown`,
//! `--retry-failed`), checked against the state before a plan is computed.

use super::Select;
use crate::error::{Error, Result};
use crate::state;

/// What a plan sends again besides new and changed recipients.
#[derive(Clone, Debug, Default)]
pub(crate) struct Retry {
    /// `--retry-unknown[=KEY[#REQ]]`: requests with an unknown outcome.
    pub(crate) unknown: Select,
    /// `--retry-failed[=KEY]`: recipients whose delivery failed.
    pub(crate) failed: Select,
}

/// Refuses `--retry-unknown=KEY#REQ` / `--retry-failed=KEY` naming something that is not there:
/// a typo must not quietly retry nothing (or the user think it retried something).
pub(crate) fn check_retry(state: &state::State, retry: &Retry) -> Result<()> {
    if let Select::Some(list) = &retry.unknown {
        for (key, req) in list {
            let n = state.notifications.get(key).ok_or_else(|| {
                Error::Refused(format!("--retry-unknown={key}: no notification `{key}` in the state"))
            })?;
            let found = n.unknown_requests().any(|(i, _)| req.is_none_or(|r| r == i));
            if !found {
                let which = req.map_or_else(|| format!("`{key}`"), |r| format!("request #{r} of `{key}`"));
                return Err(Error::Refused(format!(
                    "--retry-unknown: {which} has no unknown outcome; `kore-notify plan` lists the unknown requests"
                )));
            }
        }
    }
    if let Select::Some(list) = &retry.failed {
        for (key, req) in list {
            if req.is_some() {
                return Err(Error::Refused(format!(
                    "--retry-failed={key}#…: failed deliveries are retried per notification; write --retry-failed={key}"
                )));
            }
            if !state.notifications.contains_key(key) {
                return Err(Error::Refused(format!("--retry-failed={key}: no notification `{key}` in the state")));
            }
        }
    }
    Ok(())
}
