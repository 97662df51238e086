//! End-to-end topologies of the real `pharos` binary, one file per scenario family:
//!
//! - `alert`: rules evaluated as points commit, webhooks (body, key, signature, retries, dead
//!   letters), amtool, kill -9 during and after delivery, a real Prometheus sending alerts;
//! - `alert_cli`: `pharos alert` over gRPC: list, ack, silences, stored rule groups and
//!   delivery attempts;
//! - `all_in_one`: all services in one process on the embedded store; the CLI, health,
//!   reflection, metrics and graceful shutdown;
//! - `search_cli`: `pharos search` reading every input format;
//! - `targets_and_settings`: refused targets, settings from file, env and flags;
//! - `split`: one service per process on PostgreSQL (config replicas; an ingest process
//!   started before its config service);
//! - `loadgen`: `pharos loadgen` reports what was stored;
//! - `durability`: acknowledged ingest surviving kill -9 on both stores;
//! - `overload`: a throttled database gives retryable overload with bounded memory;
//! - `query`: a real Prometheus remote-writing to Pharos, staleness, and `pharos query`;
//! - `rules_cli`: `pharos rules test|check` and `pharos alert check-config` on the rule and
//!   Alertmanager corpora.
//!
//! `support` holds the child-process harness and the CLI helpers.

// The wall clock is allowed here: it drives real `pharos` processes, whose time cannot be paused (see clippy.toml).
#![allow(clippy::disallowed_methods)]

mod alert;
mod alert_cli;
mod all_in_one;
mod durability;
mod loadgen;
mod overload;
mod query;
mod rules_cli;
mod search_cli;
mod split;
mod support;
mod targets_and_settings;
