//! The one error at the edge: what `run` prints after `error: `. The layers below have their own
//! typed errors ([`StateError`], [`KoreError`], [`WriteError`]), each keeping its cause as a
//! source, and convert into this one with `?`; their messages are shown unchanged. Each error
//! knows how the command ends ([`Error::exit`]): 4 when the state is locked by someone else, 1
//! otherwise.

use crate::files::WriteError;
use crate::kore::KoreError;
use crate::state::StateError;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more validation diagnostics were reported (already printed).
    #[error("{0} error(s) found; nothing was sent")]
    Invalid(usize),
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error(
        "no config file: looked for kore-notify.yaml in {start} and every parent directory{hint}\n  help: `kore-notify init` starts a repository, or pass --config FILE"
    )]
    NoConfig { start: PathBuf, hint: String },
    /// The state, its files or its store.
    #[error(transparent)]
    State(#[from] StateError),
    /// Talking to Kore.ai.
    #[error(transparent)]
    Kore(#[from] KoreError),
    /// A file the user named (`plan --out`).
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("plan file {path}: {message}")]
    StalePlan { path: PathBuf, message: String },
    #[error(
        "environment variable {name} is not set (needed for {field})\n  help: export {name}=… before running this command"
    )]
    MissingEnv { name: String, field: String },
    #[error(
        "environment variables are not set: {}\n  help: export each of them before running this command",
        .0.iter().map(|(n, f)| format!("{n} (needed for {f})")).collect::<Vec<_>>().join(", ")
    )]
    MissingEnvs(Vec<(String, String)>),
    /// What the user asked for is refused; the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// A file operation on a path the user gave (`init`).
    #[error("cannot {action} {}: {source}", path.display())]
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    /// The process could not do something it needs (read the current directory, write to stdout,
    /// read stdin, start the async runtime).
    #[error("cannot {what}: {source}")]
    System { what: &'static str, source: std::io::Error },
    #[error("cannot use the current directory: {0}")]
    CurrentDir(#[source] crate::files::FileError),
    #[error("cannot encode {what}: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
    /// The local emulator stopped.
    #[error("emulator: {0}")]
    Emulator(#[source] std::io::Error),
    /// A bug: something that cannot happen did.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl Error {
    pub(crate) fn exit(&self) -> crate::exit::Exit {
        match self {
            Error::State(e) if e.is_locked() => crate::exit::Exit::Locked,
            _ => crate::exit::Exit::Error,
        }
    }

    pub(crate) fn io(path: &std::path::Path, action: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: crate::files::display_path(path), action, source }
    }

    /// The process could not `what`.
    pub(crate) fn system(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Error::System { what, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
