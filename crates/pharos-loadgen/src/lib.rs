//! Load generation for the ingest service: realistic telemetry from a simulated fleet of
//! services and instances: metric points (counters and gauges with label sets like `service`,
//! `instance`, `method`, `code`), traces of a few spans with attributes and the odd error, log
//! lines with severities and trace context, and security events (mostly authentication, some
//! injection attempts and rate abuse). Many concurrent callers write over several connections
//! for a set time, through our own API or OTLP/gRPC; the report gives items per second (in
//! total and per signal), acknowledgement latency percentiles and every error by status code.

// The wall clock is allowed here: it measures acknowledgement latency of a server in real time (see clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1 as otlp_logs;
use opentelemetry_proto::tonic::metrics::v1 as otlp_metrics;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp_trace;
use pharos_api::client::{ClientSettings, ConnectError};
use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// Which telemetry to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Metrics,
    Spans,
    Logs,
    SecurityEvents,
    /// Every signal, request by request: 10 of 20 requests metrics, 5 logs, 4 spans, 1
    /// security events.
    Mixed,
}

impl Signal {
    pub const ALL: [&str; 5] = ["metrics", "spans", "logs", "security-events", "mixed"];

    pub fn name(self) -> &'static str {
        match self {
            Signal::Metrics => "metrics",
            Signal::Spans => "spans",
            Signal::Logs => "logs",
            Signal::SecurityEvents => "security_events",
            Signal::Mixed => "mixed",
        }
    }
}

impl std::str::FromStr for Signal {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "metrics" => Ok(Signal::Metrics),
            "spans" => Ok(Signal::Spans),
            "logs" => Ok(Signal::Logs),
            "security-events" | "security_events" => Ok(Signal::SecurityEvents),
            "mixed" => Ok(Signal::Mixed),
            other => Err(format!(
                "unknown signal {other:?}; use one of {:?}",
                Signal::ALL
            )),
        }
    }
}

/// How to send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `pharos.ingest.v1.IngestService`.
    Pharos,
    /// OpenTelemetry OTLP/gRPC (metrics, spans and logs; security events have no OTLP form).
    Otlp,
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "pharos" => Ok(Protocol::Pharos),
            "otlp" => Ok(Protocol::Otlp),
            other => Err(format!("unknown protocol {other:?}; use pharos or otlp")),
        }
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Where a Pharos gRPC listener running the ingest target is (endpoint, token, TLS).
    pub client: ClientSettings,
    pub duration: Duration,
    /// HTTP/2 connections.
    pub connections: usize,
    /// Requests in flight at once, spread over the connections.
    pub concurrency: usize,
    /// Items per request.
    pub batch: usize,
    /// Distinct metric series the load cycles through.
    pub series: usize,
    pub signal: Signal,
    pub protocol: Protocol,
}

impl Default for LoadSettings {
    fn default() -> Self {
        Self {
            client: ClientSettings::new("http://127.0.0.1:50051"),
            duration: Duration::from_secs(10),
            connections: 4,
            concurrency: 8,
            batch: 1_000,
            series: 10_000,
            signal: Signal::Metrics,
            protocol: Protocol::Pharos,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}; the server must run the ingest target")]
    Connect(#[from] ConnectError),
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// What happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub signal: Signal,
    pub protocol: Protocol,
    pub elapsed_seconds: f64,
    pub requests: u64,
    pub items_sent: u64,
    pub items_accepted: u64,
    pub items_rejected: u64,
    /// Accepted items per second.
    pub items_per_second: f64,
    /// Accepted items by signal.
    pub accepted_by_signal: BTreeMap<String, u64>,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_max_ms: f64,
    /// Failed requests by gRPC status code name.
    pub errors: BTreeMap<String, u64>,
}

/// Live counters, for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub items_accepted: AtomicU64,
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
    if settings.protocol == Protocol::Otlp
        && matches!(settings.signal, Signal::SecurityEvents | Signal::Mixed)
    {
        return Err(LoadError::Invalid(
            "security events have no OTLP form: use --protocol pharos for security-events or mixed"
                .to_owned(),
        ));
    }
    let mut channels = Vec::with_capacity(settings.connections);
    for _ in 0..settings.connections {
        channels.push(settings.client.connect().await?);
    }
    let fleet = Arc::new(Fleet::new(settings.series));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut callers = Vec::with_capacity(settings.concurrency);
    for caller in 0..settings.concurrency {
        let channel = channels[caller % channels.len()].clone();
        let context = Caller {
            clients: Clients::new(channel),
            settings: settings.clone(),
            fleet: fleet.clone(),
            stop: stop.clone(),
            progress: progress.clone(),
            random: SmallRng::seed_from_u64(caller as u64),
            cursor: 0,
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
        signal: settings.signal,
        protocol: settings.protocol,
        elapsed_seconds: elapsed,
        requests: totals.requests,
        items_sent: totals.items_sent,
        items_accepted: totals.items_accepted,
        items_rejected: totals.items_rejected,
        items_per_second: totals.items_accepted as f64 / elapsed,
        accepted_by_signal: totals.by_signal,
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

/// The gRPC clients of one caller, on one connection.
struct Clients {
    pharos: IngestServiceClient<Channel>,
    metrics: MetricsServiceClient<Channel>,
    traces: TraceServiceClient<Channel>,
    logs: LogsServiceClient<Channel>,
}

impl Clients {
    fn new(channel: Channel) -> Self {
        const MAX: usize = 64 << 20;
        Self {
            pharos: IngestServiceClient::new(channel.clone())
                .max_encoding_message_size(MAX)
                .max_decoding_message_size(MAX),
            metrics: MetricsServiceClient::new(channel.clone()).max_encoding_message_size(MAX),
            traces: TraceServiceClient::new(channel.clone()).max_encoding_message_size(MAX),
            logs: LogsServiceClient::new(channel).max_encoding_message_size(MAX),
        }
    }
}

struct Caller {
    clients: Clients,
    settings: LoadSettings,
    fleet: Arc<Fleet>,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    random: SmallRng,
    cursor: usize,
}

struct CallerTotals {
    requests: u64,
    items_sent: u64,
    items_accepted: u64,
    items_rejected: u64,
    by_signal: BTreeMap<String, u64>,
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
            items_sent: 0,
            items_accepted: 0,
            items_rejected: 0,
            by_signal: BTreeMap::new(),
            latency,
            errors: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: CallerTotals) {
        self.requests += other.requests;
        self.items_sent += other.items_sent;
        self.items_accepted += other.items_accepted;
        self.items_rejected += other.items_rejected;
        for (signal, count) in other.by_signal {
            *self.by_signal.entry(signal).or_insert(0) += count;
        }
        let _ = self.latency.add(&other.latency);
        for (code, count) in other.errors {
            *self.errors.entry(code).or_insert(0) += count;
        }
    }
}

/// The signal of request number `request` of a mixed load.
fn mixed(request: u64) -> Signal {
    match request % 20 {
        0..10 => Signal::Metrics,
        10..15 => Signal::Logs,
        15..19 => Signal::Spans,
        _ => Signal::SecurityEvents,
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
        })
}

impl Caller {
    async fn run(mut self) -> CallerTotals {
        let mut totals = CallerTotals::new();
        self.cursor = self.random.random_range(0..self.fleet.series.len());
        let mut request = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let signal = match self.settings.signal {
                Signal::Mixed => mixed(request),
                other => other,
            };
            request += 1;
            let began = Instant::now();
            let outcome = self.send(signal).await;
            let elapsed = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
            totals.requests += 1;
            totals.items_sent += self.settings.batch as u64;
            self.progress.requests.fetch_add(1, Ordering::Relaxed);
            match outcome {
                Ok((accepted, rejected)) => {
                    totals.latency.saturating_record(elapsed.max(1));
                    totals.items_accepted += accepted;
                    totals.items_rejected += rejected;
                    *totals
                        .by_signal
                        .entry(signal.name().to_owned())
                        .or_insert(0) += accepted;
                    self.progress
                        .items_accepted
                        .fetch_add(accepted, Ordering::Relaxed);
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

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.settings.client.token
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// Sends one request of `signal`; returns (accepted, rejected).
    async fn send(&mut self, signal: Signal) -> Result<(u64, u64), tonic::Status> {
        let batch = self.settings.batch as u64;
        let otlp = self.settings.protocol == Protocol::Otlp;
        match (signal, otlp) {
            (Signal::Metrics, false) => {
                let points = self.metric_points();
                let request = self.request(pb::WriteMetricsRequest { points });
                let reply = self
                    .clients
                    .pharos
                    .write_metrics(request)
                    .await?
                    .into_inner();
                Ok((reply.accepted, reply.rejected))
            }
            (Signal::Metrics, true) => {
                let metrics = self.otlp_metrics();
                let request = self.request(metrics);
                let reply = self.clients.metrics.export(request).await?.into_inner();
                let rejected = reply
                    .partial_success
                    .map_or(0, |p| p.rejected_data_points as u64);
                Ok((batch - rejected.min(batch), rejected))
            }
            (Signal::Spans, false) => {
                let spans = self.spans();
                let request = self.request(pb::WriteSpansRequest { spans });
                let reply = self.clients.pharos.write_spans(request).await?.into_inner();
                Ok((reply.accepted, reply.rejected))
            }
            (Signal::Spans, true) => {
                let request = ExportTraceServiceRequest {
                    resource_spans: vec![otlp_trace::ResourceSpans {
                        resource: Some(self.resource()),
                        scope_spans: vec![otlp_trace::ScopeSpans {
                            spans: self.spans().into_iter().map(otlp_span).collect(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                };
                let request = self.request(request);
                let reply = self.clients.traces.export(request).await?.into_inner();
                let rejected = reply.partial_success.map_or(0, |p| p.rejected_spans as u64);
                Ok((batch - rejected.min(batch), rejected))
            }
            (Signal::Logs, false) => {
                let records = self.log_records();
                let request = self.request(pb::WriteLogsRequest { records });
                let reply = self.clients.pharos.write_logs(request).await?.into_inner();
                Ok((reply.accepted, reply.rejected))
            }
            (Signal::Logs, true) => {
                let request = ExportLogsServiceRequest {
                    resource_logs: vec![otlp_logs::ResourceLogs {
                        resource: Some(self.resource()),
                        scope_logs: vec![otlp_logs::ScopeLogs {
                            log_records: self.log_records().into_iter().map(otlp_log).collect(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                };
                let request = self.request(request);
                let reply = self.clients.logs.export(request).await?.into_inner();
                let rejected = reply
                    .partial_success
                    .map_or(0, |p| p.rejected_log_records as u64);
                Ok((batch - rejected.min(batch), rejected))
            }
            (Signal::SecurityEvents | Signal::Mixed, _) => {
                let events = self.security_events();
                let request = self.request(pb::WriteSecurityEventsRequest { events });
                let reply = self
                    .clients
                    .pharos
                    .write_security_events(request)
                    .await?
                    .into_inner();
                Ok((reply.accepted, reply.rejected))
            }
        }
    }

    fn metric_points(&mut self) -> Vec<pb::MetricPoint> {
        let now = now_ns();
        (0..self.settings.batch)
            .map(|offset| {
                let (name, labels) = &self.fleet.series[self.cursor];
                self.cursor = (self.cursor + 1) % self.fleet.series.len();
                pb::MetricPoint {
                    name: name.clone(),
                    labels: labels.clone(),
                    time_unix_nano: now - offset as i64,
                    value: self.random.random_range(0.0..1000.0),
                }
            })
            .collect()
    }

    fn otlp_metrics(&mut self) -> ExportMetricsServiceRequest {
        let metrics = self
            .metric_points()
            .into_iter()
            .map(|point| otlp_metrics::Metric {
                name: point.name,
                data: Some(otlp_metrics::metric::Data::Gauge(otlp_metrics::Gauge {
                    data_points: vec![otlp_metrics::NumberDataPoint {
                        attributes: point
                            .labels
                            .into_iter()
                            .map(|label| attribute(&label.name, label.value))
                            .collect(),
                        time_unix_nano: u64::try_from(point.time_unix_nano).unwrap_or_default(),
                        value: Some(otlp_metrics::number_data_point::Value::AsDouble(
                            point.value,
                        )),
                        ..Default::default()
                    }],
                })),
                ..Default::default()
            })
            .collect();
        ExportMetricsServiceRequest {
            resource_metrics: vec![otlp_metrics::ResourceMetrics {
                resource: None,
                scope_metrics: vec![otlp_metrics::ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn service(&mut self) -> String {
        format!("svc-{}", self.random.random_range(0..25))
    }

    fn resource(&mut self) -> Resource {
        Resource {
            attributes: vec![
                attribute("service.name", self.service()),
                attribute(
                    "service.instance.id",
                    format!("pod-{}", self.random.random_range(0..200)),
                ),
            ],
            ..Default::default()
        }
    }

    /// Traces of five spans: a server span and four children, one trace in 50 with an error.
    fn spans(&mut self) -> Vec<pb::Span> {
        let now = now_ns();
        let mut spans = Vec::with_capacity(self.settings.batch);
        while spans.len() < self.settings.batch {
            let trace_id: [u8; 16] = self.random.random();
            let root_id: [u8; 8] = self.random.random();
            let service = self.service();
            let route = ROUTES[self.random.random_range(0..ROUTES.len())];
            let failed = self.random.random_range(0..50) == 0;
            let start = now - self.random.random_range(1_000_000..50_000_000);
            for child in 0..5.min(self.settings.batch - spans.len()) {
                let span_id: [u8; 8] = if child == 0 {
                    root_id
                } else {
                    self.random.random()
                };
                let duration = self.random.random_range(100_000..20_000_000);
                let error = failed && child == 4;
                spans.push(pb::Span {
                    trace_id: trace_id.to_vec(),
                    span_id: span_id.to_vec(),
                    parent_span_id: if child == 0 {
                        Vec::new()
                    } else {
                        root_id.to_vec()
                    },
                    service_name: service.clone(),
                    name: if child == 0 {
                        format!("GET {route}")
                    } else {
                        CHILD_OPERATIONS[child - 1].to_owned()
                    },
                    kind: if child == 0 {
                        pb::SpanKind::Server as i32
                    } else {
                        pb::SpanKind::Client as i32
                    },
                    start_time_unix_nano: start + child as i64 * 1_000,
                    end_time_unix_nano: start + child as i64 * 1_000 + duration,
                    attributes: [
                        ("http.route".to_owned(), route.to_owned()),
                        (
                            "http.status_code".to_owned(),
                            if error { "500" } else { "200" }.to_owned(),
                        ),
                        ("net.peer.name".to_owned(), format!("db-{}", child)),
                    ]
                    .into_iter()
                    .collect(),
                    status: Some(pb::SpanStatus {
                        code: if error {
                            pb::SpanStatusCode::Error as i32
                        } else {
                            0
                        },
                        message: if error {
                            "connection reset".to_owned()
                        } else {
                            String::new()
                        },
                    }),
                    resource: [("service.name".to_owned(), service.clone())]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                });
            }
        }
        spans
    }

    fn log_records(&mut self) -> Vec<pb::LogRecord> {
        let now = now_ns();
        (0..self.settings.batch)
            .map(|offset| {
                let route = ROUTES[self.random.random_range(0..ROUTES.len())];
                let (severity_number, severity_text, code) = match self.random.random_range(0..100)
                {
                    0..80 => (9, "INFO", 200),
                    80..95 => (13, "WARN", 429),
                    _ => (17, "ERROR", 500),
                };
                let traced = self.random.random_range(0..10) < 3;
                pb::LogRecord {
                    time_unix_nano: now - offset as i64,
                    service_name: self.service(),
                    severity_number,
                    severity_text: severity_text.to_owned(),
                    body: format!(
                        "GET {route} {code} {}ms user={}",
                        self.random.random_range(1..900),
                        self.random.random_range(0..100_000)
                    ),
                    attributes: [
                        ("http.route".to_owned(), route.to_owned()),
                        ("http.status_code".to_owned(), code.to_string()),
                    ]
                    .into_iter()
                    .collect(),
                    trace_id: if traced {
                        self.random.random::<[u8; 16]>().to_vec()
                    } else {
                        Vec::new()
                    },
                    span_id: if traced {
                        self.random.random::<[u8; 8]>().to_vec()
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                }
            })
            .collect()
    }

    fn security_events(&mut self) -> Vec<pb::SecurityEvent> {
        let now = now_ns();
        (0..self.settings.batch)
            .map(|offset| {
                let (event_type, severity) = match self.random.random_range(0..100) {
                    0..60 => ("auth_failure", pb::Severity::Low),
                    60..90 => ("auth_success", pb::Severity::Info),
                    90..98 => ("rate_limit_violation", pb::Severity::Medium),
                    98 => ("sql_injection_attempt", pb::Severity::High),
                    _ => ("privilege_escalation", pb::Severity::Critical),
                };
                pb::SecurityEvent {
                    time_unix_nano: now - offset as i64,
                    event_type: event_type.to_owned(),
                    user_id: format!("user-{}", self.random.random_range(0..50_000)),
                    source_ip: format!(
                        "198.51.{}.{}",
                        self.random.random_range(0..=255),
                        self.random.random_range(1..=254)
                    ),
                    severity: severity as i32,
                    resource: ROUTES[self.random.random_range(0..ROUTES.len())].to_owned(),
                    service_name: self.service(),
                    attributes: [("user_agent".to_owned(), "curl/8.5".to_owned())]
                        .into_iter()
                        .collect(),
                }
            })
            .collect()
    }
}

const ROUTES: [&str; 6] = [
    "/api/v1/users/{id}",
    "/api/v1/orders",
    "/api/v1/cart",
    "/login",
    "/search",
    "/health",
];
const CHILD_OPERATIONS: [&str; 4] = [
    "SELECT users",
    "redis GET",
    "POST /payments",
    "INSERT orders",
];

fn attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn attributes(map: std::collections::HashMap<String, String>) -> Vec<KeyValue> {
    map.into_iter()
        .map(|(key, value)| attribute(&key, value))
        .collect()
}

fn otlp_span(span: pb::Span) -> otlp_trace::Span {
    let status = span.status.unwrap_or_default();
    otlp_trace::Span {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        name: span.name,
        kind: span.kind,
        start_time_unix_nano: u64::try_from(span.start_time_unix_nano).unwrap_or_default(),
        end_time_unix_nano: u64::try_from(span.end_time_unix_nano).unwrap_or_default(),
        attributes: attributes(span.attributes),
        status: Some(otlp_trace::Status {
            code: status.code,
            message: status.message,
        }),
        ..Default::default()
    }
}

fn otlp_log(record: pb::LogRecord) -> otlp_logs::LogRecord {
    otlp_logs::LogRecord {
        time_unix_nano: u64::try_from(record.time_unix_nano).unwrap_or_default(),
        severity_number: record.severity_number,
        severity_text: record.severity_text,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(record.body)),
        }),
        attributes: attributes(record.attributes),
        trace_id: record.trace_id,
        span_id: record.span_id,
        ..Default::default()
    }
}
