//! kore-notify: a declarative, GitOps-style reconciler for Kore.ai Proactive Notifications.
//!
//! The pipeline, and the module for each step:
//!
//! 1. **load** — find `kore-notify.yaml` ([`config`]), the manifest files and CSV audiences
//!    ([`load`]), every path confined to the repository and read bounded ([`files`]), parsing
//!    YAML in exactly one place ([`yaml`]) with positions kept, expanding only declared
//!    variables ([`interp`]);
//! 2. **validate** — every Kore.ai constraint checked up front, all problems reported with
//!    `file:line:column` and field path ([`diag`], [`walk`]);
//! 3. **plan** — per-recipient fingerprints ([`fingerprint`]) compared with the [`state`]: a pure
//!    function of manifests, state, tool version and clock ([`plan`], rendered by [`render`]);
//!    loading and fingerprinting spread over the cores by one fan-out ([`parallel`]);
//! 4. **lock** — an exclusive OS lock on the state for writers;
//! 5. **journal** — an intent appended and fsynced before every request;
//! 6. **send** — the send loop ([`engine::send`]) through the Kore.ai API side ([`kore`]: fresh
//!    JWT per request, rate limited by [`kore::ratelimit`], every answer decided by the pure
//!    [`kore::classify`]);
//! 7. **record** — the outcome journaled, then compacted into an atomic snapshot.
//!
//! Commands are thin wrappers ([`cli`]) over operations ([`ops`]), which never call each other:
//! what they share (the send loop, the status poller [`engine::poll`]) is in [`engine`].
//! Everything shown to people goes through one sanitizer ([`safe`]); stale states are refused
//! (`state::freshness`); date-times are written and read by [`rfc3339`], and the wall clock is
//! read through one [`clock::Clock`] that the CLI makes and hands down; a first SIGINT/SIGTERM
//! stops gracefully ([`interrupt`]). The `emulator` (cargo feature `emulator`, on by default) is a
//! local Kore.ai API for rehearsals and tests.
//!
//! Errors are typed where they happen ([`state::StateError`], [`kore::KoreError`],
//! [`files::WriteError`], each keeping its cause as a source) and meet in the one edge error,
//! [`error::Error`], which [`run`] prints. How a command ends is an [`Exit`] (the exit status).
//!
//! Layers, each importing only those below it: [`cli`] → [`ops`] → [`engine`] → [`kore`] and
//! [`state`]; [`ops`] also calls [`plan`] and [`load`]. Nothing below imports [`ops`] or [`cli`].
//!
//! ## Library API
//!
//! The crate is a command-line tool; everything is `pub(crate)` except [`run`] and what the
//! integration tests (`tests/`) and benchmarks (`bench/`) build on:
//!
//! - [`state`]: the [`State`](state::State) model with its journal [`Entry`](state::Entry),
//!   [`Outcome`](state::Outcome) and [`StoredContent`](state::StoredContent); the file store's
//!   [`load`](state::load), [`load_for_update`](state::load_for_update),
//!   [`write_snapshot`](state::write_snapshot) and [`Journal`](state::Journal); the
//!   [`StateStore`](state::StateStore) / [`Session`](state::Session) seam and the PostgreSQL
//!   store ([`PgSpec`](state::pg::PgSpec), [`PgStore`](state::pg::PgStore));
//! - [`fingerprint`]: the two hashes that must not be mixed up,
//!   [`RecipientHash`](fingerprint::RecipientHash) and [`Fingerprint`](fingerprint::Fingerprint),
//!   and [`recipient_hash`](fingerprint::recipient_hash);
//! - [`manifest`]: the notification types (`Notification`, `Recipient`, `Content`, `Api`, …);
//! - [`load`]: [`find_files`](load::find_files), [`load_repo`](load::load_repo) with its
//!   [`Sources`](load::Sources), giving the [`LoadedManifests`](load::LoadedManifests);
//!   [`files::Root`] and [`diag::Diagnostics`] that they take;
//! - [`plan`]: [`compute`](plan::compute) over [`Inputs`](plan::Inputs);
//! - [`yaml`]: [`parse_documents`](yaml::parse_documents) and its `serde_path` twin;
//! - [`cli::ProcessEnv`] (the process environment, an [`cli::Env`]), [`clock::Clock`],
//!   [`error::Error`] and [`Exit`].

// The outline above links the internal modules too (`cargo doc --document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod args;
pub mod cli;
pub mod clock;
pub(crate) mod config;
pub mod diag;
#[cfg(feature = "emulator")]
pub(crate) mod emulator;
pub(crate) mod engine;
pub mod error;
pub(crate) mod events;
pub mod exit;
pub mod files;
pub mod fingerprint;
pub(crate) mod inputs;
pub(crate) mod interp;
pub(crate) mod interrupt;
pub mod kore;
pub mod load;
pub mod manifest;
pub(crate) mod ops;
pub(crate) mod parallel;
pub mod plan;
pub(crate) mod policy;
pub(crate) mod render;
pub(crate) mod report;
pub(crate) mod rfc3339;
pub mod rollout;
pub(crate) mod safe;
pub(crate) mod schema;
pub(crate) mod shell;
pub mod state;
pub(crate) mod testsend;
pub mod text;
pub(crate) mod units;
pub(crate) mod unreachable;
pub(crate) mod walk;
pub mod window;
pub mod yaml;

use clap::Parser;

pub use exit::Exit;

/// Runs the command line and returns how it ended (`main` turns it into the exit status).
pub fn run() -> Exit {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if e.use_stderr() {
                // Clap quotes the values it refuses: shown safely, like every other error.
                shell::Shell::default().err(safe::text(&e.render().to_string()));
            } else {
                // Help and version: our own text, styled on a terminal.
                let _ = e.print();
            }
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => Exit::Ok,
                _ => Exit::Error,
            };
        }
    };
    let shell = cli.shell();
    match cli::dispatch(cli) {
        Ok(code) => code,
        Err(error::Error::Invalid(n)) => {
            shell.error(format!("{n} error(s) found; nothing was sent"));
            Exit::Error
        }
        Err(e) => {
            // Errors may quote manifest, state or server text: shown safely.
            shell.error(safe::for_output(&safe::text(&e.to_string())));
            e.exit()
        }
    }
}

/// Test helper: the loader's list of known fields matches the JSON Schema generated from `T`.
#[cfg(test)]
pub(crate) fn assert_fields_match_schema<T: schemars::JsonSchema>(fields: &[&str]) {
    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    let mut props: Vec<String> =
        schema["properties"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    props.sort();
    let mut fields: Vec<String> = fields.iter().map(std::string::ToString::to_string).collect();
    fields.sort();
    assert_eq!(props, fields);
}
