//! The ingest service's errors and their one mapping to gRPC statuses: INVALID_ARGUMENT with
//! field violations, RESOURCE_EXHAUSTED with RetryInfo for a full buffer, UNAVAILABLE with
//! RetryInfo when the database cannot take a batch now (or the replica is stopping), and
//! INTERNAL, without a retry hint, when the store refused a batch for a reason that retrying
//! will not change (a bug: the cause is logged, not sent).

use std::sync::Arc;
use std::time::Duration;

use pharos_runtime::error::FieldViolation;
use pharos_store::StoreError;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The request as a whole is refused (a single bad item is a rejection, not an error).
    #[error("invalid request: {0:?}")]
    InvalidArgument(Vec<FieldViolation>),
    /// A signal's write buffer is full.
    #[error(
        "{signal} write buffer full ({buffered} of {capacity} waiting); retry after {retry_after:?}"
    )]
    Overloaded {
        signal: &'static str,
        buffered: usize,
        capacity: usize,
        retry_after: Duration,
    },
    /// The database could not take the batch now; nothing of it was stored.
    #[error("database unavailable")]
    Unavailable {
        #[source]
        source: Arc<StoreError>,
        retry_after: Duration,
    },
    /// The store refused the batch for a reason retrying will not change; nothing was stored.
    #[error("the store refused the batch")]
    Internal {
        #[source]
        source: Arc<StoreError>,
    },
    /// The service is shutting down.
    #[error("shutting down")]
    ShuttingDown { retry_after: Duration },
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

impl IngestError {
    /// A store failure: UNAVAILABLE (retry after `retry_after`) when the database could not be
    /// reached or was too busy, INTERNAL for anything else.
    pub fn store(source: StoreError, retry_after: Duration) -> Self {
        Self::from_shared_store(Arc::new(source), retry_after)
    }

    /// [`Self::store`] for an error several callers share (one failed batch, many writers).
    pub fn from_shared_store(source: Arc<StoreError>, retry_after: Duration) -> Self {
        match source.as_ref() {
            StoreError::Unavailable(_) => IngestError::Unavailable {
                source,
                retry_after,
            },
            _ => IngestError::Internal { source },
        }
    }
}

impl From<IngestError> for Status {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::InvalidArgument(violations) => {
                pharos_runtime::error::invalid_argument(&violations)
            }
            IngestError::Overloaded {
                signal,
                buffered,
                capacity,
                retry_after,
            } => pharos_runtime::error::overloaded(
                Code::ResourceExhausted,
                format!(
                    "ingest {signal} write buffer full ({buffered} of {capacity} waiting to be written); retry after the suggested delay"
                ),
                retry_after,
            ),
            IngestError::Unavailable {
                source,
                retry_after,
            } => {
                tracing::warn!(error = %source, "batch not written: database unavailable");
                pharos_runtime::error::unavailable(
                    "the database did not take the batch; nothing of it was stored; retry after the suggested delay",
                    retry_after,
                )
            }
            IngestError::ShuttingDown { retry_after } => pharos_runtime::error::unavailable(
                "this ingest replica is shutting down; retry (on another replica)",
                retry_after,
            ),
            IngestError::Internal { source } => pharos_runtime::error::internal(source.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt as _;

    #[test]
    fn only_an_unreachable_database_asks_for_a_retry() {
        let retry_after = Duration::from_millis(300);
        let down = Status::from(IngestError::store(
            StoreError::Unavailable(sqlx::Error::PoolTimedOut),
            retry_after,
        ));
        assert_eq!(down.code(), Code::Unavailable);
        assert_eq!(
            down.get_error_details()
                .retry_info()
                .and_then(|retry| retry.retry_delay),
            Some(retry_after)
        );
        let bug = Status::from(IngestError::store(
            StoreError::Database(sqlx::Error::Protocol("syntax error".into())),
            retry_after,
        ));
        assert_eq!(bug.code(), Code::Internal);
        assert!(bug.get_error_details().retry_info().is_none());
        assert!(
            !bug.message().contains("syntax"),
            "causes are logged, not sent"
        );
    }
}
