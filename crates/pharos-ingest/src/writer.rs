//! [`PointWriter`]: the write path after validation. Callers hand over their points and wait;
//! writer tasks take everything queued (up to a batch), write it in one transaction and then
//! answer every caller of that batch, so an answer always means committed. Memory is bounded by a
//! semaphore counted in points: a request that does not fit is refused at once with
//! RESOURCE_EXHAUSTED instead of queueing without limit.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pharos_store::metrics::{MetricsRepository, PointRow};
use pharos_store::{StoreError, now_micros};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::error::{IngestError, Result};
use crate::metrics::IngestMetrics;
use crate::settings::BufferSettings;

const DAY_US: i64 = 86_400_000_000;

/// Points of one request, waiting for their batch.
struct Pending {
    points: Vec<PointRow>,
    _permit: OwnedSemaphorePermit,
    done: oneshot::Sender<Result<(), Arc<StoreError>>>,
}

pub struct PointWriter {
    queue: mpsc::UnboundedSender<Pending>,
    permits: Arc<Semaphore>,
    max_buffered: usize,
    retry_after: Duration,
    state: Arc<WriterState>,
    repository: MetricsRepository,
}

/// What the writers share and the health check reads.
#[derive(Default)]
pub struct WriterState {
    /// Days whose partition is known to exist.
    partitions: std::sync::Mutex<HashSet<i64>>,
    pub batches: AtomicU64,
    pub failed_batches: AtomicU64,
    pub last_error: std::sync::Mutex<Option<String>>,
}

impl PointWriter {
    /// Starts `settings.writers` writer tasks. They end when the writer is dropped and its queue
    /// has drained.
    pub fn start(
        repository: MetricsRepository,
        settings: &BufferSettings,
        retry_after: Duration,
        metrics: IngestMetrics,
    ) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let state = Arc::new(WriterState::default());
        for _ in 0..settings.writers.max(1) {
            let task = WriterTask {
                receiver: receiver.clone(),
                repository: repository.clone(),
                max_batch: settings.max_batch_points.max(1),
                linger: settings.linger,
                state: state.clone(),
                metrics: metrics.clone(),
            };
            tokio::spawn(task.run());
        }
        Self {
            queue,
            permits: Arc::new(Semaphore::new(settings.max_buffered_points.max(1))),
            max_buffered: settings.max_buffered_points.max(1),
            retry_after,
            state,
            repository,
        }
    }

    /// Writes `points` and returns once they are committed.
    pub async fn write(&self, points: Vec<PointRow>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let wanted = u32::try_from(points.len()).unwrap_or(u32::MAX);
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| IngestError::Overloaded {
                buffered: self.buffered(),
                retry_after: self.retry_after,
            })?;
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Pending {
                points,
                _permit: permit,
                done,
            })
            .map_err(|_| IngestError::ShuttingDown {
                retry_after: self.retry_after,
            })?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(IngestError::Unavailable {
                source,
                retry_after: self.retry_after,
            }),
            Err(_) => Err(IngestError::ShuttingDown {
                retry_after: self.retry_after,
            }),
        }
    }

    /// Points accepted and not yet committed.
    pub fn buffered(&self) -> usize {
        self.max_buffered - self.permits.available_permits()
    }

    pub fn capacity(&self) -> usize {
        self.max_buffered
    }

    pub fn state(&self) -> &WriterState {
        &self.state
    }

    /// Creates the day partitions for `from_us..=to_us` ahead of the data (PostgreSQL).
    pub async fn prepare_partitions(&self, from_us: i64, to_us: i64) -> Result<(), StoreError> {
        prepare(&self.repository, &self.state, from_us, to_us).await
    }
}

async fn prepare(
    repository: &MetricsRepository,
    state: &WriterState,
    from_us: i64,
    to_us: i64,
) -> Result<(), StoreError> {
    let (first, last) = (from_us.div_euclid(DAY_US), to_us.div_euclid(DAY_US));
    let known = {
        let partitions = state
            .partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (first..=last).all(|day| partitions.contains(&day))
    };
    if known {
        return Ok(());
    }
    let created = repository.ensure_partitions(from_us, to_us).await?;
    if created > 0 {
        tracing::info!(
            created,
            from_day = first,
            to_day = last,
            "created metric point partitions"
        );
    }
    let mut partitions = state
        .partitions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    partitions.extend(first..=last);
    Ok(())
}

struct WriterTask {
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    repository: MetricsRepository,
    max_batch: usize,
    linger: Duration,
    state: Arc<WriterState>,
    metrics: IngestMetrics,
}

impl WriterTask {
    async fn run(self) {
        while let Some(batch) = self.next_batch().await {
            self.write(batch).await;
        }
    }

    /// Waits for the first request, then takes what else is queued, up to a batch.
    async fn next_batch(&self) -> Option<Vec<Pending>> {
        let mut receiver = self.receiver.lock().await;
        let first = receiver.recv().await?;
        let mut size = first.points.len();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + self.linger;
        while size < self.max_batch {
            let next = match receiver.try_recv() {
                Ok(next) => next,
                Err(_) if self.linger.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(next)) => next,
                    _ => break,
                },
            };
            size += next.points.len();
            batch.push(next);
        }
        Some(batch)
    }

    async fn write(&self, batch: Vec<Pending>) {
        let started = Instant::now();
        let total: usize = batch.iter().map(|pending| pending.points.len()).sum();
        let mut rows = Vec::with_capacity(total);
        let (mut oldest, mut newest) = (i64::MAX, i64::MIN);
        for pending in &batch {
            for point in &pending.points {
                oldest = oldest.min(point.time_us);
                newest = newest.max(point.time_us);
            }
            rows.extend_from_slice(&pending.points);
        }
        let result = match prepare(&self.repository, &self.state, oldest, newest).await {
            Ok(()) => self.repository.insert_points(&rows).await,
            Err(error) => Err(error),
        };
        self.metrics.batch(total, started.elapsed(), result.is_ok());
        self.state.batches.fetch_add(1, Ordering::Relaxed);
        let result = result.map_err(|error| {
            tracing::warn!(%error, points = total, "metric batch not written");
            self.state.failed_batches.fetch_add(1, Ordering::Relaxed);
            *self
                .state
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(format!("{} at {}", error, now_micros()));
            Arc::new(error)
        });
        for pending in batch {
            // A caller that gave up is gone; its points are written all the same.
            let _ = pending.done.send(result.clone());
        }
    }
}
