//! The store's conformance suite: every test runs against SQLite and against a fresh PostgreSQL
//! database, through the same repository calls. One file per room of the store: the control plane
//! (`config`, `vectors`, `alerts`) and the signals (`metrics`, `append_only` for spans, logs and
//! security events, `feed`).

mod alerts;
mod append_only;
mod config;
mod feed;
mod metrics;
mod vectors;

/// Microseconds in an hour and a day, the units of metric buckets.
pub const HOUR_US: i64 = 3_600_000_000;
pub const DAY_US: i64 = 24 * HOUR_US;
/// 2026-11-25T00:00:00Z in microseconds: a fixed day the tests write to.
pub const DAY_START_US: i64 = 20_782 * DAY_US;
