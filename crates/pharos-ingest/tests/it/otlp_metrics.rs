//! OTLP metrics over real gRPC on both backends, read back from the store: Prometheus' names
//! (unit suffixes, `_total`), `job` and `instance`, `target_info`, a delta counter accumulated
//! across requests by the running server, a late delta point in `partial_success`, and a point
//! without a recorded value stored as a staleness marker.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1 as otlp;
use opentelemetry_proto::tonic::resource::v1::Resource;
use pharos_ingest::IngestSettings;
use pharos_store::testing::TestDatabase;

use super::{Harness as _, start_server};

pharos_store::backend_tests!(otlp_metrics_read_back_under_prometheus_names);

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn request(metrics: Vec<otlp::Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![otlp::ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    attribute("service.name", "cart"),
                    attribute("service.namespace", "shop"),
                    attribute("service.instance.id", "pod-1"),
                    attribute("host.name", "node-9"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![otlp::ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn counter(
    name: &str,
    unit: &str,
    temporality: otlp::AggregationTemporality,
    points: Vec<otlp::NumberDataPoint>,
) -> otlp::Metric {
    otlp::Metric {
        name: name.to_owned(),
        unit: unit.to_owned(),
        data: Some(otlp::metric::Data::Sum(otlp::Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn number(start: u64, time: u64, value: f64) -> otlp::NumberDataPoint {
    otlp::NumberDataPoint {
        attributes: vec![attribute("http.route", "/pay")],
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(otlp::number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

async fn otlp_metrics_read_back_under_prometheus_names(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let mut client = MetricsServiceClient::connect(format!("http://{}", server.addr))
        .await
        .expect("connect");
    let now_us = server.store.clock().now_micros();
    let at = |seconds_ago: i64| {
        u64::try_from((now_us - seconds_ago * 1_000_000) * 1_000).expect("positive")
    };

    // A delta counter over three requests, the third after a gap with a new start.
    for (start, time, value) in [
        (at(40), at(30), 2.0),
        (at(30), at(20), 3.0),
        (at(15), at(10), 1.0),
    ] {
        let reply = client
            .export(request(vec![counter(
                "payments",
                "{payment}",
                otlp::AggregationTemporality::Delta,
                vec![number(start, time, value)],
            )]))
            .await
            .expect("export")
            .into_inner();
        assert_eq!(reply.partial_success, None);
    }
    // A delta point older than the last one is dropped and said so.
    let reply = client
        .export(request(vec![counter(
            "payments",
            "{payment}",
            otlp::AggregationTemporality::Delta,
            vec![number(at(30), at(25), 5.0)],
        )]))
        .await
        .expect("export")
        .into_inner();
    let partial = reply.partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial.error_message.contains("delta"),
        "{}",
        partial.error_message
    );

    // A cumulative counter with a unit, and a gauge point without a recorded value.
    let mut stale = number(at(6), at(5), 0.0);
    stale.flags = otlp::DataPointFlags::NoRecordedValueMask as u32;
    let gauge = otlp::Metric {
        name: "queue.depth".to_owned(),
        data: Some(otlp::metric::Data::Gauge(otlp::Gauge {
            data_points: vec![number(at(7), at(6), 4.0), stale],
        })),
        ..Default::default()
    };
    let reply = client
        .export(request(vec![
            counter(
                "http.server.duration",
                "ms",
                otlp::AggregationTemporality::Cumulative,
                vec![number(at(60), at(5), 1234.0)],
            ),
            gauge,
        ]))
        .await
        .expect("export")
        .into_inner();
    assert_eq!(reply.partial_success, None);

    let repository = server.repository();
    let read = |name: &'static str| {
        let repository = repository.clone();
        async move {
            let series = repository.series_of(name).await.expect("series");
            assert_eq!(series.len(), 1, "{name}: {series:?}");
            let points = repository
                .read_points(series[0].id, now_us - 120_000_000, now_us + 1)
                .await
                .expect("points");
            let values: Vec<f64> = points.into_iter().map(|(_, value)| value).collect();
            (series[0].labels_key.clone(), values)
        }
    };
    let labels = r#"http_route="/pay",instance="pod-1",job="shop/cart""#;
    assert_eq!(
        read("payments_total").await,
        (labels.to_owned(), vec![2.0, 5.0, 6.0])
    );
    assert_eq!(
        read("http_server_duration_milliseconds_total").await,
        (labels.to_owned(), vec![1234.0])
    );
    let (key, values) = read("queue_depth").await;
    assert_eq!(key, labels);
    assert_eq!(values[0], 4.0);
    assert_eq!(values[1].to_bits(), 0x7ff0_0000_0000_0002);

    let (key, values) = read("target_info").await;
    assert_eq!(
        key,
        r#"host_name="node-9",instance="pod-1",job="shop/cart""#
    );
    assert!(values.iter().all(|value| *value == 1.0), "{values:?}");
}
