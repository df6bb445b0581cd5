//! A local Kore.ai Proactive Notifications API for rehearsals and tests.
//!
//! Endpoints: `POST /api/public/bot/{bot}/notify` and `/notifyV2`, `GET …/notify/status/{id}` and
//! `…/notifyV2/status/{id}`. Every request needs a valid HS256 JWT in the `auth` header (`appId`
//! equal to the client id, `exp` at most an hour ahead, a `jti` never seen before). Bodies are
//! validated strictly (412 with Kore's error shape). Jobs start `IN_PROGRESS` and become terminal
//! after `--job-ms` (alias `--delivery-ms`); an identity **fails** when it contains `fail` or
//! `invalid` (comment "Identity is not associated with the channel"), or when it falls in the
//! `--fail-share` (a share of identities chosen by a hash of the identity, the same on every run:
//! comment "Failed to deliver the notification to the channel"), every other identity succeeds. Both rolling rate-limit
//! windows are enforced (429 with `Retry-After`). Fault injection: latency, a share of 5xx, a
//! share of 429, and a share of requests that are *accepted* (counted as delivered) and then
//! answered by dropping the connection. `GET /_emulator/deliveries` returns deliveries per
//! recipient so tests can prove there were no duplicates.
//!
//! The emulator is the tests' oracle, so it shares no code with the client that decides behaviour
//! under test: its rate windows (`window.rs`), placeholder filling (`fill.rs`), body validation,
//! job ids and dates are its own. What it shares is libraries: axum, serde_json, `time` and the
//! JWT library (`jsonwebtoken`, which the client signs with and the emulator verifies with).

// Handlers return early with a ready HTTP response; its size does not matter here.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

mod fill;
mod validate;
mod window;

use fill::delivered_texts;
use validate::*;
use window::RollingLimits;

#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) listen: SocketAddr,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// `message` (default), `content`, or `either` for the v2 message field.
    pub(crate) v2_field: String,
    pub(crate) latency: Duration,
    pub(crate) error_rate: f64,
    pub(crate) rate_limit_rate: f64,
    pub(crate) drop_rate: f64,
    pub(crate) job_duration: Duration,
    pub(crate) per_minute: u32,
    pub(crate) per_hour: u32,
    pub(crate) seed: Option<u64>,
    /// Deterministic faults by the ordinal of the send request (1-based, counting requests that
    /// pass authentication, rate limits and validation): see [`Fault`].
    pub(crate) schedule: Vec<(u64, Fault)>,
    /// How v2 `parameters` are applied: `message` (they fill the main message and a
    /// customMessage, as the page's samples show) or `custom-only` (they fill only a
    /// customMessage and are ignored without one, as its field table says).
    pub(crate) v2_parameters: String,
    /// Share of identities whose delivery fails, chosen by a hash of the identity (deterministic:
    /// the same identities on every run), to rehearse canary waves.
    pub(crate) fail_share: f64,
}

/// A scheduled answer to one send request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answered 500 before processing: nothing delivered.
    Error500,
    /// Processed and delivered, then the connection is dropped without an answer.
    Drop,
    /// Processed and delivered, answered 200 with an HTML page (a proxy's).
    Html,
    /// Processed and delivered, answered 200 with JSON that has no `_id`.
    NoId,
    /// Processed and delivered, answered 200 with only `{"_id": …}` (no job status): not the
    /// documented job, but the status API knows the job.
    BareId,
}

impl Fault {
    pub(crate) fn parse(s: &str) -> Result<Fault, String> {
        Ok(match s {
            "500" => Fault::Error500,
            "drop" => Fault::Drop,
            "html" => Fault::Html,
            "no-id" => Fault::NoId,
            "bare-id" => Fault::BareId,
            _ => return Err(format!("unknown fault `{s}`; use 500, drop, html, no-id or bare-id")),
        })
    }
}

/// Parses `--schedule 2=500,3=drop`.
pub(crate) fn parse_schedule(s: &str) -> Result<Vec<(u64, Fault)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (n, f) = p.split_once('=').ok_or(format!("`{p}`: write N=FAULT, e.g. 2=500"))?;
            let n = n.trim().parse::<u64>().map_err(|_| format!("`{n}` is not a request number"))?;
            Ok((n, Fault::parse(f.trim())?))
        })
        .collect()
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 8085)),
            client_id: "cs-emulator".into(),
            client_secret: "emulator-secret".into(),
            v2_field: "message".into(),
            latency: Duration::ZERO,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            drop_rate: 0.0,
            job_duration: Duration::from_millis(500),
            per_minute: 600,
            per_hour: 18_000,
            seed: None,
            schedule: Vec::new(),
            v2_parameters: "message".into(),
            fail_share: 0.0,
        }
    }
}

struct Job {
    channel: String,
    created: Instant,
    identities: Vec<String>,
    created_on: String,
}

struct Inner {
    jobs: HashMap<String, Job>,
    deliveries: BTreeMap<String, u64>,
    /// The text each recipient read, per delivery.
    messages: BTreeMap<String, Vec<String>>,
    /// Send requests that passed authentication, rate limits and validation (for `schedule`).
    sends: u64,
    seen_jti: HashSet<String>,
    windows: RollingLimits,
    rng: rand::rngs::StdRng,
    requests: u64,
    accepted: u64,
    rejected: u64,
    rate_limited: u64,
    faults: u64,
    dropped: u64,
}

type Shared = Arc<(Options, Mutex<Inner>)>;

fn kore_error(status: StatusCode, msg: impl Into<String>) -> Response {
    let code = status.as_u16();
    (status, axum::Json(json!({"errors": [{"msg": msg.into(), "code": code}]}))).into_response()
}

/// The emulator's own clock and formatting (a separate server, not the tool's): RFC 3339 to the
/// second, as Kore.ai writes its dates.
fn now_iso() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A new job id in Kore.ai's shape (`ds-` and a UUID v4), made here rather than by the client's
/// id helper.
fn job_id() -> String {
    let b: u128 = rand::random();
    let b = (((b & !(0xf << 76)) | (0x4 << 76)) & !(0x3 << 62)) | (0x2 << 62);
    let h = format!("{b:032x}");
    format!("ds-{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.1.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Checks the `auth` JWT. Returns the 401 response on failure.
fn check_auth(s: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get("auth")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| kore_error(StatusCode::UNAUTHORIZED, "auth header with a JWT is required"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims = ["exp".to_string(), "sub".to_string()].into_iter().collect();
    validation.leeway = 5;
    let data = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(s.0.client_secret.as_bytes()),
        &validation,
    )
    .map_err(|e| kore_error(StatusCode::UNAUTHORIZED, format!("invalid credentials: {e}")))?;
    let c = data.claims;
    if c.get("appId").and_then(Value::as_str) != Some(s.0.client_id.as_str()) {
        return Err(kore_error(StatusCode::UNAUTHORIZED, "invalid credentials: appId does not match the client id"));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if c.get("exp").and_then(Value::as_i64).is_some_and(|e| e > now + 3600) {
        return Err(kore_error(StatusCode::UNAUTHORIZED, "invalid credentials: exp more than 1 hour ahead"));
    }
    let jti = c
        .get("jti")
        .and_then(Value::as_str)
        .ok_or_else(|| kore_error(StatusCode::UNAUTHORIZED, "invalid credentials: jti required"))?;
    if !lock(s).seen_jti.insert(jti.to_string()) {
        return Err(kore_error(StatusCode::UNAUTHORIZED, "invalid credentials: jti already used"));
    }
    Ok(())
}

/// Rate limits and injected faults common to every endpoint.
async fn gate(s: &Shared) -> Result<(), Response> {
    if !s.0.latency.is_zero() {
        tokio::time::sleep(s.0.latency).await;
    }
    let mut inner = lock(s);
    inner.requests += 1;
    if let Err(wait) = inner.windows.admit(Instant::now()) {
        inner.rate_limited += 1;
        let secs = wait.as_secs_f64().ceil().max(1.0);
        let mut r = kore_error(StatusCode::TOO_MANY_REQUESTS, "You have exceeded the per-minute rate limit");
        r.headers_mut()
            .insert("retry-after", secs.to_string().parse().unwrap_or(axum::http::HeaderValue::from_static("1")));
        return Err(r);
    }
    let roll: f64 = rand::RngExt::random(&mut inner.rng);
    if roll < s.0.rate_limit_rate {
        inner.rate_limited += 1;
        let mut r = kore_error(StatusCode::TOO_MANY_REQUESTS, "You have exceeded the per-minute rate limit");
        r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return Err(r);
    }
    let roll: f64 = rand::RngExt::random(&mut inner.rng);
    if roll < s.0.error_rate {
        inner.faults += 1;
        return Err(kore_error(StatusCode::INTERNAL_SERVER_ERROR, "injected server error"));
    }
    Ok(())
}

async fn send(s: Shared, bot: String, v2: bool, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = check_auth(&s, &headers) {
        return r;
    }
    if let Err(r) = gate(&s).await {
        return r;
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return kore_error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")),
    };
    let (channel, identities) = match validate(v2, &body, &s.0.v2_field) {
        Ok(x) => x,
        Err(msg) => {
            lock(&s).rejected += 1;
            return kore_error(StatusCode::PRECONDITION_FAILED, msg);
        }
    };
    let id = job_id();
    let texts = delivered_texts(v2, &body, &s.0.v2_parameters);
    let fault = {
        let mut inner = lock(&s);
        inner.sends += 1;
        let n = inner.sends;
        let scheduled = s.0.schedule.iter().find(|(k, _)| *k == n).map(|(_, f)| *f);
        if scheduled == Some(Fault::Error500) {
            inner.faults += 1;
            drop(inner);
            return kore_error(StatusCode::INTERNAL_SERVER_ERROR, "scheduled server error (not processed)");
        }
        inner.accepted += 1;
        for (i, text) in identities.iter().zip(texts) {
            let k = format!("{channel}:{i}");
            *inner.deliveries.entry(k.clone()).or_default() += 1;
            inner.messages.entry(k).or_default().push(text);
        }
        inner.jobs.insert(
            id.clone(),
            Job {
                channel: channel.clone(),
                created: Instant::now(),
                identities: identities.clone(),
                created_on: now_iso(),
            },
        );
        let roll: f64 = rand::RngExt::random(&mut inner.rng);
        let fault = scheduled.or((roll < s.0.drop_rate).then_some(Fault::Drop));
        if fault == Some(Fault::Drop) {
            inner.dropped += 1;
        }
        fault
    };
    match fault {
        Some(Fault::Drop) => {
            // Accepted and processed, but the answer never arrives: the connection task is torn down.
            std::panic::resume_unwind(Box::new(DroppedConnection));
        }
        Some(Fault::Html) => {
            return (StatusCode::OK, [("content-type", "text/html")], "<html><body>Request received</body></html>")
                .into_response();
        }
        Some(Fault::NoId) => return axum::Json(json!({"status": "IN_PROGRESS", "ok": true})).into_response(),
        Some(Fault::BareId) => return axum::Json(json!({"_id": id})).into_response(),
        _ => {}
    }
    let _ = bot;
    let mut resp = json!({
        "status": "IN_PROGRESS",
        "percentageComplete": 0,
        "streamId": "st-emulator",
        "createdBy": "u-emulator",
        "jobType": "PROACTIVE_NOTIFICATIONS_API",
        "action": "PROACTIVE_NOTIFICATIONS",
        "statusLogs": [],
        "_id": id,
        "lMod": now_iso(),
        "createdOn": now_iso(),
        "requestedTime": now_iso(),
        "__v": 0
    });
    if v2 {
        resp["store"] = json!({"identitiesCount": identities.len()});
        resp["countOfDockStatuses"] = json!(1);
    }
    (StatusCode::OK, axum::Json(resp)).into_response()
}

/// Payload of the deliberate unwind used to drop a connection after accepting a request.
struct DroppedConnection;

/// The comment of a delivery that fails by name (`fail`, `invalid`): Kore.ai's documented one.
const NOT_ASSOCIATED: &str = "'Identity is not associated with the channel'";
/// The comment of a delivery that fails by `--fail-share`: a channel-side failure, which a
/// rollout's `ignoreReasons` for unregistered identities does not cover.
const SHARE_FAILURE: &str = "'Failed to deliver the notification to the channel'";

/// Why `identity`'s delivery fails (its comment), or `None`: it succeeds.
fn fails(identity: &str, share: f64) -> Option<&'static str> {
    let l = identity.to_lowercase();
    if l.contains("fail") || l.contains("invalid") {
        return Some(NOT_ASSOCIATED);
    }
    (share > 0.0 && in_share(identity, share)).then_some(SHARE_FAILURE)
}

/// Whether `identity` is in the first `share` of identities by a hash of the identity.
fn in_share(identity: &str, share: f64) -> bool {
    let d = <sha2::Sha256 as sha2::Digest>::digest(identity.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) as f64 / u64::MAX as f64) < share
}

async fn status(s: Shared, id: String, headers: HeaderMap) -> Response {
    if let Err(r) = check_auth(&s, &headers) {
        return r;
    }
    if let Err(r) = gate(&s).await {
        return r;
    }
    // What the answer needs, copied out: the logs are built without holding the emulator's lock,
    // so status requests in parallel are answered in parallel.
    let job = {
        let inner = lock(&s);
        let Some(job) = inner.jobs.get(&id) else {
            return kore_error(StatusCode::BAD_REQUEST, format!("invalid request id {id}"));
        };
        if job.created.elapsed() < s.0.job_duration {
            return axum::Json(
                json!({"_id": id, "status": "IN_PROGRESS", "percentageComplete": 50, "statusLogs": [], "count": 0}),
            )
            .into_response();
        }
        Job {
            channel: job.channel.clone(),
            created: job.created,
            identities: job.identities.clone(),
            created_on: job.created_on.clone(),
        }
    };
    let logs: Vec<Value> = job
        .identities
        .iter()
        .enumerate()
        .map(|(i, ident)| {
            let failure = fails(ident, s.0.fail_share);
            let ok = failure.is_none();
            json!({
                "_id": format!("nl-{id}-{i}"),
                "requestId": id,
                "originalId": ident,
                "channel": job.channel,
                "status": if ok { "SUCCESS" } else { "FAILURE" },
                "comments": failure.unwrap_or("Notification has been sent successfully"),
                "createdOn": job.created_on,
            })
        })
        .collect();
    let failed = job.identities.iter().filter(|i| fails(i, s.0.fail_share).is_some()).count();
    let overall = match failed {
        0 => "SUCCESS",
        f if f == job.identities.len() => "FAILURE",
        _ => "PARTIAL_SUCCESS",
    };
    axum::Json(json!({"_id": id, "status": overall, "percentageComplete": 100, "statusLogs": logs, "count": job.identities.len(), "streamId": "st-emulator"}))
        .into_response()
}

async fn deliveries(State(s): State<Shared>) -> Response {
    let inner = lock(&s);
    axum::Json(json!({
        "deliveries": inner.deliveries,
        "messages": inner.messages,
        "requests": inner.requests,
        "accepted": inner.accepted,
        "rejected": inner.rejected,
        "rateLimited": inner.rate_limited,
        "faults": inner.faults,
        "dropped": inner.dropped,
    }))
    .into_response()
}

pub(crate) fn router(opts: Options) -> Router {
    let rng = match opts.seed {
        Some(seed) => <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed),
        None => <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(rand::random()),
    };
    let windows =
        RollingLimits::new(&[(opts.per_minute, Duration::from_secs(60)), (opts.per_hour, Duration::from_secs(3600))]);
    let shared: Shared = Arc::new((
        opts,
        Mutex::new(Inner {
            jobs: HashMap::new(),
            deliveries: BTreeMap::new(),
            messages: BTreeMap::new(),
            sends: 0,
            seen_jti: HashSet::new(),
            windows,
            rng,
            requests: 0,
            accepted: 0,
            rejected: 0,
            rate_limited: 0,
            faults: 0,
            dropped: 0,
        }),
    ));
    Router::new()
        .route(
            "/api/public/bot/{bot}/notify",
            post(|State(s): State<Shared>, Path(bot): Path<String>, h: HeaderMap, b: axum::body::Bytes| {
                send(s, bot, false, h, b)
            }),
        )
        .route(
            "/api/public/bot/{bot}/notifyV2",
            post(|State(s): State<Shared>, Path(bot): Path<String>, h: HeaderMap, b: axum::body::Bytes| {
                send(s, bot, true, h, b)
            }),
        )
        .route(
            "/api/public/bot/{bot}/notify/status/{id}",
            get(|State(s): State<Shared>, Path((_bot, id)): Path<(String, String)>, h: HeaderMap| status(s, id, h)),
        )
        .route(
            "/api/public/bot/{bot}/notifyV2/status/{id}",
            get(|State(s): State<Shared>, Path((_bot, id)): Path<(String, String)>, h: HeaderMap| status(s, id, h)),
        )
        .route("/_emulator/deliveries", get(deliveries))
        .with_state(shared)
}

/// Runs the emulator until the process is stopped. Prints the address it listens on.
pub(crate) async fn serve(opts: Options) -> std::io::Result<()> {
    if !opts.listen.ip().is_loopback() {
        eprintln!("warning: the emulator listens on {}, not loopback", opts.listen);
    }
    // Dropped connections are deliberate unwinds: keep them out of the output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<DroppedConnection>().is_none() {
            default_hook(info);
        }
    }));
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let addr = listener.local_addr()?;
    {
        use std::io::Write;
        // Never fail (or panic) because whoever started us stopped reading our output.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "kore-notify emulator listening on http://{addr} (client id {})", opts.client_id);
        let _ = out.flush();
    }
    axum::serve(listener, router(opts)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_have_kores_shape() {
        let id = job_id();
        let hex = id.strip_prefix("ds-").unwrap_or_default().replace('-', "");
        assert_eq!((id.len(), hex.len()), (39, 32), "{id}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(&hex[12..13], "4", "{id}");
        assert!(matches!(&hex[16..17], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(job_id(), id);
    }

    #[test]
    fn validates_bodies_strictly() {
        let ok = json!({"channel":"msteams","userIdentityType":"resolve","message":{"type":"text","val":"hi"},"identities":["a@x"]});
        assert!(validate(false, &ok, "message").is_ok());
        let mut extra = ok.clone();
        extra["foo"] = json!(1);
        assert!(validate(false, &extra, "message").is_err());
        let v2 = json!({"channel":"ivr","message":{"type":"text","value":"hi"},"identities":[{"email":"a@x","parameters":{"a":"b"}}]});
        assert!(validate(true, &v2, "message").is_ok());
        assert!(validate(true, &v2, "content").is_err());
        let both = json!({"channel":"ivr","message":{"type":"text","value":"hi"},"content":{"type":"text","value":"hi"},"identities":[{"email":"a@x"}]});
        assert!(validate(true, &both, "either").is_err());
        let wrong_id =
            json!({"channel":"hangouts","message":{"type":"text","value":"hi"},"identities":[{"email":"a@x"}]});
        assert!(validate(true, &wrong_id, "message").is_err());
    }

    /// The failing share is about the share asked, the same identities every time, and growing
    /// the share keeps every identity that failed before failing.
    #[test]
    fn fail_share_is_deterministic_by_identity() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("u{i}@example.com")).collect();
        let failing = |share: f64| ids.iter().filter(|i| fails(i, share).is_some()).cloned().collect::<Vec<_>>();
        let five = failing(0.05);
        assert!((900..1100).contains(&five.len()), "{}", five.len());
        assert_eq!(five, failing(0.05));
        let ten = failing(0.10);
        assert!(five.iter().all(|i| ten.contains(i)));
        assert!(failing(0.0).is_empty());
        assert_eq!(fails("u1@example.com", 1.0), Some(SHARE_FAILURE));
        assert_eq!(fails("invalid@example.com", 0.0), Some(NOT_ASSOCIATED));
    }
}
