//! The `database` section of the settings: where the store lives and how
//! its connection pool behaves.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Connection and pool settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// `postgres://user@host/db` for PostgreSQL, `sqlite:path` for SQLite;
    /// empty means `sqlite:<data_dir>/pharos.db`.
    pub url: String,
    pub max_connections: u32,
    /// On PostgreSQL, the connections of the pool the query service's reads of points run on,
    /// beside `max_connections` (opened as reads need them, in the processes that read points).
    pub max_read_connections: u32,
    pub min_connections: u32,
    #[serde(with = "pharos_clock::duration")]
    pub acquire_timeout: Duration,
    #[serde(with = "pharos_clock::duration")]
    pub idle_timeout: Duration,
    #[serde(with = "pharos_clock::duration")]
    pub max_lifetime: Duration,
    /// Ping a connection before handing it out (safer, one round trip slower).
    pub test_before_acquire: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 16,
            max_read_connections: 8,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(1800),
            test_before_acquire: false,
        }
    }
}
