//! The tonic adapter of the search service: each handler calls [`SearchService`] and maps its
//! errors to `tonic::Status`. No logic lives here.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use pharos_proto::search::v1 as pb;
use pharos_proto::search::v1::search_service_server::{self, SearchServiceServer};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::service::SearchService;

/// The tonic service over a [`SearchService`].
#[derive(Clone)]
pub struct SearchGrpc {
    service: Arc<SearchService>,
}

/// The mountable server, with the process's message size limit.
pub fn server(
    service: Arc<SearchService>,
    max_message_bytes: usize,
) -> SearchServiceServer<SearchGrpc> {
    SearchServiceServer::new(SearchGrpc { service })
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
}

type ProgressStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl search_service_server::SearchService for SearchGrpc {
    async fn create_index(
        &self,
        request: Request<pb::CreateIndexRequest>,
    ) -> Result<Response<pb::CreateIndexResponse>, Status> {
        let index = self.service.create_index(request.into_inner()).await?;
        Ok(Response::new(pb::CreateIndexResponse {
            index: Some(index),
        }))
    }

    async fn drop_index(
        &self,
        request: Request<pb::DropIndexRequest>,
    ) -> Result<Response<pb::DropIndexResponse>, Status> {
        self.service.drop_index(&request.into_inner().name).await?;
        Ok(Response::new(pb::DropIndexResponse {}))
    }

    async fn list_indexes(
        &self,
        _request: Request<pb::ListIndexesRequest>,
    ) -> Result<Response<pb::ListIndexesResponse>, Status> {
        Ok(Response::new(pb::ListIndexesResponse {
            indexes: self.service.list_indexes(),
        }))
    }

    async fn upsert(
        &self,
        request: Request<pb::UpsertRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let (upserted, revision) = self.service.upsert(request.into_inner()).await?;
        Ok(Response::new(pb::UpsertResponse { upserted, revision }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let (deleted, revision) = self.service.delete(request.into_inner()).await?;
        Ok(Response::new(pb::DeleteResponse { deleted, revision }))
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let hits = self.service.search(request.into_inner()).await?;
        Ok(Response::new(pb::SearchResponse { hits }))
    }

    async fn batch_search(
        &self,
        request: Request<pb::BatchSearchRequest>,
    ) -> Result<Response<pb::BatchSearchResponse>, Status> {
        let results = self.service.batch_search(request.into_inner()).await?;
        Ok(Response::new(pb::BatchSearchResponse {
            results: results
                .into_iter()
                .map(|hits| pb::HitList { hits })
                .collect(),
        }))
    }

    async fn multi_index_search(
        &self,
        request: Request<pb::MultiIndexSearchRequest>,
    ) -> Result<Response<pb::MultiIndexSearchResponse>, Status> {
        let results = self
            .service
            .multi_index_search(request.into_inner())
            .await?;
        Ok(Response::new(pb::MultiIndexSearchResponse { results }))
    }

    async fn describe_index(
        &self,
        request: Request<pb::DescribeIndexRequest>,
    ) -> Result<Response<pb::DescribeIndexResponse>, Status> {
        Ok(Response::new(
            self.service.describe(&request.into_inner().name)?,
        ))
    }

    type TrainStream = ProgressStream<pb::TrainResponse>;

    async fn train(
        &self,
        request: Request<pb::TrainRequest>,
    ) -> Result<Response<Self::TrainStream>, Status> {
        let receiver = self.service.train(&request.into_inner().name, false)?;
        let stream = ReceiverStream::new(receiver).map(|step| {
            step.map(|progress| pb::TrainResponse {
                progress: Some(progress),
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    type RebuildStream = ProgressStream<pb::RebuildResponse>;

    async fn rebuild(
        &self,
        request: Request<pb::RebuildRequest>,
    ) -> Result<Response<Self::RebuildStream>, Status> {
        let receiver = self.service.train(&request.into_inner().name, true)?;
        let stream = ReceiverStream::new(receiver).map(|step| {
            step.map(|progress| pb::RebuildResponse {
                progress: Some(progress),
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
