//! The integration suite: one test binary running the real `kore-notify` binary against real files
//! in temp dirs and the real emulator over loopback.

mod harness;

mod apply;
mod ci;
mod hostile;
mod newcomer;
mod plan;
mod postgres;
mod precision;
mod properties;
mod refresh;
mod retention;
mod schema;
mod security;
mod state;
mod validate;
mod yaml_parity;
