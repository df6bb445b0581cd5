//! What Kore.ai's answer means, decided purely: status, the `Retry-After` and `Location` headers
//! and the body (as read, under its cap) in; the outcome out. No I/O here, so every branch is
//! covered by one table test; the HTTP client ([`super::http`]) only reads the answer, calls this
//! and sleeps when told to.
//!
//! This is the heart of at-most-once delivery: a send is retried automatically only when it
//! certainly was not processed (429, or a 4xx that says it was rate limited); a 5xx, an
//! unreadable answer or a 2xx that is not a Kore.ai job may have been processed, so it is
//! *unknown* and never resent silently. A redirect is never followed: a 3xx means the request was
//! not processed at our URL, and following it would hand the signed token and the message to
//! another origin.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{BodyError, JobStatus, KoreError, SendResult, server_text, valid_request_id};

/// The longest wait between attempts, whatever `Retry-After` asks.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// An HTTP answer as far as it matters here.
#[derive(Debug)]
pub(crate) struct Answer<'a> {
    pub(crate) status: u16,
    /// The `Retry-After` header, when it is text.
    pub(crate) retry_after: Option<&'a str>,
    /// The `Location` header, when it is text.
    pub(crate) location: Option<&'a str>,
    /// The body, or why it could not be read. Empty when not read ([`send_reads_body`],
    /// [`status_reads_body`]).
    pub(crate) body: Result<&'a str, BodyError>,
}

/// What the client does next.
#[derive(Debug, PartialEq)]
pub(crate) enum Next<T> {
    /// The answer is final.
    Done(T),
    /// Certainly not processed (or safe to ask again): try again after `wait`, or after the
    /// client's own backoff when `None`.
    Retry { wait: Option<Duration> },
}

/// Whether the body of an answer to a send is read: not for a redirect (never followed) nor for
/// an informational answer, which are decided by their status alone.
pub(crate) fn send_reads_body(status: u16) -> bool {
    status >= 200 && !(300..400).contains(&status)
}

/// Whether the body of an answer to a status request is read: not for a redirect.
pub(crate) fn status_reads_body(status: u16) -> bool {
    !(300..400).contains(&status)
}

/// A send's answer. `last` is the final attempt: a rate limit then rejects the batch.
pub(crate) fn send_answer(a: Answer, last: bool, max_attempts: u32) -> Next<SendResult> {
    let status = a.status;
    if (300..400).contains(&status) {
        return Next::Done(SendResult::Redirected { status, location: location(a.location) });
    }
    if status < 200 {
        // An informational answer as the final one is not Kore.ai's API: unknown.
        return Next::Done(SendResult::Unknown { reason: format!("HTTP {status}: not an answer to a send") });
    }
    let success = (200..300).contains(&status);
    let text = match a.body {
        Ok(t) => t,
        Err(e) if success => {
            let reason = format!("HTTP {status}, but the answer was unreadable: {e}");
            return Next::Done(SendResult::Unconfirmed { request_id: None, reason });
        }
        Err(e) => return Next::Done(SendResult::Unknown { reason: format!("HTTP {status}, answer unreadable: {e}") }),
    };
    if success {
        return Next::Done(success_answer(status, text));
    }
    if is_rate_limited(status, text) {
        if last {
            let message = format!("still rate limited after {max_attempts} attempts: {}", error_message(status, text));
            return Next::Done(SendResult::Rejected { status, message });
        }
        return Next::Retry { wait: retry_after(a.retry_after) };
    }
    Next::Done(match status {
        401 => SendResult::Unauthorized { message: error_message(status, text) },
        500.. => SendResult::Unknown { reason: format!("server error: {}", error_message(status, text)) },
        _ => SendResult::Rejected { status, message: error_message(status, text) },
    })
}

/// A status request's answer (a GET: safe to ask again on a rate limit or a 5xx).
pub(crate) fn status_answer(a: Answer, last: bool) -> Next<Result<JobStatus, KoreError>> {
    let status = a.status;
    if (300..400).contains(&status) {
        return Next::Done(Err(KoreError::Redirected { status, location: location(a.location) }));
    }
    let text = match a.body {
        Ok(t) => t,
        Err(e) => return Next::Done(Err(e.into())),
    };
    if (200..300).contains(&status) {
        return Next::Done(serde_json::from_str(text).map_err(KoreError::StatusAnswer));
    }
    if !(is_rate_limited(status, text) || status >= 500) || last {
        return Next::Done(Err(KoreError::Refused { status, message: error_message(status, text) }));
    }
    Next::Retry { wait: retry_after(a.retry_after) }
}

/// The `Location` of a redirect, for the error message.
fn location(header: Option<&str>) -> String {
    header.map_or_else(|| "(no Location)".into(), server_text)
}

/// A 2xx answer is an acceptance only when it is the documented job: a JSON object with a valid
/// `_id` ([`valid_request_id`]) and a `status`. Anything else (an HTML page from a proxy, JSON
/// without `_id`, an id we could not safely use) may or may not mean the request was processed:
/// unknown, with the id when it is usable.
fn success_answer(status: u16, text: &str) -> SendResult {
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

#[derive(Deserialize)]
struct KoreErrors {
    errors: Vec<KoreErrorItem>,
}
#[derive(Deserialize)]
struct KoreErrorItem {
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

/// `Retry-After` in seconds, capped at [`BACKOFF_CAP`]; `None` when absent or not a usable number.
fn retry_after(header: Option<&str>) -> Option<Duration> {
    // Capped before the conversion: a hostile 1e20 must not overflow (or panic) a Duration.
    header?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(BACKOFF_CAP.as_secs_f64())))
}

#[cfg(test)]
mod tests;
