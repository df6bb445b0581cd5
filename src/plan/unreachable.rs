//! How a plan says who is unreachable (see `crate::unreachable`): counted in every plan, left out
//! with `skipUnreachable: true`.

use super::*;

/// The part of a notification's reason about its unreachable recipients, when it has any.
pub(super) fn reason(n: &Notification, counts: &Counts) -> Option<String> {
    if counts.unreachable == 0 {
        return None;
    }
    let why = "their last delivery on this channel failed for a permanent reason, e.g. Identity is not associated with the channel";
    Some(if counts.unreachable_skipped > 0 {
        format!(
            "{} recipient(s) unreachable ({why}); {} of them left out (skipUnreachable: true)",
            counts.unreachable, counts.unreachable_skipped
        )
    } else if n.skip_unreachable == Some(false) {
        format!("{} recipient(s) unreachable ({why}); sent anyway (skipUnreachable: false)", counts.unreachable)
    } else {
        format!(
            "{} recipient(s) unreachable ({why}); `skipUnreachable: true` on the manifest (or the target) leaves them out",
            counts.unreachable
        )
    })
}
