//! [`PointWriter`]: the write path after validation. Callers hand over their points and wait;
//! writer tasks take everything queued (up to a batch), write it in one transaction and then
//! answer every caller of that batch, so an answer always means committed. Memory is bounded by a
//! count of buffered points: a request that does not fit is refused at once with
//! RESOURCE_EXHAUSTED instead of queueing without limit. The bound, the batch size and the linger
//! are live settings.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pharos_store::metrics::{MetricsRepository, PointRow};
use pharos_store::{StoreError, now_micros};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::{IngestError, Result};
use crate::metrics::IngestMetrics;
use crate::settings::BufferSettings;

const DAY_US: i64 = 86_400_000_000;

/// Points of one request, waiting for their batch.
struct Pending {
    points: Vec<PointRow>,
    _reservation: Reservation,
    done: oneshot::Sender<Result<(), Arc<StoreError>>>,
}

/// Points counted in the buffer until dropped (when their batch is answered).
struct Reservation {
    buffered: Arc<AtomicUsize>,
    points: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.buffered.fetch_sub(self.points, Ordering::AcqRel);
    }
}

pub struct PointWriter {
    queue: mpsc::UnboundedSender<Pending>,
    buffered: Arc<AtomicUsize>,
    retry_after: Duration,
    state: Arc<WriterState>,
    repository: MetricsRepository,
}

/// What the writers share and the health check reads.
pub struct WriterState {
    /// Live: the most points waiting to be committed.
    capacity: AtomicUsize,
    /// Live: the most points in one transaction.
    max_batch: AtomicUsize,
    /// Live: microseconds a writer waits for more points before writing a short batch.
    linger_us: AtomicU64,
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
        let state = Arc::new(WriterState {
            capacity: AtomicUsize::new(0),
            max_batch: AtomicUsize::new(0),
            linger_us: AtomicU64::new(0),
            partitions: std::sync::Mutex::default(),
            batches: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            last_error: std::sync::Mutex::new(None),
        });
        state.apply(settings);
        for _ in 0..settings.writers.max(1) {
            let task = WriterTask {
                receiver: receiver.clone(),
                repository: repository.clone(),
                state: state.clone(),
                metrics: metrics.clone(),
            };
            tokio::spawn(task.run());
        }
        Self {
            queue,
            buffered: Arc::new(AtomicUsize::new(0)),
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
        let reservation = self.reserve(points.len())?;
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Pending {
                points,
                _reservation: reservation,
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

    /// Counts `points` into the buffer, or refuses when they do not fit.
    fn reserve(&self, points: usize) -> Result<Reservation> {
        let capacity = self.capacity();
        self.buffered
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |buffered| {
                (buffered + points <= capacity).then_some(buffered + points)
            })
            .map_err(|buffered| IngestError::Overloaded {
                buffered,
                retry_after: self.retry_after,
            })?;
        Ok(Reservation {
            buffered: self.buffered.clone(),
            points,
        })
    }

    /// Points accepted and not yet committed.
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Acquire)
    }

    pub fn capacity(&self) -> usize {
        self.state.capacity.load(Ordering::Relaxed)
    }

    /// Takes new buffer settings (all but `writers` and the series cache, which need a restart).
    pub fn apply(&self, settings: &BufferSettings) {
        self.state.apply(settings);
    }

    pub fn state(&self) -> &WriterState {
        &self.state
    }

    /// Forgets which day partitions exist (after expiry dropped some), so the next batch checks.
    pub fn forget_partitions(&self) {
        self.state
            .partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Creates the day partitions for `from_us..=to_us` ahead of the data (PostgreSQL).
    pub async fn prepare_partitions(&self, from_us: i64, to_us: i64) -> Result<(), StoreError> {
        prepare(&self.repository, &self.state, from_us, to_us).await
    }
}

impl WriterState {
    fn apply(&self, settings: &BufferSettings) {
        self.capacity
            .store(settings.max_buffered_points.max(1), Ordering::Relaxed);
        self.max_batch
            .store(settings.max_batch_points.max(1), Ordering::Relaxed);
        let linger = u64::try_from(settings.linger.as_micros()).unwrap_or(u64::MAX);
        self.linger_us.store(linger, Ordering::Relaxed);
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
        let max_batch = self.state.max_batch.load(Ordering::Relaxed);
        let linger = Duration::from_micros(self.state.linger_us.load(Ordering::Relaxed));
        let mut size = first.points.len();
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
