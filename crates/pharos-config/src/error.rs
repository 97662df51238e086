//! The configuration service's error type and its one mapping to
//! `tonic::Status` (INVALID_ARGUMENT with field violations, FAILED_PRECONDITION
//! for a revision mismatch, OUT_OF_RANGE for a compacted revision,
//! UNAVAILABLE with RetryInfo when the database is down).

use std::sync::Arc;
use std::time::Duration;

use pharos_runtime::error::{self as rich, FieldViolation};
use pharos_store::StoreError;
use tonic::Code;

/// What went wrong in the configuration service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid argument: {0:?}")]
    InvalidArgument(Vec<FieldViolation>),
    #[error("key {key:?} not found (environment {environment:?})")]
    NotFound { key: String, environment: String },
    #[error("revision mismatch on {key:?}: expected {expected}, current {current}")]
    RevisionMismatch {
        key: String,
        expected: i64,
        current: i64,
    },
    #[error("revision {requested} was compacted (change log starts after {compacted})")]
    RevisionCompacted { requested: i64, compacted: i64 },
    #[error("overloaded: {reason}")]
    Overloaded {
        reason: String,
        retry_after: Duration,
    },
    #[error("the configuration store is unavailable")]
    Unavailable(#[source] Arc<StoreError>),
    /// A Watch open when the service stops: the watcher resumes after `last_revision`.
    #[error("the server is shutting down (watch delivered up to revision {last_revision})")]
    ShuttingDown { last_revision: i64 },
    /// A bug or corrupt state: logged with its cause, sent as INTERNAL without it.
    #[error("the configuration store failed")]
    Internal(#[source] Arc<StoreError>),
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl ConfigError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ConfigError::InvalidArgument(vec![FieldViolation::new(field, reason)])
    }

    /// Maps a store error of an operation on `key`/`environment`.
    pub fn from_store(error: StoreError, key: &str, environment: &str) -> Self {
        match error {
            StoreError::NotFound => ConfigError::NotFound {
                key: key.to_string(),
                environment: environment.to_string(),
            },
            StoreError::RevisionMismatch { expected, current } => ConfigError::RevisionMismatch {
                key: key.to_string(),
                expected,
                current,
            },
            StoreError::InvalidValue(reason) => ConfigError::invalid("value", reason),
            other => other.into(),
        }
    }
}

impl From<StoreError> for ConfigError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => ConfigError::Unavailable(Arc::new(error)),
            StoreError::InvalidValue(reason) => ConfigError::invalid("value", reason),
            other => ConfigError::Internal(Arc::new(other)),
        }
    }
}

impl From<ConfigError> for tonic::Status {
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::InvalidArgument(violations) => rich::invalid_argument(&violations),
            ConfigError::NotFound { key, environment } => {
                let message = if environment.is_empty() {
                    format!("key {key:?} not found")
                } else {
                    format!(
                        "key {key:?} not found in environment {environment:?} nor as a base value"
                    )
                };
                rich::with_reason(
                    Code::NotFound,
                    "KEY_NOT_FOUND",
                    message,
                    [("key".to_string(), key)],
                )
            }
            ConfigError::RevisionMismatch {
                key,
                expected,
                current,
            } => rich::with_reason(
                Code::FailedPrecondition,
                "REVISION_MISMATCH",
                format!(
                    "key {key:?} is at revision {current}, not the expected {expected}; re-read and retry"
                ),
                [
                    ("key".to_string(), key),
                    ("expected_revision".to_string(), expected.to_string()),
                    ("current_revision".to_string(), current.to_string()),
                ],
            ),
            ConfigError::RevisionCompacted {
                requested,
                compacted,
            } => rich::with_reason(
                Code::OutOfRange,
                "REVISION_COMPACTED",
                format!(
                    "start_revision {requested} is older than the retained change log (compacted up to {compacted}); re-read the current values and watch without start_revision"
                ),
                [("compacted_revision".to_string(), compacted.to_string())],
            ),
            ConfigError::Overloaded {
                reason,
                retry_after,
            } => rich::overloaded(Code::ResourceExhausted, reason, retry_after),
            ConfigError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                rich::unavailable(
                    "the configuration store is unavailable; retry shortly",
                    Duration::from_secs(1),
                )
            }
            ConfigError::ShuttingDown { last_revision } => rich::unavailable(
                format!(
                    "the server is shutting down; watch again with start_revision {last_revision} (another replica, or this one once it is back)"
                ),
                Duration::from_secs(1),
            ),
            internal @ ConfigError::Internal(_) => rich::internal(&internal),
        }
    }
}
