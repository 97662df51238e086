//! The search service's own instruments, beside the per-RPC ones the runtime records: how long
//! each query took in the engine (by index kind and call), vectors written and removed, and,
//! read at scrape time, the indexes and vectors this replica holds and the revision it applied.

use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

use crate::catalog::Catalog;

/// How a query reached the engine.
#[derive(Debug, Clone, Copy)]
pub enum Call {
    Search,
    /// One query of a `BatchSearch` (the batch's time divided by its queries).
    Batch,
}

#[derive(Clone)]
pub struct SearchMetrics {
    query_duration: Histogram<f64>,
    vectors: Counter<u64>,
}

impl SearchMetrics {
    pub fn new() -> Self {
        let meter = pharos_runtime::metrics::meter("pharos-search");
        Self {
            query_duration: meter
                .f64_histogram("pharos.search.query.duration")
                .with_unit("s")
                .with_description("Time one query spent in the engine, by index kind and call")
                .with_boundaries(pharos_runtime::metrics::LATENCY_BUCKETS.to_vec())
                .build(),
            vectors: meter
                .u64_counter("pharos.search.vectors.written")
                .with_description("Vectors written (upsert) or removed (delete), by operation")
                .build(),
        }
    }

    pub fn query(&self, kind: &'static str, call: Call, took: Duration) {
        let call = match call {
            Call::Search => "search",
            Call::Batch => "batch",
        };
        self.query_duration.record(
            took.as_secs_f64(),
            &[KeyValue::new("kind", kind), KeyValue::new("call", call)],
        );
    }

    pub fn written(&self, operation: &'static str, count: u64) {
        self.vectors
            .add(count, &[KeyValue::new("operation", operation)]);
    }

    /// Registers gauges read from the catalog at scrape time.
    pub fn observe(catalog: &Arc<Catalog>) {
        let meter = pharos_runtime::metrics::meter("pharos-search");
        let weak: Weak<Catalog> = Arc::downgrade(catalog);
        let _indexes = meter
            .u64_observable_gauge("pharos.search.indexes")
            .with_description("Indexes held by this replica")
            .with_callback({
                let weak = weak.clone();
                move |observer| {
                    if let Some(catalog) = weak.upgrade() {
                        observer.observe(catalog.all().len() as u64, &[]);
                    }
                }
            })
            .build();
        let _vectors = meter
            .u64_observable_gauge("pharos.search.vectors")
            .with_description("Vectors held by this replica, by index kind")
            .with_callback({
                let weak = weak.clone();
                move |observer| {
                    if let Some(catalog) = weak.upgrade() {
                        let mut by_kind = std::collections::BTreeMap::<&'static str, u64>::new();
                        for live in catalog.all() {
                            *by_kind.entry(live.definition.kind.name()).or_default() +=
                                live.snapshot().engine.len() as u64;
                        }
                        for (kind, count) in by_kind {
                            observer.observe(count, &[KeyValue::new("kind", kind)]);
                        }
                    }
                }
            })
            .build();
        let _applied = meter
            .i64_observable_gauge("pharos.search.applied_revision")
            .with_description("The revision of the vector change log this replica applied")
            .with_callback(move |observer| {
                if let Some(catalog) = weak.upgrade() {
                    observer.observe(catalog.applied_revision(), &[]);
                }
            })
            .build();
    }
}
