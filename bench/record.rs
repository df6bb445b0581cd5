//! Measures what it costs apply to record one batch, with small and large states:
//!
//!     cargo run --release --example bench-record -- [NOTIFICATIONS…]   (default: 10 10000)
//!     cargo run --release --example bench-record -- --postgres URL [NOTIFICATIONS…]
//!
//! With `--postgres URL` (a database it may reset: its `kore_notify` schema is dropped first), the
//! same through the PostgreSQL store: the state imported, a writer's session opened (lock taken),
//! and each entry recorded as apply records it, one transaction each.
//!
//! For each size it builds a state of NOTIFICATIONS notifications × 100 sent recipients, writes
//! it as a snapshot, opens the journal as apply does, and then times recording one batch of 1000
//! recipients exactly as apply does: the intent appended and fsynced, then the outcome appended
//! and fsynced, each applied to the in-memory state. The snapshot rewrite (compaction) happens once
//! per run, not per batch; its time is printed separately for comparison.
//!
//! Budget (README, Benchmarks): recording one batch must cost O(batch), not O(state).

use std::time::{Duration, Instant};

use kore_notify::clock::Clock;
use kore_notify::fingerprint::{Fingerprint, recipient_hash};
use kore_notify::manifest::{Api, Channel};
use kore_notify::state::{Entry, Journal, Outcome, State, StoredContent};

const RECIPIENTS_PER_NOTIFICATION: usize = 100;
const BATCH: usize = 1000;
const ROUNDS: usize = 30;

fn content() -> StoredContent {
    StoredContent { kind: "text".into(), value: serde_json::Value::String("Hello there".into()) }
}

fn record(state: &mut State, key: &str, req: u32, ids: impl Iterator<Item = String>) -> Vec<Entry> {
    let recipients = ids
        .map(|id| (recipient_hash(&state.lineage, &id), Fingerprint(recipient_hash("fingerprint", &id).0)))
        .collect();
    vec![
        Entry::Intent {
            key: key.to_string(),
            req,
            batch: format!("b{req}"),
            channel: Channel::Slack,
            api: Api::V1,
            content: content(),
            recipients,
            at: Clock::System.stamp(),
        },
        Entry::Outcome {
            key: key.to_string(),
            req,
            outcome: Outcome::Accepted,
            request_id: Some(format!("ds-{req}")),
            status: None,
            error: None,
        },
    ]
}

/// The state of `n` notifications × 100 sent recipients.
fn large_state(n: usize) -> Result<State, Box<dyn std::error::Error>> {
    let mut state = State::new();
    for i in 0..n {
        let key = format!("bench/notification-{i}");
        for e in record(&mut state, &key, 0, (0..RECIPIENTS_PER_NOTIFICATION).map(|j| format!("u{j}.n{i}"))) {
            state.replay(&e)?;
        }
    }
    Ok(state)
}

fn report(n: usize, size: &str, times: &mut [Duration], once: &str) {
    times.sort();
    println!(
        "{:>13}  {:>13}  {:>20.2}ms  {:>20.2}ms  {:>18}",
        n,
        size,
        times[ROUNDS / 2].as_secs_f64() * 1e3,
        times[ROUNDS * 9 / 10].as_secs_f64() * 1e3,
        once
    );
}

/// The same through the PostgreSQL store.
fn postgres(url: &str, sizes: &[usize]) -> Result<(), Box<dyn std::error::Error>> {
    use kore_notify::state::StateStore;
    println!(
        "{:>13}  {:>13}  {:>22}  {:>22}  {:>18}",
        "notifications", "recipients", "record 1 batch (median)", "record 1 batch (p90)", "import (once)"
    );
    let spec = kore_notify::state::pg::PgSpec::secret(url, "--postgres")?;
    for &n in sizes {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            c.batch_execute("DROP SCHEMA IF EXISTS kore_notify CASCADE").await
        })?;
        let store = kore_notify::state::pg::PgStore::new(&spec, "st-bench", &kore_notify::cli::ProcessEnv)?;
        let state = large_state(n)?;
        let t = Instant::now();
        store.import(state)?;
        let import = t.elapsed();
        // A long-lived database: vacuumed, analysed and checkpointed, so that autovacuum and the
        // first writes after the import do not land in the timed rounds.
        rt.block_on(async {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            c.batch_execute("VACUUM ANALYZE").await?;
            c.batch_execute("CHECKPOINT").await
        })?;
        let mut session = store.open("bench-record")?;
        let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let key = format!("bench/new-{round}");
            let mut scratch = State::new();
            scratch.lineage.clone_from(&session.state().lineage);
            let entries = record(&mut scratch, &key, 0, (0..BATCH).map(|j| format!("new{j}.r{round}")));
            let t = Instant::now();
            for e in &entries {
                session.record(e)?;
            }
            times.push(t.elapsed());
        }
        report(
            n,
            &format!("{}", n * RECIPIENTS_PER_NOTIFICATION),
            &mut times,
            &format!("{:.1}s", import.as_secs_f64()),
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pg = args.iter().position(|a| a == "--postgres").and_then(|i| args.get(i + 1)).cloned();
    let sizes: Vec<usize> = {
        let a: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        if a.is_empty() { vec![10, 10_000] } else { a }
    };
    if let Some(url) = pg {
        return postgres(&url, &sizes);
    }
    println!(
        "{:>13}  {:>13}  {:>22}  {:>22}  {:>18}",
        "notifications", "state (MB)", "record 1 batch (median)", "record 1 batch (p90)", "snapshot rewrite"
    );
    for n in sizes {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.json");
        let mut state = large_state(n)?;
        let t = Instant::now();
        kore_notify::state::write_snapshot(&path, &mut state)?;
        let snapshot = t.elapsed();
        let size = std::fs::metadata(&path)?.len() as f64 / 1e6;
        let mut journal = Journal::open(&path, &state)?;
        let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let key = format!("bench/new-{round}");
            let entries = record(&mut state, &key, 0, (0..BATCH).map(|j| format!("new{j}.r{round}")));
            let t = Instant::now();
            for e in &entries {
                journal.append(e)?;
                state.replay(e)?;
            }
            times.push(t.elapsed());
        }
        report(n, &format!("{size:.1}"), &mut times, &format!("{:.1}ms", snapshot.as_secs_f64() * 1e3));
    }
    Ok(())
}
