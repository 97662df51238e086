//! Load generation for the ingest service: realistic metric points (a fleet of services and
//! instances, counters and gauges with label sets like `service`, `instance`, `method`, `code`)
//! written by many concurrent callers over several connections for a set time. Reports points
//! per second, acknowledgement latency percentiles and every error by status code.
//!
//! Spans, logs and security events are added here as the ingest service learns them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use rand::{Rng, SeedableRng};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// `http://host:port` of a Pharos gRPC listener running the ingest target.
    pub endpoint: String,
    pub duration: Duration,
    /// HTTP/2 connections.
    pub connections: usize,
    /// Requests in flight at once, spread over the connections.
    pub concurrency: usize,
    /// Points per request.
    pub batch: usize,
    /// Distinct series the load cycles through.
    pub series: usize,
    /// A bearer token, when the server requires one.
    pub token: Option<String>,
}

impl Default for LoadSettings {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:50051".to_owned(),
            duration: Duration::from_secs(10),
            connections: 4,
            concurrency: 8,
            batch: 1_000,
            series: 10_000,
            token: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "cannot connect to {endpoint}: {source}; is `pharos serve` running with the ingest target?"
    )]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// What happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub elapsed_seconds: f64,
    pub requests: u64,
    pub points_sent: u64,
    pub points_accepted: u64,
    pub points_rejected: u64,
    /// Accepted points per second.
    pub points_per_second: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_max_ms: f64,
    /// Failed requests by gRPC status code name.
    pub errors: BTreeMap<String, u64>,
}

/// Live counters, for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub points_accepted: AtomicU64,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

/// Sends load as `settings` say and reports. `progress` is updated as acks arrive.
pub async fn run(settings: &LoadSettings, progress: Arc<Progress>) -> Result<Report, LoadError> {
    if settings.connections == 0
        || settings.concurrency == 0
        || settings.batch == 0
        || settings.series == 0
    {
        return Err(LoadError::Invalid(
            "connections, concurrency, batch and series must be at least 1".to_owned(),
        ));
    }
    let mut channels = Vec::with_capacity(settings.connections);
    for _ in 0..settings.connections {
        let endpoint = Endpoint::from_shared(settings.endpoint.clone())
            .map_err(|source| LoadError::Connect {
                endpoint: settings.endpoint.clone(),
                source,
            })?
            .tcp_nodelay(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| LoadError::Connect {
                endpoint: settings.endpoint.clone(),
                source,
            })?;
        channels.push(channel);
    }
    let fleet = Arc::new(Fleet::new(settings.series));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut callers = Vec::with_capacity(settings.concurrency);
    for caller in 0..settings.concurrency {
        let client = IngestServiceClient::new(channels[caller % channels.len()].clone())
            .max_encoding_message_size(64 << 20)
            .max_decoding_message_size(64 << 20);
        let context = Caller {
            client,
            token: settings.token.clone(),
            fleet: fleet.clone(),
            batch: settings.batch,
            stop: stop.clone(),
            progress: progress.clone(),
            seed: caller as u64,
        };
        callers.push(tokio::spawn(context.run()));
    }
    tokio::time::sleep(settings.duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut totals = CallerTotals::new();
    for caller in callers {
        if let Ok(result) = caller.await {
            totals.merge(result);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let quantile = |q: f64| totals.latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(Report {
        elapsed_seconds: elapsed,
        requests: totals.requests,
        points_sent: totals.points_sent,
        points_accepted: totals.points_accepted,
        points_rejected: totals.points_rejected,
        points_per_second: totals.points_accepted as f64 / elapsed,
        ack_p50_ms: quantile(0.5),
        ack_p99_ms: quantile(0.99),
        ack_max_ms: totals.latency.max() as f64 / 1000.0,
        errors: totals.errors,
    })
}

/// The simulated fleet: which series exist, as metric name plus label set.
struct Fleet {
    series: Vec<(String, Vec<pb::Label>)>,
}

const METRICS: [&str; 5] = [
    "http_requests_total",
    "http_request_duration_seconds_sum",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "queue_depth",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CODES: [&str; 5] = ["200", "201", "404", "429", "500"];

impl Fleet {
    fn new(count: usize) -> Self {
        let series = (0..count)
            .map(|index| {
                let metric = METRICS[index % METRICS.len()];
                let rest = index / METRICS.len();
                let label = |name: &str, value: String| pb::Label {
                    name: name.to_owned(),
                    value,
                };
                let labels = vec![
                    label("service", format!("svc-{}", rest % 25)),
                    label(
                        "instance",
                        format!("10.0.{}.{}:9090", (rest / 25) % 256, rest % 256),
                    ),
                    label("method", METHODS[rest % METHODS.len()].to_owned()),
                    label(
                        "code",
                        CODES[(rest / METHODS.len()) % CODES.len()].to_owned(),
                    ),
                    label("series", rest.to_string()),
                ];
                (metric.to_owned(), labels)
            })
            .collect();
        Self { series }
    }
}

struct Caller {
    client: IngestServiceClient<Channel>,
    token: Option<String>,
    fleet: Arc<Fleet>,
    batch: usize,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    seed: u64,
}

struct CallerTotals {
    requests: u64,
    points_sent: u64,
    points_accepted: u64,
    points_rejected: u64,
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl CallerTotals {
    fn new() -> Self {
        // Microseconds up to 10 minutes; these bounds are valid, so creation cannot fail.
        let latency =
            Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!());
        Self {
            requests: 0,
            points_sent: 0,
            points_accepted: 0,
            points_rejected: 0,
            latency,
            errors: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: CallerTotals) {
        self.requests += other.requests;
        self.points_sent += other.points_sent;
        self.points_accepted += other.points_accepted;
        self.points_rejected += other.points_rejected;
        let _ = self.latency.add(&other.latency);
        for (code, count) in other.errors {
            *self.errors.entry(code).or_insert(0) += count;
        }
    }
}

impl Caller {
    async fn run(mut self) -> CallerTotals {
        let mut totals = CallerTotals::new();
        let mut random = rand::rngs::SmallRng::seed_from_u64(self.seed);
        let mut cursor = random.random_range(0..self.fleet.series.len());
        while !self.stop.load(Ordering::Relaxed) {
            let now_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as i64);
            let points = (0..self.batch)
                .map(|offset| {
                    let (name, labels) = &self.fleet.series[cursor];
                    cursor = (cursor + 1) % self.fleet.series.len();
                    pb::MetricPoint {
                        name: name.clone(),
                        labels: labels.clone(),
                        time_unix_nano: now_ns - offset as i64,
                        value: random.random_range(0.0..1000.0),
                    }
                })
                .collect();
            let mut request = tonic::Request::new(pb::WriteMetricsRequest { points });
            if let Some(token) = &self.token
                && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
            {
                request.metadata_mut().insert("authorization", value);
            }
            let began = Instant::now();
            let outcome = self.client.write_metrics(request).await;
            let elapsed = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
            totals.requests += 1;
            totals.points_sent += self.batch as u64;
            self.progress.requests.fetch_add(1, Ordering::Relaxed);
            match outcome {
                Ok(response) => {
                    let response = response.into_inner();
                    totals.latency.saturating_record(elapsed.max(1));
                    totals.points_accepted += response.accepted;
                    totals.points_rejected += response.rejected;
                    self.progress
                        .points_accepted
                        .fetch_add(response.accepted, Ordering::Relaxed);
                }
                Err(status) => {
                    *totals
                        .errors
                        .entry(format!("{:?}", status.code()))
                        .or_insert(0) += 1;
                    self.progress.errors.fetch_add(1, Ordering::Relaxed);
                    // Overloaded: back off as a well-behaved client would.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        totals
    }
}
