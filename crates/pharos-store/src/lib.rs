//! The Pharos store: one [`Store`] over PostgreSQL (production, shared by
//! replicas) or an embedded SQLite file (the single-process default), the
//! migrations of both embedded in the binary, and one repository per domain
//! that runs the same static SQL on either backend.
//!
//! Three rooms: [`backend`] (the store, pools, notifications, bulk loading,
//! partitions, settings), [`control`] (configuration, vector indexes and
//! how replicas follow them, the alert service's state) and [`signals`]
//! (metrics, spans, logs, security events and the committed-data feed).

pub mod backend;
pub mod control;
mod error;
pub mod signals;

pub use backend::{
    Backend, CopyEncoder, Expired, METRIC_READS_APPLICATION, Notification, Notifications,
    Repository, Store, StoreSettings, connect_metric_reads,
};
pub use error::{Result, StoreError};

#[cfg(feature = "testing")]
pub mod testing;
