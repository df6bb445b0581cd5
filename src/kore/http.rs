//! The HTTP implementation of [`KoreApi`]: a fresh JWT per request, every answer body read with a
//! cap ([`MAX_ANSWER_BYTES`], [`MAX_STATUS_BYTES`]) enforced while reading, redirects never
//! followed, request ids percent-encoded before they go into a URL. What an answer means is
//! decided by [`classify`]; this only moves bytes, waits and retries.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::classify::{self, Answer, BACKOFF_CAP, Next};
use super::{BodyError, JobStatus, KoreApi, KoreError, RateLimiter, SendResult, root_cause, valid_request_id};
use crate::clock::Clock;
use crate::config::{Credentials, Target};
use crate::manifest::Api;

const MAX_ATTEMPTS: u32 = 8;
/// Attempts at a connection that cannot be established (a closed port, a host that does not
/// answer) before the request is given up as not sent and the run stops: about 2 s of backoff.
const CONNECT_ATTEMPTS: u32 = 4;
/// Largest answer to a send (or an error answer) we read.
pub(crate) const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// Largest status answer we read (a job of 1000 identities with their logs is about 300 KB).
pub(crate) const MAX_STATUS_BYTES: u64 = 16 * 1024 * 1024;
const BACKOFF_BASE: Duration = Duration::from_millis(500);

/// Reads an answer body, failing as soon as it exceeds `cap` bytes (never buffering more).
async fn read_body(mut r: reqwest::Response, cap: u64) -> Result<String, BodyError> {
    if r.content_length().is_some_and(|n| n > cap) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(BodyError::Read)? {
        if (buf.len() + chunk.len()) as u64 > cap {
            return Err(BodyError::TooLarge(cap));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A header as text, when it is.
fn header(r: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    r.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from)
}

/// Reads what [`classify`] needs of an answer (the body only when `reads` says so, under `cap`)
/// and hands it to `decide`.
async fn classified<T>(
    r: reqwest::Response,
    cap: u64,
    reads: fn(u16) -> bool,
    decide: impl FnOnce(Answer) -> Next<T>,
) -> Next<T> {
    let status = r.status().as_u16();
    let retry_after = header(&r, reqwest::header::RETRY_AFTER);
    let location = header(&r, reqwest::header::LOCATION);
    let (text, unreadable) = match if reads(status) { read_body(r, cap).await } else { Ok(String::new()) } {
        Ok(t) => (t, None),
        Err(e) => (String::new(), Some(e)),
    };
    decide(Answer {
        status,
        retry_after: retry_after.as_deref(),
        location: location.as_deref(),
        body: unreadable.map_or(Ok(text.as_str()), Err),
    })
}

/// Full jitter: a uniformly random wait between zero and the exponential ceiling.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << attempt.min(16)).min(BACKOFF_CAP);
    ceiling.mul_f64(rand::random::<f64>())
}

/// The HTTP client of one run, sharing its rate limiter.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    creds: Credentials,
    limiter: Arc<RateLimiter>,
    /// For the tokens' `iat`.
    clock: Clock,
}

impl Client {
    pub(crate) fn new(
        config: &Target,
        creds: Credentials,
        limiter: Arc<RateLimiter>,
        clock: Clock,
    ) -> Result<Client, KoreError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout.into()))
            .timeout(Duration::from_secs(config.request_timeout.into()))
            .user_agent(concat!("kore-notify/", env!("CARGO_PKG_VERSION")))
            // Never follow a redirect: it would re-send the body and the signed token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(KoreError::Client)?;
        Ok(Client { http, base: format!("{}/api/public/bot/{}", config.host, config.bot_id), creds, limiter, clock })
    }

    fn send_url(&self, api: Api) -> String {
        match api {
            Api::V1 => format!("{}/notify", self.base),
            Api::V2 => format!("{}/notifyV2", self.base),
        }
    }

    fn token(&self) -> Result<String, KoreError> {
        super::jwt::mint(&self.creds, self.clock.now().unix_timestamp())
    }

    /// Sends one batch; the caller has taken the first slot with `take_send_slot`. Retries only
    /// what certainly was not processed, each retry taking its own slot.
    async fn send_batch(&self, api: Api, body: &Value) -> SendResult {
        let url = self.send_url(api);
        let mut attempt = 0;
        loop {
            if attempt > 0 {
                self.limiter.acquire().await;
            }
            let token = match self.token() {
                Ok(t) => t,
                Err(e) => return SendResult::NotSent { message: e.to_string() },
            };
            let last = attempt + 1 >= MAX_ATTEMPTS;
            let wait = match self.http.post(&url).header("auth", token).json(body).send().await {
                Err(e) if e.is_connect() => {
                    // The connection was never established: the request cannot have been processed.
                    if last || attempt + 1 >= CONNECT_ATTEMPTS {
                        let message = format!("cannot connect to {}: {}", self.base, root_cause(&e));
                        return SendResult::NotSent { message };
                    }
                    backoff(attempt)
                }
                Err(e) if e.is_timeout() => {
                    return SendResult::Unknown { reason: "timed out waiting for Kore.ai's answer".into() };
                }
                Err(e) => {
                    return SendResult::Unknown {
                        reason: format!("connection failed after sending: {}", root_cause(&e)),
                    };
                }
                Ok(r) => match classified(r, MAX_ANSWER_BYTES, classify::send_reads_body, |a| {
                    classify::send_answer(a, last, MAX_ATTEMPTS)
                })
                .await
                {
                    Next::Done(result) => return result,
                    Next::Retry { wait } => wait.map_or_else(|| backoff(attempt), |d| d + backoff(0) / 10),
                },
            };
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// The status URL of a request: the id is checked and percent-encoded as one path segment.
    fn status_url(&self, api: Api, request_id: &str) -> Result<reqwest::Url, KoreError> {
        if !valid_request_id(request_id) {
            return Err(KoreError::RequestId(request_id.to_string()));
        }
        let mut url = reqwest::Url::parse(&self.base).map_err(KoreError::HostUrl)?;
        url.path_segments_mut()
            .map_err(|()| KoreError::HostNotBase)?
            .push(if api == Api::V1 { "notify" } else { "notifyV2" })
            .push("status")
            .push(request_id);
        Ok(url)
    }

    /// Asks a job's status. GETs are safe to retry.
    async fn job_status(&self, api: Api, request_id: &str) -> Result<JobStatus, KoreError> {
        let url = self.status_url(api, request_id)?;
        let mut attempt = 0;
        loop {
            self.limiter.acquire().await;
            let token = self.token()?;
            let last = attempt + 1 >= MAX_ATTEMPTS;
            let wait = match self.http.get(url.clone()).header("auth", token).send().await {
                Ok(r) => {
                    let success = r.status().is_success();
                    let cap = if success { MAX_STATUS_BYTES } else { MAX_ANSWER_BYTES };
                    match classified(r, cap, classify::status_reads_body, |a| classify::status_answer(a, last)).await {
                        Next::Done(result) => return result,
                        Next::Retry { wait } => wait.unwrap_or_else(|| backoff(attempt)),
                    }
                }
                Err(e) if last => return Err(KoreError::Transport(e)),
                Err(_) => backoff(attempt),
            };
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }
}

impl KoreApi for Client {
    /// Waits for a rate-limit slot for a send. Apply takes it *before* journaling the intent, so
    /// that a run killed while waiting for its turn leaves nothing unknown.
    fn take_send_slot(&self) -> impl std::future::Future<Output = ()> + Send {
        self.limiter.acquire()
    }
    fn send(&self, api: Api, body: &Value) -> impl std::future::Future<Output = SendResult> + Send {
        self.send_batch(api, body)
    }
    fn status(
        &self,
        api: Api,
        request_id: &str,
    ) -> impl std::future::Future<Output = Result<JobStatus, KoreError>> + Send {
        self.job_status(api, request_id)
    }
}
