//! OTLP metrics (`opentelemetry.proto.collector.metrics.v1.MetricsService`). Each OTLP data
//! point becomes Pharos metric points under the names and labels Prometheus' own OTLP receiver
//! gives them, so dashboards and rules written for Prometheus work on OpenTelemetry-instrumented
//! services. The translation followed is Prometheus **v2.53**'s
//! (`storage/remote/otlptranslator/` at tag v2.53.0: `prometheus/normalize_name.go`,
//! `prometheus/normalize_label.go`, `prometheusremotewrite/helper.go`,
//! `number_data_points.go` and `metrics_to_prw.go`) with `add_metric_suffixes: true`, its
//! default:
//!
//! - names: [`naming`](super::naming): words of the name, unit suffixes (`s` → `_seconds`,
//!   `By/s` → `_bytes_per_second`, `{annotations}` dropped), `_total` after them for monotonic
//!   sums, `_ratio` for gauges of unit `1`;
//! - labels: the data point's attributes, sanitized (`key_` before a leading digit or single
//!   `_`); attributes that sanitize to the same name are joined with `;` in key order; `job` is
//!   `service.namespace/service.name` (or `service.name` alone) and `instance` is
//!   `service.instance.id`, and they win over attributes of those names; other resource
//!   attributes are not labels of the points;
//! - `target_info`: one point of value 1 per resource per request, at the latest data point time
//!   of the resource, labelled with `job`, `instance` and the resource's other attributes
//!   (sanitized), when the resource has attributes beyond `service.name`,
//!   `service.namespace` and `service.instance.id` and a `job` or `instance` label;
//! - gauges and cumulative sums: one point each;
//! - histograms: `_sum` (when sent), `_count`, and cumulative `_bucket{le}` points with
//!   `le="+Inf"` equal to the count;
//! - summaries: `{quantile}` points, `_sum` and `_count`;
//! - points flagged "no recorded value" become Prometheus staleness markers ([`STALE_NAN`]) on
//!   every series the point would have written, so queries stop showing the series at once;
//! - attribute values as label text: strings as sent, numbers and booleans as Go's
//!   `pcommon.Value.AsString` prints them, bytes as base64, arrays and maps as JSON.
//!
//! Where Pharos goes beyond v2.53 (which refuses delta temporality and keeps exponential
//! histograms as native histograms) or departs from it:
//!
//! - delta sums and histograms are accumulated into cumulative ones ([`super::delta`]);
//!   unspecified temporality is taken as cumulative;
//! - exponential histograms become classic `_bucket{le}` (each bucket's upper bound),
//!   `_sum` and `_count` points under the same name, since Pharos stores no native histograms;
//! - a data point's `le` or `quantile` attribute is replaced by the bucket's or quantile's;
//! - NaN and infinite attribute values read `NaN`, `+Inf` and `-Inf` (Go prints an error text).
//!
//! Series names and labels Pharos' validation refuses (a label starting with `__`, non-ASCII
//! letters) come back in `partial_success` with the reason, like any other refused point.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    self, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, Metric, NumberDataPoint, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use pharos_proto::ingest::v1 as pb;
use tonic::{Request, Response, Status};

use super::delta::{DeltaLimits, Deltas, ExponentialTotal, HistogramTotal};
use super::naming::{Kind, label_name, metric_name};
use super::{nanos, summarize, text};
use crate::service::{IngestService, Outcome};

/// Prometheus' staleness marker: a NaN with this exact bit pattern (`value.StaleNaN`) ends a
/// series in queries, unlike an ordinary NaN.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);
/// The OTLP flag bit of a data point that carries no recorded value.
const NO_RECORDED_VALUE: u32 = 1;
/// The series that carries a resource's attributes.
const TARGET_INFO: &str = "target_info";
const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
/// The resource attributes that become `job` and `instance` rather than `target_info` labels.
const IDENTIFYING: [&str; 3] = [SERVICE_NAMESPACE, SERVICE_NAME, SERVICE_INSTANCE_ID];

/// The OTLP metrics service: converts, then writes through [`IngestService::write_metrics`].
/// It owns the running totals of delta series, so they live as long as the server.
#[derive(Clone)]
pub struct OtlpMetrics {
    service: Arc<IngestService>,
    deltas: Arc<Deltas>,
}

/// The mountable OTLP metrics server; gzip accepted, as OTLP exporters often send it.
pub fn metrics_server(
    service: Arc<IngestService>,
    max_message_bytes: usize,
) -> MetricsServiceServer<OtlpMetrics> {
    let deltas = Arc::new(Deltas::new(DeltaLimits::default()));
    pharos_runtime::tonic_server!(
        MetricsServiceServer::new(OtlpMetrics { service, deltas }),
        max_message_bytes
    )
}

#[tonic::async_trait]
impl metrics_service_server::MetricsService for OtlpMetrics {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let Converted {
            points,
            late_deltas,
        } = to_points(request.into_inner(), &self.deltas);
        let outcome = if points.is_empty() {
            Outcome::default()
        } else {
            self.service
                .write_metrics(pb::WriteMetricsRequest { points })
                .await?
        };
        let rejected = (outcome.rejections.len() as u64).saturating_add(late_deltas);
        let partial_success = (rejected > 0).then(|| {
            let mut message = summarize(&outcome.rejections);
            if late_deltas > 0 {
                if !message.is_empty() {
                    message.push_str("; ");
                }
                message.push_str(&format!(
                    "{late_deltas} delta points not after their series' last point were dropped"
                ));
            }
            ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: message,
            }
        });
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success,
        }))
    }
}

/// What an OTLP request becomes.
#[derive(Debug, Default)]
pub struct Converted {
    /// The points to write.
    pub points: Vec<pb::MetricPoint>,
    /// Delta data points dropped because their series already had a later one.
    pub late_deltas: u64,
}

/// Every Pharos point an OTLP request carries; delta series add to the totals in `deltas`.
pub fn to_points(request: ExportMetricsServiceRequest, deltas: &Deltas) -> Converted {
    let mut out = Converted::default();
    for resource_metrics in request.resource_metrics {
        let resource = ResourceLabels::new(resource_metrics.resource.as_ref());
        let mut latest = 0u64;
        for scope in resource_metrics.scope_metrics {
            for metric in scope.metrics {
                latest = latest.max(latest_time(&metric));
                convert_metric(metric, &resource, deltas, &mut out);
            }
        }
        if let Some(labels) = resource.target_info
            && latest > 0
        {
            out.push(TARGET_INFO, labels, latest, 1.0);
        }
    }
    out
}

/// What a resource contributes: `job` and `instance` for every point, and the labels of its
/// `target_info` point when it gets one.
struct ResourceLabels {
    identity: Vec<(&'static str, String)>,
    target_info: Option<Vec<pb::Label>>,
}

impl ResourceLabels {
    fn new(resource: Option<&Resource>) -> Self {
        let attributes = resource.map_or(&[][..], |resource| &resource.attributes[..]);
        let find = |key: &str| {
            attributes
                .iter()
                .find(|kv| kv.key == key)
                .map(|kv| text(kv.value.as_ref()))
        };
        let mut identity = Vec::new();
        if let Some(name) = find(SERVICE_NAME) {
            let job = match find(SERVICE_NAMESPACE) {
                Some(namespace) => format!("{namespace}/{name}"),
                None => name,
            };
            identity.push(("job", job));
        }
        if let Some(instance) = find(SERVICE_INSTANCE_ID) {
            identity.push(("instance", instance));
        }
        let mut others = attributes
            .iter()
            .filter(|kv| !IDENTIFYING.contains(&kv.key.as_str()))
            .peekable();
        let target_info = others
            .peek()
            .is_some()
            .then(|| labels_of(others, &identity))
            .filter(|labels| {
                labels
                    .iter()
                    .any(|label| label.name == "job" || label.name == "instance")
            });
        Self {
            identity,
            target_info,
        }
    }

    /// The labels of a data point with `attributes`.
    fn labels(&self, attributes: &[KeyValue]) -> Vec<pb::Label> {
        labels_of(attributes.iter(), &self.identity)
    }
}

/// The translator's `createAttributes`: attributes sorted by key, sanitized, values of keys
/// that sanitize alike joined with `;`, then `job` and `instance` over them; `__name__` is the
/// metric's own.
fn labels_of<'a>(
    attributes: impl Iterator<Item = &'a KeyValue>,
    identity: &[(&'static str, String)],
) -> Vec<pb::Label> {
    let mut attributes: Vec<&KeyValue> = attributes.collect();
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for kv in attributes {
        let value = text(kv.value.as_ref());
        match labels.entry(label_name(&kv.key)) {
            Entry::Occupied(mut joined) => {
                let joined = joined.get_mut();
                joined.push(';');
                joined.push_str(&value);
            }
            Entry::Vacant(slot) => {
                slot.insert(value);
            }
        }
    }
    for (name, value) in identity {
        labels.insert((*name).to_owned(), value.clone());
    }
    labels.remove("__name__");
    labels
        .into_iter()
        .map(|(name, value)| pb::Label { name, value })
        .collect()
}

/// The latest data point time of a metric (nanoseconds), 0 without points.
fn latest_time(metric: &Metric) -> u64 {
    let times: Box<dyn Iterator<Item = u64> + '_> = match &metric.data {
        Some(metric::Data::Gauge(gauge)) => {
            Box::new(gauge.data_points.iter().map(|p| p.time_unix_nano))
        }
        Some(metric::Data::Sum(sum)) => Box::new(sum.data_points.iter().map(|p| p.time_unix_nano)),
        Some(metric::Data::Histogram(histogram)) => {
            Box::new(histogram.data_points.iter().map(|p| p.time_unix_nano))
        }
        Some(metric::Data::ExponentialHistogram(histogram)) => {
            Box::new(histogram.data_points.iter().map(|p| p.time_unix_nano))
        }
        Some(metric::Data::Summary(summary)) => {
            Box::new(summary.data_points.iter().map(|p| p.time_unix_nano))
        }
        None => Box::new(std::iter::empty()),
    };
    times.max().unwrap_or(0)
}

fn is_delta(temporality: i32) -> bool {
    temporality == AggregationTemporality::Delta as i32
}

fn is_stale(flags: u32) -> bool {
    flags & NO_RECORDED_VALUE != 0
}

fn convert_metric(metric: Metric, resource: &ResourceLabels, deltas: &Deltas, out: &mut Converted) {
    let Some(data) = metric.data else {
        return;
    };
    let name = |kind| metric_name(&metric.name, &metric.unit, kind);
    match data {
        metric::Data::Gauge(gauge) => {
            let name = name(Kind::Gauge);
            for point in gauge.data_points {
                let value = if is_stale(point.flags) {
                    STALE_NAN
                } else {
                    number(point.value)
                };
                out.push(
                    &name,
                    resource.labels(&point.attributes),
                    point.time_unix_nano,
                    value,
                );
            }
        }
        metric::Data::Sum(sum) => {
            let name = name(Kind::Sum {
                monotonic: sum.is_monotonic,
            });
            let delta = is_delta(sum.aggregation_temporality);
            for point in sum.data_points {
                let labels = resource.labels(&point.attributes);
                let value = if is_stale(point.flags) {
                    STALE_NAN
                } else if delta {
                    match accumulate_sum(deltas, &name, &labels, &point) {
                        Some(total) => total,
                        None => {
                            out.late_deltas += 1;
                            continue;
                        }
                    }
                } else {
                    number(point.value)
                };
                out.push(&name, labels, point.time_unix_nano, value);
            }
        }
        metric::Data::Histogram(histogram) => {
            let name = name(Kind::Other);
            let delta = is_delta(histogram.aggregation_temporality);
            for point in histogram.data_points {
                let labels = resource.labels(&point.attributes);
                let stale = is_stale(point.flags);
                let mut total = HistogramTotal {
                    bounds: point.explicit_bounds,
                    counts: point.bucket_counts,
                    sum: point.sum,
                    count: point.count,
                };
                if delta && !stale {
                    let (start, time) = (point.start_time_unix_nano, point.time_unix_nano);
                    match deltas.histogram(&name, &labels, start, time, total) {
                        Some(accumulated) => total = accumulated,
                        None => {
                            out.late_deltas += 1;
                            continue;
                        }
                    }
                }
                let buckets = total.bounds.iter().copied().zip(total.counts);
                let histogram = Histogram {
                    name: &name,
                    labels: &labels,
                    time: point.time_unix_nano,
                    sum: total.sum,
                    count: total.count,
                    stale,
                };
                out.histogram(histogram, buckets);
            }
        }
        metric::Data::ExponentialHistogram(histogram) => {
            let name = name(Kind::Other);
            let delta = is_delta(histogram.aggregation_temporality);
            for point in histogram.data_points {
                let labels = resource.labels(&point.attributes);
                let stale = is_stale(point.flags);
                let mut total = exponential_total(&point);
                if delta && !stale {
                    let (start, time) = (point.start_time_unix_nano, point.time_unix_nano);
                    match deltas.exponential(&name, &labels, start, time, total) {
                        Some(accumulated) => total = accumulated,
                        None => {
                            out.late_deltas += 1;
                            continue;
                        }
                    }
                }
                let histogram = Histogram {
                    name: &name,
                    labels: &labels,
                    time: point.time_unix_nano,
                    sum: total.sum,
                    count: total.count,
                    stale,
                };
                out.histogram(histogram, exponential_buckets(&total));
            }
        }
        metric::Data::Summary(summary) => {
            let name = name(Kind::Other);
            for point in summary.data_points {
                let labels = resource.labels(&point.attributes);
                let time = point.time_unix_nano;
                let value = |value: f64| {
                    if is_stale(point.flags) {
                        STALE_NAN
                    } else {
                        value
                    }
                };
                out.push(
                    &format!("{name}_sum"),
                    labels.clone(),
                    time,
                    value(point.sum),
                );
                out.push(
                    &format!("{name}_count"),
                    labels.clone(),
                    time,
                    value(point.count as f64),
                );
                for quantile in &point.quantile_values {
                    let labels = with_label(&labels, "quantile", quantile.quantile);
                    out.push(&name, labels, time, value(quantile.value));
                }
            }
        }
    }
}

fn accumulate_sum(
    deltas: &Deltas,
    name: &str,
    labels: &[pb::Label],
    point: &NumberDataPoint,
) -> Option<f64> {
    deltas.sum(
        name,
        labels,
        point.start_time_unix_nano,
        point.time_unix_nano,
        number(point.value),
    )
}

/// One histogram data point to write.
struct Histogram<'a> {
    name: &'a str,
    labels: &'a [pb::Label],
    time: u64,
    sum: Option<f64>,
    count: u64,
    stale: bool,
}

impl Converted {
    fn push(&mut self, name: &str, labels: Vec<pb::Label>, time: u64, value: f64) {
        self.points.push(pb::MetricPoint {
            name: name.to_owned(),
            labels,
            time_unix_nano: nanos(time),
            value,
        });
    }

    /// `_sum` (when known), `_count`, then cumulative `_bucket{le}` points from (upper bound,
    /// count) pairs and `le="+Inf"` with the count, as the translator writes them.
    fn histogram(
        &mut self,
        histogram: Histogram<'_>,
        buckets: impl IntoIterator<Item = (f64, u64)>,
    ) {
        let Histogram {
            name,
            labels,
            time,
            sum,
            count,
            stale,
        } = histogram;
        let value = |value: f64| if stale { STALE_NAN } else { value };
        if let Some(sum) = sum {
            self.push(&format!("{name}_sum"), labels.to_vec(), time, value(sum));
        }
        self.push(
            &format!("{name}_count"),
            labels.to_vec(),
            time,
            value(count as f64),
        );
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (bound, in_bucket) in buckets {
            cumulative = cumulative.saturating_add(in_bucket);
            let labels = with_label(labels, "le", bound);
            self.push(&bucket, labels, time, value(cumulative as f64));
        }
        let labels = with_label(labels, "le", f64::INFINITY);
        self.push(&bucket, labels, time, value(count as f64));
    }
}

/// An exponential histogram point as bucket index → count maps.
fn exponential_total(point: &ExponentialHistogramDataPoint) -> ExponentialTotal {
    let buckets = |side: Option<&Buckets>| -> BTreeMap<i64, u64> {
        let Some(side) = side else {
            return BTreeMap::new();
        };
        side.bucket_counts
            .iter()
            .enumerate()
            .map(|(position, count)| {
                let position = i64::try_from(position).unwrap_or(i64::MAX);
                (i64::from(side.offset).saturating_add(position), *count)
            })
            .collect()
    };
    ExponentialTotal {
        scale: point.scale,
        zero_threshold: point.zero_threshold,
        zero_count: point.zero_count,
        positive: buckets(point.positive.as_ref()),
        negative: buckets(point.negative.as_ref()),
        sum: point.sum,
        count: point.count,
    }
}

/// (upper bound, count) of every bucket of an exponential histogram, lowest first: negative
/// buckets (bucket `i` covers `[-base^(i+1), -base^i)`), the zero bucket, positive buckets
/// (bucket `i` covers `(base^i, base^(i+1)]`), with `base = 2^(2^-scale)`.
fn exponential_buckets(histogram: &ExponentialTotal) -> Vec<(f64, u64)> {
    let step = 2f64.powi(histogram.scale.saturating_neg());
    let bound = |index: i64| (index as f64 * step).exp2();
    let negative = histogram
        .negative
        .iter()
        .rev()
        .map(|(index, count)| (-bound(*index), *count));
    let zero = std::iter::once((histogram.zero_threshold, histogram.zero_count));
    let positive = histogram
        .positive
        .iter()
        .map(|(index, count)| (bound(index.saturating_add(1)), *count));
    negative.chain(zero).chain(positive).collect()
}

/// `base` with the label `name` set to `value` as Prometheus prints bounds and quantiles.
fn with_label(base: &[pb::Label], name: &str, value: f64) -> Vec<pb::Label> {
    let mut labels: Vec<pb::Label> = base.iter().filter(|l| l.name != name).cloned().collect();
    let value = if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    };
    labels.push(pb::Label {
        name: name.to_owned(),
        value,
    });
    labels
}

/// A number point's value; none reads as 0, as the translator leaves it.
fn number(value: Option<number_data_point::Value>) -> f64 {
    match value {
        Some(number_data_point::Value::AsDouble(value)) => value,
        Some(number_data_point::Value::AsInt(value)) => value as f64,
        None => 0.0,
    }
}
