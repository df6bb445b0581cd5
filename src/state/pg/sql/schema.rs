//! The schema: versioned migrations in a schema of its own, `kore_notify`, applied by writers.

use super::*;

/// The schema version this build writes and reads.
pub(in crate::state::pg) const SCHEMA_VERSION: i32 = 3;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE kore_notify.states (
    target         text PRIMARY KEY,
    format_version integer NOT NULL,
    lineage        text NOT NULL,
    serial         bigint NOT NULL,
    changes        bigint NOT NULL DEFAULT 0,
    tool_version   text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE kore_notify.holders (
    lock_key    bigint PRIMARY KEY,
    target      text NOT NULL,
    holder      jsonb NOT NULL,
    backend_pid integer NOT NULL,
    since       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE kore_notify.notifications (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target text NOT NULL REFERENCES kore_notify.states ON DELETE CASCADE,
    key    text NOT NULL,
    doc    jsonb NOT NULL,
    UNIQUE (target, key)
);
CREATE TABLE kore_notify.tombstones (
    target text NOT NULL REFERENCES kore_notify.states ON DELETE CASCADE,
    key    text NOT NULL,
    doc    jsonb NOT NULL,
    PRIMARY KEY (target, key)
);
CREATE TABLE kore_notify.requests (
    notification bigint NOT NULL REFERENCES kore_notify.notifications ON DELETE CASCADE ON UPDATE CASCADE,
    req          integer NOT NULL,
    batch        text NOT NULL,
    outcome      text NOT NULL,
    request_id   text,
    status       text,
    recipients   integer NOT NULL,
    delivered    integer NOT NULL DEFAULT 0,
    failed       integer NOT NULL DEFAULT 0,
    sent_at      text NOT NULL,
    error        text,
    -- While the outcome is pending or unknown: the recipients it holds back, as 32-byte pairs
    -- (recipient hash, fingerprint). One value per request, so recording an intent writes no
    -- recipient rows.
    intent       bytea,
    PRIMARY KEY (notification, req)
);
CREATE TABLE kore_notify.recipients (
    notification bigint NOT NULL REFERENCES kore_notify.notifications ON DELETE CASCADE,
    recipient    bytea NOT NULL,
    fp           bytea NOT NULL,
    req          integer,
    delivery     text,
    comment      text,
    PRIMARY KEY (notification, recipient)
) WITH (fillfactor = 70);
CREATE TABLE kore_notify.sends (
    notification bigint NOT NULL REFERENCES kore_notify.notifications ON DELETE CASCADE,
    req          integer NOT NULL,
    recipient    bytea NOT NULL,
    fp           bytea NOT NULL,
    holds        boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX sends_once ON kore_notify.sends (notification, recipient, fp) WHERE holds;
COMMENT ON TABLE kore_notify.sends IS
    'The delivery ledger: one row per recipient per request. A row holds while the send stands (pending, unknown, accepted and current).';
COMMENT ON INDEX kore_notify.sends_once IS
    'At most one standing send of the same content (fingerprint) to the same recipient of a notification, whatever the writer.';
",
    r"
-- Recipient and ledger rows are written a thousand at a time: a foreign-key check per row cost
-- a third of recording a batch. The writer deletes them with their notification instead.
ALTER TABLE kore_notify.recipients DROP CONSTRAINT recipients_notification_fkey;
ALTER TABLE kore_notify.sends DROP CONSTRAINT sends_notification_fkey;
",
    r"
-- Kore.ai's comments, each distinct text once (its success boilerplate was repeated on every
-- recipient's row); a recipient's row refers to its comment by id. Existing rows move over.
CREATE TABLE kore_notify.comments (
    id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text text NOT NULL UNIQUE
);
COMMENT ON TABLE kore_notify.comments IS
    'Delivery comments reported by Kore.ai, each distinct text once; recipients refer to them by id.';
ALTER TABLE kore_notify.recipients ADD COLUMN comment_id integer;
INSERT INTO kore_notify.comments (text)
    SELECT DISTINCT comment FROM kore_notify.recipients WHERE comment IS NOT NULL ORDER BY 1;
UPDATE kore_notify.recipients r SET comment_id = c.id FROM kore_notify.comments c WHERE r.comment = c.text;
ALTER TABLE kore_notify.recipients DROP COLUMN comment;
",
];

/// Fixed key of the transaction lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x6b6e_6d69_6772_6174;

/// Creates or upgrades the schema (a writer's first step). Serialised by a transaction lock, so
/// two first runs do not race; a schema newer than this build is refused.
pub(in crate::state::pg) async fn migrate(c: &Client) -> std::result::Result<std::result::Result<(), i32>, Db> {
    c.batch_execute(super::BEGIN_DURABLE).await?;
    let r = async {
        c.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        c.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS kore_notify;
             CREATE TABLE IF NOT EXISTS kore_notify.schema_version (
                 version integer PRIMARY KEY, tool_version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());",
        )
        .await?;
        let v: i32 = c.query_one("SELECT coalesce(max(version), 0) FROM kore_notify.schema_version", &[]).await?.get(0);
        if v > SCHEMA_VERSION {
            return Ok(Err(v));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(v as usize) {
            c.batch_execute(m).await?;
            c.execute(
                "INSERT INTO kore_notify.schema_version (version, tool_version) VALUES ($1, $2)",
                &[&(i as i32 + 1), &env!("CARGO_PKG_VERSION")],
            )
            .await?;
        }
        Ok(Ok(()))
    }
    .await;
    finish(c, r).await
}
