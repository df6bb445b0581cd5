//! `kore-notify state resume KEY`: lifts a canary rollout's halt, recorded in the state with who
//! and when (the halt's figures stay beside it). The waves the halt judged are accepted: the next
//! wave's gate judges only the waves sent after this. Nothing is sent by it; the next apply asks
//! the gate again.

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::ops::Global;
use crate::state::{Entry, ResumeRecord, StateStore};

pub(crate) fn resume(g: &Global, store: &dyn StateStore, key: &str) -> Result<Exit> {
    let mut session = g.open(store, "kore-notify state resume")?;
    let n = session
        .state()
        .notifications
        .get(key)
        .ok_or_else(|| Error::Refused(format!("no notification `{key}` in the state")))?;
    let Some(halt) = n.rollout.as_ref().and_then(|r| r.halt.as_ref()) else {
        return Err(Error::Refused(format!(
            "`{key}` is not halted: its rollout has no halt to lift (`kore-notify plan` shows its waves)"
        )));
    };
    let line = halt.line();
    let actor = ["GITHUB_ACTOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| g.env().get(v).filter(|a| !a.trim().is_empty()))
        .map_or_else(|| "unknown".to_string(), |a| crate::safe::line(&a).chars().take(100).collect());
    let record = ResumeRecord { actor, at: g.clock.stamp(), halt: line.clone() };
    session.record(&Entry::Resume { key: key.to_string(), record })?;
    session.compact()?;
    g.shell.outln(crate::safe::for_output(&crate::safe::line(&format!(
        "resumed `{key}` (it had halted: {line}); the next apply sends its next wave once the gate opens"
    ))));
    Ok(Exit::Ok)
}
