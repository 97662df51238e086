//! Acknowledged ingest survives kill -9: on the embedded store and on PostgreSQL, every
//! acknowledged metric point, span, log record and security event is stored after a restart.

use std::path::Path;
use std::time::{Duration, Instant};

use pharos_store::testing::TestDatabase;

use crate::support::Process;

/// Kill -9 during sustained ingest on the embedded store: after a restart every acknowledged
/// metric point, span, log record and security event is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_points_survive_kill_9_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite:{}",
        dir.path().join("data").join("pharos.db").display()
    );
    acknowledged_points_survive_kill_9(dir.path(), &[], &url).await;
}

/// The same on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_points_survive_kill_9_on_postgres() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--target", "ingest", "--database-url", database.url()];
    acknowledged_points_survive_kill_9(dir.path(), &args, database.url()).await;
}

async fn acknowledged_points_survive_kill_9(dir: &Path, args: &[&str], database_url: &str) {
    use pharos_proto::ingest::v1 as ingest;
    use std::sync::{Arc, Mutex};

    let server = Process::spawn(dir, args);
    server.wait_serving().await;
    let endpoint = server.endpoint();
    // Values each writer saw acknowledged.
    let acknowledged: Arc<Mutex<Vec<Vec<f64>>>> = Arc::new(Mutex::new(vec![Vec::new(); 4]));
    let (first_acks, mut enough) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut writers = Vec::new();
    for writer in 0..4usize {
        let (endpoint, acknowledged, first_acks) =
            (endpoint.clone(), acknowledged.clone(), first_acks.clone());
        writers.push(tokio::spawn(async move {
            let mut client = ingest::ingest_service_client::IngestServiceClient::connect(endpoint)
                .await
                .expect("connect");
            for request in 0u32.. {
                let values: Vec<f64> = (0..100).map(|k| f64::from(request * 100 + k)).collect();
                let points = values
                    .iter()
                    .map(|value| ingest::MetricPoint {
                        name: "crash_test".into(),
                        labels: vec![ingest::Label {
                            name: "writer".into(),
                            value: writer.to_string(),
                        }],
                        time_unix_nano: 0,
                        value: *value,
                    })
                    .collect();
                match client
                    .write_metrics(ingest::WriteMetricsRequest { points })
                    .await
                {
                    Ok(reply) => {
                        assert_eq!(reply.into_inner().accepted, 100);
                        acknowledged.lock().expect("lock")[writer].extend(values);
                        let _ = first_acks.send(());
                    }
                    // The server is gone.
                    Err(_) => return,
                }
            }
        }));
    }
    // One more writer for the other signals: a trace of 20 spans, 20 log records and 20 security
    // events per round, each with its own marks.
    let records: Arc<Mutex<AckedRecords>> = Arc::default();
    writers.push(tokio::spawn({
        let (endpoint, records) = (endpoint.clone(), records.clone());
        async move {
            let mut client = ingest::ingest_service_client::IngestServiceClient::connect(endpoint)
                .await
                .expect("connect");
            for round in 0u32.. {
                let mut trace_id = [7u8; 16];
                trace_id[..4].copy_from_slice(&round.to_be_bytes());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_nanos() as i64;
                let spans = (1..=20u8)
                    .map(|id| ingest::Span {
                        trace_id: trace_id.to_vec(),
                        span_id: vec![id; 8],
                        name: "crash".into(),
                        start_time_unix_nano: now,
                        end_time_unix_nano: now + 1,
                        ..Default::default()
                    })
                    .collect();
                let logs = (0..20)
                    .map(|i| ingest::LogRecord {
                        body: format!("crash-{round}-{i}"),
                        ..Default::default()
                    })
                    .collect();
                let events = (0..20)
                    .map(|i| ingest::SecurityEvent {
                        event_type: "auth_failure".into(),
                        severity: ingest::Severity::Critical as i32,
                        user_id: format!("crash-{round}-{i}"),
                        ..Default::default()
                    })
                    .collect();
                let Ok(reply) = client
                    .write_spans(ingest::WriteSpansRequest { spans })
                    .await
                else {
                    return;
                };
                assert_eq!(reply.into_inner().accepted, 20);
                records.lock().expect("lock").traces.push(trace_id.to_vec());
                let Ok(reply) = client
                    .write_logs(ingest::WriteLogsRequest { records: logs })
                    .await
                else {
                    return;
                };
                assert_eq!(reply.into_inner().accepted, 20);
                records
                    .lock()
                    .expect("lock")
                    .logs
                    .extend((0..20).map(|i| format!("crash-{round}-{i}")));
                let Ok(reply) = client
                    .write_security_events(ingest::WriteSecurityEventsRequest { events })
                    .await
                else {
                    return;
                };
                assert_eq!(reply.into_inner().accepted, 20);
                records
                    .lock()
                    .expect("lock")
                    .events
                    .extend((0..20).map(|i| format!("crash-{round}-{i}")));
            }
        }
    }));
    drop(first_acks);
    // Kill once a good number of batches are acknowledged, while writes are in flight.
    for _ in 0..40 {
        enough.recv().await.expect("acks");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while records.lock().expect("lock").events.len() < 60 {
        assert!(
            Instant::now() < deadline,
            "three rounds of spans, logs and events within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut server = server;
    if let Some(child) = server.child.as_mut() {
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
    }
    for writer in writers {
        writer.await.expect("writer task");
    }

    // A restart recovers the store and serves again.
    let restarted = Process::spawn(dir, args);
    restarted.wait_serving().await;
    restarted.terminate();

    let store = pharos_store::Store::connect(&pharos_store::StoreSettings {
        url: database_url.to_owned(),
        ..pharos_store::StoreSettings::default()
    })
    .await
    .expect("open the store");
    let metrics = store.metrics();
    let series = metrics.series_of("crash_test").await.expect("series");
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let total: usize = acknowledged.iter().map(Vec::len).sum();
    assert!(total >= 4_000, "{total} acknowledged");
    for (writer, values) in acknowledged.iter().enumerate() {
        let key = format!("writer=\"{writer}\"");
        let Some(series) = series.iter().find(|series| series.labels_key == key) else {
            assert!(values.is_empty(), "writer {writer}'s series is missing");
            continue;
        };
        let stored: std::collections::HashSet<u64> = metrics
            .read_points(series.id, 0, i64::MAX)
            .await
            .expect("points")
            .into_iter()
            .map(|(_, value)| value.to_bits())
            .collect();
        let lost = values
            .iter()
            .filter(|value| !stored.contains(&value.to_bits()))
            .count();
        assert_eq!(lost, 0, "writer {writer}: {lost} acknowledged points lost");
    }

    let records = records.lock().expect("lock").clone();
    let spans = store.spans();
    for trace in &records.traces {
        assert_eq!(
            spans.trace(trace).await.expect("trace").len(),
            20,
            "an acknowledged trace lost spans"
        );
    }
    let stored_logs: std::collections::HashSet<String> = store
        .logs()
        .read(0, i64::MAX, i64::MAX)
        .await
        .expect("logs")
        .into_iter()
        .map(|record| record.body)
        .collect();
    assert!(
        records.logs.iter().all(|body| stored_logs.contains(body)),
        "acknowledged log records lost"
    );
    let stored_events: std::collections::HashSet<String> = store
        .security_events()
        .read(0, i64::MAX, i64::MAX)
        .await
        .expect("events")
        .into_iter()
        .map(|event| event.user_id)
        .collect();
    assert!(
        records
            .events
            .iter()
            .all(|user| stored_events.contains(user)),
        "acknowledged security events lost"
    );
}

/// Spans (trace ids), log bodies and security event user ids whose writes were acknowledged.
#[derive(Debug, Clone, Default)]
struct AckedRecords {
    traces: Vec<Vec<u8>>,
    logs: Vec<String>,
    events: Vec<String>,
}
