//! The tonic adapter of the search service: each handler calls the service's [`SearchApi`]
//! (`client.rs`, which converts and maps errors to `tonic::Status`). No logic lives here.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use pharos_proto::search::v1 as pb;
use pharos_proto::search::v1::search_service_server::{self, SearchServiceServer};
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status};

use pharos_api::search::SearchApi;

use crate::service::SearchService;

/// The tonic service over the search service's [`SearchApi`].
#[derive(Clone)]
pub struct SearchGrpc {
    api: Arc<dyn SearchApi>,
}

/// The mountable server, with the process's message size limit.
pub fn server(
    service: Arc<SearchService>,
    max_message_bytes: usize,
) -> SearchServiceServer<SearchGrpc> {
    pharos_runtime::tonic_server!(
        SearchServiceServer::new(SearchGrpc {
            api: crate::client::api(service),
        }),
        max_message_bytes
    )
}

type ProgressStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl search_service_server::SearchService for SearchGrpc {
    async fn create_index(
        &self,
        request: Request<pb::CreateIndexRequest>,
    ) -> Result<Response<pb::CreateIndexResponse>, Status> {
        Ok(Response::new(
            self.api.create_index(request.into_inner()).await?,
        ))
    }

    async fn drop_index(
        &self,
        request: Request<pb::DropIndexRequest>,
    ) -> Result<Response<pb::DropIndexResponse>, Status> {
        Ok(Response::new(
            self.api.drop_index(request.into_inner()).await?,
        ))
    }

    async fn list_indexes(
        &self,
        _request: Request<pb::ListIndexesRequest>,
    ) -> Result<Response<pb::ListIndexesResponse>, Status> {
        Ok(Response::new(self.api.list_indexes().await?))
    }

    async fn upsert(
        &self,
        request: Request<pb::UpsertRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        Ok(Response::new(self.api.upsert(request.into_inner()).await?))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        Ok(Response::new(self.api.delete(request.into_inner()).await?))
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        Ok(Response::new(self.api.search(request.into_inner()).await?))
    }

    async fn batch_search(
        &self,
        request: Request<pb::BatchSearchRequest>,
    ) -> Result<Response<pb::BatchSearchResponse>, Status> {
        Ok(Response::new(
            self.api.batch_search(request.into_inner()).await?,
        ))
    }

    async fn multi_index_search(
        &self,
        request: Request<pb::MultiIndexSearchRequest>,
    ) -> Result<Response<pb::MultiIndexSearchResponse>, Status> {
        Ok(Response::new(
            self.api.multi_index_search(request.into_inner()).await?,
        ))
    }

    async fn describe_index(
        &self,
        request: Request<pb::DescribeIndexRequest>,
    ) -> Result<Response<pb::DescribeIndexResponse>, Status> {
        Ok(Response::new(
            self.api.describe_index(request.into_inner()).await?,
        ))
    }

    type TrainStream = ProgressStream<pb::TrainResponse>;

    async fn train(
        &self,
        request: Request<pb::TrainRequest>,
    ) -> Result<Response<Self::TrainStream>, Status> {
        let steps = self.api.train(request.into_inner().name, false).await?;
        let stream = steps.map(|step| {
            step.map(|progress| pb::TrainResponse {
                progress: Some(progress),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    type RebuildStream = ProgressStream<pb::RebuildResponse>;

    async fn rebuild(
        &self,
        request: Request<pb::RebuildRequest>,
    ) -> Result<Response<Self::RebuildStream>, Status> {
        let steps = self.api.train(request.into_inner().name, true).await?;
        let stream = steps.map(|step| {
            step.map(|progress| pb::RebuildResponse {
                progress: Some(progress),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
