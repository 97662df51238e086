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
