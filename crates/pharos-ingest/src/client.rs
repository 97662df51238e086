//! The ingest service as [`FeedApi`] and [`IngestApi`] for the other services of its process
//! (the alert service), with no loopback hop: the committed-data feed, and metric writes through
//! the same validation and group commit as every client. The `Subscribe` and `WriteMetrics` RPCs
//! serve the same to other processes, through `pharos_api::RemoteFeed` and `RemoteIngest`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use pharos_api::feed::{FeedApi, FeedItems};
use pharos_api::ingest::IngestApi;
use pharos_proto::ingest::v1 as pb;
use pharos_runtime::error::{FieldViolation, invalid_argument, unavailable};
use pharos_store::signals::feed::FeedSignal;
use tonic::Status;

use crate::feed::FeedError;
use crate::service::IngestService;

/// Items a subscription converts ahead of its consumer.
const SUBSCRIPTION_AHEAD: usize = 4;

/// The service as a [`FeedApi`] handle.
pub fn feed_api(service: Arc<IngestService>) -> Arc<dyn FeedApi> {
    Arc::new(LocalFeed(service))
}

/// The service as an [`IngestApi`] handle.
pub fn ingest_api(service: Arc<IngestService>) -> Arc<dyn IngestApi> {
    Arc::new(LocalIngest(service))
}

/// This process's ingest service, written to directly.
struct LocalIngest(Arc<IngestService>);

#[async_trait::async_trait]
impl IngestApi for LocalIngest {
    async fn write_metrics(
        &self,
        request: pb::WriteMetricsRequest,
    ) -> Result<pb::WriteMetricsResponse, Status> {
        Ok(self.0.write_metrics(request).await?.into())
    }
}

/// The feed of this process's ingest service.
struct LocalFeed(Arc<IngestService>);

#[async_trait::async_trait]
impl FeedApi for LocalFeed {
    async fn subscribe(&self, request: pb::SubscribeRequest) -> Result<FeedItems, Status> {
        let signals = signals(&request.signals)?;
        let after = request
            .after_position
            .map(|position| i64::try_from(position).unwrap_or(i64::MAX));
        let feed = self.0.feed().clone();
        if let Some(signal) = feed.unpublished_of(&signals) {
            return Err(not_published(signal));
        }
        let mut items = feed.subscribe(signals, after);
        let (sender, receiver) = tokio::sync::mpsc::channel(SUBSCRIPTION_AHEAD);
        tokio::spawn(async move {
            let mut described = HashSet::new();
            while let Some(item) = items.recv().await {
                let response = match item {
                    Ok(item) => feed.to_response(item, &mut described).await,
                    Err(error) => Err(error),
                };
                let response = response.map_err(|error| match error {
                    FeedError::NotPublished(signal) => not_published(signal),
                    error => {
                        tracing::warn!(%error, "feed subscription ended");
                        unavailable(
                            "the feed could not be read; subscribe again after your last position",
                            Duration::from_secs(1),
                        )
                    }
                });
                let failed = response.is_err();
                if sender.send(response).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(
            receiver,
        )))
    }
}

/// A subscription to `signal`, whose batches are not published.
fn not_published(signal: FeedSignal) -> Status {
    Status::failed_precondition(FeedError::NotPublished(signal).to_string())
}

/// The requested signals; empty means all.
fn signals(codes: &[i32]) -> Result<HashSet<FeedSignal>, Status> {
    let mut signals = HashSet::new();
    for (index, code) in codes.iter().enumerate() {
        let signal = i16::try_from(*code)
            .ok()
            .and_then(FeedSignal::from_code)
            .ok_or_else(|| {
                invalid_argument(&[FieldViolation::new(
                    format!("signals[{index}]"),
                    format!("{code} is not a feed signal: use FEED_SIGNAL_METRICS or FEED_SIGNAL_SECURITY_EVENTS"),
                )])
            })?;
        signals.insert(signal);
    }
    Ok(signals)
}
