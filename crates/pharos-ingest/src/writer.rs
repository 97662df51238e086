//! [`BatchWriter`]: the write path after validation, one per signal. Callers hand over their
//! rows and wait; writer tasks take everything queued (up to a batch), write it in one
//! transaction and then answer every caller of that batch, so an answer always means committed.
//! Memory is bounded by a weight (points for metrics, bytes for the other signals): a request
//! that does not fit is refused at once with RESOURCE_EXHAUSTED instead of queueing without
//! limit. The bound, the batch size and the linger are live settings.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use pharos_store::signals::feed::{FeedEntry, FeedSignal};
use pharos_store::signals::logs::{LogRow, LogsRepository};
use pharos_store::signals::metrics::{MetricsRepository, PointRow};
use pharos_store::signals::security_events::{SecurityEventRow, SecurityEventsRepository};
use pharos_store::signals::spans::{SpanRow, SpansRepository};
use pharos_store::{Repository, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::{IngestError, Result};
use crate::feed::Feed;
use crate::feed::payload;
use crate::metrics::IngestMetrics;

/// Where one signal's batches go.
pub trait Sink: Repository + Clone + Send + Sync + 'static {
    type Row: Send + Sync + 'static;
    /// The signal's name in logs, metrics and errors ("metrics", "spans", ...).
    const SIGNAL: &'static str;
    /// What a row counts against the buffer bound (1 for a point, its size for the others).
    fn weight(row: &Self::Row) -> usize;
    /// The committed-data feed row of a batch, for the signals the feed carries.
    fn feed_entry(_rows: &[Self::Row]) -> Option<FeedEntry> {
        None
    }
    /// Writes `rows` (and `feed`) in one transaction; returns the feed position.
    fn write(
        &self,
        rows: &[Self::Row],
        feed: Option<&FeedEntry>,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
}

fn item_count(rows: usize) -> i32 {
    i32::try_from(rows).unwrap_or(i32::MAX)
}

impl Sink for MetricsRepository {
    type Row = PointRow;
    const SIGNAL: &'static str = "metrics";
    fn weight(_: &PointRow) -> usize {
        1
    }
    fn feed_entry(rows: &[PointRow]) -> Option<FeedEntry> {
        Some(FeedEntry {
            signal: FeedSignal::Metrics,
            items: item_count(rows.len()),
            payload: payload::encode_points(rows),
        })
    }
    fn write(
        &self,
        rows: &[PointRow],
        feed: Option<&FeedEntry>,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send {
        self.insert_points(rows, feed)
    }
}

impl Sink for SpansRepository {
    type Row = SpanRow;
    const SIGNAL: &'static str = "spans";
    fn weight(row: &SpanRow) -> usize {
        row.size()
    }
    async fn write(
        &self,
        rows: &[SpanRow],
        _feed: Option<&FeedEntry>,
    ) -> Result<Option<i64>, StoreError> {
        self.insert(rows).await.map(|()| None)
    }
}

impl Sink for LogsRepository {
    type Row = LogRow;
    const SIGNAL: &'static str = "logs";
    fn weight(row: &LogRow) -> usize {
        row.size()
    }
    async fn write(
        &self,
        rows: &[LogRow],
        _feed: Option<&FeedEntry>,
    ) -> Result<Option<i64>, StoreError> {
        self.insert(rows).await.map(|()| None)
    }
}

impl Sink for SecurityEventsRepository {
    type Row = SecurityEventRow;
    const SIGNAL: &'static str = "security_events";
    fn weight(row: &SecurityEventRow) -> usize {
        row.size()
    }
    fn feed_entry(rows: &[SecurityEventRow]) -> Option<FeedEntry> {
        Some(FeedEntry {
            signal: FeedSignal::SecurityEvents,
            items: item_count(rows.len()),
            payload: payload::encode_security_events(rows),
        })
    }
    fn write(
        &self,
        rows: &[SecurityEventRow],
        feed: Option<&FeedEntry>,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send {
        self.insert(rows, feed)
    }
}

/// The live part of a writer's settings, in the sink's weight unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterLimits {
    /// The most weight waiting to be committed.
    pub capacity: usize,
    /// The most weight in one transaction.
    pub max_batch: usize,
    /// How long a writer waits for more rows before writing a batch that is not full.
    pub linger: Duration,
}

/// Rows of one request, waiting for their batch.
struct Pending<R> {
    rows: Vec<R>,
    weight: usize,
    _reservation: Reservation,
    done: oneshot::Sender<Result<(), Arc<StoreError>>>,
}

/// Weight counted in the buffer until dropped (when its batch is answered).
struct Reservation {
    buffered: Arc<AtomicUsize>,
    weight: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.buffered.fetch_sub(self.weight, Ordering::AcqRel);
    }
}

pub struct BatchWriter<S: Sink> {
    queue: mpsc::UnboundedSender<Pending<S::Row>>,
    buffered: Arc<AtomicUsize>,
    retry_after: Duration,
    state: Arc<WriterState>,
}

/// What the writers share and the health check reads.
pub struct WriterState {
    capacity: AtomicUsize,
    max_batch: AtomicUsize,
    linger_us: AtomicU64,
    /// Live: whether batches go on the committed-data feed.
    publish: AtomicBool,
    pub batches: AtomicU64,
    pub failed_batches: AtomicU64,
    pub last_error: std::sync::Mutex<Option<String>>,
}

impl<S: Sink> BatchWriter<S> {
    /// Starts `writers` writer tasks. They end when the writer is dropped and its queue has
    /// drained.
    pub fn start(
        sink: S,
        limits: WriterLimits,
        writers: usize,
        retry_after: Duration,
        metrics: IngestMetrics,
        feed: Option<Arc<Feed>>,
    ) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let state = Arc::new(WriterState {
            capacity: AtomicUsize::new(0),
            max_batch: AtomicUsize::new(0),
            linger_us: AtomicU64::new(0),
            publish: AtomicBool::new(false),
            batches: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            last_error: std::sync::Mutex::new(None),
        });
        state.apply(limits);
        for _ in 0..writers.max(1) {
            let task = WriterTask {
                receiver: receiver.clone(),
                sink: sink.clone(),
                state: state.clone(),
                metrics: metrics.clone(),
                feed: feed.clone(),
            };
            tokio::spawn(task.run());
        }
        Self {
            queue,
            buffered: Arc::new(AtomicUsize::new(0)),
            retry_after,
            state,
        }
    }

    /// Writes `rows` and returns once they are committed.
    pub async fn write(&self, rows: Vec<S::Row>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let weight = rows.iter().map(S::weight).sum();
        let reservation = self.reserve(weight)?;
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Pending {
                rows,
                weight,
                _reservation: reservation,
                done,
            })
            .map_err(|_| IngestError::ShuttingDown {
                retry_after: self.retry_after,
            })?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(IngestError::from_shared_store(source, self.retry_after)),
            Err(_) => Err(IngestError::ShuttingDown {
                retry_after: self.retry_after,
            }),
        }
    }

    /// Counts `weight` into the buffer, or refuses when it does not fit.
    fn reserve(&self, weight: usize) -> Result<Reservation> {
        let capacity = self.capacity();
        self.buffered
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |buffered| {
                (buffered + weight <= capacity).then_some(buffered + weight)
            })
            .map_err(|buffered| IngestError::Overloaded {
                signal: S::SIGNAL,
                buffered,
                capacity,
                retry_after: self.retry_after,
            })?;
        Ok(Reservation {
            buffered: self.buffered.clone(),
            weight,
        })
    }

    /// Weight accepted and not yet committed.
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Acquire)
    }

    pub fn capacity(&self) -> usize {
        self.state.capacity.load(Ordering::Relaxed)
    }

    /// Takes new limits while running.
    pub fn apply(&self, limits: WriterLimits) {
        self.state.apply(limits);
    }

    /// Whether batches go on the committed-data feed (live).
    pub fn publish(&self, publish: bool) {
        self.state.publish.store(publish, Ordering::Relaxed);
    }

    pub fn state(&self) -> &WriterState {
        &self.state
    }

    /// The buffer's state for the health check.
    pub fn health_detail(&self) -> (serde_json::Value, bool) {
        let buffered = self.buffered();
        let capacity = self.capacity();
        let detail = serde_json::json!({
            "buffered": buffered,
            "capacity": capacity,
            "batches": self.state.batches.load(Ordering::Relaxed),
            "failed_batches": self.state.failed_batches.load(Ordering::Relaxed),
            "last_error": self.state.last_error.lock().map(|error| error.clone()).unwrap_or_default(),
        });
        (detail, buffered * 10 >= capacity * 9)
    }
}

impl WriterState {
    fn apply(&self, limits: WriterLimits) {
        self.capacity
            .store(limits.capacity.max(1), Ordering::Relaxed);
        self.max_batch
            .store(limits.max_batch.max(1), Ordering::Relaxed);
        let linger = u64::try_from(limits.linger.as_micros()).unwrap_or(u64::MAX);
        self.linger_us.store(linger, Ordering::Relaxed);
    }
}

struct WriterTask<S: Sink> {
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Pending<S::Row>>>>,
    sink: S,
    state: Arc<WriterState>,
    metrics: IngestMetrics,
    feed: Option<Arc<Feed>>,
}

impl<S: Sink> WriterTask<S> {
    async fn run(self) {
        while let Some(batch) = self.next_batch().await {
            self.write(batch).await;
        }
    }

    /// Waits for the first request, then takes what else is queued, up to a batch.
    async fn next_batch(&self) -> Option<Vec<Pending<S::Row>>> {
        let mut receiver = self.receiver.lock().await;
        let first = receiver.recv().await?;
        let max_batch = self.state.max_batch.load(Ordering::Relaxed);
        let linger = Duration::from_micros(self.state.linger_us.load(Ordering::Relaxed));
        let mut size = first.weight;
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + linger;
        while size < max_batch {
            let next = match receiver.try_recv() {
                Ok(next) => next,
                Err(_) if linger.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(next)) => next,
                    _ => break,
                },
            };
            size += next.weight;
            batch.push(next);
        }
        Some(batch)
    }

    async fn write(&self, mut batch: Vec<Pending<S::Row>>) {
        let started = tokio::time::Instant::now();
        let total: usize = batch.iter().map(|pending| pending.rows.len()).sum();
        let mut rows = Vec::with_capacity(total);
        for pending in &mut batch {
            rows.append(&mut pending.rows);
        }
        let publish = self.feed.is_some() && self.state.publish.load(Ordering::Relaxed);
        let entry = if publish { S::feed_entry(&rows) } else { None };
        let result = self.sink.write(&rows, entry.as_ref()).await;
        drop((rows, entry));
        if let (Ok(Some(position)), Some(feed)) = (&result, &self.feed) {
            feed.advance(*position);
        }
        let result = result.map(drop);
        self.metrics
            .batch(S::SIGNAL, total, started.elapsed(), result.is_ok());
        self.state.batches.fetch_add(1, Ordering::Relaxed);
        let result = result.map_err(|error| {
            tracing::warn!(%error, signal = S::SIGNAL, items = total, "batch not written");
            self.state.failed_batches.fetch_add(1, Ordering::Relaxed);
            *self
                .state
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(format!("{} at {}", error, self.sink.clock().now_micros()));
            Arc::new(error)
        });
        for pending in batch {
            // A caller that gave up is gone; its rows are written all the same.
            let _ = pending.done.send(result.clone());
        }
    }
}
