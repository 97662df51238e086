//! The Pharos store: one [`Store`] over PostgreSQL (production, shared by
//! replicas) or an embedded SQLite file (the single-process default), the
//! migrations of both embedded in the binary, and one repository per domain
//! that runs the same static SQL on either backend.

mod backend;
mod bulk;
pub mod config;
mod error;
pub mod feed;
pub mod follow;
pub mod logs;
pub mod metrics;
pub mod partitions;
pub mod security;
mod settings;
pub mod spans;
pub mod vectors;

pub use backend::{Backend, Notification, Notifications, Store};
pub use bulk::CopyEncoder;
pub use error::{Result, StoreError};
pub use settings::StoreSettings;

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
