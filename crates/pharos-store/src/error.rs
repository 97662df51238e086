//! The store's error type: failure classes the services map to gRPC codes.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("revision mismatch: expected {expected}, current {current}")]
    RevisionMismatch { expected: i64, current: i64 },
    #[error("invalid value: {0}")]
    InvalidValue(String),
    #[error("unsupported database url {0:?}: use postgres://... or sqlite:...")]
    UnsupportedUrl(String),
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error),
            sqlx::Error::Database(ref database) if is_transient(database.code().as_deref()) => {
                StoreError::Unavailable(error)
            }
            other => StoreError::Database(other),
        }
    }
}

/// Whether a database error code says "not now" rather than "never": the same statement may
/// succeed when retried. PostgreSQL SQLSTATE classes 08 (connection exception), 53
/// (insufficient resources), 57 (operator intervention: the server shutting down or a
/// backend terminated), 58 (system error), serialization failures and deadlocks, and 55000
/// (a database not accepting connections); SQLite's BUSY and LOCKED (5, 6, and their
/// extended codes).
fn is_transient(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    const CLASSES: [&str; 4] = ["08", "53", "57", "58"];
    const CODES: [&str; 3] = ["40001", "40P01", "55000"];
    if code.len() == 5 {
        return CLASSES.iter().any(|class| code.starts_with(class)) || CODES.contains(&code);
    }
    // SQLite: the primary result code is the low byte of the extended one.
    code.parse::<u32>()
        .is_ok_and(|number| matches!(number & 0xff, 5 | 6))
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::is_transient;

    #[test]
    fn only_not_now_codes_are_transient() {
        for code in [
            "57P01", "08006", "53300", "40001", "40P01", "55000", "5", "517", "6",
        ] {
            assert!(is_transient(Some(code)), "{code}");
        }
        for code in ["42601", "23505", "22P02", "1", "19"] {
            assert!(!is_transient(Some(code)), "{code}");
        }
        assert!(!is_transient(None));
    }
}
