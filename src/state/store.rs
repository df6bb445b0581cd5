//! The state-store seam. Commands that only read the state (plan, status, state list/show/info)
//! call [`StateStore::load`]: no lock, nothing written. Commands that change it open a
//! [`Session`]: the store's writer lock is taken (another run holding it is refused, exit 4,
//! naming the holder), a journal left by a run that died is absorbed first, and every change is
//! an [`Entry`] recorded durably *before* it is folded into the in-memory state, so that a
//! crash at any point loses nothing and replays to the same state. [`FileStore`] keeps the state
//! in a file beside its journal; a database store implements the same two traits.

use super::*;

/// Where a state is kept.
pub trait StateStore {
    /// The state as it is (snapshot and any journal replayed), read-only: no lock is taken and
    /// nothing is written. A state that cannot be read is an error naming the problem.
    fn load(&self) -> Result<Loaded>;
    /// A writer's session: the lock taken, a dead run's journal absorbed.
    fn open(&self, command: &str) -> Result<Box<dyn Session>>;
    /// Writes a whole state into this store, which must hold none (`state migrate`): refused,
    /// with nothing written, when it holds one. Durable when it returns.
    fn import(&self, state: State) -> Result<()>;
    /// Where the state is, as it may be shown (a path, or a URL without its password).
    fn describe(&self) -> String;
}

/// The store `spec` names for bot `bot`: PostgreSQL (`state: postgres://…` or
/// `KORE_NOTIFY_STATE_URL`) or a file; its timestamps read `clock`. Building it reads the
/// environment (the database password), so its errors are the configuration's.
pub(crate) fn store_for(
    spec: &super::StoreSpec,
    bot: &str,
    env: &dyn crate::interp::Env,
    clock: Clock,
) -> crate::error::Result<Box<dyn StateStore>> {
    match spec {
        super::StoreSpec::File(path) => Ok(Box::new(FileStore::new(path, env, clock))),
        super::StoreSpec::Postgres(spec) => Ok(Box::new(super::pg::PgStore::new(spec, bot, env)?.with_clock(clock))),
    }
}

/// A writer's hold on the state. The lock is released when the session is dropped (or the
/// process dies).
pub trait Session: Send {
    /// The state as loaded when the session opened (with its digest, for plan files).
    fn loaded(&self) -> &Loaded;
    /// The state with every entry recorded so far.
    fn state(&self) -> &State;
    /// Records one entry: durable when this returns, then applied to [`Session::state`].
    fn record(&mut self, e: &Entry) -> Result<()>;
    /// Writes everything recorded as the new state (a new serial); the session stays open.
    fn compact(&mut self) -> Result<()>;
}

/// The state in a file (`state.json`, with its journal, backup, high-water mark and lock).
pub(crate) struct FileStore {
    path: PathBuf,
    site: RunSite,
    clock: Clock,
}

impl FileStore {
    pub(crate) fn new(path: &Path, env: &dyn crate::interp::Env, clock: Clock) -> FileStore {
        FileStore { path: path.to_path_buf(), site: RunSite::from_env(env), clock }
    }
}

impl StateStore for FileStore {
    fn load(&self) -> Result<Loaded> {
        super::file::load_beside_writers(&self.path)
    }

    fn open(&self, command: &str) -> Result<Box<dyn Session>> {
        let lock = Lock::acquire(&self.path, command, &self.site, self.clock)?;
        let loaded = load_for_update(&self.path)?;
        Ok(Box::new(FileSession { _lock: lock, path: self.path.clone(), loaded, journal: None, clock: self.clock }))
    }

    fn import(&self, mut state: State) -> Result<()> {
        let _lock = Lock::acquire(&self.path, "kore-notify state migrate", &self.site, self.clock)?;
        let paths = Paths::new(&self.path);
        if present(&paths.snapshot) || present(&paths.journal) {
            return Err(StateError::Occupied { store: error::shown(&self.path).display().to_string(), bot: None });
        }
        // The serial continues from the source (write_snapshot moves it on by one).
        write_snapshot(&self.path, &mut state)
    }

    fn describe(&self) -> String {
        crate::files::display_path(&self.path).display().to_string()
    }
}

struct FileSession {
    _lock: Lock,
    path: PathBuf,
    loaded: Loaded,
    /// Opened with the first entry: a session that records nothing writes nothing.
    journal: Option<Journal>,
    clock: Clock,
}

impl Session for FileSession {
    fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    fn state(&self) -> &State {
        &self.loaded.state
    }

    fn record(&mut self, e: &Entry) -> Result<()> {
        if self.journal.is_none() {
            self.journal = Some(Journal::open_at(&self.path, &self.loaded.state, self.clock)?);
        }
        if let Some(j) = self.journal.as_mut() {
            j.append(e)?;
        }
        self.loaded.state.replay(e).map_err(StateError::Internal)
    }

    fn compact(&mut self) -> Result<()> {
        write_snapshot(&self.path, &mut self.loaded.state)?;
        // The snapshot absorbed the journal (and removed it): the next entry starts a new one.
        self.journal = None;
        Ok(())
    }
}
