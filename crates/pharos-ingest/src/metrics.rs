//! The ingest service's instruments: items accepted and rejected (by signal and reason), and the
//! size, duration and outcome of every batch written.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

#[derive(Clone)]
pub struct IngestMetrics {
    items: Counter<u64>,
    batch_points: Histogram<u64>,
    batch_duration: Histogram<f64>,
}

impl IngestMetrics {
    pub fn new() -> Self {
        let meter = pharos_runtime::metrics::meter("pharos-ingest");
        Self {
            items: meter
                .u64_counter("pharos.ingest.items")
                .with_description(
                    "Items received, by signal and outcome (accepted, or the rejection reason)",
                )
                .build(),
            batch_points: meter
                .u64_histogram("pharos.ingest.batch.items")
                .with_description("Items written per database transaction, by signal")
                .with_boundaries(vec![
                    1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0, 100_000.0,
                ])
                .build(),
            batch_duration: meter
                .f64_histogram("pharos.ingest.batch.duration")
                .with_unit("s")
                .with_description("Time to write one batch, by outcome")
                .with_boundaries(pharos_runtime::metrics::LATENCY_BUCKETS.to_vec())
                .build(),
        }
    }

    pub fn accepted(&self, signal: &'static str, count: usize) {
        self.items.add(
            count as u64,
            &[
                KeyValue::new("signal", signal),
                KeyValue::new("outcome", "accepted"),
            ],
        );
    }

    pub fn rejected(&self, signal: &'static str, reason: &'static str) {
        self.items.add(
            1,
            &[
                KeyValue::new("signal", signal),
                KeyValue::new("outcome", reason),
            ],
        );
    }

    pub fn batch(&self, signal: &'static str, items: usize, elapsed: Duration, ok: bool) {
        let outcome = [
            KeyValue::new("signal", signal),
            KeyValue::new("outcome", if ok { "committed" } else { "failed" }),
        ];
        self.batch_points.record(items as u64, &outcome);
        self.batch_duration.record(elapsed.as_secs_f64(), &outcome);
    }
}
