//! The classification as tables: one row per case, (status, headers, body) → what the client
//! does. A changed branch or boundary changes a row's result.

use super::*;

const JOB: &str = r#"{"_id":"ds-1","status":"IN_PROGRESS"}"#;

/// What a row expects of a send's answer (messages checked where they carry the decision).
#[derive(Debug)]
enum Want {
    Accepted(&'static str),
    Rejected(u16, &'static str),
    Unauthorized(&'static str),
    Redirected(u16, &'static str),
    Unknown(&'static str),
    /// With the job id when one was usable, and a part of the reason.
    Unconfirmed(Option<&'static str>, &'static str),
    /// Sent again after this wait (`None`: the client's backoff).
    Retry(Option<Duration>),
}

struct Row {
    status: u16,
    retry_after: Option<&'static str>,
    location: Option<&'static str>,
    /// `None`: the body was over the cap.
    body: Option<&'static str>,
    last: bool,
    want: Want,
}

const fn row(status: u16, body: &'static str, want: Want) -> Row {
    Row { status, retry_after: None, location: None, body: Some(body), last: false, want }
}

fn send_rows() -> Vec<Row> {
    use Want::*;
    let secs = Duration::from_secs;
    vec![
        // 2xx: accepted only for a job with a valid id and a status.
        row(200, JOB, Accepted("ds-1")),
        row(201, JOB, Accepted("ds-1")),
        row(299, JOB, Accepted("ds-1")),
        row(200, r#"{"status":"IN_PROGRESS"}"#, Unconfirmed(None, "JSON without a job id (`_id`)")),
        row(200, r#"{"_id":"../x","status":"IN_PROGRESS"}"#, Unconfirmed(None, "an invalid request id `../x`")),
        row(200, r#"{"_id":"ds-2"}"#, Unconfirmed(Some("ds-2"), "a job id but no job status")),
        row(200, "<html>proxy</html>", Unconfirmed(None, "not JSON): <html>proxy</html>")),
        row(200, "", Unconfirmed(None, "not JSON")),
        Row { body: None, ..row(200, "", Unconfirmed(None, "the answer was unreadable: the answer is larger than")) },
        // 1xx as the final answer: not Kore.ai's API.
        row(100, "", Unknown("HTTP 100: not an answer to a send")),
        row(199, JOB, Unknown("HTTP 199: not an answer to a send")),
        // 3xx: never followed, whatever the body.
        Row {
            location: Some("https://elsewhere.example/x"),
            ..row(302, "", Redirected(302, "https://elsewhere.example/x"))
        },
        row(300, JOB, Redirected(300, "(no Location)")),
        row(399, "", Redirected(399, "(no Location)")),
        // 429: retried, after Retry-After (capped) or the backoff; rejected on the last attempt.
        row(429, "", Retry(None)),
        Row { retry_after: Some("2"), ..row(429, "", Retry(Some(secs(2)))) },
        Row { retry_after: Some(" 0.5 "), ..row(429, "", Retry(Some(Duration::from_millis(500)))) },
        Row { retry_after: Some("1e20"), ..row(429, "", Retry(Some(BACKOFF_CAP))) },
        Row { retry_after: Some("61"), ..row(429, "", Retry(Some(BACKOFF_CAP))) },
        Row { retry_after: Some("-1"), ..row(429, "", Retry(None)) },
        Row { retry_after: Some("NaN"), ..row(429, "", Retry(None)) },
        Row { retry_after: Some("inf"), ..row(429, "", Retry(None)) },
        Row { retry_after: Some("Wed, 21 Oct 2026 07:28:00 GMT"), ..row(429, "", Retry(None)) },
        Row {
            last: true,
            ..row(429, "", Rejected(429, "still rate limited after 8 attempts: HTTP 429: (empty body)"))
        },
        // A 4xx that says it was rate limited is certainly not processed: retried too.
        row(400, "You have exceeded the per-minute RATE LIMIT", Retry(None)),
        row(499, r#"{"errors":[{"msg":"rate limit reached"}]}"#, Retry(None)),
        // Other 4xx: rejected with Kore.ai's message; 401 stops the run.
        row(400, r#"{"errors":[{"msg":"bad channel","code":41}]}"#, Rejected(400, "bad channel (code 41)")),
        row(404, "", Rejected(404, "HTTP 404: (empty body)")),
        row(401, r#"{"errors":[{"msg":"invalid token"}]}"#, Unauthorized("invalid token")),
        Row { body: None, ..row(404, "", Unknown("HTTP 404, answer unreadable: the answer is larger than")) },
        // 5xx: may have been processed, never retried, whatever the body says.
        row(500, "", Unknown("server error: HTTP 500: (empty body)")),
        row(500, "rate limit exceeded upstream", Unknown("server error: HTTP 500: rate limit exceeded upstream")),
        Row { retry_after: Some("1"), ..row(503, "Rate Limit", Unknown("server error: HTTP 503: Rate Limit")) },
        row(599, JOB, Unknown("server error: HTTP 599")),
    ]
}

fn answer(r: &Row) -> Answer<'_> {
    Answer {
        status: r.status,
        retry_after: r.retry_after,
        location: r.location,
        body: r.body.ok_or(BodyError::TooLarge(super::super::http::MAX_ANSWER_BYTES)),
    }
}

fn matches(got: &Next<SendResult>, want: &Want) -> bool {
    use SendResult as S;
    match (got, want) {
        (Next::Retry { wait }, Want::Retry(w)) => wait == w,
        (Next::Done(S::Accepted { request_id, status }), Want::Accepted(id)) => {
            request_id.as_deref() == Some(*id) && status.is_some()
        }
        (Next::Done(S::Rejected { status, message }), Want::Rejected(s, m)) => status == s && message.contains(m),
        (Next::Done(S::Unauthorized { message }), Want::Unauthorized(m)) => message.contains(m),
        (Next::Done(S::Redirected { status, location }), Want::Redirected(s, l)) => status == s && location == l,
        (Next::Done(S::Unknown { reason }), Want::Unknown(m)) => reason.contains(m),
        (Next::Done(S::Unconfirmed { request_id, reason }), Want::Unconfirmed(id, m)) => {
            request_id.as_deref() == *id && reason.contains(m)
        }
        _ => false,
    }
}

#[test]
fn every_send_answer_is_classified_as_its_row_says() {
    let mut wrong = Vec::new();
    for r in send_rows() {
        let got = send_answer(answer(&r), r.last, 8);
        if !matches(&got, &r.want) {
            wrong.push(format!(
                "HTTP {} retry-after {:?} body {:?} last {}: want {:?}, got {got:?}",
                r.status, r.retry_after, r.body, r.last, r.want
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_status_answer_is_classified_as_its_row_says() {
    // (status, retry-after, body (None: over the cap), last attempt) → Ok(job status) /
    // Err(message part) / retry wait.
    type Expect = Result<Option<&'static str>, &'static str>;
    type StatusRow = (u16, Option<&'static str>, Option<&'static str>, bool, Option<Expect>);
    let rows: &[StatusRow] = &[
        (200, None, Some(r#"{"status":"SUCCESS","statusLogs":[]}"#), false, Some(Ok(Some("SUCCESS")))),
        (200, None, Some("{}"), false, Some(Ok(None))),
        (200, None, Some("<html>"), false, Some(Err("unexpected status answer"))),
        (200, None, None, false, Some(Err("the answer is larger than"))),
        (302, None, Some(""), false, Some(Err("HTTP 302 redirect to (no Location) (not followed)"))),
        (404, None, Some(r#"{"errors":[{"msg":"no such job"}]}"#), false, Some(Err("no such job"))),
        (401, None, Some(""), false, Some(Err("HTTP 401: (empty body)"))),
        (429, Some("3"), Some(""), false, None),
        (429, None, Some(""), true, Some(Err("HTTP 429: (empty body)"))),
        (400, None, Some("rate limit"), false, None),
        (500, None, Some(""), false, None),
        (503, None, Some(""), true, Some(Err("HTTP 503: (empty body)"))),
    ];
    for (status, retry_after, body, last, want) in rows {
        let a = Answer {
            status: *status,
            retry_after: *retry_after,
            location: None,
            body: body.ok_or(BodyError::TooLarge(super::super::http::MAX_STATUS_BYTES)),
        };
        let got = status_answer(a, *last);
        let ok = match (&got, want) {
            (Next::Retry { wait }, None) => *wait == retry_after.and_then(|s| s.parse().ok()).map(Duration::from_secs),
            (Next::Done(Ok(js)), Some(Ok(s))) => js.status.as_deref() == *s,
            (Next::Done(Err(e)), Some(Err(m))) => e.to_string().contains(m),
            _ => false,
        };
        assert!(ok, "HTTP {status} {body:?} last {last}: want {want:?}, got {got:?}");
    }
}

#[test]
fn error_messages_are_one_safe_line() {
    let many = r#"{"errors":[{"msg":"a"},{"code":7},{},{"msg":"d","code":"x"},{"msg":"e"},{"msg":"f"}]}"#;
    assert_eq!(error_message(400, many), "a; code 7; unspecified error; d (code \"x\"); e");
    assert_eq!(error_message(502, "  "), "HTTP 502: (empty body)");
    assert!(!error_message(400, "line\u{1b}[31m").contains('\u{1b}'));
}
