//! The tonic adapter of the ingest service: call [`IngestService`], map its errors to statuses.

use std::sync::Arc;

use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_server::{self, IngestServiceServer};
use tonic::{Request, Response, Status};

use crate::service::IngestService;

#[derive(Clone)]
pub struct IngestGrpc {
    service: Arc<IngestService>,
}

/// The mountable server, with the process's message size limit; gzip accepted both ways.
pub fn server(
    service: Arc<IngestService>,
    max_message_bytes: usize,
) -> IngestServiceServer<IngestGrpc> {
    IngestServiceServer::new(IngestGrpc { service })
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
}

#[tonic::async_trait]
impl ingest_service_server::IngestService for IngestGrpc {
    async fn write_metrics(
        &self,
        request: Request<pb::WriteMetricsRequest>,
    ) -> Result<Response<pb::WriteMetricsResponse>, Status> {
        Ok(Response::new(
            self.service.write_metrics(request.into_inner()).await?,
        ))
    }
}
