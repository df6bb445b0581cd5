//! The state in PostgreSQL, for teams: several repositories, pipelines or people sending through
//! one bot share one ledger and one lock, and the state never has to fit in a file or in git.
//!
//! - Tables live in a schema of their own, `kore_notify`, created and migrated by the tool
//!   (versioned; a schema newer than the tool is refused). `plan` and `status` only read, in one
//!   read-only snapshot, so a role with `SELECT` on the schema is enough for them.
//! - One row per (target, notification, recipient hash) with its fingerprint, request and
//!   delivery; one row per request; and the delivery ledger `sends`, one row per recipient per
//!   request, whose partial unique index allows at most one *standing* send of the same content to
//!   the same recipient — even for a writer that bypassed the lock.
//! - Writers take an advisory lock keyed by the target (the bot id) on a dedicated connection of
//!   their own, released by the server when the process dies; the holder is kept in a row so a
//!   second writer is refused (exit 4) naming it. Every write re-checks that the lock is still held
//!   (a writer whose lock connection dropped records and sends nothing more).
//! - Each recorded entry is one transaction whose cost is proportional to the entry (a batch), not
//!   to the state: committed when [`Session::record`] returns, before the request leaves.
//!
//! The client library is asynchronous; the store runs it on a small runtime of its own so that the
//! seam stays synchronous and callable from anywhere (including inside the send loop's runtime).

mod copy;
mod session;
mod sql;
mod url;

use session::PgSession;

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::Client;

use super::{Entry, Holder, Loaded, Session, State, StateStore};
use super::{Result, StateError};
use crate::clock::Clock;
use crate::fingerprint::{Fingerprint, RecipientHash, sha256_hex};
use sql::{Change, Fence, Ledger, Read, Special, Written};
pub use url::PgSpec;
pub(crate) use url::is_postgres_url;

/// A PostgreSQL state store for one target.
pub struct PgStore {
    conn: Arc<url::Conn>,
    target: String,
    site: super::RunSite,
    clock: Clock,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.conn.shown).field("target", &self.target).finish_non_exhaustive()
    }
}

/// A small runtime of the store's own. Shut down without waiting when dropped (allowed inside
/// another runtime): the connections close, and the server releases the lock.
struct Rt(Option<tokio::runtime::Runtime>);

impl Rt {
    fn new() -> Result<Rt> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kore-notify-pg")
            .enable_all()
            .build()
            .map(|rt| Rt(Some(rt)))
            .map_err(StateError::PgRuntime)
    }

    /// Runs `fut` on the store's runtime and waits for it (from sync code or from another runtime),
    /// at most [`DB_TIMEOUT`]: a database that stops answering stops the run (and so the sends)
    /// instead of hanging it.
    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
        self.run_for(fut, Some(DB_TIMEOUT))
    }

    fn run_for<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
        timeout: Option<std::time::Duration>,
    ) -> Result<T> {
        let rt = self.0.as_ref().ok_or(StateError::PgStopped { during: false })?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let task = rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let got = match timeout {
            Some(t) => rx.recv_timeout(t).map_err(|e| matches!(e, std::sync::mpsc::RecvTimeoutError::Timeout)),
            None => rx.recv().map_err(|_| false),
        };
        got.map_err(|timed_out| {
            task.abort();
            if timed_out {
                StateError::PgTimeout { secs: DB_TIMEOUT.as_secs() }
            } else {
                StateError::PgStopped { during: true }
            }
        })
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// How long one database step (a read, a recorded entry) may take before the run stops.
const DB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The advisory lock key of a target.
fn lock_key(target: &str) -> i64 {
    let digest = sha256_hex(format!("kore-notify state lock {target}").as_bytes());
    let mut b = [0u8; 8];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap_or_default();
    }
    i64::from_be_bytes(b)
}

impl PgStore {
    /// The store for `target`, the password (if any) read from the environment now.
    pub fn new(spec: &PgSpec, target: &str, env: &dyn crate::interp::Env) -> crate::error::Result<PgStore> {
        Ok(PgStore {
            conn: Arc::new(spec.resolve(env)?),
            target: target.to_string(),
            site: super::RunSite::from_env(env),
            clock: Clock::System,
        })
    }

    /// The same store, its lock holders stamped by `clock`.
    #[must_use]
    pub(crate) fn with_clock(self, clock: Clock) -> PgStore {
        PgStore { clock, ..self }
    }

    fn db(&self) -> impl Fn(sql::Db) -> StateError + '_ {
        |e| sql::db_error(&self.conn.shown, &e)
    }

    /// A connection for reads and writes, its I/O on `rt`.
    fn connection(&self, rt: &Rt) -> Result<Arc<Client>> {
        let (conn, tls) = (self.conn.clone(), self.conn.tls_config()?);
        Ok(Arc::new(rt.run(async move { connect(&conn, tls).await })?.map_err(self.db())?))
    }

    /// The whole state, read on `data` in one read-only snapshot.
    fn read(&self, rt: &Rt, data: &Arc<Client>) -> Result<Loaded> {
        let read = sql_read(rt, data, &self.target)?.map_err(self.db())??;
        self.loaded(read, None)
    }

    /// The holder of the target's writer lock when a live session holds it.
    fn live_holder(&self, rt: &Rt, data: &Arc<Client>) -> Result<Option<String>> {
        let (c, key) = (data.clone(), lock_key(&self.target));
        let found = rt.run(async move { sql::live_holder(&c, key).await })?.map_err(self.db())?;
        Ok(found.map(|v| {
            v.and_then(|v| serde_json::from_value::<Holder>(v).ok()).map_or_else(
                || "another kore-notify process".into(),
                |h| crate::safe::line(&h.to_string()).into_owned(),
            )
        }))
    }

    /// The state read; requests without an answer are in flight while `live` names a writer
    /// holding the lock, else unknown (their run is gone).
    fn loaded(&self, read: Read, live: Option<String>) -> Result<Loaded> {
        match read {
            Read::Empty => Ok(Loaded { state: State::new(), exists: false, replayed: 0, digest: String::new() }),
            Read::Newer(v) => Err(self.newer(v)),
            // A row created by a writer that recorded nothing yet is no state at all (as a missing
            // file is): a plan made before it still applies.
            Read::Found(state, 0)
                if state.serial == 0 && state.notifications.is_empty() && state.tombstones.is_empty() =>
            {
                Ok(Loaded { state, exists: false, replayed: 0, digest: String::new() })
            }
            Read::Found(mut state, changes) => {
                let digest = sha256_hex(format!("postgres:{}:{}:{changes}", state.lineage, state.serial).as_bytes());
                let replayed = state
                    .notifications
                    .values()
                    .flat_map(|n| &n.requests)
                    .filter(|r| r.outcome == super::Outcome::Pending)
                    .count();
                match &live {
                    Some(holder) => state.mark_in_flight(holder),
                    None => state.settle_pending(),
                }
                Ok(Loaded { state, exists: true, replayed, digest })
            }
        }
    }

    fn newer(&self, v: i32) -> StateError {
        StateError::Database {
            url: self.conn.shown.clone(),
            message: format!(
                "the database schema is version {v}, written by a newer kore-notify (this one knows version {}); upgrade kore-notify",
                sql::SCHEMA_VERSION
            ),
        }
    }

    /// Creates or upgrades the schema.
    fn migrate(&self, rt: &Rt, client: &Arc<Client>) -> Result<()> {
        let c = client.clone();
        match rt.run(async move { sql::migrate(&c).await })?.map_err(self.db())? {
            Ok(()) => Ok(()),
            Err(v) => Err(self.newer(v)),
        }
    }
}

/// Opens a connection, with TLS as the URL's `sslmode` says; its I/O runs on the current runtime.
async fn connect(conn: &url::Conn, tls: Option<rustls::ClientConfig>) -> std::result::Result<Client, sql::Db> {
    let mut config = conn.config.clone();
    let client = match tls {
        None => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            client
        }
        Some(rustls) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, connection) = config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(rustls)).await?;
            tokio::spawn(connection);
            client
        }
    };
    // Durability is never inherited: a database or role default of `synchronous_commit = off`
    // (common on tuned servers) would let a crash lose an intent that was already answered as
    // committed, and the rerun would send it again. Every write transaction says it again
    // (`BEGIN_DURABLE`); this covers the statements that run outside one (the lock holder row).
    client.batch_execute("SET synchronous_commit = on").await?;
    Ok(client)
}

impl StateStore for PgStore {
    fn load(&self) -> Result<Loaded> {
        let rt = Rt::new()?;
        let data = self.connection(&rt)?;
        let read = sql_read(&rt, &data, &self.target)?.map_err(self.db())??;
        // Asked after the read: a run whose answers were missing from it and that still holds
        // the lock is sending them now.
        let live = self.live_holder(&rt, &data)?;
        self.loaded(read, live)
    }

    fn open(&self, command: &str) -> Result<Box<dyn Session>> {
        let rt = Rt::new()?;
        let (conn, target, key) = (self.conn.clone(), self.target.clone(), lock_key(&self.target));
        let tls = self.conn.tls_config()?;
        // The lock's own connection: nothing else runs on it, so it lives exactly as long as the
        // session (or the process).
        let (lock, pid, got) = rt
            .run(async move {
                let lock = connect(&conn, tls).await?;
                let pid: i32 = lock.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
                let got: bool = lock.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).await?.get(0);
                Ok::<_, sql::Db>((lock, pid, got))
            })?
            .map_err(self.db())?;
        let data = self.connection(&rt)?;
        if !got {
            let holder = self.live_holder(&rt, &data)?.unwrap_or_else(|| "another kore-notify process".into());
            return Err(StateError::Locked { path: self.conn.shown.clone().into(), holder });
        }
        self.migrate(&rt, &data)?;
        let holder = serde_json::to_value(Holder::now(command, &self.site, self.clock)).unwrap_or_default();
        let c = data.clone();
        let settled = rt
            .run(async move {
                c.execute(
                    "INSERT INTO kore_notify.holders (lock_key, target, holder, backend_pid) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (lock_key) DO UPDATE SET target = EXCLUDED.target, holder = EXCLUDED.holder,
                         backend_pid = EXCLUDED.backend_pid, since = now()",
                    &[&key, &target, &holder, &pid],
                )
                .await?;
                c.execute(
                    "INSERT INTO kore_notify.states (target, format_version, lineage, serial, tool_version)
                     VALUES ($1, $2, $3, 0, $4) ON CONFLICT (target) DO NOTHING",
                    &[
                        &target,
                        &(super::FORMAT_VERSION as i32),
                        &crate::fingerprint::random_id(),
                        &env!("CARGO_PKG_VERSION"),
                    ],
                )
                .await?;
                // Requests a dead run left without an answer: unknown from now on (we hold the lock,
                // so no live run is sending them).
                let n = c
                    .execute(
                        "UPDATE kore_notify.requests r SET outcome = 'unknown', error = $2
                         FROM kore_notify.notifications n
                         WHERE n.id = r.notification AND n.target = $1 AND r.outcome = 'pending'",
                        &[&target, &super::DEAD_RUN],
                    )
                    .await?;
                if n > 0 {
                    c.execute("UPDATE kore_notify.states SET changes = changes + 1 WHERE target = $1", &[&target])
                        .await?;
                }
                Ok::<_, sql::Db>(n)
            })?
            .map_err(self.db())?;
        let mut loaded = self.read(&rt, &data)?;
        loaded.replayed = settled as usize;
        Ok(Box::new(PgSession {
            data,
            _lock: lock,
            fence: Arc::new(Fence { target: self.target.clone(), key, pid }),
            shown: self.conn.shown.clone(),
            loaded,
            intents: HashMap::new(),
            broken: None,
            rt,
        }))
    }

    fn import(&self, state: State) -> Result<()> {
        let rt = Rt::new()?;
        let data = self.connection(&rt)?;
        self.migrate(&rt, &data)?;
        let (c, target, key) = (data.clone(), self.target.clone(), lock_key(&self.target));
        // No time limit: a large state takes as long as it takes, in one transaction.
        match rt.run_for(async move { sql::import(&c, &target, key, state).await }, None)?.map_err(self.db())? {
            sql::Imported::Done => Ok(()),
            sql::Imported::NotEmpty => {
                Err(StateError::Occupied { store: self.conn.shown.clone(), bot: Some(self.target.clone()) })
            }
            sql::Imported::Locked => Err(StateError::Locked {
                path: self.conn.shown.clone().into(),
                holder: "another kore-notify process".into(),
            }),
        }
    }

    fn describe(&self) -> String {
        self.conn.shown.clone()
    }
}

fn sql_read(rt: &Rt, data: &Arc<Client>, target: &str) -> Result<std::result::Result<Result<Read>, sql::Db>> {
    let (c, target) = (data.clone(), target.to_string());
    rt.run(async move { sql::read(&c, &target).await })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("bot-1"), lock_key("bot-1"));
        assert_ne!(lock_key("bot-1"), lock_key("bot-2"));
    }
}
