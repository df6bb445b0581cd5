//! The integration suite: one test binary running the real `kore-notify` binary against real files
//! in temp dirs and the real emulator over loopback.

mod harness;

mod apply;
mod ci;
mod ci_report;
mod ci_test_send;
mod diagnostics;
mod events;
mod forecast;
mod hostile;
mod live;
mod newcomer;
mod output;
mod pg_promises;
mod plan;
mod plan_file;
mod policy;
mod postgres;
mod precision;
mod properties;
mod refresh;
mod report;
mod retention;
mod schema;
mod security;
mod state;
mod targets;
mod test_send;
mod validate;
mod values;
mod waves;
mod windows;
mod yaml_parity;
