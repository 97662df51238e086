//! [`QueryService`]: PromQL queries and series metadata over the store. A query is planned,
//! its data loaded through the [`StoreSource`] (a range function of a selector, `rate(x[5m])`,
//! evaluated over each read's series as it arrives) and evaluated on a blocking thread, all under
//! the query timeout: past it the load is dropped (its SQL with it) and the evaluation stops at
//! its next step. At most `max_concurrent` queries run at once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use pharos_clock::Clock;
use pharos_promql::{Abort, Engine, Labels, Matcher, PreparedQuery, QueryStats, Value};
use pharos_store::Store;
use tokio::sync::Semaphore;

use crate::error::{QueryError, Result};
use crate::head::Head;
use crate::settings::QuerySettings;
use crate::source::{StoreSource, StoredSeries};

/// What a query returns: its value, its figures and anything the caller should know.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryAnswer {
    pub value: Value,
    pub stats: QueryStats,
    pub warnings: Vec<String>,
}

/// A time range of a metadata request, in milliseconds; `None` for all time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// The query service; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct QueryService {
    engine: Engine,
    store: Store,
    source: StoreSource,
    head: Option<Arc<Head>>,
    settings: QuerySettings,
    clock: Clock,
    permits: Semaphore,
}

impl QueryService {
    /// The service; its selections within `head`'s window are answered from it.
    pub fn new(
        store: Store,
        settings: QuerySettings,
        clock: Clock,
        head: Option<Arc<Head>>,
    ) -> Arc<Self> {
        let source = StoreSource::new(store.clone(), &settings.series_cache);
        Arc::new(Self {
            engine: Engine::new(settings.engine()),
            source: match head.clone() {
                Some(head) => source.with_head(head),
                None => source,
            },
            head,
            store,
            permits: Semaphore::new(settings.max_concurrent),
            settings,
            clock,
        })
    }

    pub fn settings(&self) -> &QuerySettings {
        &self.settings
    }

    /// The head of recent points, when it is on.
    pub fn head(&self) -> Option<&Arc<Head>> {
        self.head.as_ref()
    }

    /// Now, in milliseconds since the Unix epoch: the default evaluation time.
    pub fn now_millis(&self) -> i64 {
        self.clock.now_micros().div_euclid(1000)
    }

    /// Evaluates `query` at `time` (milliseconds); `fresh_series` selects series from the
    /// series table, refreshing the selection cache, instead of reading the cache.
    pub async fn instant(
        &self,
        query: &str,
        time: i64,
        timeout: Option<Duration>,
        fresh_series: bool,
    ) -> Result<QueryAnswer> {
        let prepared = self.engine.prepare_instant(query, time)?;
        self.run(prepared, timeout, fresh_series).await
    }

    /// Evaluates `query` over `start..=end` every `step` (milliseconds).
    pub async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        timeout: Option<Duration>,
    ) -> Result<QueryAnswer> {
        let prepared = self.engine.prepare_range(query, start, end, step)?;
        self.run(prepared, timeout, false).await
    }

    async fn run(
        &self,
        prepared: PreparedQuery,
        timeout: Option<Duration>,
        fresh_series: bool,
    ) -> Result<QueryAnswer> {
        let timeout = timeout.map_or(self.settings.timeout, |t| t.min(self.settings.timeout));
        let abort = Abort::new();
        let work = async {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| QueryError::Internal)?;
            // Past the timeout below, the reads still running are dropped: each closes its
            // connection, and PostgreSQL stops its statement (see `StoreSource`).
            let source = if fresh_series {
                self.source.with_fresh_series().for_query()
            } else {
                self.source.for_query()
            };
            let started = tokio::time::Instant::now();
            let loaded = prepared.load_until(&source, &abort).await?;
            let load_time = started.elapsed();
            let evaluation_abort = abort.clone();
            let answer = tokio::task::spawn_blocking(move || loaded.evaluate(&evaluation_abort))
                .await
                .map_err(|error| {
                    tracing::error!(%error, "a query evaluation task failed");
                    QueryError::Internal
                })??;
            tracing::debug!(
                load_ms = load_time.as_secs_f64() * 1e3,
                evaluation_ms = (started.elapsed() - load_time).as_secs_f64() * 1e3,
                samples = answer.stats.samples_loaded,
                "query evaluated"
            );
            Ok::<_, QueryError>(answer)
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(answer) => {
                let answer = answer?;
                let mut warnings = Vec::new();
                if answer.stats.hourly_buckets_loaded > 0 {
                    warnings.push(format!(
                        "read from hourly rollups: {} hourly aggregates stood for the points of whole-hour windows (the same answer); set query.hourly_rollups = false to read the points",
                        answer.stats.hourly_buckets_loaded
                    ));
                }
                Ok(QueryAnswer {
                    value: answer.value,
                    stats: answer.stats,
                    warnings,
                })
            }
            Err(_) => {
                abort.abort();
                Err(QueryError::Timeout("query execution"))
            }
        }
    }

    /// The series matching any of `selectors` (with points in `range` when it is bounded),
    /// sorted by labels, at most `limit` (0: no limit). The flag says whether it was cut.
    pub async fn series(
        &self,
        selectors: &[String],
        range: TimeRange,
        limit: usize,
    ) -> Result<(Vec<Labels>, bool)> {
        if selectors.is_empty() {
            return Err(QueryError::invalid(
                "match[]",
                "no match[] parameter provided",
            ));
        }
        let mut found: BTreeSet<Labels> = BTreeSet::new();
        for series in self.select(selectors, range).await? {
            found.insert(series.labels);
        }
        Ok(truncate(found.into_iter().collect(), limit))
    }

    /// The label names of the series matching `selectors` (every series when there are none),
    /// sorted, at most `limit`.
    pub async fn label_names(
        &self,
        selectors: &[String],
        range: TimeRange,
        limit: usize,
    ) -> Result<(Vec<String>, bool)> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        for series in self.select_or_all(selectors, range).await? {
            names.extend(series.labels.iter().map(|label| label.name.clone()));
        }
        Ok(truncate(names.into_iter().collect(), limit))
    }

    /// The values of label `name` among the series matching `selectors` (every series when
    /// there are none), sorted, at most `limit`.
    pub async fn label_values(
        &self,
        name: &str,
        selectors: &[String],
        range: TimeRange,
        limit: usize,
    ) -> Result<(Vec<String>, bool)> {
        if !pharos_promql::is_valid_label_name(name) {
            return Err(QueryError::invalid(
                "label",
                format!("invalid label name: {name:?}"),
            ));
        }
        if name == pharos_promql::METRIC_NAME
            && selectors.is_empty()
            && range == TimeRange::default()
        {
            // Every metric name: one DISTINCT over the series table, no labels parsed.
            return Ok(truncate(self.store.metrics().metric_names().await?, limit));
        }
        let mut values: BTreeSet<String> = BTreeSet::new();
        for series in self.select_or_all(selectors, range).await? {
            if let Some(value) = series.labels.get(name) {
                values.insert(value.to_owned());
            }
        }
        Ok(truncate(values.into_iter().collect(), limit))
    }

    /// The metric names, sorted.
    pub async fn metric_names(&self) -> Result<Vec<String>> {
        Ok(self.store.metrics().metric_names().await?)
    }

    async fn select_or_all(
        &self,
        selectors: &[String],
        range: TimeRange,
    ) -> Result<Vec<StoredSeries>> {
        if selectors.is_empty() {
            let everything = self.source.matching_series(&[]).await?;
            return self.in_range(&everything, range).await;
        }
        self.select(selectors, range).await
    }

    async fn select(&self, selectors: &[String], range: TimeRange) -> Result<Vec<StoredSeries>> {
        let mut selected: Vec<StoredSeries> = Vec::new();
        for selector in selectors {
            let matchers: Vec<Matcher> = pharos_promql::parse_selector(selector)
                .map_err(|error| QueryError::invalid("match[]", error.to_string()))?;
            if matchers.iter().all(Matcher::matches_empty) {
                return Err(QueryError::invalid(
                    "match[]",
                    "match[] must contain at least one non-empty matcher",
                ));
            }
            let series = self.source.matching_series(&matchers).await?;
            selected.extend(self.in_range(&series, range).await?);
        }
        Ok(selected)
    }

    async fn in_range(
        &self,
        series: &[StoredSeries],
        range: TimeRange,
    ) -> Result<Vec<StoredSeries>> {
        if range.start.is_none() && range.end.is_none() {
            return Ok(series.to_vec());
        }
        let start = range.start.unwrap_or(i64::MIN / 1000);
        let end = range.end.unwrap_or(i64::MAX / 1000 - 1);
        Ok(self.source.with_points_in(series, start, end).await?)
    }
}

fn truncate<T>(mut items: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        (items, true)
    } else {
        (items, false)
    }
}
