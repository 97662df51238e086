//! The webhook sender: [`WebhookSender::deliver`] POSTs one message body to a receiver's url
//! with retries and backoff ([`RetryPolicy`]), an `Idempotency-Key` that stays the same on
//! every attempt (so a receiver can drop a repeat), an optional bearer token and an optional
//! HMAC-SHA256 signature ([`sign`], [`verify`]), and ends in a [`Delivery`]: delivered, or dead
//! with the reason and what to do about it. Every attempt is reported to the caller, who
//! records it.
//!
//! Which answers are worth another attempt follows Alertmanager (2xx delivered, 5xx
//! recoverable), with 429 and `Retry-After` honoured as well; any other answer is permanent.
//! Redirects are not followed: a moved receiver is a routing file to fix, and following one
//! would send the token elsewhere.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};

use super::retry::{Answer, deliver_with_retries};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("Pharos/", env!("CARGO_PKG_VERSION"));
/// The header carrying the delivery's idempotency key, the same on every attempt.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The header carrying the Unix time (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-pharos-timestamp";
/// The header carrying `sha256=<hex>`, the HMAC of `<timestamp>.<body>`.
pub const SIGNATURE_HEADER: &str = "x-pharos-signature";
/// How much of a failed response's body goes into the error.
const ERROR_BODY_LIMIT: usize = 512;

type HmacSha256 = Hmac<sha2::Sha256>;

/// Why a sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A policy field out of range (no attempts, a shrinking factor, no time for an attempt).
    #[error("invalid retry policy: {field} {reason}")]
    InvalidPolicy { field: &'static str, reason: String },
    /// The TLS backend or the system's configuration refused the client.
    #[error("building the http client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Where and how to post: a receiver's `webhook_configs` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// Signs each request (`X-Pharos-Timestamp`, `X-Pharos-Signature`).
    pub hmac_secret: Option<String>,
}

impl fmt::Debug for WebhookTarget {
    // The token and the secret never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |value: &Option<String>| value.as_ref().map(|_| "<redacted>");
        f.debug_struct("WebhookTarget")
            .field("url", &redacted_url(&self.url))
            .field("bearer_token", &redact(&self.bearer_token))
            .field("hmac_secret", &redact(&self.hmac_secret))
            .finish()
    }
}

/// How hard to try before a delivery is dead.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait after the first failed attempt.
    pub initial_backoff: Duration,
    /// Each further wait is this many times the previous one (at least 1).
    pub factor: f64,
    /// No wait is longer, unless a `Retry-After` asks for it.
    pub max_backoff: Duration,
    /// How long one attempt may take, from connecting to the response's headers.
    pub timeout: Duration,
    /// The longest `Retry-After` honoured; a longer one is treated as a plain failure of the
    /// attempt, followed by `max_backoff`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_secs(1),
            factor: 2.0,
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based) when the receiver did not say:
    /// `min(initial_backoff * factor^(attempt-1), max_backoff)`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = self.initial_backoff.as_secs_f64() * self.factor.powi(exponent);
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    fn validate(&self) -> Result<(), WebhookError> {
        let invalid = |field, reason: &str| {
            Err(WebhookError::InvalidPolicy {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.attempts == 0 {
            return invalid("attempts", "must be at least 1");
        }
        if !self.factor.is_finite() || self.factor < 1.0 {
            return invalid("factor", "must be a number of at least 1");
        }
        if self.timeout.is_zero() {
            return invalid("timeout", "must be more than zero");
        }
        Ok(())
    }
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The attempt failed and another one follows.
    Retry,
    /// The attempt failed and was the last: permanently, or because attempts ran out.
    Failed,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Failed => "failed",
        }
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt, as reported to `on_attempt` for the delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// 1-based.
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    pub outcome: AttemptOutcome,
    /// The receiver's status code, when it answered.
    pub http_status: Option<u16>,
    /// Why the attempt failed; empty when delivered.
    pub error: String,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered {
        attempts: u32,
        http_status: u16,
    },
    /// Given up: the message belongs in the dead letters, with `last_error` saying why and,
    /// where it can, what to fix.
    Dead {
        attempts: u32,
        last_error: String,
    },
}

impl Delivery {
    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        match self {
            Delivery::Delivered { attempts, .. } | Delivery::Dead { attempts, .. } => *attempts,
        }
    }
}

/// Posts webhook messages. One per process: it holds the connection pool.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    policy: RetryPolicy,
}

impl WebhookSender {
    /// A sender with its own connection pool (rustls, no redirects), once the policy checks
    /// out.
    pub fn new(policy: RetryPolicy) -> Result<Self, WebhookError> {
        policy.validate()?;
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(WebhookError::Client)?;
        Ok(WebhookSender { client, policy })
    }

    /// The policy every delivery follows.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Posts `body` (a JSON message) to `target` until it is delivered, fails permanently or
    /// runs out of attempts. `idempotency_key` goes out unchanged on every attempt; `now` gives
    /// the time of each attempt (its start, the signature's timestamp and the reference of a
    /// `Retry-After` date); `on_attempt` hears of every attempt, in order, before the wait that
    /// may follow it.
    pub async fn deliver(
        &self,
        target: &WebhookTarget,
        body: &[u8],
        idempotency_key: &str,
        now: impl Fn() -> DateTime<Utc> + Send + Sync,
        on_attempt: impl FnMut(&Attempt) + Send,
    ) -> Delivery {
        let url = redacted_url(&target.url);
        deliver_with_retries(
            &self.policy,
            "webhook",
            &url,
            &now,
            on_attempt,
            |started_at| self.attempt(target, body, idempotency_key, started_at, &now),
        )
        .await
    }

    /// One POST, classified.
    async fn attempt(
        &self,
        target: &WebhookTarget,
        body: &[u8],
        idempotency_key: &str,
        started_at: DateTime<Utc>,
        now: &(impl Fn() -> DateTime<Utc> + Send + Sync),
    ) -> Answer {
        let permanent = |error: String| Answer::Permanent {
            status: None,
            error,
        };
        match reqwest::Url::parse(&target.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(url) => {
                return permanent(format!(
                    "the url's scheme is {:?}, not http or https; fix the routing file's url",
                    url.scheme()
                ));
            }
            Err(e) => {
                return permanent(format!(
                    "the url is not valid ({e}); fix the routing file's url"
                ));
            }
        }
        let headers = match request_headers(target, body, idempotency_key, started_at) {
            Ok(headers) => headers,
            Err(error) => return permanent(error),
        };
        let request = self
            .client
            .post(&target.url)
            .headers(headers)
            .body(body.to_vec());

        let deadline = tokio::time::Instant::now() + self.policy.timeout;
        let timed_out = || Answer::Transient {
            status: None,
            error: format!(
                "the receiver did not answer within {:?}",
                self.policy.timeout
            ),
            advice: "check that the receiver is healthy, or raise the timeout",
            retry_after: None,
        };
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Err(_) => return timed_out(),
            Ok(Err(e)) if e.is_builder() => {
                return permanent(format!(
                    "the request could not be built ({}); fix the routing file's url",
                    error_chain(&e.without_url())
                ));
            }
            Ok(Err(e)) => {
                let (error, advice) = if e.is_connect() {
                    (
                        "could not connect to the receiver",
                        "check that the receiver is running and the routing file's url",
                    )
                } else {
                    (
                        "the request to the receiver failed",
                        "check that the receiver is healthy and the routing file's url",
                    )
                };
                return Answer::Transient {
                    status: None,
                    error: format!("{error}: {}", error_chain(&e.without_url())),
                    advice,
                    retry_after: None,
                };
            }
            Ok(Ok(response)) => response,
        };

        let status = response.status();
        if status.is_success() {
            return Answer::Success(status.as_u16());
        }
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, now())),
            _ => None,
        };
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(redacted_url);
        let excerpt = tokio::time::timeout_at(deadline, body_excerpt(response))
            .await
            .unwrap_or_default();
        let answered = answered(status, &excerpt);

        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let advice = if status == StatusCode::TOO_MANY_REQUESTS {
                "the receiver is rate limiting; group alerts more (group_interval) or raise its limit"
            } else {
                "the receiver is failing; see its logs"
            };
            return Answer::Transient {
                status: Some(status.as_u16()),
                error: answered,
                advice,
                retry_after,
            };
        }
        let fix = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                "check the receiver's bearer_token and signing secret".to_owned()
            }
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
                "fix the routing file's url".to_owned()
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                "lower the receiver's max_alerts so that messages are smaller".to_owned()
            }
            _ if status.is_redirection() => match location {
                Some(location) => {
                    format!("put the new address ({location}) in the routing file's url")
                }
                None => "put the receiver's final address in the routing file's url".to_owned(),
            },
            _ => "fix the receiver or the routing file's url".to_owned(),
        };
        Answer::Permanent {
            status: Some(status.as_u16()),
            error: format!("{answered}; {fix}"),
        }
    }
}

/// The headers of one attempt; an error names the setting to fix, never its value.
fn request_headers(
    target: &WebhookTarget,
    body: &[u8],
    idempotency_key: &str,
    now: DateTime<Utc>,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let key = HeaderValue::from_str(idempotency_key)
        .map_err(|_| format!("the idempotency key {idempotency_key:?} is not a valid header"))?;
    headers.insert(IDEMPOTENCY_KEY_HEADER, key);
    if let Some(token) = &target.bearer_token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            "the bearer token holds characters a header cannot carry; fix the receiver's \
             bearer_token"
                .to_owned()
        })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    if let Some(secret) = &target.hmac_secret {
        let timestamp = now.timestamp();
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from(timestamp));
        let signature = sign(secret.as_bytes(), timestamp, body);
        // Hex digits and `sha256=` only.
        let value = HeaderValue::from_str(&signature)
            .map_err(|_| "the signature is not a valid header".to_owned())?;
        headers.insert(SIGNATURE_HEADER, value);
    }
    Ok(headers)
}

/// `the receiver answered 400 Bad Request: <excerpt>`.
fn answered(status: StatusCode, excerpt: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("");
    let mut text = format!("the receiver answered {} {reason}", status.as_u16());
    if reason.is_empty() {
        text.pop();
    }
    if !excerpt.is_empty() {
        text.push_str(": ");
        text.push_str(excerpt);
    }
    text
}

/// The first [`ERROR_BODY_LIMIT`] bytes of a response body, whitespace collapsed to single
/// spaces so the error stays on one line.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&bytes)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The wait a `Retry-After` value asks for: delta-seconds, or an HTTP date (RFC 1123) taken
/// relative to `now` (a date in the past: no wait). `None` when it is neither.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still a (very long) wait.
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (date.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// An error and its sources, `a: b: c`.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and reqwest sometimes repeat their cause in their own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The url without credentials, query or fragment, which may hold secrets, for logs and
/// errors.
fn redacted_url(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(mut url) => {
            let _ = url.set_password(None);
            let _ = url.set_username("");
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// A MAC keyed with `secret`.
fn keyed(secret: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length (longer ones are hashed first).
        Err(_) => unreachable!("hmac accepts keys of any length"),
    }
}

/// The `X-Pharos-Signature` of `body` sent at `timestamp` (Unix seconds):
/// `sha256=` and the lowercase hex HMAC-SHA256, keyed with `secret`, of `<timestamp>.<body>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is the signature of `body` at `timestamp`, compared in constant time.
/// Receivers should also refuse a timestamp far from their own clock, against replays.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(digest) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(digest) = hex::decode(digest) else {
        return false;
    };
    let mut mac = keyed(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};
    use chrono::TimeZone;
    use tokio::time::Instant;

    use super::*;

    /// What the test receiver answers to one request.
    #[derive(Clone)]
    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
        delay: Duration,
    }

    fn reply(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    struct Seen {
        headers: HeaderMap,
        body: Bytes,
        at: Instant,
    }

    /// A webhook receiver that answers from a script (then 200) and records every request.
    #[derive(Default)]
    struct Receiver {
        script: Mutex<VecDeque<Reply>>,
        seen: Mutex<Vec<Seen>>,
    }

    async fn hook(
        State(receiver): State<Arc<Receiver>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        receiver.seen.lock().expect("test setup").push(Seen {
            headers,
            body,
            at: Instant::now(),
        });
        let next = receiver.script.lock().expect("test setup").pop_front();
        let reply = next.unwrap_or_else(|| reply(200));
        tokio::time::sleep(reply.delay).await;
        let mut response = (
            StatusCode::from_u16(reply.status).expect("test setup"),
            reply.body,
        )
            .into_response();
        for (name, value) in reply.headers {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_str(&value).expect("test setup"));
        }
        response
    }

    async fn serve(script: Vec<Reply>) -> (String, Arc<Receiver>) {
        let receiver = Arc::new(Receiver {
            script: Mutex::new(script.into()),
            seen: Mutex::default(),
        });
        let router = Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test setup");
        let url = format!("http://{}/hook", listener.local_addr().expect("test setup"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        (url, receiver)
    }

    fn fast_policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(20),
            factor: 2.0,
            max_backoff: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(5),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 6, 10, 0, 0)
            .single()
            .expect("a valid time")
    }

    fn target(url: &str) -> WebhookTarget {
        WebhookTarget {
            url: url.to_owned(),
            bearer_token: None,
            hmac_secret: None,
        }
    }

    /// Delivers and returns the delivery with (attempt, outcome, status, error) of each attempt.
    async fn deliver(
        policy: RetryPolicy,
        target: &WebhookTarget,
        body: &[u8],
    ) -> (Delivery, Vec<Attempt>) {
        let sender = WebhookSender::new(policy).expect("test setup");
        let mut attempts = Vec::new();
        let delivery = sender
            .deliver(target, body, "key-1", now, |a| attempts.push(a.clone()))
            .await;
        (delivery, attempts)
    }

    fn outcomes(attempts: &[Attempt]) -> Vec<(u32, AttemptOutcome, Option<u16>)> {
        attempts
            .iter()
            .map(|a| (a.attempt, a.outcome, a.http_status))
            .collect()
    }

    #[tokio::test]
    async fn retries_server_errors_with_the_same_key_signature_and_token() {
        let (url, receiver) = serve(vec![reply(503), reply(503)]).await;
        let target = WebhookTarget {
            url,
            bearer_token: Some("t0ken".to_owned()),
            hmac_secret: Some("shh".to_owned()),
        };
        let body = br#"{"receiver":"x"}"#;
        let (delivery, attempts) = deliver(fast_policy(), &target, body).await;

        assert_eq!(
            delivery,
            Delivery::Delivered {
                attempts: 3,
                http_status: 200
            }
        );
        use AttemptOutcome::*;
        assert_eq!(
            outcomes(&attempts),
            [
                (1, Retry, Some(503)),
                (2, Retry, Some(503)),
                (3, Delivered, Some(200))
            ]
        );
        assert!(
            attempts[0].error.contains("503 Service Unavailable"),
            "{}",
            attempts[0].error
        );
        assert!(attempts[2].error.is_empty());
        assert!(attempts.iter().all(|a| a.started_at == now()));

        let seen = receiver.seen.lock().expect("test setup");
        assert_eq!(seen.len(), 3);
        for request in seen.iter() {
            let header = |name: &str| {
                request
                    .headers
                    .get(name)
                    .expect("test setup")
                    .to_str()
                    .expect("test setup")
                    .to_owned()
            };
            assert_eq!(&request.body[..], body);
            assert_eq!(header("idempotency-key"), "key-1");
            assert_eq!(header("authorization"), "Bearer t0ken");
            assert_eq!(header("content-type"), "application/json");
            assert_eq!(header("user-agent"), USER_AGENT);
            assert!(USER_AGENT.starts_with("Pharos/"));
            let timestamp: i64 = header("x-pharos-timestamp").parse().expect("test setup");
            assert_eq!(timestamp, 1_765_015_200);
            let signature = header("x-pharos-signature");
            assert!(verify(b"shh", timestamp, body, &signature));
            assert!(!verify(b"other", timestamp, body, &signature));
        }
        // The backoff waited between the attempts.
        assert!(seen[1].at - seen[0].at >= Duration::from_millis(20));
        assert!(seen[2].at - seen[1].at >= Duration::from_millis(40));
    }

    #[tokio::test]
    async fn retry_after_replaces_the_backoff() {
        let mut limited = reply(429);
        limited.headers.push(("retry-after", "1".to_owned()));
        let (url, receiver) = serve(vec![limited]).await;
        let (delivery, attempts) = deliver(fast_policy(), &target(&url), b"{}").await;

        assert_eq!(
            delivery,
            Delivery::Delivered {
                attempts: 2,
                http_status: 200
            }
        );
        use AttemptOutcome::*;
        assert_eq!(
            outcomes(&attempts),
            [(1, Retry, Some(429)), (2, Delivered, Some(200))]
        );
        let seen = receiver.seen.lock().expect("test setup");
        let waited = seen[1].at - seen[0].at;
        assert!(waited >= Duration::from_secs(1), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_cap_waits_max_backoff() {
        let mut limited = reply(503);
        limited.headers.push(("retry-after", "3600".to_owned()));
        let (url, receiver) = serve(vec![limited]).await;
        let (delivery, _) = deliver(fast_policy(), &target(&url), b"{}").await;

        assert_eq!(
            delivery,
            Delivery::Delivered {
                attempts: 2,
                http_status: 200
            }
        );
        let seen = receiver.seen.lock().expect("test setup");
        let waited = seen[1].at - seen[0].at;
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(1), "{waited:?}");
    }

    #[tokio::test]
    async fn a_client_error_is_permanent() {
        let mut bad = reply(400);
        bad.body = "bad payload:\n  missing field `alerts`".to_owned();
        let (url, receiver) = serve(vec![bad]).await;
        let (delivery, attempts) = deliver(fast_policy(), &target(&url), b"{}").await;

        let Delivery::Dead {
            attempts: 1,
            last_error,
        } = &delivery
        else {
            panic!("{delivery:?}");
        };
        assert_eq!(
            last_error,
            "the receiver answered 400 Bad Request: bad payload: missing field `alerts`; \
             fix the receiver or the routing file's url"
        );
        assert_eq!(
            outcomes(&attempts),
            [(1, AttemptOutcome::Failed, Some(400))]
        );
        assert_eq!(&attempts[0].error, last_error);
        assert_eq!(receiver.seen.lock().expect("test setup").len(), 1);
    }

    #[tokio::test]
    async fn a_long_error_body_is_cut_at_512_bytes() {
        let mut bad = reply(422);
        bad.body = "x".repeat(2000);
        let (url, _receiver) = serve(vec![bad]).await;
        let (delivery, _) = deliver(fast_policy(), &target(&url), b"{}").await;
        let Delivery::Dead { last_error, .. } = delivery else {
            panic!("{delivery:?}");
        };
        assert!(last_error.contains(&format!("Unprocessable Entity: {};", "x".repeat(512))));
        assert!(!last_error.contains(&"x".repeat(513)));
    }

    #[tokio::test]
    async fn server_errors_until_the_last_attempt_are_dead() {
        let (url, receiver) = serve(vec![reply(500), reply(502), reply(503)]).await;
        let (delivery, attempts) = deliver(fast_policy(), &target(&url), b"{}").await;

        use AttemptOutcome::*;
        assert_eq!(
            outcomes(&attempts),
            [
                (1, Retry, Some(500)),
                (2, Retry, Some(502)),
                (3, Failed, Some(503))
            ]
        );
        let Delivery::Dead {
            attempts: 3,
            last_error,
        } = &delivery
        else {
            panic!("{delivery:?}");
        };
        assert!(last_error.starts_with("the receiver answered 503 Service Unavailable; gave up after 3 attempts: the receiver is failing"), "{last_error}");
        assert_eq!(receiver.seen.lock().expect("test setup").len(), 3);
    }

    #[tokio::test]
    async fn an_unreachable_receiver_is_dead_after_all_attempts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test setup");
        let url = format!("http://{}/hook", listener.local_addr().expect("test setup"));
        drop(listener);
        let (delivery, attempts) = deliver(fast_policy(), &target(&url), b"{}").await;

        use AttemptOutcome::*;
        assert_eq!(
            outcomes(&attempts),
            [(1, Retry, None), (2, Retry, None), (3, Failed, None)]
        );
        let Delivery::Dead {
            attempts: 3,
            last_error,
        } = &delivery
        else {
            panic!("{delivery:?}");
        };
        assert!(
            last_error.starts_with("could not connect to the receiver"),
            "{last_error}"
        );
        assert!(
            last_error.contains("gave up after 3 attempts"),
            "{last_error}"
        );
        assert!(last_error.contains(&url), "{last_error}");
    }

    #[tokio::test]
    async fn an_attempt_that_takes_too_long_is_retried() {
        let mut slow = reply(200);
        slow.delay = Duration::from_secs(5);
        let (url, _receiver) = serve(vec![slow.clone(), slow]).await;
        let policy = RetryPolicy {
            attempts: 2,
            timeout: Duration::from_millis(100),
            ..fast_policy()
        };
        let (delivery, attempts) = deliver(policy, &target(&url), b"{}").await;

        use AttemptOutcome::*;
        assert_eq!(outcomes(&attempts), [(1, Retry, None), (2, Failed, None)]);
        assert!(
            attempts[0].error.contains("did not answer within 100ms"),
            "{}",
            attempts[0].error
        );
        assert!(attempts[0].duration >= Duration::from_millis(100));
        assert!(
            matches!(delivery, Delivery::Dead { attempts: 2, .. }),
            "{delivery:?}"
        );
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let mut moved = reply(308);
        moved.headers.push((
            "location",
            "http://elsewhere.example/hook?token=x".to_owned(),
        ));
        let (url, receiver) = serve(vec![moved]).await;
        let (delivery, _) = deliver(fast_policy(), &target(&url), b"{}").await;
        assert_eq!(
            delivery,
            Delivery::Dead {
                attempts: 1,
                last_error: "the receiver answered 308 Permanent Redirect; put the new address \
                             (http://elsewhere.example/hook) in the routing file's url"
                    .to_owned()
            }
        );
        assert_eq!(receiver.seen.lock().expect("test setup").len(), 1);
    }

    #[tokio::test]
    async fn a_bad_url_fails_at_once() {
        let (delivery, attempts) = deliver(fast_policy(), &target("ftp://x/hook"), b"{}").await;
        assert!(
            matches!(&delivery, Delivery::Dead { attempts: 1, last_error } if last_error.contains("fix the routing file's url")),
            "{delivery:?}"
        );
        assert_eq!(outcomes(&attempts), [(1, AttemptOutcome::Failed, None)]);
    }

    #[test]
    fn deliveries_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let sender = WebhookSender::new(fast_policy()).expect("test setup");
        let target = target("http://127.0.0.1:1/hook");
        let future = sender.deliver(&target, b"{}", "key", now, |_| {});
        assert_send(&future);
    }

    #[test]
    fn backoff_grows_by_the_factor_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<_> = (1..=8).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(60));
        let huge = RetryPolicy {
            factor: 1e300,
            ..RetryPolicy::default()
        };
        assert_eq!(huge.backoff(3), Duration::from_secs(60));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = Utc
            .with_ymd_and_hms(2015, 10, 21, 7, 27, 58)
            .single()
            .expect("a valid time");
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::MAX)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn signatures_match_an_independent_hmac() {
        // python3: hmac.new(b"shh", b'1765015200.{"receiver":"x"}', hashlib.sha256).hexdigest()
        let expected = "sha256=b2344a3f060bd889e5226c99f09fba6a6f4d9f139e32514d28121fd5f04b1599";
        let body = br#"{"receiver":"x"}"#;
        assert_eq!(sign(b"shh", 1_765_015_200, body), expected);
        assert!(verify(b"shh", 1_765_015_200, body, expected));
        assert!(!verify(b"shh", 1_765_015_201, body, expected));
        assert!(!verify(
            b"shh",
            1_765_015_200,
            br#"{"receiver":"y"}"#,
            expected
        ));
        assert!(!verify(
            b"shh",
            1_765_015_200,
            body,
            &expected[..expected.len() - 2]
        ));
        assert!(!verify(
            b"shh",
            1_765_015_200,
            body,
            expected.trim_start_matches("sha256=")
        ));
        assert!(!verify(b"shh", 1_765_015_200, body, "sha256=zz"));
        // Keys longer than SHA-256's block are fine too.
        let long = [7u8; 200];
        assert!(verify(&long, 1, b"", &sign(&long, 1, b"")));
    }

    #[test]
    fn secrets_stay_out_of_debug_output_and_policies_are_checked() {
        let target = WebhookTarget {
            url: "https://user:pass@hooks.example/x?key=k1".to_owned(),
            bearer_token: Some("t0ken".to_owned()),
            hmac_secret: Some("shh".to_owned()),
        };
        let debug = format!("{target:?}");
        for secret in ["t0ken", "shh", "pass", "k1", "user"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("https://hooks.example/x"), "{debug}");

        let zero = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(matches!(
            WebhookSender::new(zero),
            Err(WebhookError::InvalidPolicy {
                field: "attempts",
                ..
            })
        ));
        let shrinking = RetryPolicy {
            factor: 0.5,
            ..RetryPolicy::default()
        };
        assert!(WebhookSender::new(shrinking).is_err());
        assert!(WebhookSender::new(RetryPolicy::default()).is_ok());
    }
}
