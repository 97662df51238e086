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
    /// Storm control: the dispatcher holds `alert.max_alerts` alerts already.
    #[error(
        "{refused} new alerts refused: Pharos holds its maximum of {limit} alerts (alert.max_alerts); resolve or silence alerts, fix the rules that fire too many, or raise the limit"
    )]
    TooManyAlerts { limit: usize, refused: usize },
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
            AlertError::TooManyAlerts { .. } => pharos_runtime::error::overloaded(
                tonic::Code::ResourceExhausted,
                error.to_string(),
                Duration::from_secs(60),
            ),
            AlertError::Store(StoreError::Unavailable(_)) => unavailable(
                "the database is unavailable; retry shortly",
                Duration::from_secs(1),
            ),
            other => internal(&other),
        }
    }
}
