//! A writer's session on a PostgreSQL store: each entry folded into the state, then written as
//! the rows it changed (read from the state before and after it), one transaction each.

use super::*;

/// The notification an entry is about.
fn entry_key(e: &Entry) -> Option<&str> {
    match e {
        Entry::Intent { key, .. }
        | Entry::Outcome { key, .. }
        | Entry::Record { key, .. }
        | Entry::Resolve { key, .. }
        | Entry::Retry { key, .. }
        | Entry::Status { key, .. }
        | Entry::Remove { key }
        | Entry::Orphan { key, .. }
        | Entry::Retire { key, .. }
        | Entry::Revive { key }
        | Entry::Claim { key, .. }
        | Entry::Override { key, .. }
        | Entry::TestSend { key, .. }
        | Entry::Wave { key, .. }
        | Entry::Halt { key, .. }
        | Entry::Resume { key, .. } => Some(key),
        Entry::Rename { from, .. } => Some(from),
        Entry::Begin { .. } => None,
    }
}

pub(super) struct PgSession {
    pub(super) data: Arc<Client>,
    pub(super) _lock: Client,
    pub(super) fence: Arc<Fence>,
    pub(super) shown: String,
    pub(super) loaded: Loaded,
    /// The recipients of each request sent in this session, so an answer is written in O(batch).
    pub(super) intents: HashMap<(String, u32), Vec<RecipientHash>>,
    /// Set when a write failed: the in-memory state may be ahead of the database, so nothing more
    /// is recorded (and so nothing more is sent).
    pub(super) broken: Option<String>,
    /// Last, so the connections are dropped first.
    pub(super) rt: Rt,
}

impl PgSession {
    fn db(&self, e: sql::Db) -> StateError {
        sql::db_error(&self.shown, &e)
    }

    /// What an entry will touch, read from the state before it is applied.
    fn before(&self, e: &Entry) -> (Vec<RecipientHash>, Vec<u32>, Ledger) {
        let st = &self.loaded.state;
        let pending_in = |key: &str, reqs: &[u32]| -> Vec<RecipientHash> {
            st.notifications
                .get(key)
                .map(|n| {
                    n.recipients
                        .iter()
                        .filter(|(_, r)| r.pending.as_ref().is_some_and(|p| reqs.contains(&p.req)))
                        .map(|(h, _)| *h)
                        .collect()
                })
                .unwrap_or_default()
        };
        let settled = |key: &str, req: &Option<u32>| -> Vec<u32> {
            st.notifications
                .get(key)
                .map(|n| n.unknown_requests().map(|(i, _)| i).filter(|i| req.is_none_or(|q| q == *i)).collect())
                .unwrap_or_default()
        };
        match e {
            Entry::Intent { key, req, recipients, .. } => {
                let known = st.notifications.get(key);
                let failed = |(h, fp): &&(RecipientHash, Fingerprint)| {
                    known.and_then(|n| n.recipients.get(h)).is_some_and(|r| {
                        r.fp.as_ref() == Some(fp)
                            && known.and_then(|n| n.delivery(r)).is_some_and(crate::state::Delivery::failed)
                    })
                };
                let retried = recipients.iter().filter(failed).copied().collect();
                (
                    recipients.iter().map(|(h, _)| *h).collect(),
                    vec![*req],
                    Ledger::Intent { req: *req, rows: recipients.clone(), retried },
                )
            }
            Entry::Outcome { key, req, outcome, .. } => {
                let touched = match self.intents.get(&(key.clone(), *req)) {
                    Some(list) => list.clone(),
                    None => pending_in(key, &[*req]),
                };
                let ledger = match outcome {
                    crate::state::Outcome::Accepted | crate::state::Outcome::ResolvedSent => {
                        Ledger::Current { rows: Vec::new() }
                    }
                    crate::state::Outcome::Rejected
                    | crate::state::Outcome::ResolvedNotSent
                    | crate::state::Outcome::NotSent => Ledger::Void { reqs: vec![*req], recipients: Vec::new() },
                    _ => Ledger::None,
                };
                (touched, vec![*req], ledger)
            }
            Entry::Resolve { key, sent, req } => {
                let reqs = settled(key, req);
                let ledger = if *sent {
                    Ledger::Current { rows: Vec::new() }
                } else {
                    Ledger::Void { reqs: reqs.clone(), recipients: Vec::new() }
                };
                (pending_in(key, &reqs), reqs, ledger)
            }
            Entry::Retry { key, req } => {
                let reqs = settled(key, req);
                (pending_in(key, &reqs), reqs.clone(), Ledger::Void { reqs, recipients: Vec::new() })
            }
            Entry::Status { req, recipients, .. } => {
                (recipients.iter().map(|(h, ..)| *h).collect(), vec![*req], Ledger::None)
            }
            Entry::Record { recipients, .. } => {
                (recipients.iter().map(|(h, _)| *h).collect(), Vec::new(), Ledger::Current { rows: recipients.clone() })
            }
            Entry::Begin { .. }
            | Entry::Rename { .. }
            | Entry::Remove { .. }
            | Entry::Orphan { .. }
            | Entry::Retire { .. }
            | Entry::Revive { .. }
            | Entry::Claim { .. }
            | Entry::Override { .. }
            | Entry::TestSend { .. }
            | Entry::Wave { .. }
            | Entry::Halt { .. }
            | Entry::Resume { .. } => (Vec::new(), Vec::new(), Ledger::None),
        }
    }

    /// The rows to write, read from the state after the entry was applied.
    fn change(
        &mut self,
        e: &Entry,
        (touched, prior): (Vec<RecipientHash>, HashMap<RecipientHash, Fingerprint>),
        reqs: Vec<u32>,
        ledger: Ledger,
    ) -> Option<Change> {
        let (key, special) = match e {
            Entry::Begin { .. } => return None,
            Entry::Rename { from, to } => (from.clone(), Special::Rename { to: to.clone() }),
            Entry::Remove { key } => (key.clone(), Special::Remove),
            Entry::Retire { key, .. } => {
                let t = self.loaded.state.tombstones.get(key).map(serde_json::to_value);
                (key.clone(), Special::Retire { tombstone: t.and_then(Result::ok).unwrap_or_default() })
            }
            Entry::Revive { key } => (key.clone(), Special::Revive),
            Entry::Intent { key, .. }
            | Entry::Outcome { key, .. }
            | Entry::Resolve { key, .. }
            | Entry::Retry { key, .. }
            | Entry::Status { key, .. }
            | Entry::Record { key, .. }
            | Entry::Orphan { key, .. }
            | Entry::Claim { key, .. }
            | Entry::Override { key, .. }
            | Entry::TestSend { key, .. }
            | Entry::Wave { key, .. }
            | Entry::Halt { key, .. }
            | Entry::Resume { key, .. } => (key.clone(), Special::None),
        };
        let mut ch = Change {
            key: key.clone(),
            doc: None,
            requests: Vec::new(),
            upsert: Vec::new(),
            existing: Vec::new(),
            delete: Vec::new(),
            relaxed: matches!(e, Entry::Outcome { .. } | Entry::Status { .. }),
            ledger,
            special,
        };
        if let Some(n) = self.loaded.state.notifications.get_mut(&key) {
            if matches!(
                e,
                Entry::Intent { .. }
                    | Entry::Record { .. }
                    | Entry::Orphan { .. }
                    | Entry::Claim { .. }
                    | Entry::Override { .. }
                    | Entry::TestSend { .. }
                    | Entry::Wave { .. }
                    | Entry::Halt { .. }
                    | Entry::Resume { .. }
            ) {
                ch.doc = Some(sql::doc_of(n));
            }
            // An intent's recipients are kept with its request (no recipient row changes: only
            // their pending send, which the request row holds).
            let intent = match e {
                Entry::Intent { recipients, .. } => Some(sql::encode_pairs(recipients)),
                _ => None,
            };
            ch.requests = reqs
                .iter()
                .filter_map(|q| n.requests.get(*q as usize).map(|r| (*q, r.clone(), intent.clone())))
                .collect();
            match &mut ch.ledger {
                // Only a recipient who had another content can have a send of it still standing.
                Ledger::Current { rows } => {
                    let now: Vec<(RecipientHash, Fingerprint)> = if rows.is_empty() {
                        touched
                            .iter()
                            .filter_map(|h| n.recipients.get(h).and_then(|r| r.fp).map(|fp| (*h, fp)))
                            .collect()
                    } else {
                        std::mem::take(rows)
                    };
                    rows.extend(now.into_iter().filter(|(h, fp)| prior.get(h).is_some_and(|old| old != fp)));
                }
                Ledger::Void { recipients, .. } => recipients.clone_from(&touched),
                _ => {}
            }
            if intent.is_none() {
                // A recipient has a row once it (certainly) received something.
                for h in touched {
                    match n.recipients.get(&h).filter(|r| r.fp.is_some()) {
                        Some(r) => {
                            ch.upsert.push((h, r.clone(), n.delivery(r).cloned()));
                            ch.existing.push(prior.contains_key(&h));
                        }
                        None if prior.contains_key(&h) => ch.delete.push(h),
                        None => {}
                    }
                }
            }
        }
        Some(ch)
    }
}

impl Session for PgSession {
    fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    fn state(&self) -> &State {
        &self.loaded.state
    }

    fn record(&mut self, e: &Entry) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(StateError::Database {
                url: self.shown.clone(),
                message: format!("nothing more is recorded: {why}"),
            });
        }
        let (touched, reqs, ledger) = self.before(e);
        // What they had received before (those have a row, updated in place; the others are
        // inserted).
        let prior: HashMap<RecipientHash, Fingerprint> = entry_key(e)
            .and_then(|k| self.loaded.state.notifications.get(k))
            .map(|n| touched.iter().filter_map(|h| n.recipients.get(h).and_then(|r| r.fp).map(|fp| (*h, fp))).collect())
            .unwrap_or_default();
        let table = entry_key(e).and_then(|k| self.loaded.state.notifications.get(k)).map(|n| n.deliveries.len());
        self.loaded.state.replay(e).map_err(StateError::Internal)?;
        let Some(mut change) = self.change(e, (touched, prior), reqs, ledger) else { return Ok(()) };
        // The document keeps the order of the deliveries' table: written again when it changed
        // (a change always changes its length: texts appended are in use, only unused ones go).
        if let Some(n) = self.loaded.state.notifications.get_mut(&change.key)
            && change.doc.is_none()
            && table.is_some_and(|len| len != n.deliveries.len())
        {
            change.doc = Some(sql::doc_of(n));
        }
        let (c, fence) = (self.data.clone(), self.fence.clone());
        let written =
            self.rt.run(async move { sql::write(&c, &fence, change).await }).and_then(|r| r.map_err(|e| self.db(e)));
        let failure = match written {
            Ok(Written::Done) => {
                if let Entry::Intent { key, req, recipients, .. } = e {
                    self.intents.insert((key.clone(), *req), recipients.iter().map(|(h, _)| *h).collect());
                }
                return Ok(());
            }
            Ok(Written::LostLock) => StateError::Database {
                url: self.shown.clone(),
                message: "the state lock was lost (its connection closed); nothing more is recorded or sent".into(),
            },
            Ok(Written::Duplicate) => StateError::Database {
                url: self.shown.clone(),
                message: "the delivery ledger refused a second send of the same content to the same recipient (did another writer bypass the lock?); nothing was sent".into(),
            },
            Err(e) => e,
        };
        self.broken = Some(failure.to_string());
        Err(failure)
    }

    fn compact(&mut self) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(StateError::Database {
                url: self.shown.clone(),
                message: format!("nothing more is recorded: {why}"),
            });
        }
        let (c, fence) = (self.data.clone(), self.fence.clone());
        let serial = self.loaded.state.serial.checked_add(1).filter(|s| *s < u64::MAX / 2).ok_or_else(|| {
            StateError::Database { url: self.shown.clone(), message: "the serial is out of range".into() }
        })?;
        let ok = self
            .rt
            .run(async move {
                let held: bool = c.query_one(sql::FENCE, &[&fence.key, &fence.pid]).await?.get(0);
                if held {
                    c.execute(
                        "UPDATE kore_notify.states SET serial = $2, tool_version = $3, updated_at = now() WHERE target = $1",
                        &[&fence.target, &(serial as i64), &env!("CARGO_PKG_VERSION")],
                    )
                    .await?;
                }
                Ok::<_, sql::Db>(held)
            })?
            .map_err(|e| self.db(e))?;
        if !ok {
            return Err(StateError::Database { url: self.shown.clone(), message: "the state lock was lost".into() });
        }
        self.loaded.state.serial = serial;
        Ok(())
    }
}
