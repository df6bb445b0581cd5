//! Reading a whole state in one read-only snapshot, and the encodings rows share with writes.

use super::*;

/// What a read found.
pub(in crate::state::pg) enum Read {
    /// No schema, or no state for this target yet.
    Empty,
    /// The schema is newer than this build.
    Newer(i32),
    /// The state and its change counter.
    Found(State, i64),
}

/// Reads the whole state of `target` in one consistent read-only snapshot.
pub(in crate::state::pg) async fn read(c: &Client, target: &str) -> std::result::Result<Result<Read>, Db> {
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
    let r = read_in(c, target).await;
    finish(c, r).await
}

async fn read_in(c: &Client, target: &str) -> std::result::Result<Result<Read>, Db> {
    let has: bool = c.query_one("SELECT to_regclass('kore_notify.schema_version') IS NOT NULL", &[]).await?.get(0);
    if !has {
        return Ok(Ok(Read::Empty));
    }
    let v: i32 = c.query_one("SELECT coalesce(max(version), 0) FROM kore_notify.schema_version", &[]).await?.get(0);
    if v > SCHEMA_VERSION {
        return Ok(Ok(Read::Newer(v)));
    }
    if v < 1 {
        return Ok(Ok(Read::Empty));
    }
    let Some(row) = c
        .query_opt(
            "SELECT format_version, lineage, serial, changes, tool_version FROM kore_notify.states WHERE target = $1",
            &[&target],
        )
        .await?
    else {
        return Ok(Ok(Read::Empty));
    };
    let mut state = State::new();
    state.format_version = row.get::<_, i32>(0) as u32;
    state.lineage = row.get(1);
    state.serial = row.get::<_, i64>(2) as u64;
    let changes: i64 = row.get(3);
    state.tool_version = row.get(4);
    for row in c.query("SELECT key, doc FROM kore_notify.tombstones WHERE target = $1", &[&target]).await? {
        let key: String = row.get(0);
        let Ok(t) = serde_json::from_value(row.get::<_, serde_json::Value>(1)) else {
            return Ok(Err(corrupt(&format!("tombstone `{key}`"))));
        };
        state.tombstones.insert(key, t);
    }
    let mut keys: HashMap<i64, String> = HashMap::new();
    for row in c.query("SELECT id, key, doc FROM kore_notify.notifications WHERE target = $1", &[&target]).await? {
        let (id, key): (i64, String) = (row.get(0), row.get(1));
        let doc: serde_json::Value = row.get(2);
        let Ok(n) = notification_from_doc(doc) else { return Ok(Err(corrupt(&format!("notification `{key}`")))) };
        state.notifications.insert(key.clone(), n);
        keys.insert(id, key);
    }
    let holds = match requests(c, target, &keys, &mut state).await? {
        Ok(holds) => holds,
        Err(e) => return Ok(Err(e)),
    };
    // The deliveries' order, as the documents keep it; the rows refer to them by text.
    let mut tables = HashMap::new();
    for (id, key) in &keys {
        if let Some(n) = state.notifications.get_mut(key) {
            tables.insert(*id, std::mem::take(&mut n.deliveries));
        }
    }
    let per = match recipient_rows(c, &keys, v, tables).await? {
        Ok(per) => per,
        Err(e) => return Ok(Err(e)),
    };
    for (id, p) in per {
        if let Some(n) = keys.get(&id).and_then(|k| state.notifications.get_mut(k)) {
            n.recipients = BTreeMap::from_iter(p.rows);
            n.deliveries = p.table;
        }
    }
    for (id, req, intent) in holds {
        let Some(n) = keys.get(&id).and_then(|k| state.notifications.get_mut(k)) else { continue };
        if !n.requests.get(req as usize).is_some_and(|r| r.outcome.is_unknown()) {
            continue;
        }
        let Some(pairs) = decode_pairs(&intent) else { return Ok(Err(corrupt("a request's recipients"))) };
        for (h, fp) in pairs {
            n.recipients.entry(h).or_default().pending = Some(crate::state::Pending { fp, req });
        }
    }
    Ok(Ok(Read::Found(state, changes)))
}

/// The target's requests, into their notifications; returns the recipients that pending and
/// unknown requests hold back, as (notification id, request, encoded pairs).
async fn requests(
    c: &Client,
    target: &str,
    keys: &HashMap<i64, String>,
    state: &mut State,
) -> std::result::Result<Result<Vec<(i64, u32, Vec<u8>)>>, Db> {
    let rows = c
        .query(
            "SELECT r.notification, r.req, r.batch, r.outcome, r.request_id, r.status, r.recipients, r.delivered,
                    r.failed, r.sent_at, r.error, r.intent
             FROM kore_notify.requests r JOIN kore_notify.notifications n ON n.id = r.notification
             WHERE n.target = $1 ORDER BY r.notification, r.req",
            &[&target],
        )
        .await?;
    // Pending and unknown requests' recipients, set once every recipient row is read.
    let mut holds: Vec<(i64, u32, Vec<u8>)> = Vec::new();
    for row in rows {
        let Some(n) = keys.get(&row.get::<_, i64>(0)).and_then(|k| state.notifications.get_mut(k)) else { continue };
        let req: i32 = row.get(1);
        if let Some(intent) = row.get::<_, Option<Vec<u8>>>(11) {
            holds.push((row.get(0), req as u32, intent));
        }
        let Some(outcome) = outcome_of(row.get(3)) else { return Ok(Err(corrupt("a request outcome"))) };
        if req as usize != n.requests.len() {
            return Ok(Err(corrupt("request numbers are not consecutive")));
        }
        n.requests.push(RequestState {
            batch: row.get(2),
            outcome,
            request_id: row.get(4),
            status: row.get(5),
            recipients: row.get::<_, i32>(6) as u32,
            delivered: row.get::<_, i32>(7) as u32,
            failed: row.get::<_, i32>(8) as u32,
            sent_at: row.get(9),
            error: row.get(10),
        });
    }
    Ok(Ok(holds))
}

/// A notification's recipient rows, and the deliveries they refer to (in its document's order,
/// then as the rows bring them).
#[derive(Default)]
struct PerNotification {
    rows: Vec<(RecipientHash, RecipientState)>,
    table: Vec<crate::state::Delivery>,
    /// (status as the decoder numbers it, comment id) → index in `table`.
    index: HashMap<(u32, Option<i32>), u32>,
}

/// The comments of the target's notifications by id, and the query of their recipient rows
/// (`notification, recipient, fp, req, delivery, comment id`). Before schema 3 (a database a newer
/// writer has not migrated yet), the rows held the comment's text: they are numbered here.
fn rows_query(version: i32, list: &str) -> (String, String) {
    let mine = format!("notification = ANY('{{{list}}}'::bigint[])");
    if version >= 3 {
        (
            format!(
                "SELECT id, text FROM kore_notify.comments WHERE id IN
                     (SELECT DISTINCT comment_id FROM kore_notify.recipients WHERE {mine})"
            ),
            format!(
                "COPY (SELECT notification, recipient, fp, req, delivery, comment_id FROM kore_notify.recipients
                       WHERE {mine}) TO STDOUT (FORMAT binary)"
            ),
        )
    } else {
        let numbered = format!(
            "SELECT (row_number() OVER (ORDER BY comment))::int4 AS id, comment AS text
             FROM (SELECT DISTINCT comment FROM kore_notify.recipients WHERE {mine} AND comment IS NOT NULL) d"
        );
        (
            numbered.clone(),
            format!(
                "COPY (WITH c AS ({numbered}) SELECT r.notification, r.recipient, r.fp, r.req, r.delivery, c.id
                       FROM kore_notify.recipients r LEFT JOIN c ON c.text = r.comment WHERE r.{mine})
                 TO STDOUT (FORMAT binary)"
            ),
        )
    }
}

/// Every recipient row of the target's notifications, grouped by notification id, with the
/// deliveries they refer to (each distinct status and comment once per notification).
async fn recipient_rows(
    c: &Client,
    keys: &HashMap<i64, String>,
    version: i32,
    tables: HashMap<i64, Vec<crate::state::Delivery>>,
) -> std::result::Result<Result<HashMap<i64, PerNotification>>, Db> {
    let mut per: HashMap<i64, PerNotification> =
        tables.into_iter().map(|(id, table)| (id, PerNotification { table, ..PerNotification::default() })).collect();
    // The target's notifications by id (integers, so the queries need no quoting).
    let list = keys.keys().map(i64::to_string).collect::<Vec<_>>().join(",");
    let (comments, query) = rows_query(version, &list);
    // The comments the rows refer to, each once.
    let comments: HashMap<i32, String> =
        c.query(comments.as_str(), &[]).await?.into_iter().map(|r| (r.get(0), r.get(1))).collect();
    let stream = c.copy_out(query.as_str()).await?;
    futures_util::pin_mut!(stream);
    let (mut decoder, mut rows) = (crate::state::pg::copy::Decoder::default(), Vec::new());
    while let Some(chunk) = stream.try_next().await? {
        if let Err(crate::state::pg::copy::Malformed(what)) = decoder.feed(&chunk, &mut rows) {
            return Ok(Err(corrupt(what)));
        }
        for row in rows.drain(..) {
            let p = per.entry(row.id).or_default();
            let mut rs = row.state;
            if let Some((word, comment)) = row.delivery {
                let i = match p.index.get(&(word, comment)) {
                    Some(i) => *i,
                    None => {
                        let text = match comment.map(|id| comments.get(&id)) {
                            Some(None) => return Ok(Err(corrupt("a recipient's comment"))),
                            Some(Some(t)) => Some(t.clone()),
                            None => None,
                        };
                        let d = crate::state::Delivery { status: decoder.status(word).to_string(), comment: text };
                        let i = match p.table.iter().position(|t| *t == d) {
                            Some(i) => i as u32,
                            None => {
                                p.table.push(d);
                                p.table.len() as u32 - 1
                            }
                        };
                        p.index.insert((word, comment), i);
                        i
                    }
                };
                rs.delivery = Some(i);
            }
            p.rows.push((row.hash, rs));
        }
    }
    if !decoder.finished() {
        return Ok(Err(corrupt("the recipient rows ended early")));
    }
    Ok(Ok(per))
}

/// (recipient hash, fingerprint) pairs as one value: 32 bytes a pair.
pub(in crate::state::pg) fn encode_pairs(pairs: &[(RecipientHash, Fingerprint)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 32);
    for (h, fp) in pairs {
        out.extend_from_slice(&h.0);
        out.extend_from_slice(&fp.0);
    }
    out
}

fn decode_pairs(b: &[u8]) -> Option<Vec<(RecipientHash, Fingerprint)>> {
    if !b.len().is_multiple_of(32) {
        return None;
    }
    b.chunks_exact(32).map(|c| Some((RecipientHash(h16(&c[..16])?), Fingerprint(h16(&c[16..])?)))).collect()
}

fn h16(b: &[u8]) -> Option<[u8; 16]> {
    <[u8; 16]>::try_from(b).ok()
}

fn outcome_of(s: &str) -> Option<Outcome> {
    use Outcome::{Accepted, NotSent, Pending, Recorded, Rejected, ResolvedNotSent, ResolvedSent, Unknown};
    [Pending, Accepted, Rejected, Unknown, ResolvedSent, ResolvedNotSent, Recorded, NotSent]
        .into_iter()
        .find(|o| o.as_str() == s)
}

/// The notification-level fields as a JSON document: everything but requests and recipients,
/// which are rows of their own. Its `deliveries` keep the table's order (a recipient's row holds
/// the delivery's status and comment id, not its index), so the state reads back as written.
pub(in crate::state::pg) fn doc_of(n: &mut NotificationState) -> serde_json::Value {
    let requests = std::mem::take(&mut n.requests);
    let recipients = std::mem::take(&mut n.recipients);
    let mut v = serde_json::to_value(&*n).unwrap_or_default();
    n.requests = requests;
    n.recipients = recipients;
    if let Some(o) = v.as_object_mut() {
        o.remove("requests");
        o.remove("recipients");
    }
    v
}

fn notification_from_doc(doc: serde_json::Value) -> std::result::Result<NotificationState, serde_json::Error> {
    serde_json::from_value(doc)
}
