//! [`ConfigClient`]: how other code talks to the configuration service,
//! either in-process (all services in one process: no loopback hop) or over
//! a tonic channel with the bearer token and trace context attached.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use pharos_proto::config::v1 as pb;
use pharos_proto::config::v1::config_service_client::ConfigServiceClient;
use pharos_runtime::trace::TraceContextInterceptor;
use tonic::Status;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::service::ConfigService;

/// A stream of Watch responses, whichever way the client reaches the service.
pub type WatchResponses = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

/// Adds the bearer token (if any), the actor name and the trace context.
#[derive(Clone, Debug, Default)]
pub struct ClientInterceptor {
    authorization: Option<AsciiMetadataValue>,
    actor: Option<AsciiMetadataValue>,
}

impl Interceptor for ClientInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        if let Some(value) = &self.actor {
            request
                .metadata_mut()
                .insert(crate::grpc::ACTOR_METADATA, value.clone());
        }
        TraceContextInterceptor.call(request)
    }
}

/// Why a remote client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid endpoint {endpoint:?}: {source}")]
    Endpoint {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("cannot connect to {endpoint}: {source}; is `pharos serve` running there?")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("the token or actor name is not valid metadata (printable ASCII only)")]
    Metadata,
}

/// A handle to the configuration service.
#[derive(Clone)]
pub enum ConfigClient {
    Local(Arc<ConfigService>),
    // Boxed: a tonic client is a few hundred bytes, the local handle one pointer.
    Remote(Box<ConfigServiceClient<InterceptedService<Channel, ClientInterceptor>>>),
}

impl ConfigClient {
    pub fn local(service: Arc<ConfigService>) -> Self {
        ConfigClient::Local(service)
    }

    /// Connects to a remote service at `endpoint` (like `http://127.0.0.1:50051`).
    pub async fn connect(
        endpoint: &str,
        token: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Self, ConnectError> {
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|source| ConnectError::Endpoint {
                endpoint: endpoint.to_string(),
                source,
            })?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|source| ConnectError::Connect {
                endpoint: endpoint.to_string(),
                source,
            })?;
        Self::from_channel(channel, token, actor)
    }

    /// A remote client over an existing channel.
    pub fn from_channel(
        channel: Channel,
        token: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Self, ConnectError> {
        let authorization = token
            .map(|token| MetadataValue::try_from(format!("Bearer {token}")))
            .transpose()
            .map_err(|_| ConnectError::Metadata)?;
        let actor = actor
            .map(MetadataValue::try_from)
            .transpose()
            .map_err(|_| ConnectError::Metadata)?;
        let client = ConfigServiceClient::with_interceptor(
            channel,
            ClientInterceptor {
                authorization,
                actor,
            },
        )
        .max_decoding_message_size(16 * 1024 * 1024);
        Ok(ConfigClient::Remote(Box::new(client)))
    }

    pub async fn set(&self, request: pb::SetRequest) -> Result<pb::ConfigEntry, Status> {
        match self {
            ConfigClient::Local(service) => Ok(service.set(request, "local".to_string()).await?),
            ConfigClient::Remote(client) => client
                .clone()
                .set(request)
                .await?
                .into_inner()
                .entry
                .ok_or_else(|| Status::internal("the server sent no entry")),
        }
    }

    pub async fn get(&self, request: pb::GetRequest) -> Result<pb::ConfigEntry, Status> {
        match self {
            ConfigClient::Local(service) => Ok(service.get(request).await?),
            ConfigClient::Remote(client) => client
                .clone()
                .get(request)
                .await?
                .into_inner()
                .entry
                .ok_or_else(|| Status::internal("the server sent no entry")),
        }
    }

    pub async fn list(&self, request: pb::ListRequest) -> Result<pb::ListResponse, Status> {
        match self {
            ConfigClient::Local(service) => Ok(service.list(request).await?),
            ConfigClient::Remote(client) => Ok(client.clone().list(request).await?.into_inner()),
        }
    }

    pub async fn delete(&self, request: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status> {
        match self {
            ConfigClient::Local(service) => {
                Ok(service.delete(request, "local".to_string()).await?)
            }
            ConfigClient::Remote(client) => Ok(client.clone().delete(request).await?.into_inner()),
        }
    }

    pub async fn history(
        &self,
        request: pb::HistoryRequest,
    ) -> Result<pb::HistoryResponse, Status> {
        match self {
            ConfigClient::Local(service) => Ok(service.history(request).await?),
            ConfigClient::Remote(client) => Ok(client.clone().history(request).await?.into_inner()),
        }
    }

    pub async fn watch(&self, request: pb::WatchRequest) -> Result<WatchResponses, Status> {
        match self {
            ConfigClient::Local(service) => {
                let stream = service.watch(request).await?;
                Ok(Box::pin(stream.map(|item| item.map_err(Status::from))))
            }
            ConfigClient::Remote(client) => {
                Ok(Box::pin(client.clone().watch(request).await?.into_inner()))
            }
        }
    }

    pub async fn cache_stats(&self) -> Result<pb::CacheStatsResponse, Status> {
        match self {
            ConfigClient::Local(service) => Ok(service.cache_stats()),
            ConfigClient::Remote(client) => Ok(client
                .clone()
                .cache_stats(pb::CacheStatsRequest {})
                .await?
                .into_inner()),
        }
    }

    pub async fn warm(&self, request: pb::WarmRequest) -> Result<pb::WarmResponse, Status> {
        match self {
            ConfigClient::Local(service) => Ok(service.warm(request).await?),
            ConfigClient::Remote(client) => Ok(client.clone().warm(request).await?.into_inner()),
        }
    }
}
