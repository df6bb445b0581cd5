//! Generates a synthetic kore-notify repository for benchmarks:
//!
//!     cargo run --release --example bench-gen -- DIR NOTIFICATIONS RECIPIENTS [--sent|--refreshed] [--inline]
//!
//! NOTIFICATIONS manifests (100 documents per file) with RECIPIENTS recipients in all, each
//! notification with its own CSV audience (identity, two parameters). With `--inline`, the
//! recipients are written in the manifests instead (`identities:` with an email, a
//! `customMessage` and two parameters each: about 150 bytes of YAML a recipient, so 1,000,000
//! recipients make 150 MB of YAML in 100 files). With `--sent`, also writes a
//! state in which every recipient has already been sent to (the steady state of a repository in
//! CI: the plan is all no-op), built through the library exactly as apply records sends. With
//! `--refreshed`, every recipient's delivery is also reported as Kore.ai reports a success (status
//! SUCCESS, comment "Notification has been sent successfully"), through the entries
//! `status --refresh` records: the state every CI run reaches after its refresh.

use std::fmt::Write as _;
use std::path::PathBuf;

use kore_notify::cli::ProcessEnv;
use kore_notify::diag::Diagnostics;
use kore_notify::state::{CommentRef, Entry, Outcome, State, StoredContent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: bench-gen DIR NOTIFICATIONS RECIPIENTS [--sent|--refreshed] [--inline]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[1]);
    let n: usize = args[2].parse()?;
    let r: usize = args[3].parse()?;
    let refreshed = args.iter().any(|a| a == "--refreshed");
    let sent = refreshed || args.iter().any(|a| a == "--sent");
    let inline = args.iter().any(|a| a == "--inline");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("notifications"))?;
    if !inline {
        std::fs::create_dir_all(dir.join("audiences"))?;
    }
    std::fs::write(
        dir.join("kore-notify.yaml"),
        "host: ${KORE_HOST:-http://127.0.0.1:8085}\nbotId: st-bench\nclientId: ${KORE_CLIENT_ID}\nclientSecret: ${KORE_CLIENT_SECRET}\nstate: .kore-notify/state.json\nmanifests: [notifications]\n",
    )?;
    let per = r / n;
    let mut extra = r % n;
    let mut file = String::new();
    let mut serial = 0;
    for i in 0..n {
        let count = per + usize::from(extra > 0);
        extra = extra.saturating_sub(1);
        if inline {
            let _ = write!(
                file,
                "---\nkey: bench/notification-{i}\nchannel: ivr\ncontent:\n  type: text\n  value: 'Hello {{name}}, notification {i} about {{ref}}.'\nidentities:\n"
            );
            for j in 0..count {
                let _ = write!(
                    file,
                    "  - email: user{j}.n{i}@example.com\n    customMessage: 'Hi {{name}}, your reference {{ref}} for notification {i} is ready.'\n    parameters: {{name: Name{j}, ref: REF-{i}-{j}}}\n"
                );
            }
        } else {
            let mut csv = String::with_capacity(count * 48);
            csv.push_str("email,name,ref\n");
            for j in 0..count {
                let _ = writeln!(csv, "user{j}.n{i}@example.com,Name{j},REF-{i}-{j}");
            }
            std::fs::write(dir.join(format!("audiences/a{i}.csv")), csv)?;
            let _ = write!(
                file,
                "---\nkey: bench/notification-{i}\nchannel: ivr\ncontent:\n  type: text\n  value: 'Hello {{name}}, notification {i} about {{ref}}.'\nidentitiesFrom: ../audiences/a{i}.csv\n"
            );
        }
        if (i + 1) % 100 == 0 || i + 1 == n {
            std::fs::write(dir.join(format!("notifications/m{serial:05}.yaml")), &file)?;
            file.clear();
            serial += 1;
        }
    }
    if sent {
        // Record every recipient as sent, through the same journal entries apply uses.
        let mut diags = Diagnostics::default();
        let root = kore_notify::files::Root::new(&dir).map_err(|e| e.to_string())?;
        let files = kore_notify::load::find_files(Some(&root), &dir, &["notifications".to_string()], &mut diags);
        let src = kore_notify::load::Sources {
            root: &root,
            variables: &[],
            env: &ProcessEnv,
            targets: None,
            default_windows: &[],
        };
        let repo = kore_notify::load::load_repo(files, src, &mut diags);
        if diags.errors() > 0 {
            return Err(format!("{} errors in the generated repository", diags.errors()).into());
        }
        let mut state = State::new();
        let plan = kore_notify::plan::compute(&kore_notify::plan::Inputs {
            target: "st-bench",
            notifications: &repo.notifications,
            state: &state,
            state_exists: true,
            state_digest: "",
            now: time::OffsetDateTime::now_utc(),
            retry_unknown: kore_notify::plan::Select::Nothing,
            retry_failed: kore_notify::plan::Select::Nothing,
            retention: None,
            origin: "",
            shared_state: false,
            wall: None,
            skip_unreachable: false,
        });
        for (p, note) in plan.notifications.iter().zip(&repo.notifications) {
            for (b, chunk) in p.sends.chunks(1000).enumerate() {
                let e = Entry::Intent {
                    key: p.key.clone(),
                    req: b as u32,
                    batch: format!("b{b}"),
                    channel: note.channel,
                    api: note.api,
                    content: StoredContent::from(&note.content),
                    recipients: chunk.iter().map(|r| (r.hash, r.fingerprint)).collect(),
                    at: String::new(),
                };
                state.replay(&e)?;
                state.replay(&Entry::Outcome {
                    key: p.key.clone(),
                    req: b as u32,
                    outcome: Outcome::Accepted,
                    request_id: Some(format!("ds-{b}")),
                    status: Some("SUCCESS".into()),
                    error: None,
                })?;
                if refreshed {
                    state.replay(&Entry::Status {
                        key: p.key.clone(),
                        req: b as u32,
                        status: "SUCCESS".into(),
                        delivered: chunk.len() as u32,
                        failed: 0,
                        comments: vec!["Notification has been sent successfully".into()],
                        recipients: chunk
                            .iter()
                            .map(|r| (r.hash, "SUCCESS".to_string(), Some(CommentRef::Index(0))))
                            .collect(),
                    })?;
                }
            }
        }
        kore_notify::state::write_snapshot(&dir.join(".kore-notify/state.json"), &mut state)?;
    }
    println!(
        "generated {} notifications, {} recipients in {}{}",
        n,
        r,
        dir.display(),
        if refreshed {
            " (all sent, deliveries reported)"
        } else if sent {
            " (all sent)"
        } else {
            ""
        }
    );
    Ok(())
}
