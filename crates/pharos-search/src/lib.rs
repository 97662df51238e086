//! The search service: named vector indexes (exact flat, IVF-PQ and HNSW, from
//! `pharos-vector`) served over gRPC. Vectors and payloads are committed to the store, the
//! source of truth; every replica loads them at start (from its last snapshot in the data
//! directory and the changes since, [`snapshot`]) and applies each later change in revision
//! order ([`catalog`]), so all replicas on one PostgreSQL serve the same data. Searches read
//! an immutable copy and never wait for writes ([`live_index`]).

pub mod catalog;
pub mod client;
pub mod convert;
pub mod definition;
pub mod describe;
pub mod error;
pub mod grpc;
pub mod live_index;
mod metrics;
pub mod module;
pub mod service;
pub mod settings;
pub mod snapshot;

pub use error::SearchError;
pub use module::SearchModule;
pub use service::SearchService;
pub use settings::SearchSettings;
