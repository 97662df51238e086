//! The rich gRPC error model (google.rpc `BadRequest`, `RetryInfo`,
//! `ErrorInfo`) built with tonic-types, so that clients in any language can
//! read which field was wrong or when to retry. Service crates map their own
//! error enums to `tonic::Status` through these helpers.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error Pharos returns.
pub const ERROR_DOMAIN: &str = "pharos.io";

/// One offending request field and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub reason: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// INVALID_ARGUMENT with a `BadRequest` detail naming every offending field.
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let message = match violations {
        [] => "invalid argument".to_string(),
        [one] => format!("invalid {}: {}", one.field, one.reason),
        [first, rest @ ..] => format!(
            "invalid {}: {} (and {} more)",
            first.field,
            first.reason,
            rest.len()
        ),
    };
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(violation.field.clone(), violation.reason.clone());
    }
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// A status with an `ErrorInfo` detail whose `reason` is a stable,
/// machine-readable UPPER_SNAKE identifier, with optional metadata.
pub fn with_reason(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (String, String)>,
) -> Status {
    let details = ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        metadata.into_iter().collect::<HashMap<_, _>>(),
    );
    Status::with_error_details(code, message, details)
}

/// UNAVAILABLE with a `RetryInfo`: a dependency (the database) is down.
pub fn unavailable(message: impl Into<String>, retry_after: Duration) -> Status {
    let mut details = ErrorDetails::with_retry_info(Some(retry_after));
    details.set_error_info("UNAVAILABLE", ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(Code::Unavailable, message, details)
}

/// RESOURCE_EXHAUSTED (or UNAVAILABLE) with a `RetryInfo` saying when to retry.
pub fn overloaded(code: Code, message: impl Into<String>, retry_after: Duration) -> Status {
    let mut details = ErrorDetails::with_retry_info(Some(retry_after));
    details.set_error_info("OVERLOADED", ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

/// INTERNAL without the cause: the cause, with its whole chain of sources, is logged here,
/// never sent.
pub fn internal(error: &dyn std::error::Error) -> Status {
    tracing::error!(error = %chain(error), "internal error");
    Status::internal("internal error; see the server log")
}

/// `error: its source: that one's source...`, for logs.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        text.push_str(": ");
        text.push_str(&source.to_string());
        cause = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let status = invalid_argument(&[
            FieldViolation::new("key", "must not be empty"),
            FieldViolation::new("value", "not an integer"),
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid key: must not be empty (and 1 more)"
        );
        let details = status.get_error_details();
        let bad_request = details.bad_request().expect("bad request detail");
        assert_eq!(bad_request.field_violations.len(), 2);
        assert_eq!(bad_request.field_violations[1].field, "value");
    }

    #[test]
    fn internal_errors_keep_their_cause_out_of_the_status() {
        #[derive(Debug, thiserror::Error)]
        #[error("the store failed")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(chain(&error), "the store failed: disk on fire");
        let status = internal(&error);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("fire"));
    }

    #[test]
    fn overloaded_carries_retry_info() {
        let status = overloaded(
            Code::ResourceExhausted,
            "too many requests",
            Duration::from_millis(250),
        );
        let details = status.get_error_details();
        let retry = details.retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(250)));
        assert_eq!(
            details.error_info().map(|i| i.reason.as_str()),
            Some("OVERLOADED")
        );
    }
}
