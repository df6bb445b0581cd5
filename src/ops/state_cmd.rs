//! `kore-notify state list | show KEY | rm KEY | resolve KEY [REQUEST] --sent|--not-sent`.

use std::io::{BufRead, IsTerminal, Write};

use crate::config::{Config, Target};
use crate::diag::Diagnostics;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::ops::{Global, config_path};
use std::collections::HashMap;

use crate::fingerprint::{RecipientHash, recipient_hash};
use crate::state::{self, Entry, NotificationState, StateStore};

pub(crate) enum Command {
    Path {
        all: bool,
    },
    Info,
    Compact,
    List,
    Show(String),
    Rm {
        key: String,
        yes: bool,
    },
    Resolve(Resolve),
    /// `state resume KEY`: lift a canary rollout's halt.
    Resume(String),
    /// `state migrate --to URL|PATH`.
    Migrate {
        to: String,
    },
}

/// `state resolve KEY [REQUEST] [--sent|--not-sent] [--all] [--show-recipients]`.
pub(crate) struct Resolve {
    pub(crate) key: String,
    /// Index (`3`, `#3`), batch id or Kore.ai job id.
    pub(crate) request: Option<String>,
    /// `Some(true)`: sent; `Some(false)`: not sent; `None`: only list.
    pub(crate) decision: Option<bool>,
    pub(crate) all: bool,
    pub(crate) show_recipients: bool,
}

fn load_config(g: &Global) -> Result<Config> {
    let p = config_path(g)?;
    let mut diags = Diagnostics::default();
    match Config::load(&p, g.env(), &mut diags)? {
        Some(c) => Ok(c),
        None => {
            crate::ops::report(g, &mut diags);
            Err(Error::Invalid(diags.errors()))
        }
    }
}

pub(crate) fn run(g: &Global, cmd: Command) -> Result<Exit> {
    let config = load_config(g)?;
    let t = config.one(g.target.as_deref(), "kore-notify state")?;
    if let Command::Migrate { to } = &cmd {
        return migrate(g, &config, t, to);
    }
    let Some(path) = t.state.file().map(std::path::Path::to_path_buf) else {
        if let (Command::Path { .. }, state::StoreSpec::Postgres(spec)) = (&cmd, &t.state) {
            // No files (and no password needed to say so): nothing to commit or upload.
            g.shell.errln(format!("the state is kept in PostgreSQL ({}): it has no files", spec.shown()));
            return Ok(Exit::Ok);
        }
        return run_on(g, &config, t, &*t.store(g.env(), g.clock)?, cmd);
    };
    if let Command::Path { all } = cmd {
        let p = state::Paths::new(&path);
        let mut files = vec![p.snapshot.clone()];
        if all {
            files.extend([p.journal.clone(), p.backup.clone(), p.mark.clone()]);
            // The test ledger (`test-send`) is kept with the state.
            let l = state::Paths::new(&crate::testsend::ledger_path(&path));
            files.extend([l.snapshot, l.journal, l.backup, l.mark]);
        }
        for f in files {
            g.shell.outln(crate::files::display_path(&f).display().to_string());
        }
        return Ok(Exit::Ok);
    }
    run_on(g, &config, t, &state::FileStore::new(&path, g.env(), g.clock), cmd)
}

fn run_on(g: &Global, config: &Config, t: &Target, store: &dyn StateStore, cmd: Command) -> Result<Exit> {
    match cmd {
        Command::Path { .. } | Command::Migrate { .. } => {}
        Command::Info => info(g, store)?,
        Command::Compact => compact(g, store, config, t)?,
        Command::List => list(g, store)?,
        Command::Show(key) => {
            let l = store.load()?;
            let text = match (l.state.notifications.get(&key), l.state.tombstones.get(&key)) {
                (Some(n), _) => serde_json::to_string_pretty(n),
                (None, Some(t)) => serde_json::to_string_pretty(&serde_json::json!({ "tombstone": t })),
                (None, None) => return Err(Error::Refused(format!("no notification `{key}` in the state"))),
            };
            g.shell.outln(crate::safe::json(&text.unwrap_or_default()));
        }
        Command::Rm { key, yes } => return rm(g, store, &key, yes),
        Command::Resolve(r) => return resolve(g, store, &r),
        Command::Resume(key) => return crate::ops::resume::resume(g, store, &key),
    }
    Ok(Exit::Ok)
}

/// `state info`: `name value` lines for scripts.
fn info(g: &Global, store: &dyn StateStore) -> Result<()> {
    let l = store.load()?;
    let unknown: usize = l.state.notifications.values().map(|n| n.unknown_requests().count()).sum();
    g.shell.outln(format!("path {}", store.describe()));
    g.shell.outln(format!("exists {}", l.exists));
    g.shell.outln(format!("lineage {}", if l.exists { l.state.lineage.as_str() } else { "-" }));
    g.shell.outln(format!("serial {}", if l.exists { l.state.serial } else { 0 }));
    g.shell.outln(format!("journal {}", l.replayed));
    g.shell.outln(format!("notifications {}", l.state.notifications.len()));
    g.shell.outln(format!("unknown {unknown}"));
    g.shell.outln(format!("tombstones {}", l.state.tombstones.len()));
    Ok(())
}

/// `state compact`: a journal left by an interrupted run absorbed into a new snapshot; with a
/// `retention`, notifications orphaned longer than it (as recorded by apply) replaced by
/// tombstones.
fn compact(g: &Global, store: &dyn StateStore, config: &Config, t: &Target) -> Result<()> {
    let now = g.now;
    // Opening a writer's session absorbs a journal left by a dead run.
    let mut session = g.open(store, "kore-notify state compact")?;
    let l = session.loaded();
    let unknown: usize = l.state.notifications.values().map(|n| n.unknown_requests().count()).sum();
    if l.replayed == 0 {
        g.shell.outln(format!("no journal to absorb (serial {})", l.state.serial));
    } else {
        g.shell.outln(format!(
            "absorbed {} journal entries into serial {}; {unknown} request(s) have an unknown outcome (`kore-notify plan` lists them)",
            l.replayed, l.state.serial
        ));
    }
    // Only what this repository declared: another repository sharing the state judges its own.
    let mine = (config.origin.as_str(), t.state_is_shared());
    let due = config.retention.map(|r| session.state().due_for_tombstone(r, now, mine)).unwrap_or_default();
    if due.is_empty() {
        return Ok(());
    }
    let at = crate::rfc3339::to_second(now);
    for key in &due {
        session.record(&Entry::Retire { key: key.clone(), at: at.clone() })?;
    }
    session.compact()?;
    for key in &due {
        let line = format!("retired `{key}`: orphaned longer than the retention, replaced by a tombstone");
        g.shell.outln(crate::safe::for_output(&crate::safe::line(&line)));
    }
    Ok(())
}

/// `state list`: a line per notification.
fn list(g: &Global, store: &dyn StateStore) -> Result<()> {
    let l = store.load()?;
    if !l.exists {
        g.shell.outln(format!("(no state yet at {})", store.describe()));
    }
    for (k, n) in &l.state.notifications {
        let line = format!(
            "{}\t{}\t{} recipient(s)\t{} request(s){}",
            crate::safe::line(k),
            n.channel.as_str(),
            n.recipients.values().filter(|r| r.fp.is_some()).count(),
            n.requests.len(),
            if let Some(r) = n.requests.iter().find(|r| r.outcome == crate::state::Outcome::Pending) {
                format!("\t{}", r.error.as_deref().unwrap_or("in flight"))
            } else if n.has_unknown() {
                "\tUNKNOWN OUTCOME".to_string()
            } else if let Some(s) = &n.orphaned_since {
                format!("\torphaned since {s}")
            } else {
                String::new()
            }
        );
        g.shell.outln(crate::safe::for_output(&line));
    }
    for (k, t) in &l.state.tombstones {
        let line = format!(
            "{}\t{}\t{} recipient(s)\t{} request(s)\tretired {} (orphaned since {})",
            crate::safe::line(k),
            t.channel.as_str(),
            t.recipients,
            t.requests,
            t.tombstoned_at,
            t.orphaned_since
        );
        g.shell.outln(crate::safe::for_output(&line));
    }
    Ok(())
}

/// `state rm KEY`: forgets a notification, after confirmation.
fn rm(g: &Global, store: &dyn StateStore, key: &str, yes: bool) -> Result<Exit> {
    let mut session = g.open(store, "kore-notify state rm")?;
    if !session.state().notifications.contains_key(key) {
        return Err(Error::Refused(format!("no notification `{key}` in the state")));
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Refused("state rm needs confirmation: run it on a terminal or pass --yes".into()));
        }
        g.shell.err(format!(
            "Forget `{key}`? If it is still in the manifests, the next apply sends it again to everyone. Type 'yes': "
        ));
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if line.trim() != "yes" {
            g.shell.errln("cancelled");
            return Ok(Exit::Error);
        }
    }
    session.record(&Entry::Remove { key: key.to_string() })?;
    session.compact()?;
    g.shell.outln(format!("removed `{key}` from the state"));
    Ok(Exit::Ok)
}

/// Finds the unknown request a user named: its index (`3` or `#3`), its batch id, or Kore's job id.
fn find_request(n: &NotificationState, key: &str, which: &str) -> Result<u32> {
    let w = which.trim().trim_start_matches('#');
    let found =
        n.requests.iter().enumerate().find(|(i, r)| {
            w.parse::<usize>().is_ok_and(|x| x == *i) || r.batch == w || r.request_id.as_deref() == Some(w)
        });
    match found {
        Some((i, r)) if r.outcome.is_unknown() => Ok(i as u32),
        Some((i, r)) => Err(Error::Refused(format!(
            "request #{i} of `{key}` is {}, not unknown; nothing to resolve",
            r.outcome.as_str()
        ))),
        None => Err(Error::Refused(format!(
            "`{key}` has no request `{which}`; `kore-notify state resolve {key}` lists its unknown requests"
        ))),
    }
}

/// Recipient identities by state hash, from the manifests (the state holds no identities). When
/// the manifests cannot be loaded, recipients are shown by hash.
/// Also returns the target, which keys masks as in plans.
fn recipient_names(g: &Global, lineage: &str) -> (HashMap<RecipientHash, String>, String) {
    let quiet = Global { quiet: true, ..g.clone() };
    match crate::ops::load_workspace(&quiet, &[]) {
        Ok(ws) => (
            ws.manifests
                .notifications
                .iter()
                .flat_map(|n| n.recipients.iter())
                .map(|r| (recipient_hash(lineage, &r.id), r.id.clone()))
                .collect(),
            ws.config
                .one(g.target.as_deref(), "kore-notify state")
                .map(|t| t.identity().to_string())
                .unwrap_or_default(),
        ),
        Err(_) => {
            g.shell.errln(
                "note: the manifests could not be loaded (`kore-notify validate` says why); recipients are shown by hash",
            );
            (HashMap::new(), String::new())
        }
    }
}

/// Lists one unknown request and its recipients (masked unless `clear`).
fn list_request(
    g: &Global,
    key: &str,
    n: &NotificationState,
    i: u32,
    names: &(HashMap<RecipientHash, String>, String),
    clear: bool,
) {
    let (names, mask_key) = names;
    let r = &n.requests[i as usize];
    let mut head = format!("unknown request #{i} of `{key}` (batch {}", r.batch);
    if let Some(id) = &r.request_id {
        head.push_str(&format!(", Kore.ai id {id}"));
    }
    head.push_str(&format!(", sent {})", r.sent_at));
    if let Some(e) = &r.error {
        head.push_str(&format!(": {e}"));
    }
    g.shell.outln(crate::safe::for_output(&crate::safe::line(&head)));
    let mut ids: Vec<String> = n
        .recipients
        .iter()
        .filter(|(_, rs)| rs.pending.as_ref().is_some_and(|p| p.req == i))
        .map(|(h, _)| match names.get(h) {
            Some(id) if clear => crate::safe::line(id).into_owned(),
            Some(id) => crate::render::mask(id, mask_key),
            None => format!("(not in the manifests: {})", &h.to_string()[..8]),
        })
        .collect();
    ids.sort();
    g.shell.outln(format!("  {} recipient(s):", ids.len()));
    for id in ids {
        g.shell.outln(format!("    {id}"));
    }
}

fn resolve(g: &Global, store: &dyn StateStore, r: &Resolve) -> Result<Exit> {
    let key = &r.key;
    let mut session = g.open(store, "kore-notify state resolve")?;
    let n = session
        .state()
        .notifications
        .get(key)
        .ok_or_else(|| Error::Refused(format!("no notification `{key}` in the state")))?;
    let unknown: Vec<u32> = n.unknown_requests().map(|(i, _)| i).collect();
    if unknown.is_empty() {
        return Err(Error::Refused(format!("`{key}` has no request with an unknown outcome")));
    }
    let names = recipient_names(g, &session.state().lineage);
    let chosen: Vec<u32> = match (&r.request, r.all) {
        (Some(which), _) => vec![find_request(n, key, which)?],
        (None, true) => unknown.clone(),
        (None, false) if unknown.len() == 1 => unknown.clone(),
        (None, false) => {
            for i in &unknown {
                list_request(g, key, n, *i, &names, r.show_recipients);
            }
            return match r.decision {
                None => Ok(Exit::Ok),
                Some(_) => Err(Error::Refused(format!(
                    "`{key}` has {} requests with an unknown outcome (listed above), and each may have had a different fate; resolve them one at a time: `kore-notify state resolve {key} {} --sent|--not-sent` (or --all to settle them all the same way)",
                    unknown.len(),
                    unknown[0]
                ))),
            };
        }
    };
    for i in &chosen {
        list_request(g, key, n, *i, &names, r.show_recipients);
    }
    let Some(sent) = r.decision else {
        g.shell.outln(format!(
            "decide with `kore-notify state resolve {key} {} --sent` (it was delivered) or `--not-sent` (send it again)",
            chosen[0]
        ));
        return Ok(Exit::Ok);
    };
    for i in &chosen {
        session.record(&Entry::Resolve { key: key.clone(), sent, req: Some(*i) })?;
    }
    session.compact()?;
    let which: Vec<String> = chosen.iter().map(|i| format!("#{i}")).collect();
    g.shell.outln(format!(
        "resolved request(s) {} of `{key}` as {}",
        which.join(", "),
        if sent {
            "sent: their recipients will not be sent this content again"
        } else {
            "not sent: the next apply sends to their recipients"
        }
    ));
    Ok(Exit::Ok)
}

/// `state migrate --to URL|PATH`: the whole state, as it is (lineage, serial, every request and
/// recipient), copied into an empty store under both stores' locks. The source is left as it was.
fn migrate(g: &Global, config: &Config, t: &Target, to: &str) -> Result<Exit> {
    let source = t.store(g.env(), g.clock)?;
    let target: Box<dyn StateStore> = if state::pg::is_postgres_url(to) {
        let spec = state::pg::PgSpec::written(to, "--to").map_err(|e| Error::Refused(format!("--to: {e}")))?;
        Box::new(state::pg::PgStore::new(&spec, t.identity(), g.env())?.with_clock(g.clock))
    } else {
        let path = config.dir.join(to);
        config.root.confine_new(&path).map_err(|e| Error::Refused(format!("--to {to}: {e}")))?;
        Box::new(state::FileStore::new(&path, g.env(), g.clock))
    };
    if source.describe() == target.describe() {
        return Err(Error::Refused(format!("--to {}: that is where the state already is", target.describe())));
    }
    // The source's writer lock is held throughout: no apply changes it while it is copied.
    let session = source.open("kore-notify state migrate")?;
    let st = session.state().clone();
    let (notifications, recipients) =
        (st.notifications.len(), st.notifications.values().map(|n| n.recipients.len()).sum::<usize>());
    target.import(st)?;
    g.shell.outln(format!(
        "migrated {notifications} notification(s) and {recipients} recipient record(s) from {} to {}",
        source.describe(),
        target.describe()
    ));
    g.shell.outln(format!(
        "next: point the config at it (state: in kore-notify.yaml, or {}), check that `kore-notify plan` shows no change, then remove the old state",
        state::STATE_URL_VAR
    ));
    Ok(Exit::Ok)
}
