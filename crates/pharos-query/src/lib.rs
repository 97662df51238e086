//! The query service: PromQL (the `pharos-promql` engine) over the metrics the ingest service
//! stores, answered through the Prometheus HTTP API so that Grafana and any Prometheus client
//! work unchanged.
//!
//! - `settings.rs`: the `[query]` section (limits, timeout, series cache, head);
//! - `source.rs`: [`StoreSource`], the engine's source of series on the store;
//! - `head.rs`: [`Head`], the recent points of every series in memory, kept current by
//!   ingest's committed-data feed;
//! - `service.rs`: [`QueryService`], queries under a timeout and series metadata;
//! - `http.rs` and `params.rs`: the Prometheus HTTP API;
//! - `grpc.rs` and `convert.rs`: `pharos.query.v1.QueryService`; `client.rs`: the same as
//!   `QueryApi` for the services of this process;
//! - `module.rs`: [`QueryModule`], the registration of target `query`.

mod client;
mod convert;
mod error;
mod grpc;
mod head;
mod http;
mod module;
mod params;
mod service;
mod settings;
mod source;

pub use client::api;
pub use error::{QueryError, Result};
pub use grpc::{QueryGrpc, server};
pub use head::{Head, HeadFigures};
pub use module::QueryModule;
pub use params::{parse_duration, parse_time};
pub use service::{QueryAnswer, QueryService, TimeRange};
pub use settings::{HeadSettings, QuerySettings, SeriesCacheSettings};
pub use source::{StoreSource, StoredSeries};
