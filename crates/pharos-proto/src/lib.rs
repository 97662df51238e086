//! The gRPC contracts of every Pharos service, generated at build time from
//! `proto/` (see `build.rs`), plus the encoded descriptor set that server
//! reflection serves so that tools like grpcurl can discover them.

pub mod codec;

/// `pharos.alert.v1`: the alert service.
pub mod alert {
    pub mod v1 {
        tonic::include_proto!("pharos.alert.v1");
    }
}

/// `pharos.config.v1`: the configuration service.
pub mod config {
    pub mod v1 {
        tonic::include_proto!("pharos.config.v1");
    }
}

/// `pharos.ingest.v1`: the ingest service.
pub mod ingest {
    pub mod v1 {
        tonic::include_proto!("pharos.ingest.v1");
    }
}

/// `pharos.query.v1`: the query service.
pub mod query {
    pub mod v1 {
        tonic::include_proto!("pharos.query.v1");
    }
}

/// `pharos.search.v1`: the vector search service.
pub mod search {
    pub mod v1 {
        tonic::include_proto!("pharos.search.v1");
    }
}

/// `prometheus`: the remote write 1.0 request (vendored, see `proto/third_party/prometheus`).
pub mod prometheus {
    tonic::include_proto!("prometheus");
}

/// The encoded `FileDescriptorSet` of every Pharos proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("pharos_descriptor");
