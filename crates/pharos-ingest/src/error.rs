//! The ingest service's errors and their gRPC statuses.

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
    /// The database could not take the batch; nothing of it was stored.
    #[error("database unavailable: {source}")]
    Unavailable {
        source: Arc<StoreError>,
        retry_after: Duration,
    },
    /// The service is shutting down.
    #[error("shutting down")]
    ShuttingDown { retry_after: Duration },
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

impl IngestError {
    pub fn unavailable(source: StoreError, retry_after: Duration) -> Self {
        IngestError::Unavailable {
            source: Arc::new(source),
            retry_after,
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
                tracing::warn!(error = %source, "batch not written");
                pharos_runtime::error::unavailable(
                    "the database did not take the batch; nothing of it was stored; retry after the suggested delay",
                    retry_after,
                )
            }
            IngestError::ShuttingDown { retry_after } => pharos_runtime::error::unavailable(
                "this ingest replica is shutting down; retry (on another replica)",
                retry_after,
            ),
        }
    }
}
