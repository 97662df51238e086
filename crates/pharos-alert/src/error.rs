//! [`AlertError`]: what can go wrong in the alert service, by failure class, and its one
//! mapping to a gRPC status.

use pharos_runtime::error::{FieldViolation, internal, invalid_argument, unavailable};
use pharos_store::StoreError;
use std::time::Duration;

pub type Result<T, E = AlertError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A request field is wrong.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    /// A rule file or the routing file cannot be used.
    #[error("{0}")]
    Configuration(String),
    /// A stored row does not read back.
    #[error("stored alert state does not read back: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AlertError> for tonic::Status {
    fn from(error: AlertError) -> Self {
        match error {
            AlertError::InvalidArgument { field, reason } => {
                invalid_argument(&[FieldViolation::new(field, reason)])
            }
            AlertError::NotFound(what) => tonic::Status::not_found(format!("{what} not found")),
            AlertError::Configuration(message) => tonic::Status::failed_precondition(message),
            AlertError::Store(StoreError::Unavailable(_)) => unavailable(
                "the database is unavailable; retry shortly",
                Duration::from_secs(1),
            ),
            other => internal(&other),
        }
    }
}
