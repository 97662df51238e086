//! [`ConfigApi`]: what other code may ask of the configuration service, whichever way it is
//! reached. `pharos-config` implements it on the service itself (one process: no loopback
//! hop); [`RemoteConfig`] implements it over gRPC for split processes and the CLI.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use pharos_proto::config::v1 as pb;
use pharos_proto::config::v1::config_service_client::ConfigServiceClient;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::client::{ClientInterceptor, ClientSettings, ConnectError, MAX_DECODING_MESSAGE_BYTES};

/// A stream of Watch responses, whichever way the client reaches the service.
pub type WatchResponses = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

/// The configuration service's operations, in its protobuf types.
#[async_trait::async_trait]
pub trait ConfigApi: Send + Sync + 'static {
    /// Writes a value; `actor` is recorded as its author (a remote caller's actor travels in
    /// its metadata, or its token's name wins on the server).
    async fn set(&self, request: pb::SetRequest) -> Result<pb::ConfigEntry, Status>;
    async fn get(&self, request: pb::GetRequest) -> Result<pb::ConfigEntry, Status>;
    async fn list(&self, request: pb::ListRequest) -> Result<pb::ListResponse, Status>;
    async fn delete(&self, request: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status>;
    async fn history(&self, request: pb::HistoryRequest) -> Result<pb::HistoryResponse, Status>;
    /// The current values under the request's keys and prefixes, then every change.
    async fn watch(&self, request: pb::WatchRequest) -> Result<WatchResponses, Status>;
    async fn cache_stats(&self) -> Result<pb::CacheStatsResponse, Status>;
    async fn warm(&self, request: pb::WarmRequest) -> Result<pb::WarmResponse, Status>;
}

/// The configuration service of another process, over gRPC.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    client: ConfigServiceClient<InterceptedService<Channel, ClientInterceptor>>,
}

impl RemoteConfig {
    /// A client over `channel` that presents `settings`' token and actor.
    pub fn new(channel: Channel, settings: &ClientSettings) -> Result<Self, ConnectError> {
        let client = ConfigServiceClient::with_interceptor(channel, settings.interceptor()?)
            .max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES);
        Ok(Self { client })
    }

    /// Connects now (the CLI: a server that is not there is an error to show).
    pub async fn connect(settings: &ClientSettings) -> Result<Self, ConnectError> {
        Self::new(settings.connect().await?, settings)
    }

    /// Connects on first use and reconnects by itself (a service following live settings).
    pub fn lazy(settings: &ClientSettings) -> Result<Arc<dyn ConfigApi>, ConnectError> {
        Ok(Arc::new(Self::new(settings.lazy_channel()?, settings)?))
    }

    fn client(&self) -> ConfigServiceClient<InterceptedService<Channel, ClientInterceptor>> {
        self.client.clone()
    }
}

fn entry(entry: Option<pb::ConfigEntry>) -> Result<pb::ConfigEntry, Status> {
    entry.ok_or_else(|| Status::internal("the server sent no entry"))
}

#[async_trait::async_trait]
impl ConfigApi for RemoteConfig {
    async fn set(&self, request: pb::SetRequest) -> Result<pb::ConfigEntry, Status> {
        entry(self.client().set(request).await?.into_inner().entry)
    }

    async fn get(&self, request: pb::GetRequest) -> Result<pb::ConfigEntry, Status> {
        entry(self.client().get(request).await?.into_inner().entry)
    }

    async fn list(&self, request: pb::ListRequest) -> Result<pb::ListResponse, Status> {
        Ok(self.client().list(request).await?.into_inner())
    }

    async fn delete(&self, request: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status> {
        Ok(self.client().delete(request).await?.into_inner())
    }

    async fn history(&self, request: pb::HistoryRequest) -> Result<pb::HistoryResponse, Status> {
        Ok(self.client().history(request).await?.into_inner())
    }

    async fn watch(&self, request: pb::WatchRequest) -> Result<WatchResponses, Status> {
        Ok(Box::pin(self.client().watch(request).await?.into_inner()))
    }

    async fn cache_stats(&self) -> Result<pb::CacheStatsResponse, Status> {
        Ok(self
            .client()
            .cache_stats(pb::CacheStatsRequest {})
            .await?
            .into_inner())
    }

    async fn warm(&self, request: pb::WarmRequest) -> Result<pb::WarmResponse, Status> {
        Ok(self.client().warm(request).await?.into_inner())
    }
}
