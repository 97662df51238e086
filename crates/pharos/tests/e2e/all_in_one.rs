//! All services in one process on the embedded store: the config CLI as a person uses it,
//! health, reflection, metrics, and a graceful shutdown with a Watch stream open.

use std::io::BufRead;
use std::process::{Command, Stdio};

use futures::StreamExt as _;
use pharos_api::ConfigApi as _;
use pharos_proto::config::v1 as pb;

use crate::support::{BIN, Process, cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_in_one_on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Process::spawn(dir.path(), &[]);
    server.wait_serving().await;
    let endpoint = server.endpoint();

    // The CLI, as a person would use it.
    let (ok, out, err) = cli(
        &endpoint,
        &[
            "set",
            "app.retries",
            "3",
            "--type",
            "int",
            "--category",
            "app",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("app.retries = 3"), "{out}");
    let (ok, out, _) = cli(&endpoint, &["--json", "get", "app.retries"]);
    assert!(ok);
    let entry: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(entry["value"], "3");
    assert_eq!(entry["type"], "INT");
    let (ok, _, err) = cli(&endpoint, &["set", "app.retries", "three"]);
    assert!(!ok);
    assert!(err.contains("not a 64-bit integer"), "{err}");
    let (ok, out, _) = cli(&endpoint, &["--json", "history", "app.retries"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 1);
    let (ok, _, err) = cli(&endpoint, &["get", "missing"]);
    assert!(!ok);
    assert!(err.contains("NotFound"), "{err}");

    // A CLI watcher sees a change made by another client.
    let mut watcher = Command::new(BIN)
        .args([
            "config",
            "--endpoint",
            &endpoint,
            "--json",
            "watch",
            "app.retries",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    // The CLI prints the snapshot first: once that line is out, its watch is open.
    let mut lines = std::io::BufReader::new(watcher.stdout.take().expect("stdout")).lines();
    let snapshot = lines.next().expect("a snapshot line").expect("utf-8");
    assert!(
        snapshot.contains("\"value\":\"3\""),
        "snapshot printed: {snapshot}"
    );
    let client = server.client().await;
    client
        .set(pb::SetRequest {
            key: "app.retries".into(),
            value: "5".into(),
            ..Default::default()
        })
        .await
        .expect("set");
    let change = tokio::task::spawn_blocking(move || lines.next())
        .await
        .expect("reader")
        .expect("a change line")
        .expect("utf-8");
    assert!(
        change.contains("\"value\":\"5\""),
        "change printed: {change}"
    );
    let _ = watcher.kill();
    let _ = watcher.wait();

    // HTTP side.
    let http = format!("http://{}", server.http);
    let metrics = reqwest::get(format!("{http}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("rpc_server_call_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("rpc_method=\"Set\""));
    let health: serde_json::Value = reqwest::get(format!("{http}/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    for component in [
        "database",
        "config_cache",
        "change_stream",
        "process_memory",
        "search",
        "query_head",
    ] {
        assert_eq!(
            health["components"][component]["status"], "ok",
            "{component}: {health}"
        );
    }
    // The disk is shared with whatever else runs on the machine: the check must say `degraded`
    // exactly when under 5 % of it is free, and `ok` otherwise.
    let disk = &health["components"]["disk"];
    let (free, total) = (
        disk["free_bytes"].as_u64().expect("free_bytes"),
        disk["total_bytes"].as_u64().expect("total_bytes"),
    );
    let expected = if free.saturating_mul(20) < total {
        "degraded"
    } else {
        "ok"
    };
    assert_eq!(disk["status"], expected, "disk: {health}");
    assert_eq!(health["components"]["database"]["backend"], "sqlite");
    let ready = reqwest::get(format!("{http}/ready")).await.expect("ready");
    assert_eq!(ready.status(), 200);

    // Server reflection (v1) lists the services.
    let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.next().await.expect("a response").expect("ok");
    let Some(
        tonic_reflection::pb::v1::server_reflection_response::MessageResponse::ListServicesResponse(
            list,
        ),
    ) = response.message_response
    else {
        panic!("unexpected reflection response");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    // Exactly what is served: not OTLP's ProfilesService, which its descriptors also describe.
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "opentelemetry.proto.collector.logs.v1.LogsService",
            "opentelemetry.proto.collector.metrics.v1.MetricsService",
            "opentelemetry.proto.collector.trace.v1.TraceService",
            "pharos.alert.v1.AlertService",
            "pharos.config.v1.ConfigService",
            "pharos.ingest.v1.IngestService",
            "pharos.query.v1.QueryService",
            "pharos.search.v1.SearchService",
        ]
    );

    // A Watch stream open at shutdown does not hold the process up.
    server.terminate();
}

/// `pharos health`, what the image's probes and the chart's test Pod run: serving services pass,
/// a service this process does not run and an endpoint nobody answers fail, naming why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pharos_health_checks_the_server_and_each_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Process::spawn(dir.path(), &["--target", "config"]);
    server.wait_serving().await;
    let endpoint = server.endpoint();
    let health = |args: &[&str]| crate::support::cli_of("health", &endpoint, args);

    let (ok, out, err) = health(&[]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "(server): SERVING");
    let (ok, out, err) = health(&["--service", "pharos.config.v1.ConfigService"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "pharos.config.v1.ConfigService: SERVING");

    let (ok, out, err) = health(&[
        "--service",
        "pharos.config.v1.ConfigService",
        "--service",
        "pharos.ingest.v1.IngestService",
    ]);
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains("pharos.ingest.v1.IngestService: NOT_FOUND"),
        "{out}"
    );
    assert!(
        err.contains("not serving: pharos.ingest.v1.IngestService"),
        "{err}"
    );
    server.terminate();

    let (ok, out, err) = health(&["--timeout", "2s"]);
    assert!(!ok, "{out}{err}");
    assert!(err.contains(&endpoint), "{err}");
}
