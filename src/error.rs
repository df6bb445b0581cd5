//! Domain errors. Each carries the process exit code it maps to, so the edge (`main`) never has to
//! guess: 1 for errors, 3 for partial delivery problems, 4 when the state is locked by someone else.

use std::path::PathBuf;

/// Exit codes (the README's exit-code table documents them).
pub(crate) mod exit {
    pub(crate) const OK: i32 = 0;
    pub(crate) const ERROR: i32 = 1;
    pub(crate) const PENDING: i32 = 2;
    pub(crate) const PARTIAL: i32 = 3;
    pub(crate) const LOCKED: i32 = 4;
}

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
    #[error("state {path}: {message}\n  the file was left untouched")]
    State { path: PathBuf, message: String },
    /// A PostgreSQL state store's problem (`url` with its password hidden).
    #[error("state {url}: {message}")]
    Database { url: String, message: String },
    #[error(
        "state {path} is locked by another run: {holder}\n  help: wait for it to finish; if that process is gone, the OS has already released the lock and you can retry"
    )]
    Locked { path: PathBuf, holder: String },
    #[error("plan file {path}: {message}")]
    StalePlan { path: PathBuf, message: String },
    #[error(
        "environment variable {name} is not set (needed for {field})\n  help: export {name}=… before running this command"
    )]
    MissingEnv { name: String, field: String },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Io(String),
}

impl Error {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Error::Locked { .. } => exit::LOCKED,
            _ => exit::ERROR,
        }
    }

    pub(crate) fn state(path: &std::path::Path, message: impl Into<String>) -> Self {
        Error::State { path: crate::load::display_path(path), message: message.into() }
    }

    pub(crate) fn io(path: &std::path::Path, action: &str, err: std::io::Error) -> Self {
        Error::Io(format!("cannot {action} {}: {err}", crate::load::display_path(path).display()))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
