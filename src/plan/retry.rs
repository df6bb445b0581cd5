//! What a run sends again besides new and changed recipients (`--retry-unknown`,
//! `--retry-failed`), checked against the state before a plan is computed: a key that is not
//! there is refused, never read as "nothing" or "everything".

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
    /// The options whose "everything" was spelt `all` (not bare): refused while a notification
    /// is keyed `all`, which the user may have meant.
    pub(crate) said_all: Vec<&'static str>,
}

/// Refuses `--retry-unknown=KEY#REQ` / `--retry-failed=KEY` naming something that is not there:
/// a typo must not quietly retry nothing (or the user think it retried something).
pub(crate) fn check_retry(state: &state::State, retry: &Retry) -> Result<()> {
    let all = crate::args::ALL;
    for option in &retry.said_all {
        if state.notifications.contains_key(all) {
            return Err(Error::Refused(format!(
                "{option}={all} is ambiguous: a notification is keyed `{all}`; write {option} without a value for every notification, or {option}={all}#N for a request of `{all}`"
            )));
        }
    }
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
