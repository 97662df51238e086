//! [`QueryApi`]: PromQL over the stored metrics, as another service (the alert service's rule
//! evaluation) asks for it. `pharos-query` implements it on its service in process;
//! [`RemoteQuery`] over gRPC when query runs in another process.

use std::sync::Arc;

use pharos_proto::query::v1 as pb;
use pharos_proto::query::v1::query_service_client::QueryServiceClient;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::client::{ClientInterceptor, ClientSettings, ConnectError, MAX_DECODING_MESSAGE_BYTES};

/// The query service's operations other services use, in its protobuf types.
#[async_trait::async_trait]
pub trait QueryApi: Send + Sync + 'static {
    /// Evaluates an expression at one time.
    async fn instant(
        &self,
        request: pb::QueryInstantRequest,
    ) -> Result<pb::QueryInstantResponse, Status>;
}

/// The query service of another process, over gRPC.
#[derive(Clone, Debug)]
pub struct RemoteQuery {
    client: QueryServiceClient<InterceptedService<Channel, ClientInterceptor>>,
}

impl RemoteQuery {
    /// A client over `channel` that presents `settings`' token and actor.
    pub fn new(channel: Channel, settings: &ClientSettings) -> Result<Self, ConnectError> {
        let client = QueryServiceClient::with_interceptor(channel, settings.interceptor()?)
            .max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES);
        Ok(Self { client })
    }

    /// Connects on first use and reconnects by itself.
    pub fn lazy(settings: &ClientSettings) -> Result<Arc<dyn QueryApi>, ConnectError> {
        Ok(Arc::new(Self::new(settings.lazy_channel()?, settings)?))
    }
}

#[async_trait::async_trait]
impl QueryApi for RemoteQuery {
    async fn instant(
        &self,
        request: pb::QueryInstantRequest,
    ) -> Result<pb::QueryInstantResponse, Status> {
        Ok(self
            .client
            .clone()
            .query_instant(request)
            .await?
            .into_inner())
    }
}
