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

/// Follows `feed` from now on until `shutdown`: every committed batch of `signals` goes to
/// `on_batch`, in commit order. A subscription that ends or fails is taken up again after the
/// last batch seen (waits of 100 ms doubling to 10 s between failed attempts), so a consumer
/// misses nothing the feed still keeps. `what` names the consumer in the logs.
pub async fn follow<F, Fut>(
    feed: Arc<dyn FeedApi>,
    signals: &[pb::FeedSignal],
    shutdown: pharos_runtime::Shutdown,
    what: &'static str,
    mut on_batch: F,
) where
    F: FnMut(pb::CommittedBatch) -> Fut + Send,
    Fut: std::future::Future<Output = ()> + Send,
{
    let signals: Vec<i32> = signals.iter().map(|signal| *signal as i32).collect();
    let mut after: Option<u64> = None;
    let mut backoff = std::time::Duration::from_millis(100);
    loop {
        let request = pb::SubscribeRequest {
            signals: signals.clone(),
            after_position: after,
        };
        let subscribed = tokio::select! {
            _ = shutdown.wait() => return,
            subscribed = feed.subscribe(request) => subscribed,
        };
        match subscribed {
            Ok(mut items) => {
                backoff = std::time::Duration::from_millis(100);
                loop {
                    let item = tokio::select! {
                        _ = shutdown.wait() => return,
                        item = futures::StreamExt::next(&mut items) => item,
                    };
                    let Some(Ok(response)) = item else { break };
                    if let Some(pb::subscribe_response::Item::Batch(batch)) = response.item {
                        after = Some(batch.position);
                        on_batch(batch).await;
                    }
                }
                tracing::debug!(what, "feed subscription ended; subscribing again");
            }
            Err(status) => {
                tracing::warn!(what, error = %status.message(), "cannot follow the ingest feed; will retry");
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
    }
}
