//! The data set both sides of the conformance suite query: two hours of made-up scrapes at 15 s
//! (plus one series at 37 s), described once in memory and then rendered as OpenMetrics text for
//! `promtool tsdb create-blocks-from openmetrics` and loaded into a [`MemorySource`] for the
//! engine, so that both hold the very same float64 samples.
//!
//! Everything is deterministic: values come from formulas and from a fixed-seed splitmix64.
//! What the data holds, and which PromQL corners it is there for:
//! - `http_requests_total{job, instance, method, status}`: counters with resets (one series
//!   resets once, one twice), one series that starts an hour late (`job="web", status="404"`)
//!   and one that stops after 50 minutes (`job="batch"`);
//! - `node_memory_bytes`, `temperature_celsius`: gauges, with negative and fractional values,
//!   a NaN sample (`location="lab"` at +60 min) and a late series (`instance="host-d:9100"`);
//! - `request_duration_seconds_{bucket,sum,count}`: classic histograms for three jobs, one
//!   of which resets (`job="web"` at +62.5 min);
//! - `flaky_requests_total`: a counter with a 20-minute gap (no sample between +40 min and
//!   +60 min 15 s) that restarts from zero after it;
//! - `queue_depth{queue="slow"}`: scraped every 37 s from +5 s (`queue="fast"` every 15 s);
//! - `app_build_version`: a few repeated values for `count_values`;
//! - `up`, `machine_cpu_cores`, `node_uname_info`, `node_cpu_seconds_total`: series sharing
//!   `job`/`instance` labels for one-to-one, many-to-one (`group_left`) and many-to-many
//!   matching; `up{job="api", instance="host-a:9100"}` and `up{job="node",
//!   instance="host-a:9100"}` differ only in `job`.

use std::fmt::Write as _;

use pharos_promql::{Labels, MemorySource, Point};

/// The first sample time: 2023-11-14T22:13:20Z, in milliseconds.
pub const START_MS: i64 = 1_700_000_000_000;
/// The scrape interval of almost every series.
pub const SCRAPE_MS: i64 = 15_000;
/// The last sample time: two hours after the first.
pub const END_MS: i64 = START_MS + 2 * HOUR_MS;
/// The number of 15 s scrapes from [`START_MS`] to [`END_MS`], both included.
pub const SCRAPES: usize = ((END_MS - START_MS) / SCRAPE_MS) as usize + 1;
/// Milliseconds in a minute and an hour.
pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// The time of the last sample of `flaky_requests_total` before its gap.
pub const GAP_START_MS: i64 = START_MS + 40 * MINUTE_MS;

/// How the OpenMetrics text declares a family. PromQL ignores metric types; the declaration
/// only has to be one promtool accepts for the family's sample names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Unknown,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Unknown => "unknown",
        }
    }
}

/// One series: its labels without the metric name, and its samples (milliseconds, value),
/// oldest first.
#[derive(Debug, Clone)]
pub struct SeriesData {
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(i64, f64)>,
}

/// The series of one metric name.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub series: Vec<SeriesData>,
}

/// The whole data set.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub families: Vec<Family>,
}

impl Dataset {
    /// Builds the data set; the same every time.
    pub fn build() -> Self {
        let mut data = Dataset::default();
        let mut rng = Rng(0x5048_4152_4f53); // "PHAROS"
        http_requests(&mut data, &mut rng);
        node_metrics(&mut data, &mut rng);
        temperatures(&mut data);
        histograms(&mut data, &mut rng);
        flaky(&mut data, &mut rng);
        queues(&mut data, &mut rng);
        inventory(&mut data);
        data
    }

    pub fn series_count(&self) -> usize {
        self.families.iter().map(|family| family.series.len()).sum()
    }

    pub fn sample_count(&self) -> usize {
        self.families
            .iter()
            .flat_map(|family| &family.series)
            .map(|series| series.samples.len())
            .sum()
    }

    /// The data as OpenMetrics text: one `# TYPE` line per family, its series one after the
    /// other, timestamps in seconds, ending with `# EOF`.
    pub fn openmetrics(&self) -> String {
        let mut text = String::new();
        for family in &self.families {
            let _ = writeln!(text, "# TYPE {} {}", family.name, family.kind.as_str());
            for series in &family.series {
                let mut head = family.name.clone();
                if !series.labels.is_empty() {
                    head.push('{');
                    for (index, (name, value)) in series.labels.iter().enumerate() {
                        if index > 0 {
                            head.push(',');
                        }
                        let _ = write!(head, "{name}=\"{}\"", escape_label_value(value));
                    }
                    head.push('}');
                }
                for &(t, v) in &series.samples {
                    let _ = writeln!(text, "{head} {} {}", format_value(v), format_seconds(t));
                }
            }
        }
        text.push_str("# EOF\n");
        text
    }

    /// The data as the engine's in-memory source.
    pub fn memory_source(&self) -> MemorySource {
        let mut source = MemorySource::new();
        for family in &self.families {
            for series in &family.series {
                let labels = Labels::from_pairs(
                    std::iter::once(("__name__", family.name.as_str())).chain(
                        series
                            .labels
                            .iter()
                            .map(|(name, value)| (name.as_str(), value.as_str())),
                    ),
                );
                source.add(
                    labels,
                    series.samples.iter().map(|&(t, v)| Point::new(t, v)),
                );
            }
        }
        source
    }

    /// Adds a series to family `name` (created with `kind` on first use).
    fn add(&mut self, name: &str, kind: Kind, labels: &[(&str, &str)], samples: Vec<(i64, f64)>) {
        let series = SeriesData {
            labels: labels
                .iter()
                .map(|&(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            samples,
        };
        match self.families.iter_mut().find(|family| family.name == name) {
            Some(family) => family.series.push(series),
            None => self.families.push(Family {
                name: name.to_owned(),
                kind,
                series: vec![series],
            }),
        }
    }
}

/// The time of 15 s scrape `index`.
pub fn scrape_time(index: usize) -> i64 {
    START_MS + index as i64 * SCRAPE_MS
}

/// A time as its offset from [`START_MS`], for reports: `+0s`, `+43m00s`, `+1h00m07s`,
/// `-1m30.500s`.
pub fn format_seconds_offset(ms: i64) -> String {
    let offset = ms - START_MS;
    let sign = if offset < 0 { '-' } else { '+' };
    let total = offset.unsigned_abs();
    let (hours, minutes) = (total / 3_600_000, total / 60_000 % 60);
    let (seconds, millis) = (total / 1000 % 60, total % 1000);
    let fraction = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}")
    };
    if hours > 0 {
        format!("{sign}{hours}h{minutes:02}m{seconds:02}{fraction}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds:02}{fraction}s")
    } else {
        format!("{sign}{seconds}{fraction}s")
    }
}

/// A float as OpenMetrics writes it: Rust's shortest round-trip decimal (never an exponent),
/// which Go's `strconv.ParseFloat` reads back to the same float64.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

/// Milliseconds as OpenMetrics seconds.
fn format_seconds(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

fn escape_label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Rounds to `decimals` decimal places, so that the values read well in mismatch reports.
fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// splitmix64 with a fixed seed: tiny, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An integer in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A float in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A counter over scrapes `first..=last` that starts at `initial`, grows by `base +
/// below(spread)` per scrape and restarts from zero at each scrape of `resets`.
fn counter(
    rng: &mut Rng,
    scrapes: std::ops::RangeInclusive<usize>,
    initial: f64,
    base: u64,
    spread: u64,
    resets: &[usize],
) -> Vec<(i64, f64)> {
    let mut value = initial;
    scrapes
        .map(|index| {
            if resets.contains(&index) {
                value = 0.0;
            }
            value += (base + rng.below(spread)) as f64;
            (scrape_time(index), value)
        })
        .collect()
}

fn http_requests(data: &mut Dataset, rng: &mut Rng) {
    const NAME: &str = "http_requests_total";
    let last = SCRAPES - 1;
    for instance in ["host-a:9100", "host-b:9100"] {
        for method in ["GET", "POST"] {
            for status in ["200", "500"] {
                let (base, spread) = match (method, status) {
                    ("GET", "200") => (10, 11),
                    ("POST", "200") => (3, 6),
                    _ => (0, 3),
                };
                let resets: &[usize] = match (instance, method, status) {
                    ("host-b:9100", "GET", "200") => &[160],
                    ("host-a:9100", "POST", "500") => &[100, 300],
                    _ => &[],
                };
                let initial = (1000 * (base + 1) + rng.below(500)) as f64;
                let samples = counter(rng, 0..=last, initial, base, spread, resets);
                data.add(
                    NAME,
                    Kind::Unknown,
                    &[
                        ("job", "api"),
                        ("instance", instance),
                        ("method", method),
                        ("status", status),
                    ],
                    samples,
                );
            }
        }
    }
    let web = [
        ("job", "web"),
        ("instance", "host-c:8080"),
        ("method", "GET"),
    ];
    let samples = counter(rng, 0..=last, 52_000.0, 20, 15, &[]);
    data.add(
        NAME,
        Kind::Unknown,
        &[web[0], web[1], web[2], ("status", "200")],
        samples,
    );
    // Starts an hour late, at scrape 240.
    let samples = counter(rng, 240..=last, 0.0, 0, 4, &[]);
    data.add(
        NAME,
        Kind::Unknown,
        &[web[0], web[1], web[2], ("status", "404")],
        samples,
    );
    // Stops after 50 minutes, at scrape 200.
    let samples = counter(rng, 0..=200, 7.0, 1, 9, &[]);
    data.add(
        NAME,
        Kind::Unknown,
        &[
            ("job", "batch"),
            ("instance", "host-d:9100"),
            ("method", "POST"),
            ("status", "200"),
        ],
        samples,
    );
}

fn node_metrics(data: &mut Dataset, rng: &mut Rng) {
    let last = SCRAPES - 1;
    for (instance, gib, first) in [
        ("host-a:9100", 8u64, 0usize),
        ("host-b:9100", 16, 0),
        ("host-c:9100", 4, 0),
        // A host that joins 75 minutes in.
        ("host-d:9100", 32, 300),
    ] {
        let mut used = (gib << 30) as f64 * 0.4;
        let samples = (first..=last)
            .map(|index| {
                // A random walk in whole kibibytes.
                let drift = rng.below(2049) as f64 - 1000.0;
                used = (used + drift * 1024.0 * 64.0).max(0.0);
                (scrape_time(index), used)
            })
            .collect();
        data.add(
            "node_memory_bytes",
            Kind::Gauge,
            &[("job", "node"), ("instance", instance)],
            samples,
        );
    }
    for instance in ["host-a:9100", "host-b:9100"] {
        for cpu in ["0", "1"] {
            for mode in ["idle", "user"] {
                let share = if mode == "idle" { 0.8 } else { 0.15 };
                let mut seconds = 123_456.0 * share;
                let samples = (0..=last)
                    .map(|index| {
                        seconds = round_to(seconds + 15.0 * share * (0.5 + rng.unit()), 2);
                        (scrape_time(index), seconds)
                    })
                    .collect();
                data.add(
                    "node_cpu_seconds_total",
                    Kind::Unknown,
                    &[
                        ("job", "node"),
                        ("instance", instance),
                        ("cpu", cpu),
                        ("mode", mode),
                    ],
                    samples,
                );
            }
        }
    }
}

fn temperatures(data: &mut Dataset) {
    let last = SCRAPES - 1;
    // Each location's temperature as a function of the scrape index.
    type Curve = fn(f64) -> f64;
    let locations: [(&str, Curve); 4] = [
        ("freezer", |x| -18.5 + 0.75 * (x / 13.0).sin()),
        ("outside", |x| 3.0 * (x / 40.0).sin() - 0.5),
        ("server_room", |x| 22.25 + ((x / 7.0).floor() % 4.0) * 0.25),
        ("lab", |x| 20.1 + 1.5 * (x / 25.0).cos()),
    ];
    for (location, curve) in locations {
        let samples = (0..=last)
            .map(|index| {
                let value = if location == "lab" && index == 240 {
                    f64::NAN
                } else {
                    round_to(curve(index as f64), 3)
                };
                (scrape_time(index), value)
            })
            .collect();
        data.add(
            "temperature_celsius",
            Kind::Gauge,
            &[("location", location)],
            samples,
        );
    }
}

fn histograms(data: &mut Dataset, rng: &mut Rng) {
    const BOUNDS: [f64; 7] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, f64::INFINITY];
    const LE: [&str; 7] = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
    let last = SCRAPES - 1;
    /// One job's histogram: how many observations a scrape brings (about), the weight of each
    /// bucket (an observation falls in bucket i with probability weights[i] / total) and the
    /// scrape at which the process restarts.
    struct Job {
        job: &'static str,
        instance: &'static str,
        per_scrape: u64,
        weights: [u64; 7],
        reset: Option<usize>,
    }
    let jobs = [
        Job {
            job: "api",
            instance: "host-a:9100",
            per_scrape: 20,
            weights: [30, 25, 20, 12, 8, 4, 1],
            reset: None,
        },
        Job {
            job: "web",
            instance: "host-c:8080",
            per_scrape: 8,
            weights: [5, 10, 25, 30, 20, 8, 2],
            reset: Some(250),
        },
        Job {
            job: "worker",
            instance: "host-e:9100",
            per_scrape: 3,
            weights: [0, 2, 8, 20, 35, 25, 10],
            reset: None,
        },
    ];
    for Job {
        job,
        instance,
        per_scrape,
        weights,
        reset,
    } in jobs
    {
        let total_weight: u64 = weights.iter().sum();
        let mut cumulative = [0.0f64; 7];
        let mut sum = 0.0f64;
        let mut buckets: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 7];
        let mut sums = Vec::new();
        let mut counts = Vec::new();
        for index in 0..=last {
            if reset == Some(index) {
                cumulative = [0.0; 7];
                sum = 0.0;
            }
            let observations = per_scrape / 2 + rng.below(per_scrape + 1);
            for _ in 0..observations {
                let mut pick = rng.below(total_weight);
                let bucket = weights
                    .iter()
                    .position(|&weight| {
                        if pick < weight {
                            true
                        } else {
                            pick -= weight;
                            false
                        }
                    })
                    .unwrap_or(6);
                let lower = if bucket == 0 { 0.0 } else { BOUNDS[bucket - 1] };
                let upper = if bucket == 6 { 5.0 } else { BOUNDS[bucket] };
                sum = round_to(sum + lower + (upper - lower) * rng.unit(), 3);
                for count in &mut cumulative[bucket..] {
                    *count += 1.0;
                }
            }
            let t = scrape_time(index);
            for (series, count) in buckets.iter_mut().zip(cumulative) {
                series.push((t, count));
            }
            sums.push((t, sum));
            counts.push((t, cumulative[6]));
        }
        for (le, samples) in LE.iter().zip(buckets) {
            data.add(
                "request_duration_seconds_bucket",
                Kind::Unknown,
                &[("job", job), ("instance", instance), ("le", le)],
                samples,
            );
        }
        let labels = [("job", job), ("instance", instance)];
        data.add("request_duration_seconds_sum", Kind::Unknown, &labels, sums);
        data.add(
            "request_duration_seconds_count",
            Kind::Unknown,
            &labels,
            counts,
        );
    }
}

fn flaky(data: &mut Dataset, rng: &mut Rng) {
    let before = counter(rng, 0..=160, 500.0, 2, 5, &[]);
    // The process comes back after the gap, restarted from zero.
    let after = counter(rng, 241..=SCRAPES - 1, 0.0, 2, 5, &[]);
    data.add(
        "flaky_requests_total",
        Kind::Unknown,
        &[("job", "flaky"), ("instance", "host-g:9100")],
        before.into_iter().chain(after).collect(),
    );
}

fn queues(data: &mut Dataset, rng: &mut Rng) {
    // Every 37 s from +5 s: never on the 15 s grid for long.
    let mut slow = Vec::new();
    let mut t = START_MS + 5_000;
    while t <= END_MS {
        slow.push((t, rng.below(50) as f64));
        t += 37_000;
    }
    data.add(
        "queue_depth",
        Kind::Gauge,
        &[("job", "worker"), ("queue", "slow")],
        slow,
    );
    let fast = (0..SCRAPES)
        .map(|index| (scrape_time(index), (rng.below(400) as f64) / 4.0))
        .collect();
    data.add(
        "queue_depth",
        Kind::Gauge,
        &[("job", "worker"), ("queue", "fast")],
        fast,
    );
}

/// `up`, the per-machine facts and the build versions: mostly constant series, for joins,
/// `count_values` and `changes`.
fn inventory(data: &mut Dataset) {
    let last = SCRAPES - 1;
    let constant = |value: f64, scrapes: std::ops::RangeInclusive<usize>| -> Vec<(i64, f64)> {
        scrapes.map(|index| (scrape_time(index), value)).collect()
    };
    for (job, instance) in [
        ("api", "host-a:9100"),
        ("web", "host-c:8080"),
        ("node", "host-a:9100"),
        ("node", "host-b:9100"),
        ("node", "host-c:9100"),
    ] {
        data.add(
            "up",
            Kind::Gauge,
            &[("job", job), ("instance", instance)],
            constant(1.0, 0..=last),
        );
    }
    // Down for ten minutes, from +25 min.
    let flapping = (0..=last)
        .map(|index| {
            let down = (100..140).contains(&index);
            (scrape_time(index), if down { 0.0 } else { 1.0 })
        })
        .collect();
    data.add(
        "up",
        Kind::Gauge,
        &[("job", "api"), ("instance", "host-b:9100")],
        flapping,
    );
    // The batch job's target goes away with its counter.
    data.add(
        "up",
        Kind::Gauge,
        &[("job", "batch"), ("instance", "host-d:9100")],
        constant(1.0, 0..=200),
    );

    for (instance, cores) in [
        ("host-a:9100", 4.0),
        ("host-b:9100", 8.0),
        ("host-c:9100", 2.0),
    ] {
        data.add(
            "machine_cpu_cores",
            Kind::Gauge,
            &[("job", "node"), ("instance", instance)],
            constant(cores, 0..=last),
        );
    }
    for (instance, release) in [
        ("host-a:9100", "6.1.0-13-amd64"),
        ("host-b:9100", "6.1.0-13-amd64"),
        ("host-c:9100", "5.10.0-26-amd64"),
    ] {
        data.add(
            "node_uname_info",
            Kind::Gauge,
            &[
                ("job", "node"),
                ("instance", instance),
                ("sysname", "Linux"),
                ("release", release),
            ],
            constant(1.0, 0..=last),
        );
    }

    for (instance, version) in [
        ("host-a:9100", 3.0),
        ("host-b:9100", 3.0),
        ("host-c:8080", 2.5),
    ] {
        data.add(
            "app_build_version",
            Kind::Gauge,
            &[("job", "api"), ("instance", instance)],
            constant(version, 0..=last),
        );
    }
    // Upgraded from 3 to 4 at +75 min.
    let upgraded = (0..=last)
        .map(|index| (scrape_time(index), if index < 300 { 3.0 } else { 4.0 }))
        .collect();
    data.add(
        "app_build_version",
        Kind::Gauge,
        &[("job", "api"), ("instance", "host-d:9100")],
        upgraded,
    );
}
