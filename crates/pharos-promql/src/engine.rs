//! [`Engine`]: a query from text to [`Value`], in three steps a caller can also take one by one
//! ([`Engine::prepare`], [`PreparedQuery::load`], [`LoadedQuery::evaluate`]) to run the load
//! under a timeout and the evaluation on a blocking thread, as the query service does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::eval::{Evaluator, Grid, StepSeries};
use crate::plan::{self, Plan};
use crate::source::{HourlySeries, Selection, SeriesSource};
use crate::stream::{RangeCallBatches, SampleBudget};
use crate::types::{Series, Value};

/// The engine's limits and defaults, those of Prometheus unless said otherwise.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// How far back an instant selector looks for a sample (Prometheus' `--query.lookback-delta`).
    pub lookback_delta: Duration,
    /// The most samples a query may load and hold (Prometheus' `--query.max-samples`).
    pub max_samples: usize,
    /// The most points a range query may return per series.
    pub max_points_per_series: i64,
    /// The step of a subquery written without one (`x[1h:]`), Prometheus' global evaluation
    /// interval.
    pub default_subquery_step: Duration,
    /// Read `*_over_time` over whole hours at whole-hour steps from the source's hourly
    /// rollups, when it keeps them (the answer is the same, read from far fewer rows).
    pub hourly_rollups: bool,
    /// Threads a range function over many series (`rate(x[5m])` over thousands) spreads them
    /// over, this one included; 1 evaluates everything on the calling thread.
    pub evaluation_threads: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            max_points_per_series: 11_000,
            default_subquery_step: Duration::from_secs(60),
            hourly_rollups: true,
            evaluation_threads: 1,
        }
    }
}

/// The evaluation times of a query: one instant, or `start..=end` every `step` (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

/// Figures about one query, for logs, metrics and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Selections sent to the source.
    pub selections: usize,
    /// Series the source returned.
    pub series_loaded: usize,
    /// Samples the source returned.
    pub samples_loaded: usize,
    /// Hourly rollup buckets the source returned instead of samples.
    pub hourly_buckets_loaded: usize,
}

/// The answer to a query: its value and the figures of its run.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub value: Value,
    pub stats: QueryStats,
}

/// Set to stop an evaluation at its next step (after a timeout, or when the caller went away).
#[derive(Debug, Clone, Default)]
pub struct Abort(Arc<AtomicBool>);

impl Abort {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn abort(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_aborted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The PromQL engine. Cheap to clone; holds only its settings.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    settings: EngineSettings,
}

impl Engine {
    pub fn new(settings: EngineSettings) -> Self {
        Self { settings }
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Parses and plans `query` for one evaluation at `time` (milliseconds).
    pub fn prepare_instant(&self, query: &str, time: i64) -> Result<PreparedQuery> {
        self.prepare(
            query,
            Range {
                start: time,
                end: time,
                step: 1,
            },
            false,
        )
    }

    /// Parses and plans `query` for evaluations at `start..=end` every `step` (milliseconds).
    pub fn prepare_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<PreparedQuery> {
        if end < start {
            return Err(Error::InvalidParameter {
                parameter: "end",
                reason: "end timestamp must not be before start time".to_owned(),
            });
        }
        if step <= 0 {
            return Err(Error::InvalidParameter {
                parameter: "step",
                reason: "zero or negative query resolution step widths are not accepted. Try a positive integer".to_owned(),
            });
        }
        if (end - start) / step >= self.settings.max_points_per_series {
            return Err(Error::InvalidParameter {
                parameter: "step",
                reason: format!(
                    "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                    thousands(self.settings.max_points_per_series)
                ),
            });
        }
        self.prepare(query, Range { start, end, step }, true)
    }

    fn prepare(&self, query: &str, range: Range, is_range: bool) -> Result<PreparedQuery> {
        let plan = plan::plan(query, range, &self.settings)?;
        if is_range && !plan.returns_instant_vector_or_scalar() {
            return Err(Error::InvalidParameter {
                parameter: "query",
                reason: format!(
                    "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                    plan.type_name()
                ),
            });
        }
        Ok(PreparedQuery {
            settings: self.settings.clone(),
            plan,
            range,
            is_range,
        })
    }

    /// Evaluates `query` at `time` (milliseconds).
    pub async fn instant(
        &self,
        source: &dyn SeriesSource,
        query: &str,
        time: i64,
    ) -> Result<Answer> {
        let prepared = self.prepare_instant(query, time)?;
        prepared.load(source).await?.evaluate(&Abort::new())
    }

    /// Evaluates `query` at `start..=end` every `step` (milliseconds).
    pub async fn range(
        &self,
        source: &dyn SeriesSource,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Answer> {
        let prepared = self.prepare_range(query, start, end, step)?;
        prepared.load(source).await?.evaluate(&Abort::new())
    }
}

/// A parsed and planned query, ready to load its data.
#[derive(Debug)]
pub struct PreparedQuery {
    settings: EngineSettings,
    plan: Plan,
    range: Range,
    is_range: bool,
}

impl PreparedQuery {
    /// What the query will ask of the source, one selection per selector.
    pub fn selections(&self) -> Vec<Selection> {
        self.plan
            .selectors()
            .iter()
            .map(|selector| selector.selection.clone())
            .collect()
    }

    /// Loads the series of every selector from `source`, all selections at once: hourly
    /// rollups for the selectors planned for them when the source keeps them, points otherwise;
    /// a range function whose selector is streamed (`rate(x[5m])` on the query's own grid) is
    /// evaluated over each batch of series as the source reads it.
    pub async fn load(self, source: &dyn SeriesSource) -> Result<LoadedQuery> {
        self.load_until(source, &Abort::new()).await
    }

    /// [`PreparedQuery::load`], stopping the functions evaluated while loading once `abort` is
    /// set.
    pub async fn load_until(self, source: &dyn SeriesSource, abort: &Abort) -> Result<LoadedQuery> {
        let selectors = self.plan.selectors();
        let budget = Arc::new(SampleBudget::new(self.settings.max_samples));
        let grid = Grid {
            start: self.range.start,
            end: self.range.end,
            step: self.range.step,
        };
        let loads = selectors.iter().map(|selector| {
            let budget = budget.clone();
            async move {
                if let Some(hourly) = &selector.hourly
                    && let Some(series) = source.select_hourly(hourly).await?
                {
                    let figures = QueryStats {
                        series_loaded: series.len(),
                        samples_loaded: series.iter().map(|s| s.instant_points.len()).sum(),
                        hourly_buckets_loaded: series.iter().map(|s| s.buckets.len()).sum(),
                        ..QueryStats::default()
                    };
                    budget.spend(figures.samples_loaded + figures.hourly_buckets_loaded)?;
                    return Ok::<_, Error>((Loaded::Hourly(series), figures));
                }
                if let Some(call) = &selector.streamed {
                    let batches = Arc::new(RangeCallBatches::new(
                        call,
                        selector.clone(),
                        grid,
                        abort.clone(),
                        budget,
                    ));
                    source
                        .select_into(&selector.selection, batches.clone())
                        .await?;
                    let streamed = batches.finish()?;
                    let figures = QueryStats {
                        series_loaded: streamed.series_loaded,
                        samples_loaded: streamed.samples_loaded,
                        ..QueryStats::default()
                    };
                    let answers = Mutex::new(Some(streamed.series));
                    return Ok((Loaded::RangeEvaluated(answers), figures));
                }
                let series = source.select(&selector.selection).await?;
                let figures = QueryStats {
                    series_loaded: series.len(),
                    samples_loaded: series.iter().map(|s| s.points.len()).sum(),
                    ..QueryStats::default()
                };
                budget.spend(figures.samples_loaded)?;
                Ok((Loaded::Points(series), figures))
            }
        });
        let results = futures::future::join_all(loads).await;
        let mut stats = QueryStats {
            selections: selectors.len(),
            ..QueryStats::default()
        };
        let mut data: Vec<Loaded> = Vec::with_capacity(results.len());
        for result in results {
            let (loaded, figures) = result?;
            stats.series_loaded += figures.series_loaded;
            stats.samples_loaded += figures.samples_loaded;
            stats.hourly_buckets_loaded += figures.hourly_buckets_loaded;
            data.push(loaded);
        }
        Ok(LoadedQuery {
            prepared: self,
            data,
            stats,
        })
    }
}

/// What one selector loaded.
#[derive(Debug)]
pub(crate) enum Loaded {
    Points(Vec<Series>),
    Hourly(Vec<HourlySeries>),
    /// A streamed range function's answers (sorted by the series' labels), which the
    /// evaluator takes when it reaches the function's call.
    RangeEvaluated(Mutex<Option<Vec<StepSeries>>>),
}

/// A query with its data in memory, ready to evaluate.
#[derive(Debug)]
pub struct LoadedQuery {
    prepared: PreparedQuery,
    data: Vec<Loaded>,
    stats: QueryStats,
}

impl LoadedQuery {
    /// Evaluates the query. CPU-bound: callers on an async runtime run it on a blocking thread.
    pub fn evaluate(self, abort: &Abort) -> Result<Answer> {
        let LoadedQuery {
            prepared,
            data,
            stats,
        } = self;
        let evaluator = Evaluator::new(
            &prepared.plan,
            data,
            prepared.range,
            &prepared.settings,
            abort,
        );
        let value = evaluator.run(prepared.is_range)?;
        Ok(Answer { value, stats })
    }
}

pub(crate) fn too_many_samples() -> Error {
    Error::Limit(
        "query processing would load too many samples into memory in query execution".to_owned(),
    )
}

/// `11000` as `11,000`, as Prometheus writes its resolution limit.
fn thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
