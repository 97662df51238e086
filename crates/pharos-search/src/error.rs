//! The search service's error type and its one mapping to `tonic::Status`: INVALID_ARGUMENT
//! with field violations, NOT_FOUND and ALREADY_EXISTS naming the index, FAILED_PRECONDITION,
//! UNAVAILABLE with RetryInfo when the store is down.

use std::sync::Arc;
use std::time::Duration;

use pharos_runtime::error::{self as rich, FieldViolation};
use pharos_store::StoreError;
use tonic::Code;

/// What went wrong in the search service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SearchError {
    #[error("invalid argument: {0:?}")]
    InvalidArgument(Vec<FieldViolation>),
    #[error("index {0:?} not found")]
    IndexNotFound(String),
    #[error("index {0:?} already exists")]
    IndexExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("the store is unavailable")]
    Unavailable(#[source] Arc<StoreError>),
    /// A bug or corrupt state: logged with its cause, sent as INTERNAL without it.
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

pub type Result<T, E = SearchError> = std::result::Result<T, E>;

impl SearchError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SearchError::InvalidArgument(vec![FieldViolation::new(field, reason)])
    }

    /// An internal error with no underlying cause.
    pub fn internal(context: impl Into<String>) -> Self {
        SearchError::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// An internal error caused by `source`.
    pub fn internal_from(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        SearchError::Internal {
            context: context.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// Maps a store error of an operation on index `name`.
    pub fn from_store(error: StoreError, name: &str) -> Self {
        match error {
            StoreError::NotFound => SearchError::IndexNotFound(name.to_owned()),
            StoreError::AlreadyExists => SearchError::IndexExists(name.to_owned()),
            StoreError::InvalidValue(reason) => SearchError::FailedPrecondition(reason),
            other => other.into(),
        }
    }
}

impl From<StoreError> for SearchError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => SearchError::Unavailable(Arc::new(error)),
            other => SearchError::internal_from("the store failed", other),
        }
    }
}

impl From<SearchError> for tonic::Status {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::InvalidArgument(violations) => rich::invalid_argument(&violations),
            SearchError::IndexNotFound(name) => rich::with_reason(
                Code::NotFound,
                "INDEX_NOT_FOUND",
                format!("index {name:?} not found; ListIndexes shows the indexes"),
                [("index".to_owned(), name)],
            ),
            SearchError::IndexExists(name) => rich::with_reason(
                Code::AlreadyExists,
                "INDEX_EXISTS",
                format!("index {name:?} already exists; drop it first or use another name"),
                [("index".to_owned(), name)],
            ),
            SearchError::FailedPrecondition(message) => {
                rich::with_reason(Code::FailedPrecondition, "FAILED_PRECONDITION", message, [])
            }
            SearchError::Unavailable(source) => {
                tracing::warn!(error = %source, "vector store unavailable");
                rich::unavailable(
                    "the vector store is unavailable; retry shortly",
                    Duration::from_secs(1),
                )
            }
            internal @ SearchError::Internal { .. } => rich::internal(&internal),
        }
    }
}
