//! The machinery operations share, below them: the send loop ([`send`]) and the status poller
//! ([`poll`]). It takes plain settings (no `Global`, no clap) and records through a state
//! [`Session`](crate::state::Session); operations never call each other, they call this.

pub(crate) mod poll;
pub(crate) mod progress;
pub(crate) mod send;
