//! Split topologies on PostgreSQL, one service per process: config replicas sharing one
//! database, and an ingest process that follows its live settings through a config process
//! started after it.

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use pharos_api::ConfigApi as _;
use pharos_proto::config::v1 as pb;
use pharos_store::testing::TestDatabase;

use crate::support::{BIN, Process, free_addr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_config_replicas_on_postgres() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let migrate = Command::new(BIN)
        .args(["migrate", "--database-url", database.url()])
        .output()
        .expect("migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let args = ["--target", "config", "--database-url", database.url()];
    let a = Process::spawn(dir.path(), &args);
    let b = Process::spawn(dir.path(), &args);
    a.wait_serving().await;
    b.wait_serving().await;
    let on_a = a.client().await;
    let on_b = b.client().await;
    let mut watch_b = on_b
        .watch(pb::WatchRequest {
            prefixes: vec!["svc.".into()],
            ..Default::default()
        })
        .await
        .expect("watch");
    let snapshot = watch_b.next().await.expect("snapshot").expect("ok");
    assert!(snapshot.snapshot_complete);
    let written = on_a
        .set(pb::SetRequest {
            key: "svc.mode".into(),
            value: "fast".into(),
            ..Default::default()
        })
        .await
        .expect("set");
    let seen = tokio::time::timeout(Duration::from_secs(10), watch_b.next())
        .await
        .expect("propagated")
        .expect("open")
        .expect("ok");
    assert_eq!(seen.revision, written.revision);
    let got = on_b
        .get(pb::GetRequest {
            key: "svc.mode".into(),
            environment: String::new(),
        })
        .await
        .expect("get");
    assert_eq!(got.value, "fast");
    let http = format!("http://{}", b.http);
    let health: serde_json::Value = reqwest::get(format!("{http}/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["components"]["database"]["backend"], "postgres");
    assert_eq!(health["components"]["change_stream"]["listening"], true);
    drop(watch_b);
    a.terminate();
    b.terminate();
}

/// An ingest process started before its config service follows live settings once that service
/// comes up: it serves at once with its start-up settings (`ingest_live_settings` degraded, not
/// following), and once a config process starts on the endpoint it was given, a
/// `pharos.ingest.*` key set there changes what it accepts, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_started_before_config_follows_live_settings_once_config_is_up() {
    use pharos_proto::ingest::v1 as ingest;

    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config_addr = free_addr();
    let config_endpoint = format!("http://{config_addr}");

    let ingest_process = Process::spawn_with_env(
        dir.path(),
        &["--target", "ingest", "--database-url", database.url()],
        &[("PHAROS_INGEST__CONFIG_ENDPOINT", config_endpoint.as_str())],
    );
    ingest_process.wait_serving().await;
    let health = ingest_process.health().await;
    let live = &health["components"]["ingest_live_settings"];
    assert_eq!(live["status"], "degraded", "{health}");
    assert_eq!(live["following"], false, "{health}");

    let mut client =
        ingest::ingest_service_client::IngestServiceClient::connect(ingest_process.endpoint())
            .await
            .expect("connect to ingest");
    let write = |labels: &[(&str, &str)]| ingest::WriteMetricsRequest {
        points: vec![ingest::MetricPoint {
            name: "jobs_total".to_owned(),
            labels: labels
                .iter()
                .map(|(name, value)| ingest::Label {
                    name: (*name).to_owned(),
                    value: (*value).to_owned(),
                })
                .collect(),
            time_unix_nano: pharos_clock::Clock::system().now_micros() * 1_000,
            value: 1.0,
        }],
    };
    let two_labels = [("queue", "mail"), ("host", "a")];
    let reply = client
        .write_metrics(write(&two_labels))
        .await
        .expect("write before the config service is up")
        .into_inner();
    assert_eq!((reply.accepted, reply.rejected), (1, 0), "{reply:?}");

    let config_process = Process::spawn_at(
        dir.path(),
        config_addr,
        &["--target", "config", "--database-url", database.url()],
        &[],
    );
    config_process.wait_serving().await;
    let written = config_process
        .client()
        .await
        .set(pb::SetRequest {
            key: "pharos.ingest.limits.max_labels".into(),
            value: "1".into(),
            r#type: pb::ValueType::Int as i32,
            ..Default::default()
        })
        .await
        .expect("set");

    // Two processes: poll the ingest process's `/health`, bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = ingest_process.health().await;
        let live = &health["components"]["ingest_live_settings"];
        let applied = live["revision"]
            .as_i64()
            .is_some_and(|revision| revision >= written.revision);
        if live["following"] == true && applied {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ingest did not follow revision {} within 30 s: {health}\n{}",
            written.revision,
            ingest_process.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let reply = client
        .write_metrics(write(&two_labels))
        .await
        .expect("write")
        .into_inner();
    assert_eq!((reply.accepted, reply.rejected), (0, 1), "{reply:?}");
    assert_eq!(reply.rejections[0].reason, "TOO_MANY_LABELS");
    let reply = client
        .write_metrics(write(&[("queue", "mail")]))
        .await
        .expect("write")
        .into_inner();
    assert_eq!((reply.accepted, reply.rejected), (1, 0), "{reply:?}");

    config_process.terminate();
    ingest_process.terminate();
}
