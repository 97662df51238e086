//! OTLP metrics (`opentelemetry.proto.collector.metrics.v1.MetricsService`). Each OTLP data
//! point becomes Pharos metric points the way OpenTelemetry's Prometheus compatibility rules
//! name them:
//!
//! - names: characters outside `[a-zA-Z0-9_:]` become `_`; monotonic sums get `_total`;
//! - labels: the data point's attributes (sanitized the same way) plus `service_name`,
//!   `service_namespace` and `service_instance_id` from the resource;
//! - gauges and sums: one point each (sums keep their temporality as sent);
//! - histograms: cumulative `_bucket{le}` points, `_sum` and `_count`, so percentiles can be
//!   computed from the stored buckets; exponential histograms the same, with each bucket's upper
//!   bound as `le`;
//! - summaries: `{quantile}` points, `_sum` and `_count`;
//! - points flagged "no recorded value" are skipped.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    self, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, metric, number_data_point};
use pharos_proto::ingest::v1 as pb;
use tonic::{Request, Response, Status};

use super::{summarize, text};
use crate::service::IngestService;

/// The OTLP flag bit of a data point that carries no value (a staleness marker).
const NO_RECORDED_VALUE: u32 = 1;
/// Resource attributes kept as labels.
const RESOURCE_LABELS: [(&str, &str); 3] = [
    ("service.name", "service_name"),
    ("service.namespace", "service_namespace"),
    ("service.instance.id", "service_instance_id"),
];

#[derive(Clone)]
pub struct OtlpMetrics {
    service: Arc<IngestService>,
}

/// The mountable OTLP metrics server; gzip accepted, as OTLP exporters often send it.
pub fn metrics_server(
    service: Arc<IngestService>,
    max_message_bytes: usize,
) -> MetricsServiceServer<OtlpMetrics> {
    pharos_runtime::tonic_server!(
        MetricsServiceServer::new(OtlpMetrics { service }),
        max_message_bytes
    )
}

#[tonic::async_trait]
impl metrics_service_server::MetricsService for OtlpMetrics {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let points = to_points(request.into_inner());
        let outcome = self
            .service
            .write_metrics(pb::WriteMetricsRequest { points })
            .await?;
        let partial_success =
            (!outcome.rejections.is_empty()).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(outcome.rejections.len()).unwrap_or(i64::MAX),
                error_message: summarize(&outcome.rejections),
            });
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success,
        }))
    }
}

/// Every Pharos point an OTLP request carries.
pub fn to_points(request: ExportMetricsServiceRequest) -> Vec<pb::MetricPoint> {
    let mut points = Vec::new();
    for resource_metrics in request.resource_metrics {
        let resource_labels: Vec<pb::Label> = resource_metrics
            .resource
            .map(|resource| {
                RESOURCE_LABELS
                    .iter()
                    .filter_map(|(attribute, label)| {
                        let value = resource.attributes.iter().find(|kv| kv.key == *attribute)?;
                        Some(pb::Label {
                            name: (*label).to_owned(),
                            value: text(value.value.as_ref()),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        for scope in resource_metrics.scope_metrics {
            for metric in scope.metrics {
                convert_metric(metric, &resource_labels, &mut points);
            }
        }
    }
    points
}

fn convert_metric(
    metric: opentelemetry_proto::tonic::metrics::v1::Metric,
    resource: &[pb::Label],
    out: &mut Vec<pb::MetricPoint>,
) {
    let name = sanitize(&metric.name);
    let labels = |attributes: &[KeyValue]| -> Vec<pb::Label> {
        let mut labels = resource.to_vec();
        labels.extend(attributes.iter().map(|kv| pb::Label {
            name: sanitize(&kv.key),
            value: text(kv.value.as_ref()),
        }));
        labels
    };
    let recorded = |flags: u32| flags & NO_RECORDED_VALUE == 0;
    let mut emit = Emit { out };
    match metric.data {
        Some(metric::Data::Gauge(gauge)) => {
            emit.numbers(
                &name,
                gauge.data_points.into_iter().filter(|p| recorded(p.flags)),
                labels,
            );
        }
        Some(metric::Data::Sum(sum)) => {
            let name = if sum.is_monotonic && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name
            };
            emit.numbers(
                &name,
                sum.data_points.into_iter().filter(|p| recorded(p.flags)),
                labels,
            );
        }
        Some(metric::Data::Histogram(histogram)) => {
            for point in histogram
                .data_points
                .into_iter()
                .filter(|p| recorded(p.flags))
            {
                let bounds = point
                    .explicit_bounds
                    .iter()
                    .copied()
                    .chain(std::iter::once(f64::INFINITY));
                let buckets = bounds.zip(point.bucket_counts.iter().copied());
                let base = labels(&point.attributes);
                emit.histogram(
                    &name,
                    &base,
                    point.time_unix_nano,
                    buckets,
                    point.sum,
                    point.count,
                );
            }
        }
        Some(metric::Data::ExponentialHistogram(histogram)) => {
            for point in histogram
                .data_points
                .into_iter()
                .filter(|p| recorded(p.flags))
            {
                let base = labels(&point.attributes);
                let buckets = exponential_buckets(&point);
                emit.histogram(
                    &name,
                    &base,
                    point.time_unix_nano,
                    buckets,
                    point.sum,
                    point.count,
                );
            }
        }
        Some(metric::Data::Summary(summary)) => {
            for point in summary
                .data_points
                .into_iter()
                .filter(|p| recorded(p.flags))
            {
                let base = labels(&point.attributes);
                for quantile in &point.quantile_values {
                    let labels = with_label(&base, "quantile", quantile.quantile);
                    emit.point(&name, labels, point.time_unix_nano, quantile.value);
                }
                emit.point(
                    &format!("{name}_sum"),
                    base.clone(),
                    point.time_unix_nano,
                    point.sum,
                );
                emit.point(
                    &format!("{name}_count"),
                    base,
                    point.time_unix_nano,
                    point.count as f64,
                );
            }
        }
        None => {}
    }
}

/// Appends converted points.
struct Emit<'a> {
    out: &'a mut Vec<pb::MetricPoint>,
}

impl Emit<'_> {
    fn point(&mut self, name: &str, labels: Vec<pb::Label>, time: u64, value: f64) {
        self.out.push(pb::MetricPoint {
            name: name.to_owned(),
            labels,
            time_unix_nano: i64::try_from(time).unwrap_or(i64::MAX),
            value,
        });
    }

    /// One point per gauge or sum data point.
    fn numbers(
        &mut self,
        name: &str,
        points: impl Iterator<Item = NumberDataPoint>,
        labels: impl Fn(&[KeyValue]) -> Vec<pb::Label>,
    ) {
        for point in points {
            self.point(
                name,
                labels(&point.attributes),
                point.time_unix_nano,
                number(point.value),
            );
        }
    }

    /// Cumulative `_bucket{le}` points from (upper bound, count) pairs, then `_sum` and `_count`.
    fn histogram(
        &mut self,
        name: &str,
        base: &[pb::Label],
        time: u64,
        buckets: impl IntoIterator<Item = (f64, u64)>,
        sum: Option<f64>,
        count: u64,
    ) {
        let mut cumulative = 0u64;
        for (bound, in_bucket) in buckets {
            cumulative += in_bucket;
            self.point(
                &format!("{name}_bucket"),
                with_label(base, "le", bound),
                time,
                cumulative as f64,
            );
        }
        if let Some(sum) = sum {
            self.point(&format!("{name}_sum"), base.to_vec(), time, sum);
        }
        self.point(&format!("{name}_count"), base.to_vec(), time, count as f64);
    }
}

/// (upper bound, count) of every bucket of an exponential histogram, lowest first: negative
/// buckets (bucket `i` covers `[-base^(i+1), -base^i)`), the zero bucket, positive buckets
/// (bucket `i` covers `(base^i, base^(i+1)]`), with `base = 2^(2^-scale)`.
fn exponential_buckets(
    point: &opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint,
) -> Vec<(f64, u64)> {
    let base = 2f64.powf(2f64.powi(-point.scale));
    let mut buckets = Vec::new();
    if let Some(negative) = &point.negative {
        for (position, count) in negative.bucket_counts.iter().enumerate().rev() {
            let index = negative.offset + position as i32;
            buckets.push((-base.powi(index), *count));
        }
    }
    buckets.push((point.zero_threshold, point.zero_count));
    if let Some(positive) = &point.positive {
        for (position, count) in positive.bucket_counts.iter().enumerate() {
            let index = positive.offset + position as i32;
            buckets.push((base.powi(index + 1), *count));
        }
    }
    buckets.push((f64::INFINITY, 0));
    buckets
}

fn with_label(base: &[pb::Label], name: &str, value: f64) -> Vec<pb::Label> {
    let mut labels = base.to_vec();
    let value = if value == f64::INFINITY {
        "+Inf".to_owned()
    } else {
        value.to_string()
    };
    labels.push(pb::Label {
        name: name.to_owned(),
        value,
    });
    labels
}

fn number(value: Option<number_data_point::Value>) -> f64 {
    match value {
        Some(number_data_point::Value::AsDouble(value)) => value,
        Some(number_data_point::Value::AsInt(value)) => value as f64,
        None => f64::NAN,
    }
}

/// Characters outside `[a-zA-Z0-9_:]` become `_`, and a leading digit gets a `_` before it.
fn sanitize(name: &str) -> String {
    let mut clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.starts_with(|c: char| c.is_ascii_digit()) {
        clean.insert(0, '_');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;
    use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

    #[test]
    fn names_follow_the_prometheus_rules() {
        assert_eq!(
            sanitize("http.server.request.duration"),
            "http_server_request_duration"
        );
        assert_eq!(sanitize("9lives"), "_9lives");
        assert_eq!(sanitize("ns:metric"), "ns:metric");
    }

    #[test]
    fn exponential_buckets_are_ordered_with_upper_bounds() {
        let point = ExponentialHistogramDataPoint {
            scale: 0,
            zero_count: 1,
            zero_threshold: 0.0,
            positive: Some(Buckets {
                offset: 0,
                bucket_counts: vec![2, 3],
            }),
            negative: Some(Buckets {
                offset: 1,
                bucket_counts: vec![4],
            }),
            ..Default::default()
        };
        assert_eq!(
            exponential_buckets(&point),
            vec![(-2.0, 4), (0.0, 1), (2.0, 2), (4.0, 3), (f64::INFINITY, 0)]
        );
    }
}
