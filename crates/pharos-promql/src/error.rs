//! The engine's errors, each of one of the classes the Prometheus HTTP API names in its
//! `errorType` (`bad_data`, `execution`, `timeout`, `canceled`, `unavailable`), so that both the
//! HTTP API and gRPC map them without guessing.

/// Where in the expression something went wrong: a byte offset and the line and column (both
/// from 1) it falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `query`.
    pub fn of(query: &str, offset: usize) -> Self {
        let offset = offset.min(query.len());
        let before = &query[..floor_char_boundary(query, offset)];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map_or(0, |tail| tail.chars().count())
            + 1;
        Self {
            offset,
            line,
            column,
        }
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// The class of an error, as the Prometheus HTTP API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself is wrong: unparsable PromQL, an unsupported construct, bad
    /// parameters. HTTP 400, gRPC INVALID_ARGUMENT.
    BadData,
    /// The query is valid but its evaluation failed (many-to-many matching, too many samples).
    /// HTTP 422, gRPC INVALID_ARGUMENT or RESOURCE_EXHAUSTED.
    Execution,
    /// The query ran longer than its limit. HTTP 503, gRPC DEADLINE_EXCEEDED.
    Timeout,
    /// The caller went away. HTTP 499, gRPC CANCELLED.
    Canceled,
    /// The data could not be read; trying again may work. HTTP 503, gRPC UNAVAILABLE.
    Unavailable,
}

impl ErrorClass {
    /// The `errorType` of the Prometheus HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::BadData => "bad_data",
            ErrorClass::Execution => "execution",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Canceled => "canceled",
            ErrorClass::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The expression does not parse.
    #[error("{message}")]
    Parse {
        message: String,
        position: Option<Position>,
    },
    /// The expression parses, but uses something this engine does not evaluate.
    #[error("{construct} is not supported{}", position.map(|p| format!(" (at {p})")).unwrap_or_default())]
    Unsupported {
        construct: String,
        position: Option<Position>,
    },
    /// Bad query parameters (times, step, range).
    #[error("{reason}")]
    InvalidParameter {
        parameter: &'static str,
        reason: String,
    },
    /// Evaluation failed on the data (for example many-to-many matching).
    #[error("{0}")]
    Execution(String),
    /// A limit of the engine's settings was reached.
    #[error("{0}")]
    Limit(String),
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error("query was canceled")]
    Canceled,
    /// The source could not answer.
    #[error("{0}")]
    Source(#[from] crate::source::SourceError),
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Parse { .. } | Error::Unsupported { .. } | Error::InvalidParameter { .. } => {
                ErrorClass::BadData
            }
            Error::Execution(_) | Error::Limit(_) => ErrorClass::Execution,
            Error::Timeout(_) => ErrorClass::Timeout,
            Error::Canceled => ErrorClass::Canceled,
            Error::Source(error) if error.transient => ErrorClass::Unavailable,
            Error::Source(_) => ErrorClass::Execution,
        }
    }

    /// Where in the expression the error is, when it is tied to a place.
    pub fn position(&self) -> Option<Position> {
        match self {
            Error::Parse { position, .. } | Error::Unsupported { position, .. } => *position,
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
