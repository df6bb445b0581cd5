//! Keys the state retired (tombstones), checked against the manifests before a plan is made.

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::manifest::Notification;

/// Keys retired by the state (tombstones): using one again is an error unless the manifest says
/// `reuseRetiredKey: true`; so is renaming from one (its history is gone). Reported by `validate`
/// (errors and warnings), `plan` and `apply` (errors).
///
/// `reuseRetiredKey: true` on a key that is not retired (any more) is a warning: left in place, it
/// would silently undo a later retirement of the same key.
pub(crate) fn check_retired(ns: &[Notification], state: &crate::state::State, diags: &mut Diagnostics) {
    for n in ns {
        let pos = Pos { line: n.source.line, column: n.source.column };
        if n.reuse_retired_key && !state.tombstones.contains_key(&n.key) {
            diags.push(
                Diagnostic::warning(
                    &n.source.file,
                    pos.clone(),
                    "reuseRetiredKey",
                    format!("`{}` is not a retired key: reuseRetiredKey has no effect", crate::safe::line(&n.key)),
                )
                .help("remove `reuseRetiredKey: true` once the key is reused, so that a later retirement is not silently undone"),
            );
        }
        if let Some(t) = state.tombstones.get(&n.key)
            && !n.reuse_retired_key
        {
            diags.push(
                Diagnostic::error(
                    &n.source.file,
                    pos.clone(),
                    "key",
                    format!(
                        "key `{}` was retired at {} (orphaned since {}, its per-recipient records dropped after the retention)",
                        crate::safe::line(&n.key),
                        t.tombstoned_at,
                        t.orphaned_since
                    ),
                )
                .help(
                    "pick a new key; or, to send it again as a new notification to everyone listed, add `reuseRetiredKey: true` to this manifest",
                ),
            );
        }
        for p in n.previous_keys.iter().filter(|p| state.tombstones.contains_key(p.as_str())) {
            diags.push(
                Diagnostic::error(
                    &n.source.file,
                    pos.clone(),
                    "previousKeys",
                    format!("`{}` was retired (a tombstone): there is no history to continue", crate::safe::line(p)),
                )
                .help("remove it from previousKeys"),
            );
        }
    }
}
