//! The signals room: the telemetry the ingest service writes. Metric series, points and rollups;
//! the append-only tables of spans, logs and security events; and the committed-data feed that
//! announces batches of metric points and security events to subscribers.

pub mod feed;
pub mod logs;
pub mod metrics;
pub mod security_events;
pub mod spans;
