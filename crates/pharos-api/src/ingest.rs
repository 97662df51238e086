//! [`IngestApi`]: writing metric points as another service does (the alert service's recording
//! rules and its `ALERTS` series). `pharos-ingest` implements it in process, through the same
//! validation, series limits and group commit as every client; [`RemoteIngest`] over gRPC.

use std::sync::Arc;

use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::client::{ClientInterceptor, ClientSettings, ConnectError, MAX_DECODING_MESSAGE_BYTES};

/// The ingest service's write operations other services use.
#[async_trait::async_trait]
pub trait IngestApi: Send + Sync + 'static {
    /// Writes metric points; the reply means the accepted ones are committed.
    async fn write_metrics(
        &self,
        request: pb::WriteMetricsRequest,
    ) -> Result<pb::WriteMetricsResponse, Status>;
}

/// The ingest service of another process, over gRPC.
#[derive(Clone, Debug)]
pub struct RemoteIngest {
    client: IngestServiceClient<InterceptedService<Channel, ClientInterceptor>>,
}

impl RemoteIngest {
    /// A client over `channel` that presents `settings`' token and actor.
    pub fn new(channel: Channel, settings: &ClientSettings) -> Result<Self, ConnectError> {
        let client = IngestServiceClient::with_interceptor(channel, settings.interceptor()?)
            .max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES);
        Ok(Self { client })
    }

    /// Connects on first use and reconnects by itself.
    pub fn lazy(settings: &ClientSettings) -> Result<Arc<dyn IngestApi>, ConnectError> {
        Ok(Arc::new(Self::new(settings.lazy_channel()?, settings)?))
    }
}

#[async_trait::async_trait]
impl IngestApi for RemoteIngest {
    async fn write_metrics(
        &self,
        request: pb::WriteMetricsRequest,
    ) -> Result<pb::WriteMetricsResponse, Status> {
        Ok(self
            .client
            .clone()
            .write_metrics(request)
            .await?
            .into_inner())
    }
}
