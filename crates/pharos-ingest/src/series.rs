//! [`SeriesResolver`]: metric series ids for validated points. Ids come from an in-memory cache,
//! else from the store in one batched lookup; series that do not exist yet are created in one
//! batch, unless their metric name is at its cardinality limit, in which case they are refused.
//! Everything on the per-point path hashes with foldhash and works by index: no key is copied
//! for a series the cache knows.
//!
//! The limit is kept per replica: counts load from the store at start and grow with the series
//! this replica creates, so several replicas may together exceed it by what they create at once.

use std::collections::HashMap;
use std::sync::Mutex;

use foldhash::fast::RandomState;
use pharos_store::signals::metrics::{MetricsRepository, NewSeries, SeriesKey};

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
    cache: moka::sync::Cache<SeriesKey, i64, RandomState>,
    /// Series per metric name, for the cardinality limit.
    counts: Mutex<HashMap<String, u64>>,
    /// Live: series per metric name.
    limit: std::sync::atomic::AtomicU64,
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
            .map_err(|source| IngestError::store(source, retry_after))?;
        Ok(Self {
            repository,
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .build_with_hasher(RandomState::default()),
            counts: Mutex::new(counts),
            limit: std::sync::atomic::AtomicU64::new(limit),
            retry_after,
        })
    }

    /// What became of each series of `wanted`, in the same order.
    pub async fn resolve(&self, wanted: &[&NewSeries]) -> Result<Vec<Resolved>> {
        let mut resolved: Vec<Option<Resolved>> = Vec::with_capacity(wanted.len());
        // Positions of each series the cache does not know, by key.
        let mut missing: HashMap<&SeriesKey, Vec<usize>, RandomState> = HashMap::default();
        for (position, series) in wanted.iter().enumerate() {
            match self.cache.get(&series.key) {
                Some(id) => resolved.push(Some(Resolved::Id(id))),
                None => {
                    resolved.push(None);
                    missing.entry(&series.key).or_default().push(position);
                }
            }
        }
        if !missing.is_empty() {
            let outcome = self.resolve_missing(wanted, &missing).await?;
            for (key, positions) in &missing {
                let answer = outcome.get(*key).copied().unwrap_or(Resolved::OverLimit);
                for &position in positions {
                    resolved[position] = Some(answer);
                }
            }
        }
        Ok(resolved
            .into_iter()
            .map(|answer| answer.unwrap_or(Resolved::OverLimit))
            .collect())
    }

    /// Looks up, then creates within the limit, the series the cache did not know.
    async fn resolve_missing(
        &self,
        wanted: &[&NewSeries],
        missing: &HashMap<&SeriesKey, Vec<usize>, RandomState>,
    ) -> Result<HashMap<SeriesKey, Resolved>> {
        let keys: Vec<SeriesKey> = missing.keys().map(|key| (*key).clone()).collect();
        let found = self
            .repository
            .find_series(&keys)
            .await
            .map_err(|source| self.store_error(source))?;
        let mut outcome = HashMap::with_capacity(keys.len());
        let mut new: Vec<NewSeries> = Vec::new();
        // In request order, so that at the cardinality limit the earlier series win.
        let mut in_order: Vec<(&SeriesKey, &Vec<usize>)> = missing
            .iter()
            .map(|(key, positions)| (*key, positions))
            .collect();
        in_order.sort_unstable_by_key(|(_, positions)| positions[0]);
        for (key, positions) in in_order {
            match found.get(key) {
                Some(&id) => {
                    self.cache.insert(key.clone(), id);
                    outcome.insert(key.clone(), Resolved::Id(id));
                }
                None => new.push(wanted[positions[0]].clone()),
            }
        }
        if new.is_empty() {
            return Ok(outcome);
        }

        // Reserve room under the limit before creating, so concurrent batches cannot overshoot.
        let limit = self.limit.load(std::sync::atomic::Ordering::Relaxed);
        let allowed: Vec<NewSeries> = {
            let mut counts = lock(&self.counts);
            new.into_iter()
                .filter(|series| {
                    let count = counts.entry(series.key.name.clone()).or_insert(0);
                    if *count >= limit {
                        outcome.insert(series.key.clone(), Resolved::OverLimit);
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
                return Err(self.store_error(source));
            }
        };
        let mut counts = lock(&self.counts);
        for series in &allowed {
            let Some(&(id, newly)) = created.get(&series.key) else {
                return Err(self.store_error(pharos_store::StoreError::NotFound));
            };
            if !newly && let Some(count) = counts.get_mut(&series.key.name) {
                // Another replica created it meanwhile: this reservation was not needed.
                *count = count.saturating_sub(1);
            }
            self.cache.insert(series.key.clone(), id);
            outcome.insert(series.key.clone(), Resolved::Id(id));
        }
        Ok(outcome)
    }

    /// A store failure, classed for the caller (UNAVAILABLE with a retry hint, or INTERNAL).
    fn store_error(&self, source: pharos_store::StoreError) -> IngestError {
        IngestError::store(source, self.retry_after)
    }

    /// Changes the cardinality limit; series already stored stay.
    pub fn set_limit(&self, limit: u64) {
        self.limit
            .store(limit, std::sync::atomic::Ordering::Relaxed);
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
