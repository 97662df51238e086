//! End-to-end topologies of the real `pharos` binary: all services in one
//! process on the embedded store, and split config replicas on PostgreSQL;
//! plus the CLI, health, reflection, metrics, graceful shutdown, `pharos
//! loadgen`, and acknowledged ingest surviving kill -9 on both stores.

use std::io::BufRead;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use pharos_api::{ClientSettings, ConfigApi as _, RemoteConfig};
use pharos_proto::config::v1 as pb;
use pharos_store::testing::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_pharos");

/// A `pharos serve` child process, killed if the test ends early.
struct Process {
    child: Option<Child>,
    grpc: SocketAddr,
    http: SocketAddr,
    log: std::path::PathBuf,
}

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

impl Process {
    fn spawn(dir: &Path, extra: &[&str]) -> Process {
        Self::spawn_with_env(dir, extra, &[])
    }

    /// Like [`Process::spawn`], with settings given as `PHAROS_*` environment variables.
    fn spawn_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Process {
        let grpc = free_addr();
        let http = free_addr();
        let log = dir.join(format!("pharos-{}.log", grpc.port()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--grpc-addr")
            .arg(grpc.to_string())
            .arg("--http-addr")
            .arg(http.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn pharos");
        Process {
            child: Some(child),
            grpc,
            http,
            log,
        }
    }

    /// Resident memory of the process now, from /proc.
    fn rss_bytes(&self) -> u64 {
        let Some(child) = &self.child else { return 0 };
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until gRPC health says SERVING.
    async fn wait_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(channel) = tonic::transport::Endpoint::from_shared(self.endpoint())
                .expect("endpoint")
                .connect()
                .await
            {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                if let Ok(response) = health
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    && response.into_inner().status
                        == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "pharos did not start:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn client(&self) -> RemoteConfig {
        RemoteConfig::connect(&ClientSettings::new(self.endpoint()).with_actor("e2e"))
            .await
            .expect("connect")
    }

    /// Sends SIGTERM and expects a clean exit.
    fn terminate(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "exit after SIGTERM: {status}\n{}",
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn cli(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    cli_of("config", endpoint, args)
}

/// Runs `pharos <command> --endpoint <endpoint> <args>`: success, stdout, stderr.
fn cli_of(command: &str, endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .arg(command)
        .arg("--endpoint")
        .arg(endpoint)
        .args(args)
        .output()
        .expect("run cli");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

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
        "disk",
    ] {
        assert_eq!(
            health["components"][component]["status"], "ok",
            "{component}: {health}"
        );
    }
    assert_eq!(health["components"]["database"]["backend"], "sqlite");
    let ready = reqwest::get(format!("{http}/ready")).await.expect("ready");
    assert_eq!(ready.status(), 200);

    // Server reflection (v1) lists the service.
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
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"pharos.config.v1.ConfigService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );

    // A Watch stream open at shutdown does not hold the process up.
    server.terminate();
}

/// `rows` as a NumPy `.npy` file of float32 (format 1.0).
fn write_npy(path: &Path, rows: &[Vec<f32>]) {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        rows.len(),
        rows[0].len()
    )
    .into_bytes();
    let padding = (64 - (10 + header.len() + 1) % 64) % 64;
    header.extend(std::iter::repeat_n(b' ', padding));
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header);
    bytes.extend(rows.iter().flatten().flat_map(|value| value.to_le_bytes()));
    std::fs::write(path, bytes).expect("write .npy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_cli_reads_every_format_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Process::spawn(dir.path(), &["--target", "search"]);
    server.wait_serving().await;
    let endpoint = server.endpoint();
    let search = |args: &[&str]| {
        let (ok, out, err) = cli_of("search", &endpoint, args);
        assert!(ok, "pharos search {args:?} failed: {err}");
        out
    };
    search(&["create", "docs", "--dimension", "4", "--metric", "l2"]);
    // Rows 0..100 from .npy, 1000.. from .fvecs, one by id from JSON lines with a payload.
    let rows: Vec<Vec<f32>> = (0..100).map(|i| vec![i as f32, 0.0, 0.0, 1.0]).collect();
    write_npy(&dir.path().join("rows.npy"), &rows);
    let mut fvecs = Vec::new();
    for i in 0..10 {
        fvecs.extend(4i32.to_le_bytes());
        for value in [i as f32 + 0.5, 1.0, 0.0, 1.0] {
            fvecs.extend(value.to_le_bytes());
        }
    }
    std::fs::write(dir.path().join("rows.fvecs"), fvecs).expect("write .fvecs");
    std::fs::write(
        dir.path().join("rows.jsonl"),
        "{\"id\": 5000, \"values\": [50, 50, 50, 50], \"payload\": {\"colour\": \"red\"}}\n",
    )
    .expect("write .jsonl");
    let npy = dir.path().join("rows.npy").display().to_string();
    let fvecs = dir.path().join("rows.fvecs").display().to_string();
    let jsonl = dir.path().join("rows.jsonl").display().to_string();
    assert!(search(&["upsert", "docs", &npy]).contains("upserted 100 vectors"));
    assert!(
        search(&["upsert", "docs", &fvecs, "--start-id", "1000"]).contains("upserted 10 vectors")
    );
    assert!(search(&["upsert", "docs", &jsonl]).contains("upserted 1 vectors"));

    // The two nearest ids to one query, asked through the CLI of the server at `endpoint`.
    let nearest_two = |endpoint: &str| -> Vec<u64> {
        let (ok, out, err) = cli_of(
            "search",
            endpoint,
            &[
                "query",
                "docs",
                "--vector",
                "3.4,1,0,1",
                "-k",
                "2",
                "--json",
            ],
        );
        assert!(ok, "pharos search query failed: {err}");
        let hits: serde_json::Value = serde_json::from_str(&out).expect("json hits");
        hits.as_array()
            .expect("array")
            .iter()
            .map(|hit| hit["id"].as_u64().expect("id"))
            .collect()
    };
    assert_eq!(nearest_two(&endpoint), [1003, 1002]);
    let filtered = search(&[
        "query",
        "docs",
        "--vector",
        "0,0,0,0",
        "--filter",
        "colour=red|blue",
    ]);
    assert!(
        filtered.contains("id 5000") && filtered.contains("colour=red"),
        "{filtered}"
    );

    let described: serde_json::Value =
        serde_json::from_str(&search(&["describe", "docs", "--json"])).expect("json");
    assert_eq!(described["index"]["count"], 111);
    assert_eq!(described["latency"]["searches"], 2);
    let listed = search(&["list"]);
    assert!(
        listed.contains("docs  flat  dimension 4  l2  111 vectors"),
        "{listed}"
    );

    // Bad input: the server's reason reaches the person.
    let (ok, _, err) = cli_of("search", &endpoint, &["query", "docs", "--vector", "1,2"]);
    assert!(!ok);
    assert!(
        err.contains("has 2 values") && err.contains("dimension 4"),
        "{err}"
    );
    let (ok, _, err) = cli_of("search", &endpoint, &["upsert", "docs", "rows.csv"]);
    assert!(!ok && err.contains("--format npy|fvecs|jsonl"), "{err}");
    server.terminate();

    // Stopping wrote a snapshot to the data directory; the next start reads it.
    assert!(dir.path().join("data/search/manifest.json").is_file());
    let server = Process::spawn(dir.path(), &["--target", "search"]);
    server.wait_serving().await;
    let log = server.log();
    assert!(log.contains("indexes read from the snapshot"), "{log}");
    assert!(log.contains("indexes pre-warmed"), "{log}");
    assert_eq!(nearest_two(&server.endpoint()), [1003, 1002]);
    server.terminate();
}

#[tokio::test]
async fn targets_not_built_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(BIN)
        .args([
            "serve",
            "--target",
            "config,query",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("target `query` is not built yet"),
        "{stderr}"
    );
    let output = Command::new(BIN)
        .args(["serve", "--target", "everything"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown target"), "{stderr}");
}

#[tokio::test]
async fn settings_come_from_file_env_and_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pharos.toml");
    std::fs::write(
        &file,
        "[config.cache]\ncapacity = 7\n[server]\ngrpc_addr = \"127.0.0.1:6001\"\n",
    )
    .expect("write");
    let output = Command::new(BIN)
        .args(["settings", "--config"])
        .arg(&file)
        .args(["--grpc-addr", "127.0.0.1:6002"])
        .env("PHAROS_CONFIG__WATCH__BUFFER", "33")
        .env("PHAROS_HTTP_ADDR", "127.0.0.1:6003")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let settings: toml::Value = toml::from_str(&stdout).expect("toml");
    assert_eq!(
        settings["config"]["cache"]["capacity"].as_integer(),
        Some(7)
    );
    assert_eq!(settings["config"]["watch"]["buffer"].as_integer(), Some(33));
    assert_eq!(
        settings["server"]["grpc_addr"].as_str(),
        Some("127.0.0.1:6002")
    );
    assert_eq!(
        settings["server"]["http_addr"].as_str(),
        Some("127.0.0.1:6003")
    );

    let output = Command::new(BIN)
        .args(["settings"])
        .env("PHAROS_CONFIG__CACHE__CAPACTY", "1")
        .output()
        .expect("run");
    assert!(!output.status.success(), "a misspelt variable is an error");
}

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

/// A throttled database (its points table locked by another session) fills the bounded write
/// buffer: further writes get RESOURCE_EXHAUSTED with RetryInfo at once instead of queueing, the
/// process memory stays bounded, and once the database is back every acknowledged point is
/// stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_database_gives_retryable_overload_with_bounded_memory() {
    use sqlx::Connection as _;
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--target", "ingest", "--database-url", database.url()];
    let server = Process::spawn_with_env(
        dir.path(),
        &args,
        &[("PHAROS_INGEST__METRICS__MAX_BUFFERED_POINTS", "8000")],
    );
    server.wait_serving().await;
    let idle_rss = server.rss_bytes();

    let mut lock = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connect");
    sqlx::raw_sql("BEGIN; LOCK TABLE metric_points IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .expect("lock the points table");

    let settings = pharos_loadgen::LoadSettings {
        endpoint: server.endpoint(),
        duration: Duration::from_secs(4),
        connections: 2,
        concurrency: 16,
        batch: 1_000,
        series: 5_000,
        ..pharos_loadgen::LoadSettings::default()
    };
    let progress = std::sync::Arc::new(pharos_loadgen::Progress::default());
    let load = tokio::spawn({
        let progress = progress.clone();
        async move { pharos_loadgen::run(&settings, progress).await }
    });
    let mut peak_rss = 0;
    let throttled_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < throttled_until {
        peak_rss = peak_rss.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let refused_while_throttled = progress.errors.load(std::sync::atomic::Ordering::Relaxed);
    let accepted_while_throttled = progress
        .items_accepted
        .load(std::sync::atomic::Ordering::Relaxed);
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("release the lock");
    let report = load.await.expect("load task").expect("load");
    peak_rss = peak_rss.max(server.rss_bytes());

    assert_eq!(
        accepted_while_throttled, 0,
        "nothing is acknowledged before it commits"
    );
    assert!(refused_while_throttled > 0, "{report:?}");
    assert!(
        report.errors.get("ResourceExhausted").copied().unwrap_or(0) > 0,
        "{report:?}"
    );
    assert!(
        report.errors.keys().all(|code| code == "ResourceExhausted"),
        "only retryable overload: {report:?}"
    );
    // 16 callers of 1,000 points against a buffer of 8,000: half of them are refused at any time.
    // The buffered points are a few hundred KiB; the rest is requests being decoded and refused.
    assert!(
        peak_rss < idle_rss + 100 * 1024 * 1024,
        "peak RSS {peak_rss} against {idle_rss} idle"
    );
    assert!(report.items_accepted > 0, "{report:?}");

    let mut check = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connect");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metric_points")
        .fetch_one(&mut check)
        .await
        .expect("count");
    assert_eq!(
        stored,
        i64::try_from(report.items_accepted).expect("fits"),
        "{}",
        server.log()
    );
    server.terminate();
}
