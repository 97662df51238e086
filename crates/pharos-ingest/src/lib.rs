//! The ingest service (`pharos.ingest.v1.IngestService`): takes telemetry from clients in any
//! language, validates each item against explicit limits, resolves metric series, batches points
//! from many callers into one transaction and answers only once the batch is committed.
//!
//! Built so far: metric points through `WriteMetrics`. Spans, logs, security events, OTLP, the
//! committed-data feed and retention arrive in later steps of the same issue.

pub mod error;
pub mod grpc;
pub mod live;
mod metrics;
pub mod otlp;
pub mod series;
pub mod service;
pub mod settings;
pub mod validate;
pub mod writer;

pub use error::IngestError;
pub use service::IngestService;
pub use settings::IngestSettings;
