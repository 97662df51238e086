//! [`IngestService`]: validate, resolve series, write, answer. Partial success: every bad item is
//! reported with its reason and the good ones are stored; the answer comes once they are committed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arc_swap::ArcSwap;
use pharos_proto::ingest::v1 as pb;
use pharos_runtime::Shutdown;
use pharos_runtime::error::FieldViolation;
use pharos_runtime::health::{BoxFuture, ComponentHealth, HealthCheck};
use pharos_store::metrics::{MetricsRepository, NewSeries, PointRow};
use pharos_store::{Store, now_micros};

use crate::error::{IngestError, Result};
use crate::metrics::IngestMetrics;
use crate::series::{Resolved, SeriesResolver};
use crate::settings::IngestSettings;
use crate::validate::{Rejection, ValidPoint, Validator};
use crate::writer::PointWriter;

/// How often the day partitions ahead of the data are checked.
const PARTITION_INTERVAL: Duration = Duration::from_secs(3600);
/// Days of partitions kept ready ahead of today.
const PARTITION_DAYS_AHEAD: i64 = 2;

pub struct IngestService {
    repository: MetricsRepository,
    /// Live: replaced whole when a `pharos.ingest.limits.*` key changes.
    validator: ArcSwap<Validator>,
    /// The settings in effect.
    settings: ArcSwap<IngestSettings>,
    series: SeriesResolver,
    writer: PointWriter,
    metrics: IngestMetrics,
}

impl IngestService {
    /// Loads series counts, prepares partitions for the accepted time window and starts the
    /// writers.
    pub async fn start(
        store: Store,
        settings: IngestSettings,
        shutdown: Shutdown,
    ) -> Result<Arc<Self>> {
        let repository = MetricsRepository::new(store);
        let metrics = IngestMetrics::new();
        let series = SeriesResolver::load(
            repository.clone(),
            settings.metrics.series_cache_capacity,
            settings.limits.max_series_per_metric,
            settings.retry_after,
        )
        .await?;
        let writer = PointWriter::start(
            repository.clone(),
            &settings.metrics,
            settings.retry_after,
            metrics.clone(),
        );
        let service = Arc::new(Self {
            repository,
            validator: ArcSwap::from_pointee(Validator::new(settings.limits.clone())),
            settings: ArcSwap::from_pointee(settings.clone()),
            series,
            writer,
            metrics,
        });
        service
            .prepare_partitions()
            .await
            .map_err(|source| IngestError::unavailable(source, settings.retry_after))?;
        let weak = Arc::downgrade(&service);
        let service_shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(PARTITION_INTERVAL) => {}
                }
                let Some(service) = weak.upgrade() else { break };
                if let Err(error) = service.prepare_partitions().await {
                    tracing::warn!(%error, "cannot create metric point partitions ahead; will retry");
                }
            }
        });
        let weak = Arc::downgrade(&service);
        let stop = service_shutdown;
        tokio::spawn(async move {
            // The interval is read each time, so a live change takes effect at the next run.
            while let Some(interval) = weak
                .upgrade()
                .map(|service| service.settings.load().retention.interval)
            {
                tokio::select! {
                    () = stop.wait() => break,
                    () = tokio::time::sleep(interval) => {}
                }
                let Some(service) = weak.upgrade() else { break };
                if let Err(error) = service.apply_retention().await {
                    tracing::warn!(%error, "metric retention failed; will retry at the next interval");
                }
            }
        });
        Ok(service)
    }

    /// Removes data past its retention now, and logs what went.
    pub async fn apply_retention(
        &self,
    ) -> Result<pharos_store::metrics::Expired, pharos_store::StoreError> {
        let retention = self.settings.load().retention.metrics_raw;
        let cut =
            now_micros().saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
        tracing::info!(before_us = cut, retention = ?retention, "expiring raw metric points");
        let expired = self.repository.expire_points(cut).await?;
        if expired.partitions_dropped > 0 {
            self.writer.forget_partitions();
        }
        tracing::info!(
            partitions_dropped = expired.partitions_dropped,
            rows_deleted = expired.rows_deleted,
            "raw metric points expired"
        );
        Ok(expired)
    }

    /// Partitions for every day a valid point can fall in, and a few days ahead.
    async fn prepare_partitions(&self) -> Result<(), pharos_store::StoreError> {
        let now = now_micros();
        let max_age =
            i64::try_from(self.validator.load().limits().max_age.as_micros()).unwrap_or(i64::MAX);
        let ahead = PARTITION_DAYS_AHEAD * 86_400_000_000;
        self.writer
            .prepare_partitions(now.saturating_sub(max_age), now.saturating_add(ahead))
            .await
    }

    pub async fn write_metrics(
        &self,
        request: pb::WriteMetricsRequest,
    ) -> Result<pb::WriteMetricsResponse> {
        let validator = self.validator.load_full();
        let limit = validator.limits().max_items_per_request;
        if request.points.len() > limit {
            return Err(IngestError::InvalidArgument(vec![FieldViolation::new(
                "points",
                format!(
                    "{} points in one request; at most {limit} are allowed, split the batch",
                    request.points.len()
                ),
            )]));
        }
        if request.points.len() > self.writer.capacity() {
            return Err(IngestError::InvalidArgument(vec![FieldViolation::new(
                "points",
                format!(
                    "{} points is more than the whole write buffer ({}); split the batch",
                    request.points.len(),
                    self.writer.capacity()
                ),
            )]));
        }
        let now = now_micros();
        let mut rejections: Vec<Rejection> = Vec::new();
        let mut valid: Vec<(u32, ValidPoint)> = Vec::with_capacity(request.points.len());
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
                Resolved::OverLimit => rejections.push(Rejection {
                    index,
                    field: "labels".to_owned(),
                    reason: "CARDINALITY_LIMIT",
                    message: format!(
                        "metric {:?} has reached its limit of {} series; this label set would be a new one",
                        point.series.key.name,
                        validator.limits().max_series_per_metric
                    ),
                }),
            }
        }

        let accepted = rows.len();
        self.writer.write(rows).await?;
        self.metrics.accepted("metrics", accepted);
        for rejection in &rejections {
            self.metrics.rejected("metrics", rejection.reason);
        }
        rejections.sort_by_key(|rejection| rejection.index);
        Ok(pb::WriteMetricsResponse {
            accepted: accepted as u64,
            rejected: rejections.len() as u64,
            rejections: rejections.into_iter().map(pb::Rejection::from).collect(),
        })
    }

    /// Applies new settings while running (live settings). The number of writers and the size of
    /// the series cache keep their start-up values until a restart.
    pub fn apply_settings(&self, settings: &IngestSettings) {
        let running = self.settings.load();
        if settings.metrics.writers != running.metrics.writers
            || settings.metrics.series_cache_capacity != running.metrics.series_cache_capacity
        {
            tracing::warn!(
                "ingest.metrics.writers and ingest.metrics.series_cache_capacity take effect at the next restart"
            );
        }
        self.validator
            .store(Arc::new(Validator::new(settings.limits.clone())));
        self.series.set_limit(settings.limits.max_series_per_metric);
        self.writer.apply(&settings.metrics);
        self.settings.store(Arc::new(settings.clone()));
    }

    /// The settings in effect (start-up values with live changes applied).
    pub fn settings(&self) -> Arc<IngestSettings> {
        self.settings.load_full()
    }

    /// Points accepted and waiting for their batch to commit.
    pub fn buffered_points(&self) -> usize {
        self.writer.buffered()
    }

    /// Series of a metric name this replica knows of (for the cardinality limit).
    pub fn series_count(&self, name: &str) -> u64 {
        self.series.series_count(name)
    }

    pub fn health_checks(self: &Arc<Self>) -> Vec<Arc<dyn HealthCheck>> {
        vec![Arc::new(WriterCheck(self.clone()))]
    }
}

/// The write buffer: how full it is and whether batches are failing.
struct WriterCheck(Arc<IngestService>);

impl HealthCheck for WriterCheck {
    fn name(&self) -> &str {
        "ingest_writer"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let writer = &self.0.writer;
            let state = writer.state();
            let buffered = writer.buffered();
            let detail = serde_json::json!({
                "buffered_points": buffered,
                "capacity_points": writer.capacity(),
                "batches": state.batches.load(Ordering::Relaxed),
                "failed_batches": state.failed_batches.load(Ordering::Relaxed),
                "last_error": state.last_error.lock().map(|error| error.clone()).unwrap_or_default(),
            });
            if buffered * 10 >= writer.capacity() * 9 {
                ComponentHealth::degraded(detail)
            } else {
                ComponentHealth::ok(detail)
            }
        })
    }
}
