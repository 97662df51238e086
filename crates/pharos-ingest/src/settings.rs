//! `[ingest]` settings: validation limits, the cardinality limit and the write buffer.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    pub limits: LimitSettings,
    pub metrics: BufferSettings,
    pub retention: RetentionSettings,
    /// What RetryInfo tells a caller refused under overload to wait.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// The config service to follow `pharos.ingest.*` live settings from (`http://host:port`)
    /// when it does not run in this process. Empty: live settings only with an in-process
    /// config service.
    pub config_endpoint: String,
    /// The bearer token for `config_endpoint`, when that service requires one.
    pub config_token: String,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            limits: LimitSettings::default(),
            metrics: BufferSettings::default(),
            retention: RetentionSettings::default(),
            retry_after: Duration::from_secs(1),
            config_endpoint: String::new(),
            config_token: String::new(),
        }
    }
}

/// What a single item may be.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Bytes in a metric or label name.
    pub max_name_bytes: usize,
    /// Labels on one point.
    pub max_labels: usize,
    /// Bytes in a label value.
    pub max_label_value_bytes: usize,
    /// How old a point may be when it arrives.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// How far ahead of the server's clock a point may be.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// Distinct label sets (series) per metric name; new series past it are rejected.
    pub max_series_per_metric: u64,
    /// Items in one request.
    pub max_items_per_request: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_name_bytes: 200,
            max_labels: 32,
            max_label_value_bytes: 1024,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_future: Duration::from_secs(600),
            max_series_per_metric: 100_000,
            max_items_per_request: 100_000,
        }
    }
}

/// How points wait to be written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BufferSettings {
    /// Points accepted but not yet committed, across all callers: the memory bound. A request
    /// that does not fit is refused with RESOURCE_EXHAUSTED and RetryInfo.
    pub max_buffered_points: usize,
    /// Points written in one transaction at most.
    pub max_batch_points: usize,
    /// How long a writer waits for more points before writing a batch that is not full. Zero
    /// writes as soon as the previous batch is done (group commit: batches grow with load).
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Batches written at once, each on its own connection.
    pub writers: usize,
    /// Series ids kept in memory.
    pub series_cache_capacity: u64,
}

impl Default for BufferSettings {
    fn default() -> Self {
        Self {
            max_buffered_points: 500_000,
            max_batch_points: 50_000,
            linger: Duration::ZERO,
            writers: 2,
            series_cache_capacity: 1_000_000,
        }
    }
}

/// How long stored data is kept, and how often expiry runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Raw metric points older than this are removed (on PostgreSQL by whole day partitions).
    #[serde(with = "humantime_serde")]
    pub metrics_raw: Duration,
    /// How often expiry runs.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            metrics_raw: Duration::from_secs(7 * 24 * 3600),
            interval: Duration::from_secs(3600),
        }
    }
}
