//! The Pharos configuration service (`pharos.config.v1.ConfigService`):
//! typed values with per-environment overrides, compare-and-set, history, a
//! moka read cache, and Watch streams fed by one ordered change log so that a
//! change reaches every watcher on every replica, exactly once and in order.
//!
//! The core is [`ConfigService`]; [`grpc::ConfigGrpc`] exposes it over tonic,
//! [`ConfigClient`] calls it in-process or over a channel, and
//! [`live::watch_settings`] lets any service apply `pharos.<service>.*` keys
//! without a restart.

pub mod cache;
pub mod client;
mod convert;
pub mod error;
pub mod grpc;
pub mod live;
mod metrics;
mod replication;
pub mod service;
pub mod settings;
pub mod value;
pub mod watch;

pub use client::ConfigClient;
pub use error::ConfigError;
pub use service::ConfigService;
pub use settings::ConfigSettings;
