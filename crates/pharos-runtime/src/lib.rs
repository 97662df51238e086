//! What every Pharos service shares: the gRPC server with its tower layers
//! (auth, limits, metrics, trace context), the HTTP side (`/metrics`,
//! `/health`, `/ready`), telemetry set-up, the rich gRPC error model and
//! graceful shutdown. Service crates plug their tonic services into
//! [`server::GrpcServer`] and their health checks into [`health::HealthRegistry`].

pub mod auth;
pub mod coalesce;
pub mod error;
pub mod health;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod observe;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod trace;

pub use settings::{AuthSettings, LimitSettings, ServerSettings, TelemetrySettings, TlsSettings};
pub use shutdown::Shutdown;

/// For the macros of this crate, so that callers need not name tonic themselves.
#[doc(hidden)]
pub use tonic as __tonic;
