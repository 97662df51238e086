//! The `search` section of the settings: request limits, search threads, training, index
//! snapshots and how replicas keep current.

use std::path::PathBuf;
use std::time::Duration;

use pharos_store::control::follow::ReplicaSettings;
use serde::{Deserialize, Serialize};

/// Settings of the search service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SearchSettings {
    pub limits: SearchLimits,
    /// Threads one BatchSearch may use (0: one per core).
    pub batch_threads: usize,
    /// Train an IVF_PQ index by itself once it holds enough vectors.
    pub auto_train: bool,
    /// The seed of training, so that a restart trains the same structure from the same vectors.
    pub train_seed: u64,
    /// The change log and how replicas keep current (`[search.replication]`).
    pub replication: ReplicaSettings,
    /// Write index snapshots, read at start so that indexes need not be rebuilt from the store.
    pub snapshots: bool,
    /// Where snapshots go; unset: `<data_dir>/search`.
    pub snapshot_dir: Option<PathBuf>,
    /// How often a snapshot is written when indexes changed (and once more at shutdown).
    #[serde(with = "pharos_clock::duration")]
    pub snapshot_interval: Duration,
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            limits: SearchLimits::default(),
            batch_threads: 0,
            auto_train: true,
            train_seed: 42,
            replication: ReplicaSettings::keeping(Duration::from_secs(24 * 3600)),
            snapshots: true,
            snapshot_dir: None,
            snapshot_interval: Duration::from_secs(300),
        }
    }
}

/// Explicit bounds on what one request may hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SearchLimits {
    pub max_upsert_vectors: usize,
    pub max_delete_ids: usize,
    pub max_batch_queries: usize,
    pub max_multi_indexes: usize,
    pub max_k: usize,
    pub max_payload_entries: usize,
    pub max_payload_key_bytes: usize,
    pub max_payload_value_bytes: usize,
    pub max_filter_conditions: usize,
    pub max_filter_values: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        Self {
            max_upsert_vectors: 10_000,
            max_delete_ids: 100_000,
            max_batch_queries: 1_024,
            max_multi_indexes: 16,
            max_k: 1_000,
            max_payload_entries: 64,
            max_payload_key_bytes: 128,
            max_payload_value_bytes: 1_024,
            max_filter_conditions: 16,
            max_filter_values: 256,
        }
    }
}

impl SearchSettings {
    /// The snapshot directory, when snapshots are on and a directory is set.
    pub fn snapshot_dir(&self) -> Option<&PathBuf> {
        self.snapshot_dir.as_ref().filter(|_| self.snapshots)
    }

    /// The threads of a batch: the setting, or one per core.
    pub fn threads(&self) -> usize {
        if self.batch_threads > 0 {
            return self.batch_threads;
        }
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}
