//! The Kore.ai API side: everything that talks to Kore.ai, or knows how it answers.
//!
//! - [`KoreApi`]: the seam the send loop and the status poller call (three calls);
//! - [`http`]: its HTTP implementation, [`Client`] (fresh JWT per request, capped reads, no
//!   redirects), a thin wrapper over the pure parts below;
//! - [`classify`]: what an answer (status, headers, body) means for a send or a status request,
//!   pure and table-tested: the heart of at-most-once delivery;
//! - [`body`](mod@body): the v1/v2 request bodies exactly as the API pages specify;
//! - [`jwt`]: the signed token;
//! - [`ratelimit`]: both rolling windows, a pure core with an injected clock.
//!
//! The server, or anything between it and us, is untrusted: request ids are checked
//! ([`valid_request_id`]) before they are kept or go into a URL, and server text is made safe for
//! terminals ([`server_text`]) before it is kept or shown.

pub(crate) mod body;
pub(crate) mod classify;
pub(crate) mod http;
pub(crate) mod jwt;
pub(crate) mod ratelimit;

use serde::Deserialize;
use serde_json::Value;

use crate::manifest::Api;

pub(crate) use body::body;
pub(crate) use http::Client;
pub(crate) use ratelimit::RateLimiter;

/// How much of a server's message we keep.
const MAX_MESSAGE_CHARS: usize = 300;

/// Whether a request id from the server may be used: 1 to 128 letters, digits, `-`, `_` or `.`,
/// not starting with `.` (so never `.` or `..`).
pub(crate) fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Server text made safe to keep and show: unsafe characters visible, cut to a sane length.
pub(crate) fn server_text(s: &str) -> String {
    let t = crate::safe::line(s.trim());
    if t.chars().count() > MAX_MESSAGE_CHARS {
        format!("{}…", t.chars().take(MAX_MESSAGE_CHARS).collect::<String>())
    } else {
        t.into_owned()
    }
}

/// The innermost error message (reqwest wraps hyper wraps io), made safe.
pub(crate) fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    server_text(&cur.to_string())
}

/// What a send came to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SendResult {
    Accepted {
        request_id: Option<String>,
        status: Option<String>,
    },
    Rejected {
        status: u16,
        message: String,
    },
    /// 401: credentials wrong; the whole run stops.
    Unauthorized {
        message: String,
    },
    /// Certainly never processed: no connection could be established (after the automatic
    /// retries), or no token could be made. Nobody received it; the whole run stops.
    NotSent {
        message: String,
    },
    /// A 3xx: not processed at our URL (never followed); the whole run stops.
    Redirected {
        status: u16,
        location: String,
    },
    Unknown {
        reason: String,
    },
    /// A 2xx answer that is not a Kore.ai job (no `_id`, or not the documented JSON): the request
    /// may have been processed, so it is unknown too, never counted as accepted. Carries the job
    /// id when one could be read, so `status --refresh` can settle it.
    Unconfirmed {
        request_id: Option<String>,
        reason: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StatusLog {
    #[serde(rename = "originalId")]
    pub(crate) original_id: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) comments: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JobStatus {
    pub(crate) status: Option<String>,
    #[serde(rename = "statusLogs", default)]
    pub(crate) status_logs: Vec<StatusLog>,
}

pub(crate) fn is_terminal_status(s: &str) -> bool {
    matches!(s, "SUCCESS" | "PARTIAL_SUCCESS" | "FAILURE" | "FAILED" | "COMPLETED")
}

/// Why an answer body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{}", root_cause(.0))]
    Read(#[source] reqwest::Error),
}

/// A problem talking to Kore.ai outside the send classification: building the client, signing a
/// token, or a status request that got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum KoreError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("cannot sign the JWT: {0}")]
    Jwt(#[source] jsonwebtoken::errors::Error),
    #[error("invalid request id `{}`: not used in a URL", server_text(.0))]
    RequestId(String),
    #[error("invalid host URL: {0}")]
    HostUrl(#[source] url::ParseError),
    #[error("invalid host URL")]
    HostNotBase,
    #[error("HTTP {status} redirect to {location} (not followed); fix `host` in kore-notify.yaml")]
    Redirected { status: u16, location: String },
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("unexpected status answer: {0}")]
    StatusAnswer(#[source] serde_json::Error),
    /// Kore.ai's own message (made safe), or the status and a snippet of the body.
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("{}", root_cause(.0))]
    Transport(#[source] reqwest::Error),
}

/// What the send loop and the status poller need from Kore.ai: the seam between them and the
/// transport. [`Client`] is the HTTP implementation; another store of truth (a test double, a
/// proxy, a future API version) implements the same three calls with the same contracts:
/// `send` classifies every answer (`Accepted` only for a job; `Unknown` whenever the request may
/// have been processed) and retries only what certainly was not processed.
pub(crate) trait KoreApi: Sync {
    /// Waits for a rate-limit slot for a send: taken before the intent is journaled, so a run
    /// stopped while waiting leaves nothing unknown.
    fn take_send_slot(&self) -> impl std::future::Future<Output = ()> + Send;
    /// Sends one batch (the first slot already taken) and classifies the answer.
    fn send(&self, api: Api, body: &Value) -> impl std::future::Future<Output = SendResult> + Send;
    /// Asks a job's status (safe to retry).
    fn status(
        &self,
        api: Api,
        request_id: &str,
    ) -> impl std::future::Future<Output = Result<JobStatus, KoreError>> + Send;
}
