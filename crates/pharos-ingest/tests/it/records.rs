//! Spans, log records and security events over real gRPC on both backends: exact round trips,
//! partial success, the client-streaming `Write` (and where to resume after it fails), OTLP
//! traces and logs with `partial_success`, and retention by class (traces with errors kept
//! longer, critical security events kept forever).

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1 as otlp_logs;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp_trace;
use pharos_clock::Clock;
use pharos_ingest::IngestSettings;
use pharos_proto::ingest::v1 as pb;
use pharos_store::testing::TestDatabase;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt as _;

use super::{Harness as _, start_server};

pharos_store::backend_tests!(
    spans_round_trip_exactly,
    logs_and_security_events_round_trip_exactly,
    write_stream_commits_every_batch,
    write_stream_failure_says_where_to_resume,
    otlp_traces_and_logs_are_stored_as_sent,
    retention_keeps_error_traces_and_critical_events,
);

const DAY_NS: i64 = 86_400_000_000_000;

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn now_ns() -> i64 {
    Clock::system().now_micros() * 1_000
}

fn span(trace: u8, id: u8, parent: Option<u8>, start_ns: i64, error: bool) -> pb::Span {
    pb::Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|parent| vec![parent; 8]).unwrap_or_default(),
        trace_state: "vendor=x".to_owned(),
        service_name: "checkout".to_owned(),
        name: format!("op-{id}"),
        kind: pb::SpanKind::Server as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + 1_234_567,
        attributes: map(&[("http.route", "/pay"), ("user", "u1")]),
        events: vec![pb::SpanEvent {
            time_unix_nano: start_ns + 10,
            name: "retry".to_owned(),
            attributes: map(&[("attempt", "2")]),
        }],
        links: vec![pb::SpanLink {
            trace_id: vec![0xee; 16],
            span_id: vec![0xdd; 8],
            trace_state: String::new(),
            attributes: map(&[("kind", "follows")]),
        }],
        status: Some(pb::SpanStatus {
            code: if error {
                pb::SpanStatusCode::Error as i32
            } else {
                pb::SpanStatusCode::Ok as i32
            },
            message: if error { "card declined" } else { "" }.to_owned(),
        }),
        resource: map(&[("service.name", "checkout"), ("host.name", "h1")]),
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("stored JSON")
}

async fn spans_round_trip_exactly(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let mut client = server.client().await;
    let start = now_ns() - 5_000_000_000;
    let mut bad_ids = span(1, 9, None, start, false);
    bad_ids.trace_id = vec![0; 16];
    let mut backwards = span(1, 8, None, start, false);
    backwards.end_time_unix_nano = start - 1;
    let reply = client
        .write_spans(pb::WriteSpansRequest {
            spans: vec![
                span(1, 1, None, start, false),
                bad_ids,
                span(1, 2, Some(1), start + 1, true),
                backwards,
                span(1, 3, Some(1), start + 2, false),
            ],
        })
        .await
        .expect("write")
        .into_inner();
    assert_eq!((reply.accepted, reply.rejected), (3, 2), "{reply:?}");
    let reasons: Vec<(u32, &str)> = reply
        .rejections
        .iter()
        .map(|rejection| (rejection.index, rejection.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [(1, "TRACE_ID_INVALID"), (3, "SPAN_END_BEFORE_START")]
    );

    let stored = server.store.spans().trace(&[1; 16]).await.expect("trace");
    assert_eq!(stored.len(), 3);
    let root = &stored[0];
    assert_eq!(root.span_id, vec![1; 8]);
    assert!(root.parent_span_id.is_empty());
    assert_eq!(
        (root.service.as_str(), root.name.as_str(), root.kind),
        ("checkout", "op-1", 2)
    );
    assert_eq!((root.start_ns, root.end_ns), (start, start + 1_234_567));
    assert_eq!(root.trace_state, "vendor=x");
    assert_eq!(
        parse(&root.attributes),
        json!({"http.route": "/pay", "user": "u1"})
    );
    assert_eq!(
        parse(&root.events),
        json!([{"time_ns": start + 10, "name": "retry", "attributes": {"attempt": "2"}}])
    );
    assert_eq!(
        parse(&root.links),
        json!([{"trace_id": "ee".repeat(16), "span_id": "dd".repeat(8), "trace_state": "",
                "attributes": {"kind": "follows"}}])
    );
    assert_eq!(
        parse(&root.resource),
        json!({"service.name": "checkout", "host.name": "h1"})
    );
    let child = &stored[1];
    assert_eq!(child.parent_span_id, vec![1; 8]);
    assert_eq!(
        (child.status_code, child.status_message.as_str()),
        (2, "card declined")
    );
}

async fn logs_and_security_events_round_trip_exactly(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let mut client = server.client().await;
    let time = now_ns() - 1_000_000_000;
    let reply = client
        .write_logs(pb::WriteLogsRequest {
            records: vec![
                pb::LogRecord {
                    time_unix_nano: time,
                    observed_time_unix_nano: time + 5,
                    service_name: "api".to_owned(),
                    severity_number: 17,
                    severity_text: "ERROR".to_owned(),
                    body: "payment failed: ünïcode ✓".to_owned(),
                    attributes: map(&[("order", "42")]),
                    trace_id: vec![7; 16],
                    span_id: vec![8; 8],
                    resource: map(&[("service.name", "api")]),
                },
                pb::LogRecord {
                    body: "x".repeat(70_000),
                    ..Default::default()
                },
                pb::LogRecord {
                    time_unix_nano: time + 1,
                    body: "no trace".to_owned(),
                    ..Default::default()
                },
            ],
        })
        .await
        .expect("write")
        .into_inner();
    assert_eq!((reply.accepted, reply.rejected), (2, 1), "{reply:?}");
    assert_eq!(reply.rejections[0].reason, "BODY_TOO_LONG");
    let logs = server
        .store
        .logs()
        .read(time - 1, time + 10, 10)
        .await
        .expect("read");
    assert_eq!(logs.len(), 2);
    let first = &logs[0];
    assert_eq!(
        (first.time_ns, first.observed_ns, first.service.as_str()),
        (time, time + 5, "api")
    );
    assert_eq!(
        (first.severity_number, first.severity_text.as_str()),
        (17, "ERROR")
    );
    assert_eq!(first.body, "payment failed: ünïcode ✓");
    assert_eq!(parse(&first.attributes), json!({"order": "42"}));
    assert_eq!(
        (first.trace_id.clone(), first.span_id.clone()),
        (vec![7; 16], vec![8; 8])
    );
    let second = &logs[1];
    assert_eq!(second.service, "unknown_service");
    assert!(second.trace_id.is_empty() && second.span_id.is_empty());
    assert!(second.observed_ns >= time);

    let event = |severity: pb::Severity, ip: &str, offset: i64| pb::SecurityEvent {
        time_unix_nano: time + offset,
        event_type: "auth_failure".to_owned(),
        user_id: "alice".to_owned(),
        source_ip: ip.to_owned(),
        severity: severity as i32,
        resource: "/login".to_owned(),
        service_name: "auth".to_owned(),
        attributes: map(&[("method", "password")]),
    };
    let reply = client
        .write_security_events(pb::WriteSecurityEventsRequest {
            events: vec![
                event(pb::Severity::Critical, "203.0.113.9", 0),
                event(pb::Severity::High, "2001:db8::1", 1),
                event(pb::Severity::Low, "", 2),
                event(pb::Severity::Unspecified, "10.0.0.1", 3),
                event(pb::Severity::Medium, "10.0.0.300", 4),
            ],
        })
        .await
        .expect("write")
        .into_inner();
    assert_eq!((reply.accepted, reply.rejected), (3, 2), "{reply:?}");
    let reasons: Vec<&str> = reply.rejections.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["SEVERITY_INVALID", "SOURCE_IP_INVALID"]);
    let events = server
        .store
        .security_events()
        .read(time - 1, time + 10, 10)
        .await
        .expect("read");
    let summary: Vec<(i16, Option<String>)> = events
        .iter()
        .map(|event| (event.severity, event.source_ip.map(|ip| ip.to_string())))
        .collect();
    assert_eq!(
        summary,
        [
            (5, Some("203.0.113.9".to_owned())),
            (4, Some("2001:db8::1".to_owned())),
            (2, None)
        ]
    );
    assert_eq!(
        (
            events[0].event_type.as_str(),
            events[0].user_id.as_str(),
            events[0].resource.as_str(),
            events[0].service.as_str()
        ),
        ("auth_failure", "alice", "/login", "auth")
    );
    assert_eq!(parse(&events[0].attributes), json!({"method": "password"}));
}

fn metric_batch(count: usize) -> pb::WriteRequest {
    let now = Clock::system().now_micros();
    pb::WriteRequest {
        batch: Some(pb::write_request::Batch::Metrics(pb::WriteMetricsRequest {
            points: (0..count)
                .map(|i| pb::MetricPoint {
                    name: "stream_total".to_owned(),
                    labels: vec![pb::Label {
                        name: "shard".to_owned(),
                        value: (i % 4).to_string(),
                    }],
                    time_unix_nano: (now - i as i64) * 1_000,
                    value: i as f64,
                })
                .collect(),
        })),
    }
}

async fn write_stream_commits_every_batch(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let mut client = server.client().await;
    let start = now_ns() - 1_000_000_000;
    let mut batches = Vec::new();
    for round in 0..10u8 {
        batches.push(metric_batch(100));
        batches.push(pb::WriteRequest {
            batch: Some(pb::write_request::Batch::Spans(pb::WriteSpansRequest {
                spans: vec![span(round + 1, 1, None, start, false)],
            })),
        });
        batches.push(pb::WriteRequest {
            batch: Some(pb::write_request::Batch::Logs(pb::WriteLogsRequest {
                records: vec![pb::LogRecord {
                    time_unix_nano: start + i64::from(round),
                    body: format!("round {round}"),
                    ..Default::default()
                }],
            })),
        });
        batches.push(pb::WriteRequest {
            batch: Some(pb::write_request::Batch::SecurityEvents(
                pb::WriteSecurityEventsRequest {
                    events: vec![pb::SecurityEvent {
                        event_type: "rate_limit_violation".to_owned(),
                        // Every tenth event is invalid.
                        severity: if round == 9 {
                            0
                        } else {
                            pb::Severity::Medium as i32
                        },
                        ..Default::default()
                    }],
                },
            )),
        });
    }
    let reply = client
        .write(tokio_stream::iter(batches))
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.batches, 40);
    assert_eq!((reply.accepted, reply.rejected), (1_000 + 10 + 10 + 9, 1));
    assert_eq!(reply.rejections.len(), 1);
    assert_eq!(reply.rejections[0].batch, 39);
    let store = server.store.clone();
    assert_eq!(
        server.repository().count_points().await.expect("count"),
        1_000
    );
    assert_eq!(store.spans().count().await.expect("count"), 10);
    assert_eq!(store.logs().count().await.expect("count"), 10);
    assert_eq!(store.security_events().count().await.expect("count"), 9);
}

async fn write_stream_failure_says_where_to_resume(database: &TestDatabase) {
    let settings = IngestSettings {
        metrics: pharos_ingest::settings::BufferSettings {
            max_buffered_points: 500,
            ..Default::default()
        },
        ..IngestSettings::default()
    };
    let server = start_server(database, settings).await;
    let mut client = server.client().await;
    // The third batch is bigger than the whole buffer: refused, after two committed.
    let batches = vec![
        metric_batch(100),
        metric_batch(100),
        metric_batch(600),
        metric_batch(100),
    ];
    let status = client
        .write(tokio_stream::iter(batches))
        .await
        .expect_err("a batch over the buffer");
    assert_eq!(status.code(), Code::InvalidArgument);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(
        info.metadata.get("committed_batches").map(String::as_str),
        Some("2")
    );
    assert!(
        status.message().contains("resend from batch 2"),
        "{}",
        status.message()
    );
    let stored = server.repository().count_points().await.expect("count");
    assert!((200..=300).contains(&stored), "{stored}");
}

fn string(value: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(value.to_owned())),
    })
}

fn attribute(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value,
        ..Default::default()
    }
}

async fn otlp_traces_and_logs_are_stored_as_sent(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let endpoint = format!("http://{}", server.addr);
    let resource = Some(Resource {
        attributes: vec![
            attribute("service.name", string("shop")),
            attribute(
                "process.pid",
                Some(AnyValue {
                    value: Some(any_value::Value::IntValue(4242)),
                }),
            ),
        ],
        ..Default::default()
    });
    let start = u64::try_from(now_ns() - 2_000_000_000).expect("positive");
    let good = otlp_trace::Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        name: "GET /cart".to_owned(),
        kind: otlp_trace::span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 500,
        attributes: vec![attribute(
            "http.status_code",
            Some(AnyValue {
                value: Some(any_value::Value::IntValue(503)),
            }),
        )],
        status: Some(otlp_trace::Status {
            code: otlp_trace::status::StatusCode::Error as i32,
            message: "upstream".to_owned(),
        }),
        ..Default::default()
    };
    let bad = otlp_trace::Span {
        span_id: vec![0x02; 8],
        ..good.clone()
    };
    let bad = otlp_trace::Span {
        trace_id: vec![1, 2, 3],
        ..bad
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![otlp_trace::ResourceSpans {
            resource: resource.clone(),
            scope_spans: vec![otlp_trace::ScopeSpans {
                scope: Some(
                    opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                        name: "shop.http".to_owned(),
                        version: "1.2".to_owned(),
                        ..Default::default()
                    },
                ),
                spans: vec![good, bad],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut traces = TraceServiceClient::connect(endpoint.clone())
        .await
        .expect("connect");
    let reply = traces.export(request).await.expect("export").into_inner();
    let partial = reply.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("TRACE_ID_INVALID"),
        "{}",
        partial.error_message
    );

    let stored = server
        .store
        .spans()
        .trace(&[0xab; 16])
        .await
        .expect("trace");
    assert_eq!(stored.len(), 1);
    let span = &stored[0];
    assert_eq!(
        (span.service.as_str(), span.name.as_str()),
        ("shop", "GET /cart")
    );
    assert_eq!(
        (span.start_ns, span.end_ns),
        (start as i64, start as i64 + 500)
    );
    assert_eq!(
        (span.status_code, span.status_message.as_str()),
        (2, "upstream")
    );
    assert_eq!(
        parse(&span.attributes),
        json!({"http.status_code": 503, "otel.scope.name": "shop.http", "otel.scope.version": "1.2"})
    );
    assert_eq!(
        parse(&span.resource),
        json!({"service.name": "shop", "process.pid": 4242})
    );

    let record = otlp_logs::LogRecord {
        time_unix_nano: start,
        observed_time_unix_nano: start + 1,
        severity_number: otlp_logs::SeverityNumber::Warn as i32,
        severity_text: "WARN".to_owned(),
        body: Some(AnyValue {
            value: Some(any_value::Value::KvlistValue(
                opentelemetry_proto::tonic::common::v1::KeyValueList {
                    values: vec![attribute("msg", string("slow"))],
                },
            )),
        }),
        attributes: vec![attribute("k", string("v"))],
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        ..Default::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![otlp_logs::ResourceLogs {
            resource,
            scope_logs: vec![otlp_logs::ScopeLogs {
                log_records: vec![record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut logs = LogsServiceClient::connect(endpoint).await.expect("connect");
    let reply = logs.export(request).await.expect("export").into_inner();
    assert!(reply.partial_success.is_none(), "{reply:?}");
    let stored = server
        .store
        .logs()
        .read(start as i64, start as i64 + 1, 10)
        .await
        .expect("read");
    assert_eq!(stored.len(), 1);
    let log = &stored[0];
    assert_eq!(
        (
            log.service.as_str(),
            log.severity_number,
            log.severity_text.as_str()
        ),
        ("shop", 13, "WARN")
    );
    assert_eq!(parse(&log.body), json!({"msg": "slow"}));
    assert_eq!(parse(&log.attributes), json!({"k": "v"}));
    assert_eq!(
        (log.trace_id.clone(), log.span_id.clone()),
        (vec![0xab; 16], vec![0x01; 8])
    );
}

async fn retention_keeps_error_traces_and_critical_events(database: &TestDatabase) {
    let mut settings = IngestSettings::default();
    settings.limits.max_age = std::time::Duration::from_secs(500 * 86_400);
    let server = start_server(database, settings).await;
    let mut client = server.client().await;
    let now = now_ns();
    let old = now - 5 * DAY_NS;
    let recent = now - DAY_NS / 2;
    let reply = client
        .write_spans(pb::WriteSpansRequest {
            spans: vec![
                // Trace 1: old, no error. Trace 2: old, one error span. Trace 3: recent.
                span(1, 1, None, old, false),
                span(1, 2, Some(1), old + 1, false),
                span(2, 1, None, old, false),
                span(2, 2, Some(1), old + 1, true),
                span(3, 1, None, recent, false),
            ],
        })
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted, 5);
    let reply = client
        .write_logs(pb::WriteLogsRequest {
            records: vec![
                pb::LogRecord {
                    time_unix_nano: now - 10 * DAY_NS,
                    body: "old".into(),
                    ..Default::default()
                },
                pb::LogRecord {
                    time_unix_nano: recent,
                    body: "recent".into(),
                    ..Default::default()
                },
            ],
        })
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted, 2);
    let event = |severity: pb::Severity, age_days: i64| pb::SecurityEvent {
        time_unix_nano: now - age_days * DAY_NS,
        event_type: format!("probe_{age_days}"),
        severity: severity as i32,
        ..Default::default()
    };
    let reply = client
        .write_security_events(pb::WriteSecurityEventsRequest {
            events: vec![
                event(pb::Severity::Critical, 400),
                event(pb::Severity::High, 400),
                event(pb::Severity::High, 100),
                event(pb::Severity::Low, 100),
                event(pb::Severity::Low, 10),
            ],
        })
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted, 5);

    let report = server.service.apply_retention().await.expect("retention");
    if database.url().starts_with("postgres") {
        assert!(report.spans.partitions_dropped >= 1, "{report:?}");
        assert!(report.security_events.partitions_dropped >= 2, "{report:?}");
    }
    let spans = server.store.spans();
    assert!(spans.trace(&[1; 16]).await.expect("trace").is_empty());
    let kept: Vec<bool> = spans
        .trace(&[2; 16])
        .await
        .expect("trace")
        .iter()
        .map(|span| span.status_code == 2)
        .collect();
    assert_eq!(kept, [false, true], "the whole trace with an error stays");
    assert_eq!(spans.trace(&[3; 16]).await.expect("trace").len(), 1);
    let logs = server
        .store
        .logs()
        .read(0, i64::MAX, 10)
        .await
        .expect("read");
    let bodies: Vec<&str> = logs.iter().map(|log| log.body.as_str()).collect();
    assert_eq!(bodies, ["recent"]);
    let events = server
        .store
        .security_events()
        .read(0, i64::MAX, 10)
        .await
        .expect("read");
    let left: Vec<(i16, &str)> = events
        .iter()
        .map(|event| (event.severity, event.event_type.as_str()))
        .collect();
    assert_eq!(left, [(5, "probe_400"), (4, "probe_100"), (2, "probe_10")]);

    // A second pass finds nothing more, and kept traces stay until their own retention.
    let again = server.service.apply_retention().await.expect("retention");
    assert_eq!(again.spans.rows_deleted, 0);
    assert_eq!(spans.trace(&[2; 16]).await.expect("trace").len(), 2);
}
