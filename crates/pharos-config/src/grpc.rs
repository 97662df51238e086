//! The tonic adapter of the configuration service: each handler reads the
//! caller's identity, calls [`ConfigService`] and maps its errors to
//! `tonic::Status`. No logic lives here.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use pharos_proto::config::v1 as pb;
use pharos_proto::config::v1::config_service_server::{self, ConfigServiceServer};
use tonic::{Request, Response, Status};

use crate::service::ConfigService;

pub use pharos_api::client::ACTOR_METADATA;

/// The tonic service over a [`ConfigService`].
#[derive(Clone)]
pub struct ConfigGrpc {
    service: Arc<ConfigService>,
}

/// The mountable server, with the process's message size limit.
pub fn server(
    service: Arc<ConfigService>,
    max_message_bytes: usize,
) -> ConfigServiceServer<ConfigGrpc> {
    pharos_runtime::tonic_server!(
        ConfigServiceServer::new(ConfigGrpc { service }),
        max_message_bytes
    )
}

use pharos_api::client::request_actor as actor;

type WatchResponseStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl config_service_server::ConfigService for ConfigGrpc {
    async fn set(
        &self,
        request: Request<pb::SetRequest>,
    ) -> Result<Response<pb::SetResponse>, Status> {
        let actor = actor(&request);
        let entry = self.service.set(request.into_inner(), actor).await?;
        Ok(Response::new(pb::SetResponse { entry: Some(entry) }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let entry = self.service.get(request.into_inner()).await?;
        Ok(Response::new(pb::GetResponse { entry: Some(entry) }))
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        Ok(Response::new(
            self.service.list(request.into_inner()).await?,
        ))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let actor = actor(&request);
        Ok(Response::new(
            self.service.delete(request.into_inner(), actor).await?,
        ))
    }

    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        Ok(Response::new(
            self.service.history(request.into_inner()).await?,
        ))
    }

    type WatchStream = WatchResponseStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let stream = self.service.watch(request.into_inner()).await?;
        Ok(Response::new(Box::pin(
            stream.map(|item| item.map_err(Status::from)),
        )))
    }

    async fn cache_stats(
        &self,
        _request: Request<pb::CacheStatsRequest>,
    ) -> Result<Response<pb::CacheStatsResponse>, Status> {
        Ok(Response::new(self.service.cache_stats()))
    }

    async fn warm(
        &self,
        request: Request<pb::WarmRequest>,
    ) -> Result<Response<pb::WarmResponse>, Status> {
        Ok(Response::new(
            self.service.warm(request.into_inner()).await?,
        ))
    }
}
