//! [`Feed`]: the committed-data feed. Writers append a feed row to each committed batch of
//! metric points or security events (in the batch's transaction) and then advance the feed's
//! head here; other replicas' batches advance it through PostgreSQL NOTIFY. A subscription
//! ([`Feed::subscribe`]) is a task that reads the rows after its position from the store and
//! waits on the head when it has caught up: publishing is one atomic store, so it never blocks
//! or fails ingest; a slow subscriber only slows itself; and a subscriber that resumes after its
//! last position misses none and sees none twice. Rows past the feed's retention are announced
//! as [`FeedItem::Missed`].
//!
//! A signal whose batches are not published (`ingest.feed.metrics = false`, say) commits
//! without feed rows: a subscription to it is refused, and one open when publishing stops
//! ends with [`FeedError::NotPublished`], so that no subscriber takes the feed's silence for
//! the absence of data.
//!
//! Subscriptions yield decoded batches ([`CommittedBatch`]): the payload format is ingest's
//! own ([`payload`], versioned), the store keeps it as opaque bytes. In `--target all` the
//! alert service subscribes in process; between processes the `Subscribe` RPC streams the same
//! items ([`Feed::to_response`]).

pub mod payload;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use pharos_proto::ingest::v1 as pb;
use pharos_runtime::Shutdown;
use pharos_store::signals::feed::{FEED_CHANNEL, FeedRepository, FeedRow, FeedSignal};
use pharos_store::signals::metrics::MetricsRepository;
use pharos_store::{Notification, Store, StoreError};
use tokio::sync::{mpsc, watch};

use self::payload::{Payload, PayloadError};

/// Rows read from the store at once by a subscription.
const READ_BATCHES: i64 = 64;
/// Items a subscription holds for a subscriber that has not taken them yet.
const SUBSCRIPTION_BUFFER: usize = 16;

/// Of `signals` (all when empty), the first in `unpublished`.
fn first_unpublished(
    unpublished: &HashSet<FeedSignal>,
    signals: &HashSet<FeedSignal>,
) -> Option<FeedSignal> {
    [FeedSignal::Metrics, FeedSignal::SecurityEvents]
        .into_iter()
        .find(|signal| {
            unpublished.contains(signal) && (signals.is_empty() || signals.contains(signal))
        })
}

/// One committed batch, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedBatch {
    /// Gap-free across every ingest replica, in commit order.
    pub position: i64,
    /// When the batch committed, in microseconds since the Unix epoch.
    pub committed_us: i64,
    pub payload: Payload,
}

impl CommittedBatch {
    fn decode(row: FeedRow) -> Result<Self, FeedError> {
        let payload =
            payload::decode(row.signal, &row.payload).map_err(|source| FeedError::Payload {
                position: row.position,
                source,
            })?;
        Ok(Self {
            position: row.position,
            committed_us: row.committed_us,
            payload,
        })
    }
}

/// Why a subscription ended.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the feed could not be read")]
    Store(#[from] StoreError),
    #[error(
        "{} are not published on the committed-data feed; set ingest.feed.{} = true to subscribe to them",
        signal_noun(*.0),
        signal_setting(*.0)
    )]
    NotPublished(FeedSignal),
    #[error("feed row {position} cannot be read")]
    Payload {
        position: i64,
        #[source]
        source: PayloadError,
    },
}

fn signal_noun(signal: FeedSignal) -> &'static str {
    match signal {
        FeedSignal::Metrics => "metric points",
        FeedSignal::SecurityEvents => "security events",
    }
}

fn signal_setting(signal: FeedSignal) -> &'static str {
    match signal {
        FeedSignal::Metrics => "metrics",
        FeedSignal::SecurityEvents => "security_events",
    }
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// The first item of a subscription from now on: the position it starts after.
    Started(i64),
    Batch(Arc<CommittedBatch>),
    /// Positions `first..=last` are no longer kept.
    Missed {
        first: i64,
        last: i64,
    },
}

pub struct Feed {
    repository: FeedRepository,
    metrics: MetricsRepository,
    /// The last position known committed.
    head: watch::Sender<i64>,
    /// Series descriptions (they never change), for remote subscribers.
    series: moka::sync::Cache<i64, Arc<pb::CommittedSeries>>,
    /// The signals whose batches commit without feed rows.
    unpublished: watch::Sender<HashSet<FeedSignal>>,
}

impl Feed {
    /// Reads the head and, on PostgreSQL, follows the batches other replicas commit.
    pub async fn start(store: Store, shutdown: Shutdown) -> Result<Arc<Feed>, StoreError> {
        let repository = store.feed();
        let (head, _) = watch::channel(repository.head().await?);
        let feed = Arc::new(Feed {
            repository,
            metrics: store.metrics(),
            head,
            series: moka::sync::Cache::new(100_000),
            unpublished: watch::channel(HashSet::new()).0,
        });
        if let Some(mut notifications) = store.notifications(FEED_CHANNEL).await? {
            let weak = Arc::downgrade(&feed);
            let stop = shutdown.clone();
            shutdown.spawn(async move {
                let shutdown = stop;
                loop {
                    let next = tokio::select! {
                        () = shutdown.wait() => break,
                        next = notifications.next() => next,
                    };
                    let Some(feed) = weak.upgrade() else { break };
                    match next {
                        Ok(Notification::Payload(position)) => {
                            if let Ok(position) = position.parse() {
                                feed.advance(position);
                            }
                        }
                        // Announcements may have been lost: the head says where the feed is.
                        Ok(Notification::Reconnected) => match feed.repository.head().await {
                            Ok(position) => feed.advance(position),
                            Err(error) => tracing::warn!(%error, "cannot read the feed head"),
                        },
                        Err(error) => {
                            tracing::warn!(%error, "feed notifications interrupted; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
        }
        Ok(feed)
    }

    /// Makes `position` (committed) visible to subscribers.
    pub fn advance(&self, position: i64) {
        self.head.send_if_modified(|head| {
            let newer = position > *head;
            if newer {
                *head = position;
            }
            newer
        });
    }

    /// Records whether batches of `signal` are published. Say so here before a writer stops
    /// publishing, and after it starts: subscriptions to a signal not published are refused,
    /// and those open end.
    pub fn set_published(&self, signal: FeedSignal, published: bool) {
        self.unpublished.send_if_modified(|unpublished| {
            if published {
                unpublished.remove(&signal)
            } else {
                unpublished.insert(signal)
            }
        });
    }

    /// The first of `signals` (all when empty) that is not published.
    pub fn unpublished_of(&self, signals: &HashSet<FeedSignal>) -> Option<FeedSignal> {
        first_unpublished(&self.unpublished.borrow(), signals)
    }

    /// The last position known committed.
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// Deletes batches committed more than `retention` ago.
    pub async fn expire(&self, retention: Duration) -> Result<u64, StoreError> {
        let age = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
        self.repository
            .expire(
                self.repository
                    .store()
                    .clock()
                    .now_micros()
                    .saturating_sub(age),
            )
            .await
    }

    /// The batches of `signals` (all when empty) after `after` (from now on when `None`), in
    /// order. The subscription ends when the receiver is dropped, or after yielding an error.
    pub fn subscribe(
        self: &Arc<Self>,
        signals: HashSet<FeedSignal>,
        after: Option<i64>,
    ) -> mpsc::Receiver<Result<FeedItem, FeedError>> {
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let feed = self.clone();
        let mut head = self.head.subscribe();
        let mut unpublished = self.unpublished.subscribe();
        let mut position = after.unwrap_or_else(|| *head.borrow_and_update());
        let started = after.is_none().then_some(position);
        tokio::spawn(async move {
            // From now on: say where "now" is, so that a subscriber that must resubscribe
            // before any batch arrives can resume from there.
            if let Some(position) = started
                && sender.send(Ok(FeedItem::Started(position))).await.is_err()
            {
                return;
            }
            let wanted = |signal: FeedSignal| signals.is_empty() || signals.contains(&signal);
            loop {
                let refused = first_unpublished(&unpublished.borrow_and_update(), &signals);
                if let Some(signal) = refused {
                    let _ = sender.send(Err(FeedError::NotPublished(signal))).await;
                    return;
                }
                // The head first: every position up to it was committed before the read.
                let known = *head.borrow_and_update();
                let rows = match feed.repository.read_after(position, READ_BATCHES).await {
                    Ok(rows) => rows,
                    Err(error) => {
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                };
                // Positions are gap-free: a hole before the first row kept, or nothing kept
                // up to a known head, is what retention removed.
                let first_kept = rows
                    .first()
                    .map_or(known.max(position) + 1, |row| row.position);
                if first_kept > position + 1 {
                    let missed = FeedItem::Missed {
                        first: position + 1,
                        last: first_kept - 1,
                    };
                    if sender.send(Ok(missed)).await.is_err() {
                        return;
                    }
                    position = first_kept - 1;
                }
                if rows.is_empty() {
                    tokio::select! {
                        () = sender.closed() => return,
                        changed = head.changed() => if changed.is_err() { return },
                        changed = unpublished.changed() => if changed.is_err() { return },
                    }
                    continue;
                }
                for row in rows {
                    position = row.position;
                    if !wanted(row.signal) {
                        continue;
                    }
                    let item =
                        CommittedBatch::decode(row).map(|batch| FeedItem::Batch(Arc::new(batch)));
                    let failed = item.is_err();
                    if sender.send(item).await.is_err() || failed {
                        return;
                    }
                }
            }
        });
        receiver
    }

    /// A feed item as the `Subscribe` RPC sends it; `described` holds the series this stream has
    /// described already.
    pub async fn to_response(
        &self,
        item: FeedItem,
        described: &mut HashSet<i64>,
    ) -> Result<pb::SubscribeResponse, FeedError> {
        use pb::subscribe_response::Item;
        let batch = match item {
            FeedItem::Started(position) => {
                return Ok(pb::SubscribeResponse {
                    item: Some(Item::Started(pb::Started {
                        position: u64::try_from(position).unwrap_or_default(),
                    })),
                });
            }
            FeedItem::Missed { first, last } => {
                return Ok(pb::SubscribeResponse {
                    item: Some(Item::Missed(pb::Missed {
                        first_position: u64::try_from(first).unwrap_or_default(),
                        last_position: u64::try_from(last).unwrap_or_default(),
                    })),
                });
            }
            FeedItem::Batch(batch) => batch,
        };
        let items = match &batch.payload {
            Payload::Metrics(points) => {
                let new: Vec<i64> = points
                    .iter()
                    .map(|point| point.series_id)
                    .filter(|id| described.insert(*id))
                    .collect::<HashSet<i64>>()
                    .into_iter()
                    .collect();
                let series = self.describe(&new).await?;
                pb::committed_batch::Items::Metrics(pb::CommittedMetrics {
                    series,
                    points: points
                        .iter()
                        .map(|point| pb::CommittedPoint {
                            series_id: point.series_id,
                            time_unix_nano: point.time_us.saturating_mul(1_000),
                            value: point.value,
                        })
                        .collect(),
                })
            }
            Payload::SecurityEvents(events) => {
                pb::committed_batch::Items::SecurityEvents(pb::WriteSecurityEventsRequest {
                    events: events.clone(),
                })
            }
        };
        Ok(pb::SubscribeResponse {
            item: Some(Item::Batch(pb::CommittedBatch {
                position: u64::try_from(batch.position).unwrap_or_default(),
                committed_unix_nano: batch.committed_us.saturating_mul(1_000),
                items: Some(items),
            })),
        })
    }

    /// Name and labels of each series, from the cache or the store.
    async fn describe(&self, ids: &[i64]) -> Result<Vec<pb::CommittedSeries>, StoreError> {
        let mut described = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.series.get(id) {
                Some(series) => described.push(series.as_ref().clone()),
                None => missing.push(*id),
            }
        }
        for (id, name, labels) in self.metrics.series_by_ids(&missing).await? {
            let labels: HashMap<String, String> = serde_json::from_str(&labels).unwrap_or_default();
            let mut labels: Vec<pb::Label> = labels
                .into_iter()
                .map(|(name, value)| pb::Label { name, value })
                .collect();
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            let series = pb::CommittedSeries { id, name, labels };
            self.series.insert(id, Arc::new(series.clone()));
            described.push(series);
        }
        Ok(described)
    }
}
