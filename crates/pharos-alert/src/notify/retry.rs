//! The retry loop every sender shares: attempts under a [`RetryPolicy`] until one is
//! delivered, one fails for good or the attempts run out, each attempt reported (numbered,
//! timed, with its outcome) before the wait that may follow it. A sender only says what one
//! attempt came to ([`Answer`]); the waits (backoff or the receiver's `Retry-After`, within the
//! policy), the logs and the final [`Delivery`] are decided here.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::notify::webhook::{Attempt, AttemptOutcome, Delivery, RetryPolicy};

/// What one attempt came to, before it is numbered.
pub(crate) enum Answer {
    /// Delivered, with the receiver's status (HTTP status, SMTP reply code).
    Success(u16),
    /// Worth another attempt.
    Transient {
        status: Option<u16>,
        error: String,
        /// What to check once attempts ran out.
        advice: &'static str,
        /// The receiver's `Retry-After`, as a wait from now.
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way; `error` says what to fix.
    Permanent { status: Option<u16>, error: String },
}

/// Runs `attempt` (given each attempt's start time) under `policy`. `kind` and `destination`
/// (a redacted URL, a server) name the delivery in logs and in the final error.
pub(crate) async fn deliver_with_retries<F, Fut>(
    policy: &RetryPolicy,
    kind: &'static str,
    destination: &str,
    now: impl Fn() -> DateTime<Utc> + Send + Sync,
    mut on_attempt: impl FnMut(&Attempt) + Send,
    mut attempt: F,
) -> Delivery
where
    F: FnMut(DateTime<Utc>) -> Fut + Send,
    Fut: Future<Output = Answer> + Send,
{
    let attempts = policy.attempts.max(1);
    let mut number = 0;
    loop {
        number += 1;
        let started_at = now();
        let clock = tokio::time::Instant::now();
        let answer = attempt(started_at).await;
        let duration = clock.elapsed();
        let last = number >= attempts;
        let (outcome, status, error, then) = match answer {
            Answer::Success(status) => (
                AttemptOutcome::Delivered,
                Some(status),
                String::new(),
                Then::Delivered(status),
            ),
            Answer::Permanent { status, error } => {
                let then = Then::Dead(error.clone());
                (AttemptOutcome::Failed, status, error, then)
            }
            Answer::Transient {
                status,
                error,
                advice,
                ..
            } if last => {
                let noun = if number == 1 { "attempt" } else { "attempts" };
                let then = Then::Dead(format!(
                    "{error}; gave up after {number} {noun}: {advice} ({destination})"
                ));
                (AttemptOutcome::Failed, status, error, then)
            }
            Answer::Transient {
                status,
                error,
                retry_after,
                ..
            } => {
                let wait = match retry_after {
                    Some(wait) if wait <= policy.max_retry_after => wait,
                    Some(_) => policy.max_backoff,
                    None => policy.backoff(number),
                };
                (AttemptOutcome::Retry, status, error, Then::Wait(wait))
            }
        };
        let record = Attempt {
            attempt: number,
            started_at,
            duration,
            outcome,
            http_status: status,
            error,
        };
        on_attempt(&record);
        match then {
            Then::Delivered(status) => {
                tracing::debug!(
                    kind,
                    destination,
                    attempt = number,
                    status,
                    "notification delivered"
                );
                return Delivery::Delivered {
                    attempts: number,
                    http_status: status,
                };
            }
            Then::Wait(wait) => {
                tracing::warn!(
                    kind,
                    destination,
                    attempt = number,
                    status,
                    error = %record.error,
                    retry_in = ?wait,
                    "notification attempt failed, retrying"
                );
                tokio::time::sleep(wait).await;
            }
            Then::Dead(last_error) => {
                tracing::warn!(
                    kind,
                    destination,
                    attempt = number,
                    status,
                    error = %last_error,
                    "notification delivery dead"
                );
                return Delivery::Dead {
                    attempts: number,
                    last_error,
                };
            }
        }
    }
}

/// What follows an attempt.
enum Then {
    Delivered(u16),
    Wait(Duration),
    Dead(String),
}
