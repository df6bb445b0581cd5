//! The Kore.ai client: JWT per request, v1/v2 bodies exactly as the API pages specify, and a strict
//! classification of every answer into accepted / rejected / unknown. The classification is the
//! heart of at-most-once delivery: a request is retried automatically only when it certainly was
//! not processed (no connection, or 429); a timeout, a reset after sending or a 5xx may have been
//! processed, so it is *unknown* and never resent silently.
//!
//! The server, or anything between it and us, is untrusted: redirects are never followed (a 3xx
//! means the request was not processed at our URL, and following it would hand the signed `auth`
//! token and the message to another origin); every answer body is read with a cap
//! ([`MAX_ANSWER_BYTES`], [`MAX_STATUS_BYTES`]) enforced while reading; request ids are checked
//! ([`valid_request_id`]) and percent-encoded before they go into a URL; server text is made safe
//! for terminals before it is kept or shown.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{Config, Credentials, V2Field};
use crate::manifest::{Api, Notification, Recipient};
use crate::ratelimit::RateLimiter;

const MAX_ATTEMPTS: u32 = 8;
/// Largest answer to a send (or an error answer) we read.
pub(crate) const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// Largest status answer we read (a job of 1000 identities with their logs is about 300 KB).
pub(crate) const MAX_STATUS_BYTES: u64 = 16 * 1024 * 1024;
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
fn server_text(s: &str) -> String {
    let t = crate::safe::line(s.trim());
    if t.chars().count() > MAX_MESSAGE_CHARS {
        format!("{}…", t.chars().take(MAX_MESSAGE_CHARS).collect::<String>())
    } else {
        t.into_owned()
    }
}

/// Why an answer body could not be read.
enum BodyError {
    TooLarge(u64),
    Read(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(cap) => write!(f, "the answer is larger than {cap} bytes"),
            BodyError::Read(e) => f.write_str(e),
        }
    }
}

/// Reads an answer body, failing as soon as it exceeds `cap` bytes (never buffering more).
async fn read_body(mut r: reqwest::Response, cap: u64) -> Result<String, BodyError> {
    if r.content_length().is_some_and(|n| n > cap) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| BodyError::Read(root_cause(&e)))? {
        if (buf.len() + chunk.len()) as u64 > cap {
            return Err(BodyError::TooLarge(cap));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The `Location` of a redirect, for the error message.
fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "(no Location)".into(), server_text)
}
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct Claims<'a> {
    #[serde(rename = "appId")]
    app_id: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Mints a fresh HS256 token: `appId`, `sub`, `iat`, `exp` 5 minutes ahead, random `jti`.
pub(crate) fn mint_jwt(creds: &Credentials) -> Result<String, String> {
    let iat = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = Claims {
        app_id: &creds.client_id,
        sub: "kore-notify",
        iat,
        exp: iat + 300,
        jti: crate::fingerprint::random_id(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(creds.client_secret.as_bytes()),
    )
    .map_err(|e| format!("cannot sign the JWT: {e}"))
}

/// The request body for one batch.
pub(crate) fn body(n: &Notification, recipients: &[&Recipient], v2_field: V2Field) -> Value {
    match n.api {
        Api::V1 => json!({
            "channel": n.channel.as_str(),
            "userIdentityType": n.user_identity_type,
            "message": {"type": n.content.kind, "val": n.content.value},
            "identities": recipients.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        }),
        Api::V2 => {
            let field = n.channel.identity_field().unwrap_or("email");
            let ids: Vec<Value> = recipients
                .iter()
                .map(|r| {
                    let mut o = serde_json::Map::new();
                    o.insert(field.into(), r.id.clone().into());
                    if let Some(cm) = &r.custom_message {
                        o.insert("customMessage".into(), cm.clone().into());
                    }
                    if !r.parameters.is_empty() {
                        o.insert("parameters".into(), serde_json::to_value(&r.parameters).unwrap_or_default());
                    }
                    Value::Object(o)
                })
                .collect();
            let mut b = serde_json::Map::new();
            b.insert("channel".into(), n.channel.as_str().into());
            if let Some(w) = &n.webhook_instance_name {
                b.insert("webhookInstanceName".into(), w.clone().into());
            }
            b.insert("userIdentityType".into(), n.user_identity_type.clone().into());
            b.insert(v2_field.as_str().into(), json!({"type": n.content.kind, "value": n.content.value}));
            b.insert("identities".into(), Value::Array(ids));
            Value::Object(b)
        }
    }
}

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

#[derive(Deserialize)]
struct KoreErrors {
    errors: Vec<KoreError>,
}
#[derive(Deserialize)]
struct KoreError {
    msg: Option<String>,
    code: Option<Value>,
}

/// Kore's `{"errors":[{"msg":…,"code":…}]}` as one line.
pub(crate) fn error_message(status: u16, body: &str) -> String {
    match serde_json::from_str::<KoreErrors>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .take(5)
            .map(|e| match (&e.msg, &e.code) {
                (Some(m), Some(c)) => format!("{} (code {})", server_text(m), server_text(&c.to_string())),
                (Some(m), None) => server_text(m),
                (None, Some(c)) => format!("code {}", server_text(&c.to_string())),
                (None, None) => "unspecified error".into(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => {
            let snippet: String = body.chars().take(200).collect();
            format!(
                "HTTP {status}: {}",
                if snippet.trim().is_empty() { "(empty body)".into() } else { server_text(&snippet) }
            )
        }
    }
}

/// Rate limiting: a 429, or a 4xx (certainly not processed) whose message says so, as Kore.ai
/// documents it. Never a 5xx, whatever its body says: a 5xx may have been processed, and a server
/// must not be able to get a request re-sent by choosing its words.
fn is_rate_limited(status: u16, body: &str) -> bool {
    status == 429 || ((400..500).contains(&status) && body.to_lowercase().contains("rate limit"))
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    // Capped before the conversion: a hostile 1e20 must not overflow (or panic) a Duration.
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(BACKOFF_CAP.as_secs_f64())))
}

/// Full jitter: a uniformly random wait between zero and the exponential ceiling.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << attempt.min(16)).min(BACKOFF_CAP);
    ceiling.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_retry_after_values_are_capped_not_fatal() {
        let mut h = reqwest::header::HeaderMap::new();
        for (v, want) in [
            ("1e20", Some(BACKOFF_CAP)),
            ("2", Some(Duration::from_secs(2))),
            ("-1", None),
            ("NaN", None),
            ("inf", None),
        ] {
            h.insert(
                reqwest::header::RETRY_AFTER,
                v.parse().unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("0")),
            );
            assert_eq!(retry_after(&h), want, "{v}");
        }
    }

    #[test]
    fn only_4xx_can_be_rate_limited() {
        assert!(is_rate_limited(429, ""));
        assert!(is_rate_limited(400, "You have exceeded the per-minute rate limit"));
        assert!(!is_rate_limited(500, "rate limit exceeded upstream"));
        assert!(!is_rate_limited(503, "Rate Limit"));
    }
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
    fn status(&self, api: Api, request_id: &str)
    -> impl std::future::Future<Output = Result<JobStatus, String>> + Send;
}

impl KoreApi for Client {
    fn take_send_slot(&self) -> impl std::future::Future<Output = ()> + Send {
        Client::take_send_slot(self)
    }
    fn send(&self, api: Api, body: &Value) -> impl std::future::Future<Output = SendResult> + Send {
        Client::send(self, api, body)
    }
    fn status(
        &self,
        api: Api,
        request_id: &str,
    ) -> impl std::future::Future<Output = Result<JobStatus, String>> + Send {
        Client::status(self, api, request_id)
    }
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    creds: Credentials,
    limiter: Arc<RateLimiter>,
}

impl Client {
    pub(crate) fn new(config: &Config, creds: Credentials, limiter: Arc<RateLimiter>) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout.into()))
            .timeout(Duration::from_secs(config.request_timeout.into()))
            .user_agent(concat!("kore-notify/", env!("CARGO_PKG_VERSION")))
            // Never follow a redirect: it would re-send the body and the signed token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client { http, base: format!("{}/api/public/bot/{}", config.host, config.bot_id), creds, limiter })
    }

    fn send_url(&self, api: Api) -> String {
        match api {
            Api::V1 => format!("{}/notify", self.base),
            Api::V2 => format!("{}/notifyV2", self.base),
        }
    }

    /// Waits for a rate-limit slot for a send. Apply takes it *before* journaling the intent, so
    /// that a run killed while waiting for its turn leaves nothing unknown.
    pub(crate) async fn take_send_slot(&self) {
        self.limiter.acquire().await;
    }

    /// Sends one batch; the caller has taken the first slot with `take_send_slot`. Retries only
    /// what certainly was not processed, each retry taking its own slot.
    pub(crate) async fn send(&self, api: Api, body: &Value) -> SendResult {
        let url = self.send_url(api);
        let mut attempt = 0;
        loop {
            if attempt > 0 {
                self.limiter.acquire().await;
            }
            let token = match mint_jwt(&self.creds) {
                Ok(t) => t,
                Err(e) => {
                    return SendResult::Rejected { status: 0, message: e };
                }
            };
            let resp = self.http.post(&url).header("auth", token).json(body).send().await;
            let wait = match resp {
                Err(e) if e.is_connect() => {
                    // The connection was never established: the request cannot have been processed.
                    if attempt + 1 >= MAX_ATTEMPTS {
                        return SendResult::Rejected {
                            status: 0,
                            message: format!("cannot connect to {}: {}", self.base, root_cause(&e)),
                        };
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
                Ok(r) => {
                    let status = r.status().as_u16();
                    if (300..400).contains(&status) {
                        return SendResult::Redirected { status, location: location(&r) };
                    }
                    if status < 200 {
                        // An informational answer as the final one is not Kore.ai's API: unknown.
                        return SendResult::Unknown { reason: format!("HTTP {status}: not an answer to a send") };
                    }
                    let ra = retry_after(r.headers());
                    let text = match read_body(r, MAX_ANSWER_BYTES).await {
                        Ok(t) => t,
                        Err(e) if (200..300).contains(&status) => {
                            return SendResult::Unconfirmed {
                                request_id: None,
                                reason: format!("HTTP {status}, but the answer was unreadable: {e}"),
                            };
                        }
                        Err(e) => {
                            return SendResult::Unknown { reason: format!("HTTP {status}, answer unreadable: {e}") };
                        }
                    };
                    if (200..300).contains(&status) {
                        return classify_success(status, &text);
                    }
                    if is_rate_limited(status, &text) {
                        if attempt + 1 >= MAX_ATTEMPTS {
                            return SendResult::Rejected {
                                status,
                                message: format!(
                                    "still rate limited after {MAX_ATTEMPTS} attempts: {}",
                                    error_message(status, &text)
                                ),
                            };
                        }
                        ra.map_or_else(|| backoff(attempt), |d| d.min(BACKOFF_CAP) + backoff(0) / 10)
                    } else if status == 401 {
                        return SendResult::Unauthorized { message: error_message(status, &text) };
                    } else if status >= 500 {
                        return SendResult::Unknown {
                            reason: format!("server error: {}", error_message(status, &text)),
                        };
                    } else {
                        return SendResult::Rejected { status, message: error_message(status, &text) };
                    }
                }
            };
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// The status URL of a request: the id is checked and percent-encoded as one path segment.
    fn status_url(&self, api: Api, request_id: &str) -> Result<reqwest::Url, String> {
        if !valid_request_id(request_id) {
            return Err(format!("invalid request id `{}`: not used in a URL", server_text(request_id)));
        }
        let mut url = reqwest::Url::parse(&self.base).map_err(|e| format!("invalid host URL: {e}"))?;
        url.path_segments_mut()
            .map_err(|()| "invalid host URL".to_string())?
            .push(if api == Api::V1 { "notify" } else { "notifyV2" })
            .push("status")
            .push(request_id);
        Ok(url)
    }

    /// Asks a job's status. GETs are safe to retry.
    pub(crate) async fn status(&self, api: Api, request_id: &str) -> Result<JobStatus, String> {
        let url = self.status_url(api, request_id)?;
        let mut attempt = 0;
        loop {
            self.limiter.acquire().await;
            let token = mint_jwt(&self.creds)?;
            let wait = match self.http.get(url.clone()).header("auth", token).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    if (300..400).contains(&status) {
                        return Err(format!(
                            "HTTP {status} redirect to {} (not followed); fix `host` in kore-notify.yaml",
                            location(&r)
                        ));
                    }
                    let ra = retry_after(r.headers());
                    let cap = if (200..300).contains(&status) { MAX_STATUS_BYTES } else { MAX_ANSWER_BYTES };
                    let text = read_body(r, cap).await.map_err(|e| e.to_string())?;
                    if (200..300).contains(&status) {
                        return serde_json::from_str(&text).map_err(|e| format!("unexpected status answer: {e}"));
                    }
                    if !(is_rate_limited(status, &text) || status >= 500) || attempt + 1 >= MAX_ATTEMPTS {
                        return Err(error_message(status, &text));
                    }
                    ra.map_or_else(|| backoff(attempt), |d| d.min(BACKOFF_CAP))
                }
                Err(e) if attempt + 1 >= MAX_ATTEMPTS => return Err(root_cause(&e)),
                Err(_) => backoff(attempt),
            };
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }
}

/// A 2xx answer is an acceptance only when it is the documented job: a JSON object with a valid
/// `_id` ([`valid_request_id`]) and a `status`. Anything else (an HTML page from a proxy, JSON
/// without `_id`, an id we could not safely use) may or may not mean the request was processed:
/// unknown, with the id when it is usable.
fn classify_success(status: u16, text: &str) -> SendResult {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let raw_id = v.get("_id").and_then(Value::as_str);
    let id = raw_id.filter(|s| valid_request_id(s)).map(String::from);
    let job_status = v.get("status").and_then(Value::as_str).map(server_text);
    if let (Some(_), Some(_)) = (&id, &job_status) {
        return SendResult::Accepted { request_id: id, status: job_status };
    }
    let snippet =
        server_text(&text.chars().take(120).collect::<String>().split_whitespace().collect::<Vec<_>>().join(" "));
    let what = match (&v, raw_id, &id) {
        (Value::Object(_), Some(bad), None) => format!("an invalid request id `{}`", server_text(bad)),
        (Value::Object(_), Some(_), Some(_)) => "a job id but no job status".into(),
        (Value::Object(_), None, _) => "JSON without a job id (`_id`)".into(),
        _ => "not JSON".into(),
    };
    SendResult::Unconfirmed {
        request_id: id,
        reason: format!("HTTP {status}, but the answer is not a Kore.ai job ({what}): {snippet}"),
    }
}

/// The innermost error message (reqwest wraps hyper wraps io).
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    server_text(&cur.to_string())
}

pub(crate) fn is_terminal_status(s: &str) -> bool {
    matches!(s, "SUCCESS" | "PARTIAL_SUCCESS" | "FAILURE" | "FAILED" | "COMPLETED")
}
