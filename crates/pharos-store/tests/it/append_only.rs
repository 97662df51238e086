//! The append-only tables on both backends (spans, logs, security events): a batch goes in whole
//! and reads back field for field, counts agree, and expiry follows each table's rules (traces
//! with an error are kept longer, critical security events forever).

use pharos_store::Backend;
use pharos_store::signals::logs::LogRow;
use pharos_store::signals::security_events::{SEVERITY_CRITICAL, SEVERITY_HIGH, SecurityEventRow};
use pharos_store::signals::spans::{STATUS_ERROR, SpanRow};
use pharos_store::testing::TestDatabase;

use super::DAY_START_US;

pharos_store::backend_tests!(
    spans_round_trip_by_trace,
    span_expiry_keeps_traces_with_errors_longer,
    logs_round_trip_and_expire,
    security_events_expire_by_severity,
);

const DAY_NS: i64 = 86_400_000_000_000;
/// 2026-11-25T00:00:00Z in nanoseconds.
const DAY_START_NS: i64 = DAY_START_US * 1_000;

fn span(trace: u8, id: u8, parent: Option<u8>, start_ns: i64, status_code: i16) -> SpanRow {
    SpanRow {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|parent| vec![parent; 8]).unwrap_or_default(),
        trace_state: String::new(),
        service: "checkout".into(),
        name: format!("span {id}"),
        kind: 2,
        start_ns,
        end_ns: start_ns + 1_000,
        status_code,
        status_message: String::new(),
        attributes: r#"{"http.route":"/pay"}"#.into(),
        events: "[]".into(),
        links: "[]".into(),
        resource: r#"{"service.name":"checkout"}"#.into(),
    }
}

fn log(time_ns: i64, body: &str, trace: Option<u8>) -> LogRow {
    LogRow {
        time_ns,
        observed_ns: time_ns + 5,
        service: "checkout".into(),
        severity_number: 9,
        severity_text: "INFO".into(),
        body: body.into(),
        attributes: r#"{"user":"alice"}"#.into(),
        resource: "{}".into(),
        trace_id: trace.map(|trace| vec![trace; 16]).unwrap_or_default(),
        span_id: trace.map(|trace| vec![trace; 8]).unwrap_or_default(),
    }
}

fn event(time_ns: i64, event_type: &str, severity: i16) -> SecurityEventRow {
    SecurityEventRow {
        time_ns,
        event_type: event_type.into(),
        severity,
        user_id: "alice".into(),
        source_ip: Some("192.0.2.7".parse().expect("address")),
        resource: "/login".into(),
        service: "auth".into(),
        attributes: r#"{"method":"password"}"#.into(),
    }
}

/// JSON text compared by value: PostgreSQL's `jsonb` normalizes spacing.
fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("json")
}

async fn spans_round_trip_by_trace(database: &TestDatabase) {
    let spans = database.store().await.spans();
    let root = span(1, 1, None, DAY_START_NS + 10, 0);
    let child = span(1, 2, Some(1), DAY_START_NS + 20, STATUS_ERROR);
    let other = span(2, 3, None, DAY_START_NS + 15, 0);
    spans
        .insert(&[child.clone(), other.clone(), root.clone()])
        .await
        .expect("insert");
    spans.insert(&[]).await.expect("an empty batch");
    assert_eq!(spans.count().await.expect("count"), 3);

    let trace = spans.trace(&root.trace_id).await.expect("trace");
    assert_eq!(trace.len(), 2);
    for (read, written) in trace.iter().zip([&root, &child]) {
        assert_eq!(json(&read.attributes), json(&written.attributes));
        assert_eq!(json(&read.resource), json(&written.resource));
        let plain = |row: &SpanRow| SpanRow {
            attributes: String::new(),
            resource: String::new(),
            ..row.clone()
        };
        assert_eq!(plain(read), plain(written));
    }
    assert!(trace[0].parent_span_id.is_empty());
    assert!(spans.trace(&[9; 16]).await.expect("no trace").is_empty());
}

async fn span_expiry_keeps_traces_with_errors_longer(database: &TestDatabase) {
    let spans = database.store().await.spans();
    let old = DAY_START_NS + 3_600_000_000_000;
    let recent = DAY_START_NS + 3 * DAY_NS;
    spans
        .insert(&[
            span(1, 1, None, old, 0),
            span(1, 2, Some(1), old + 1, STATUS_ERROR),
            span(2, 3, None, old + 2, 0),
            span(3, 4, None, recent, 0),
        ])
        .await
        .expect("insert");

    // The first day expires; its trace with an error is kept until the error cut passes it.
    spans
        .expire(DAY_START_NS + DAY_NS, DAY_START_NS)
        .await
        .expect("expire");
    assert_eq!(spans.count().await.expect("count"), 3);
    assert_eq!(spans.trace(&[1; 16]).await.expect("kept").len(), 2);
    assert!(spans.trace(&[2; 16]).await.expect("gone").is_empty());

    spans
        .expire(DAY_START_NS + DAY_NS, DAY_START_NS + DAY_NS)
        .await
        .expect("expire errors");
    assert_eq!(spans.count().await.expect("count"), 1);
    assert!(spans.trace(&[1; 16]).await.expect("gone").is_empty());
    assert_eq!(spans.trace(&[3; 16]).await.expect("recent").len(), 1);
}

async fn logs_round_trip_and_expire(database: &TestDatabase) {
    let store = database.store().await;
    let logs = store.logs();
    let first = log(DAY_START_NS + 1, "b", Some(4));
    let same_time = log(DAY_START_NS + 1, "a", None);
    let later = log(DAY_START_NS + 2 * DAY_NS, "c", None);
    logs.insert(&[later.clone(), first.clone(), same_time.clone()])
        .await
        .expect("insert");
    assert_eq!(logs.count().await.expect("count"), 3);

    let read = logs.read(0, i64::MAX, 10).await.expect("read");
    let bodies: Vec<&str> = read.iter().map(|row| row.body.as_str()).collect();
    assert_eq!(bodies, ["a", "b", "c"], "by time, then body");
    assert_eq!(read[1].trace_id, first.trace_id);
    assert!(read[0].trace_id.is_empty() && read[0].span_id.is_empty());
    assert_eq!(json(&read[1].attributes), json(&first.attributes));
    assert_eq!(
        (
            read[1].time_ns,
            read[1].observed_ns,
            read[1].severity_number
        ),
        (first.time_ns, first.observed_ns, first.severity_number)
    );
    assert_eq!(logs.read(0, i64::MAX, 1).await.expect("limit").len(), 1);
    assert_eq!(
        logs.read(DAY_START_NS + 2, i64::MAX, 10)
            .await
            .expect("range")[0]
            .body,
        "c"
    );

    let expired = logs.expire(DAY_START_NS + DAY_NS).await.expect("expire");
    match store.backend() {
        Backend::Postgres => assert_eq!(expired.partitions_dropped, 1),
        Backend::Sqlite => assert_eq!(expired.rows_deleted, 2),
    }
    assert_eq!(logs.count().await.expect("count"), 1);
    assert_eq!(logs.read(0, i64::MAX, 10).await.expect("read")[0].body, "c");
}

async fn security_events_expire_by_severity(database: &TestDatabase) {
    let events = database.store().await.security_events();
    let at = DAY_START_NS + 60;
    let written = [
        event(at, "auth_failure", 2),
        event(at + 1, "privilege_escalation", SEVERITY_HIGH),
        event(at + 2, "root_login", SEVERITY_CRITICAL),
    ];
    assert_eq!(events.insert(&written, None).await.expect("insert"), None);
    assert_eq!(events.count().await.expect("count"), 3);
    let read = events.read(0, i64::MAX, 10).await.expect("read");
    assert_eq!(read.len(), 3);
    for (read, written) in read.iter().zip(&written) {
        assert_eq!(json(&read.attributes), json(&written.attributes));
        assert_eq!(
            SecurityEventRow {
                attributes: String::new(),
                ..read.clone()
            },
            SecurityEventRow {
                attributes: String::new(),
                ..written.clone()
            }
        );
    }

    // Lower severities go after a day, high ones after their month, critical ones never.
    events
        .expire(DAY_START_NS, DAY_START_NS + DAY_NS)
        .await
        .expect("expire lower");
    let types = |rows: Vec<SecurityEventRow>| -> Vec<String> {
        rows.into_iter().map(|row| row.event_type).collect()
    };
    assert_eq!(
        types(events.read(0, i64::MAX, 10).await.expect("read")),
        ["privilege_escalation", "root_login"]
    );
    let far = DAY_START_NS + 70 * DAY_NS;
    events.expire(far, far).await.expect("expire high");
    assert_eq!(
        types(events.read(0, i64::MAX, 10).await.expect("read")),
        ["root_login"]
    );
    assert_eq!(events.count().await.expect("count"), 1);
}
