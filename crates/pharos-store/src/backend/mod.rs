//! The backend room: what every repository stands on. [`Store`] (the pool over PostgreSQL or
//! SQLite, migrations, health probe, clock, the [`Repository`] trait), PostgreSQL notifications,
//! the binary `COPY` encoder and batch writer, time partitions, the machinery of the append-only
//! tables (spans, logs, security events), and the `database` section of the settings.

pub(crate) mod append_only;
pub(crate) mod bulk;
pub(crate) mod notifications;
pub(crate) mod partitions;
pub(crate) mod settings;
pub(crate) mod store;

pub use bulk::CopyEncoder;
pub use notifications::{Notification, Notifications};
pub use partitions::Expired;
pub use settings::StoreSettings;
pub use store::{Backend, METRIC_READS_APPLICATION, Repository, Store, connect_metric_reads};
pub(crate) use store::{ChangeLogCompaction, Pool, repository, with_pool};
