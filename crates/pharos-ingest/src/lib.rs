//! The ingest service (`pharos.ingest.v1.IngestService`): takes telemetry from clients in any
//! language, validates each item against explicit limits, resolves metric series, batches points
//! from many callers into one transaction and answers only once the batch is committed.
//!
//! Metric points, spans, log records and security events come in through our own API (unary
//! and the client-streaming `Write`) and OTLP/gRPC; committed metric points and security events
//! go out on the committed-data feed (`Subscribe`); retention and metric rollups run inside.
//! Prometheus remote write 1.0 comes in on the HTTP listener (`remote_write`, `/api/v1/write`).

pub mod client;
pub mod convert;
pub mod error;
pub mod feed;
pub mod grpc;
pub mod live_settings;
mod metrics;
pub mod module;
pub mod otlp;
pub mod records;
pub mod remote_write;
pub mod series;
pub mod service;
pub mod settings;
pub mod validate;
pub mod writer;

pub use error::IngestError;
pub use module::IngestModule;
pub use service::{IngestService, Outcome};
pub use settings::IngestSettings;
