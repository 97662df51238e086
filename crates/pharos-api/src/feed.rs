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
/// last batch seen (or where the first subscription started, before any batch) (waits of 100 ms doubling to 10 s between failed attempts), so a consumer
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
                    match response.item {
                        Some(pb::subscribe_response::Item::Batch(batch)) => {
                            after = Some(batch.position);
                            on_batch(batch).await;
                        }
                        // Where "now" was: a resubscription before any batch resumes there.
                        Some(pb::subscribe_response::Item::Started(started)) => {
                            after = after.or(Some(started.position));
                        }
                        _ => {}
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A feed whose subscriptions answer from a script, recording each request.
    struct ScriptedFeed {
        requests: Mutex<Vec<pb::SubscribeRequest>>,
        scripts: Mutex<Vec<Vec<pb::subscribe_response::Item>>>,
    }

    #[async_trait::async_trait]
    impl FeedApi for ScriptedFeed {
        async fn subscribe(&self, request: pb::SubscribeRequest) -> Result<FeedItems, Status> {
            self.requests.lock().expect("lock").push(request);
            let mut scripts = self.scripts.lock().expect("lock");
            let items = if scripts.is_empty() {
                Vec::new()
            } else {
                scripts.remove(0)
            };
            let items: Vec<Result<pb::SubscribeResponse, Status>> = items
                .into_iter()
                .map(|item| Ok(pb::SubscribeResponse { item: Some(item) }))
                .chain(std::iter::once(Err(Status::unavailable("gone"))))
                .collect();
            Ok(Box::pin(futures::stream::iter(items)))
        }
    }

    fn batch(position: u64) -> pb::subscribe_response::Item {
        pb::subscribe_response::Item::Batch(pb::CommittedBatch {
            position,
            ..Default::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscription_lost_before_any_batch_resumes_where_it_started() {
        let feed = Arc::new(ScriptedFeed {
            requests: Mutex::new(Vec::new()),
            scripts: Mutex::new(vec![
                // From now on, "now" being 41; lost before any batch.
                vec![pb::subscribe_response::Item::Started(pb::Started {
                    position: 41,
                })],
                // Resumed: a batch, then lost again.
                vec![batch(42)],
                // Resumed after the batch.
                vec![batch(43)],
            ]),
        });
        let shutdown = pharos_runtime::Shutdown::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let follower = {
            let (feed, shutdown, seen) = (feed.clone(), shutdown.clone(), seen.clone());
            tokio::spawn(async move {
                follow(feed, &[], shutdown, "test", move |batch| {
                    seen.lock().expect("lock").push(batch.position);
                    std::future::ready(())
                })
                .await;
            })
        };
        while seen.lock().expect("lock").len() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        shutdown.trigger();
        follower.await.expect("follower ends at shutdown");
        let afters: Vec<Option<u64>> = feed
            .requests
            .lock()
            .expect("lock")
            .iter()
            .take(3)
            .map(|request| request.after_position)
            .collect();
        assert_eq!(afters, [None, Some(41), Some(42)]);
        assert_eq!(*seen.lock().expect("lock"), [42, 43]);
    }
}
