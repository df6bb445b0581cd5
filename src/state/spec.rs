//! Where a target's state lives, parsed here and not by the config: the config hands over what
//! was written (`state:` and the environment) and gets a [`StoreSpec`] or a [`SpecError`] to
//! report at the field's position. The backend is chosen by the value (a `postgres://` URL or a
//! path), so nothing outside `state` depends on a backend.

use std::path::{Path, PathBuf};

use super::pg::{PgSpec, is_postgres_url};

/// The environment variable that moves the state into PostgreSQL, whatever the config says.
pub(crate) const STATE_URL_VAR: &str = "KORE_NOTIFY_STATE_URL";

/// Where the state lives unless the config says otherwise.
pub(crate) const DEFAULT_STATE: &str = ".kore-notify/state.json";

/// Where a state lives.
#[derive(Clone, Debug)]
pub(crate) enum StoreSpec {
    /// A file inside the repository (the default, `.kore-notify/state.json`).
    File(PathBuf),
    /// A PostgreSQL database (`state: postgres://…` or `KORE_NOTIFY_STATE_URL`).
    Postgres(PgSpec),
}

/// Why a `state:` value (or `KORE_NOTIFY_STATE_URL`) cannot be used: a message, the fix, and
/// whether the source line must be hidden (it may hold a password).
#[derive(Debug)]
pub(crate) struct SpecError {
    pub(crate) message: String,
    pub(crate) help: String,
    pub(crate) redact: bool,
}

impl StoreSpec {
    /// The store for `written` (`state:` in the config, `None` when absent: `default` relative to
    /// `dir`), unless `KORE_NOTIFY_STATE_URL` (`env_url`) overrides it. A file must resolve inside
    /// `root`.
    pub(crate) fn parse(
        written: Option<&str>,
        default: &str,
        env_url: Option<&str>,
        root: &crate::files::Root,
        dir: &Path,
    ) -> Result<StoreSpec, SpecError> {
        if let Some(url) = env_url.filter(|v| !v.trim().is_empty()) {
            return PgSpec::secret(url, STATE_URL_VAR).map(StoreSpec::Postgres).map_err(|e| SpecError {
                message: format!("{STATE_URL_VAR}: {e}"),
                help: "set it to postgres://user:password@host:5432/database, or unset it to use `state:`".into(),
                redact: false,
            });
        }
        if let Some(raw) = written.filter(|r| is_postgres_url(r)) {
            return PgSpec::written(raw, "state in kore-notify.yaml").map(StoreSpec::Postgres).map_err(|e| SpecError {
                message: e,
                help: "state: postgres://user:${KORE_NOTIFY_PG_PASSWORD}@host:5432/database?sslmode=require".into(),
                // The line is not shown: it may hold a password.
                redact: true,
            });
        }
        let path = dir.join(written.unwrap_or(default));
        match root.confine_new(&path) {
            Ok(_) => Ok(StoreSpec::File(path)),
            Err(e) => Err(SpecError {
                message: format!("cannot keep the state there: {e}"),
                help: e.help().to_string(),
                redact: false,
            }),
        }
    }

    /// The variable the password of a PostgreSQL `state:` value comes from, when it names one
    /// (whether or not `KORE_NOTIFY_STATE_URL` overrides it now: it may not tomorrow).
    pub(crate) fn password_var_of(written: &str) -> Option<String> {
        let spec = PgSpec::written(written, "state").ok()?;
        spec.password_var().map(str::to_string)
    }

    /// The state file, when the state is kept in one.
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            StoreSpec::File(p) => Some(p),
            StoreSpec::Postgres(_) => None,
        }
    }

    /// Whether other repositories may share the state (a database; a state file lives inside
    /// its repository).
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, StoreSpec::Postgres(_))
    }

    /// What makes two specs the same place for the same bot: the file, or the database URL
    /// without its password (a database keeps each bot's state apart).
    pub(crate) fn place(&self) -> String {
        match self {
            StoreSpec::File(p) => format!("file:{}", p.display()),
            StoreSpec::Postgres(spec) => format!("pg:{}", spec.without_password()),
        }
    }
}
