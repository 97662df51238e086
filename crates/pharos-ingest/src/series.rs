//! [`SeriesResolver`]: metric series ids for validated points. Ids come from an in-memory cache,
//! else from the store in one batched lookup; series that do not exist yet are created in one
//! batch, unless their metric name is at its cardinality limit, in which case they are refused.
//!
//! The limit is kept per replica: counts load from the store at start and grow with the series
//! this replica creates, so several replicas may together exceed it by what they create at once.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use pharos_store::metrics::{MetricsRepository, NewSeries, SeriesKey};

use crate::error::{IngestError, Result};

/// What became of a series a batch needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Id(i64),
    /// New, and its metric name already has `max_series_per_metric` series.
    OverLimit,
}

pub struct SeriesResolver {
    repository: MetricsRepository,
    cache: moka::sync::Cache<SeriesKey, i64>,
    /// Series per metric name, for the cardinality limit.
    counts: Mutex<HashMap<String, u64>>,
    limit: u64,
    retry_after: std::time::Duration,
}

impl SeriesResolver {
    pub async fn load(
        repository: MetricsRepository,
        capacity: u64,
        limit: u64,
        retry_after: std::time::Duration,
    ) -> Result<Self> {
        let counts = repository
            .series_counts()
            .await
            .map_err(|source| IngestError::unavailable(source, retry_after))?;
        Ok(Self {
            repository,
            cache: moka::sync::Cache::new(capacity),
            counts: Mutex::new(counts),
            limit,
            retry_after,
        })
    }

    /// The id of every series in `wanted` (or why there is none).
    pub async fn resolve(&self, wanted: &[&NewSeries]) -> Result<HashMap<SeriesKey, Resolved>> {
        let mut resolved = HashMap::with_capacity(wanted.len());
        let mut missing: Vec<&NewSeries> = Vec::new();
        let mut seen = HashSet::new();
        for series in wanted {
            if resolved.contains_key(&series.key) || !seen.insert(&series.key) {
                continue;
            }
            match self.cache.get(&series.key) {
                Some(id) => {
                    resolved.insert(series.key.clone(), Resolved::Id(id));
                }
                None => missing.push(series),
            }
        }
        if missing.is_empty() {
            return Ok(resolved);
        }

        let keys: Vec<SeriesKey> = missing.iter().map(|series| series.key.clone()).collect();
        let found = self
            .repository
            .find_series(&keys)
            .await
            .map_err(|source| self.unavailable(source))?;
        let mut new: Vec<NewSeries> = Vec::new();
        for series in missing {
            match found.get(&series.key) {
                Some(&id) => {
                    self.cache.insert(series.key.clone(), id);
                    resolved.insert(series.key.clone(), Resolved::Id(id));
                }
                None => new.push(series.clone()),
            }
        }
        if new.is_empty() {
            return Ok(resolved);
        }

        // Reserve room under the limit before creating, so concurrent batches cannot overshoot.
        let allowed: Vec<NewSeries> = {
            let mut counts = lock(&self.counts);
            new.into_iter()
                .filter(|series| {
                    let count = counts.entry(series.key.name.clone()).or_insert(0);
                    if *count >= self.limit {
                        resolved.insert(series.key.clone(), Resolved::OverLimit);
                        false
                    } else {
                        *count += 1;
                        true
                    }
                })
                .collect()
        };
        let created = match self.repository.create_series(&allowed).await {
            Ok(created) => created,
            Err(source) => {
                let mut counts = lock(&self.counts);
                for series in &allowed {
                    if let Some(count) = counts.get_mut(&series.key.name) {
                        *count = count.saturating_sub(1);
                    }
                }
                return Err(self.unavailable(source));
            }
        };
        let mut counts = lock(&self.counts);
        for series in &allowed {
            match created.get(&series.key) {
                Some(&(id, newly)) => {
                    if !newly && let Some(count) = counts.get_mut(&series.key.name) {
                        // Another replica created it: it was counted already when loaded, or not
                        // at all; either way this reservation was not needed.
                        *count = count.saturating_sub(1);
                    }
                    self.cache.insert(series.key.clone(), id);
                    resolved.insert(series.key.clone(), Resolved::Id(id));
                }
                None => {
                    return Err(self.unavailable(pharos_store::StoreError::NotFound));
                }
            }
        }
        Ok(resolved)
    }

    fn unavailable(&self, source: pharos_store::StoreError) -> IngestError {
        IngestError::unavailable(source, self.retry_after)
    }

    /// Series known per metric name.
    pub fn series_count(&self, name: &str) -> u64 {
        lock(&self.counts).get(name).copied().unwrap_or(0)
    }
}

// The map is plain data no panic can leave half-written.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
