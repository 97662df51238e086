//! [`FeedApi`]: ingest's committed-data feed, as a service that reacts to committed data (the
//! alert service) consumes it. `pharos-ingest` implements it in process; [`RemoteFeed`]
//! subscribes over gRPC. Both yield the same messages: each batch in commit order with its
//! gap-free position, series described the first time a subscription mentions them, and a
//! `Missed` item for positions retention removed.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::client::{ClientInterceptor, ClientSettings, ConnectError, MAX_DECODING_MESSAGE_BYTES};

/// The items of one subscription, ending after an error (resubscribe after the last position).
pub type FeedItems = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

/// Subscribing to committed data.
#[async_trait::async_trait]
pub trait FeedApi: Send + Sync + 'static {
    /// Every committed batch of the requested signals after `after_position` (from now on when
    /// absent), in commit order.
    async fn subscribe(&self, request: pb::SubscribeRequest) -> Result<FeedItems, Status>;
}

/// The feed of an ingest service in another process.
#[derive(Clone, Debug)]
pub struct RemoteFeed {
    client: IngestServiceClient<InterceptedService<Channel, ClientInterceptor>>,
}

impl RemoteFeed {
    /// A client over `channel` that presents `settings`' token.
    pub fn new(channel: Channel, settings: &ClientSettings) -> Result<Self, ConnectError> {
        let client = IngestServiceClient::with_interceptor(channel, settings.interceptor()?)
            .max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES);
        Ok(Self { client })
    }

    /// Connects on first use and reconnects by itself.
    pub fn lazy(settings: &ClientSettings) -> Result<Arc<dyn FeedApi>, ConnectError> {
        Ok(Arc::new(Self::new(settings.lazy_channel()?, settings)?))
    }
}

#[async_trait::async_trait]
impl FeedApi for RemoteFeed {
    async fn subscribe(&self, request: pb::SubscribeRequest) -> Result<FeedItems, Status> {
        Ok(Box::pin(
            self.client.clone().subscribe(request).await?.into_inner(),
        ))
    }
}
