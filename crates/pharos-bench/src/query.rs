//! `pharos-bench query`: the query service beside Prometheus 2.42 and VictoriaMetrics 1.79. One
//! deterministic data set (counters, gauges and histogram buckets every 15 s, ending at the
//! current minute) is loaded into Pharos on PostgreSQL (gRPC `WriteMetrics`), into Prometheus
//! (OpenMetrics through `promtool tsdb create-blocks-from openmetrics`) and into
//! VictoriaMetrics (`/api/v1/import/prometheus`). Each query is then sent as the same Prometheus
//! HTTP API request to each system in alternating turns, beside the SQL the query service issues
//! for it run directly with sqlx (the floor under Pharos), and the answers are compared. Pharos
//! alone also keeps a month of history of the gauges, rolled up by the store's own rollup code,
//! for the query its hourly rollups answer, and restarts before timing with its head of recent
//! points on (which answers the instant query). Bytes per point on disk are reported beside the
//! latencies. Nothing here asserts a speed.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use indicatif::{ProgressBar, ProgressStyle};
use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use serde_json::Value as Json;
use sqlx::postgres::{PgPool, PgPoolOptions};

use pharos_store::signals::metrics;

use crate::Common;
use crate::database::BenchDatabase;
use crate::process::{Server, channel, free_port, loopback, start_pharos_with};
use crate::stats::{Latencies, print_markdown, show_duration};
use crate::writes::write_metrics;

/// Time between two points of a series: a 15 s scrape interval.
const STEP_MS: i64 = 15_000;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
/// The lookback of instant selectors and the window of `rate`: 5 minutes on every system.
const LOOKBACK_MS: i64 = 5 * MINUTE_MS;
/// The step of the range queries over points.
const QUERY_STEP_MS: i64 = MINUTE_MS;
/// Time between two points of the gauges' history, before the data set's own hours.
const HISTORY_STEP_MS: i64 = 5 * MINUTE_MS;
const JOBS: usize = 10;
const COUNTER: &str = "bench_requests_total";
const GAUGE: &str = "bench_memory_bytes";
const BUCKET: &str = "bench_latency_seconds_bucket";
/// The `le` bounds of the histogram, `+Inf` included.
const BUCKET_BOUNDS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];
/// Observations per scrape interval falling in each bucket are below these (whole numbers, so
/// every stored value is an integer that all three systems keep exactly).
const BUCKET_SPREAD: [u64; 10] = [3, 5, 9, 13, 11, 7, 4, 3, 2, 2];
/// Points per `WriteMetrics` request into Pharos, and requests in flight.
const BATCH_POINTS: usize = 10_000;
const BATCHES_IN_FLIGHT: usize = 4;
/// Series per VictoriaMetrics import request, and requests in flight.
const IMPORT_SERIES: usize = 40;
const IMPORTS_IN_FLIGHT: usize = 2;
/// How the query service reads points (crates/pharos-query/src/source.rs): series per
/// statement, and statements of one selection at once.
const SERIES_PER_READ: usize = 256;
const PARALLEL_READS: usize = 4;
/// The statements the query service issues (crates/pharos-store/src/signals/metrics/read.rs).
const SERIES_BY_NAME: &str =
    "SELECT id, name, labels::text FROM metric_series WHERE name = $1 ORDER BY id";
const SERIES_BY_NAME_AND_LABELS: &str = "SELECT id, name, labels::text FROM metric_series \
     WHERE name = $1 AND labels @> $2::jsonb ORDER BY id";
const ALL_SERIES: &str = "SELECT id, name, labels::text FROM metric_series ORDER BY id";
/// The time one chunk covers while its hour goes on, and once the hour has ended.
const WINDOW_US: i64 = pharos_store::signals::metrics::CHUNK_WINDOW_US;
/// How far into its chunk window the data set ends: the last 7 minutes of points stay pending
/// (read from the points table) in every run, the middle of the 2 to 12 minutes the service's
/// compaction leaves as time goes on. With the end at the last whole minute instead, what
/// the SQL floor read moved from run to run (8 to 28 ms for (b)).
const PENDING_MS: i64 = 7 * MINUTE_MS;
const HOUR_US: i64 = pharos_store::signals::metrics::HOUR_US;
/// What the query service issues for a `*_over_time` over whole hours (`hourly_aggregates` and
/// `points_at_instants` in the same file): in one read-only snapshot, the hours not rolled up
/// yet, the hourly rollups of the others and the pending hours summed from their points; beside
/// it, the points at the step instants.
const SNAPSHOT: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY";
/// What the query service issues once per query before it takes points from its head (the
/// store's `last_position_of`): the feed position the head must have applied.
const LAST_FEED_POSITION: &str =
    "SELECT position FROM ingest_feed WHERE signal = $1 ORDER BY position DESC LIMIT 1";
const PENDING_HOURS: &str =
    "SELECT hour_us FROM metric_rollup_pending WHERE hour_us >= $1 AND hour_us < $2";
const ROLLUPS: &str = "SELECT series_id, bucket_us, count, sum, min, max, nan_count \
     FROM metric_rollups_1h WHERE series_id = ANY($1) \
     AND bucket_us >= $2 AND bucket_us < $3 AND NOT (bucket_us = ANY($4))";
const PENDING_ROLLUPS: &str = "SELECT series_id, hour_us, \
     COUNT(*) FILTER (WHERE value <> 'NaN'::float8), \
     COALESCE(SUM(value) FILTER (WHERE value <> 'NaN'::float8), 0), \
     COALESCE(MIN(value) FILTER (WHERE value <> 'NaN'::float8), 'NaN'::float8), \
     COALESCE(MAX(value) FILTER (WHERE value <> 'NaN'::float8), 'NaN'::float8), \
     COUNT(*) FILTER (WHERE value = 'NaN'::float8) \
     FROM unnest($2::BIGINT[]) AS pending(hour_us) \
     JOIN metric_points ON series_id = ANY($1) \
     AND time_us >= hour_us AND time_us < hour_us + 3600000000 \
     AND float8send(value) <> '\\x7ff0000000000002'::bytea \
     GROUP BY series_id, hour_us";
const POINTS_AT_INSTANTS: &str = "SELECT series_id, time_us, value \
     FROM unnest($2::BIGINT[]) AS instant(t) JOIN metric_points ON series_id = ANY($1) \
     AND time_us >= instant.t AND time_us < instant.t + 1000";
/// The answer's warning when the hourly rollups answered.
const FROM_ROLLUPS: &str = "read from hourly rollups";
/// A rollup row as read: series id, bucket, count, sum, min, max, NaN count.
type RollupTuple = (i64, i64, i64, f64, f64, f64, i64);
/// Relative difference below which two values are the same answer.
const TOLERANCE: f64 = 1e-6;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// The `prometheus` binary (2.42); `promtool` is taken from the same directory.
    #[arg(long, default_value = "/usr/bin/prometheus")]
    prometheus_bin: PathBuf,
    /// The `victoria-metrics` binary (Debian's package, 1.79).
    #[arg(long, default_value = "/usr/bin/victoria-metrics")]
    victoria_metrics_bin: PathBuf,
    /// Timed runs of each query on each system [default: 20, 5 with --quick].
    #[arg(long)]
    iterations: Option<usize>,
    /// Only the queries with these letters, such as `bc` (to profile one) [default: all].
    #[arg(long, value_parser = case_letters)]
    cases: Option<String>,
}

/// The letters of `--cases`: each one of the queries' `a` to `e`.
fn case_letters(letters: &str) -> Result<String, String> {
    match letters.chars().find(|letter| !('a'..='e').contains(letter)) {
        Some(other) => Err(format!("`{other}` is not a query; the queries are a to e")),
        None if letters.is_empty() => Err("name at least one query, a to e".to_owned()),
        None => Ok(letters.to_owned()),
    }
}

/// The size of the data set and of the queries over it.
struct Shape {
    counters_per_job: usize,
    gauges_per_job: usize,
    /// Instances per job exposing the histogram (each has one series per bound).
    histogram_instances_per_job: usize,
    /// Hours of data, and of query (a).
    hours: i64,
    /// Hours of the range queries (b) and (c).
    range_hours: i64,
    /// Days of query (e), over the gauges' history and the data set (Pharos alone).
    history_days: i64,
}

impl Shape {
    fn new(quick: bool) -> Self {
        if quick {
            // 80 + 20 + 100 = 200 series, 2 h.
            Self {
                counters_per_job: 8,
                gauges_per_job: 2,
                histogram_instances_per_job: 1,
                hours: 2,
                range_hours: 1,
                history_days: 3,
            }
        } else {
            // 1,000 + 200 + 800 = 2,000 series, 24 h.
            Self {
                counters_per_job: 100,
                gauges_per_job: 20,
                histogram_instances_per_job: 8,
                hours: 24,
                range_hours: 6,
                history_days: 30,
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    /// One bucket of the histogram of instance `group`: bound `bound` of [`BUCKET_BOUNDS`].
    Bucket {
        group: usize,
        bound: usize,
    },
}

/// One series of the data set.
struct SeriesDef {
    name: &'static str,
    labels: Vec<(&'static str, String)>,
    kind: Kind,
}

impl SeriesDef {
    /// `name{label="value",...}`, as the text formats write a series.
    fn selector(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(name, value)| format!("{name}=\"{value}\""))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }

    /// The label set with the name, sorted by label name: the identity of the series.
    fn identity(&self) -> Vec<(String, String)> {
        let mut labels: Vec<(String, String)> = self
            .labels
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        labels.push(("__name__".to_owned(), self.name.to_owned()));
        labels.sort();
        labels
    }
}

/// The data set every system loads: its series and all their values, computed once.
struct DataSet {
    series: Vec<SeriesDef>,
    steps: usize,
    /// Time of the last point of every series (ms since the epoch), a whole minute.
    end_ms: i64,
    /// `values[series * steps + step]`.
    values: Vec<f64>,
    /// The gauges (indexes into `series`), and the times of their history (Pharos alone): from
    /// an hour before query (e) starts to 10 minutes before query (a)'s lookback, so that only
    /// query (e) reads it.
    gauges: Vec<usize>,
    history_times: Vec<i64>,
}

impl DataSet {
    fn new(shape: &Shape, end_ms: i64) -> Self {
        let job = |job: usize| format!("job-{job}");
        let instance = |instance: usize| format!("host-{instance:03}:9100");
        let mut series = Vec::new();
        for j in 0..JOBS {
            for i in 0..shape.counters_per_job {
                series.push(SeriesDef {
                    name: COUNTER,
                    labels: vec![("job", job(j)), ("instance", instance(i))],
                    kind: Kind::Counter,
                });
            }
        }
        for j in 0..JOBS {
            for i in 0..shape.gauges_per_job {
                series.push(SeriesDef {
                    name: GAUGE,
                    labels: vec![("job", job(j)), ("instance", instance(i))],
                    kind: Kind::Gauge,
                });
            }
        }
        let mut group = 0;
        for j in 0..JOBS {
            for i in 0..shape.histogram_instances_per_job {
                for (bound, le) in BUCKET_BOUNDS.iter().enumerate() {
                    series.push(SeriesDef {
                        name: BUCKET,
                        labels: vec![
                            ("job", job(j)),
                            ("instance", instance(i)),
                            ("le", (*le).to_owned()),
                        ],
                        kind: Kind::Bucket { group, bound },
                    });
                }
                group += 1;
            }
        }
        let steps = usize::try_from(shape.hours * HOUR_MS / STEP_MS).unwrap_or(0);
        let mut values = Vec::with_capacity(series.len() * steps);
        for (index, def) in series.iter().enumerate() {
            let index = index as u64;
            let mut total = 0.0;
            for step in 0..steps as u64 {
                let value = match def.kind {
                    Kind::Counter => {
                        total += (1 + index % 10 + mix(index, step, 0) % 7) as f64;
                        total
                    }
                    Kind::Gauge => {
                        ((1 + index % 50) * 1_000_000 + mix(index, step, 1) % 100_000) as f64
                    }
                    Kind::Bucket { group, bound } => {
                        // Cumulative over the bounds, so each bucket counts at least as much as
                        // the one below it, and over time, as counters do.
                        let observed: u64 = (0..=bound)
                            .map(|b| mix(group as u64, step, 2 + b as u64) % BUCKET_SPREAD[b])
                            .sum();
                        total += observed as f64;
                        total
                    }
                };
                values.push(value);
            }
        }
        let gauges = (0..series.len())
            .filter(|&index| series[index].kind == Kind::Gauge)
            .collect();
        let first_ms = end_ms - (steps as i64 - 1) * STEP_MS;
        let history_last =
            (first_ms - LOOKBACK_MS - 10 * MINUTE_MS).div_euclid(HISTORY_STEP_MS) * HISTORY_STEP_MS;
        let history_first =
            end_ms.div_euclid(HOUR_MS) * HOUR_MS - shape.history_days * 24 * HOUR_MS - HOUR_MS;
        let history_times = (0..)
            .map(|n| history_first + n * HISTORY_STEP_MS)
            .take_while(|&time| time <= history_last)
            .collect();
        Self {
            series,
            steps,
            end_ms,
            values,
            gauges,
            history_times,
        }
    }

    /// A gauge's value at a time of its history.
    fn history_value(&self, series: usize, time_ms: i64) -> f64 {
        let seconds = (time_ms / 1000) as u64;
        ((1 + series as u64 % 50) * 1_000_000 + mix(series as u64, seconds, 3) % 100_000) as f64
    }

    fn history_points(&self) -> usize {
        self.gauges.len() * self.history_times.len()
    }

    /// Whether every gauge has a point at `time_ms`, in its history or in the data set.
    fn gauge_point_at(&self, time_ms: i64) -> bool {
        let in_set = (self.time_ms(0)..=self.end_ms).contains(&time_ms)
            && (self.end_ms - time_ms) % STEP_MS == 0;
        let in_history = match (self.history_times.first(), self.history_times.last()) {
            (Some(&first), Some(&last)) => {
                (first..=last).contains(&time_ms) && (time_ms - first) % HISTORY_STEP_MS == 0
            }
            _ => false,
        };
        in_set || in_history
    }

    /// Whether the gauges have points in `from_ms..to_ms`.
    fn gauge_points_within(&self, from_ms: i64, to_ms: i64) -> bool {
        let in_set = self.time_ms(0) < to_ms && self.end_ms >= from_ms;
        let in_history = self
            .history_times
            .iter()
            .any(|time| (from_ms..to_ms).contains(time));
        in_set || in_history
    }

    fn points(&self) -> usize {
        self.series.len() * self.steps
    }

    fn time_ms(&self, step: usize) -> i64 {
        self.end_ms - (self.steps - 1 - step) as i64 * STEP_MS
    }

    fn value(&self, series: usize, step: usize) -> f64 {
        self.values[series * self.steps + step]
    }

    fn count(&self, name: &str) -> usize {
        self.series.iter().filter(|s| s.name == name).count()
    }

    /// Indexes of the series called `name`.
    fn named(&self, name: &str) -> Vec<usize> {
        (0..self.series.len())
            .filter(|&index| self.series[index].name == name)
            .collect()
    }

    /// Points of one series with a time in `from_ms..=to_ms`.
    fn steps_within(&self, from_ms: i64, to_ms: i64) -> usize {
        (0..self.steps)
            .filter(|&step| (from_ms..=to_ms).contains(&self.time_ms(step)))
            .count()
    }

    /// The text exposition lines of series `index`, timestamps in milliseconds (Prometheus
    /// text) or in seconds (OpenMetrics).
    fn write_lines(
        &self,
        index: usize,
        seconds: bool,
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        let selector = self.series[index].selector();
        for step in 0..self.steps {
            let time = self.time_ms(step);
            let value = self.value(index, step);
            if seconds {
                writeln!(out, "{selector} {value} {}", time / 1000)?;
            } else {
                writeln!(out, "{selector} {value} {time}")?;
            }
        }
        Ok(())
    }
}

/// The wall clock, in microseconds since the epoch.
fn now_micros() -> anyhow::Result<i64> {
    Ok(i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_micros(),
    )?)
}

/// `n` with a comma between thousands: 11,520,000.
fn thousands(n: usize) -> String {
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

/// `bytes` in KiB, MiB or GiB.
fn show_bytes(bytes: u64) -> String {
    let bytes = bytes as f64;
    if bytes < 1024.0 * 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else if bytes < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", bytes / (1024.0 * 1024.0 * 1024.0))
    }
}

/// A hash of three numbers (splitmix64's finalizer): the data set's deterministic noise.
fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ c.wrapping_mul(0x1656_67B1_9E37_79F9);
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What an HTTP query asks for.
enum Request {
    Range {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
    Instant {
        time_ms: i64,
    },
}

/// One measured query.
struct Case {
    label: String,
    expr: String,
    request: Request,
    /// The metric name the query service selects series by (`None`: every series).
    name: Option<&'static str>,
    /// The selector's equality matchers besides the name, which narrow the series statement.
    equal: Vec<(&'static str, String)>,
    /// The data set's series the query reads.
    reads: Vec<usize>,
    /// The times the query service reads (ms): the query's range less the lookback or rate
    /// window (both ends included for points; for rollups, the hours from `from_ms` up to
    /// `to_ms`).
    from_ms: i64,
    to_ms: i64,
    /// The aim for Pharos' p99 against Prometheus' (`None`: Pharos alone).
    prometheus_aim: Option<f64>,
    /// Whether VictoriaMetrics must answer the same values as Prometheus (MetricsQL's `rate`
    /// does not extrapolate as PromQL's does, so only the series are compared there).
    victoria_same_values: bool,
    /// Set for the query the hourly rollups answer.
    hourly: Option<Hourly>,
    /// Whether the service reads only each series' latest point (a selector at one instant).
    latest_only: bool,
}

/// What a query over hourly rollups reads, and how its answer is checked.
struct Hourly {
    /// The step instants, whose points are read beside the rollups (ms).
    instants_ms: Vec<i64>,
    /// The same expression over these hours of the data set is asked of Prometheus, whose
    /// answer must be Pharos' at those instants.
    check: Request,
}

/// The URL path and parameters of `request` for `expr` in the Prometheus HTTP API.
fn request_params(expr: &str, request: &Request) -> (&'static str, Vec<(&'static str, String)>) {
    let seconds = |ms: i64| {
        if ms % 1000 == 0 {
            (ms / 1000).to_string()
        } else {
            format!("{:.3}", ms as f64 / 1000.0)
        }
    };
    match *request {
        Request::Range {
            start_ms,
            end_ms,
            step_ms,
        } => (
            "/api/v1/query_range",
            vec![
                ("query", expr.to_owned()),
                ("start", seconds(start_ms)),
                ("end", seconds(end_ms)),
                ("step", format!("{}s", step_ms / 1000)),
            ],
        ),
        Request::Instant { time_ms } => (
            "/api/v1/query",
            vec![("query", expr.to_owned()), ("time", seconds(time_ms))],
        ),
    }
}

fn cases(data: &DataSet, shape: &Shape) -> Vec<Case> {
    let end = data.end_ms;
    let range = |hours: i64| Request::Range {
        start_ms: end - hours * HOUR_MS,
        end_ms: end,
        step_ms: QUERY_STEP_MS,
    };
    let gauge = data
        .series
        .iter()
        .position(|s| s.name == GAUGE)
        .unwrap_or(0);
    let gauge_selector = data.series[gauge].selector();
    let (counters, buckets) = (data.count(COUNTER), data.count(BUCKET));
    vec![
        Case {
            label: format!("(a) one series, {} h at 1 m step", shape.hours),
            expr: gauge_selector,
            request: range(shape.hours),
            name: Some(GAUGE),
            equal: data.series[gauge].labels.clone(),
            reads: vec![gauge],
            from_ms: end - shape.hours * HOUR_MS - LOOKBACK_MS,
            to_ms: end,
            prometheus_aim: Some(2.0),
            victoria_same_values: true,
            hourly: None,
            latest_only: false,
        },
        Case {
            label: format!(
                "(b) sum by (job) (rate([5m])), {} series, {} h at 1 m",
                thousands(counters),
                shape.range_hours
            ),
            expr: format!("sum by (job) (rate({COUNTER}[5m]))"),
            request: range(shape.range_hours),
            name: Some(COUNTER),
            equal: Vec::new(),
            reads: data.named(COUNTER),
            from_ms: end - shape.range_hours * HOUR_MS - LOOKBACK_MS,
            to_ms: end,
            prometheus_aim: Some(1.0),
            victoria_same_values: false,
            hourly: None,
            latest_only: false,
        },
        Case {
            label: format!(
                "(c) histogram_quantile(0.99, sum by (le) (rate(_bucket[5m]))), {} series, {} h",
                thousands(buckets),
                shape.range_hours
            ),
            expr: format!("histogram_quantile(0.99, sum by (le) (rate({BUCKET}[5m])))"),
            request: range(shape.range_hours),
            name: Some(BUCKET),
            equal: Vec::new(),
            reads: data.named(BUCKET),
            from_ms: end - shape.range_hours * HOUR_MS - LOOKBACK_MS,
            to_ms: end,
            prometheus_aim: Some(1.0),
            victoria_same_values: false,
            hourly: None,
            latest_only: false,
        },
        Case {
            label: format!(
                "(d) instant count by (job) over all {} series",
                thousands(data.series.len())
            ),
            expr: "count by (job) ({__name__=~\"bench_.+\"})".to_owned(),
            request: Request::Instant { time_ms: end },
            name: None,
            equal: Vec::new(),
            reads: (0..data.series.len()).collect(),
            from_ms: end - LOOKBACK_MS,
            to_ms: end,
            prometheus_aim: Some(1.0),
            victoria_same_values: true,
            hourly: None,
            latest_only: true,
        },
        hourly_case(data, shape),
    ]
}

/// Query (e): the gauges' hourly average by job over `history_days` at 1 h steps, which the
/// hourly rollups answer (Pharos alone: the others hold the data set's hours only).
fn hourly_case(data: &DataSet, shape: &Shape) -> Case {
    let end = data.end_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let start = end - shape.history_days * 24 * HOUR_MS;
    let instants_ms: Vec<i64> = (0..)
        .map(|n| start + n * HOUR_MS)
        .take_while(|&t| t <= end)
        .collect();
    // The hours whose whole window lies in the data set, which Prometheus has too.
    let checked = shape.hours - 2;
    Case {
        label: format!(
            "(e) avg by (job) (avg_over_time([1h])), {} series, {} days at 1 h from rollups",
            thousands(data.gauges.len()),
            shape.history_days
        ),
        expr: format!("avg by (job) (avg_over_time({GAUGE}[1h]))"),
        request: Request::Range {
            start_ms: start,
            end_ms: end,
            step_ms: HOUR_MS,
        },
        name: Some(GAUGE),
        equal: Vec::new(),
        reads: data.gauges.clone(),
        from_ms: start - HOUR_MS,
        to_ms: end,
        prometheus_aim: None,
        victoria_same_values: true,
        hourly: Some(Hourly {
            instants_ms,
            check: Request::Range {
                start_ms: end - checked * HOUR_MS,
                end_ms: end,
                step_ms: HOUR_MS,
            },
        }),
        latest_only: false,
    }
}

/// The systems, in the order of their turns.
const SYSTEMS: [&str; 4] = ["prometheus", "victoria-metrics", "pharos", "sql floor"];
const PROMETHEUS: usize = 0;
const VICTORIA: usize = 1;
const PHAROS: usize = 2;
const SQL: usize = 3;

/// What one case measured.
struct Measured {
    latencies: [Latencies; 4],
    /// Disagreements between the systems' answers, empty when they agree.
    problems: Vec<String>,
    /// Series in each HTTP system's answer.
    series: [usize; 3],
    /// What was compared, when the answers agree.
    agreement: String,
}

/// Bytes on disk of one system.
struct Footprint {
    system: String,
    bytes: u64,
    points: usize,
    counted: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let quick = args.common.quick;
    let shape = Shape::new(quick);
    let iterations = args.iterations.unwrap_or(if quick { 5 } else { 20 }).max(1);
    let now_ms = now_micros()? / 1000;
    // A whole minute in the past, so that range queries end on the data's last point and every
    // system takes the data as arrived (VictoriaMetrics hides the last seconds by default); the
    // last one that lies `PENDING_MS` into its chunk window, so that every run leaves the same
    // points pending (see `compaction_time_us`).
    let last_minute_ms = now_ms.div_euclid(MINUTE_MS) * MINUTE_MS - MINUTE_MS;
    let end_ms = last_minute_ms - (last_minute_ms - PENDING_MS).rem_euclid(WINDOW_US / 1000);
    let data = DataSet::new(&shape, end_ms);
    eprintln!(
        "data set: {} series ({} counters, {} gauges, {} histogram buckets), \
         {} h at 15 s: {} points",
        data.series.len(),
        data.count(COUNTER),
        data.count(GAUGE),
        data.count(BUCKET),
        shape.hours,
        thousands(data.points())
    );
    let work = tempfile::tempdir()?;
    let database = BenchDatabase::create(&args.common.database_url, "query").await?;
    let result = measure(&args, &shape, &data, iterations, work.path(), &database).await;
    database.drop_it().await;
    let report = result?;
    report.print(&data, &shape, iterations, &database.server_version);
    Ok(())
}

/// Everything printed at the end.
struct Report {
    cases: Vec<(Case, Measured)>,
    footprints: Vec<Footprint>,
    prometheus_version: String,
    victoria_version: String,
    loads: Vec<String>,
}

async fn measure(
    args: &Args,
    shape: &Shape,
    data: &DataSet,
    iterations: usize,
    work: &Path,
    database: &BenchDatabase,
) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .tcp_nodelay(true)
        .build()?;
    let mut loads = Vec::new();

    // Prometheus: TSDB blocks written by promtool from an OpenMetrics file.
    let prometheus_version = version_of(&args.prometheus_bin, "prometheus");
    let started = Instant::now();
    let (mut prometheus, prometheus_url, prometheus_dir) =
        start_prometheus(&args.prometheus_bin, data, work, &http).await?;
    loads.push(format!(
        "Prometheus {} (promtool blocks, then start)",
        show_duration(started.elapsed())
    ));

    // VictoriaMetrics: Prometheus text through its import API.
    let victoria_version = version_of(&args.victoria_metrics_bin, "victoria-metrics");
    let started = Instant::now();
    let (mut victoria, victoria_url, victoria_dir) =
        start_victoria(&args.victoria_metrics_bin, data, work, &http).await?;
    loads.push(format!(
        "VictoriaMetrics {} (import, flush)",
        show_duration(started.elapsed())
    ));

    // Pharos on PostgreSQL, loaded through gRPC.
    eprintln!("starting pharos serve --target ingest,query");
    let env = [
        // Every query issues the statements of the floor: no series selection is reused.
        ("PHAROS_QUERY__SERIES_CACHE__CAPACITY", "0".to_owned()),
        // No background rollups or compaction while queries are timed: this harness runs
        // each once, before.
        (
            "PHAROS_INGEST__RETENTION__ROLLUP_INTERVAL",
            "365d".to_owned(),
        ),
        (
            "PHAROS_INGEST__RETENTION__COMPACTION_INTERVAL",
            "365d".to_owned(),
        ),
        // The gauges' history reaches back `history_days`.
        (
            "PHAROS_INGEST__LIMITS__MAX_AGE",
            format!("{}d", shape.history_days + 2),
        ),
    ];
    // Loading: no committed-data feed (so no head), which would keep 24 bytes of every point
    // loaded for its retention. Pharos restarts with both before the queries are timed.
    let mut loading = env.to_vec();
    loading.push(("PHAROS_INGEST__FEED__METRICS", "false".to_owned()));
    let (mut loader, grpc, _) = start_pharos_with(
        &args.common.pharos_bin,
        "ingest,query",
        &database.url,
        work,
        "pharos-query",
        &loading,
    )
    .await?;
    let started = Instant::now();
    // In time order, as scrapes send it: by step, then series.
    let count = data.series.len();
    load_pharos(data, grpc, data.points(), "writing into pharos", |flat| {
        let (step, series) = (flat / count, flat % count);
        (series, data.time_ms(step), data.value(series, step))
    })
    .await?;
    let took = started.elapsed();
    loader.check_alive()?;
    loads.push(format!(
        "Pharos {} ({} points/s through WriteMetrics)",
        show_duration(took),
        thousands((data.points() as f64 / took.as_secs_f64()) as usize)
    ));
    // As the query service's pool: no round trip to test a connection before each use.
    let pool = PgPoolOptions::new()
        .max_connections(PARALLEL_READS as u32 + 2)
        .test_before_acquire(false)
        .connect(&database.url)
        .await?;
    // As the store's pool of reads of points: generic plans, planned as each connection opens.
    let reads = Pools {
        main: pool.clone(),
        reads: pharos_store::connect_metric_reads(
            &pharos_store::StoreSettings {
                max_read_connections: PARALLEL_READS as u32 + 2,
                test_before_acquire: false,
                ..pharos_store::StoreSettings::default()
            },
            database.url.parse()?,
        ),
    };
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metric_points")
        .fetch_one(&pool)
        .await?;
    if stored != data.points() as i64 {
        bail!(
            "{} points were acknowledged but {stored} are stored",
            data.points()
        );
    }
    // What the ingest service's compaction job (every 30 s) has done: every window before the
    // data set's last one in chunks, the last one pending (`compaction_time_us`).
    let store = pharos_store::Store::connect(&pharos_store::StoreSettings {
        url: database.url.clone(),
        max_connections: 2,
        ..Default::default()
    })
    .await?;
    let started = Instant::now();
    eprintln!("compacting into chunks");
    let compacted = store
        .metrics()
        .compact(compaction_time_us(data.end_ms))
        .await?;
    loads.push(format!(
        "Pharos compaction {} ({} windows or hours, {} whole hours, {} chunks, {} points, \
         {:.2} B/point)",
        show_duration(started.elapsed()),
        compacted.windows,
        compacted.hours,
        thousands(usize::try_from(compacted.chunks).unwrap_or(0)),
        thousands(usize::try_from(compacted.points).unwrap_or(0)),
        compacted.bytes as f64 / compacted.points.max(1) as f64
    ));
    // As a database that has been running would be: statistics, visibility map, no autovacuum
    // pending while queries are timed.
    eprintln!("VACUUM ANALYZE");
    sqlx::raw_sql("VACUUM ANALYZE").execute(&pool).await?;
    // The bytes of the data set alone, before the history only Pharos keeps.
    let pharos_footprints =
        pharos_footprints(&pool, data.points(), &database.server_version).await?;

    // The gauges' history, then the hourly rollups of every hour, by the store's own code (what
    // the ingest service's rollup job runs every 5 minutes).
    let started = Instant::now();
    let gauges = data.gauges.len();
    load_pharos(
        data,
        grpc,
        data.history_points(),
        "writing the gauges' history into pharos",
        |flat| {
            let (time, gauge) = (
                data.history_times[flat / gauges],
                data.gauges[flat % gauges],
            );
            (gauge, time, data.history_value(gauge, time))
        },
    )
    .await?;
    let loaded_history = started.elapsed();
    let started = Instant::now();
    eprintln!("rolling up every hour, compacting the history");
    let rolled = store.metrics().roll_up(now_micros()?).await?;
    store
        .metrics()
        .compact(compaction_time_us(data.end_ms))
        .await?;
    drop(store);
    loads.push(format!(
        "Pharos history {} ({} gauge points), its rollups {} ({} hours, {} hourly rows)",
        show_duration(loaded_history),
        thousands(data.history_points()),
        show_duration(started.elapsed()),
        rolled.hours,
        thousands(usize::try_from(rolled.hourly_rows).unwrap_or(0))
    ));
    sqlx::raw_sql("VACUUM ANALYZE").execute(&pool).await?;
    let ids = series_ids(&pool, data).await?;

    // Restarted as it runs: the feed on, and a head of the last two hours (Prometheus' head
    // holds two to three) started from the store's snapshot.
    loader.stop().await?;
    let mut serving = env.to_vec();
    serving.push(("PHAROS_QUERY__HEAD__WINDOW", "2h".to_owned()));
    let (mut pharos, _, pharos_http) = start_pharos_with(
        &args.common.pharos_bin,
        "ingest,query",
        &database.url,
        work,
        "pharos-query",
        &serving,
    )
    .await?;
    let pharos_url = format!("http://{pharos_http}");
    let head = head_answering(&http, &pharos_url).await?;
    loads.push(format!(
        "Pharos restarted, its head answering {} ({} series, {} points)",
        show_duration(head.0),
        thousands(head.1),
        thousands(head.2)
    ));

    let mut measured = Vec::new();
    let chosen = |case: &Case| {
        args.cases.as_deref().is_none_or(|letters| {
            letters
                .chars()
                .any(|letter| case.label.starts_with(&format!("({letter})")))
        })
    };
    for case in cases(data, shape).into_iter().filter(chosen) {
        eprintln!("measuring {}: {}", case.label, case.expr);
        let case_ids: Vec<i64> = pharos_order(data, &case.reads)
            .iter()
            .map(|&index| ids[index])
            .collect();
        let bases = [
            prometheus_url.as_str(),
            victoria_url.as_str(),
            pharos_url.as_str(),
        ];
        let result =
            measure_case(&http, &bases, &reads, data, &case, &case_ids, iterations).await?;
        for server in [&mut prometheus, &mut victoria, &mut pharos] {
            server.check_alive()?;
        }
        for (system, latencies) in SYSTEMS.iter().zip(&result.latencies) {
            if latencies.is_empty() {
                continue;
            }
            eprintln!(
                "  {system}: p50 {} p99 {}",
                show_duration(latencies.p50()),
                show_duration(latencies.p99())
            );
        }
        measured.push((case, result));
    }

    let mut footprints = pharos_footprints;
    let prometheus_bytes = disk_usage(&prometheus_dir)?;
    let mut block_bytes = 0;
    for entry in std::fs::read_dir(&prometheus_dir)? {
        let entry = entry?;
        // Blocks are the directories named by a ULID (26 characters); the rest is the WAL,
        // the head's chunks and the lock file.
        if entry.file_type()?.is_dir() && entry.file_name().len() == 26 {
            block_bytes += disk_usage(&entry.path())?;
        }
    }
    footprints.push(Footprint {
        system: format!("Prometheus {prometheus_version}"),
        bytes: prometheus_bytes,
        points: data.points(),
        counted: format!(
            "the TSDB directory as du counts: blocks {:.2} B/point, WAL and the rest {}",
            block_bytes as f64 / data.points().max(1) as f64,
            show_bytes(prometheus_bytes.saturating_sub(block_bytes))
        ),
    });
    footprints.push(Footprint {
        system: format!("VictoriaMetrics {victoria_version}"),
        bytes: disk_usage(&victoria_dir)?,
        points: data.points(),
        counted: "-storageDataPath (data and indexdb) after the run, as du counts".to_owned(),
    });
    pool.close().await;
    pharos.stop().await?;
    prometheus.stop().await?;
    victoria.stop().await?;
    Ok(Report {
        cases: measured,
        footprints,
        prometheus_version,
        victoria_version,
        loads,
    })
}

/// Runs `case` on every system (Pharos alone for the query of hourly rollups): two warm-up
/// turns (the first one's answers are compared), then `iterations` timed turns, each system in
/// turn, the SQL floor last.
async fn measure_case(
    http: &reqwest::Client,
    bases: &[&str; 3],
    pools: &Pools,
    data: &DataSet,
    case: &Case,
    ids: &[i64],
    iterations: usize,
) -> anyhow::Result<Measured> {
    let systems: &[usize] = match case.hourly {
        Some(_) => &[PHAROS],
        None => &[PROMETHEUS, VICTORIA, PHAROS],
    };
    let mut latencies = [
        Latencies::new(),
        Latencies::new(),
        Latencies::new(),
        Latencies::new(),
    ];
    let mut problems = Vec::new();
    let mut answers: [Answer; 3] = Default::default();
    for &system in systems {
        let (_, body) = http_query(http, bases[system], &case.expr, &case.request)
            .await
            .with_context(|| format!("{} answering {}", SYSTEMS[system], case.expr))?;
        let text = String::from_utf8_lossy(&body);
        if case.hourly.is_some() && !text.contains(FROM_ROLLUPS) {
            problems.push("pharos did not answer from the hourly rollups".to_owned());
        }
        answers[system] =
            parse_answer(&body).with_context(|| format!("{} answered {text}", SYSTEMS[system]))?;
    }
    // Where the head begins moves on by seconds while a case runs, which the floor's reads of
    // whole chunks hardly notice; read once, since `/health` costs Pharos CPU (it reads /proc).
    let head_from = pharos_head_from(http, bases[PHAROS]).await?;
    let (_, rows) = floor(pools, case, ids, head_from).await?;
    let expected_rows = expected_floor_rows(data, case, head_from);
    // A range read takes whole chunks: up to an hour's points more at each end of the range.
    let edges = match case.hourly {
        None if case.latest_only => 0,
        None => case.reads.len() * 2 * usize::try_from(HOUR_US / 1000 / STEP_MS).unwrap_or(0),
        Some(_) => 0,
    };
    if !(expected_rows..=expected_rows + edges).contains(&rows) {
        problems.push(format!(
            "the SQL floor read {rows} points where the data set has {expected_rows} \
             (and up to {edges} more at the edges of chunks)"
        ));
    }
    let agreement = match &case.hourly {
        None => {
            if answers[PROMETHEUS].is_empty() {
                problems.push("prometheus answered no series".to_owned());
            }
            if let Some(problem) = compare(&answers[PROMETHEUS], &answers[PHAROS], true) {
                problems.push(format!("pharos against prometheus: {problem}"));
            }
            if let Some(problem) = compare(
                &answers[PROMETHEUS],
                &answers[VICTORIA],
                case.victoria_same_values,
            ) {
                problems.push(format!("victoria-metrics against prometheus: {problem}"));
            }
            if case.victoria_same_values {
                "same values everywhere".to_owned()
            } else {
                "same values for pharos; victoria-metrics' MetricsQL rate() does not \
                 extrapolate, so only its series are compared"
                    .to_owned()
            }
        }
        Some(hourly) => {
            // Prometheus answers the same expression over the hours it holds from the points;
            // Pharos' answer at those instants must be the same.
            let (_, body) = http_query(http, bases[PROMETHEUS], &case.expr, &hourly.check)
                .await
                .context("prometheus answering the check of the hourly rollups")?;
            let reference = parse_answer(&body)?;
            let (from, to) = match hourly.check {
                Request::Range {
                    start_ms, end_ms, ..
                } => (start_ms, end_ms),
                Request::Instant { time_ms } => (time_ms, time_ms),
            };
            let within: Answer = answers[PHAROS]
                .iter()
                .map(|(labels, samples)| {
                    let samples = samples
                        .iter()
                        .filter(|(time, _)| (from..=to).contains(time))
                        .copied()
                        .collect();
                    (labels.clone(), samples)
                })
                .collect();
            if reference.is_empty() {
                problems.push("prometheus answered no series to the check".to_owned());
            }
            if let Some(problem) = compare(&reference, &within, true) {
                problems.push(format!(
                    "pharos from rollups against prometheus from points: {problem}"
                ));
            }
            let samples: usize = reference.values().map(Vec::len).sum();
            format!(
                "from the hourly rollups; at the last {} of its instants, whose hours lie in \
                 the data set, the same values as prometheus from the points ({samples} samples)",
                samples / reference.len().max(1)
            )
        }
    };
    let series = answers.each_ref().map(BTreeMap::len);
    // A second warm-up turn, untimed.
    for &system in systems {
        http_query(http, bases[system], &case.expr, &case.request).await?;
    }
    floor(pools, case, ids, head_from).await?;
    for _ in 0..iterations {
        for &system in systems {
            let (took, _) = http_query(http, bases[system], &case.expr, &case.request).await?;
            latencies[system].record(took);
        }
        let (took, _) = floor(pools, case, ids, head_from).await?;
        latencies[SQL].record(took);
    }
    Ok(Measured {
        latencies,
        problems,
        series,
        agreement,
    })
}

/// Sends `request` for `expr` to the Prometheus HTTP API at `base`; returns the time from
/// sending to the last byte of the answer, and the answer.
async fn http_query(
    http: &reqwest::Client,
    base: &str,
    expr: &str,
    request: &Request,
) -> anyhow::Result<(Duration, Vec<u8>)> {
    let (path, params) = request_params(expr, request);
    let request = http.get(format!("{base}{path}")).query(&params).build()?;
    let started = Instant::now();
    let response = http.execute(request).await?;
    let status = response.status();
    let body = response.bytes().await?;
    let took = started.elapsed();
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok((took, body.to_vec()))
}

/// The floor's connections: the main pool (series, hourly reads) and one like the store's pool
/// of reads of points.
struct Pools {
    main: PgPool,
    reads: PgPool,
}

/// The SQL floor of `case`: its statements run directly; returns the time and the rows read.
/// The series and hourly statements are planned for their parameters (unnamed statements), as
/// the service plans the hourly ones (a generic plan of the points at the step instants of
/// query (e) measured 27 s instead of 0.7 s); the reads of points run prepared on a pool like
/// the store's pool of reads, with the generic plans the service's run with.
/// `head_from` is where Pharos' head of recent points begins (`pharos_head_from`).
async fn floor(
    pools: &Pools,
    case: &Case,
    ids: &[i64],
    head_from: Option<i64>,
) -> anyhow::Result<(Duration, usize)> {
    match &case.hourly {
        None => sql_floor(pools, case, ids, store_until(case, head_from)).await,
        Some(hourly) => sql_floor_hourly(&pools.main, case, ids, hourly).await,
    }
}

/// Where the service stops reading `case`'s points from the store (milliseconds, exclusive)
/// and takes the rest from its head, as `StoreSource` decides: a range that begins before
/// where the head begins (`head_from`) and ends after. `None`: the store reads the whole range
/// (or, for a selector at one instant, the head replaces the store path the floor reads).
fn store_until(case: &Case, head_from: Option<i64>) -> Option<i64> {
    head_from.filter(|&from| !case.latest_only && case.from_ms < from && from <= case.to_ms)
}

/// Where Pharos' head of recent points begins (milliseconds); `None` while it does not answer.
async fn pharos_head_from(http: &reqwest::Client, pharos_url: &str) -> anyhow::Result<Option<i64>> {
    Ok(pharos_head(http, pharos_url).await?["complete_from_ms"].as_i64())
}

/// Pharos' head of recent points as its `/health` reports it (component `query_head`).
async fn pharos_head(
    http: &reqwest::Client,
    pharos_url: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut health: serde_json::Value = http
        .get(format!("{pharos_url}/health"))
        .send()
        .await?
        .json()
        .await?;
    Ok(health["components"]["query_head"].take())
}

/// The rows the floor of `case` must read from the data set (and the gauges' history).
fn expected_floor_rows(data: &DataSet, case: &Case, head_from: Option<i64>) -> usize {
    match &case.hourly {
        None if case.latest_only => case.reads.len(),
        None => {
            let to_ms = store_until(case, head_from).map_or(case.to_ms, |until| until - 1);
            case.reads.len() * data.steps_within(case.from_ms, to_ms)
        }
        Some(hourly) => {
            let hours = (0..)
                .map(|n| case.from_ms + n * HOUR_MS)
                .take_while(|&hour| hour < case.to_ms)
                .filter(|&hour| data.gauge_points_within(hour, hour + HOUR_MS))
                .count();
            let instants = hourly
                .instants_ms
                .iter()
                .filter(|&&time| data.gauge_point_at(time))
                .count();
            case.reads.len() * (hours + instants)
        }
    }
}

/// The series statement the query service issues for `case`'s selector: by its name (or none)
/// and its equality matchers.
async fn select_series(
    pool: &PgPool,
    case: &Case,
) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    match case.name {
        Some(name) if !case.equal.is_empty() => {
            let equal: serde_json::Map<String, serde_json::Value> = case
                .equal
                .iter()
                .map(|(label, value)| ((*label).to_owned(), value.as_str().into()))
                .collect();
            sqlx::query_as(SERIES_BY_NAME_AND_LABELS)
                .persistent(false)
                .bind(name)
                .bind(serde_json::Value::Object(equal).to_string())
                .fetch_all(pool)
                .await
        }
        Some(name) => {
            sqlx::query_as(SERIES_BY_NAME)
                .persistent(false)
                .bind(name)
                .fetch_all(pool)
                .await
        }
        None => {
            sqlx::query_as(ALL_SERIES)
                .persistent(false)
                .fetch_all(pool)
                .await
        }
    }
}

/// The statements the query service issues for a `*_over_time` over whole hours, run directly:
/// the series of the metric name, then at once the hourly aggregates in one read-only snapshot
/// (pending hours, rollups, the pending hours from their points) and the points at the step
/// instants. Returns the time and the rows read.
async fn sql_floor_hourly(
    pool: &PgPool,
    case: &Case,
    ids: &[i64],
    hourly: &Hourly,
) -> anyhow::Result<(Duration, usize)> {
    let (from_us, to_us) = (case.from_ms * 1000, case.to_ms * 1000);
    let instants_us: Vec<i64> = hourly.instants_ms.iter().map(|ms| ms * 1000).collect();
    let started = Instant::now();
    let series = select_series(pool, case).await?;
    let aggregates = async {
        let mut transaction = pool.begin().await?;
        sqlx::query(SNAPSHOT)
            .persistent(false)
            .execute(&mut *transaction)
            .await?;
        let pending: Vec<i64> = sqlx::query_scalar(PENDING_HOURS)
            .persistent(false)
            .bind(from_us)
            .bind(to_us)
            .fetch_all(&mut *transaction)
            .await?;
        let mut rows: Vec<RollupTuple> = sqlx::query_as(ROLLUPS)
            .persistent(false)
            .bind(ids)
            .bind(from_us)
            .bind(to_us)
            .bind(&pending)
            .fetch_all(&mut *transaction)
            .await?;
        if !pending.is_empty() {
            let fresh: Vec<RollupTuple> = sqlx::query_as(PENDING_ROLLUPS)
                .persistent(false)
                .bind(ids)
                .bind(&pending)
                .fetch_all(&mut *transaction)
                .await?;
            rows.extend(fresh);
        }
        transaction.commit().await?;
        Ok::<_, sqlx::Error>(rows.len())
    };
    let instants = async {
        let rows: Vec<(i64, i64, f64)> = sqlx::query_as(POINTS_AT_INSTANTS)
            .persistent(false)
            .bind(ids)
            .bind(&instants_us)
            .fetch_all(pool)
            .await?;
        Ok::<_, sqlx::Error>(rows.len())
    };
    let (aggregates, instants) = futures::try_join!(aggregates, instants)?;
    let took = started.elapsed();
    drop(series);
    Ok((took, aggregates + instants))
}

/// The statements the query service issues for `case`, run directly: the series of the metric
/// name (or every series), and beside it, when its range reaches into the head
/// (`store_until`), the feed position the head must have applied; then for the selected series (`ids`, in the order the
/// service reads them), 256 series per read and 4 reads at once, one statement each: the
/// range's pending windows, the chunks and the points of the pending windows, up to where the
/// head begins (or, for a selector at one instant, each series' latest point). Returns the time
/// and the points read (those of whole chunks, edges included), without decoding the chunks.
async fn sql_floor(
    pools: &Pools,
    case: &Case,
    ids: &[i64],
    store_until: Option<i64>,
) -> anyhow::Result<(Duration, usize)> {
    let (pool, reads) = (&pools.main, &pools.reads);
    let from_us = case.from_ms * 1000;
    let to_us = store_until.map_or(case.to_ms * 1000 + 999, |until| until * 1000 - 1);
    let first_window = from_us.div_euclid(WINDOW_US) * WINDOW_US;
    let first_hour = from_us.div_euclid(HOUR_US) * HOUR_US;
    let started = Instant::now();
    let feed_position = async {
        if store_until.is_some() {
            sqlx::query_scalar(LAST_FEED_POSITION)
                .bind(pharos_store::signals::feed::FeedSignal::Metrics as i16)
                .fetch_optional(pool)
                .await
        } else {
            Ok(None::<i64>)
        }
    };
    let (_, series) = futures::try_join!(feed_position, select_series(pool, case))?;
    let chunks: Vec<Vec<i64>> = ids.chunks(SERIES_PER_READ).map(<[i64]>::to_vec).collect();
    let counts: Vec<usize> = futures::stream::iter(chunks)
        .map(|chunk| async move {
            if case.latest_only {
                let rows: Vec<(i64, i64, f64)> = sqlx::query_as(metrics::POSTGRES_LATEST)
                    .bind(&chunk)
                    .bind(from_us)
                    .bind(to_us)
                    .fetch_all(reads)
                    .await?;
                return Ok(rows.len());
            }
            let rows: Vec<metrics::PostgresReadRow> = sqlx::query_as(metrics::POSTGRES_READ)
                .bind(&chunk)
                .bind(first_hour)
                .bind(to_us)
                .bind(first_window)
                .bind(from_us)
                .bind(WINDOW_US)
                .fetch_all(reads)
                .await?;
            // Each chunk counts its points; each point of a pending window is a row.
            let read: usize = rows
                .iter()
                .map(|(series, _, points, data, _)| match (series, data) {
                    (None, _) => 0,
                    (Some(_), Some(_)) => usize::try_from(*points).unwrap_or(0),
                    (Some(_), None) => 1,
                })
                .sum();
            Ok::<_, sqlx::Error>(read)
        })
        .buffered(PARALLEL_READS)
        .try_collect()
        .await?;
    let took = started.elapsed();
    drop(series);
    Ok((took, counts.iter().sum()))
}

/// The time the compaction acts as if it ran at: when the data set's last chunk window (the one
/// holding its last point, `PENDING_MS` of points) is the only one not ended over the settling
/// time before, so that it alone stays pending, whatever the clock says.
fn compaction_time_us(end_ms: i64) -> i64 {
    let last_window_us = (end_ms * 1000).div_euclid(WINDOW_US) * WINDOW_US;
    last_window_us - 1 + pharos_store::signals::metrics::ROLLUP_SETTLE_US + WINDOW_US
}

/// The stored id of every series of the data set, by its index.
async fn series_ids(pool: &PgPool, data: &DataSet) -> anyhow::Result<Vec<i64>> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(ALL_SERIES).fetch_all(pool).await?;
    let mut by_identity: HashMap<Vec<(String, String)>, i64> = HashMap::new();
    for (id, name, labels) in rows {
        let labels: BTreeMap<String, String> = serde_json::from_str(&labels)
            .with_context(|| format!("stored labels of series {id}: {labels}"))?;
        let mut identity: Vec<(String, String)> = labels.into_iter().collect();
        identity.push(("__name__".to_owned(), name));
        identity.sort();
        by_identity.insert(identity, id);
    }
    data.series
        .iter()
        .map(|series| {
            by_identity
                .get(&series.identity())
                .copied()
                .with_context(|| format!("{} is not stored", series.selector()))
        })
        .collect()
}

/// `reads` in the order the query service reads them: sorted by label set.
fn pharos_order(data: &DataSet, reads: &[usize]) -> Vec<usize> {
    let mut ordered: Vec<(Vec<(String, String)>, usize)> = reads
        .iter()
        .map(|&index| (data.series[index].identity(), index))
        .collect();
    ordered.sort();
    ordered.into_iter().map(|(_, index)| index).collect()
}

/// A query's answer: each series (its labels as JSON) with its samples (ms, value).
type Answer = BTreeMap<String, Vec<(i64, f64)>>;

fn parse_answer(body: &[u8]) -> anyhow::Result<Answer> {
    let json: Json = serde_json::from_slice(body)?;
    if json["status"] != "success" {
        bail!("status is not success");
    }
    let result = json["data"]["result"]
        .as_array()
        .context("no data.result array")?;
    let sample = |pair: &Json| -> anyhow::Result<(i64, f64)> {
        let time = pair[0].as_f64().context("a sample without a time")?;
        let value = pair[1].as_str().context("a sample without a value")?;
        let value = match value {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse()?,
        };
        Ok(((time * 1000.0).round() as i64, value))
    };
    let mut answer = Answer::new();
    for item in result {
        let labels = item["metric"].to_string();
        let samples = match (item["values"].as_array(), item.get("value")) {
            (Some(values), _) => values.iter().map(sample).collect::<anyhow::Result<_>>()?,
            (None, Some(value)) => vec![sample(value)?],
            (None, None) => bail!("a series without samples"),
        };
        answer.insert(labels, samples);
    }
    Ok(answer)
}

/// How `other` differs from `reference`: other series, or (with `values`) other samples; `None`
/// when they agree.
fn compare(reference: &Answer, other: &Answer, values: bool) -> Option<String> {
    if reference.keys().ne(other.keys()) {
        let missing = reference.keys().find(|key| !other.contains_key(*key));
        let extra = other.keys().find(|key| !reference.contains_key(*key));
        return Some(format!(
            "{} series against {} (first missing: {}, first extra: {})",
            other.len(),
            reference.len(),
            missing.map_or("none", String::as_str),
            extra.map_or("none", String::as_str)
        ));
    }
    if !values {
        return None;
    }
    for (labels, expected) in reference {
        let got = &other[labels];
        if got.len() != expected.len() {
            return Some(format!(
                "{labels}: {} samples against {}",
                got.len(),
                expected.len()
            ));
        }
        for ((time, value), (want_time, want)) in got.iter().zip(expected) {
            let same = (value.is_nan() && want.is_nan())
                || value == want
                || (value - want).abs() <= TOLERANCE * value.abs().max(want.abs());
            if time != want_time || !same {
                return Some(format!(
                    "{labels}: ({time}, {value}) against ({want_time}, {want})"
                ));
            }
        }
    }
    None
}

fn progress(total: usize, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {human_pos}/{human_len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(message.to_owned());
    bar
}

/// Writes the data set as OpenMetrics, has promtool turn it into TSDB blocks, and starts
/// Prometheus on them; returns the server, its URL and its TSDB directory.
async fn start_prometheus(
    binary: &Path,
    data: &DataSet,
    work: &Path,
    http: &reqwest::Client,
) -> anyhow::Result<(Server, String, PathBuf)> {
    let file = work.join("data.om.txt");
    {
        let bar = progress(data.series.len(), "writing OpenMetrics (series)");
        let mut out = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&file)
                .with_context(|| format!("cannot create {}", file.display()))?,
        );
        // Each family's series one after the other, each series' samples in time order.
        for index in 0..data.series.len() {
            data.write_lines(index, true, &mut out)?;
            bar.inc(1);
        }
        std::io::Write::write_all(&mut out, b"# EOF\n")?;
        std::io::Write::flush(&mut out)?;
        bar.finish_and_clear();
    }
    let tsdb = work.join("prometheus");
    let promtool = binary.with_file_name("promtool");
    eprintln!(
        "promtool tsdb create-blocks-from openmetrics ({} samples)",
        data.points()
    );
    // Blocks of up to 18 h (promtool rounds 24 h down to a compaction level), as Prometheus'
    // own compaction would have left a day of data; Prometheus finds nothing to compact.
    let output = tokio::process::Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg("--max-block-duration=24h")
        .arg(&file)
        .arg(&tsdb)
        .output()
        .await
        .with_context(|| format!("cannot run {}", promtool.display()))?;
    if !output.status.success() {
        bail!(
            "promtool failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::remove_file(&file)?;
    let config = work.join("prometheus.yml");
    // No scrape jobs: the TSDB holds the data set alone.
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n")?;
    let address = loopback(free_port()?);
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", tsdb.display()),
        "--storage.tsdb.retention.time=100y".to_owned(),
        format!("--web.listen-address={address}"),
    ];
    let mut server = Server::spawn("prometheus", binary, &args, &[], work)?;
    let url = format!("http://{address}");
    wait_http(&mut server, http, &format!("{url}/-/ready")).await?;
    Ok((server, url, tsdb))
}

/// Starts VictoriaMetrics, imports the data set as Prometheus text, flushes it and waits until
/// a query counts every sample; returns the server, its URL and its data directory.
async fn start_victoria(
    binary: &Path,
    data: &DataSet,
    work: &Path,
    http: &reqwest::Client,
) -> anyhow::Result<(Server, String, PathBuf)> {
    let storage = work.join("victoria-metrics");
    let address = loopback(free_port()?);
    let args = [
        format!("-storageDataPath={}", storage.display()),
        format!("-httpListenAddr={address}"),
        "-retentionPeriod=100y".to_owned(),
        // Its cache of query results would answer repeated queries without evaluating them;
        // Prometheus and Pharos keep no such cache.
        "-search.disableCache".to_owned(),
        // The data is complete when the queries run; by default the last 30 s are hidden.
        "-search.latencyOffset=0s".to_owned(),
        "-loggerLevel=WARN".to_owned(),
    ];
    let mut server = Server::spawn("victoria-metrics", binary, &args, &[], work)?;
    let url = format!("http://{address}");
    wait_http(&mut server, http, &format!("{url}/health")).await?;

    let bar = progress(data.points(), "importing into VictoriaMetrics");
    let groups: Vec<std::ops::Range<usize>> = (0..data.series.len())
        .step_by(IMPORT_SERIES)
        .map(|first| first..(first + IMPORT_SERIES).min(data.series.len()))
        .collect();
    let import = format!("{url}/api/v1/import/prometheus");
    futures::stream::iter(groups)
        .map(|group| {
            let import = import.clone();
            let bar = bar.clone();
            async move {
                let mut body = Vec::with_capacity(group.len() * data.steps * 80);
                for index in group.clone() {
                    data.write_lines(index, false, &mut body)?;
                }
                let response = http.post(&import).body(body).send().await?;
                let status = response.status();
                if !status.is_success() {
                    bail!(
                        "VictoriaMetrics import: HTTP {status}: {}",
                        response.text().await.unwrap_or_default()
                    );
                }
                bar.inc((group.len() * data.steps) as u64);
                Ok(())
            }
        })
        .buffer_unordered(IMPORTS_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    bar.finish_and_clear();
    let response = http
        .get(format!("{url}/internal/force_flush"))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("VictoriaMetrics force_flush: HTTP {}", response.status());
    }
    let query = format!(
        "sum(count_over_time({{__name__=~\"bench_.+\"}}[{}h]))",
        data.steps as i64 * STEP_MS / HOUR_MS + 1
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut counted = 0.0;
    while Instant::now() < deadline {
        server.check_alive()?;
        let response = http
            .get(format!("{url}/api/v1/query"))
            .query(&[
                ("query", query.clone()),
                ("time", (data.end_ms / 1000).to_string()),
            ])
            .send()
            .await?;
        let body = response.bytes().await?;
        counted = parse_answer(&body)
            .ok()
            .and_then(|answer| answer.values().next().and_then(|s| s.first()).map(|s| s.1))
            .unwrap_or(0.0);
        if counted == data.points() as f64 {
            return Ok((server, url, storage));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!(
        "VictoriaMetrics counts {counted} samples of the {} imported",
        data.points()
    )
}

/// Polls `url` until it answers 2xx.
async fn wait_http(server: &mut Server, http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Loads `total` points of the data set's series into Pharos through `WriteMetrics`, point
/// `flat` being `point(flat)`: (series index, time in ms, value). Batches of 10,000 points, 4 in
/// flight, each acknowledged after its commit.
/// Waits for Pharos' head of recent points to answer (its `/health` component `query_head`):
/// how long since the process started serving, and the series and points it holds.
async fn head_answering(
    http: &reqwest::Client,
    pharos_url: &str,
) -> anyhow::Result<(Duration, usize, usize)> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    loop {
        let head = pharos_head(http, pharos_url).await?;
        if head["answering"] == true {
            let count = |key: &str| head[key].as_u64().unwrap_or(0) as usize;
            return Ok((started.elapsed(), count("series"), count("points")));
        }
        if Instant::now() > deadline {
            bail!("pharos' head of recent points did not answer within 5 minutes: {head}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn load_pharos(
    data: &DataSet,
    grpc: SocketAddr,
    total: usize,
    message: &str,
    point: impl Fn(usize) -> (usize, i64, f64) + Sync,
) -> anyhow::Result<()> {
    const MAX: usize = 64 << 20;
    let client = IngestServiceClient::new(channel(grpc).await?)
        .max_encoding_message_size(MAX)
        .max_decoding_message_size(MAX);
    let labels: Vec<Vec<pb::Label>> = data
        .series
        .iter()
        .map(|series| {
            series
                .labels
                .iter()
                .map(|(name, value)| pb::Label {
                    name: (*name).to_owned(),
                    value: value.clone(),
                })
                .collect()
        })
        .collect();
    let bar = progress(total, message);
    let (labels, point) = (&labels, &point);
    futures::stream::iter(0..total.div_ceil(BATCH_POINTS))
        .map(|batch| {
            let mut client = client.clone();
            let bar = bar.clone();
            async move {
                let first = batch * BATCH_POINTS;
                let points = || {
                    (first..(first + BATCH_POINTS).min(total))
                        .map(|flat| {
                            let (series, time_ms, value) = point(flat);
                            pb::MetricPoint {
                                name: data.series[series].name.to_owned(),
                                labels: labels[series].clone(),
                                time_unix_nano: time_ms * 1_000_000,
                                value,
                            }
                        })
                        .collect()
                };
                let (accepted, _) = write_metrics(&mut client, points).await?;
                bar.inc(accepted);
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(BATCHES_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    bar.finish_and_clear();
    Ok(())
}

/// Bytes of the metric tables in PostgreSQL: every partition of `metric_points` and
/// `metric_series`, with their indexes and TOAST; then apart every partition of
/// `metric_chunks`, the compressed copy that range reads take compacted windows from.
async fn pharos_footprints(
    pool: &PgPool,
    points: usize,
    server_version: &str,
) -> anyhow::Result<Vec<Footprint>> {
    let sizes = |parent: &'static str| async move {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT, \
             COALESCE(SUM(pg_relation_size(c.oid)), 0)::BIGINT, \
             COALESCE(SUM(pg_indexes_size(c.oid)), 0)::BIGINT \
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = $1::regclass",
        )
        .bind(parent)
        .fetch_one(pool)
        .await
    };
    let (total, heap, indexes) = sizes("metric_points").await?;
    let series: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('metric_series')")
        .fetch_one(pool)
        .await?;
    let (chunk_total, chunk_heap, chunk_indexes) = sizes("metric_chunks").await?;
    let (data,): (i64,) =
        sqlx::query_as("SELECT COALESCE(SUM(length(data)), 0)::BIGINT FROM metric_chunks")
            .fetch_one(pool)
            .await?;
    let per_point = |bytes: i64| bytes as f64 / points.max(1) as f64;
    Ok(vec![
        Footprint {
            system: format!("Pharos on PostgreSQL {server_version}, points"),
            bytes: u64::try_from(total + series).unwrap_or(0),
            points,
            counted: format!(
                "metric_points partitions ({:.1} B/point rows, {:.1} B/point index) and metric_series",
                per_point(heap),
                per_point(indexes)
            ),
        },
        Footprint {
            system: format!("Pharos on PostgreSQL {server_version}, chunks"),
            bytes: u64::try_from(chunk_total).unwrap_or(0),
            points,
            counted: format!(
                "metric_chunks partitions ({:.2} B/point compressed data, {:.2} B/point rows \
                 and TOAST, {:.2} B/point index), beside the points",
                per_point(data),
                per_point(chunk_total - chunk_indexes - chunk_heap) + per_point(chunk_heap),
                per_point(chunk_indexes)
            ),
        },
    ])
}

/// Bytes allocated to the files under `dir`, as `du` counts them.
fn disk_usage(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let metadata = entry.metadata()?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                total += metadata.blocks() * 512;
            }
        }
    }
    Ok(total)
}

/// The version a binary reports (`--version`), else the Debian package's, else "?".
fn version_of(binary: &Path, package: &str) -> String {
    let reported = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .map(|output| {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            text
        })
        .and_then(|text| {
            let first = text.lines().next()?.to_owned();
            let version = first
                .split_whitespace()
                .skip_while(|word| *word != "version")
                .nth(1)?;
            Some(version.to_owned())
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

impl Report {
    fn print(&self, data: &DataSet, shape: &Shape, iterations: usize, postgres: &str) {
        let header = [
            "measurement",
            "pharos",
            "prometheus",
            "victoria-metrics",
            "sql floor",
            "pharos/prometheus",
            "pharos/sql",
            "aim",
        ];
        let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
        for (case, measured) in &self.cases {
            for (quantile, name) in [(0.50, "p50"), (0.99, "p99")] {
                // A system that did not run the case shows "-".
                let at = |system: usize| {
                    let latencies = &measured.latencies[system];
                    (!latencies.is_empty()).then(|| latencies.quantile(quantile))
                };
                let show = |system: usize| at(system).map_or("-".to_owned(), show_duration);
                let ratio = |a: usize, b: usize| match (at(a), at(b)) {
                    (Some(a), Some(b)) if !b.is_zero() => {
                        format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64())
                    }
                    _ => "-".to_owned(),
                };
                let aim = match case.prometheus_aim {
                    Some(aim) if name == "p99" => format!("<= {aim}x prometheus, <= 1.3x sql"),
                    None if name == "p99" => "<= 1.3x sql (Pharos alone)".to_owned(),
                    _ => "<= 1.3x sql".to_owned(),
                };
                lines.push(vec![
                    format!("{} {name}", case.label),
                    show(PHAROS),
                    show(PROMETHEUS),
                    show(VICTORIA),
                    show(SQL),
                    ratio(PHAROS, PROMETHEUS),
                    ratio(PHAROS, SQL),
                    aim,
                ]);
            }
        }
        print_markdown(
            "query: the same Prometheus HTTP API request to each system in alternating turns, \
             beside the SQL the query service issues for it",
            &lines,
        );

        let mut lines: Vec<Vec<String>> = vec![
            [
                "system",
                "bytes on disk",
                "points",
                "bytes per point",
                "counted",
            ]
            .iter()
            .map(|h| (*h).to_owned())
            .collect(),
        ];
        for footprint in &self.footprints {
            lines.push(vec![
                footprint.system.clone(),
                show_bytes(footprint.bytes),
                thousands(footprint.points),
                format!(
                    "{:.2}",
                    footprint.bytes as f64 / footprint.points.max(1) as f64
                ),
                footprint.counted.clone(),
            ]);
        }
        print_markdown(
            "bytes on disk per stored point, the same data set (Pharos before the history)",
            &lines,
        );

        println!("\nanswers (series in the answer of prometheus / victoria-metrics / pharos):");
        for (case, measured) in &self.cases {
            let [prometheus, victoria, pharos] = measured.series;
            let counts = match case.hourly {
                Some(_) => format!("- / - / {pharos}"),
                None => format!("{prometheus} / {victoria} / {pharos}"),
            };
            if measured.problems.is_empty() {
                println!("- {}: {counts}, {}", case.label, measured.agreement);
            } else {
                for problem in &measured.problems {
                    println!("- WARNING {}: {counts}: {problem}", case.label);
                }
            }
        }

        println!(
            "\nData set: {} series ({} counters `{COUNTER}`, {} gauges `{GAUGE}`, {} buckets \
             `{BUCKET}` with +Inf) in {JOBS} jobs, {} h at 15 s = {} points of whole numbers, \
             ending at the last whole minute that lies 7 minutes into a 10-minute chunk window; the same values in every system. Pharos: `pharos \
             serve --target ingest,query` on PostgreSQL {postgres}, loaded through gRPC \
             WriteMetrics in time order ({} points per request, {BATCHES_IN_FLIGHT} in flight), \
             then compacted into chunks by the store's own code as the service's 30 s job \
             would have (every whole hour into hour chunks, every earlier 10-minute window of \
             the last hour into window chunks; the last window, 7 minutes of points, the middle \
             of the 2 to 12 the service leaves, stays pending in every run and is read from \
             points), then VACUUM ANALYZE; series cache off (every \
             query issues the floor's statements), no background rollups or compaction while \
             timing; loaded with the metrics feed off, then restarted with it on and a head of \
             the last 2 hours (query.head.window = 2h), which answers query (d) from memory after \
             one statement (the feed position of the last batch of metric points): (d)'s SQL \
             floor is the store path the head replaces (series table, then the latest point of \
             each series); queries (a), (b) and (c) read the store up to where the head begins \
             (the last 2 hours, so the pending points too come from the head) and the rest from \
             the head, and their floor is the statements that issues (feed position and series at \
             once, then reads of points up to where the head begins, read from Pharos' /health once per \
             query). For query (e), \
             Pharos alone also holds the {} gauges' history, one point per 5 minutes back to \
             {} days (only query (e) reads it), rolled up with the rest before timing by the \
             store's own rollup code (the hours of the last ~2 h stay pending, summed from their \
             points as the service does); its floor is the service's statements for it (series, \
             then at once one read-only snapshot with pending hours, rollups and pending hours \
             from points, and the points at the 1 h instants). Prometheus {}: blocks from promtool \
             (max block 24 h, so 18 h blocks as compaction leaves them), no scrape jobs. \
             VictoriaMetrics {}: /api/v1/import/prometheus, force_flush, response cache off \
             (-search.disableCache). SQL floor: the query service's statements run with sqlx \
             ({SERIES_PER_READ} series per read, {PARALLEL_READS} at once, each one statement: \
             the pending windows, the chunks, not decoded, and the points of the pending \
             windows, as the service's) over the \
             range the query needs (start less 5 m): the series and hourly statements planned \
             for their parameters (unnamed statements), the reads of points prepared on a pool \
             like the store's pool of reads (generic plans, planned as each connection opens). \
             Each system answers the same HTTP GET \
             (reqwest, keep-alive), timed to the last byte of the answer; 2 warm-up turns, then \
             {iterations} turns of each system in the order prometheus, victoria-metrics, pharos, \
             sql (with {iterations} runs, p99 is about the slowest). Loads: {}. Compare within \
             one run.",
            thousands(data.series.len()),
            thousands(data.count(COUNTER)),
            data.count(GAUGE),
            data.count(BUCKET),
            shape.hours,
            thousands(data.points()),
            thousands(BATCH_POINTS),
            data.gauges.len(),
            shape.history_days,
            self.prometheus_version,
            self.victoria_version,
            self.loads.join("; ")
        );
    }
}
