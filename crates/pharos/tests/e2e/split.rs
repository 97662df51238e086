//! Split topologies on PostgreSQL, one service per process: config replicas sharing one
//! database.

use std::process::Command;
use std::time::Duration;

use futures::StreamExt as _;
use pharos_api::ConfigApi as _;
use pharos_proto::config::v1 as pb;
use pharos_store::testing::TestDatabase;

use crate::support::{BIN, Process};

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
