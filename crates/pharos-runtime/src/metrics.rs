//! The process-wide metrics pipeline: OpenTelemetry instruments exported in
//! the Prometheus text format on `/metrics`, and the instruments the runtime
//! itself records for every RPC, named after the OpenTelemetry semantic
//! conventions (`rpc.server.call.duration` in seconds with real buckets,
//! exposed as `rpc_server_call_duration_seconds`).

use std::sync::OnceLock;

use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;

/// Bucket bounds, in seconds, for RPC and storage latencies: 100 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

struct Pipeline {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
}

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();

fn pipeline() -> &'static Pipeline {
    PIPELINE.get_or_init(|| {
        let registry = prometheus::Registry::new();
        let builder = SdkMeterProvider::builder()
            .with_resource(Resource::builder().with_service_name("pharos").build());
        let builder = match opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
        {
            Ok(exporter) => builder.with_reader(exporter),
            Err(error) => {
                tracing::error!(%error, "prometheus exporter unavailable; /metrics will be empty");
                builder
            }
        };
        Pipeline {
            registry,
            provider: builder.build(),
        }
    })
}

/// The meter every Pharos crate creates its instruments from.
pub fn meter(scope: &'static str) -> Meter {
    pipeline().provider.meter(scope)
}

/// Renders every instrument of the process in the Prometheus text format.
pub fn render_prometheus() -> String {
    use prometheus::Encoder as _;
    let families = pipeline().registry.gather();
    let mut buffer = Vec::new();
    if let Err(error) = prometheus::TextEncoder::new().encode(&families, &mut buffer) {
        tracing::error!(%error, "could not encode metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

/// One sample of the process's instruments, as a scrape of `/metrics` would read it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// The name as exposed (`rpc_server_call_duration_seconds_bucket`).
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Every sample of the process's instruments, named and labelled as `/metrics` exposes them:
/// counters and gauges as they are, histograms as `_bucket{le}` (with `+Inf`), `_sum` and
/// `_count`, summaries as `{quantile}`, `_sum` and `_count`. The alert service writes them to
/// the store to evaluate its self-monitoring rules.
pub fn samples() -> Vec<MetricSample> {
    use prometheus::proto::MetricType;
    let mut samples = Vec::new();
    for family in pipeline().registry.gather() {
        let name = family.name();
        for metric in family.get_metric() {
            let labels: Vec<(String, String)> = metric
                .get_label()
                .iter()
                .map(|pair| (pair.name().to_owned(), pair.value().to_owned()))
                .collect();
            let mut push = |suffix: &str, extra: Option<(&str, String)>, value: f64| {
                let mut labels = labels.clone();
                if let Some((label, value)) = extra {
                    labels.push((label.to_owned(), value));
                }
                samples.push(MetricSample {
                    name: format!("{name}{suffix}"),
                    labels,
                    value,
                });
            };
            match family.get_field_type() {
                MetricType::COUNTER => push("", None, metric.get_counter().get_value()),
                MetricType::GAUGE => push("", None, metric.get_gauge().get_value()),
                // The exporter writes no untyped metrics.
                MetricType::UNTYPED => {}
                MetricType::HISTOGRAM => {
                    let histogram = metric.get_histogram();
                    let mut saw_infinity = false;
                    for bucket in histogram.get_bucket() {
                        saw_infinity |= bucket.upper_bound().is_infinite();
                        push(
                            "_bucket",
                            Some(("le", format_float(bucket.upper_bound()))),
                            bucket.cumulative_count() as f64,
                        );
                    }
                    if !saw_infinity {
                        push(
                            "_bucket",
                            Some(("le", "+Inf".to_owned())),
                            histogram.get_sample_count() as f64,
                        );
                    }
                    push("_sum", None, histogram.get_sample_sum());
                    push("_count", None, histogram.get_sample_count() as f64);
                }
                MetricType::SUMMARY => {
                    let summary = metric.get_summary();
                    for quantile in summary.get_quantile() {
                        push(
                            "",
                            Some(("quantile", format_float(quantile.quantile()))),
                            quantile.value(),
                        );
                    }
                    push("_sum", None, summary.sample_sum());
                    push("_count", None, summary.sample_count() as f64);
                }
            }
        }
    }
    samples
}

/// A float as the Prometheus text format writes a bound (`0.25`, `10`, `+Inf`).
fn format_float(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

/// The instruments of the gRPC server layer.
#[derive(Clone)]
pub struct RpcMetrics {
    pub call_duration: Histogram<f64>,
    pub errors: Counter<u64>,
}

impl RpcMetrics {
    pub fn get() -> &'static RpcMetrics {
        static METRICS: OnceLock<RpcMetrics> = OnceLock::new();
        METRICS.get_or_init(|| {
            let meter = meter("pharos-runtime");
            RpcMetrics {
                call_duration: meter
                    .f64_histogram("rpc.server.call.duration")
                    .with_unit("s")
                    .with_description("Duration of inbound RPCs, until the response starts")
                    .with_boundaries(LATENCY_BUCKETS.to_vec())
                    .build(),
                errors: meter
                    .u64_counter("pharos.rpc.server.errors")
                    .with_description("Inbound RPCs that ended with a non-OK status")
                    .build(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_expose_histograms_as_a_scrape_reads_them() {
        let meter = meter("pharos-runtime-test");
        let histogram = meter
            .f64_histogram("test.samples.duration")
            .with_unit("s")
            .with_boundaries(vec![0.1, 1.0])
            .build();
        histogram.record(0.5, &[opentelemetry::KeyValue::new("kind", "a")]);
        histogram.record(2.0, &[opentelemetry::KeyValue::new("kind", "a")]);
        let samples = samples();
        let find = |name: &str, le: Option<&str>| {
            samples
                .iter()
                .find(|sample| {
                    sample.name == name
                        && le.is_none_or(|le| {
                            sample
                                .labels
                                .iter()
                                .any(|(label, value)| label == "le" && value == le)
                        })
                })
                .map(|sample| sample.value)
        };
        assert_eq!(
            find("test_samples_duration_seconds_bucket", Some("0.1")),
            Some(0.0)
        );
        assert_eq!(
            find("test_samples_duration_seconds_bucket", Some("1")),
            Some(1.0)
        );
        assert_eq!(
            find("test_samples_duration_seconds_bucket", Some("+Inf")),
            Some(2.0)
        );
        assert_eq!(find("test_samples_duration_seconds_count", None), Some(2.0));
        assert_eq!(find("test_samples_duration_seconds_sum", None), Some(2.5));
        // The text rendering and the samples agree on names.
        assert!(render_prometheus().contains("test_samples_duration_seconds_bucket"));
    }
}
