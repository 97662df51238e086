//! The seams between Pharos services. A service never depends on another service's crate: it
//! asks for an interface defined here, and gets the other service itself when both run in one
//! process, or a tonic client when they run apart.
//!
//! - [`config::ConfigApi`]: the configuration service (live settings, the CLI);
//!   [`config::RemoteConfig`] reaches it over gRPC.
//! - [`feed::FeedApi`]: ingest's committed-data feed; [`feed::RemoteFeed`] over gRPC.
//! - [`ingest::IngestApi`]: writing metric points through ingest; [`ingest::RemoteIngest`].
//! - [`query::QueryApi`]: PromQL over the stored metrics; [`query::RemoteQuery`].
//! - [`search::SearchApi`]: the search service (the CLI); [`search::RemoteSearch`] over gRPC.
//! - [`client`]: how every remote client connects ([`client::ClientSettings`]: endpoint, token,
//!   TLS, actor), lazily and without depending on start order.
//! - [`live_settings`]: follows `pharos.<service>.*` keys through any `ConfigApi` and reports
//!   in `/health` whether they are followed.
//! - [`module`]: the targets of `pharos serve --target`, and the registry that starts each
//!   enabled service with what it needs and mounts what it serves.

pub mod client;
pub mod config;
pub mod feed;
pub mod ingest;
pub mod live_settings;
pub mod module;
pub mod query;
pub mod search;

pub use client::{ClientSettings, ConnectError};
pub use config::{ConfigApi, RemoteConfig};
pub use feed::{FeedApi, RemoteFeed};
pub use ingest::{IngestApi, RemoteIngest};
pub use module::{Module, ModuleContext, Need, Registry, Target};
pub use query::{QueryApi, RemoteQuery};
pub use search::{RemoteSearch, SearchApi};
