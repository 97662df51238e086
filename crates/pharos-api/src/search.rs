//! [`SearchApi`]: the search service's operations, whichever way it is reached.
//! `pharos-search` implements it on the service itself; [`RemoteSearch`] over gRPC (the
//! `pharos search` CLI, and any service that searches another process's indexes).

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use pharos_proto::search::v1 as pb;
use pharos_proto::search::v1::search_service_client::SearchServiceClient;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::client::{ClientInterceptor, ClientSettings, ConnectError};

/// The progress of a training or rebuild, ending with a `finished` step or an error.
pub type TrainProgress = Pin<Box<dyn Stream<Item = Result<pb::TrainProgress, Status>> + Send>>;

/// Largest message the search client sends or accepts (a batch of vectors, a batch of answers).
pub const MAX_SEARCH_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The search service's operations, in its protobuf types.
#[async_trait::async_trait]
pub trait SearchApi: Send + Sync + 'static {
    async fn create_index(
        &self,
        request: pb::CreateIndexRequest,
    ) -> Result<pb::CreateIndexResponse, Status>;
    async fn drop_index(
        &self,
        request: pb::DropIndexRequest,
    ) -> Result<pb::DropIndexResponse, Status>;
    async fn list_indexes(&self) -> Result<pb::ListIndexesResponse, Status>;
    async fn upsert(&self, request: pb::UpsertRequest) -> Result<pb::UpsertResponse, Status>;
    async fn delete(&self, request: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status>;
    async fn search(&self, request: pb::SearchRequest) -> Result<pb::SearchResponse, Status>;
    async fn batch_search(
        &self,
        request: pb::BatchSearchRequest,
    ) -> Result<pb::BatchSearchResponse, Status>;
    async fn multi_index_search(
        &self,
        request: pb::MultiIndexSearchRequest,
    ) -> Result<pb::MultiIndexSearchResponse, Status>;
    async fn describe_index(
        &self,
        request: pb::DescribeIndexRequest,
    ) -> Result<pb::DescribeIndexResponse, Status>;
    /// Trains an IVF_PQ index (its first training, or again from the current vectors when
    /// `rebuild`), streaming the stages.
    async fn train(&self, name: String, rebuild: bool) -> Result<TrainProgress, Status>;
}

/// The search service of another process, over gRPC.
#[derive(Clone, Debug)]
pub struct RemoteSearch {
    client: SearchServiceClient<InterceptedService<Channel, ClientInterceptor>>,
}

impl RemoteSearch {
    /// A client over `channel` that presents `settings`' token.
    pub fn new(channel: Channel, settings: &ClientSettings) -> Result<Self, ConnectError> {
        let client = SearchServiceClient::with_interceptor(channel, settings.interceptor()?)
            .max_decoding_message_size(MAX_SEARCH_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_SEARCH_MESSAGE_BYTES);
        Ok(Self { client })
    }

    /// Connects now (the CLI: a server that is not there is an error to show).
    pub async fn connect(settings: &ClientSettings) -> Result<Self, ConnectError> {
        Self::new(settings.connect().await?, settings)
    }

    /// Connects on first use and reconnects by itself.
    pub fn lazy(settings: &ClientSettings) -> Result<Arc<dyn SearchApi>, ConnectError> {
        Ok(Arc::new(Self::new(settings.lazy_channel()?, settings)?))
    }

    fn client(&self) -> SearchServiceClient<InterceptedService<Channel, ClientInterceptor>> {
        self.client.clone()
    }
}

#[async_trait::async_trait]
impl SearchApi for RemoteSearch {
    async fn create_index(
        &self,
        request: pb::CreateIndexRequest,
    ) -> Result<pb::CreateIndexResponse, Status> {
        Ok(self.client().create_index(request).await?.into_inner())
    }

    async fn drop_index(
        &self,
        request: pb::DropIndexRequest,
    ) -> Result<pb::DropIndexResponse, Status> {
        Ok(self.client().drop_index(request).await?.into_inner())
    }

    async fn list_indexes(&self) -> Result<pb::ListIndexesResponse, Status> {
        Ok(self
            .client()
            .list_indexes(pb::ListIndexesRequest {})
            .await?
            .into_inner())
    }

    async fn upsert(&self, request: pb::UpsertRequest) -> Result<pb::UpsertResponse, Status> {
        Ok(self.client().upsert(request).await?.into_inner())
    }

    async fn delete(&self, request: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status> {
        Ok(self.client().delete(request).await?.into_inner())
    }

    async fn search(&self, request: pb::SearchRequest) -> Result<pb::SearchResponse, Status> {
        Ok(self.client().search(request).await?.into_inner())
    }

    async fn batch_search(
        &self,
        request: pb::BatchSearchRequest,
    ) -> Result<pb::BatchSearchResponse, Status> {
        Ok(self.client().batch_search(request).await?.into_inner())
    }

    async fn multi_index_search(
        &self,
        request: pb::MultiIndexSearchRequest,
    ) -> Result<pb::MultiIndexSearchResponse, Status> {
        Ok(self
            .client()
            .multi_index_search(request)
            .await?
            .into_inner())
    }

    async fn describe_index(
        &self,
        request: pb::DescribeIndexRequest,
    ) -> Result<pb::DescribeIndexResponse, Status> {
        Ok(self.client().describe_index(request).await?.into_inner())
    }

    async fn train(&self, name: String, rebuild: bool) -> Result<TrainProgress, Status> {
        let missing = || Status::internal("the server sent a step without progress");
        if rebuild {
            let stream = self
                .client()
                .rebuild(pb::RebuildRequest { name })
                .await?
                .into_inner();
            Ok(Box::pin(stream.map(move |step| {
                step.and_then(|step| step.progress.ok_or_else(missing))
            })))
        } else {
            let stream = self
                .client()
                .train(pb::TrainRequest { name })
                .await?
                .into_inner();
            Ok(Box::pin(stream.map(move |step| {
                step.and_then(|step| step.progress.ok_or_else(missing))
            })))
        }
    }
}
