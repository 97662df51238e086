//! The search service as [`SearchApi`]: what the gRPC adapter serves, and what another service
//! of the same process would call with no loopback hop. Other processes (the `pharos search`
//! CLI) use `pharos_api::RemoteSearch`, over the same operations.

use std::sync::Arc;

use pharos_api::search::{SearchApi, TrainProgress};
use pharos_proto::search::v1 as pb;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::service::SearchService;

/// The service as a [`SearchApi`] handle.
pub fn api(service: Arc<SearchService>) -> Arc<dyn SearchApi> {
    service
}

#[async_trait::async_trait]
impl SearchApi for SearchService {
    async fn create_index(
        &self,
        request: pb::CreateIndexRequest,
    ) -> Result<pb::CreateIndexResponse, Status> {
        let index = SearchService::create_index(self, request).await?;
        Ok(pb::CreateIndexResponse { index: Some(index) })
    }

    async fn drop_index(
        &self,
        request: pb::DropIndexRequest,
    ) -> Result<pb::DropIndexResponse, Status> {
        SearchService::drop_index(self, &request.name).await?;
        Ok(pb::DropIndexResponse {})
    }

    async fn list_indexes(&self) -> Result<pb::ListIndexesResponse, Status> {
        Ok(pb::ListIndexesResponse {
            indexes: SearchService::list_indexes(self),
        })
    }

    async fn upsert(&self, request: pb::UpsertRequest) -> Result<pb::UpsertResponse, Status> {
        let (upserted, revision) = SearchService::upsert(self, request).await?;
        Ok(pb::UpsertResponse { upserted, revision })
    }

    async fn delete(&self, request: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status> {
        let (deleted, revision) = SearchService::delete(self, request).await?;
        Ok(pb::DeleteResponse { deleted, revision })
    }

    async fn search(&self, request: pb::SearchRequest) -> Result<pb::SearchResponse, Status> {
        let hits = SearchService::search(self, request).await?;
        Ok(pb::SearchResponse { hits })
    }

    async fn batch_search(
        &self,
        request: pb::BatchSearchRequest,
    ) -> Result<pb::BatchSearchResponse, Status> {
        let results = SearchService::batch_search(self, request).await?;
        Ok(pb::BatchSearchResponse {
            results: results
                .into_iter()
                .map(|hits| pb::HitList { hits })
                .collect(),
        })
    }

    async fn multi_index_search(
        &self,
        request: pb::MultiIndexSearchRequest,
    ) -> Result<pb::MultiIndexSearchResponse, Status> {
        let results = SearchService::multi_index_search(self, request).await?;
        Ok(pb::MultiIndexSearchResponse { results })
    }

    async fn describe_index(
        &self,
        request: pb::DescribeIndexRequest,
    ) -> Result<pb::DescribeIndexResponse, Status> {
        Ok(SearchService::describe(self, &request.name)?)
    }

    async fn train(&self, name: String, rebuild: bool) -> Result<TrainProgress, Status> {
        let receiver = SearchService::train(self, &name, rebuild)?;
        Ok(Box::pin(
            ReceiverStream::new(receiver).map(|step| step.map_err(Status::from)),
        ))
    }
}
