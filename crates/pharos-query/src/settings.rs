//! The `query` section of the settings: the engine's limits (those of Prometheus by default)
//! and the series-selection cache.

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
    /// The series-selection cache (`[query.series_cache]`).
    pub series_cache: SeriesCacheSettings,
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
            series_cache: SeriesCacheSettings::default(),
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
