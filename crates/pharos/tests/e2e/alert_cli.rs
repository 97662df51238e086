//! `pharos alert ...` against a real server, over `pharos.alert.v1.AlertService`: an alert
//! posted through the Alertmanager API is listed with its fingerprint, acknowledged, and listed
//! with its acknowledgement; a silence is added, listed, mutes the alert and is expired; a rule
//! group is stored from a YAML file, runs (evaluations counted) and is deleted; the delivery
//! attempts of the notification the webhook receiver got are listed by its key; and a bad or
//! unknown fingerprint fails with a non-zero exit and a message that says what to do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::support::{Process, cli_of};

/// A webhook receiver on loopback that records each request's Idempotency-Key and answers 200.
struct Receiver {
    addr: SocketAddr,
    keys: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let keys: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = keys.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let recorded = recorded.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    recorded.lock().expect("lock").push(key);
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, keys }
    }

    /// The key of the first notification, waiting up to 20 s for it.
    async fn first_key(&self, pharos: &Process) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(key) = self.keys.lock().expect("lock").first().cloned() {
                return key;
            }
            assert!(
                Instant::now() < deadline,
                "no notification arrived:\n{}",
                pharos.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The settings and routing files: every alert to the receiver at once.
fn write_config(dir: &Path, receiver: &Receiver) -> PathBuf {
    std::fs::write(
        dir.join("routing.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n- name: hook\n  webhook_configs:\n  - url: http://{}/hook\n",
            receiver.addr
        ),
    )
    .expect("routing");
    let settings = dir.join("pharos.toml");
    std::fs::write(
        &settings,
        "[alert]\nrouting_file = \"routing.yml\"\nevaluation_interval = \"1m\"\n\
         [alert.webhook]\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\ntimeout = \"2s\"\n",
    )
    .expect("settings");
    settings
}

/// Posts one firing alert through the Alertmanager API.
async fn post_alert(pharos: &Process, name: &str) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v2/alerts", pharos.http))
        .json(&serde_json::json!([{
            "labels": {"alertname": name, "instance": "db-1"},
            "annotations": {"summary": "posted by the test"},
        }]))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// `pharos alert <args>` that must succeed: its stdout.
fn alert_ok(pharos: &Process, args: &[&str]) -> String {
    let (ok, stdout, stderr) = cli_of("alert", &pharos.endpoint(), args);
    assert!(ok, "pharos alert {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// `pharos alert <args> --json`: one JSON value per line.
fn alert_json(pharos: &Process, args: &[&str]) -> Vec<Json> {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    alert_ok(pharos, &with_json)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// Runs `check` on `pharos alert <args> --json` until it holds, for up to 20 s.
async fn wait_json(pharos: &Process, args: &[&str], check: impl Fn(&[Json]) -> bool) -> Vec<Json> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let values = alert_json(pharos, args);
        if check(&values) {
            return values;
        }
        assert!(
            Instant::now() < deadline,
            "pharos alert {args:?} never showed what was expected: {values:?}\n{}",
            pharos.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_cli_lists_acknowledges_silences_stores_rules_and_shows_deliveries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start().await;
    let settings = write_config(dir.path(), &receiver);
    let pharos = Process::spawn(dir.path(), &["--config", settings.to_str().expect("path")]);
    pharos.wait_serving().await;

    // A posted alert is listed with its fingerprint.
    post_alert(&pharos, "CliDiskFull").await;
    let alerts = alert_json(&pharos, &["list", "--filter", "alertname=CliDiskFull"]);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let fingerprint = alerts[0]["fingerprint"]
        .as_str()
        .expect("a fingerprint")
        .to_owned();
    assert_eq!(fingerprint.len(), 16);
    assert_eq!(alerts[0]["state"], "active");
    assert_eq!(alerts[0]["receivers"][0], "hook");
    assert!(alerts[0]["acknowledgement"].is_null());
    let table = alert_ok(&pharos, &["list"]);
    assert!(
        table.starts_with("FINGERPRINT") && table.contains(&fingerprint),
        "{table}"
    );
    assert!(table.contains("alertname=\"CliDiskFull\""), "{table}");

    // Acknowledged; the list shows who and why.
    let acked = alert_ok(&pharos, &["ack", &fingerprint, "--comment", "on it"]);
    assert!(
        acked.contains(&format!("acknowledged {fingerprint}")),
        "{acked}"
    );
    let alerts = alert_json(&pharos, &["list"]);
    let ack = &alerts[0]["acknowledgement"];
    assert_eq!(ack["comment"], "on it", "{alerts:?}");
    assert!(!ack["by"].as_str().unwrap_or("").is_empty(), "{ack}");
    assert!(alert_ok(&pharos, &["list"]).contains("on it"));

    // A silence: added, listed, muting the alert, then expired.
    let id = alert_ok(
        &pharos,
        &[
            "silence",
            "add",
            "alertname=CliDiskFull",
            "instance=~\"db-.*\"",
            "--duration",
            "2h",
            "--comment",
            "maintenance",
            "--author",
            "ops",
        ],
    )
    .trim()
    .to_owned();
    assert_eq!(id.len(), 36, "{id}");
    let listed = alert_ok(&pharos, &["silence", "list"]);
    assert!(
        listed.contains(&id)
            && listed.contains("active")
            && listed.contains("ops")
            && listed.contains("instance=~\"db-.*\""),
        "{listed}"
    );
    let alerts = alert_json(&pharos, &["list"]);
    assert_eq!(alerts[0]["state"], "suppressed", "{alerts:?}");
    assert_eq!(alerts[0]["silenced_by"][0], id.as_str());
    assert!(alert_ok(&pharos, &["silence", "expire", &id]).contains(&id));
    let listed = alert_ok(&pharos, &["silence", "list"]);
    assert!(!listed.contains(&id), "{listed}");
    let expired = alert_json(&pharos, &["silence", "list", "--expired"]);
    assert_eq!(expired[0]["id"], id.as_str(), "{expired:?}");
    assert_eq!(expired[0]["state"], "expired");
    assert_eq!(alert_json(&pharos, &["list"])[0]["state"], "active");

    // A rule group stored from a file runs, then is deleted.
    let rules = dir.path().join("cli-rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: cli-group\n  interval: 1s\n  rules:\n  - alert: CliAlways\n    expr: vector(1) > 0\n",
    )
    .expect("rules");
    let stored = alert_ok(
        &pharos,
        &["rules", "put", "team-a", rules.to_str().expect("path")],
    );
    assert!(stored.contains("cli-group"), "{stored}");
    let groups = wait_json(&pharos, &["rules", "list"], |groups| {
        groups.iter().any(|group| {
            group["name"] == "cli-group" && group["evaluations"].as_u64().unwrap_or(0) > 0
        })
    })
    .await;
    let group = groups
        .iter()
        .find(|group| group["name"] == "cli-group")
        .expect("the stored group");
    assert_eq!(group["file"], "db:team-a");
    assert_eq!(group["running"], true);
    assert!(
        group["yaml"].as_str().unwrap_or("").contains("CliAlways"),
        "{group}"
    );
    let table = alert_ok(&pharos, &["rules", "list"]);
    assert!(
        table.contains("db:team-a") && table.contains("running") && table.contains("1s"),
        "{table}"
    );
    alert_ok(&pharos, &["rules", "delete", "team-a", "cli-group"]);
    let table = alert_ok(&pharos, &["rules", "list"]);
    assert!(!table.contains("cli-group"), "{table}");

    // The attempts of the notification the receiver got, by its key.
    let key = receiver.first_key(&pharos).await;
    let attempts = wait_json(&pharos, &["deliveries", "--key", &key], |attempts| {
        attempts
            .iter()
            .any(|attempt| attempt["outcome"] == "delivered")
    })
    .await;
    assert_eq!(attempts[0]["idempotency_key"], key.as_str());
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["http_status"], 200);
    let table = alert_ok(&pharos, &["deliveries", "--limit", "5"]);
    assert!(
        table.contains(&key) && table.contains("delivered"),
        "{table}"
    );
    assert!(alert_ok(&pharos, &["deliveries", "--dead"]).contains("no dead letters"));

    // A bad fingerprint and an unknown one: non-zero exits that say what to do.
    let (ok, _, stderr) = cli_of("alert", &pharos.endpoint(), &["ack", "not-a-fingerprint"]);
    assert!(!ok);
    assert!(
        stderr.contains("InvalidArgument")
            && stderr.contains("fingerprint")
            && stderr.contains("pharos alert list"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli_of("alert", &pharos.endpoint(), &["ack", "0123456789abcdef"]);
    assert!(!ok);
    assert!(
        stderr.contains("NotFound") && stderr.contains("pharos alert list"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli_of("alert", &pharos.endpoint(), &["list", "--filter", "oops"]);
    assert!(!ok && stderr.contains("matchers[0]"), "{stderr}");
    pharos.terminate();
}
