//! The PostgreSQL schema (versioned migrations, in a schema of its own) and the queries: the whole
//! state read in one read-only snapshot, one recorded entry written in one transaction, and a
//! whole state imported into an empty store.

use std::collections::{BTreeMap, HashMap};

use futures_util::TryStreamExt;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::super::{Delivery, NotificationState, Outcome, RecipientState, RequestState, State};
use crate::fingerprint::{Fingerprint, RecipientHash};
use crate::state::{Result, StateError};

mod read;
mod schema;

pub(super) use read::{Read, doc_of, encode_pairs, read};
pub(super) use schema::{SCHEMA_VERSION, migrate};

pub(super) type Db = tokio_postgres::Error;

/// A database error as the error to show.
pub(super) fn db_error(shown: &str, e: &Db) -> StateError {
    let message = match e.as_db_error() {
        Some(d) => format!("{}: {}", d.severity(), d.message()),
        None => {
            // The client's message with its causes ("error performing TLS handshake: invalid
            // peer certificate: UnknownIssuer").
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                m.push_str(": ");
                m.push_str(&s.to_string());
                source = s.source();
            }
            m
        }
    };
    StateError::Database { url: shown.to_string(), message: crate::safe::line(&message).into_owned() }
}

fn corrupt(what: &str) -> StateError {
    StateError::Database { url: String::new(), message: format!("the stored state is corrupted: {what}") }
}

/// Starts a write transaction whose commit is flushed to disk before it returns, whatever the
/// database's or the role's default: an intent must be durable before its request leaves, and so
/// must a migration (a lost schema is a lost state). Entries whose loss is safe relax it inside.
pub(super) const BEGIN_DURABLE: &str = "BEGIN; SET LOCAL synchronous_commit = on";

/// Commits after success, rolls back otherwise.
async fn finish<T>(c: &Client, r: std::result::Result<T, Db>) -> std::result::Result<T, Db> {
    match r {
        Ok(v) => {
            c.batch_execute("COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// A recipient's row as written: its state, and what the status API reported (the texts: a
/// comment is stored once, in `kore_notify.comments`, and the row refers to it by id).
pub(super) type RecipientRow = (RecipientHash, RecipientState, Option<Delivery>);

/// What one recorded entry changes, computed from the state before and after it.
pub(super) struct Change {
    pub(super) key: String,
    /// The notification's document, when it may have changed (or the notification is new).
    pub(super) doc: Option<serde_json::Value>,
    /// Requests as they are now, with the recipients an intent holds back (for a new request).
    pub(super) requests: Vec<(u32, RequestState, Option<Vec<u8>>)>,
    pub(super) upsert: Vec<RecipientRow>,
    /// Of `upsert`, those that already have a row (updated in place rather than inserted).
    pub(super) existing: Vec<bool>,
    /// Whether losing this change in a crash of the *server* is safe (an answer: its request then
    /// reads as unknown, and is held back). An intent is never: it is committed synchronously.
    pub(super) relaxed: bool,
    pub(super) delete: Vec<RecipientHash>,
    pub(super) ledger: Ledger,
    pub(super) special: Special,
}

pub(super) enum Special {
    None,
    Rename {
        to: String,
    },
    Remove,
    /// Replaced by its tombstone (the notification's rows dropped).
    Retire {
        tombstone: serde_json::Value,
    },
    /// Its tombstone dropped.
    Revive,
}

/// The entry's effect on the delivery ledger (`kore_notify.sends`).
pub(super) enum Ledger {
    None,
    /// A request about to leave: a failed delivery of the same content stops standing (it is being
    /// retried), then one standing row per recipient — refused if one already stands.
    Intent {
        req: u32,
        rows: Vec<(RecipientHash, Fingerprint)>,
        /// Those of `rows` whose last delivery of the same content failed, as the writer's state
        /// has them (usually none: the retry's update is then skipped).
        retried: Vec<(RecipientHash, Fingerprint)>,
    },
    /// Accepted, settled as sent, or new content recorded without sending: each recipient's
    /// sends of other contents than its current one (given) stop standing.
    Current {
        rows: Vec<(RecipientHash, Fingerprint)>,
    },
    /// Rejected, settled as not sent, or retried: these requests' sends to these recipients stop
    /// standing.
    Void {
        reqs: Vec<u32>,
        recipients: Vec<RecipientHash>,
    },
}

/// The writer's lock, checked inside every write (a fencing check: a writer whose lock connection
/// was lost records nothing more).
pub(super) struct Fence {
    pub(super) target: String,
    pub(super) key: i64,
    pub(super) pid: i32,
}

pub(super) const FENCE: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid
    AND objsubid = 1 AND pid = $2)";

/// Whether a session holds the writer's lock of `key` now, and the holder it recorded (`None`
/// inside when its row is missing or the schema has no holders table yet). Only a lock in this
/// database counts: `pg_locks` lists every database of the server, and a writer of the same bot in
/// another database must not make a killed run's requests here read as in flight.
pub(super) async fn live_holder(c: &Client, key: i64) -> std::result::Result<Option<Option<serde_json::Value>>, Db> {
    let held: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid
                AND objsubid = 1)",
            &[&key],
        )
        .await?
        .get(0);
    if !held {
        return Ok(None);
    }
    let has: bool = c.query_one("SELECT to_regclass('kore_notify.holders') IS NOT NULL", &[]).await?.get(0);
    if !has {
        return Ok(Some(None));
    }
    let row = c.query_opt("SELECT holder FROM kore_notify.holders WHERE lock_key = $1", &[&key]).await?;
    Ok(Some(row.map(|r| r.get::<_, serde_json::Value>(0))))
}

/// Outcome of a write that PostgreSQL accepted or refused on purpose.
pub(super) enum Written {
    Done,
    LostLock,
    /// The ledger's unique constraint refused a second standing send.
    Duplicate,
}

/// Writes one change in one transaction.
pub(super) async fn write(c: &Client, fence: &Fence, ch: Change) -> std::result::Result<Written, Db> {
    c.batch_execute(BEGIN_DURABLE).await?;
    match write_in(c, fence, ch).await {
        Ok(Written::Done) => {
            c.batch_execute("COMMIT").await?;
            Ok(Written::Done)
        }
        Ok(other) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Ok(other)
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            let ledger = e.as_db_error().and_then(|d| d.constraint()) == Some("sends_once");
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) && ledger { Ok(Written::Duplicate) } else { Err(e) }
        }
    }
}

fn bytes(h: &impl AsRef<[u8]>) -> Vec<u8> {
    h.as_ref().to_vec()
}

async fn write_in(c: &Client, fence: &Fence, ch: Change) -> std::result::Result<Written, Db> {
    let held: bool = c.query_one(FENCE, &[&fence.key, &fence.pid]).await?.get(0);
    if !held {
        return Ok(Written::LostLock);
    }
    if ch.relaxed {
        c.batch_execute("SET LOCAL synchronous_commit = off").await?;
    }
    let target = fence.target.as_str();
    match &ch.special {
        Special::Rename { to } => {
            drop_notification(c, target, to).await?;
            c.execute(
                "UPDATE kore_notify.notifications SET key = $3 WHERE target = $1 AND key = $2",
                &[&target, &ch.key, to],
            )
            .await?;
            return bump(c, target).await;
        }
        Special::Remove => {
            drop_notification(c, target, &ch.key).await?;
            return bump(c, target).await;
        }
        Special::Retire { tombstone } => {
            c.execute(
                "INSERT INTO kore_notify.tombstones (target, key, doc) VALUES ($1, $2, $3)
                 ON CONFLICT (target, key) DO UPDATE SET doc = EXCLUDED.doc",
                &[&target, &ch.key, tombstone],
            )
            .await?;
            drop_notification(c, target, &ch.key).await?;
            return bump(c, target).await;
        }
        Special::Revive => {
            c.execute("DELETE FROM kore_notify.tombstones WHERE target = $1 AND key = $2", &[&target, &ch.key]).await?;
            return bump(c, target).await;
        }
        Special::None => {}
    }
    let id: i64 = match &ch.doc {
        Some(doc) => c
            .query_one(
                "INSERT INTO kore_notify.notifications (target, key, doc) VALUES ($1, $2, $3)
                 ON CONFLICT (target, key) DO UPDATE SET doc = EXCLUDED.doc RETURNING id",
                &[&target, &ch.key, doc],
            )
            .await?
            .get(0),
        None => match c
            .query_opt("SELECT id FROM kore_notify.notifications WHERE target = $1 AND key = $2", &[&target, &ch.key])
            .await?
        {
            Some(row) => row.get(0),
            None => return bump(c, target).await,
        },
    };
    ledger(c, id, &ch.ledger).await?;
    for (req, r, intent) in &ch.requests {
        upsert_request(c, id, *req, r, intent.as_deref()).await?;
    }
    let ids = comment_ids(c, &ch.upsert).await?;
    let (old, new): (Vec<_>, Vec<_>) = ch.upsert.into_iter().zip(ch.existing).partition(|(_, e)| *e);
    update_recipients(c, id, &old.into_iter().map(|(r, _)| r).collect::<Vec<_>>(), &ids).await?;
    copy_recipients(c, id, &new.into_iter().map(|(r, _)| r).collect::<Vec<_>>(), &ids).await?;
    if !ch.delete.is_empty() {
        let del: Vec<Vec<u8>> = ch.delete.iter().map(bytes).collect();
        c.execute("DELETE FROM kore_notify.recipients WHERE notification = $1 AND recipient = ANY($2)", &[&id, &del])
            .await?;
    }
    bump(c, target).await
}

/// Deletes a notification with its recipient and ledger rows (which carry no foreign key: checking
/// one per row was a third of recording a batch); its requests go with it by their foreign key.
async fn drop_notification(c: &Client, target: &str, key: &str) -> std::result::Result<(), Db> {
    let id = "(SELECT id FROM kore_notify.notifications WHERE target = $1 AND key = $2)";
    c.execute(&format!("DELETE FROM kore_notify.recipients WHERE notification = {id}"), &[&target, &key]).await?;
    c.execute(&format!("DELETE FROM kore_notify.sends WHERE notification = {id}"), &[&target, &key]).await?;
    c.execute("DELETE FROM kore_notify.notifications WHERE target = $1 AND key = $2", &[&target, &key]).await?;
    Ok(())
}

/// Counts the change (the digest plan files are bound to moves with it).
async fn bump(c: &Client, target: &str) -> std::result::Result<Written, Db> {
    c.execute("UPDATE kore_notify.states SET changes = changes + 1, updated_at = now() WHERE target = $1", &[&target])
        .await?;
    Ok(Written::Done)
}

async fn ledger(c: &Client, id: i64, l: &Ledger) -> std::result::Result<(), Db> {
    let reqs = |r: &[u32]| r.iter().map(|q| *q as i32).collect::<Vec<i32>>();
    let split = |rows: &[(RecipientHash, Fingerprint)]| -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        rows.iter().map(|(h, fp)| (bytes(h), bytes(fp))).unzip()
    };
    match l {
        Ledger::None => {}
        Ledger::Intent { req, rows, retried } => {
            let (hs, fps) = split(retried);
            if !hs.is_empty() {
                c.execute(
                    "UPDATE kore_notify.sends s SET holds = false
                 FROM unnest($2::bytea[], $3::bytea[]) AS u(r, fp), kore_notify.recipients c
                 WHERE s.notification = $1 AND s.recipient = u.r AND s.fp = u.fp AND s.holds
                   AND c.notification = $1 AND c.recipient = u.r AND c.fp = u.fp
                   AND c.delivery IN ('FAILURE', 'FAILED')",
                    &[&id, &hs, &fps],
                )
                .await?;
            }
            let mut cols = LedgerColumns::default();
            for (h, fp) in rows {
                cols.push(h, fp, *req, true);
            }
            copy_sends(c, id, &cols).await?;
        }
        Ledger::Void { reqs: r, recipients } => {
            let hs: Vec<Vec<u8>> = recipients.iter().map(bytes).collect();
            c.execute(
                "UPDATE kore_notify.sends SET holds = false
                 WHERE notification = $1 AND recipient = ANY($3) AND req = ANY($2) AND holds",
                &[&id, &reqs(r), &hs],
            )
            .await?;
        }
        Ledger::Current { rows } => {
            let (hs, fps) = split(rows);
            c.execute(
                "UPDATE kore_notify.sends s SET holds = false FROM unnest($2::bytea[], $3::bytea[]) AS u(r, fp)
                 WHERE s.notification = $1 AND s.recipient = u.r AND s.fp <> u.fp AND s.holds",
                &[&id, &hs, &fps],
            )
            .await?;
        }
    }
    Ok(())
}

/// Writes a request's row; its `intent` is kept while the outcome is pending or unknown and
/// dropped once it is settled.
async fn upsert_request(
    c: &Client,
    id: i64,
    req: u32,
    r: &RequestState,
    intent: Option<&[u8]>,
) -> std::result::Result<(), Db> {
    c.execute(
        "INSERT INTO kore_notify.requests
             (notification, req, batch, outcome, request_id, status, recipients, delivered, failed, sent_at, error,
              intent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, CASE WHEN $13 THEN NULL ELSE $12::bytea END)
         ON CONFLICT (notification, req) DO UPDATE SET batch = EXCLUDED.batch, outcome = EXCLUDED.outcome,
             request_id = EXCLUDED.request_id, status = EXCLUDED.status, recipients = EXCLUDED.recipients,
             delivered = EXCLUDED.delivered, failed = EXCLUDED.failed, sent_at = EXCLUDED.sent_at,
             error = EXCLUDED.error,
             intent = CASE WHEN $13 THEN NULL ELSE coalesce(EXCLUDED.intent, kore_notify.requests.intent) END",
        &[
            &id,
            &(req as i32),
            &r.batch,
            &r.outcome.as_str(),
            &r.request_id,
            &r.status,
            &(r.recipients as i32),
            &(r.delivered as i32),
            &(r.failed as i32),
            &r.sent_at,
            &r.error,
            &intent,
            &!r.outcome.is_unknown(),
        ],
    )
    .await?;
    Ok(())
}

/// Recipients' rows as columns (arrays for `unnest`).
#[derive(Default)]
struct RecipientColumns {
    recipient: Vec<Vec<u8>>,
    fp: Vec<Option<Vec<u8>>>,
    req: Vec<Option<i32>>,
    delivery: Vec<Option<String>>,
    comment: Vec<Option<i32>>,
}

/// Ledger rows as columns (for COPY).
#[derive(Default)]
struct LedgerColumns {
    recipient: Vec<Vec<u8>>,
    fp: Vec<Vec<u8>>,
    req: Vec<i32>,
    holds: Vec<bool>,
}

impl LedgerColumns {
    fn push(&mut self, h: &RecipientHash, fp: &Fingerprint, req: u32, holds: bool) {
        self.recipient.push(bytes(h));
        self.fp.push(bytes(fp));
        self.req.push(req as i32);
        self.holds.push(holds);
    }
}

impl RecipientColumns {
    fn of(rows: &[RecipientRow], ids: &HashMap<String, i32>) -> RecipientColumns {
        let mut k = RecipientColumns::default();
        for (h, r, d) in rows {
            k.recipient.push(bytes(h));
            k.fp.push(r.fp.as_ref().map(bytes));
            k.req.push(r.req.map(|q| q as i32));
            k.delivery.push(d.as_ref().map(|d| d.status.clone()));
            k.comment.push(comment_id(d.as_ref(), ids));
        }
        k
    }
}

/// The id of a delivery's comment (in the map [`comment_ids`] made).
fn comment_id(d: Option<&Delivery>, ids: &HashMap<String, i32>) -> Option<i32> {
    d.and_then(|d| d.comment.as_ref()).and_then(|c| ids.get(c).copied())
}

/// The ids of the comments of `rows`, each distinct text stored once (added when new).
async fn comment_ids(c: &Client, rows: &[RecipientRow]) -> std::result::Result<HashMap<String, i32>, Db> {
    let mut texts: Vec<&str> = rows.iter().filter_map(|(_, _, d)| d.as_ref()?.comment.as_deref()).collect();
    texts.sort_unstable();
    texts.dedup();
    if texts.is_empty() {
        return Ok(HashMap::new());
    }
    c.execute(
        "INSERT INTO kore_notify.comments (text) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT (text) DO NOTHING",
        &[&texts],
    )
    .await?;
    let found = c.query("SELECT text, id FROM kore_notify.comments WHERE text = ANY($1)", &[&texts]).await?;
    Ok(found.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Rewrites existing recipients' rows as they are now (one statement for the whole batch).
async fn update_recipients(
    c: &Client,
    id: i64,
    rows: &[RecipientRow],
    ids: &HashMap<String, i32>,
) -> std::result::Result<(), Db> {
    if rows.is_empty() {
        return Ok(());
    }
    let k = RecipientColumns::of(rows, ids);
    c.execute(
        "UPDATE kore_notify.recipients r SET fp = u.fp, req = u.req, delivery = u.delivery, comment_id = u.comment
         FROM unnest($2::bytea[], $3::bytea[], $4::int4[], $5::text[], $6::int4[])
             AS u(recipient, fp, req, delivery, comment)
         WHERE r.notification = $1 AND r.recipient = u.recipient",
        &[&id, &k.recipient, &k.fp, &k.req, &k.delivery, &k.comment],
    )
    .await?;
    Ok(())
}

/// Inserts new recipients' rows (binary COPY: the cheapest way in, one round trip).
async fn copy_recipients(
    c: &Client,
    id: i64,
    rows: &[RecipientRow],
    ids: &HashMap<String, i32>,
) -> std::result::Result<(), Db> {
    use tokio_postgres::types::Type;
    if rows.is_empty() {
        return Ok(());
    }
    let sink = c
        .copy_in(
            "COPY kore_notify.recipients (notification, recipient, fp, req, delivery, comment_id) FROM STDIN BINARY",
        )
        .await?;
    let types = [Type::INT8, Type::BYTEA, Type::BYTEA, Type::INT4, Type::TEXT, Type::INT4];
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    for (h, r, d) in rows {
        let (fp, req) = (r.fp.as_ref().map(bytes), r.req.map(|q| q as i32));
        let status = d.as_ref().map(|d| d.status.as_str());
        writer.as_mut().write(&[&id, &bytes(h), &fp, &req, &status, &comment_id(d.as_ref(), ids)]).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Inserts ledger rows (binary COPY).
async fn copy_sends(c: &Client, id: i64, rows: &LedgerColumns) -> std::result::Result<(), Db> {
    use tokio_postgres::types::Type;
    if rows.recipient.is_empty() {
        return Ok(());
    }
    let sink = c.copy_in("COPY kore_notify.sends (notification, req, recipient, fp, holds) FROM STDIN BINARY").await?;
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(
        sink,
        &[Type::INT8, Type::INT4, Type::BYTEA, Type::BYTEA, Type::BOOL],
    );
    futures_util::pin_mut!(writer);
    for i in 0..rows.recipient.len() {
        writer.as_mut().write(&[&id, &rows.req[i], &rows.recipient[i], &rows.fp[i], &rows.holds[i]]).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Why an import was refused.
pub(super) enum Imported {
    Done,
    NotEmpty,
    Locked,
}

/// Writes a whole state into a store that has none for `target`, in one transaction, under the
/// target's lock (taken for the transaction only).
pub(super) async fn import(
    c: &Client,
    target: &str,
    lock_key: i64,
    mut state: State,
) -> std::result::Result<Imported, Db> {
    c.batch_execute(BEGIN_DURABLE).await?;
    let r = async {
        let locked: bool = c.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&lock_key]).await?.get(0);
        if !locked {
            return Ok(Imported::Locked);
        }
        if c.query_opt("SELECT 1 FROM kore_notify.states WHERE target = $1", &[&target]).await?.is_some() {
            return Ok(Imported::NotEmpty);
        }
        c.execute(
            "INSERT INTO kore_notify.states (target, format_version, lineage, serial, tool_version)
             VALUES ($1, $2, $3, $4, $5)",
            &[&target, &(state.format_version as i32), &state.lineage, &(state.serial as i64), &state.tool_version],
        )
        .await?;
        for (key, t) in &state.tombstones {
            c.execute(
                "INSERT INTO kore_notify.tombstones (target, key, doc) VALUES ($1, $2, $3)",
                &[&target, key, &serde_json::to_value(t).unwrap_or_default()],
            )
            .await?;
        }
        for (key, n) in &mut state.notifications {
            let doc = doc_of(n);
            let id: i64 = c
                .query_one(
                    "INSERT INTO kore_notify.notifications (target, key, doc) VALUES ($1, $2, $3) RETURNING id",
                    &[&target, key, &doc],
                )
                .await?
                .get(0);
            // The recipients each pending or unknown request holds back.
            let mut held: HashMap<u32, Vec<(RecipientHash, Fingerprint)>> = HashMap::new();
            for (h, r) in &n.recipients {
                if let Some(p) = &r.pending {
                    held.entry(p.req).or_default().push((*h, p.fp));
                }
            }
            for (i, r) in n.requests.iter().enumerate() {
                let intent = held.get(&(i as u32)).map(|pairs| encode_pairs(pairs));
                upsert_request(c, id, i as u32, r, intent.as_deref()).await?;
            }
            let all: Vec<RecipientRow> =
                n.recipients.iter().map(|(h, r)| (*h, r.clone(), n.delivery(r).cloned())).collect();
            for chunk in all.chunks(20_000) {
                let sent: Vec<RecipientRow> = chunk.iter().filter(|(_, r, _)| r.fp.is_some()).cloned().collect();
                let ids = comment_ids(c, &sent).await?;
                copy_recipients(c, id, &sent, &ids).await?;
                let mut rows = LedgerColumns::default();
                for (h, r, _) in chunk {
                    let pending = r.pending.as_ref().map(|p| (p.fp, p.req));
                    if let (Some(fp), Some(req)) = (r.fp, r.req) {
                        // A failed delivery being retried no longer stands once its retry is pending.
                        rows.push(h, &fp, req, pending.is_none_or(|(pfp, _)| pfp != fp));
                    }
                    if let Some((fp, req)) = pending {
                        rows.push(h, &fp, req, true);
                    }
                }
                copy_sends(c, id, &rows).await?;
            }
        }
        Ok(Imported::Done)
    }
    .await;
    match r {
        Ok(Imported::Done) => finish(c, Ok(Imported::Done)).await,
        Ok(other) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Ok(other)
        }
        Err(e) => finish(c, Err(e)).await,
    }
}
