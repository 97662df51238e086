//! The query path end to end, through the real binary: a real Prometheus sends its own metrics
//! to Pharos with `remote_write` and they are queryable through the Prometheus HTTP API;
//! staleness markers sent by remote write end a series at once on both stores, while an
//! ordinary NaN stays a value; `pharos query` prints a table, JSON lines and a chart; the head
//! of recent points answers exactly as the store does (fed by the feed, started from a snapshot,
//! in process and across processes).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pharos_proto::prometheus as prompb;
use pharos_store::testing::TestDatabase;
use prost::Message as _;

use crate::support::{Process, cli_of, free_addr, reference_tool};

/// `GET http://<process>/api/v1/query?query=...` (now), returning the JSON body.
async fn query(process: &Process, expr: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("http://{}/api/v1/query", process.http))
        .query(&[("query", expr)])
        .send()
        .await
        .expect("the query API answers")
        .json()
        .await
        .expect("a JSON body")
}

/// Where Debian's Prometheus is (see [`reference_tool`]).
fn prometheus_binary() -> Option<PathBuf> {
    reference_tool("prometheus", "prometheus")
}

/// A Prometheus scraping itself every second and remote-writing to `write_url`.
struct ReferencePrometheus {
    child: Child,
    log: PathBuf,
}

impl ReferencePrometheus {
    fn start(binary: &Path, dir: &Path, write_url: &str) -> Self {
        let listen = free_addr();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['{listen}']\n\
                 remote_write:\n  - url: {write_url}\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n"
            ),
        )
        .expect("write the Prometheus config");
        let log = dir.join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start prometheus");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ReferencePrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_remote_writes_and_its_metrics_are_queryable() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let pharos = Process::spawn(dir.path(), &[]);
    pharos.wait_serving().await;
    let prometheus = ReferencePrometheus::start(
        &binary,
        dir.path(),
        &format!("http://{}/api/v1/write", pharos.http),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let body = query(&pharos, "up{job=\"prometheus\"}").await;
        if body["data"]["result"][0]["value"][1] == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sample of up arrived in 90 s: {body}\nprometheus log:\n{}\npharos log:\n{}",
            prometheus.log(),
            pharos.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Prometheus' own metrics arrive with their labels; rate() works over them once a few
    // scrapes are in.
    let body = query(&pharos, "prometheus_build_info").await;
    assert_eq!(
        body["data"]["result"][0]["metric"]["job"], "prometheus",
        "{body}"
    );
    let series = reqwest::get(format!(
        "http://{}/api/v1/series?match[]=%7Bjob%3D%22prometheus%22%7D",
        pharos.http
    ))
    .await
    .expect("series")
    .json::<serde_json::Value>()
    .await
    .expect("json");
    let count = series["data"].as_array().map_or(0, Vec::len);
    assert!(
        count > 50,
        "only {count} series of Prometheus arrived: {series}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = query(&pharos, "rate(prometheus_http_requests_total[30s])").await;
        if body["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            break;
        }
        assert!(Instant::now() < deadline, "rate() never answered: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(prometheus);
    pharos.terminate();
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// One series of a remote write request: its labels and its samples (milliseconds, value).
type SentSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// POSTs a remote write request with `series` and returns the status.
async fn remote_write(process: &Process, series: Vec<SentSeries<'_>>) -> u16 {
    let request = prompb::WriteRequest {
        timeseries: series
            .into_iter()
            .map(|(labels, samples)| prompb::TimeSeries {
                labels: labels
                    .into_iter()
                    .map(|(name, value)| prompb::Label {
                        name: name.to_owned(),
                        value: value.to_owned(),
                    })
                    .collect(),
                samples: samples
                    .into_iter()
                    .map(|(timestamp, value)| prompb::Sample { value, timestamp })
                    .collect(),
                histograms: Vec::new(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy");
    reqwest::Client::new()
        .post(format!("http://{}/api/v1/write", process.http))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .expect("remote write answers")
        .status()
        .as_u16()
}

async fn staleness_markers_end_a_series_and_nan_does_not(extra: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pharos = Process::spawn(dir.path(), extra);
    pharos.wait_serving().await;
    let now = now_ms();
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let status = remote_write(
        &pharos,
        vec![
            (
                vec![("__name__", "stops"), ("job", "e2e")],
                vec![(now - 30_000, 1.0), (now - 10_000, stale)],
            ),
            (
                vec![("__name__", "goes_nan"), ("job", "e2e")],
                vec![(now - 30_000, 1.0), (now - 10_000, f64::NAN)],
            ),
        ],
    )
    .await;
    assert_eq!(status, 204, "{}", pharos.log());
    let body = query(&pharos, "stops").await;
    assert_eq!(
        body["data"]["result"].as_array().map(Vec::len),
        Some(0),
        "a stale series is gone at once: {body}"
    );
    let body = query(&pharos, "goes_nan").await;
    assert_eq!(
        body["data"]["result"][0]["value"][1], "NaN",
        "an ordinary NaN is a value: {body}"
    );
    let body = query(&pharos, "count_over_time(stops[1m])").await;
    assert_eq!(
        body["data"]["result"][0]["value"][1], "1",
        "the marker is not a sample: {body}"
    );

    // Refused: a body that is not snappy, and a series without a name.
    let refused = reqwest::Client::new()
        .post(format!("http://{}/api/v1/write", pharos.http))
        .body("not snappy")
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status().as_u16(), 400);
    let status = remote_write(&pharos, vec![(vec![("job", "e2e")], vec![(now, 1.0)])]).await;
    assert_eq!(status, 400);
    pharos.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staleness_markers_stay_distinct_from_nan_on_sqlite() {
    staleness_markers_end_a_series_and_nan_does_not(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staleness_markers_stay_distinct_from_nan_on_postgres() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    staleness_markers_end_a_series_and_nan_does_not(&["--database-url", database.url()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pharos_query_prints_a_table_json_lines_and_a_chart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pharos = Process::spawn(dir.path(), &[]);
    pharos.wait_serving().await;
    let now = now_ms();
    let samples: Vec<(i64, f64)> = (0..20)
        .map(|i| (now - 60_000 + i * 3_000, i as f64))
        .collect();
    let status = remote_write(
        &pharos,
        vec![(vec![("__name__", "cli_gauge"), ("job", "e2e")], samples)],
    )
    .await;
    assert_eq!(status, 204, "{}", pharos.log());
    let endpoint = pharos.endpoint();

    let (ok, out, err) = cli_of("query", &endpoint, &["cli_gauge"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("cli_gauge{job=\"e2e\"}") && out.contains("19"),
        "{out}"
    );

    let (ok, out, err) = cli_of("query", &endpoint, &["sum(cli_gauge)", "--json"]);
    assert!(ok, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["value"][1], "19", "{out}");

    let (ok, out, err) = cli_of(
        "query",
        &endpoint,
        &["cli_gauge", "--start", "-1m", "--step", "5s", "--plot"],
    );
    assert!(ok, "{err}");
    let braille = out.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c));
    assert!(
        out.contains("cli_gauge{job=\"e2e\"}") && braille,
        "a legend and a chart drawn in braille: {out}"
    );
    println!("{out}");

    let (ok, _, err) = cli_of("query", &endpoint, &["sum(rate(cli_gauge[1m])"]);
    assert!(!ok);
    assert!(err.contains("InvalidArgument"), "{err}");
    pharos.terminate();
}

/// Split as a cluster runs it: an ingest process and a query process on one PostgreSQL. Points
/// written to the ingest process (through remote write) are answered by the query process over
/// HTTP and gRPC; the query process serves no ingest and the ingest process no query API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_process_answers_what_an_ingest_process_stored_on_postgres() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let ingest = Process::spawn(
        dir.path(),
        &["--target", "ingest", "--database-url", database.url()],
    );
    // The query process keeps the recent points in memory, following the ingest process' feed.
    let query_process = Process::spawn_with_env(
        dir.path(),
        &["--target", "query", "--database-url", database.url()],
        &[("PHAROS_QUERY__INGEST_ENDPOINT", &ingest.endpoint())],
    );
    ingest.wait_serving().await;
    query_process.wait_serving().await;
    let now = now_ms();
    let status = remote_write(
        &ingest,
        vec![(
            vec![("__name__", "split_total"), ("job", "e2e")],
            (0..21)
                .map(|i| (now - 300_000 + i * 15_000, (i * 15) as f64))
                .collect(),
        )],
    )
    .await;
    assert_eq!(status, 204, "{}", ingest.log());

    let body = query(&query_process, "rate(split_total[5m])").await;
    let rate: f64 = body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a rate from the query process: {body}"));
    assert!((rate - 1.0).abs() < 0.05, "a counter growing 1/s: {body}");
    let head = &query_process.health().await["components"]["query_head"];
    assert!(
        head["answered"].as_u64() > Some(0),
        "the head, fed over gRPC, answered: {head}"
    );
    let (ok, out, err) = cli_of(
        "query",
        &query_process.endpoint(),
        &["split_total", "--json"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"split_total\""), "{out}");

    // Each process serves its own part only.
    let not_here = reqwest::get(format!("http://{}/api/v1/query?query=up", ingest.http))
        .await
        .expect("answer");
    assert_eq!(not_here.status().as_u16(), 404);
    let not_here = reqwest::Client::new()
        .post(format!("http://{}/api/v1/write", query_process.http))
        .body("x")
        .send()
        .await
        .expect("answer");
    assert_eq!(not_here.status().as_u16(), 404);
    ingest.terminate();
    query_process.terminate();
}

/// Queries within the head's window, at a fixed time `at` (milliseconds): instant and range,
/// counters with a reset, a series that goes stale, selectors with and without a name.
async fn recent_answers(process: &Process, at: i64) -> Vec<serde_json::Value> {
    let instant = [
        "head_requests_total",
        "rate(head_requests_total[5m])",
        "sum by (job) (increase(head_requests_total[2m]))",
        "count by (__name__) ({__name__=~\"head_.+\"})",
        "head_gauge",
        "max_over_time(head_gauge[4m])",
        "resets(head_requests_total[9m])",
        "head_gauge offset 3m",
        // Ranges that begin before the head's window (20 minutes): read from the store up to
        // where the head begins, the rest from the head.
        "max_over_time(head_long_total[30m])",
        "increase(head_long_total[35m])",
        "count_over_time(head_long_total[40m])",
    ];
    // Each over its last minutes, at a 30 s step.
    let range = [
        ("rate(head_requests_total[1m])", 8),
        ("head_gauge", 8),
        ("count({job=\"b\"})", 8),
        ("rate(head_long_total[2m])", 38),
        ("sum(head_long_total) + count(head_gauge)", 30),
        ("{__name__=~\"head_.+\"}", 30),
    ];
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for expr in instant {
        let body: serde_json::Value = client
            .get(format!("http://{}/api/v1/query", process.http))
            .query(&[("query", expr), ("time", &seconds(at))])
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert_eq!(body["status"], "success", "{expr}: {body}");
        answers.push(serde_json::json!({ "query": expr, "data": body["data"] }));
    }
    for (expr, minutes) in range {
        let body: serde_json::Value = client
            .get(format!("http://{}/api/v1/query_range", process.http))
            .query(&[
                ("query", expr),
                ("start", &seconds(at - minutes * 60_000)),
                ("end", &seconds(at)),
                ("step", "30"),
            ])
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert_eq!(body["status"], "success", "{expr}: {body}");
        answers.push(serde_json::json!({ "query": expr, "data": body["data"] }));
    }
    answers
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Waits until the head answers; its `/health` component.
async fn head_answering(process: &Process) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let head = process.health().await["components"]["query_head"].clone();
        if head["answering"] == true {
            return head;
        }
        assert!(Instant::now() < deadline, "the head answers: {head}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The same queries over the last ten minutes, and over the last 30 to 40 (begun in the store
/// before the head's window of 20 minutes and completed from the head), answered three ways: by
/// the head fed by the feed (asked right after each write's acknowledgement), by the head
/// started from the store's snapshot after a restart, and by the store with the head off; all
/// three answers are equal.
async fn the_head_answers_as_the_store_does(extra: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let window = [("PHAROS_QUERY__HEAD__WINDOW", "20m")];
    let pharos = Process::spawn_with_env(dir.path(), extra, &window);
    pharos.wait_serving().await;
    head_answering(&pharos).await;
    let now = now_ms();
    let at = now - now.rem_euclid(1000);
    let start = at - 10 * 60_000;
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let every = |n: i64| (0..n).map(move |i| start + i * 15_000);
    // Two writes: the second adds points to series the first created, and a new series.
    let first: Vec<SentSeries> = vec![
        (
            vec![("__name__", "head_requests_total"), ("job", "a")],
            every(20)
                .map(|t| (t, ((t - start) / 1000) as f64))
                .collect(),
        ),
        (
            vec![("__name__", "head_requests_total"), ("job", "b")],
            every(20)
                .map(|t| (t, ((t - start) / 5000 % 37) as f64))
                .collect(),
        ),
        (
            vec![("__name__", "head_gauge"), ("job", "c")],
            every(24)
                .map(|t| (t, ((t - start) as f64 / 60_000.0).sin()))
                .chain(std::iter::once((start + 24 * 15_000, stale)))
                .collect(),
        ),
        // 40 minutes of a counter: its first half lies before the head's window.
        (
            vec![("__name__", "head_long_total"), ("job", "a")],
            (0..=160)
                .map(|i| (at - 40 * 60_000 + i * 15_000, (i * 3 % 500) as f64))
                .collect(),
        ),
    ];
    assert_eq!(remote_write(&pharos, first).await, 204, "{}", pharos.log());
    let second: Vec<SentSeries> = vec![
        (
            vec![("__name__", "head_requests_total"), ("job", "a")],
            every(41)
                .skip(20)
                .map(|t| (t, ((t - start) / 1000) as f64))
                .collect(),
        ),
        (
            vec![("__name__", "head_requests_total"), ("job", "b")],
            every(41)
                .skip(20)
                .map(|t| (t, ((t - start) / 5000 % 37) as f64))
                .collect(),
        ),
        (
            vec![("__name__", "head_gauge"), ("job", "b")],
            every(41)
                .map(|t| (t, ((t - start) % 7_000) as f64))
                .collect(),
        ),
    ];
    assert_eq!(remote_write(&pharos, second).await, 204, "{}", pharos.log());
    let from_feed = recent_answers(&pharos, at).await;
    let head = &pharos.health().await["components"]["query_head"];
    assert!(
        head["answered"].as_u64() >= Some(11),
        "the head answered: {head}"
    );
    assert!(
        head["completed"].as_u64() >= Some(5),
        "the head completed the selections begun in the store: {head}"
    );
    assert!(
        from_feed[0]["data"]["result"].as_array().map(Vec::len) == Some(2),
        "both counters at {at}: {}",
        from_feed[0]
    );
    pharos.terminate();

    let pharos = Process::spawn_with_env(dir.path(), extra, &window);
    pharos.wait_serving().await;
    let head = head_answering(&pharos).await;
    assert_eq!(
        head["series"], 5,
        "the snapshot holds the recent series: {head}"
    );
    let from_snapshot = recent_answers(&pharos, at).await;
    let head = &pharos.health().await["components"]["query_head"];
    assert!(
        head["answered"].as_u64() >= Some(11),
        "the head answered: {head}"
    );
    assert!(
        head["completed"].as_u64() >= Some(5),
        "the head completed the selections begun in the store: {head}"
    );
    pharos.terminate();

    let pharos =
        Process::spawn_with_env(dir.path(), extra, &[("PHAROS_QUERY__HEAD__WINDOW", "0s")]);
    pharos.wait_serving().await;
    assert!(pharos.health().await["components"]["query_head"].is_null());
    let from_store = recent_answers(&pharos, at).await;
    pharos.terminate();
    for ((feed, snapshot), store) in from_feed.iter().zip(&from_snapshot).zip(&from_store) {
        assert_eq!(feed, store, "fed by the feed vs the store");
        assert_eq!(snapshot, store, "started from a snapshot vs the store");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_answers_as_the_store_does_on_sqlite() {
    the_head_answers_as_the_store_does(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_answers_as_the_store_does_on_postgres() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    the_head_answers_as_the_store_does(&["--database-url", database.url()]).await;
}
