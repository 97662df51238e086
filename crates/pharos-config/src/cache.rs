//! The read cache of one replica: moka, keyed by configuration key, holding
//! every row of the key (base value and environment overrides) so that a Get
//! for any environment is answered from memory. Missing keys are cached too.
//!
//! The TTL is only a safety net: each applied change updates the cached key
//! in place. Loads and updates of one key run under moka's per-key compute
//! lock, so a load that raced a change can never leave a stale value behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use moka::Expiry;
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::ops::compute::{CompResult, Op};
use pharos_store::control::config::{ChangeRow, EntryRow, KIND_DELETE};

use crate::settings::CacheSettings;

/// The shortest and longest TTL the change-period rule gives.
pub const MIN_TTL: Duration = Duration::from_secs(60);
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// Every row of one key, base value (environment "") first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRecord {
    pub rows: Vec<EntryRow>,
}

impl KeyRecord {
    pub fn new(mut rows: Vec<EntryRow>) -> Self {
        rows.sort_by(|a, b| a.environment.cmp(&b.environment));
        Self { rows }
    }

    /// The override for `environment` if there is one, else the base value.
    pub fn resolve(&self, environment: &str) -> Option<&EntryRow> {
        if !environment.is_empty()
            && let Some(row) = self.rows.iter().find(|row| row.environment == environment)
        {
            return Some(row);
        }
        self.rows.iter().find(|row| row.environment.is_empty())
    }

    fn category(&self) -> &str {
        self.resolve("")
            .or(self.rows.first())
            .map_or("", |row| row.category.as_str())
    }

    /// This record with `change` applied, or `None` if it adds nothing new.
    fn apply(&self, change: &ChangeRow) -> Option<KeyRecord> {
        let position = self
            .rows
            .iter()
            .position(|row| row.environment == change.environment);
        if let Some(index) = position
            && self.rows[index].revision >= change.revision
        {
            return None;
        }
        let mut rows = self.rows.clone();
        match (position, change.kind == KIND_DELETE) {
            (Some(index), true) => {
                rows.remove(index);
            }
            (Some(index), false) => rows[index] = change.entry(),
            (None, true) => return None,
            (None, false) => rows.push(change.entry()),
        }
        Some(KeyRecord::new(rows))
    }
}

/// TTLs derived from expected change periods: a quarter, clamped.
#[derive(Debug, Clone, PartialEq)]
pub struct TtlPolicy {
    pub default_period: Duration,
    pub category_periods: HashMap<String, Duration>,
}

impl TtlPolicy {
    pub fn from_settings(settings: &CacheSettings) -> Self {
        Self {
            default_period: settings.default_change_period,
            category_periods: settings
                .category_change_periods
                .iter()
                .map(|(category, period)| (category.clone(), period.0))
                .collect(),
        }
    }

    pub fn ttl(&self, category: &str) -> Duration {
        let period = self
            .category_periods
            .get(category)
            .copied()
            .unwrap_or(self.default_period);
        (period / 4).clamp(MIN_TTL, MAX_TTL)
    }
}

struct PolicyExpiry {
    policy: Arc<ArcSwap<TtlPolicy>>,
}

impl Expiry<String, Arc<KeyRecord>> for PolicyExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<KeyRecord>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(self.policy.load().ttl(value.category()))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Arc<KeyRecord>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.policy.load().ttl(value.category()))
    }
}

/// Hit, miss and size figures of the cache.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: f64,
    pub size: u64,
    pub capacity: u64,
    pub evictions: u64,
}

/// The read cache of one replica.
pub struct ConfigCache {
    cache: Cache<String, Arc<KeyRecord>>,
    policy: Arc<ArcSwap<TtlPolicy>>,
    capacity: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: Arc<AtomicU64>,
}

impl ConfigCache {
    pub fn new(settings: &CacheSettings) -> Self {
        let policy = Arc::new(ArcSwap::from_pointee(TtlPolicy::from_settings(settings)));
        let evictions = Arc::new(AtomicU64::new(0));
        let counter = evictions.clone();
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .expire_after(PolicyExpiry {
                policy: policy.clone(),
            })
            .eviction_listener(move |_key, _value, cause| {
                if cause == RemovalCause::Size {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Self {
            cache,
            policy,
            capacity: settings.capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions,
        }
    }

    /// The cached record of `key`, loading it with `load` on a miss.
    pub async fn get_or_load<F, Fut, E>(&self, key: &str, load: F) -> Result<Arc<KeyRecord>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<EntryRow>, E>>,
        E: Send + Sync + 'static,
    {
        if let Some(record) = self.cache.get(key).await {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(record);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.load(key, load).await
    }

    /// Loads `key` unless it is cached; does not count as a hit or miss.
    pub async fn load<F, Fut, E>(&self, key: &str, load: F) -> Result<Arc<KeyRecord>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<EntryRow>, E>>,
        E: Send + Sync + 'static,
    {
        let result = self
            .cache
            .entry(key.to_string())
            .and_try_compute_with(|existing| async move {
                match existing {
                    Some(_) => Ok(Op::Nop),
                    None => Ok(Op::Put(Arc::new(KeyRecord::new(load().await?)))),
                }
            })
            .await?;
        Ok(match result {
            CompResult::Inserted(entry)
            | CompResult::Unchanged(entry)
            | CompResult::ReplacedWith(entry) => entry.into_value(),
            CompResult::StillNone(_) | CompResult::Removed(_) => Arc::new(KeyRecord::default()),
        })
    }

    /// Applies a committed change to the cached key, if the key is cached.
    pub async fn apply(&self, change: &ChangeRow) {
        self.cache
            .entry(change.key.clone())
            .and_compute_with(|existing| async move {
                match existing.and_then(|entry| entry.value().apply(change)) {
                    Some(updated) => Op::Put(Arc::new(updated)),
                    None => Op::Nop,
                }
            })
            .await;
    }

    /// Drops one key, so that the next read of it goes to the store.
    pub async fn invalidate(&self, key: &str) {
        self.cache.invalidate(key).await;
    }

    /// Drops everything, after this replica missed changes it cannot replay.
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    pub fn set_policy(&self, policy: TtlPolicy) {
        self.policy.store(Arc::new(policy));
    }

    pub fn policy(&self) -> Arc<TtlPolicy> {
        self.policy.load_full()
    }

    pub fn stats(&self) -> CacheStats {
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let total = hits + misses;
        CacheStats {
            hits,
            misses,
            hit_rate: if total == 0 {
                0.0
            } else {
                hits as f64 / total as f64
            },
            size: self.cache.entry_count(),
            capacity: self.capacity,
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(environment: &str, value: &str, revision: i64) -> EntryRow {
        EntryRow {
            key: "k".into(),
            environment: environment.into(),
            value: value.into(),
            value_type: 1,
            category: "c".into(),
            description: String::new(),
            revision,
            updated_at: 0,
            updated_by: "t".into(),
        }
    }

    #[test]
    fn resolves_override_then_base() {
        let record = KeyRecord::new(vec![row("prod", "p", 2), row("", "b", 1)]);
        assert_eq!(record.resolve("prod").map(|r| r.value.as_str()), Some("p"));
        assert_eq!(record.resolve("dev").map(|r| r.value.as_str()), Some("b"));
        assert_eq!(record.resolve("").map(|r| r.value.as_str()), Some("b"));
    }

    #[test]
    fn ttl_is_a_clamped_quarter_of_the_period() {
        let mut policy = TtlPolicy {
            default_period: Duration::from_secs(1200),
            category_periods: HashMap::new(),
        };
        assert_eq!(policy.ttl("x"), Duration::from_secs(300));
        policy
            .category_periods
            .insert("fast".into(), Duration::from_secs(10));
        policy
            .category_periods
            .insert("slow".into(), Duration::from_secs(86_400));
        assert_eq!(policy.ttl("fast"), MIN_TTL);
        assert_eq!(policy.ttl("slow"), MAX_TTL);
    }

    #[tokio::test]
    async fn changes_update_cached_keys_only_forward() {
        let cache = ConfigCache::new(&CacheSettings::default());
        let loaded = cache
            .get_or_load("k", || async {
                Ok::<_, std::io::Error>(vec![row("", "v1", 1)])
            })
            .await
            .expect("load");
        assert_eq!(loaded.resolve("").map(|r| r.revision), Some(1));
        let change = ChangeRow {
            revision: 2,
            kind: 1,
            key: "k".into(),
            environment: String::new(),
            value: "v2".into(),
            previous_value: Some("v1".into()),
            value_type: 1,
            category: "c".into(),
            description: String::new(),
            changed_at: 0,
            actor: "t".into(),
        };
        cache.apply(&change).await;
        let stale = ChangeRow {
            revision: 1,
            value: "old".into(),
            ..change.clone()
        };
        cache.apply(&stale).await;
        let record = cache
            .get_or_load("k", || async { Ok::<_, std::io::Error>(Vec::new()) })
            .await
            .expect("hit");
        assert_eq!(record.resolve("").map(|r| r.value.as_str()), Some("v2"));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 1));
    }
}
