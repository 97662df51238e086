//! The configuration service's own instruments, beside the per-RPC ones the
//! runtime records: how far behind the write each applied change was (the
//! propagation delay to this replica), cache hits and misses, open watchers.

use std::sync::{Arc, Weak};

use opentelemetry::metrics::Histogram;

use crate::cache::ConfigCache;
use crate::watch::Hub;

#[derive(Clone)]
pub struct ConfigMetrics {
    /// Seconds from a change's commit (its `changed_at`) to its application
    /// on this replica.
    pub apply_lag: Histogram<f64>,
}

impl ConfigMetrics {
    pub fn new() -> Self {
        let meter = pharos_runtime::metrics::meter("pharos-config");
        Self {
            apply_lag: meter
                .f64_histogram("pharos.config.change.apply_lag")
                .with_unit("s")
                .with_description("Delay from a change's commit to its application on this replica")
                .with_boundaries(pharos_runtime::metrics::LATENCY_BUCKETS.to_vec())
                .build(),
        }
    }

    /// Registers gauges read from the cache and the hub at scrape time.
    pub fn observe(cache: &Arc<ConfigCache>, hub: &Arc<Hub>) {
        let meter = pharos_runtime::metrics::meter("pharos-config");
        let weak: Weak<ConfigCache> = Arc::downgrade(cache);
        let _hits = meter
            .u64_observable_counter("pharos.config.cache.hits")
            .with_description("Gets answered from the cache")
            .with_callback(move |observer| {
                if let Some(cache) = weak.upgrade() {
                    observer.observe(cache.stats().hits, &[]);
                }
            })
            .build();
        let weak: Weak<ConfigCache> = Arc::downgrade(cache);
        let _misses = meter
            .u64_observable_counter("pharos.config.cache.misses")
            .with_description("Gets that had to read the database")
            .with_callback(move |observer| {
                if let Some(cache) = weak.upgrade() {
                    observer.observe(cache.stats().misses, &[]);
                }
            })
            .build();
        let weak: Weak<Hub> = Arc::downgrade(hub);
        let _watchers = meter
            .u64_observable_gauge("pharos.config.watchers")
            .with_description("Open Watch streams on this replica")
            .with_callback(move |observer| {
                if let Some(hub) = weak.upgrade() {
                    observer.observe(hub.watchers() as u64, &[]);
                }
            })
            .build();
    }
}
