//! The `query` section of the settings: the engine's limits (those of Prometheus by default)
//! the series-selection cache and the head of recent points.

use std::time::Duration;

use pharos_promql::EngineSettings;
use serde::{Deserialize, Serialize};

/// Settings of the query service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QuerySettings {
    /// How far back an instant selector looks for a sample.
    #[serde(with = "pharos_clock::duration")]
    pub lookback_delta: Duration,
    /// The most samples one query may load and hold at once.
    pub max_samples: usize,
    /// The most points a range query may return per series (`(end - start) / step`).
    pub max_points_per_series: i64,
    /// How long a query may run, loading included; past it the query stops its SQL and fails.
    #[serde(with = "pharos_clock::duration")]
    pub timeout: Duration,
    /// The step of a subquery written without one (`x[1h:]`).
    #[serde(with = "pharos_clock::duration")]
    pub default_subquery_step: Duration,
    /// Queries evaluated at once; more wait for a place.
    pub max_concurrent: usize,
    /// Answer `sum`, `count`, `min`, `max` and `avg_over_time` over whole hours at whole-hour
    /// steps from the hourly rollups (the same answer, from far fewer rows).
    pub hourly_rollups: bool,
    /// Threads one query's range functions (`rate`, `*_over_time`...) spread many series over;
    /// 0: one per core.
    pub evaluation_threads: usize,
    /// The series-selection cache (`[query.series_cache]`).
    pub series_cache: SeriesCacheSettings,
    /// The recent points held in memory (`[query.head]`).
    pub head: HeadSettings,
    /// Where the ingest service's committed-data feed is, when it runs in another process
    /// (the head follows it); empty: only an ingest service in this process.
    pub ingest_endpoint: String,
    /// The bearer token presented to `ingest_endpoint`.
    pub service_token: String,
}

impl Default for QuerySettings {
    fn default() -> Self {
        let engine = EngineSettings::default();
        Self {
            lookback_delta: engine.lookback_delta,
            max_samples: engine.max_samples,
            max_points_per_series: engine.max_points_per_series,
            timeout: Duration::from_secs(120),
            default_subquery_step: engine.default_subquery_step,
            max_concurrent: 20,
            hourly_rollups: true,
            evaluation_threads: 0,
            series_cache: SeriesCacheSettings::default(),
            head: HeadSettings::default(),
            ingest_endpoint: String::new(),
            service_token: String::new(),
        }
    }
}

impl QuerySettings {
    /// The engine's part of these settings.
    pub fn engine(&self) -> EngineSettings {
        EngineSettings {
            lookback_delta: self.lookback_delta,
            max_samples: self.max_samples,
            max_points_per_series: self.max_points_per_series,
            default_subquery_step: self.default_subquery_step,
            hourly_rollups: self.hourly_rollups,
            evaluation_threads: match self.evaluation_threads {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                threads => threads,
            },
        }
    }

    /// Refuses values the service cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_points_per_series < 1 {
            return Err("query.max_points_per_series must be at least 1".to_owned());
        }
        if self.max_samples < 1 {
            return Err("query.max_samples must be at least 1".to_owned());
        }
        if self.max_concurrent < 1 {
            return Err("query.max_concurrent must be at least 1".to_owned());
        }
        if self.timeout.is_zero() {
            return Err("query.timeout must be more than 0s".to_owned());
        }
        if self.head.max_series < 1 {
            return Err("query.head.max_series must be at least 1".to_owned());
        }
        if self.default_subquery_step.is_zero() {
            return Err("query.default_subquery_step must be more than 0s".to_owned());
        }
        Ok(())
    }
}

/// How the series of a selector are kept between queries, so that dashboards refreshing the
/// same panels do not read the series table every time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SeriesCacheSettings {
    /// Selections kept (0 turns the cache off).
    pub capacity: u64,
    /// How long a selection is reused: a series created meanwhile shows up after at most this.
    #[serde(with = "pharos_clock::duration")]
    pub ttl: Duration,
}

impl Default for SeriesCacheSettings {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl: Duration::from_secs(10),
        }
    }
}

/// The head: the points of the last `window` of every series, in memory, kept current by
/// ingest's committed-data feed (which must publish metric points: `ingest.feed.metrics`).
/// Selections within the window are answered from it; a range that begins before the window
/// and ends in it reads the store up to the window and takes the rest from the head; older ones
/// read the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HeadSettings {
    /// How far back the head holds points (0s turns it off). Memory: about 16 bytes a point
    /// plus the labels of each series with points in the window.
    #[serde(with = "pharos_clock::duration")]
    pub window: Duration,
    /// The most series the head holds; past it, it stops answering (queries read the store)
    /// until a restart.
    pub max_series: usize,
    /// How long a query waits for the head to apply the batches committed before it began;
    /// past it the query reads the store.
    #[serde(with = "pharos_clock::duration")]
    pub catch_up: Duration,
}

impl Default for HeadSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            max_series: 1_000_000,
            catch_up: Duration::from_millis(100),
        }
    }
}
