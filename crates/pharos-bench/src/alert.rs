//! `pharos-bench alert`: the alert service beside Prometheus 2.42 + Alertmanager 0.25, in one
//! run, with one webhook receiver of the harness's own listening for both.
//!
//! 1. **Ack to webhook.** One rule (`bench_value > 100`) and one routing file (a group per
//!    breach) on both sides. Breaches alternate: a fresh series over the threshold written to
//!    Pharos through gRPC `WriteMetrics`, then one to Prometheus through remote write, each at a
//!    random moment; the figure is the time from the write's acknowledgement (the gRPC reply,
//!    the remote write 2xx) to the webhook's arrival at the receiver. Prometheus evaluates every
//!    second (its best case) and sends to Alertmanager; Pharos evaluates as the point commits.
//! 2. **Notifications.** The webhook requests each side sent for the same breach stream.
//! 3. **Security detectors** (Pharos alone, when `pharos serve` has them): 5 `auth_failure`
//!    events of one user to the `BruteForceUser` webhook, and `WriteSecurityEvents` throughput
//!    with the detectors following the feed.
//! 4. **Evaluation under load.** 1,000 alerting rules over 100 metrics in 10 groups; points at a
//!    fixed rate for a fixed time into each side in alternating turns; points/s acknowledged and
//!    rule evaluations/s (Pharos' `ListRuleGroups`, Prometheus'
//!    `prometheus_rule_evaluations_total`).
//!
//! Nothing here asserts a speed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::try_join_all;
use pharos_proto::alert::v1 as alert_pb;
use pharos_proto::alert::v1::alert_service_client::AlertServiceClient;
use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use pharos_proto::prometheus as prompb;
use prost::Message as _;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tonic::transport::Channel;

use crate::Common;
use crate::database::BenchDatabase;
use crate::process::{Server, channel, free_port, loopback, wait_serving};
use crate::stats::{Latencies, print_markdown, show_duration};
use crate::writes::{write_metrics, write_security_events};

/// The breach rule: its metric, its alert and its threshold, and the value a breach writes.
const BREACH_METRIC: &str = "bench_value";
const BREACH_ALERT: &str = "BenchBreach";
const BREACH_VALUE: f64 = 150.0;
/// The label that makes each breach its own series, alert and aggregation group.
const BREACH_LABEL: &str = "breach";
/// Prometheus' evaluation interval: its best case. A reference breach is written at a moment
/// drawn uniformly within it, so it lands anywhere in Prometheus' evaluation cycle.
const REFERENCE_INTERVAL: Duration = Duration::from_secs(1);
/// Pharos' shortest gap between two evaluations of a group that commits triggered: a Pharos
/// breach is written at a moment drawn uniformly within it.
const PHAROS_GAP: Duration = Duration::from_millis(100);
/// How long a breach may take to reach the receiver before it counts as missed.
const WEBHOOK_WAIT: Duration = Duration::from_secs(15);
/// How long after the last breach notifications are still counted.
const SETTLE: Duration = Duration::from_secs(3);
/// The security detector measured: this many `auth_failure` events of one user within its
/// window (60 s) make a `BruteForceUser` alert, labelled with the user.
const BRUTE_FORCE_ALERT: &str = "BruteForceUser";
const BRUTE_FORCE_FAILURES: usize = 5;
/// Users the security load spreads its events over (below the detectors' 100,000 tracked keys);
/// one event in [`FAILURE_EVERY`] is an `auth_failure`, so no user nears the threshold.
const SECURITY_USERS: u64 = 50_000;
const FAILURE_EVERY: u64 = 100;
const SECURITY_SHARDS: usize = 4;
/// The evaluation load: metrics, series per metric, rule groups (each reading 10 metrics) and
/// alerting rules per metric (thresholds 1000, 1100, ...; values stay below 1000, so nothing
/// fires and the load is evaluation alone).
const LOAD_METRICS: usize = 100;
const LOAD_INSTANCES: usize = 10;
const LOAD_GROUPS: usize = 10;
const RULES_PER_METRIC: usize = 10;
const LOAD_FLOOR: f64 = 1000.0;
/// Each sender (one per group's metrics, as Prometheus' remote write shards series) sends what
/// is due every tick, in requests of at most this many points, one request in flight.
const LOAD_TICK: Duration = Duration::from_millis(100);
const MAX_POINTS_PER_REQUEST: usize = 10_000;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// The `prometheus` binary (2.42).
    #[arg(long, default_value = "/usr/bin/prometheus")]
    prometheus_bin: PathBuf,
    /// The Alertmanager binary (0.25; Debian names it `prometheus-alertmanager`).
    #[arg(long, default_value = "/usr/bin/prometheus-alertmanager")]
    alertmanager_bin: PathBuf,
    /// Timed breaches per system [default: 200, 50 with --quick].
    #[arg(long)]
    breaches: Option<usize>,
    /// Seconds of evaluation load per system [default: 30 in two turns, 5 in one with --quick].
    #[arg(long)]
    load_seconds: Option<u64>,
    /// Points per second offered to each system under the 1,000 rules (issue 17's aim).
    #[arg(long, default_value_t = 100_000)]
    load_rate: u64,
    /// Security events per second offered to Pharos (issue 17's aim).
    #[arg(long, default_value_t = 20_000)]
    security_rate: u64,
}

/// The size of one run.
struct Plan {
    breaches: usize,
    load_turns: u32,
    load_turn: Duration,
    detections: usize,
    security_load: Duration,
}

impl Plan {
    fn new(args: &Args) -> Self {
        let quick = args.common.quick;
        let load_turns = if quick { 1 } else { 2 };
        let load_seconds = args
            .load_seconds
            .unwrap_or(if quick { 5 } else { 30 })
            .max(1);
        Self {
            breaches: args.breaches.unwrap_or(if quick { 50 } else { 200 }).max(1),
            load_turns,
            load_turn: Duration::from_secs_f64(load_seconds as f64 / f64::from(load_turns)),
            detections: if quick { 10 } else { 100 },
            security_load: Duration::from_secs(if quick { 3 } else { 15 }),
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let plan = Plan::new(&args);
    let work = tempfile::tempdir()?;
    let receiver = Receiver::start().await?;
    let versions = Versions {
        prometheus: version_of(&args.prometheus_bin, "prometheus"),
        alertmanager: version_of(&args.alertmanager_bin, "prometheus-alertmanager"),
        load_average: load_average(),
    };
    eprintln!(
        "alert: {} breaches per system, Prometheus {} + Alertmanager {}",
        plan.breaches, versions.prometheus, versions.alertmanager
    );

    let database = BenchDatabase::create(&args.common.database_url, "alert").await?;
    let postgres = database.server_version.clone();
    let result = breach_phase(&args, &plan, &receiver, work.path(), &database).await;
    database.drop_it().await;
    let (breaches, security) = result?;

    let database = BenchDatabase::create(&args.common.database_url, "alert_load").await?;
    let result = load_phase(&args, &plan, &receiver, work.path(), &database).await;
    database.drop_it().await;
    let load = result?;

    print_report(&plan, &versions, &postgres, &breaches, &security, &load);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver

/// One webhook request as the receiver got it.
#[derive(Clone, Debug)]
struct Notification {
    /// When its body had fully arrived.
    at: Instant,
    /// The labels of each alert in the body.
    alerts: Vec<BTreeMap<String, String>>,
}

impl Notification {
    fn has(&self, label: &str, value: &str) -> bool {
        self.alerts
            .iter()
            .any(|alert| alert.get(label).map(String::as_str) == Some(value))
    }
}

/// An HTTP/1.1 server on loopback that answers every request 200 and keeps what it got: both
/// Pharos and Alertmanager send to its one URL, and each breach's label says whose it was.
/// Written on tokio directly so the harness's own receiving costs the same for both.
#[derive(Clone)]
struct Receiver {
    url: String,
    log: Arc<Mutex<Vec<Notification>>>,
    events: broadcast::Sender<Notification>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(8192);
        let receiver = Self {
            url: format!("http://{addr}/hook"),
            log: Arc::default(),
            events,
        };
        let accepting = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let receiver = accepting.clone();
                tokio::spawn(async move {
                    let _ = receiver.serve(stream).await;
                });
            }
        });
        Ok(receiver)
    }

    /// Serves one keep-alive connection: bodies by `Content-Length` or chunked.
    async fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if line.trim().is_empty() {
                continue;
            }
            let (mut length, mut chunked) = (0usize, false);
            loop {
                line.clear();
                if stream.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    let value = value.trim();
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.parse().unwrap_or(0);
                    } else if name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = value.eq_ignore_ascii_case("chunked");
                    }
                }
            }
            let mut body = Vec::new();
            if chunked {
                loop {
                    line.clear();
                    stream.read_line(&mut line).await?;
                    let size = line.trim().split(';').next().unwrap_or("0");
                    let size = usize::from_str_radix(size, 16).unwrap_or(0);
                    if size == 0 {
                        // Trailers, up to the empty line.
                        loop {
                            line.clear();
                            if stream.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                                break;
                            }
                        }
                        break;
                    }
                    let start = body.len();
                    body.resize(start + size, 0);
                    stream.read_exact(&mut body[start..]).await?;
                    line.clear();
                    stream.read_line(&mut line).await?;
                }
            } else {
                body.resize(length, 0);
                stream.read_exact(&mut body).await?;
            }
            let at = Instant::now();
            stream
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await?;
            self.record(at, &body);
        }
    }

    fn record(&self, at: Instant, body: &[u8]) {
        let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let alerts = json["alerts"]
            .as_array()
            .map(|alerts| {
                alerts
                    .iter()
                    .map(|alert| {
                        alert["labels"]
                            .as_object()
                            .map(|labels| {
                                labels
                                    .iter()
                                    .map(|(name, value)| {
                                        (name.clone(), value.as_str().unwrap_or("").to_owned())
                                    })
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let notification = Notification { at, alerts };
        if let Ok(mut log) = self.log.lock() {
            log.push(notification.clone());
        }
        // Nobody waiting is fine: the log keeps it.
        let _ = self.events.send(notification);
    }

    fn notifications(&self) -> Vec<Notification> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }
}

/// Waits for a notification carrying an alert with `label` = `value` on `events` (subscribed
/// before the write); returns its arrival time, or `None` after `within`.
async fn wait_for(
    events: &mut broadcast::Receiver<Notification>,
    receiver: &Receiver,
    label: &str,
    value: &str,
    within: Duration,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return None,
            Ok(Ok(notification)) if notification.has(label, value) => {
                return Some(notification.at);
            }
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                // Fell behind: the log has everything.
                if let Some(found) = receiver
                    .notifications()
                    .iter()
                    .find(|notification| notification.has(label, value))
                {
                    return Some(found.at);
                }
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => return None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The systems

/// The wall clock in milliseconds since the epoch: the time of written points.
fn now_ms() -> anyhow::Result<i64> {
    Ok(i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?)
}

/// A running `pharos serve --target ingest,query,alert` with its clients.
struct Pharos {
    server: Server,
    grpc: SocketAddr,
    ingest: IngestServiceClient<Channel>,
}

/// Writes `dir/pharos.toml`, `dir/routing.yml` and `dir/rules/bench.yml`.
fn write_pharos_config(
    dir: &Path,
    rules: &str,
    routing: &str,
    interval: &str,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("rules"))?;
    std::fs::write(dir.join("rules").join("bench.yml"), rules)?;
    std::fs::write(dir.join("routing.yml"), routing)?;
    let settings = dir.join("pharos.toml");
    std::fs::write(
        &settings,
        format!(
            "[alert]\nrule_files = [\"rules/*.yml\"]\nrouting_file = \"routing.yml\"\n\
             evaluation_interval = \"{interval}\"\n"
        ),
    )?;
    Ok(settings)
}

impl Pharos {
    async fn start(
        binary: &Path,
        database_url: &str,
        work: &Path,
        name: &str,
        settings: &Path,
        groups: u64,
    ) -> anyhow::Result<Self> {
        let grpc = loopback(free_port()?);
        let http = loopback(free_port()?);
        let args = [
            "serve".to_owned(),
            "--target".to_owned(),
            "ingest,query,alert".to_owned(),
            "--grpc-addr".to_owned(),
            grpc.to_string(),
            "--http-addr".to_owned(),
            http.to_string(),
            "--database-url".to_owned(),
            database_url.to_owned(),
            "--data-dir".to_owned(),
            work.join(name).display().to_string(),
            "--config".to_owned(),
            settings.display().to_string(),
        ];
        let mut server = Server::spawn(name, binary, &args, &[], work)?;
        wait_serving(&mut server, grpc, Duration::from_secs(60)).await?;
        // A single replica leads at once on a fresh database; until it leads it evaluates
        // nothing, and its groups start just after it leads.
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            server.check_alive()?;
            let health: Json = match client.get(format!("http://{http}/health")).send().await {
                Ok(response) => response.json().await.unwrap_or(Json::Null),
                Err(_) => Json::Null,
            };
            let alert = &health["components"]["alert"];
            if alert["leader"] == true && alert["rule_groups"].as_u64().unwrap_or(0) >= groups {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} does not lead the alert replicas with {groups} rule groups after 15 s: \
                     /health {health}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ingest = IngestServiceClient::new(channel(grpc).await?);
        Ok(Self {
            server,
            grpc,
            ingest,
        })
    }

    /// The groups whose name starts with `prefix`, from `ListRuleGroups`.
    async fn evaluations(&self, prefix: &str) -> anyhow::Result<GroupStats> {
        let mut client = AlertServiceClient::new(channel(self.grpc).await?);
        let groups = client
            .list_rule_groups(alert_pb::ListRuleGroupsRequest {})
            .await
            .context("ListRuleGroups")?
            .into_inner()
            .groups;
        let ours: Vec<&alert_pb::RuleGroup> = groups
            .iter()
            .filter(|group| group.name.starts_with(prefix))
            .collect();
        if ours.is_empty() {
            bail!("ListRuleGroups lists no group named {prefix}*");
        }
        let mut durations: Vec<i64> = ours.iter().map(|group| group.last_duration_us).collect();
        durations.sort_unstable();
        let median = durations[durations.len() / 2];
        Ok(GroupStats {
            evaluations: ours.iter().map(|group| group.evaluations).sum(),
            duration: Some(Duration::from_micros(u64::try_from(median).unwrap_or(0))),
        })
    }
}

/// What one side's rule groups of the load say.
struct GroupStats {
    /// Group evaluations so far.
    evaluations: u64,
    /// The median over the groups of their last evaluation's duration.
    duration: Option<Duration>,
}

/// Sends `signal` (`STOP`, `CONT`) to a child.
fn signal(server: &Server, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.pid()?.to_string())
        .status()?;
    if !status.success() {
        bail!("kill -{signal} {} failed", server.name);
    }
    Ok(())
}

/// Prometheus' remote write: the request, protobuf in snappy's block format.
async fn remote_write(
    http: &reqwest::Client,
    url: &str,
    request: &prompb::WriteRequest,
) -> anyhow::Result<()> {
    let body = snappy_literals(&request.encode_to_vec());
    let response = http
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "remote write: HTTP {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// `data` in snappy's block format as literals only: valid snappy (the length as a varint, then
/// literal elements of up to 64 KiB) that every decoder reads, without a compressor in the
/// harness. Decoding it is a copy, so the reference pays less than for compressed input.
fn snappy_literals(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65_536 * 3 + 16);
    let mut length = data.len() as u64;
    while length >= 0x80 {
        out.push((length as u8) | 0x80);
        length >>= 7;
    }
    out.push(length as u8);
    for chunk in data.chunks(65_536) {
        let n = chunk.len() - 1;
        if n < 60 {
            out.push((n as u8) << 2);
        } else if n < 256 {
            out.push(60 << 2);
            out.push(n as u8);
        } else {
            out.push(61 << 2);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        out.extend_from_slice(chunk);
    }
    out
}

/// One remote-write series: labels sorted by name, as Prometheus keeps them.
fn series(name: &str, labels: &[(&str, &str)], samples: Vec<prompb::Sample>) -> prompb::TimeSeries {
    let mut all: Vec<prompb::Label> = labels
        .iter()
        .map(|(name, value)| prompb::Label {
            name: (*name).to_owned(),
            value: (*value).to_owned(),
        })
        .collect();
    all.push(prompb::Label {
        name: "__name__".to_owned(),
        value: name.to_owned(),
    });
    all.sort_by(|a, b| a.name.cmp(&b.name));
    prompb::TimeSeries {
        labels: all,
        samples,
        histograms: Vec::new(),
    }
}

/// The last lines of child `name`'s log in `work`, under a heading.
fn log_tail(work: &Path, name: &str) -> String {
    let log = std::fs::read_to_string(work.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(15)..];
    format!("--- {name}\n{}", tail.join("\n"))
}

/// Polls `url` until it answers 2xx.
async fn wait_http(server: &mut Server, http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        server.check_alive()?;
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not answer {url} in time", server.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts Prometheus with `config` (remote write receiver on); returns it and its URL.
async fn start_prometheus(
    binary: &Path,
    config: &Path,
    work: &Path,
    name: &str,
    http: &reqwest::Client,
) -> anyhow::Result<(Server, String)> {
    let address = loopback(free_port()?);
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", work.join(name).display()),
        format!("--web.listen-address={address}"),
        "--web.enable-remote-write-receiver".to_owned(),
    ];
    let mut server = Server::spawn(name, binary, &args, &[], work)?;
    let url = format!("http://{address}");
    wait_http(&mut server, http, &format!("{url}/-/ready")).await?;
    Ok((server, url))
}

/// Sums the samples of `metric` in a Prometheus text exposition whose labels contain `needle`.
fn sum_metric(text: &str, metric: &str, needle: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') && rest.contains(needle))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The median of the samples of `metric` whose labels contain `needle`.
fn median_metric(text: &str, metric: &str, needle: &str) -> Option<f64> {
    let mut values: Vec<f64> = text
        .lines()
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') && rest.contains(needle))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

// ---------------------------------------------------------------------------------------------
// Phase 1: breaches, notifications and the security detectors

/// The routing file both sides read: a group per breach, sent at once, resolved alerts not
/// sent (each breach's series goes stale 5 minutes after its sample, so counting resolutions
/// would count how long the run lasted); brute-force alerts grouped per user.
fn routing_file(url: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: ['alertname', '{BREACH_LABEL}']\n  group_wait: 0s\n  \
         group_interval: 1s\n  repeat_interval: 1h\n  routes:\n  - matchers: ['alertname=\"{BRUTE_FORCE_ALERT}\"']\n    \
         group_by: ['alertname', 'user']\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: {url}\n    \
         send_resolved: false\n"
    )
}

fn breach_rules() -> String {
    format!(
        "groups:\n- name: breach\n  rules:\n  - alert: {BREACH_ALERT}\n    expr: {BREACH_METRIC} > 100\n"
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Pharos,
    Reference,
}

impl Side {
    fn prefix(self) -> &'static str {
        match self {
            Side::Pharos => "pharos-",
            Side::Reference => "reference-",
        }
    }
}

/// What the breach stream measured on one side.
#[derive(Default)]
struct SideBreaches {
    ack_to_webhook: Option<Latencies>,
    sent_to_webhook: Option<Latencies>,
    write_ack: Option<Latencies>,
    missed: usize,
    /// Webhook requests carrying this side's timed breaches, the alerts in them, and the
    /// distinct breaches notified.
    requests: usize,
    alerts: usize,
    distinct: usize,
}

struct Breaches {
    pharos: SideBreaches,
    reference: SideBreaches,
    /// Requests for neither side's breaches nor the security probes (e.g. Pharos' own
    /// self-monitoring alerts).
    other_requests: usize,
    took: Duration,
}

enum Security {
    NotMeasured(String),
    Measured(Box<SecurityFigures>),
}

/// The probes' times from the last failure's write being sent, and from its acknowledgement.
struct ProbeTimes {
    sent: Latencies,
    acked: Latencies,
    missed: usize,
}

impl ProbeTimes {
    fn new() -> Self {
        Self {
            sent: Latencies::new(),
            acked: Latencies::new(),
            missed: 0,
        }
    }

    fn record(&mut self, probe: Option<Probe>) {
        match probe {
            Some(probe) => {
                self.sent.record(probe.sent);
                self.acked.record(probe.acked);
            }
            None => self.missed += 1,
        }
    }
}

struct SecurityFigures {
    detection: ProbeTimes,
    offered: u64,
    events_per_second: f64,
    write_p99: Duration,
    under_load: ProbeTimes,
    requests: usize,
    users: usize,
}

async fn breach_phase(
    args: &Args,
    plan: &Plan,
    receiver: &Receiver,
    work: &Path,
    database: &BenchDatabase,
) -> anyhow::Result<(Breaches, Security)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()?;
    let routing = routing_file(&receiver.url);

    // Alertmanager, then Prometheus pointed at it.
    let am_dir = work.join("alertmanager-config");
    std::fs::create_dir_all(&am_dir)?;
    std::fs::write(am_dir.join("alertmanager.yml"), &routing)?;
    let am_address = loopback(free_port()?);
    let am_args = [
        format!(
            "--config.file={}",
            am_dir.join("alertmanager.yml").display()
        ),
        format!(
            "--storage.path={}",
            work.join("alertmanager-data").display()
        ),
        format!("--web.listen-address={am_address}"),
        // One instance: no gossip, no waiting for peers to settle.
        "--cluster.listen-address=".to_owned(),
    ];
    eprintln!("starting alertmanager and prometheus");
    let mut alertmanager =
        Server::spawn("alertmanager", &args.alertmanager_bin, &am_args, &[], work)?;
    wait_http(
        &mut alertmanager,
        &http,
        &format!("http://{am_address}/-/ready"),
    )
    .await?;
    let prometheus_dir = work.join("prometheus-config");
    std::fs::create_dir_all(&prometheus_dir)?;
    std::fs::write(prometheus_dir.join("breach.yml"), breach_rules())?;
    let prometheus_config = prometheus_dir.join("prometheus.yml");
    std::fs::write(
        &prometheus_config,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n  \
             - static_configs:\n    - targets: ['{am_address}']\n",
            prometheus_dir.join("breach.yml").display()
        ),
    )?;
    let (mut prometheus, prometheus_url) = start_prometheus(
        &args.prometheus_bin,
        &prometheus_config,
        work,
        "prometheus",
        &http,
    )
    .await?;
    // Prometheus learns its Alertmanagers through service discovery, whose first update comes
    // seconds after start; an alert firing before that is dropped and only sent again a minute
    // later (the resend delay).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        prometheus.check_alive()?;
        let answer: Json = match http
            .get(format!("{prometheus_url}/api/v1/alertmanagers"))
            .send()
            .await
        {
            Ok(response) => response.json().await.unwrap_or(Json::Null),
            Err(_) => Json::Null,
        };
        if answer["data"]["activeAlertmanagers"]
            .as_array()
            .is_some_and(|active| !active.is_empty())
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("prometheus lists no active alertmanager after 60 s: {answer}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let write_url = format!("{prometheus_url}/api/v1/write");

    eprintln!("starting pharos serve --target ingest,query,alert");
    let settings =
        write_pharos_config(&work.join("pharos-config"), &breach_rules(), &routing, "1m")?;
    let mut pharos = Pharos::start(
        &args.common.pharos_bin,
        &database.url,
        work,
        "pharos-alert",
        &settings,
        1,
    )
    .await?;

    let started = Instant::now();
    let outcome = breach_stream(plan, receiver, &mut pharos, &http, &write_url).await;
    let took = started.elapsed();
    let (pharos_side, reference_side) = match outcome {
        Ok(sides) => sides,
        Err(error) => {
            let logs: Vec<String> = ["pharos-alert", "prometheus", "alertmanager"]
                .iter()
                .map(|name| log_tail(work, name))
                .collect();
            let received = receiver.notifications().len();
            return Err(error.context(format!(
                "{received} webhook requests received; the logs end with:\n{}",
                logs.join("\n")
            )));
        }
    };
    tokio::time::sleep(SETTLE).await;

    let security = security(plan, args, receiver, &mut pharos).await?;

    for server in [&mut pharos.server, &mut prometheus, &mut alertmanager] {
        server.check_alive()?;
    }
    // Counted last, so late repeats had every chance to arrive.
    let notifications = receiver.notifications();
    let count = |side: Side, mut figures: SideBreaches| {
        let timed = |labels: &BTreeMap<String, String>| {
            labels
                .get(BREACH_LABEL)
                .is_some_and(|id| id.starts_with(side.prefix()))
        };
        let mut distinct = std::collections::BTreeSet::new();
        for notification in &notifications {
            let ours: Vec<&BTreeMap<String, String>> =
                notification.alerts.iter().filter(|a| timed(a)).collect();
            if !ours.is_empty() {
                figures.requests += 1;
                figures.alerts += ours.len();
                distinct.extend(ours.iter().filter_map(|a| a.get(BREACH_LABEL).cloned()));
            }
        }
        figures.distinct = distinct.len();
        figures
    };
    let other_requests = notifications
        .iter()
        .filter(|n| {
            !n.alerts.iter().any(|a| {
                a.contains_key(BREACH_LABEL)
                    || a.get("alertname").map(String::as_str) == Some(BRUTE_FORCE_ALERT)
            })
        })
        .count();
    let breaches = Breaches {
        pharos: count(Side::Pharos, pharos_side),
        reference: count(Side::Reference, reference_side),
        other_requests,
        took,
    };
    pharos.server.stop().await?;
    prometheus.stop().await?;
    alertmanager.stop().await?;
    Ok((breaches, security))
}

/// The alternating breaches: a warm-up pair, then `plan.breaches` timed pairs.
async fn breach_stream(
    plan: &Plan,
    receiver: &Receiver,
    pharos: &mut Pharos,
    http: &reqwest::Client,
    write_url: &str,
) -> anyhow::Result<(SideBreaches, SideBreaches)> {
    let mut rng = SmallRng::seed_from_u64(17);
    let mut sides = [SideBreaches::default(), SideBreaches::default()];
    for side in &mut sides {
        side.ack_to_webhook = Some(Latencies::new());
        side.sent_to_webhook = Some(Latencies::new());
        side.write_ack = Some(Latencies::new());
    }
    let bar = progress(
        plan.breaches,
        "breaches (pharos, then prometheus + alertmanager)",
    );
    for turn in 0..=plan.breaches {
        for (index, side) in [Side::Pharos, Side::Reference].into_iter().enumerate() {
            let window = match side {
                Side::Pharos => PHAROS_GAP,
                Side::Reference => REFERENCE_INTERVAL,
            };
            let delay = rng.random_range(0..window.as_micros() as u64);
            tokio::time::sleep(Duration::from_micros(delay)).await;
            let id = if turn == 0 {
                format!("warmup-{}", side.prefix())
            } else {
                format!("{}{turn}", side.prefix())
            };
            let mut events = receiver.events.subscribe();
            let time_ms = now_ms()?;
            let sent = Instant::now();
            match side {
                Side::Pharos => {
                    let point = pb::MetricPoint {
                        name: BREACH_METRIC.to_owned(),
                        labels: vec![pb::Label {
                            name: BREACH_LABEL.to_owned(),
                            value: id.clone(),
                        }],
                        time_unix_nano: time_ms * 1_000_000,
                        value: BREACH_VALUE,
                    };
                    write_metrics(&mut pharos.ingest, || vec![point.clone()]).await?;
                }
                Side::Reference => {
                    let request = prompb::WriteRequest {
                        timeseries: vec![series(
                            BREACH_METRIC,
                            &[(BREACH_LABEL, &id)],
                            vec![prompb::Sample {
                                value: BREACH_VALUE,
                                timestamp: time_ms,
                            }],
                        )],
                        metadata: Vec::new(),
                    };
                    remote_write(http, write_url, &request).await?;
                }
            }
            let acked = Instant::now();
            let within = if turn == 0 {
                Duration::from_secs(30)
            } else {
                WEBHOOK_WAIT
            };
            let arrived = wait_for(&mut events, receiver, BREACH_LABEL, &id, within).await;
            let figures = &mut sides[index];
            match arrived {
                None if turn == 0 => {
                    pharos.server.check_alive()?;
                    bail!(
                        "the warm-up breach {id} reached no webhook within {within:?}; is the {} side working?",
                        match side {
                            Side::Pharos => "pharos",
                            Side::Reference => "prometheus + alertmanager",
                        }
                    );
                }
                None => figures.missed += 1,
                Some(_) if turn == 0 => {}
                Some(at) => {
                    if let Some(latencies) = &mut figures.ack_to_webhook {
                        latencies.record(at.saturating_duration_since(acked));
                    }
                    if let Some(latencies) = &mut figures.sent_to_webhook {
                        latencies.record(at.saturating_duration_since(sent));
                    }
                    if let Some(latencies) = &mut figures.write_ack {
                        latencies.record(acked - sent);
                    }
                }
            }
        }
        if turn > 0 {
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let [pharos_side, reference_side] = sides;
    for (name, side) in [("pharos", &pharos_side), ("reference", &reference_side)] {
        if let Some(latencies) = &side.ack_to_webhook
            && !latencies.is_empty()
        {
            eprintln!(
                "  {name}: ack to webhook p50 {} p99 {}, {} missed",
                show_duration(latencies.p50()),
                show_duration(latencies.p99()),
                side.missed
            );
        }
    }
    Ok((pharos_side, reference_side))
}

/// One security event of the benchmark.
fn security_event(event_type: &str, user: &str, source_ip: String) -> pb::SecurityEvent {
    pb::SecurityEvent {
        time_unix_nano: 0,
        event_type: event_type.to_owned(),
        user_id: user.to_owned(),
        source_ip,
        severity: pb::Severity::Medium as i32,
        resource: "/api/login".to_owned(),
        service_name: "bench-auth".to_owned(),
        attributes: Default::default(),
    }
}

/// Times of one attack, from the last failure's write being sent and from its acknowledgement
/// (zero when the webhook came first) to the `BruteForceUser` webhook.
struct Probe {
    sent: Duration,
    acked: Duration,
}

/// Attacks one user: `BRUTE_FORCE_FAILURES - 1` failures, then the last one alone; `None` when
/// no webhook for that user came `within`.
async fn brute_force_probe(
    client: &mut IngestServiceClient<Channel>,
    receiver: &Receiver,
    user: &str,
    source_ip: String,
    within: Duration,
) -> anyhow::Result<Option<Probe>> {
    write_security_events(client, || {
        (0..BRUTE_FORCE_FAILURES - 1)
            .map(|_| security_event("auth_failure", user, source_ip.clone()))
            .collect()
    })
    .await?;
    let mut events = receiver.events.subscribe();
    let sent = Instant::now();
    write_security_events(client, || {
        vec![security_event("auth_failure", user, source_ip.clone())]
    })
    .await?;
    let acked = Instant::now();
    let arrived = wait_for(&mut events, receiver, "user", user, within).await;
    Ok(arrived.map(|at| Probe {
        sent: at.saturating_duration_since(sent),
        acked: at.saturating_duration_since(acked),
    }))
}

/// A distinct documentation-range address per probe, so no address detector joins in.
fn probe_ip(n: usize) -> String {
    format!("198.18.{}.{}", (n / 250) % 250, 1 + n % 250)
}

/// Event `index` of the security load: a user of [`SECURITY_USERS`] with an address of its own,
/// an `auth_failure` one time in [`FAILURE_EVERY`], else an `auth_success`.
fn load_event(index: u64) -> pb::SecurityEvent {
    let failure = index.is_multiple_of(FAILURE_EVERY);
    // Failures go to users in a permutation of their own (7,919 is prime to 50,000), so the
    // first 50,000 failures hit 50,000 different users.
    let spread = if failure {
        index / FAILURE_EVERY
    } else {
        index
    };
    let user = spread.wrapping_mul(7_919) % SECURITY_USERS;
    let ip = format!("10.{}.{}.{}", user >> 16, (user >> 8) & 255, user & 255);
    let kind = if failure {
        "auth_failure"
    } else {
        "auth_success"
    };
    security_event(kind, &format!("user-{user}"), ip)
}

async fn security(
    plan: &Plan,
    args: &Args,
    receiver: &Receiver,
    pharos: &mut Pharos,
) -> anyhow::Result<Security> {
    eprintln!(
        "security detectors: {BRUTE_FORCE_FAILURES} auth_failure events for one user, waiting for {BRUTE_FORCE_ALERT}"
    );
    // The probes have a connection of their own, so their replies never queue behind the load's.
    let mut client = IngestServiceClient::new(channel(pharos.grpc).await?);
    let first = brute_force_probe(
        &mut client,
        receiver,
        "probe-first",
        probe_ip(0),
        Duration::from_secs(10),
    )
    .await?;
    if first.is_none() {
        pharos.server.check_alive()?;
        return Ok(Security::NotMeasured(format!(
            "{BRUTE_FORCE_FAILURES} auth_failure events for one user brought no {BRUTE_FORCE_ALERT} \
             webhook from `pharos serve` within 10 s: the security detectors are not wired into \
             serve in this build"
        )));
    }
    let mut rng = SmallRng::seed_from_u64(20);
    let mut detection = ProbeTimes::new();
    for n in 0..plan.detections {
        let delay = rng.random_range(0..PHAROS_GAP.as_micros() as u64);
        tokio::time::sleep(Duration::from_micros(delay)).await;
        let user = format!("probe-{n}");
        detection.record(
            brute_force_probe(&mut client, receiver, &user, probe_ip(n + 1), WEBHOOK_WAIT).await?,
        );
    }
    eprintln!(
        "  5th auth_failure ack to webhook p50 {} p99 {}",
        show_duration(detection.acked.p50()),
        show_duration(detection.acked.p99())
    );

    // Throughput: a steady stream at the offered rate (1 event in 100 an auth_failure, spread
    // over 50,000 users so none nears the threshold), with a probe user attacked every second.
    let rate = args.security_rate.max(1);
    let total = (rate as f64 * plan.security_load.as_secs_f64()) as u64;
    eprintln!(
        "security events at {}/s for {}",
        thousands(rate),
        show_duration(plan.security_load)
    );
    let mut clients = Vec::new();
    for _ in 0..SECURITY_SHARDS {
        clients.push(IngestServiceClient::new(channel(pharos.grpc).await?));
    }
    let started = Instant::now();
    let shards = clients.into_iter().zip(0..).map(|(mut client, shard)| {
        async move {
            let mut tick = tokio::time::interval(LOAD_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut latencies = Latencies::new();
            // This shard's events are those with index % SHARDS == shard.
            let mut next = shard;
            let mut accepted = 0;
            while next < total {
                tick.tick().await;
                let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
                while next < due {
                    let step = SECURITY_SHARDS as u64;
                    let count = (due - next)
                        .div_ceil(step)
                        .min(MAX_POINTS_PER_REQUEST as u64);
                    let first = next;
                    let began = Instant::now();
                    accepted += write_security_events(&mut client, || {
                        (0..count).map(|k| load_event(first + k * step)).collect()
                    })
                    .await?;
                    latencies.record(began.elapsed());
                    next += count * step;
                }
            }
            Ok::<_, anyhow::Error>((accepted, latencies.p99(), Instant::now()))
        }
    });
    let probes = {
        let load = plan.security_load;
        async move {
            let mut times = ProbeTimes::new();
            let mut n = 0;
            while started.elapsed() + Duration::from_millis(500) < load {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let user = format!("probe-load-{n}");
                times.record(
                    brute_force_probe(
                        &mut client,
                        receiver,
                        &user,
                        probe_ip(plan.detections + 1 + n),
                        WEBHOOK_WAIT,
                    )
                    .await?,
                );
                n += 1;
            }
            Ok::<_, anyhow::Error>(times)
        }
    };
    let (shards, under_load) = futures::try_join!(try_join_all(shards), probes)?;
    let accepted: u64 = shards.iter().map(|(accepted, _, _)| accepted).sum();
    let finished = shards
        .iter()
        .map(|(_, _, finished)| *finished)
        .max()
        .unwrap_or_else(Instant::now);
    // At least the schedule's length, as for points.
    let elapsed = (finished - started).max(plan.security_load);
    let write_p99 = shards
        .iter()
        .map(|(_, p99, _)| *p99)
        .max()
        .unwrap_or_default();
    tokio::time::sleep(SETTLE).await;
    let notifications = receiver.notifications();
    let brute_force: Vec<&Notification> = notifications
        .iter()
        .filter(|n| n.has("alertname", BRUTE_FORCE_ALERT))
        .collect();
    let users: std::collections::BTreeSet<&str> = brute_force
        .iter()
        .flat_map(|n| n.alerts.iter().filter_map(|a| a.get("user")))
        .map(String::as_str)
        .collect();
    let events_per_second = accepted as f64 / elapsed.as_secs_f64();
    eprintln!(
        "  {:.0} security events/s accepted; under load 5th auth_failure sent to webhook p50 {}",
        events_per_second,
        show_duration(under_load.sent.p50())
    );
    Ok(Security::Measured(Box::new(SecurityFigures {
        detection,
        offered: rate,
        events_per_second,
        write_p99,
        under_load,
        requests: brute_force.len(),
        users: users.len(),
    })))
}

// ---------------------------------------------------------------------------------------------
// Phase 2: evaluation under load

/// The 1,000 rules: group `load-g{g}` holds the rules of metrics `10g .. 10g + 9`.
fn load_rules() -> String {
    let mut yaml = String::from("groups:\n");
    let metrics_per_group = LOAD_METRICS / LOAD_GROUPS;
    for group in 0..LOAD_GROUPS {
        yaml.push_str(&format!("- name: load-g{group}\n  rules:\n"));
        for metric in group * metrics_per_group..(group + 1) * metrics_per_group {
            for rule in 0..RULES_PER_METRIC {
                let threshold = LOAD_FLOOR + 100.0 * rule as f64;
                yaml.push_str(&format!(
                    "  - alert: BenchM{metric}Over{threshold}\n    expr: bench_m{metric} > {threshold}\n"
                ));
            }
        }
    }
    yaml
}

/// The value of load series `series` at scrape `scrape`: always below [`LOAD_FLOOR`].
fn load_value(series: usize, scrape: u64) -> f64 {
    let mut x = (series as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ scrape;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % LOAD_FLOOR as u64) as f64
}

/// Where the load goes.
#[derive(Clone)]
enum LoadTarget {
    /// Pharos' gRPC address: each sender opens a connection of its own, as each Prometheus
    /// remote write shard has one.
    Pharos(SocketAddr),
    Reference {
        http: reqwest::Client,
        url: String,
    },
}

/// One side's figures under load, summed over its turns.
#[derive(Default)]
struct SideLoad {
    points: u64,
    elapsed: Duration,
    /// Rule group evaluations within the turns' windows, and the windows' total length.
    group_evaluations: Option<u64>,
    window: Duration,
    group_duration: Option<Duration>,
    request_p99: Duration,
    retries: u64,
    missing: Option<String>,
    /// One line per turn.
    turns: Vec<String>,
}

impl SideLoad {
    fn points_per_second(&self) -> f64 {
        self.points as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Rule evaluations per second: group evaluations times the rules in a group.
    fn rule_evaluations_per_second(&self) -> Option<f64> {
        let rules_per_group = (LOAD_METRICS / LOAD_GROUPS * RULES_PER_METRIC) as f64;
        self.group_evaluations
            .map(|groups| groups as f64 * rules_per_group / self.window.as_secs_f64().max(1e-9))
    }
}

struct Load {
    offered: u64,
    pharos: SideLoad,
    reference: SideLoad,
}

/// Sends points of every load series at `rate` for `duration`: one sender per group's 100
/// series, each sending what is due every [`LOAD_TICK`] (a backlog goes in the next request),
/// one request in flight. Returns the points acknowledged, the time until the last
/// acknowledgement (at least the schedule's length), the slowest sender's request p99 and the
/// retries.
async fn drive_load(
    target: &LoadTarget,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<(u64, Duration, Duration, u64)> {
    let series_total = LOAD_METRICS * LOAD_INSTANCES;
    let per_shard = series_total / LOAD_GROUPS;
    // One scrape is a point of every series; scrapes are `period` apart, at least 1 ms.
    let period_us = ((series_total as f64 / rate.max(1) as f64) * 1e6).max(1000.0) as u64;
    let scrapes = (duration.as_micros() as u64 / period_us).max(1);
    let scrapes_per_request = (MAX_POINTS_PER_REQUEST / per_shard).max(1) as u64;
    let names: Vec<String> = (0..LOAD_METRICS).map(|m| format!("bench_m{m}")).collect();
    let instances: Vec<String> = (0..LOAD_INSTANCES).map(|i| format!("i{i}")).collect();
    let (names, instances) = (&names, &instances);
    let mut clients = Vec::new();
    for _ in 0..LOAD_GROUPS {
        clients.push(match target {
            LoadTarget::Pharos(grpc) => Some(IngestServiceClient::new(channel(*grpc).await?)),
            LoadTarget::Reference { .. } => None,
        });
    }
    let first_ms = now_ms()?;
    let started = Instant::now();
    let senders = clients.into_iter().enumerate().map(|(shard, mut client)| {
        let target = target.clone();
        async move {
            let mut tick = tokio::time::interval(LOAD_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut latencies = Latencies::new();
            let (mut sent, mut points, mut retries) = (0u64, 0u64, 0u64);
            let shard_series = shard * per_shard..(shard + 1) * per_shard;
            while sent < scrapes {
                tick.tick().await;
                let due = (started.elapsed().as_micros() as u64 / period_us + 1).min(scrapes);
                while sent < due {
                    let upto = (sent + scrapes_per_request).min(due);
                    let time_ms = |scrape: u64| first_ms + (scrape * period_us / 1000) as i64;
                    let began = Instant::now();
                    match (&target, &mut client) {
                        (LoadTarget::Pharos(_), Some(client)) => {
                            let batch = || {
                                let mut batch =
                                    Vec::with_capacity(per_shard * (upto - sent) as usize);
                                for scrape in sent..upto {
                                    for s in shard_series.clone() {
                                        batch.push(pb::MetricPoint {
                                            name: names[s / LOAD_INSTANCES].clone(),
                                            labels: vec![pb::Label {
                                                name: "instance".to_owned(),
                                                value: instances[s % LOAD_INSTANCES].clone(),
                                            }],
                                            time_unix_nano: time_ms(scrape) * 1_000_000,
                                            value: load_value(s, scrape),
                                        });
                                    }
                                }
                                batch
                            };
                            let (accepted, retried) = write_metrics(client, batch).await?;
                            points += accepted;
                            retries += retried;
                        }
                        (LoadTarget::Pharos(_), None) => bail!("no connection to pharos"),
                        (LoadTarget::Reference { http, url }, _) => {
                            let timeseries = shard_series
                                .clone()
                                .map(|s| {
                                    let samples = (sent..upto)
                                        .map(|scrape| prompb::Sample {
                                            value: load_value(s, scrape),
                                            timestamp: time_ms(scrape),
                                        })
                                        .collect();
                                    series(
                                        &names[s / LOAD_INSTANCES],
                                        &[("instance", &instances[s % LOAD_INSTANCES])],
                                        samples,
                                    )
                                })
                                .collect();
                            let request = prompb::WriteRequest {
                                timeseries,
                                metadata: Vec::new(),
                            };
                            remote_write(http, url, &request).await?;
                            points += per_shard as u64 * (upto - sent);
                        }
                    }
                    latencies.record(began.elapsed());
                    sent = upto;
                }
            }
            Ok::<_, anyhow::Error>((points, latencies.p99(), retries, Instant::now()))
        }
    });
    let results = try_join_all(senders).await?;
    let points = results.iter().map(|r| r.0).sum();
    let p99 = results.iter().map(|r| r.1).max().unwrap_or_default();
    let retries = results.iter().map(|r| r.2).sum();
    let finished = results.iter().map(|r| r.3).max().unwrap_or(started);
    // A side that keeps up took the schedule's time; one that falls behind, until its last ack.
    let scheduled = Duration::from_micros(scrapes * period_us);
    Ok((points, (finished - started).max(scheduled), p99, retries))
}

/// Prometheus' own counters: rule evaluations of the load groups, and the median of their last
/// evaluation's duration.
async fn prometheus_evaluations(http: &reqwest::Client, url: &str) -> anyhow::Result<GroupStats> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let needle = ";load-g";
    let evaluations = sum_metric(&text, "prometheus_rule_evaluations_total", needle);
    let duration = median_metric(&text, "prometheus_rule_group_last_duration_seconds", needle)
        .map(Duration::from_secs_f64);
    // The counter counts rules; report groups like Pharos' does.
    let rules_per_group = (LOAD_METRICS / LOAD_GROUPS * RULES_PER_METRIC) as f64;
    Ok(GroupStats {
        evaluations: (evaluations / rules_per_group).round() as u64,
        duration,
    })
}

async fn load_phase(
    args: &Args,
    plan: &Plan,
    receiver: &Receiver,
    work: &Path,
    database: &BenchDatabase,
) -> anyhow::Result<Load> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()?;
    let rules = load_rules();
    let prometheus_dir = work.join("prometheus-load-config");
    std::fs::create_dir_all(&prometheus_dir)?;
    std::fs::write(prometheus_dir.join("load.yml"), &rules)?;
    let config = prometheus_dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\n",
            prometheus_dir.join("load.yml").display()
        ),
    )?;
    eprintln!(
        "evaluation load: {} rules over {LOAD_METRICS} metrics ({} series) in {LOAD_GROUPS} groups",
        thousands((LOAD_METRICS * RULES_PER_METRIC) as u64),
        thousands((LOAD_METRICS * LOAD_INSTANCES) as u64)
    );
    let (mut prometheus, prometheus_url) = start_prometheus(
        &args.prometheus_bin,
        &config,
        work,
        "prometheus-load",
        &http,
    )
    .await?;
    // Every evaluation of the load comes from commits: no interval tick falls in the
    // reference's turn.
    let settings = write_pharos_config(
        &work.join("pharos-load-config"),
        &rules,
        &routing_file(&receiver.url),
        "1h",
    )?;
    let mut pharos = Pharos::start(
        &args.common.pharos_bin,
        &database.url,
        work,
        "pharos-load",
        &settings,
        LOAD_GROUPS as u64,
    )
    .await?;
    let offered = args.load_rate.max(1);
    let pharos_target = LoadTarget::Pharos(pharos.grpc);
    let reference_target = LoadTarget::Reference {
        http: http.clone(),
        url: format!("{prometheus_url}/api/v1/write"),
    };
    let mut sides = [SideLoad::default(), SideLoad::default()];
    for turn in 1..=plan.load_turns {
        for (index, target) in [&pharos_target, &reference_target].into_iter().enumerate() {
            let name = if index == 0 { "pharos" } else { "prometheus" };
            eprintln!(
                "  turn {turn}: {name}, {} points/s for {}",
                thousands(offered),
                show_duration(plan.load_turn)
            );
            if index == 0 {
                // Each side has the machine to itself in its turn: Prometheus would otherwise
                // evaluate its 1,000 rules every second beside Pharos' turn. (Pharos is idle in
                // the reference's turn: it evaluates on commits only, and has settled.)
                signal(&prometheus, "STOP")?;
            }
            let before = match index {
                0 => pharos.evaluations("load-g").await,
                _ => prometheus_evaluations(&http, &prometheus_url).await,
            };
            let window_start = Instant::now();
            let (points, elapsed, p99, retries) = drive_load(target, offered, plan.load_turn)
                .await
                .with_context(|| format!("loading {name}"))?;
            let after = match index {
                0 => pharos.evaluations("load-g").await,
                _ => prometheus_evaluations(&http, &prometheus_url).await,
            };
            let window = window_start.elapsed();
            let settled = if index == 0 {
                let settled = settle_pharos(&pharos).await;
                let total = pharos
                    .evaluations("load-g")
                    .await
                    .ok()
                    .map(|g| g.evaluations);
                signal(&prometheus, "CONT")?;
                Some((settled, total))
            } else {
                None
            };
            let side = &mut sides[index];
            side.points += points;
            side.elapsed += elapsed;
            side.request_p99 = side.request_p99.max(p99);
            side.retries += retries;
            let mut turn_evaluations = None;
            let after_total = after.as_ref().ok().map(|after| after.evaluations);
            match (before, after) {
                (Ok(before), Ok(after)) => {
                    let done = after.evaluations.saturating_sub(before.evaluations);
                    *side.group_evaluations.get_or_insert(0) += done;
                    side.window += window;
                    side.group_duration = after.duration;
                    turn_evaluations = Some(done);
                }
                (Err(error), _) | (_, Err(error)) => {
                    side.missing = Some(format!("{error:#}"));
                }
            }
            let rules_per_group = (LOAD_METRICS / LOAD_GROUPS * RULES_PER_METRIC) as f64;
            let mut line = format!(
                "turn {turn}: {} points acknowledged, {} rule evaluations, one group's last \
                 evaluation {}",
                rate(points as f64 / elapsed.as_secs_f64()),
                turn_evaluations.map_or("-".to_owned(), |done| {
                    rate(done as f64 * rules_per_group / window.as_secs_f64())
                }),
                side.group_duration.map_or("-".to_owned(), show_duration),
            );
            // The evaluations the load caused that ended after it: the rate over the load and
            // that catch-up together.
            let catch_up = |total: Option<u64>, took: Duration| match (total, &after_total) {
                (Some(total), Some(at_end)) => {
                    let more = total.saturating_sub(*at_end);
                    let all = more + turn_evaluations.unwrap_or(0);
                    format!(
                        " ({more} more group evaluations; {} rule evaluations over the load \
                             and its catch-up)",
                        rate(all as f64 * rules_per_group / (window + took).as_secs_f64())
                    )
                }
                _ => String::new(),
            };
            match settled {
                Some((Some(took), total)) => line.push_str(&format!(
                    ", evaluating on for {} after the load stopped{}",
                    show_duration(took),
                    catch_up(total, took)
                )),
                Some((None, _)) => {
                    line.push_str(", still evaluating 120 s after the load stopped");
                }
                None => {}
            }
            eprintln!("    {line}");
            side.turns.push(line);
        }
    }
    pharos.server.check_alive()?;
    prometheus.check_alive()?;
    let [mut pharos_side, reference_side] = sides;
    if pharos_side.missing.is_some() {
        pharos_side.group_evaluations = None;
    }
    pharos.server.stop().await?;
    prometheus.stop().await?;
    Ok(Load {
        offered,
        pharos: pharos_side,
        reference: reference_side,
    })
}

/// Waits until Pharos is done with the evaluations the load caused: every load group has
/// finished an evaluation that started after `since_ms` (so no commit of the load is left to
/// trigger one), and the process has used under a tenth of a core for half a second. Returns
/// how long that took, `None` after 120 s.
async fn settle_pharos(pharos: &Pharos) -> Option<Duration> {
    // Pharos evaluates on commits only here (its interval is an hour): once no group evaluation
    // ends within half a second and the process is idle, every evaluation the load caused is
    // done. (An evaluation that kept up may have started before the load stopped: its group's
    // last commit came before that.)
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let evaluations = |groups: anyhow::Result<GroupStats>| groups.ok().map(|g| g.evaluations);
        let before = (
            evaluations(pharos.evaluations("load-g").await),
            pharos.server.cpu_time().ok(),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = (
            evaluations(pharos.evaluations("load-g").await),
            pharos.server.cpu_time().ok(),
        );
        if let ((Some(done_before), Some(cpu_before)), (Some(done_after), Some(cpu_after))) =
            (before, after)
            && done_before == done_after
            && cpu_after.saturating_sub(cpu_before) < Duration::from_millis(50)
        {
            return Some(started.elapsed());
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The report

struct Versions {
    prometheus: String,
    alertmanager: String,
    /// The machine's load average when the run started.
    load_average: String,
}

/// The 1, 5 and 15 minute load averages: other work on the machine shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// The version a binary reports (`--version`), else the Debian package's, else "?".
fn version_of(binary: &Path, package: &str) -> String {
    let reported = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            let version = text
                .split_whitespace()
                .skip_while(|word| *word != "version")
                .nth(1)?
                .to_owned();
            Some(version)
        });
    reported
        .or_else(|| {
            let output = std::process::Command::new("dpkg-query")
                .args(["-W", "-f=${Version}", package])
                .output()
                .ok()?;
            let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            (output.status.success() && !version.is_empty()).then_some(version)
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// The CPU model and count, from /proc/cpuinfo.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("?", |(_, model)| model.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

fn ratio(pharos: Option<f64>, reference: Option<f64>) -> String {
    match (pharos, reference) {
        (Some(pharos), Some(reference)) if reference > 0.0 => format!("{:.2}x", pharos / reference),
        _ => "-".to_owned(),
    }
}

/// `n` with a comma between thousands: 100,000.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

fn rate(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.1}k/s", value / 1000.0)
    } else {
        format!("{value:.0}/s")
    }
}

fn print_report(
    plan: &Plan,
    versions: &Versions,
    postgres: &str,
    breaches: &Breaches,
    security: &Security,
    load: &Load,
) {
    let reference_name = format!(
        "prometheus {} + alertmanager {}",
        versions.prometheus, versions.alertmanager
    );
    let mut lines: Vec<Vec<String>> = vec![
        [
            "measurement",
            "pharos",
            reference_name.as_str(),
            "pharos/ref",
            "aim (issue 17)",
        ]
        .iter()
        .map(|cell| (*cell).to_owned())
        .collect(),
    ];
    let mut row =
        |measurement: String, pharos: String, reference: String, ratio: String, aim: &str| {
            lines.push(vec![measurement, pharos, reference, ratio, aim.to_owned()]);
        };
    let quantile = |side: &SideBreaches, q: f64| {
        side.ack_to_webhook
            .as_ref()
            .filter(|l| !l.is_empty())
            .map(|l| l.quantile(q))
    };
    let show = |d: Option<Duration>| d.map_or("-".to_owned(), show_duration);
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    for (name, q, aim) in [
        ("p50", 0.50, ""),
        ("p99", 0.99, "p99 < 100 ms"),
        ("max", 1.0, ""),
    ] {
        let (p, r) = (
            quantile(&breaches.pharos, q),
            quantile(&breaches.reference, q),
        );
        row(
            format!("ack to webhook, {name}"),
            show(p),
            show(r),
            ratio(secs(p), secs(r)),
            aim,
        );
    }
    let at = |latencies: &Option<Latencies>, q: f64| {
        latencies
            .as_ref()
            .filter(|l| !l.is_empty())
            .map(|l| l.quantile(q))
    };
    for (name, q) in [("p50", 0.50), ("p99", 0.99)] {
        let (p, r) = (
            at(&breaches.pharos.sent_to_webhook, q),
            at(&breaches.reference.sent_to_webhook, q),
        );
        row(
            format!("write sent to webhook, {name}"),
            show(p),
            show(r),
            ratio(secs(p), secs(r)),
            "",
        );
    }
    let (p, r) = (
        at(&breaches.pharos.write_ack, 0.5),
        at(&breaches.reference.write_ack, 0.5),
    );
    row(
        "write sent to its ack (WriteMetrics reply / remote write 2xx), p50".to_owned(),
        show(p),
        show(r),
        ratio(secs(p), secs(r)),
        "",
    );
    row(
        format!(
            "breaches without a webhook within {}",
            show_duration(WEBHOOK_WAIT)
        ),
        breaches.pharos.missed.to_string(),
        breaches.reference.missed.to_string(),
        "-".to_owned(),
        "0",
    );
    row(
        format!("webhook requests for the {} breaches", plan.breaches),
        breaches.pharos.requests.to_string(),
        breaches.reference.requests.to_string(),
        ratio(
            Some(breaches.pharos.requests as f64),
            Some(breaches.reference.requests as f64),
        ),
        "pharos <= alertmanager",
    );
    row(
        "alerts in them / distinct breaches notified".to_owned(),
        format!("{} / {}", breaches.pharos.alerts, breaches.pharos.distinct),
        format!(
            "{} / {}",
            breaches.reference.alerts, breaches.reference.distinct
        ),
        "-".to_owned(),
        "",
    );
    let offered = load.offered as f64;
    let (p, r) = (
        load.pharos.points_per_second(),
        load.reference.points_per_second(),
    );
    row(
        format!(
            "points/s acknowledged under 1,000 rules (offered {})",
            rate(offered)
        ),
        rate(p),
        rate(r),
        ratio(Some(p), Some(r)),
        "100k points/s",
    );
    let (p, r) = (
        load.pharos.rule_evaluations_per_second(),
        load.reference.rule_evaluations_per_second(),
    );
    row(
        "rule evaluations/s during the load".to_owned(),
        p.map_or("-".to_owned(), rate),
        r.map_or("-".to_owned(), rate),
        ratio(p, r),
        "",
    );
    let (p, r) = (load.pharos.group_duration, load.reference.group_duration);
    row(
        "one group's evaluation (100 rules), last, median of groups".to_owned(),
        show(p),
        show(r),
        ratio(secs(p), secs(r)),
        "",
    );
    let (p, r) = (load.pharos.request_p99, load.reference.request_p99);
    row(
        "write request under load, p99 (slowest sender)".to_owned(),
        show_duration(p),
        show_duration(r),
        ratio(Some(p.as_secs_f64()), Some(r.as_secs_f64())),
        "",
    );
    match security {
        Security::Measured(figures) => {
            let pair = |latencies: &Latencies, high: f64| {
                if latencies.is_empty() {
                    "-".to_owned()
                } else {
                    format!(
                        "{} / {}",
                        show_duration(latencies.p50()),
                        show_duration(latencies.quantile(high))
                    )
                }
            };
            row(
                format!(
                    "security: 5th auth_failure acknowledged to {BRUTE_FORCE_ALERT} webhook, p50 / p99"
                ),
                pair(&figures.detection.acked, 0.99),
                "no detectors".to_owned(),
                "-".to_owned(),
                "< 1 ms detection (in process, not visible here)",
            );
            row(
                "security: 5th auth_failure sent to webhook, p50 / p99".to_owned(),
                pair(&figures.detection.sent, 0.99),
                "-".to_owned(),
                "-".to_owned(),
                "",
            );
            row(
                format!(
                    "security events/s acknowledged, detectors on (offered {})",
                    rate(figures.offered as f64)
                ),
                rate(figures.events_per_second),
                "-".to_owned(),
                "-".to_owned(),
                "20k events/s",
            );
            row(
                "security under that load: 5th auth_failure sent to webhook, p50 / max".to_owned(),
                pair(&figures.under_load.sent, 1.0),
                "-".to_owned(),
                "-".to_owned(),
                "",
            );
            row(
                "security under that load: acknowledged to webhook, p50 / max".to_owned(),
                pair(&figures.under_load.acked, 1.0),
                "-".to_owned(),
                "-".to_owned(),
                "",
            );
        }
        Security::NotMeasured(_) => {
            row(
                "security detectors".to_owned(),
                "not measured (below)".to_owned(),
                "no detectors".to_owned(),
                "-".to_owned(),
                "20k events/s; < 1 ms detection",
            );
        }
    }
    print_markdown(
        "alert: Pharos beside Prometheus + Alertmanager in one run (ratios: pharos over reference)",
        &lines,
    );

    println!(
        "\nMachine: {}, load average {} at the start and {} at the end; PostgreSQL {postgres} on the \
         same machine. Pharos: `pharos serve --target \
         ingest,query,alert` on PostgreSQL, `evaluation_interval = \"1m\"` (a group evaluates as \
         soon as points it reads commit, at least 100 ms apart). Reference: Prometheus {} with \
         `evaluation_interval: 1s` (its best case) and the remote write receiver on, sending to \
         Alertmanager {} (one instance, clustering off); both read the same rule file and routing \
         file (group_by ['alertname', 'breach'], group_wait 0s, group_interval 1s, repeat_interval \
         1h, send_resolved false) and send to the same receiver of this harness.",
        machine(),
        versions.load_average,
        load_average(),
        versions.prometheus,
        versions.alertmanager
    );
    println!(
        "Breaches: a warm-up, then {} per side in alternating turns (pharos, reference, ...) over \
         {}; each a fresh series `{BREACH_METRIC}{{{BREACH_LABEL}=\"...\"}} {BREACH_VALUE}` written \
         after a random pause (uniform within 100 ms for Pharos, its evaluation gap; within 1 s for \
         Prometheus, its evaluation interval): Pharos through gRPC WriteMetrics, Prometheus through \
         remote write (protobuf in uncompressed snappy framing). Ack to webhook: from the reply \
         (committed) or the 2xx to the receiver having the whole request. Notifications counted \
         {} after the last breach and after the security part; requests for other alerts: {}.",
        plan.breaches,
        show_duration(breaches.took),
        show_duration(SETTLE),
        breaches.other_requests
    );
    println!(
        "Evaluation load: {} alerting rules `bench_m<i> > <threshold>` over {LOAD_METRICS} metrics \
         x {LOAD_INSTANCES} series in {LOAD_GROUPS} groups of 100 rules; values never reach a \
         threshold (nothing fires). {} points/s offered to each side for {} in {} turn(s) each, \
         alternating, pharos first; {LOAD_GROUPS} senders (one per group's series and a connection \
         each, like remote write shards), each sending what is due every {} with one request in \
         flight. Each side has the machine to itself in its turn: Pharos runs this phase with \
         `evaluation_interval = \"1h\"`, so every evaluation comes from commits, and after its \
         turn the harness waits until every group has finished an evaluation that started after \
         the load stopped and the process is idle; Prometheus (1 s interval) is stopped with \
         SIGSTOP through Pharos' turns. Evaluations: Pharos' ListRuleGroups `evaluations`, \
         Prometheus' prometheus_rule_evaluations_total, over the load's window. Series keep their \
         points from turn to turn, so later turns evaluate over more of the 5-minute lookback. \
         Pharos retried {} requests it answered RESOURCE_EXHAUSTED or UNAVAILABLE.",
        thousands((LOAD_METRICS * RULES_PER_METRIC) as u64),
        thousands(load.offered),
        show_duration(plan.load_turn),
        plan.load_turns,
        show_duration(LOAD_TICK),
        load.pharos.retries
    );
    for (name, side) in [("pharos", &load.pharos), ("prometheus", &load.reference)] {
        for line in &side.turns {
            println!("- {name} {line}");
        }
    }
    if let Some(missing) = &load.pharos.missing {
        println!("Pharos' evaluations were not measured: {missing}");
    }
    if let Some(missing) = &load.reference.missing {
        println!("Prometheus' evaluations were not measured: {missing}");
    }
    match security {
        Security::Measured(figures) => println!(
            "Security (Pharos alone; Alertmanager has no detectors): {} users attacked one after \
             another ({} missed); then {} events/s offered for {} over {SECURITY_SHARDS} senders \
             (1 in {FAILURE_EVERY} an auth_failure, spread over {} users, none near \
             the threshold; write p99 {}), with a user attacked every 500 ms ({} missed). \
             {} BruteForceUser webhook requests for {} users. The detection itself runs in process \
             and is not visible from here: the figures run from the 5th failure's write (sent, or \
             acknowledged after its commit; 0 when the webhook came first) to the webhook, through \
             the feed, the detector, routing and the outbox; the probes write on a connection of \
             their own.",
            plan.detections,
            figures.detection.missed,
            thousands(figures.offered),
            show_duration(plan.security_load),
            thousands(SECURITY_USERS),
            show_duration(figures.write_p99),
            figures.under_load.missed,
            figures.requests,
            figures.users,
        ),
        Security::NotMeasured(why) => println!("Security figures are not measured yet: {why}."),
    }
}

fn progress(total: usize, message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(message.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snappy_literals_read_back_as_the_input() {
        for size in [0, 1, 59, 60, 255, 256, 65_536, 200_000] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let framed = snappy_literals(&data);
            assert_eq!(decode_literals(&framed), data, "size {size}");
        }
    }

    /// A decoder for literal elements only, following the format description.
    fn decode_literals(mut input: &[u8]) -> Vec<u8> {
        let (mut length, mut shift) = (0usize, 0);
        loop {
            let byte = input[0];
            input = &input[1..];
            length |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                break;
            }
        }
        let mut out = Vec::with_capacity(length);
        while !input.is_empty() {
            let tag = input[0];
            assert_eq!(tag & 3, 0, "a literal");
            let (n, skip) = match tag >> 2 {
                60 => (usize::from(input[1]), 2),
                61 => (usize::from(u16::from_le_bytes([input[1], input[2]])), 3),
                small => (usize::from(small), 1),
            };
            out.extend_from_slice(&input[skip..skip + n + 1]);
            input = &input[skip + n + 1..];
        }
        assert_eq!(out.len(), length);
        out
    }

    #[test]
    fn the_security_load_fails_each_user_once() {
        let mut failed = std::collections::HashSet::new();
        for failure in 0..SECURITY_USERS {
            let event = load_event(failure * FAILURE_EVERY);
            assert_eq!(event.event_type, "auth_failure");
            assert!(failed.insert(event.user_id), "failure {failure}");
        }
        assert_eq!(load_event(1).event_type, "auth_success");
    }

    #[test]
    fn load_rules_are_a_thousand_in_ten_groups() {
        let rules = load_rules();
        assert_eq!(rules.matches("- alert:").count(), 1000);
        assert_eq!(rules.matches("- name: load-g").count(), 10);
        assert!((0..100_000).all(|scrape| load_value(scrape % 1000, scrape as u64) < LOAD_FLOOR));
    }

    #[test]
    fn exposition_sums_select_by_label() {
        let text = "prometheus_rule_evaluations_total{rule_group=\"/x/load.yml;load-g0\"} 300\n\
                    prometheus_rule_evaluations_total{rule_group=\"/x/load.yml;load-g1\"} 200\n\
                    prometheus_rule_evaluations_total{rule_group=\"/x/other.yml;other\"} 7\n";
        assert_eq!(
            sum_metric(text, "prometheus_rule_evaluations_total", ";load-g"),
            500.0
        );
    }
}
