//! The alert service as its users run it: rule files and an Alertmanager routing file in the
//! settings, points written through ingest, and a webhook receiver in the test.
//!
//! - a breach notifies as soon as its point commits (the rule's interval is a minute), with
//!   Alertmanager's version 4 body, an `Idempotency-Key` and a valid signature, and `ALERTS`
//!   is queryable;
//! - retries on 503 keep the key; a dead receiver leaves a dead letter;
//! - `amtool` (Alertmanager 0.25's own client) adds, queries and expires silences, posts and
//!   lists alerts and shows the configuration;
//! - kill -9 after a delivery: silences and posted alerts are back, and the delivered
//!   notification is not sent again; kill -9 during delivery: the pending notification is sent
//!   after the restart with its original key;
//! - a real Prometheus 2.42 sends its alerts to Pharos.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pharos_api::ConfigApi as _;
use pharos_proto::ingest::v1 as ingest;
use serde_json::Value as Json;

use crate::support::{Process, free_addr, reference_tool};

const SECRET: &str = "webhook-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    idempotency_key: String,
    timestamp: String,
    signature: String,
    authorization: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver on loopback answering each request with the next queued status (200 once
/// the queue is empty).
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        Self::start_on(free_addr()).await
    }

    async fn start_on(addr: SocketAddr) -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answers: Arc<Mutex<VecDeque<u16>>> = Arc::default();
        let (r, a) = (received.clone(), answers.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (r, a) = (r.clone(), a.clone());
                    async move {
                        let header = |name: &str| {
                            headers
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned()
                        };
                        r.lock().expect("lock").push(Received {
                            at: Instant::now(),
                            idempotency_key: header("idempotency-key"),
                            timestamp: header("x-pharos-timestamp"),
                            signature: header("x-pharos-signature"),
                            authorization: header("authorization"),
                            body: body.to_vec(),
                        });
                        let status = a.lock().expect("lock").pop_front().unwrap_or(200);
                        axum::http::StatusCode::from_u16(status).expect("status")
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            received,
            answers,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn answer(&self, statuses: &[u16]) {
        self.answers.lock().expect("lock").extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until at least `count` requests arrived.
    async fn wait_for(
        &self,
        count: usize,
        within: Duration,
        log: impl Fn() -> String,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} notifications arrived in {within:?}\n{}",
                received.len(),
                log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Writes the settings, rule and routing files for a receiver at `url`.
fn write_config(dir: &Path, url: &str, rules: &str, route_extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("rules")).expect("rules dir");
    std::fs::write(dir.join("rules").join("cpu.yml"), rules).expect("rules");
    std::fs::write(
        dir.join("routing.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n{route_extra}\
             receivers:\n- name: hook\n  webhook_configs:\n  - url: {url}\n    send_resolved: true\n    http_config:\n      bearer_token: receiver-token\n"
        ),
    )
    .expect("routing");
    let settings = dir.join("pharos.toml");
    std::fs::write(
        &settings,
        format!(
            "[alert]\nrule_files = [\"rules/*.yml\"]\nrouting_file = \"routing.yml\"\nevaluation_interval = \"1m\"\n\
             [alert.webhook]\nhmac_secret = \"{SECRET}\"\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\ntimeout = \"2s\"\n"
        ),
    )
    .expect("settings");
    settings
}

const CPU_RULES: &str = "groups:\n- name: cpu\n  rules:\n  - alert: CpuHigh\n    expr: cpu_usage > 90\n    labels:\n      severity: page\n    annotations:\n      summary: 'CPU of {{ $labels.host }} is {{ $value }}'\n";

async fn write_point(endpoint: &str, name: &str, host: &str, value: f64) {
    let mut client =
        ingest::ingest_service_client::IngestServiceClient::connect(endpoint.to_owned())
            .await
            .expect("connect");
    let reply = client
        .write_metrics(ingest::WriteMetricsRequest {
            points: vec![ingest::MetricPoint {
                name: name.to_owned(),
                labels: vec![ingest::Label {
                    name: "host".into(),
                    value: host.into(),
                }],
                time_unix_nano: 0,
                value,
            }],
        })
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted, 1, "{reply:?}");
}

async fn get_json(url: String) -> Json {
    reqwest::get(url)
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_notifies_as_soon_as_its_point_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start().await;
    let settings = write_config(dir.path(), &receiver.url(), CPU_RULES, "");
    let pharos = Process::spawn_with_env(
        dir.path(),
        &["--config", settings.to_str().expect("path")],
        &[("PHAROS_TELEMETRY__LOG_FILTER", "info,pharos_alert=debug")],
    );
    pharos.wait_serving().await;

    let written = Instant::now();
    write_point(&pharos.endpoint(), "cpu_usage", "web-1", 97.5).await;
    // The group's interval is a minute: a notification within seconds came from the commit.
    let received = receiver
        .wait_for(1, Duration::from_secs(20), || pharos.log())
        .await;
    let first = &received[0];
    eprintln!("write to webhook: {:?}", first.at - written);
    let body = first.json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(
        body["groupLabels"],
        serde_json::json!({"alertname": "CpuHigh"})
    );
    assert_eq!(body["groupKey"], "{}:{alertname=\"CpuHigh\"}");
    assert_eq!(body["truncatedAlerts"], 0);
    let alert = &body["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(
        alert["labels"],
        serde_json::json!({"alertname": "CpuHigh", "host": "web-1", "severity": "page"})
    );
    assert_eq!(alert["annotations"]["summary"], "CPU of web-1 is 97.5");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert!(
        alert["generatorURL"]
            .as_str()
            .expect("url")
            .contains("/graph?g0.expr=cpu_usage+%3E+90&g0.tab=1"),
        "{alert}"
    );
    assert_eq!(alert["fingerprint"].as_str().expect("fp").len(), 16);
    // The request's headers.
    assert_eq!(first.authorization, "Bearer receiver-token");
    assert!(!first.idempotency_key.is_empty());
    let timestamp: i64 = first.timestamp.parse().expect("a timestamp");
    assert!(pharos_alert::notify::webhook::verify(
        SECRET.as_bytes(),
        timestamp,
        &first.body,
        &first.signature
    ));

    // ALERTS is written through ingest and read through the query service.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get_json(format!(
            "http://{}/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%7D",
            pharos.http
        ))
        .await;
        if answer["data"]["result"][0]["metric"]["alertname"] == "CpuHigh" {
            assert_eq!(answer["data"]["result"][0]["metric"]["host"], "web-1");
            break;
        }
        assert!(Instant::now() < deadline, "no ALERTS series: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The Alertmanager API lists the alert with its receiver.
    let alerts = get_json(format!("http://{}/api/v2/alerts", pharos.http)).await;
    assert_eq!(alerts[0]["labels"]["alertname"], "CpuHigh", "{alerts}");
    assert_eq!(alerts[0]["receivers"][0]["name"], "hook");
    assert_eq!(alerts[0]["status"]["state"], "active");

    // Back under the threshold: resolved, sent because send_resolved is on.
    write_point(&pharos.endpoint(), "cpu_usage", "web-1", 10.0).await;
    let received = receiver
        .wait_for(2, Duration::from_secs(20), || pharos.log())
        .await;
    let resolved = received[1].json();
    assert_eq!(resolved["status"], "resolved", "{resolved}");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_ne!(received[1].idempotency_key, first.idempotency_key);
    pharos.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_keep_their_key_and_a_dead_receiver_leaves_a_dead_letter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start().await;
    receiver.answer(&[503, 503]);
    let settings = write_config(dir.path(), &receiver.url(), CPU_RULES, "");
    let pharos = Process::spawn(dir.path(), &["--config", settings.to_str().expect("path")]);
    pharos.wait_serving().await;
    post_alert(&pharos, "Retried", "1").await;
    let received = receiver
        .wait_for(3, Duration::from_secs(20), || pharos.log())
        .await;
    assert_eq!(received[0].idempotency_key, received[1].idempotency_key);
    assert_eq!(received[1].idempotency_key, received[2].idempotency_key);
    // Delivered on the third attempt: nothing more comes for this group.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 3);

    // A receiver that refuses (400) is not retried; the notification is a dead letter.
    receiver.answer(&[400]);
    post_alert(&pharos, "Refused", "2").await;
    let received = receiver
        .wait_for(4, Duration::from_secs(20), || pharos.log())
        .await;
    assert_eq!(received[3].json()["groupLabels"]["alertname"], "Refused");
    let database = dir.path().join("data").join("pharos.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dead = sqlite_count(
            &database,
            "SELECT count(*) FROM alert_outbox WHERE state = 'dead'",
        )
        .await;
        if dead == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter:\n{}",
            pharos.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead_attempts = sqlite_count(
        &database,
        "SELECT count(*) FROM alert_delivery_attempts a JOIN alert_outbox o \
         ON a.idempotency_key = o.idempotency_key WHERE o.state = 'dead'",
    )
    .await;
    assert_eq!(dead_attempts, 1, "a 400 is not retried");
    let retried = sqlite_count(
        &database,
        "SELECT count(*) FROM alert_delivery_attempts a JOIN alert_outbox o \
         ON a.idempotency_key = o.idempotency_key WHERE o.state = 'delivered' AND a.outcome = 'retry'",
    )
    .await;
    assert_eq!(retried, 2, "both 503s recorded as retries");
    pharos.terminate();
}

async fn sqlite_count(database: &Path, sql: &'static str) -> i64 {
    use sqlx::ConnectOptions;
    let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(database)
        .read_only(true)
        .connect()
        .await
        .expect("open the database");
    sqlx::query_scalar(sql)
        .fetch_one(&mut connection)
        .await
        .expect("count")
}

/// Waits until the store in `dir` recorded `count` delivered notifications (the receiver's 2xx
/// reached the store: a kill -9 after that must not send them again).
async fn wait_delivered(dir: &Path, count: i64, log: impl Fn() -> String) {
    let database = dir.join("data").join("pharos.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlite_count(
        &database,
        "SELECT count(*) FROM alert_outbox WHERE state = 'delivered'",
    )
    .await
        < count
    {
        assert!(
            Instant::now() < deadline,
            "{count} deliveries were not recorded\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// kill -9 of `pharos`, then the same server started again in `dir` with `args`.
async fn kill_9_and_restart(mut pharos: Process, dir: &Path, args: &[&str]) -> Process {
    let mut child = pharos.child.take().expect("running");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    drop(pharos);
    let pharos = Process::spawn(dir, args);
    pharos.wait_serving().await;
    pharos
}

/// Posts one firing alert through the Alertmanager API.
async fn post_alert(pharos: &Process, name: &str, instance: &str) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v2/alerts", pharos.http))
        .json(&serde_json::json!([{
            "labels": {"alertname": name, "instance": instance},
            "annotations": {"summary": "posted"},
        }]))
        .send()
        .await
        .expect("post");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

fn amtool(binary: &Path, pharos: &Process, args: &[&str]) -> (bool, String) {
    let output = Command::new(binary)
        .arg(format!("--alertmanager.url=http://{}", pharos.http))
        .args(args)
        .output()
        .expect("run amtool");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_manages_silences_and_alerts_and_they_survive_kill_9() {
    let Some(amtool_binary) = reference_tool("amtool", "prometheus-alertmanager") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start().await;
    let settings = write_config(dir.path(), &receiver.url(), CPU_RULES, "");
    let args = ["--config", settings.to_str().expect("path")];
    let mut pharos = Process::spawn(dir.path(), &args);
    pharos.wait_serving().await;

    // An alert posted by amtool, then routed and notified.
    let (ok, out) = amtool(
        &amtool_binary,
        &pharos,
        &[
            "alert",
            "add",
            "alertname=DiskFull",
            "instance=db-1",
            "--annotation=summary=full",
        ],
    );
    assert!(ok, "{out}\n{}", pharos.log());
    let received = receiver
        .wait_for(1, Duration::from_secs(20), || pharos.log())
        .await;
    assert_eq!(
        received[0].json()["alerts"][0]["labels"]["instance"],
        "db-1"
    );
    let (ok, out) = amtool(
        &amtool_binary,
        &pharos,
        &["alert", "query", "-o", "extended"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("DiskFull") && out.contains("instance=\"db-1\""),
        "{out}"
    );

    // A silence: added, then the alert shows as silenced.
    let (ok, out) = amtool(
        &amtool_binary,
        &pharos,
        &[
            "silence",
            "add",
            "alertname=DiskFull",
            "--duration=2h",
            "--author=ops",
            "--comment=maintenance",
        ],
    );
    assert!(ok, "{out}");
    let silence_id = out.trim().to_owned();
    assert_eq!(silence_id.len(), 36, "{out}");
    let (ok, out) = amtool(
        &amtool_binary,
        &pharos,
        &["silence", "query", "-o", "extended"],
    );
    assert!(
        ok && out.contains(&silence_id) && out.contains("maintenance"),
        "{out}"
    );
    let (ok, out) = amtool(
        &amtool_binary,
        &pharos,
        &["alert", "query", "--silenced", "-o", "extended"],
    );
    assert!(ok && out.contains("DiskFull"), "{out}");
    let (ok, out) = amtool(&amtool_binary, &pharos, &["config", "show"]);
    assert!(ok && out.contains("receiver: hook"), "{out}");

    // kill -9, restart: the silence and the posted alert are back, and the notification the
    // receiver acknowledged (and the store recorded as delivered) is not sent again.
    wait_delivered(dir.path(), 1, || pharos.log()).await;
    pharos = kill_9_and_restart(pharos, dir.path(), &args).await;
    let (ok, out) = amtool(
        &amtool_binary,
        &pharos,
        &["silence", "query", "-o", "extended"],
    );
    assert!(ok && out.contains(&silence_id), "{out}\n{}", pharos.log());
    let alerts = get_json(format!("http://{}/api/v2/alerts", pharos.http)).await;
    assert_eq!(alerts[0]["labels"]["alertname"], "DiskFull", "{alerts}");
    assert_eq!(alerts[0]["status"]["state"], "suppressed");
    assert_eq!(alerts[0]["status"]["silencedBy"][0], silence_id);
    // Several group intervals pass: nothing more is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 1, "sent again after kill -9");

    // Expired: the alert is active again, but it was notified before: no new notification
    // until the repeat interval.
    let (ok, out) = amtool(&amtool_binary, &pharos, &["silence", "expire", &silence_id]);
    assert!(ok, "{out}");
    let (ok, out) = amtool(&amtool_binary, &pharos, &["silence", "query"]);
    assert!(ok && !out.contains(&silence_id), "{out}");
    pharos.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_pending_at_kill_9_is_sent_after_restart_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start().await;
    // The receiver fails the first attempt; the retry waits long enough to kill the process.
    receiver.answer(&[503]);
    let settings = write_config(dir.path(), &receiver.url(), CPU_RULES, "");
    std::fs::write(
        &settings,
        format!(
            "[alert]\nrule_files = [\"rules/*.yml\"]\nrouting_file = \"routing.yml\"\n\
             [alert.webhook]\nhmac_secret = \"{SECRET}\"\ninitial_backoff = \"30s\"\n"
        ),
    )
    .expect("settings");
    let args = ["--config", settings.to_str().expect("path")];
    let mut pharos = Process::spawn(dir.path(), &args);
    pharos.wait_serving().await;
    post_alert(&pharos, "Pending", "1").await;
    let first = receiver
        .wait_for(1, Duration::from_secs(20), || pharos.log())
        .await;
    pharos = kill_9_and_restart(pharos, dir.path(), &args).await;
    let received = receiver
        .wait_for(2, Duration::from_secs(20), || pharos.log())
        .await;
    assert_eq!(received[1].idempotency_key, first[0].idempotency_key);
    assert_eq!(received[1].body, first[0].body);
    // Delivered now: the group does not send it once more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 2, "{:?}", receiver.received());
    pharos.terminate();
}

/// A Prometheus 2.42 evaluating its own rule and sending to Pharos as its Alertmanager.
struct ReferencePrometheus {
    child: Child,
    log: PathBuf,
}

impl Drop for ReferencePrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_sends_its_alerts_to_pharos() {
    let Some(binary) = reference_tool("prometheus", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start().await;
    let settings = write_config(dir.path(), &receiver.url(), CPU_RULES, "");
    let pharos = Process::spawn(dir.path(), &["--config", settings.to_str().expect("path")]);
    pharos.wait_serving().await;

    let prometheus_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prometheus_dir).expect("dir");
    std::fs::write(
        prometheus_dir.join("rules.yml"),
        "groups:\n- name: external\n  rules:\n  - alert: FromPrometheus\n    expr: vector(1)\n    labels:\n      team: infra\n",
    )
    .expect("rules");
    let config = prometheus_dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['rules.yml']\n\
             alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['{}']\n",
            pharos.http
        ),
    )
    .expect("config");
    let log = prometheus_dir.join("prometheus.log");
    let prometheus = ReferencePrometheus {
        child: Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                prometheus_dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={}", free_addr()))
            // Prometheus drops the alerts of an evaluation that runs before its Alertmanagers
            // are discovered and sends them again only after the resend delay (1 m by default).
            .arg("--rules.alert.resend-delay=1s")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start prometheus"),
        log,
    };
    let received = receiver
        .wait_for(1, Duration::from_secs(60), || {
            format!(
                "prometheus:\n{}\npharos:\n{}",
                std::fs::read_to_string(&prometheus.log).unwrap_or_default(),
                pharos.log()
            )
        })
        .await;
    let body = received[0].json();
    assert_eq!(
        body["alerts"][0]["labels"]["alertname"], "FromPrometheus",
        "{body}"
    );
    assert_eq!(body["alerts"][0]["labels"]["team"], "infra");
    assert!(
        body["alerts"][0]["generatorURL"]
            .as_str()
            .unwrap_or("")
            .contains("/graph?g0.expr=vector%281%29"),
        "{body}"
    );
    drop(prometheus);
    pharos.terminate();
}

/// Waits until `/health` says whether the process leads the alert replicas.
async fn wait_leader(process: &Process, leads: bool, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let health = process.health().await;
        if health["components"]["alert"]["leader"] == leads {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "leader is not {leads} after {within:?}: {health}\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_within_seconds_and_repeats_nothing() {
    let Some(database) = pharos_store::testing::TestDatabase::postgres().await else {
        return;
    };
    let config_dir = tempfile::tempdir().expect("tempdir");
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let receiver = Receiver::start().await;
    let settings = write_config(config_dir.path(), &receiver.url(), CPU_RULES, "");
    let args = [
        "--config",
        settings.to_str().expect("path"),
        "--database-url",
        database.url(),
    ];
    let mut leader = Process::spawn(dir_a.path(), &args);
    leader.wait_serving().await;
    wait_leader(&leader, true, Duration::from_secs(10)).await;
    let standby = Process::spawn(dir_b.path(), &args);
    standby.wait_serving().await;
    wait_leader(&standby, false, Duration::from_secs(1)).await;

    // Posted to the standby, notified by the leader (which reads the store's posted alerts).
    post_alert(&standby, "PostedToStandby", "1").await;
    let received = receiver
        .wait_for(1, Duration::from_secs(20), || leader.log())
        .await;
    assert_eq!(
        received[0].json()["groupLabels"]["alertname"],
        "PostedToStandby"
    );

    // The receiver's 2xx is recorded before the kill (a kill between the two is the window the
    // Idempotency-Key covers: the notification would come again with the same key).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        use sqlx::Connection as _;
        let mut connection = sqlx::PgConnection::connect(database.url())
            .await
            .expect("connect");
        let delivered: i64 =
            sqlx::query_scalar("SELECT count(*) FROM alert_outbox WHERE state = 'delivered'")
                .fetch_one(&mut connection)
                .await
                .expect("count");
        if delivered == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the delivery was not recorded:\n{}",
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // kill -9 the leader: the standby takes over within the lease (4 s) and a renewal (1 s).
    let mut child = leader.child.take().expect("running");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let takeover = wait_leader(&standby, true, Duration::from_secs(15)).await;
    eprintln!("standby took over {takeover:?} after kill -9");
    // What the old leader delivered is not delivered again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
    // And the new leader notifies what comes next.
    post_alert(&standby, "AfterTakeover", "2").await;
    let received = receiver
        .wait_for(2, Duration::from_secs(20), || standby.log())
        .await;
    assert_eq!(
        received[1].json()["groupLabels"]["alertname"],
        "AfterTakeover"
    );
    drop(leader);
    standby.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_writes_its_own_metrics_for_the_self_monitoring_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pharos = Process::spawn_with_env(
        dir.path(),
        &[],
        &[("PHAROS_ALERT__SELF_MONITORING_INTERVAL", "200ms")],
    );
    pharos.wait_serving().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = get_json(format!(
            "http://{}/api/v1/query?query=process_resident_memory_bytes%7Bjob%3D%22pharos%22%7D",
            pharos.http
        ))
        .await;
        let result = &answer["data"]["result"][0];
        if let Some(value) = result["value"][1].as_str() {
            let bytes: f64 = value.parse().expect("a number");
            assert!(bytes > 1e6, "{answer}");
            assert_eq!(result["metric"]["instance"], pharos.grpc.to_string());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no self-monitoring sample: {answer}\n{}",
            pharos.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The built-in group runs beside the files' groups.
    let rules_health = pharos.health().await;
    assert!(
        rules_health["components"]["alert"]["rule_groups"]
            .as_u64()
            .is_some_and(|groups| groups >= 1),
        "{rules_health}"
    );
    pharos.terminate();
}

async fn write_auth_failures(endpoint: &str, user: &str, count: usize) {
    let mut client =
        ingest::ingest_service_client::IngestServiceClient::connect(endpoint.to_owned())
            .await
            .expect("connect");
    let events = (0..count)
        .map(|_| ingest::SecurityEvent {
            event_type: "auth_failure".into(),
            user_id: user.into(),
            source_ip: "203.0.113.7".into(),
            severity: ingest::Severity::Medium as i32,
            resource: "/api/login".into(),
            service_name: "shop".into(),
            ..Default::default()
        })
        .collect();
    let reply = client
        .write_security_events(ingest::WriteSecurityEventsRequest { events })
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted as usize, count, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_is_detected_and_its_threshold_is_live() {
    use pharos_proto::config::v1 as config;

    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start().await;
    let settings = write_config(dir.path(), &receiver.url(), CPU_RULES, "");
    let pharos = Process::spawn(dir.path(), &["--config", settings.to_str().expect("path")]);
    pharos.wait_serving().await;

    // Five failures for one user within a minute: one alert, with its evidence.
    let written = Instant::now();
    write_auth_failures(&pharos.endpoint(), "alice", 5).await;
    let received = receiver
        .wait_for(1, Duration::from_secs(20), || pharos.log())
        .await;
    eprintln!("events to webhook: {:?}", received[0].at - written);
    let body = received[0].json();
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "BruteForceUser", "{body}");
    assert_eq!(alert["labels"]["user"], "alice");
    let evidence: Json =
        serde_json::from_str(alert["annotations"]["evidence"].as_str().expect("evidence"))
            .expect("evidence is JSON");
    assert_eq!(evidence["count"], 5, "{evidence}");

    // Two are not enough by default; after `pharos.alert.detectors.brute_force.max_failures = 2`
    // they are, without a restart.
    let client = pharos.client().await;
    client
        .set(config::SetRequest {
            key: "pharos.alert.detectors.brute_force.max_failures".into(),
            value: "2".into(),
            r#type: config::ValueType::Int as i32,
            ..Default::default()
        })
        .await
        .expect("set");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut user = 0;
    loop {
        // A fresh user each round, until the live threshold has reached the detectors.
        user += 1;
        write_auth_failures(&pharos.endpoint(), &format!("bob{user}"), 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if receiver.received().iter().any(|r| {
            r.json()["alerts"][0]["labels"]["user"]
                .as_str()
                .is_some_and(|u| u.starts_with("bob"))
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the live threshold did not apply:\n{}",
            pharos.log()
        );
    }
    pharos.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_past_the_cap_are_refused_and_held_ones_still_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pharos = Process::spawn_with_env(dir.path(), &[], &[("PHAROS_ALERT__MAX_ALERTS", "2")]);
    pharos.wait_serving().await;
    let post = |alerts: Json| {
        let url = format!("http://{}/api/v2/alerts", pharos.http);
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&alerts)
                .send()
                .await
                .expect("post")
        }
    };
    let response = post(serde_json::json!([
        {"labels": {"alertname": "Storm", "n": "1"}},
        {"labels": {"alertname": "Storm", "n": "2"}},
        {"labels": {"alertname": "Storm", "n": "3"}},
    ]))
    .await;
    assert_eq!(response.status(), 429);
    let text = response.text().await.expect("body");
    assert!(
        text.contains("1 new alerts refused") && text.contains("alert.max_alerts"),
        "{text}"
    );
    let alerts = get_json(format!("http://{}/api/v2/alerts", pharos.http)).await;
    assert_eq!(alerts.as_array().map(Vec::len), Some(2), "{alerts}");
    // An alert already held is still updated: resolving it is accepted.
    let response = post(serde_json::json!([
        {"labels": {"alertname": "Storm", "n": "1"}, "endsAt": "2000-01-01T00:00:00Z", "startsAt": "1999-01-01T00:00:00Z"},
    ]))
    .await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let health = pharos.health().await;
    assert_eq!(
        health["components"]["alert"]["alerts_refused"], 1,
        "{health}"
    );
    pharos.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_rate_limit_a_route_sends_one_summary_and_nothing_twice_after_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start().await;
    let settings = write_config(dir.path(), &receiver.url(), CPU_RULES, "");
    // One group per instance; each route may send 2 notifications per 4 s.
    std::fs::write(
        dir.path().join("routing.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: ['instance']\n  group_wait: 0s\n  group_interval: 500ms\n  repeat_interval: 1h\n\
             receivers:\n- name: hook\n  webhook_configs:\n  - url: {}\n    send_resolved: true\n",
            receiver.url()
        ),
    )
    .expect("routing");
    std::fs::write(
        &settings,
        "[alert]\nrouting_file = \"routing.yml\"\n\
         [alert.notification_rate_limit]\nnotifications = 2\nper = \"4s\"\n",
    )
    .expect("settings");
    let args = ["--config", settings.to_str().expect("path")];
    let mut pharos = Process::spawn(dir.path(), &args);
    pharos.wait_serving().await;

    post_alert(&pharos, "Storm", "1").await;
    post_alert(&pharos, "Storm", "2").await;
    let first = receiver
        .wait_for(2, Duration::from_secs(20), || pharos.log())
        .await;
    for (index, received) in first.iter().enumerate() {
        let body = received.json();
        assert_eq!(body["alerts"].as_array().map(Vec::len), Some(1), "{body}");
        assert!(
            !body["groupKey"]
                .as_str()
                .unwrap_or_default()
                .ends_with(":rate-limited"),
            "notification {index} is a summary: {body}"
        );
    }
    // The budget is spent: five more groups are held back, then told of in one summary.
    for instance in 3..=7 {
        post_alert(&pharos, "Storm", &instance.to_string()).await;
    }
    let received = receiver
        .wait_for(3, Duration::from_secs(20), || pharos.log())
        .await;
    let summary = received[2].json();
    assert_eq!(summary["groupKey"], "{}:rate-limited", "{summary}");
    assert_eq!(
        summary["groupLabels"],
        serde_json::json!({"summary": "5 more alerts in 5 groups"})
    );
    assert_eq!(summary["status"], "firing");
    let mut instances: Vec<String> = summary["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|alert| {
            alert["labels"]["instance"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    instances.sort();
    assert_eq!(instances, ["3", "4", "5", "6", "7"]);
    // The held groups heard of their alerts through the summary: they do not send them again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 3, "{:?}", receiver.received());

    // Nor after kill -9 and a restart (a fresh budget): the summary's delivery recorded each
    // group's notification log.
    wait_delivered(dir.path(), 3, || pharos.log()).await;
    pharos = kill_9_and_restart(pharos, dir.path(), &args).await;
    let alerts = get_json(format!("http://{}/api/v2/alerts", pharos.http)).await;
    assert_eq!(alerts.as_array().map(Vec::len), Some(7), "{alerts}");
    // Once it leads again (it waits out its previous lease), its groups flush: a group that
    // lost its log would be notified now, two at once with the fresh budget.
    wait_leader(&pharos, true, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 3, "{:?}", receiver.received());
    pharos.terminate();
}

/// A `WatchAlerts` open when the process stops ends with UNAVAILABLE (watch again elsewhere),
/// not with a plain end that a client could take for the end of the watch; the stop is not held
/// up by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_open_at_shutdown_ends_unavailable() {
    use futures::StreamExt as _;
    use pharos_proto::alert::v1 as alert_pb;

    let dir = tempfile::tempdir().expect("tempdir");
    let pharos = Process::spawn(dir.path(), &["--target", "ingest,query,alert"]);
    pharos.wait_serving().await;
    let mut client = alert_pb::alert_service_client::AlertServiceClient::connect(pharos.endpoint())
        .await
        .expect("connect");
    let mut stream = client
        .watch_alerts(alert_pb::WatchAlertsRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let first = stream
        .next()
        .await
        .expect("a snapshot")
        .expect("a response");
    assert!(first.snapshot_complete, "{first:?}");
    let stopping = tokio::task::spawn_blocking(move || pharos.terminate());
    let ended = tokio::time::timeout(Duration::from_secs(15), stream.next())
        .await
        .expect("the watch ends when the process stops");
    let status = ended
        .expect("a status, not a plain end")
        .expect_err("an error status");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    stopping.await.expect("the process stopped cleanly");
}
