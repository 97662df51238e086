//! `[ingest]` settings: validation limits, the cardinality limit, the write buffer of each signal
//! and retention.

use std::time::Duration;

use serde::{Deserialize, Serialize};

const DAY: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    pub limits: LimitSettings,
    pub metrics: BufferSettings,
    pub spans: RecordBufferSettings,
    pub logs: RecordBufferSettings,
    pub security_events: RecordBufferSettings,
    pub retention: RetentionSettings,
    pub feed: FeedSettings,
    /// What RetryInfo tells a caller refused under overload to wait.
    #[serde(with = "pharos_clock::duration")]
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
            spans: RecordBufferSettings::default(),
            logs: RecordBufferSettings::default(),
            security_events: RecordBufferSettings {
                max_buffered_bytes: 16 << 20,
                max_batch_bytes: 4 << 20,
                ..RecordBufferSettings::default()
            },
            retention: RetentionSettings::default(),
            feed: FeedSettings::default(),
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
    #[serde(with = "pharos_clock::duration")]
    pub max_age: Duration,
    /// How far ahead of the server's clock a point may be.
    #[serde(with = "pharos_clock::duration")]
    pub max_future: Duration,
    /// Distinct label sets (series) per metric name; new series past it are rejected.
    pub max_series_per_metric: u64,
    /// Items in one request.
    pub max_items_per_request: usize,
    /// Attributes on one span, span event, link, log record or security event.
    pub max_attributes: usize,
    /// Bytes in an attribute key.
    pub max_attribute_key_bytes: usize,
    /// Bytes in an attribute value (its JSON text for structured values).
    pub max_attribute_value_bytes: usize,
    /// Bytes in a log record's body.
    pub max_body_bytes: usize,
    /// Events on one span.
    pub max_span_events: usize,
    /// Links on one span.
    pub max_span_links: usize,
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
            max_attributes: 128,
            max_attribute_key_bytes: 256,
            max_attribute_value_bytes: 16 << 10,
            max_body_bytes: 64 << 10,
            max_span_events: 128,
            max_span_links: 128,
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
    #[serde(with = "pharos_clock::duration")]
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

/// How spans, log records or security events wait to be written; the bound is in bytes because
/// their size varies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordBufferSettings {
    /// Bytes of items accepted but not yet committed: the memory bound. A request that does not
    /// fit is refused with RESOURCE_EXHAUSTED and RetryInfo.
    pub max_buffered_bytes: usize,
    /// Bytes written in one transaction at most.
    pub max_batch_bytes: usize,
    /// How long a writer waits for more items before writing a batch that is not full.
    #[serde(with = "pharos_clock::duration")]
    pub linger: Duration,
    /// Batches written at once, each on its own connection.
    pub writers: usize,
}

impl Default for RecordBufferSettings {
    fn default() -> Self {
        Self {
            max_buffered_bytes: 64 << 20,
            max_batch_bytes: 16 << 20,
            linger: Duration::ZERO,
            writers: 1,
        }
    }
}

/// How long stored data is kept, and how often expiry runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Raw metric points older than this are removed (on PostgreSQL by whole day partitions).
    #[serde(with = "pharos_clock::duration")]
    pub metrics_raw: Duration,
    /// Hourly rollups (count, sum, min, max per series and hour).
    #[serde(with = "pharos_clock::duration")]
    pub metrics_hourly: Duration,
    /// Daily rollups.
    #[serde(with = "pharos_clock::duration")]
    pub metrics_daily: Duration,
    /// Spans, by start time.
    #[serde(with = "pharos_clock::duration")]
    pub traces: Duration,
    /// Spans of traces holding an error span.
    #[serde(with = "pharos_clock::duration")]
    pub traces_with_errors: Duration,
    /// Log records.
    #[serde(with = "pharos_clock::duration")]
    pub logs: Duration,
    /// Security events of severity high (critical ones are kept forever).
    #[serde(with = "pharos_clock::duration")]
    pub security_high: Duration,
    /// Security events below high.
    #[serde(with = "pharos_clock::duration")]
    pub security_other: Duration,
    /// How often pending hours are rolled up.
    #[serde(with = "pharos_clock::duration")]
    pub rollup_interval: Duration,
    /// How often ended 10-minute windows of points are compacted into chunks (range reads
    /// take compacted windows from chunks, the rest from points).
    #[serde(with = "pharos_clock::duration")]
    pub compaction_interval: Duration,
    /// How often expiry runs.
    #[serde(with = "pharos_clock::duration")]
    pub interval: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            metrics_raw: DAY * 7,
            metrics_hourly: DAY * 30,
            metrics_daily: DAY * 365,
            traces: DAY * 3,
            traces_with_errors: DAY * 90,
            logs: DAY * 7,
            security_high: DAY * 365,
            security_other: DAY * 90,
            rollup_interval: Duration::from_secs(300),
            compaction_interval: Duration::from_secs(30),
            interval: Duration::from_secs(3600),
        }
    }
}

/// The committed-data feed (`Subscribe`, and the alert service in the same process).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FeedSettings {
    /// Publish committed metric points (24 bytes per point are kept for `retention`).
    pub metrics: bool,
    /// Publish committed security events.
    pub security_events: bool,
    /// How long committed batches stay available for catch-up.
    #[serde(with = "pharos_clock::duration")]
    pub retention: Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            metrics: true,
            security_events: true,
            retention: Duration::from_secs(15 * 60),
        }
    }
}
