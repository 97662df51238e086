//! The Pharos store: one [`Store`] over PostgreSQL (production, shared by
//! replicas) or an embedded SQLite file (the single-process default), the
//! migrations of both embedded in the binary, and one repository per domain
//! that runs the same static SQL on either backend.
//!
//! Three rooms: [`backend`] (the store, pools, notifications, bulk loading,
//! partitions, settings), [`control`] (configuration, vector indexes and
//! how replicas follow them) and [`signals`] (metrics, spans, logs, security
//! events and the committed-data feed).

pub mod backend;
pub mod control;
mod error;
pub mod signals;

pub use backend::{
    Backend, CopyEncoder, Expired, Notification, Notifications, Store, StoreSettings,
};
pub use error::{Result, StoreError};

/// The current time in microseconds since the Unix epoch, the unit of every
/// timestamp column.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(feature = "testing")]
pub mod testing;
