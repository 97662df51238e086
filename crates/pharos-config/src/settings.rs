//! The `config` section of the settings: cache size and TTL rule, warming,
//! watcher limits and change-log retention.

use std::collections::BTreeMap;
use std::time::Duration;

use pharos_store::control::follow::ReplicaSettings;
use serde::{Deserialize, Serialize};

/// Settings of the configuration service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigSettings {
    pub cache: CacheSettings,
    pub watch: WatchSettings,
    /// The change log and how replicas keep current (`[config.replication]`).
    pub replication: ReplicaSettings,
}

impl Default for ConfigSettings {
    fn default() -> Self {
        Self {
            cache: CacheSettings::default(),
            watch: WatchSettings::default(),
            replication: ReplicaSettings::keeping(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// The read cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// How many keys the cache holds (each with all its environments).
    pub capacity: u64,
    /// How often values are expected to change when their category says
    /// nothing else. The TTL is a quarter of it, clamped to 60 s..3600 s; it
    /// is only a safety net, since every change updates every replica's cache.
    #[serde(with = "pharos_clock::duration")]
    pub default_change_period: Duration,
    /// Expected change periods per category. Live-tunable through the keys
    /// `pharos.config.cache.change_period.<category>` (type DURATION).
    pub category_change_periods: BTreeMap<String, pharos_clock::duration::Readable>,
    /// Keys loaded into the cache at start.
    pub warm_keys: Vec<String>,
    /// Key prefixes loaded into the cache at start.
    pub warm_prefixes: Vec<String>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            default_change_period: Duration::from_secs(20 * 60),
            category_change_periods: BTreeMap::new(),
            warm_keys: Vec::new(),
            warm_prefixes: vec!["pharos.".to_string()],
        }
    }
}

/// Watch streams.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WatchSettings {
    /// Events buffered per watcher before its pending events coalesce to the
    /// latest per key.
    pub buffer: usize,
    /// Open Watch streams per replica; past it Watch is refused with
    /// RESOURCE_EXHAUSTED.
    pub max_watchers: usize,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            buffer: 1024,
            max_watchers: 100_000,
        }
    }
}
