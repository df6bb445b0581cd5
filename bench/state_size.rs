//! Measures the size of a state snapshot of a million recipients:
//!
//!     cargo run --release --locked --example bench-state-size -- [NOTIFICATIONS×RECIPIENTS…]
//!     (default: 10000x100 1000x1000)
//!
//! For each shape it records every recipient as sent through the same journal entries apply uses
//! (an intent, then an accepted outcome), writes the snapshot and prints its size, the bytes per
//! recipient and the longest recipient line. Then it reports Kore.ai's delivery status for every
//! recipient, with Kore.ai's success comment (what `status --refresh` records), and prints the
//! size again.

use kore_notify::fingerprint::{Fingerprint, recipient_hash};
use kore_notify::manifest::{Api, Channel};
use kore_notify::state::{CommentRef, Entry, Outcome, State, StoredContent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shapes: Vec<(usize, usize)> = {
        let a: Vec<(usize, usize)> = std::env::args()
            .skip(1)
            .filter_map(|a| a.split_once('x').and_then(|(n, r)| Some((n.parse().ok()?, r.parse().ok()?))))
            .collect();
        if a.is_empty() { vec![(10_000, 100), (1_000, 1_000)] } else { a }
    };
    println!(
        "{:>13}  {:>10}  {:>10}  {:>8}  {:>9}  {:>20}",
        "notifications", "recipients", "state (MB)", "B/recip.", "max line", "with statuses (MB)"
    );
    for (n, per) in shapes {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.json");
        let mut state = State::new();
        for i in 0..n {
            let key = format!("bench/notification-{i}");
            let recipients: Vec<_> = (0..per)
                .map(|j| {
                    let id = format!("user{j}.n{i}@example.com");
                    (
                        recipient_hash(&state.lineage, &id),
                        Fingerprint(recipient_hash("fingerprint", &id).0).normalized(),
                    )
                })
                .collect();
            state.replay(&Entry::Intent {
                key: key.clone(),
                req: 0,
                batch: format!("b{i}"),
                channel: Channel::Slack,
                api: Api::V1,
                content: StoredContent {
                    kind: "text".into(),
                    value: serde_json::Value::String(format!("Hello {{name}}, notification {i}.")),
                },
                recipients,
                at: "2026-11-24T09:00:00Z".into(),
            })?;
            state.replay(&Entry::Outcome {
                key,
                req: 0,
                outcome: Outcome::Accepted,
                request_id: Some(format!("ds-{i}")),
                status: None,
                error: None,
            })?;
        }
        kore_notify::state::write_snapshot(&path, &mut state)?;
        let text = std::fs::read_to_string(&path)?;
        let total = n * per;
        let max_line = text
            .lines()
            .filter(|l| l.starts_with("\t\t\t\t\"") && !l.contains("\": "))
            .map(str::len)
            .max()
            .unwrap_or(0);
        // Every recipient's delivery reported, as `status --refresh` records it.
        let keys: Vec<String> = state.notifications.keys().cloned().collect();
        for key in keys {
            let recipients = state.notifications[&key]
                .recipients
                .keys()
                .map(|h| (*h, "SUCCESS".to_string(), Some(CommentRef::Index(0))))
                .collect::<Vec<_>>();
            let count = recipients.len() as u32;
            state.replay(&Entry::Status {
                key,
                req: 0,
                status: "SUCCESS".into(),
                delivered: count,
                failed: 0,
                comments: vec!["Notification has been sent successfully".into()],
                recipients,
            })?;
        }
        kore_notify::state::write_snapshot(&path, &mut state)?;
        let with_status = std::fs::metadata(&path)?.len();
        println!(
            "{:>13}  {:>10}  {:>10.1}  {:>8.1}  {:>9}  {:>20.1}",
            n,
            total,
            text.len() as f64 / 1e6,
            text.len() as f64 / total as f64,
            max_line + 1,
            with_status as f64 / 1e6
        );
    }
    Ok(())
}
