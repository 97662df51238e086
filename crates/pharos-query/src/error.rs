//! The query service's errors, each of a class the Prometheus HTTP API names (`bad_data`,
//! `execution`, `timeout`, `canceled`, `unavailable`), mapped to gRPC statuses in one place.

use pharos_promql::ErrorClass;
use pharos_store::StoreError;
use tonic_types::{ErrorDetails, StatusExt as _};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Parsing, planning or evaluating the query failed.
    #[error(transparent)]
    Engine(#[from] pharos_promql::Error),
    /// A request parameter is wrong.
    #[error("invalid parameter {parameter:?}: {reason}")]
    InvalidParameter { parameter: String, reason: String },
    /// The query ran past its timeout.
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The evaluation task failed (a bug): logged, reported as internal.
    #[error("query evaluation failed")]
    Internal,
}

impl QueryError {
    pub fn invalid(parameter: &str, reason: impl Into<String>) -> Self {
        QueryError::InvalidParameter {
            parameter: parameter.to_owned(),
            reason: reason.into(),
        }
    }

    /// The class of the error, `None` for an internal error.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            QueryError::Engine(error) => Some(error.class()),
            QueryError::InvalidParameter { .. } => Some(ErrorClass::BadData),
            QueryError::Timeout(_) => Some(ErrorClass::Timeout),
            QueryError::Store(StoreError::Unavailable(_)) => Some(ErrorClass::Unavailable),
            QueryError::Store(_) | QueryError::Internal => None,
        }
    }

    /// The message a client sees; internal details stay in the log.
    pub fn client_message(&self) -> String {
        match self {
            QueryError::Store(StoreError::Unavailable(_)) => {
                "the store is unavailable; try again".to_owned()
            }
            QueryError::Store(_) | QueryError::Internal => {
                tracing::error!(error = %self, "query failed");
                "internal error; see the server log".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl From<QueryError> for tonic::Status {
    fn from(error: QueryError) -> Self {
        let message = error.client_message();
        if let QueryError::Engine(pharos_promql::Error::Limit(_)) = &error {
            return tonic::Status::resource_exhausted(message);
        }
        match error.class() {
            Some(ErrorClass::BadData) | Some(ErrorClass::Execution) => {
                let field = match &error {
                    QueryError::InvalidParameter { parameter, .. } => parameter.clone(),
                    QueryError::Engine(pharos_promql::Error::InvalidParameter {
                        parameter,
                        ..
                    }) => (*parameter).to_owned(),
                    QueryError::Engine(engine) => match engine.position() {
                        Some(position) => format!(
                            "query (line {}, column {}, offset {})",
                            position.line, position.column, position.offset
                        ),
                        None => "query".to_owned(),
                    },
                    _ => "query".to_owned(),
                };
                let details = ErrorDetails::with_bad_request_violation(field, message.clone());
                tonic::Status::with_error_details(tonic::Code::InvalidArgument, message, details)
            }
            Some(ErrorClass::Timeout) => tonic::Status::deadline_exceeded(message),
            Some(ErrorClass::Canceled) => tonic::Status::cancelled(message),
            Some(ErrorClass::Unavailable) => {
                let details =
                    ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(1)));
                tonic::Status::with_error_details(tonic::Code::Unavailable, message, details)
            }
            None => tonic::Status::internal(message),
        }
    }
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
