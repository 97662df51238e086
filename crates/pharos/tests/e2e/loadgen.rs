//! `pharos loadgen` against the all-in-one server: its reports count exactly what was stored.

use std::process::Command;

use crate::support::{BIN, Process};

/// `pharos loadgen` against the all-in-one server, metrics alone and then every signal mixed (own
/// API) and spans through OTLP: its reports count exactly what was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_reports_what_was_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Process::spawn(dir.path(), &[]);
    server.wait_serving().await;
    let loadgen = |extra: &[&str]| {
        let output = Command::new(BIN)
            .args([
                "loadgen",
                "--endpoint",
                &server.endpoint(),
                "--duration",
                "1s",
            ])
            .args(["--connections", "1", "--concurrency", "2", "--batch", "200"])
            .args(["--series", "300", "--json"])
            .args(extra)
            .output()
            .expect("run loadgen");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("json report");
        assert!(
            report["items_accepted"].as_u64().expect("items_accepted") >= 200,
            "{report}"
        );
        assert_eq!(report["items_rejected"], 0, "{report}");
        assert_eq!(report["errors"], serde_json::json!({}), "{report}");
        report
    };
    let metrics_only = loadgen(&[]);
    let mixed = loadgen(&["--signal", "mixed"]);
    let otlp_spans = loadgen(&["--signal", "spans", "--protocol", "otlp"]);
    let accepted = |report: &serde_json::Value, signal: &str| {
        report["accepted_by_signal"][signal].as_u64().unwrap_or(0) as i64
    };

    let store = pharos_store::Store::connect(&pharos_store::StoreSettings {
        url: format!(
            "sqlite:{}",
            dir.path().join("data").join("pharos.db").display()
        ),
        ..pharos_store::StoreSettings::default()
    })
    .await
    .expect("open the server's store");
    let points = store.metrics().count_points().await.expect("count");
    let spans = store.spans().count().await.expect("count");
    let logs = store.logs().count().await.expect("count");
    let events = store.security_events().count().await.expect("count");
    let log = server.log();
    assert_eq!(
        points,
        accepted(&metrics_only, "metrics") + accepted(&mixed, "metrics"),
        "{log}"
    );
    assert_eq!(
        spans,
        accepted(&mixed, "spans") + accepted(&otlp_spans, "spans"),
        "{log}"
    );
    assert_eq!(logs, accepted(&mixed, "logs"), "{log}");
    assert_eq!(events, accepted(&mixed, "security_events"), "{log}");
    assert!(
        logs > 0 && events > 0 && accepted(&otlp_spans, "spans") > 0,
        "{mixed} {otlp_spans}"
    );
}
