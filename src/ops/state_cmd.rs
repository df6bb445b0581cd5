//! `kore-notify state list | show KEY | rm KEY | resolve KEY --sent|--not-sent`.

use std::io::{BufRead, IsTerminal, Write};

use crate::config::Config;
use crate::diag::Diagnostics;
use crate::error::{Error, Result, exit};
use crate::ops::{Global, config_path};
use crate::state::{self, Entry, Journal, Lock, Outcome};

pub enum Command {
    List,
    Show(String),
    Rm { key: String, yes: bool },
    Resolve { key: String, sent: bool },
}

fn state_path(g: &Global) -> Result<std::path::PathBuf> {
    let p = config_path(g)?;
    let mut diags = Diagnostics::default();
    match Config::load(&p, g.env(), &mut diags)? {
        Some(c) => Ok(c.state),
        None => {
            crate::ops::report(g, &mut diags);
            Err(Error::Invalid(diags.errors()))
        }
    }
}

pub fn run(g: &Global, cmd: Command) -> Result<i32> {
    let path = state_path(g)?;
    match cmd {
        Command::List => {
            let l = state::load(&path)?;
            if !l.exists {
                println!("(no state yet at {})", path.display());
            }
            for (k, n) in &l.state.notifications {
                let unknown = n.has_unknown();
                let k = crate::safe::line(k);
                let line = format!(
                    "{k}\t{}\t{} recipient(s)\t{} request(s){}",
                    n.channel.as_str(),
                    n.recipients.values().filter(|r| r.fp.is_some()).count(),
                    n.requests.len(),
                    if unknown { "\tUNKNOWN OUTCOME" } else { "" }
                );
                println!("{}", crate::safe::for_output(&line));
            }
            Ok(exit::OK)
        }
        Command::Show(key) => {
            let l = state::load(&path)?;
            let n = l
                .state
                .notifications
                .get(&key)
                .ok_or_else(|| Error::Refused(format!("no notification `{key}` in the state")))?;
            println!("{}", serde_json::to_string_pretty(n).unwrap_or_default());
            Ok(exit::OK)
        }
        Command::Rm { key, yes } => {
            let _lock = Lock::acquire(&path, "kore-notify state rm")?;
            let mut l = state::load_for_update(&path)?;
            if !l.state.notifications.contains_key(&key) {
                return Err(Error::Refused(format!("no notification `{key}` in the state")));
            }
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Error::Refused(
                        "state rm needs confirmation: run it on a terminal or pass --yes".into(),
                    ));
                }
                eprint!(
                    "Forget `{key}`? If it is still in the manifests, the next apply sends it again to everyone. Type 'yes': "
                );
                let _ = std::io::stderr().flush();
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
                if line.trim() != "yes" {
                    eprintln!("cancelled");
                    return Ok(exit::ERROR);
                }
            }
            let e = Entry::Remove { key: key.clone() };
            let mut j = Journal::open(&path, &l.state)?;
            j.append(&e)?;
            l.state.apply(&e).map_err(Error::Io)?;
            state::write_snapshot(&path, &mut l.state)?;
            println!("removed `{key}` from the state");
            Ok(exit::OK)
        }
        Command::Resolve { key, sent } => {
            let _lock = Lock::acquire(&path, "kore-notify state resolve")?;
            let mut l = state::load_for_update(&path)?;
            let n = l
                .state
                .notifications
                .get(&key)
                .ok_or_else(|| Error::Refused(format!("no notification `{key}` in the state")))?;
            let unknown =
                n.requests.iter().filter(|r| matches!(r.outcome, Outcome::Unknown | Outcome::Pending)).count();
            if unknown == 0 {
                return Err(Error::Refused(format!("`{key}` has no request with an unknown outcome")));
            }
            let e = Entry::Resolve { key: key.clone(), sent };
            let mut j = Journal::open(&path, &l.state)?;
            j.append(&e)?;
            l.state.apply(&e).map_err(Error::Io)?;
            state::write_snapshot(&path, &mut l.state)?;
            println!(
                "resolved {unknown} request(s) of `{key}` as {}",
                if sent {
                    "sent: their recipients will not be sent this content again"
                } else {
                    "not sent: the next apply sends to their recipients"
                }
            );
            Ok(exit::OK)
        }
    }
}
