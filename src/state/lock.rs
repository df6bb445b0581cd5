//! The exclusive OS lock writers take on the state, with its holder written into the lock file.

use super::*;

/// Holder information written into the lock file.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    pub(crate) host: String,
    pub(crate) command: String,
    pub(crate) started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ci_run: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}, `{}`, since {}", self.pid, self.host, self.command, self.started)?;
        if let Some(u) = &self.ci_run {
            write!(f, " ({u})")?;
        }
        Ok(())
    }
}

impl Holder {
    /// This process, running `command` on `site`, from now on `clock`.
    pub(crate) fn now(command: &str, site: &RunSite, clock: Clock) -> Holder {
        Holder {
            pid: std::process::id(),
            host: site.host.clone(),
            command: command.into(),
            started: clock.stamp(),
            ci_run: site.ci_run.clone(),
        }
    }
}

/// Where this process runs, as a lock holder names it: read once when a store is built, so the
/// environment is read by the caller's [`Env`](crate::interp::Env), not here.
#[derive(Clone, Debug)]
pub(crate) struct RunSite {
    host: String,
    /// The CI run's address when there is one (GitHub Actions, else GitLab's `CI_JOB_URL`).
    ci_run: Option<String>,
}

impl RunSite {
    /// The CI run's address, when there is one.
    pub(crate) fn ci_run(&self) -> Option<&str> {
        self.ci_run.as_deref()
    }

    pub(crate) fn from_env(env: &dyn crate::interp::Env) -> RunSite {
        let ci_run = match (env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")) {
            (Some(s), Some(r), Some(id)) => Some(format!("{s}/{r}/actions/runs/{id}")),
            _ => env.get("CI_JOB_URL"),
        };
        RunSite { host: hostname(env), ci_run }
    }
}

/// The machine's name, portably (`gethostname`; the environment where that is unavailable).
fn hostname(env: &dyn crate::interp::Env) -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    }
    env.get("HOSTNAME").or_else(|| env.get("COMPUTERNAME")).unwrap_or_else(|| "unknown-host".into())
}

/// An open error, explained when the path is a symlink (refused by `O_NOFOLLOW`).
pub(super) fn refused_link(path: &Path, action: &'static str, e: std::io::Error) -> StateError {
    if crate::files::is_symlink_loop(&e) {
        StateError::Symlink { path: error::shown(path) }
    } else {
        StateError::io(path, action, e)
    }
}

pub(super) fn check_regular(f: &File, path: &Path) -> Result<()> {
    match f.metadata() {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(StateError::NotRegular { path: error::shown(path) }),
        Err(e) => Err(StateError::io(path, "inspect", e)),
    }
}

/// The holder of the writer's lock on the state at `path` when a live process holds it: probed
/// with a shared lock taken and dropped at once (a writer starting in that instant retries).
pub(crate) fn live_holder(path: &Path) -> Option<String> {
    let lock = Paths::new(path).lock;
    let mut o = OpenOptions::new();
    o.read(true);
    crate::files::nofollow(&mut o, false);
    let file = o.open(&lock).ok()?;
    check_regular(&file, &lock).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(std::fs::TryLockError::WouldBlock) => Some(holder_of(&file)),
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// The holder written into a lock file, for people.
fn holder_of(file: &File) -> String {
    crate::files::read_capped(file, MAX_HOLDER_BYTES)
        .ok()
        .and_then(|s| serde_json::from_slice::<Holder>(&s).ok())
        .map_or_else(|| "another kore-notify process".into(), |h| crate::safe::line(&h.to_string()).into_owned())
}

/// How long a writer retries a lock held only by a reader's probe ([`live_holder`]).
const PROBE_RETRIES: u32 = 10;

/// An exclusive OS lock on the state, released when dropped (or when the process dies).
pub(crate) struct Lock {
    _file: File,
}

impl Lock {
    pub(crate) fn acquire(path: &Path, command: &str, site: &RunSite, clock: Clock) -> Result<Lock> {
        let (paths, _) = paths_in_dir(path)?;
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(true).truncate(false);
        // Never through a symlink: the holder text would overwrite the link's target.
        crate::files::nofollow(&mut o, false);
        let mut file = o.open(&paths.lock).map_err(|e| refused_link(&paths.lock, "open", e))?;
        check_regular(&file, &paths.lock)?;
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                // A reader probing for a live run holds a shared lock for microseconds.
                Err(std::fs::TryLockError::WouldBlock) if tries < PROBE_RETRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StateError::Locked { path: path.to_path_buf(), holder: holder_of(&file) });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(StateError::io(&paths.lock, "lock", e)),
            }
        }
        let holder = Holder::now(command, site, clock);
        let text = serde_json::to_string(&holder).unwrap_or_default();
        file.set_len(0)
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(|e| StateError::io(&paths.lock, "write", e))?;
        Ok(Lock { _file: file })
    }
}
