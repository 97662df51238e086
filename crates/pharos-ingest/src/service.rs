//! [`IngestService`]: validate, resolve series, write, answer, for every signal. Partial
//! success: every bad item is reported with its reason and the good ones are stored; the answer
//! comes once they are committed. Background tasks keep partitions ahead of the data, roll up
//! metric hours and expire data past its retention.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use pharos_proto::ingest::v1 as pb;
use pharos_runtime::Shutdown;
use pharos_runtime::error::FieldViolation;
use pharos_runtime::health::{BoxFuture, ComponentHealth, HealthCheck};
use pharos_store::Expired;
use pharos_store::signals::feed::FeedSignal;
use pharos_store::signals::logs::LogsRepository;
use pharos_store::signals::metrics::{Compacted, MetricsRepository, NewSeries, PointRow, RolledUp};
use pharos_store::signals::security_events::SecurityEventsRepository;
use pharos_store::signals::spans::SpansRepository;
use pharos_store::{Store, StoreError};

use crate::error::{IngestError, Result};
use crate::feed::Feed;
use crate::metrics::IngestMetrics;
use crate::records::{LogItem, SecurityEventItem, SpanItem};
use crate::series::{Resolved, SeriesResolver};
use crate::settings::{BufferSettings, FeedSettings, IngestSettings, RecordBufferSettings};
use crate::validate::{Rejection, Validator};
use crate::writer::{BatchWriter, Sink, WriterLimits};

/// How often the partitions ahead of the data are checked.
const PARTITION_INTERVAL: Duration = Duration::from_secs(3600);
/// Days of partitions kept ready ahead of today.
const PARTITION_DAYS_AHEAD: i64 = 2;
const DAY_US: i64 = 86_400_000_000;

/// What a write did: items stored and items refused with their reasons (by position).
#[derive(Debug, Default)]
pub struct Outcome {
    pub accepted: u64,
    pub rejections: Vec<Rejection>,
}

impl Outcome {
    fn parts(self) -> (u64, u64, Vec<pb::Rejection>) {
        let rejected = self.rejections.len() as u64;
        (
            self.accepted,
            rejected,
            self.rejections
                .into_iter()
                .map(pb::Rejection::from)
                .collect(),
        )
    }
}

macro_rules! into_response {
    ($($response:ident),*) => {$(
        impl From<Outcome> for pb::$response {
            fn from(outcome: Outcome) -> Self {
                let (accepted, rejected, rejections) = outcome.parts();
                pb::$response { accepted, rejected, rejections }
            }
        }
    )*};
}
into_response!(
    WriteMetricsResponse,
    WriteSpansResponse,
    WriteLogsResponse,
    WriteSecurityEventsResponse
);

/// What one retention pass removed, by signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub metrics: Expired,
    pub rollups: Expired,
    pub spans: Expired,
    pub logs: Expired,
    pub security_events: Expired,
}

pub struct IngestService {
    metrics_repository: MetricsRepository,
    spans_repository: SpansRepository,
    logs_repository: LogsRepository,
    security_repository: SecurityEventsRepository,
    /// Live: replaced whole when a `pharos.ingest.limits.*` key changes.
    validator: ArcSwap<Validator>,
    /// The settings in effect.
    settings: ArcSwap<IngestSettings>,
    series: SeriesResolver,
    points: BatchWriter<MetricsRepository>,
    spans: BatchWriter<SpansRepository>,
    logs: BatchWriter<LogsRepository>,
    security_events: BatchWriter<SecurityEventsRepository>,
    feed: Arc<Feed>,
    metrics: IngestMetrics,
}

/// Applies `settings` to the writers and tells the feed: a signal is marked unpublished before
/// its writer stops publishing, and published after it starts, so that a subscriber never
/// waits on batches that commit without feed rows.
fn publish(
    feed: &Feed,
    points: &BatchWriter<MetricsRepository>,
    security_events: &BatchWriter<SecurityEventsRepository>,
    settings: &FeedSettings,
) {
    for (signal, published) in [
        (FeedSignal::Metrics, settings.metrics),
        (FeedSignal::SecurityEvents, settings.security_events),
    ] {
        if !published {
            feed.set_published(signal, false);
        }
    }
    points.publish(settings.metrics);
    security_events.publish(settings.security_events);
    feed.set_published(FeedSignal::Metrics, settings.metrics);
    feed.set_published(FeedSignal::SecurityEvents, settings.security_events);
}

fn point_limits(settings: &BufferSettings) -> WriterLimits {
    WriterLimits {
        capacity: settings.max_buffered_points,
        max_batch: settings.max_batch_points,
        linger: settings.linger,
    }
}

fn record_limits(settings: &RecordBufferSettings) -> WriterLimits {
    WriterLimits {
        capacity: settings.max_buffered_bytes,
        max_batch: settings.max_batch_bytes,
        linger: settings.linger,
    }
}

impl IngestService {
    /// Loads series counts, prepares partitions for the accepted time window and starts the
    /// writers and the background tasks.
    pub async fn start(
        store: Store,
        settings: IngestSettings,
        shutdown: Shutdown,
    ) -> Result<Arc<Self>> {
        let metrics_repository = store.metrics();
        let spans_repository = store.spans();
        let logs_repository = store.logs();
        let security_repository = store.security_events();
        let feed = Feed::start(store, shutdown.clone())
            .await
            .map_err(|source| IngestError::store(source, settings.retry_after))?;
        let metrics = IngestMetrics::new();
        let series = SeriesResolver::load(
            metrics_repository.clone(),
            settings.metrics.series_cache_capacity,
            settings.limits.max_series_per_metric,
            settings.retry_after,
        )
        .await?;
        let retry_after = settings.retry_after;
        let points = BatchWriter::start(
            metrics_repository.clone(),
            point_limits(&settings.metrics),
            settings.metrics.writers,
            retry_after,
            metrics.clone(),
            Some(feed.clone()),
        );
        let spans = BatchWriter::start(
            spans_repository.clone(),
            record_limits(&settings.spans),
            settings.spans.writers,
            retry_after,
            metrics.clone(),
            None,
        );
        let logs = BatchWriter::start(
            logs_repository.clone(),
            record_limits(&settings.logs),
            settings.logs.writers,
            retry_after,
            metrics.clone(),
            None,
        );
        let security_events = BatchWriter::start(
            security_repository.clone(),
            record_limits(&settings.security_events),
            settings.security_events.writers,
            retry_after,
            metrics.clone(),
            Some(feed.clone()),
        );
        publish(&feed, &points, &security_events, &settings.feed);
        let service = Arc::new(Self {
            metrics_repository,
            spans_repository,
            logs_repository,
            security_repository,
            validator: ArcSwap::from_pointee(Validator::new(settings.limits.clone())),
            settings: ArcSwap::from_pointee(settings.clone()),
            series,
            points,
            spans,
            logs,
            security_events,
            feed,
            metrics,
        });
        service
            .prepare_partitions()
            .await
            .map_err(|source| IngestError::store(source, retry_after))?;
        service.spawn_every(
            &shutdown,
            |_| PARTITION_INTERVAL,
            "partitions ahead",
            |service| Box::pin(async move { service.prepare_partitions().await.map(drop) }),
        );
        service.spawn_every(
            &shutdown,
            |settings| settings.retention.rollup_interval,
            "rollup",
            |service| Box::pin(async move { service.roll_up().await.map(drop) }),
        );
        service.spawn_every(
            &shutdown,
            |settings| settings.retention.compaction_interval,
            "compaction",
            |service| Box::pin(async move { service.compact().await.map(drop) }),
        );
        service.spawn_every(
            &shutdown,
            |settings| (settings.feed.retention / 4).max(Duration::from_secs(1)),
            "feed expiry",
            |service| {
                Box::pin(async move {
                    let retention = service.settings.load().feed.retention;
                    let deleted = service.feed.expire(retention).await?;
                    tracing::debug!(deleted, "expired committed-data feed batches");
                    Ok(())
                })
            },
        );
        service.spawn_every(
            &shutdown,
            |settings| settings.retention.interval,
            "retention",
            |service| Box::pin(async move { service.apply_retention().await.map(drop) }),
        );
        Ok(service)
    }

    /// Runs `task` every `interval` (read from the live settings each time) until shutdown or
    /// until the service is dropped; failures are logged and retried at the next interval.
    fn spawn_every(
        self: &Arc<Self>,
        shutdown: &Shutdown,
        interval: fn(&IngestSettings) -> Duration,
        name: &'static str,
        task: fn(Arc<Self>) -> BoxFuture<'static, Result<(), StoreError>>,
    ) {
        let weak = Arc::downgrade(self);
        let stop = shutdown.clone();
        shutdown.spawn(async move {
            let shutdown = stop;
            while let Some(every) = weak
                .upgrade()
                .map(|service| interval(&service.settings.load()))
            {
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(every) => {}
                }
                let Some(service) = weak.upgrade() else { break };
                if let Err(error) = task(service).await {
                    tracing::warn!(%error, task = name, "background task failed; will retry at the next interval");
                }
            }
        });
    }

    /// Rolls up the metric hours that are complete and pending, and logs what it did.
    pub async fn roll_up(&self) -> Result<RolledUp, StoreError> {
        let done = self
            .metrics_repository
            .roll_up(self.metrics_repository.store().clock().now_micros())
            .await?;
        if done.hours > 0 {
            tracing::info!(
                hours = done.hours,
                hourly_rows = done.hourly_rows,
                "rolled up metric hours"
            );
        }
        Ok(done)
    }

    /// Compacts the metric windows that ended and are pending into chunks, and logs what it
    /// did.
    pub async fn compact(&self) -> Result<Compacted, StoreError> {
        let done = self
            .metrics_repository
            .compact(self.metrics_repository.store().clock().now_micros())
            .await?;
        if done.windows > 0 {
            tracing::info!(
                windows = done.windows,
                chunks = done.chunks,
                points = done.points,
                bytes = done.bytes,
                "compacted metric windows into chunks"
            );
        }
        Ok(done)
    }

    /// Removes data past its retention now, and logs what went.
    pub async fn apply_retention(&self) -> Result<RetentionReport, StoreError> {
        let retention = self.settings.load().retention.clone();
        let now_us = self.metrics_repository.store().clock().now_micros();
        let cut_us = |age: Duration| {
            now_us.saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX))
        };
        let cut_ns = |age: Duration| cut_us(age).saturating_mul(1_000);
        tracing::info!(?retention, "expiring data past its retention");
        let report = RetentionReport {
            metrics: self
                .metrics_repository
                .expire_points(cut_us(retention.metrics_raw))
                .await?,
            rollups: self
                .metrics_repository
                .expire_rollups(
                    cut_us(retention.metrics_hourly),
                    cut_us(retention.metrics_daily),
                )
                .await?,
            spans: self
                .spans_repository
                .expire(
                    cut_ns(retention.traces),
                    cut_ns(retention.traces_with_errors),
                )
                .await?,
            logs: self.logs_repository.expire(cut_ns(retention.logs)).await?,
            security_events: self
                .security_repository
                .expire(
                    cut_ns(retention.security_high),
                    cut_ns(retention.security_other),
                )
                .await?,
        };
        tracing::info!(?report, "expired data past its retention");
        Ok(report)
    }

    /// Partitions for every day a valid item can fall in, and a few days ahead.
    async fn prepare_partitions(&self) -> Result<(), StoreError> {
        let now = self.metrics_repository.store().clock().now_micros();
        let max_age =
            i64::try_from(self.validator.load().limits().max_age.as_micros()).unwrap_or(i64::MAX);
        let (from, to) = (
            now.saturating_sub(max_age),
            now.saturating_add(PARTITION_DAYS_AHEAD * DAY_US),
        );
        self.metrics_repository.ensure_partitions(from, to).await?;
        let (from, to) = (from.saturating_mul(1_000), to.saturating_mul(1_000));
        self.spans_repository.ensure_partitions(from, to).await?;
        self.logs_repository.ensure_partitions(from, to).await?;
        self.security_repository.ensure_partitions(from, to).await?;
        Ok(())
    }

    /// Refuses a request with more items than allowed.
    fn check_count(&self, field: &str, count: usize) -> Result<()> {
        let limit = self.validator.load().limits().max_items_per_request;
        if count > limit {
            return Err(IngestError::InvalidArgument(vec![FieldViolation::new(
                field,
                format!(
                    "{count} items in one request; at most {limit} are allowed, split the batch"
                ),
            )]));
        }
        Ok(())
    }

    pub async fn write_metrics(&self, request: pb::WriteMetricsRequest) -> Result<Outcome> {
        self.check_count("points", request.points.len())?;
        if request.points.len() > self.points.capacity() {
            return Err(IngestError::InvalidArgument(vec![FieldViolation::new(
                "points",
                format!(
                    "{} points is more than the whole write buffer ({}); split the batch",
                    request.points.len(),
                    self.points.capacity()
                ),
            )]));
        }
        let validator = self.validator.load_full();
        let now = self.metrics_repository.store().clock().now_micros();
        let mut rejections: Vec<Rejection> = Vec::new();
        let mut valid = Vec::with_capacity(request.points.len());
        for (index, point) in request.points.into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            match validator.metric_point(index, point, now) {
                Ok(point) => valid.push((index, point)),
                Err(rejection) => rejections.push(rejection),
            }
        }

        let wanted: Vec<&NewSeries> = valid.iter().map(|(_, point)| &point.series).collect();
        let resolved = self.series.resolve(&wanted).await?;
        let mut rows = Vec::with_capacity(valid.len());
        for ((index, point), resolved) in valid.into_iter().zip(resolved) {
            match resolved {
                Resolved::Id(series_id) => rows.push(PointRow { series_id, time_us: point.time_us, value: point.value }),
                Resolved::OverLimit => rejections.push(Rejection::new(
                    index,
                    "labels",
                    "CARDINALITY_LIMIT",
                    format!(
                        "metric {:?} has reached its limit of {} series; this label set would be a new one",
                        point.series.key.name,
                        validator.limits().max_series_per_metric
                    ),
                )),
            }
        }
        self.commit(&self.points, rows, rejections).await
    }

    pub async fn write_spans(&self, items: Vec<SpanItem>) -> Result<Outcome> {
        self.check_count("spans", items.len())?;
        let validator = self.validator.load_full();
        let now = self.metrics_repository.store().clock().now_micros();
        let (rows, rejections) =
            validate_all(items, |index, item| validator.span(index, item, now));
        self.commit(&self.spans, rows, rejections).await
    }

    pub async fn write_logs(&self, items: Vec<LogItem>) -> Result<Outcome> {
        self.check_count("records", items.len())?;
        let validator = self.validator.load_full();
        let now = self.metrics_repository.store().clock().now_micros();
        let (rows, rejections) =
            validate_all(items, |index, item| validator.log_record(index, item, now));
        self.commit(&self.logs, rows, rejections).await
    }

    pub async fn write_security_events(&self, items: Vec<SecurityEventItem>) -> Result<Outcome> {
        self.check_count("events", items.len())?;
        let validator = self.validator.load_full();
        let now = self.metrics_repository.store().clock().now_micros();
        let (rows, rejections) = validate_all(items, |index, item| {
            validator.security_event(index, item, now)
        });
        self.commit(&self.security_events, rows, rejections).await
    }

    /// Writes the valid rows of a request and counts the outcome.
    async fn commit<S: Sink>(
        &self,
        writer: &BatchWriter<S>,
        rows: Vec<S::Row>,
        mut rejections: Vec<Rejection>,
    ) -> Result<Outcome> {
        let weight: usize = rows.iter().map(S::weight).sum();
        if weight > writer.capacity() {
            return Err(IngestError::InvalidArgument(vec![FieldViolation::new(
                S::SIGNAL,
                format!(
                    "the request needs {weight} of the {} write buffer's {}; split the batch",
                    S::SIGNAL,
                    writer.capacity()
                ),
            )]));
        }
        let accepted = rows.len();
        writer.write(rows).await?;
        self.metrics.accepted(S::SIGNAL, accepted);
        for rejection in &rejections {
            self.metrics.rejected(S::SIGNAL, rejection.reason);
        }
        rejections.sort_by_key(|rejection| rejection.index);
        Ok(Outcome {
            accepted: accepted as u64,
            rejections,
        })
    }

    /// Applies new settings while running (live settings). The number of writers and the size of
    /// the series cache keep their start-up values until a restart.
    pub fn apply_settings(&self, settings: &IngestSettings) {
        let running = self.settings.load();
        if settings.metrics.writers != running.metrics.writers
            || settings.spans.writers != running.spans.writers
            || settings.logs.writers != running.logs.writers
            || settings.security_events.writers != running.security_events.writers
            || settings.metrics.series_cache_capacity != running.metrics.series_cache_capacity
        {
            tracing::warn!(
                "ingest.*.writers and ingest.metrics.series_cache_capacity take effect at the next restart"
            );
        }
        self.validator
            .store(Arc::new(Validator::new(settings.limits.clone())));
        self.series.set_limit(settings.limits.max_series_per_metric);
        self.points.apply(point_limits(&settings.metrics));
        self.spans.apply(record_limits(&settings.spans));
        self.logs.apply(record_limits(&settings.logs));
        self.security_events
            .apply(record_limits(&settings.security_events));
        publish(
            &self.feed,
            &self.points,
            &self.security_events,
            &settings.feed,
        );
        self.settings.store(Arc::new(settings.clone()));
    }

    /// The settings in effect (start-up values with live changes applied).
    pub fn settings(&self) -> Arc<IngestSettings> {
        self.settings.load_full()
    }

    /// The committed-data feed (the alert service subscribes to it in process).
    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    /// Points accepted and waiting for their batch to commit.
    /// How many metric points the write buffer holds at most.
    pub fn points_capacity(&self) -> usize {
        self.points.capacity()
    }

    pub fn buffered_points(&self) -> usize {
        self.points.buffered()
    }

    /// Series of a metric name this replica knows of (for the cardinality limit).
    pub fn series_count(&self, name: &str) -> u64 {
        self.series.series_count(name)
    }

    pub fn health_checks(self: &Arc<Self>) -> Vec<Arc<dyn HealthCheck>> {
        vec![Arc::new(WriterCheck(self.clone()))]
    }
}

/// Validates every item: the valid ones as rows, the rest as rejections.
fn validate_all<I, R>(
    items: Vec<I>,
    validate: impl Fn(u32, I) -> Result<R, Rejection>,
) -> (Vec<R>, Vec<Rejection>) {
    let mut rows = Vec::with_capacity(items.len());
    let mut rejections = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match validate(u32::try_from(index).unwrap_or(u32::MAX), item) {
            Ok(row) => rows.push(row),
            Err(rejection) => rejections.push(rejection),
        }
    }
    (rows, rejections)
}

/// The write buffers: how full they are and whether batches are failing.
struct WriterCheck(Arc<IngestService>);

impl HealthCheck for WriterCheck {
    fn name(&self) -> &str {
        "ingest_writer"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let service = &self.0;
            let writers = [
                ("metrics", service.points.health_detail()),
                ("spans", service.spans.health_detail()),
                ("logs", service.logs.health_detail()),
                ("security_events", service.security_events.health_detail()),
            ];
            let nearly_full = writers.iter().any(|(_, (_, full))| *full);
            let detail: serde_json::Map<String, serde_json::Value> = writers
                .into_iter()
                .map(|(signal, (detail, _))| (signal.to_owned(), detail))
                .collect();
            if nearly_full {
                ComponentHealth::degraded(serde_json::Value::Object(detail))
            } else {
                ComponentHealth::ok(serde_json::Value::Object(detail))
            }
        })
    }
}
