//! The configuration service as [`ConfigApi`], for the other services of its process (live
//! settings) with no loopback hop. Other processes reach it through
//! `pharos_api::RemoteConfig`, over the same operations.

use std::sync::Arc;

use futures::StreamExt as _;
use pharos_api::config::{ConfigApi, WatchResponses};
use pharos_proto::config::v1 as pb;
use tonic::Status;

use crate::service::ConfigService;

/// The author recorded for writes made in process (no caller, no token).
pub const LOCAL_ACTOR: &str = "local";

/// The service as a [`ConfigApi`] handle.
pub fn api(service: Arc<ConfigService>) -> Arc<dyn ConfigApi> {
    service
}

#[async_trait::async_trait]
impl ConfigApi for ConfigService {
    async fn set(&self, request: pb::SetRequest) -> Result<pb::ConfigEntry, Status> {
        Ok(ConfigService::set(self, request, LOCAL_ACTOR.to_string()).await?)
    }

    async fn get(&self, request: pb::GetRequest) -> Result<pb::ConfigEntry, Status> {
        Ok(ConfigService::get(self, request).await?)
    }

    async fn list(&self, request: pb::ListRequest) -> Result<pb::ListResponse, Status> {
        Ok(ConfigService::list(self, request).await?)
    }

    async fn delete(&self, request: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status> {
        Ok(ConfigService::delete(self, request, LOCAL_ACTOR.to_string()).await?)
    }

    async fn history(&self, request: pb::HistoryRequest) -> Result<pb::HistoryResponse, Status> {
        Ok(ConfigService::history(self, request).await?)
    }

    async fn watch(&self, request: pb::WatchRequest) -> Result<WatchResponses, Status> {
        let stream = ConfigService::watch(self, request).await?;
        Ok(Box::pin(stream.map(|item| item.map_err(Status::from))))
    }

    async fn cache_stats(&self) -> Result<pb::CacheStatsResponse, Status> {
        Ok(ConfigService::cache_stats(self))
    }

    async fn warm(&self, request: pb::WarmRequest) -> Result<pb::WarmResponse, Status> {
        Ok(ConfigService::warm(self, request).await?)
    }
}
