//! The Pharos configuration service (`pharos.config.v1.ConfigService`):
//! typed values with per-environment overrides, compare-and-set, history, a
//! moka read cache, and Watch streams fed by one ordered change log so that a
//! change reaches every watcher on every replica, exactly once and in order.
//!
//! The core is [`ConfigService`]; [`grpc::ConfigGrpc`] exposes it over tonic, [`client`]
//! serves it as `pharos_api::ConfigApi` to the other services of its process (other processes
//! use `pharos_api::RemoteConfig`), and [`module::ConfigModule`] registers it as target
//! `config`. Its own cache TTLs follow live keys ([`own_settings`]).

pub mod cache;
pub mod client;
mod convert;
pub mod error;
pub mod grpc;
mod metrics;
pub mod module;
mod own_settings;
mod replication;
pub mod service;
pub mod settings;
pub mod value;
pub mod watch;

pub use error::ConfigError;
pub use module::ConfigModule;
pub use service::ConfigService;
pub use settings::ConfigSettings;
