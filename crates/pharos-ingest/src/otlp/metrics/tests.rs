//! Unit tests of the OTLP → Prometheus translation in `to_points`: names with unit suffixes and
//! `_total`, `job` and `instance`, `target_info`, delta accumulation across requests, staleness
//! markers for points without a recorded value, and histogram series.

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, Gauge, HistogramDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, summary_data_point::ValueAtQuantile,
};

use super::*;

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn resource(attributes: &[(&str, &str)]) -> Resource {
    Resource {
        attributes: attributes
            .iter()
            .map(|(key, value)| attribute(key, value))
            .collect(),
        ..Default::default()
    }
}

fn request(resource: Resource, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn service() -> Resource {
    resource(&[
        ("service.name", "checkout"),
        ("service.instance.id", "pod-7"),
    ])
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.to_owned(),
        unit: unit.to_owned(),
        data: Some(data),
        ..Default::default()
    }
}

fn number_point(time: u64, value: f64, attributes: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes
            .iter()
            .map(|(key, value)| attribute(key, value))
            .collect(),
        start_time_unix_nano: time.saturating_sub(10),
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn sum(points: Vec<NumberDataPoint>, temporality: AggregationTemporality) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality as i32,
        is_monotonic: true,
    })
}

fn gauge(points: Vec<NumberDataPoint>) -> metric::Data {
    metric::Data::Gauge(Gauge {
        data_points: points,
    })
}

fn histogram_point(time: u64, counts: &[u64], sum: f64) -> HistogramDataPoint {
    HistogramDataPoint {
        start_time_unix_nano: time.saturating_sub(10),
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts.to_vec(),
        explicit_bounds: vec![0.1, 1.0],
        ..Default::default()
    }
}

fn histogram(points: Vec<HistogramDataPoint>, temporality: AggregationTemporality) -> metric::Data {
    metric::Data::Histogram(opentelemetry_proto::tonic::metrics::v1::Histogram {
        data_points: points,
        aggregation_temporality: temporality as i32,
    })
}

/// `name{a="1",b="2"}` of a point, labels sorted, for readable assertions.
fn series(point: &pb::MetricPoint) -> String {
    let mut labels: Vec<String> = point
        .labels
        .iter()
        .map(|label| format!("{}={:?}", label.name, label.value))
        .collect();
    labels.sort();
    format!("{}{{{}}}", point.name, labels.join(","))
}

/// (series, value) of every point except `target_info`.
fn samples(converted: &Converted) -> Vec<(String, f64)> {
    converted
        .points
        .iter()
        .filter(|point| point.name != TARGET_INFO)
        .map(|point| (series(point), point.value))
        .collect()
}

fn convert(request: ExportMetricsServiceRequest) -> Converted {
    to_points(request, &Deltas::default())
}

#[test]
fn names_get_unit_suffixes_before_total() {
    let converted = convert(request(
        resource(&[("service.name", "api")]),
        vec![
            metric(
                "http.server.request.duration",
                "s",
                sum(
                    vec![number_point(5, 1.0, &[])],
                    AggregationTemporality::Cumulative,
                ),
            ),
            metric(
                "http.requests",
                "{requests}",
                sum(
                    vec![number_point(5, 2.0, &[])],
                    AggregationTemporality::Cumulative,
                ),
            ),
            metric(
                "process.memory",
                "By",
                gauge(vec![number_point(5, 3.0, &[])]),
            ),
            metric(
                "cpu.utilization",
                "1",
                gauge(vec![number_point(5, 0.5, &[])]),
            ),
            metric("net.io", "By/s", gauge(vec![number_point(5, 4.0, &[])])),
            metric(
                "sent_total",
                "By",
                sum(
                    vec![number_point(5, 5.0, &[])],
                    AggregationTemporality::Cumulative,
                ),
            ),
        ],
    ));
    let names: Vec<&str> = converted.points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "http_server_request_duration_seconds_total",
            "http_requests_total",
            "process_memory_bytes",
            "cpu_utilization_ratio",
            "net_io_bytes_per_second",
            "sent_bytes_total",
        ]
    );
}

#[test]
fn job_and_instance_come_from_the_service() {
    let point = |resource: Resource| {
        let converted = convert(request(
            resource,
            vec![metric(
                "up",
                "",
                gauge(vec![number_point(
                    5,
                    1.0,
                    &[("http.route", "/"), ("0x", "a")],
                )]),
            )],
        ));
        series(&converted.points[0])
    };
    assert_eq!(
        point(resource(&[
            ("service.name", "cart"),
            ("service.namespace", "shop"),
            ("service.instance.id", "pod-1"),
        ])),
        r#"up{http_route="/",instance="pod-1",job="shop/cart",key_0x="a"}"#
    );
    assert_eq!(
        point(resource(&[("service.name", "cart")])),
        r#"up{http_route="/",job="cart",key_0x="a"}"#
    );
    // A namespace without a name makes no job; other resource attributes are no labels.
    assert_eq!(
        point(resource(&[
            ("service.namespace", "shop"),
            ("host.name", "h1")
        ])),
        r#"up{http_route="/",key_0x="a"}"#
    );
}

#[test]
fn attributes_that_sanitize_alike_are_joined_and_job_wins() {
    let converted = convert(request(
        resource(&[("service.name", "cart")]),
        vec![metric(
            "up",
            "",
            gauge(vec![number_point(
                5,
                1.0,
                &[
                    ("a.b", "2"),
                    ("a_b", "1"),
                    ("job", "mine"),
                    ("__name__", "x"),
                ],
            )]),
        )],
    ));
    assert_eq!(series(&converted.points[0]), r#"up{a_b="2;1",job="cart"}"#);
}

#[test]
fn target_info_carries_the_other_resource_attributes() {
    let converted = convert(request(
        resource(&[
            ("service.name", "checkout"),
            ("service.instance.id", "pod-7"),
            ("host.name", "node-1"),
            ("telemetry.sdk.language", "rust"),
        ]),
        vec![
            metric("a", "", gauge(vec![number_point(20, 1.0, &[])])),
            metric(
                "b",
                "",
                gauge(vec![number_point(30, 1.0, &[]), number_point(25, 1.0, &[])]),
            ),
        ],
    ));
    let info: Vec<&pb::MetricPoint> = converted
        .points
        .iter()
        .filter(|point| point.name == TARGET_INFO)
        .collect();
    assert_eq!(info.len(), 1);
    assert_eq!(
        series(info[0]),
        r#"target_info{host_name="node-1",instance="pod-7",job="checkout",telemetry_sdk_language="rust"}"#
    );
    assert_eq!(info[0].value, 1.0);
    assert_eq!(info[0].time_unix_nano, 30);

    let has_info = |resource: Resource| {
        let converted = convert(request(
            resource,
            vec![metric("a", "", gauge(vec![number_point(20, 1.0, &[])]))],
        ));
        converted
            .points
            .iter()
            .any(|point| point.name == TARGET_INFO)
    };
    // Only the service attributes: nothing more to say.
    assert!(!has_info(service()));
    // Other attributes but neither job nor instance: nothing to join it with.
    assert!(!has_info(resource(&[("host.name", "node-1")])));
    assert!(has_info(resource(&[
        ("service.instance.id", "i"),
        ("host.name", "n")
    ])));
    // No data point, no time: no target_info.
    let empty = convert(request(
        resource(&[("service.name", "a"), ("host.name", "n")]),
        vec![],
    ));
    assert!(empty.points.is_empty());
}

#[test]
fn delta_sums_accumulate_across_requests() {
    let deltas = Deltas::default();
    let delta = |time: u64, value: f64| {
        let converted = to_points(
            request(
                service(),
                vec![metric(
                    "jobs.done",
                    "",
                    sum(
                        vec![number_point(time, value, &[("queue", "q1")])],
                        AggregationTemporality::Delta,
                    ),
                )],
            ),
            &deltas,
        );
        (samples(&converted), converted.late_deltas)
    };
    let series = r#"jobs_done_total{instance="pod-7",job="checkout",queue="q1"}"#.to_owned();
    assert_eq!(delta(10, 2.0), (vec![(series.clone(), 2.0)], 0));
    assert_eq!(delta(20, 3.0), (vec![(series.clone(), 5.0)], 0));
    // A restart after a gap (a new start time): the total goes on.
    assert_eq!(delta(100, 1.0), (vec![(series.clone(), 6.0)], 0));
    // A point older than the last: dropped and counted.
    assert_eq!(delta(50, 1.0), (vec![], 1));
    // Cumulative sums are stored as sent.
    let cumulative = convert(request(
        service(),
        vec![metric(
            "jobs.done",
            "",
            sum(
                vec![number_point(10, 7.0, &[])],
                AggregationTemporality::Cumulative,
            ),
        )],
    ));
    assert_eq!(cumulative.points[0].value, 7.0);
}

#[test]
fn delta_histograms_accumulate_across_requests() {
    let deltas = Deltas::default();
    let delta = |time: u64, counts: &[u64], total: f64| {
        let converted = to_points(
            request(
                service(),
                vec![metric(
                    "rpc.duration",
                    "ms",
                    histogram(
                        vec![histogram_point(time, counts, total)],
                        AggregationTemporality::Delta,
                    ),
                )],
            ),
            &deltas,
        );
        converted
            .points
            .iter()
            .map(|point| point.value)
            .collect::<Vec<f64>>()
    };
    // _sum, _count, le=0.1, le=1, le=+Inf
    assert_eq!(delta(10, &[1, 0, 0], 0.05), [0.05, 1.0, 1.0, 1.0, 1.0]);
    assert_eq!(delta(20, &[0, 2, 1], 3.0), [3.05, 4.0, 1.0, 3.0, 4.0]);
    assert_eq!(delta(30, &[1, 1, 0], 0.5), [3.55, 6.0, 2.0, 5.0, 6.0]);
}

#[test]
fn histograms_are_named_with_their_unit() {
    let converted = convert(request(
        service(),
        vec![metric(
            "http.server.request.duration",
            "s",
            histogram(
                vec![histogram_point(10, &[1, 2, 3], 4.5)],
                AggregationTemporality::Cumulative,
            ),
        )],
    ));
    let base = r#"instance="pod-7",job="checkout""#;
    let name = "http_server_request_duration_seconds";
    assert_eq!(
        samples(&converted),
        [
            (format!("{name}_sum{{{base}}}"), 4.5),
            (format!("{name}_count{{{base}}}"), 6.0),
            (format!(r#"{name}_bucket{{{base},le="0.1"}}"#), 1.0),
            (format!(r#"{name}_bucket{{{base},le="1"}}"#), 3.0),
            (format!(r#"{name}_bucket{{{base},le="+Inf"}}"#), 6.0),
        ]
    );
}

#[test]
fn summaries_keep_quantiles_sum_and_count() {
    let summary = metric::Data::Summary(Summary {
        data_points: vec![SummaryDataPoint {
            time_unix_nano: 10,
            count: 4,
            sum: 2.0,
            quantile_values: vec![ValueAtQuantile {
                quantile: 0.99,
                value: 0.9,
            }],
            ..Default::default()
        }],
    });
    let converted = convert(request(
        resource(&[("service.name", "s")]),
        vec![metric("gc.pause", "s", summary)],
    ));
    assert_eq!(
        samples(&converted),
        [
            (r#"gc_pause_seconds_sum{job="s"}"#.to_owned(), 2.0),
            (r#"gc_pause_seconds_count{job="s"}"#.to_owned(), 4.0),
            (
                r#"gc_pause_seconds{job="s",quantile="0.99"}"#.to_owned(),
                0.9
            ),
        ]
    );
}

#[test]
fn no_recorded_value_becomes_a_staleness_marker() {
    let stale = |mut point: NumberDataPoint| {
        point.flags = NO_RECORDED_VALUE;
        point
    };
    let mut stale_histogram = histogram_point(10, &[1, 2, 3], 4.5);
    stale_histogram.flags = NO_RECORDED_VALUE;
    let deltas = Deltas::default();
    let converted = to_points(
        request(
            service(),
            vec![
                metric("g", "", gauge(vec![stale(number_point(10, 1.0, &[]))])),
                metric(
                    "c",
                    "",
                    sum(
                        vec![stale(number_point(10, 1.0, &[]))],
                        AggregationTemporality::Cumulative,
                    ),
                ),
                metric(
                    "d",
                    "",
                    sum(
                        vec![stale(number_point(10, 1.0, &[]))],
                        AggregationTemporality::Delta,
                    ),
                ),
                metric(
                    "h",
                    "",
                    histogram(vec![stale_histogram], AggregationTemporality::Cumulative),
                ),
            ],
        ),
        &deltas,
    );
    assert_eq!(converted.points.len(), 3 + 5);
    for point in &converted.points {
        assert_eq!(
            point.value.to_bits(),
            0x7ff0_0000_0000_0002,
            "{}",
            series(point)
        );
    }
    // A stale delta point leaves the running total alone.
    assert_eq!(deltas.series_count(), 0);
}

#[test]
fn exponential_histograms_become_classic_buckets() {
    let point = ExponentialHistogramDataPoint {
        time_unix_nano: 10,
        scale: 0,
        count: 10,
        sum: Some(3.0),
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
        exponential_buckets(&exponential_total(&point)),
        vec![(-2.0, 4), (0.0, 1), (2.0, 2), (4.0, 3)]
    );
    let converted = convert(request(
        resource(&[("service.name", "s")]),
        vec![metric(
            "latency",
            "ms",
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        )],
    ));
    let buckets: Vec<(String, f64)> = samples(&converted)
        .into_iter()
        .filter(|(series, _)| series.starts_with("latency_milliseconds_bucket"))
        .collect();
    assert_eq!(
        buckets,
        [
            (
                r#"latency_milliseconds_bucket{job="s",le="-2"}"#.to_owned(),
                4.0
            ),
            (
                r#"latency_milliseconds_bucket{job="s",le="0"}"#.to_owned(),
                5.0
            ),
            (
                r#"latency_milliseconds_bucket{job="s",le="2"}"#.to_owned(),
                7.0
            ),
            (
                r#"latency_milliseconds_bucket{job="s",le="4"}"#.to_owned(),
                10.0
            ),
            (
                r#"latency_milliseconds_bucket{job="s",le="+Inf"}"#.to_owned(),
                10.0
            ),
        ]
    );
    // Offsets at the ends of the range do not overflow.
    let extreme = ExponentialHistogramDataPoint {
        positive: Some(Buckets {
            offset: i32::MAX,
            bucket_counts: vec![1, 1],
        }),
        ..Default::default()
    };
    assert_eq!(exponential_total(&extreme).positive.len(), 2);
}

#[test]
fn bucket_and_quantile_labels_replace_attributes_of_that_name() {
    let mut point = histogram_point(10, &[1, 0, 0], 0.05);
    point.attributes = vec![attribute("le", "mine")];
    let converted = convert(request(
        resource(&[("service.name", "s")]),
        vec![metric(
            "h",
            "",
            histogram(vec![point], AggregationTemporality::Cumulative),
        )],
    ));
    assert_eq!(
        series(&converted.points[2]),
        r#"h_bucket{job="s",le="0.1"}"#
    );
}
