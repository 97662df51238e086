//! The conformance harness: every expression of `queries.txt`, evaluated as instant queries at
//! [`INSTANT_TIMES`] and as range queries over [`RANGES`], by a side under test (the engine over
//! a [`MemorySource`] here; the query service's HTTP API over the store in `pharos-query`,
//! which includes this file) and by Prometheus over the same samples; the answers are compared
//! as the Prometheus compliance tester compares them:
//! - both sides fail with the same `errorType` (messages are shown, not compared), or both
//!   answer a value of the same type;
//! - vectors and matrices hold the same series by label set, in any order, except for an
//!   instant query whose outermost function is `sort` or `sort_desc`, where the values must also
//!   come in the same order (ties may come in either order);
//! - the same timestamps, and values equal when both are NaN, both the same infinity, or within
//!   a relative 1e-6 (an absolute 1e-9 near zero).
//!
//! Every difference is collected and the report printed at the end, grouped by query, before
//! the test fails with their count.

// Shared with `pharos-query`'s tests, which use only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use pharos_promql::{Engine, EngineSettings, Labels, MemorySource, Point, Value};

use crate::dataset::{
    Dataset, END_MS, GAP_START_MS, HOUR_MS, MINUTE_MS, START_MS, format_seconds_offset,
};
use crate::prometheus::{Outcome, PrometheusApi, QueryError, ReferencePrometheus};

/// The corpus: one expression per line; blank lines and `#` comments are skipped.
pub(crate) const QUERIES: &str = include_str!("queries.txt");

/// The fewest queries the corpus may hold; a guard against an accidentally truncated file.
pub(crate) const MIN_QUERIES: usize = 170;

/// Instant query times, each with why it was chosen.
pub(crate) const INSTANT_TIMES: [(&str, i64); 5] = [
    (
        "inside the data, between scrapes",
        START_MS + HOUR_MS + 7_000,
    ),
    ("at the first sample", START_MS),
    ("at the last sample", END_MS),
    (
        "3m after flaky_requests_total's gap starts",
        GAP_START_MS + 3 * MINUTE_MS,
    ),
    ("2m30s after the data ends", END_MS + 150_000),
];

/// Range queries: a name, start, end and step (milliseconds).
pub(crate) const RANGES: [(&str, i64, i64, i64); 3] = [
    (
        "whole span and 5m beyond, step 60s",
        START_MS,
        END_MS + 5 * MINUTE_MS,
        60_000,
    ),
    ("whole span, step 37s", START_MS, END_MS, 37_000),
    (
        "+35m..+65m (gap and NaN), step 15s",
        START_MS + 35 * MINUTE_MS,
        START_MS + 65 * MINUTE_MS,
        15_000,
    ),
];

/// How long the engine gets for one evaluation before it counts as hung.
pub(crate) const ENGINE_TIMEOUT: Duration = Duration::from_secs(60);

/// How many comparisons run at once (each asks Prometheus over HTTP and the engine on a
/// blocking thread).
pub(crate) const CONCURRENCY: usize = 4;

/// The most differences listed for one comparison; the rest are counted.
pub(crate) const DETAILS_PER_COMPARISON: usize = 6;

/// The expressions of `queries.txt`.
pub(crate) fn corpus() -> Vec<&'static str> {
    QUERIES
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// One way of evaluating a query.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Eval {
    Instant {
        why: &'static str,
        time: i64,
    },
    Range {
        why: &'static str,
        start: i64,
        end: i64,
        step: i64,
    },
}

impl Eval {
    fn all() -> Vec<Eval> {
        let instants = INSTANT_TIMES
            .iter()
            .map(|&(why, time)| Eval::Instant { why, time });
        let ranges = RANGES.iter().map(|&(why, start, end, step)| Eval::Range {
            why,
            start,
            end,
            step,
        });
        instants.chain(ranges).collect()
    }

    /// A short name for the summary: `instant@+1h00m07s`, `range/60s`.
    fn short(&self) -> String {
        match *self {
            Eval::Instant { time, .. } => format!("instant@{}", format_seconds_offset(time)),
            Eval::Range { step, .. } => format!("range/{}s", step / 1000),
        }
    }

    fn describe(&self) -> String {
        match *self {
            Eval::Instant { why, time } => {
                format!("instant query at {} ({why})", format_time(time))
            }
            Eval::Range {
                why,
                start,
                end,
                step,
            } => format!(
                "range query {} .. {} step {}s ({why})",
                format_time(start),
                format_time(end),
                step as f64 / 1000.0
            ),
        }
    }
}

/// One comparison that differed.
pub(crate) struct Mismatch {
    pub(crate) query: &'static str,
    pub(crate) eval: Eval,
    pub(crate) detail: String,
}

/// What the suite did and found.
pub(crate) struct Report {
    pub(crate) queries: usize,
    pub(crate) comparisons: usize,
    /// Comparisons where both sides failed with the same errorType.
    pub(crate) agreed_errors: usize,
    /// Comparisons where both sides answered an empty vector or matrix.
    pub(crate) agreed_empty: usize,
    pub(crate) series_loaded: usize,
    pub(crate) samples_loaded: usize,
    pub(crate) mismatches: Vec<Mismatch>,
}

impl Report {
    fn queries_with_mismatches(&self) -> usize {
        let mut queries: Vec<&str> = self.mismatches.iter().map(|m| m.query).collect();
        queries.dedup();
        queries.len()
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nPromQL conformance against Prometheus 2.42: {} queries, {} comparisons over {} series ({} samples)",
            self.queries, self.comparisons, self.series_loaded, self.samples_loaded
        );
        let _ = writeln!(
            out,
            "  {} agree ({} as the same error, {} as an empty result), {} differ in {} queries",
            self.comparisons - self.mismatches.len(),
            self.agreed_errors,
            self.agreed_empty,
            self.mismatches.len(),
            self.queries_with_mismatches()
        );
        if self.mismatches.is_empty() {
            return out;
        }
        // Details, grouped by query in corpus order (the mismatches are in that order already).
        let mut by_query: Vec<(&str, Vec<&Mismatch>)> = Vec::new();
        for mismatch in &self.mismatches {
            match by_query.last_mut() {
                Some((query, list)) if *query == mismatch.query => list.push(mismatch),
                _ => by_query.push((mismatch.query, vec![mismatch])),
            }
        }
        let _ = writeln!(out, "\n---------------- mismatches ----------------");
        for (index, (query, list)) in by_query.iter().enumerate() {
            let _ = writeln!(out, "\n#{} {query}", index + 1);
            for mismatch in list {
                let _ = writeln!(out, "  * {}", mismatch.eval.describe());
                for line in mismatch.detail.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
        let _ = writeln!(out, "\n---------------- summary ----------------");
        let _ = writeln!(
            out,
            "{} of {} queries differ (evaluations: instants at {}, ranges at 60s/37s/15s):",
            by_query.len(),
            self.queries,
            INSTANT_TIMES
                .iter()
                .map(|&(_, time)| format_seconds_offset(time))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for (index, (query, list)) in by_query.iter().enumerate() {
            let evals: Vec<String> = list.iter().map(|m| m.eval.short()).collect();
            // The gist: the first concrete difference, else the headline.
            let detail = &list[0].detail;
            let first_line = detail
                .lines()
                .find_map(|line| line.strip_prefix("- "))
                .or_else(|| detail.lines().next())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "#{:<3} {query}\n      in {}: {first_line}",
                index + 1,
                evals.join(", "),
            );
        }
        out
    }
}

/// The side under test: answers a query the way the Prometheus API does.
pub(crate) type Ask =
    Arc<dyn Fn(&'static str, Eval) -> futures::future::BoxFuture<'static, Outcome> + Send + Sync>;

/// Starts Prometheus over `data`, checks it holds exactly the data set, then asks both it and
/// `ask` every query of the corpus. `None` when Prometheus is not installed (outside CI).
pub(crate) async fn run(data: &Dataset, ask: Ask) -> Option<Report> {
    let reference = start_reference(data).await?;
    Some(run_on(&reference, data, ask).await)
}

/// A Prometheus over `data`, checked to hold exactly the data set; `None` when Prometheus is
/// not installed (outside CI).
pub(crate) async fn start_reference(data: &Dataset) -> Option<ReferencePrometheus> {
    let reference = ReferencePrometheus::start(&data.openmetrics()).await?;
    verify_reference_data(&reference, data).await;
    Some(reference)
}

/// Asks `reference` and `ask` every query of the corpus and compares the answers.
pub(crate) async fn run_on(reference: &ReferencePrometheus, data: &Dataset, ask: Ask) -> Report {
    let queries = corpus();
    let evals = Eval::all();
    let jobs: Vec<(&'static str, Eval)> = queries
        .iter()
        .flat_map(|&query| evals.iter().map(move |&eval| (query, eval)))
        .collect();
    let comparisons = jobs.len();
    let results: Vec<(&'static str, Eval, Outcome, Outcome)> = futures::stream::iter(jobs)
        .map(|(query, eval)| {
            let ask = Arc::clone(&ask);
            async move {
                let expected = ask_prometheus(reference, query, eval).await;
                let actual = ask(query, eval).await;
                (query, eval, expected, actual)
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;

    let mut mismatches = Vec::new();
    let mut agreed_errors = 0;
    let mut agreed_empty = 0;
    for (query, eval, expected, actual) in results {
        let ordered = matches!(eval, Eval::Instant { .. }) && outermost_sort(query);
        match compare(&expected, &actual, ordered) {
            Some(detail) => mismatches.push(Mismatch {
                query,
                eval,
                detail,
            }),
            None if expected.is_err() => agreed_errors += 1,
            None if expected.as_ref().is_ok_and(is_empty) => agreed_empty += 1,
            None => {}
        }
    }
    Report {
        queries: queries.len(),
        comparisons,
        agreed_errors,
        agreed_empty,
        series_loaded: data.series_count(),
        samples_loaded: data.sample_count(),
        mismatches,
    }
}

/// Prints the report and fails when any comparison differed; `side` names what was compared.
pub(crate) fn assert_conforms(report: &Report, side: &str) {
    println!("{side}:{}", report.render());
    assert!(
        report.mismatches.is_empty(),
        "{} of {} comparisons of {side} differ from Prometheus 2.42, in {} of {} queries (the report is above)",
        report.mismatches.len(),
        report.comparisons,
        report.queries_with_mismatches(),
        report.queries,
    );
}

/// The engine over the data set in memory, as the side under test.
pub(crate) fn engine_over_memory(data: &Dataset) -> Ask {
    let source = Arc::new(data.memory_source());
    let engine = Engine::new(EngineSettings::default());
    Arc::new(move |query, eval| {
        Box::pin(ask_engine(engine.clone(), Arc::clone(&source), query, eval))
    })
}

/// The answers of a Prometheus-compatible HTTP API (`base_url` without `/api/v1`), as the
/// side under test.
pub(crate) fn http_api(base_url: &str) -> Ask {
    let api = PrometheusApi::new(base_url);
    Arc::new(move |query, eval| {
        let api = api.clone();
        Box::pin(async move {
            match eval {
                Eval::Instant { time, .. } => api.query(query, time).await,
                Eval::Range {
                    start, end, step, ..
                } => api.query_range(query, start, end, step).await,
            }
        })
    })
}

/// Asks Prometheus for every raw sample and panics unless they are exactly the data set's:
/// if promtool or the TSDB changed anything, no comparison would mean a thing.
pub(crate) async fn verify_reference_data(reference: &ReferencePrometheus, data: &Dataset) {
    let everything = reference
        .query(r#"{__name__=~".+"}[3h]"#, END_MS)
        .await
        .unwrap_or_else(|error| panic!("Prometheus could not list its samples: {error:?}"));
    let Value::Matrix(stored) = everything else {
        panic!("Prometheus answered a range selector with {everything:?}");
    };
    let stored: BTreeMap<Labels, Vec<Point>> = stored
        .into_iter()
        .map(|series| (series.labels, series.points))
        .collect();
    let source = data.memory_source();
    let mut problems = Vec::new();
    if stored.len() != source.series().len() {
        problems.push(format!(
            "Prometheus holds {} series, the data set {}",
            stored.len(),
            source.series().len()
        ));
    }
    for series in source.series() {
        match stored.get(&series.labels) {
            None => problems.push(format!("{} is missing", series.labels)),
            Some(points) => {
                let same = points.len() == series.points.len()
                    && points.iter().zip(&series.points).all(|(a, b)| {
                        a.t == b.t
                            && (a.v.to_bits() == b.v.to_bits() || (a.v.is_nan() && b.v.is_nan()))
                    });
                if !same {
                    problems.push(format!(
                        "{} differs: {} points stored, {} in the data set",
                        series.labels,
                        points.len(),
                        series.points.len()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "Prometheus does not hold the data set exactly:\n{}\nits log:\n{}",
        problems.join("\n"),
        reference.log()
    );
}

pub(crate) async fn ask_prometheus(
    reference: &ReferencePrometheus,
    query: &str,
    eval: Eval,
) -> Outcome {
    match eval {
        Eval::Instant { time, .. } => reference.query(query, time).await,
        Eval::Range {
            start, end, step, ..
        } => reference.query_range(query, start, end, step).await,
    }
}

/// Evaluates on a blocking thread, so that a panic becomes a reported difference (class
/// `engine panic`) and a hang one that times out (class `engine timeout`) instead of ending
/// the suite.
pub(crate) async fn ask_engine(
    engine: Engine,
    source: Arc<MemorySource>,
    query: &'static str,
    eval: Eval,
) -> Outcome {
    let handle = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking(move || {
        handle.block_on(async {
            let answer = match eval {
                Eval::Instant { time, .. } => engine.instant(source.as_ref(), query, time).await,
                Eval::Range {
                    start, end, step, ..
                } => engine.range(source.as_ref(), query, start, end, step).await,
            };
            answer
                .map(|answer| answer.value)
                .map_err(|error| QueryError {
                    class: error.class().as_str().to_owned(),
                    message: error.to_string(),
                })
        })
    });
    match tokio::time::timeout(ENGINE_TIMEOUT, task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(join_error)) => Err(QueryError {
            class: "engine panic".to_owned(),
            message: panic_message(join_error),
        }),
        Err(_) => Err(QueryError {
            class: "engine timeout".to_owned(),
            message: format!("no answer within {ENGINE_TIMEOUT:?}"),
        }),
    }
}

pub(crate) fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned()),
        Err(error) => error.to_string(),
    }
}

/// Whether the whole expression is one `sort(...)` or `sort_desc(...)` call.
pub(crate) fn outermost_sort(query: &str) -> bool {
    let query = query.trim();
    let Some(rest) = query
        .strip_prefix("sort_desc")
        .or_else(|| query.strip_prefix("sort"))
    else {
        return false;
    };
    let rest = rest.trim_start();
    if !rest.starts_with('(') {
        return false;
    }
    // The parenthesis opened after the name must close at the very end.
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (index, c) in rest.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return index == rest.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether two sample values are the same, within the compliance tester's tolerance.
pub(crate) fn same_value(expected: f64, actual: f64) -> bool {
    if expected.is_nan() || actual.is_nan() {
        return expected.is_nan() && actual.is_nan();
    }
    if expected.is_infinite() || actual.is_infinite() {
        return expected == actual;
    }
    let difference = (expected - actual).abs();
    difference <= 1e-9 || difference <= 1e-6 * expected.abs().max(actual.abs())
}

/// `None` when the answers agree, else a description of how they differ (first line: the
/// gist; then up to [`DETAILS_PER_COMPARISON`] differences).
pub(crate) fn compare(expected: &Outcome, actual: &Outcome, ordered: bool) -> Option<String> {
    match (expected, actual) {
        (Err(expected), Err(actual)) => (expected.class != actual.class).then(|| {
            format!(
                "errorType differs: prometheus {} ({}), engine {} ({})",
                expected.class, expected.message, actual.class, actual.message
            )
        }),
        (Err(expected), Ok(actual)) => Some(format!(
            "prometheus fails with {}: {}\nengine answers {}",
            expected.class,
            expected.message,
            describe_value(actual)
        )),
        (Ok(expected), Err(actual)) => Some(format!(
            "engine fails with {}: {}\nprometheus answers {}",
            actual.class,
            actual.message,
            describe_value(expected)
        )),
        (Ok(expected), Ok(actual)) => compare_values(expected, actual, ordered),
    }
}

pub(crate) fn compare_values(expected: &Value, actual: &Value, ordered: bool) -> Option<String> {
    let mut differences = Differences::default();
    match (expected, actual) {
        (Value::Scalar { t: et, v: ev }, Value::Scalar { t: at, v: av }) => {
            if et != at || !same_value(*ev, *av) {
                differences.push(format!(
                    "scalar: prometheus {} at {}, engine {} at {}",
                    format_value(*ev),
                    format_time(*et),
                    format_value(*av),
                    format_time(*at)
                ));
            }
        }
        (Value::String { t: et, s: es }, Value::String { t: at, s: as_ }) => {
            if et != at || es != as_ {
                differences.push(format!(
                    "string: prometheus {es:?} at {}, engine {as_:?} at {}",
                    format_time(*et),
                    format_time(*at)
                ));
            }
        }
        (Value::Vector(expected), Value::Vector(actual)) => {
            let expected_points: Vec<(Labels, Vec<Point>)> = expected
                .iter()
                .map(|s| (s.labels.clone(), vec![Point::new(s.t, s.v)]))
                .collect();
            let actual_points: Vec<(Labels, Vec<Point>)> = actual
                .iter()
                .map(|s| (s.labels.clone(), vec![Point::new(s.t, s.v)]))
                .collect();
            compare_series(&expected_points, &actual_points, &mut differences);
            if ordered && differences.is_empty() {
                let position = expected
                    .iter()
                    .zip(actual)
                    .position(|(e, a)| !same_value(e.v, a.v));
                if let Some(index) = position {
                    differences.push(format!(
                        "order differs (sort): position {index}: prometheus {} = {}, engine {} = {}",
                        expected[index].labels,
                        format_value(expected[index].v),
                        actual[index].labels,
                        format_value(actual[index].v)
                    ));
                }
            }
        }
        (Value::Matrix(expected), Value::Matrix(actual)) => {
            let expected: Vec<(Labels, Vec<Point>)> = expected
                .iter()
                .map(|s| (s.labels.clone(), s.points.clone()))
                .collect();
            let actual: Vec<(Labels, Vec<Point>)> = actual
                .iter()
                .map(|s| (s.labels.clone(), s.points.clone()))
                .collect();
            compare_series(&expected, &actual, &mut differences);
        }
        _ => differences.push(format!(
            "value type differs: prometheus answers {}, engine {}",
            describe_value(expected),
            describe_value(actual)
        )),
    }
    differences.finish(expected, actual)
}

/// The differences found in one comparison.
#[derive(Default)]
pub(crate) struct Differences {
    listed: Vec<String>,
    more: usize,
}

impl Differences {
    fn push(&mut self, difference: String) {
        if self.listed.len() < DETAILS_PER_COMPARISON {
            self.listed.push(difference);
        } else {
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    fn finish(self, expected: &Value, actual: &Value) -> Option<String> {
        if self.listed.is_empty() {
            return None;
        }
        let mut text = format!(
            "prometheus answers {}, engine {}",
            describe_value(expected),
            describe_value(actual)
        );
        for difference in &self.listed {
            text.push_str("\n- ");
            text.push_str(difference);
        }
        if self.more > 0 {
            let _ = write!(text, "\n- ... and {} more differences", self.more);
        }
        Some(text)
    }
}

/// Compares two sets of series by label set (order ignored): series on one side only, series
/// twice on one side, then per series the first differing point and how many differ.
pub(crate) fn compare_series(
    expected: &[(Labels, Vec<Point>)],
    actual: &[(Labels, Vec<Point>)],
    differences: &mut Differences,
) {
    let expected_by_labels = index_by_labels(expected, "prometheus", differences);
    let actual_by_labels = index_by_labels(actual, "engine", differences);
    let mut only_actual: Vec<(&Labels, &[Point])> = actual_by_labels
        .iter()
        .filter(|(labels, _)| !expected_by_labels.contains_key(*labels))
        .map(|(labels, points)| (*labels, *points))
        .collect();
    for (labels, points) in &expected_by_labels {
        if actual_by_labels.contains_key(labels) {
            continue;
        }
        // A series on each side that differ only in the metric name: one line says so.
        let unnamed = labels.without_metric_name();
        let twin = only_actual
            .iter()
            .position(|(other, _)| other.without_metric_name() == unnamed);
        match twin {
            Some(position) => {
                let (twin_labels, twin_points) = only_actual.remove(position);
                let mut line = format!(
                    "{unnamed}: metric name differs: prometheus {}, engine {}",
                    describe_name(labels),
                    describe_name(twin_labels)
                );
                if let Some(difference) = compare_points(points, twin_points) {
                    line.push_str("; and ");
                    line.push_str(&difference);
                }
                differences.push(line);
            }
            None => differences.push(format!(
                "only prometheus has {labels}: {}",
                describe_points(points)
            )),
        }
    }
    for (labels, points) in only_actual {
        differences.push(format!(
            "only the engine has {labels}: {}",
            describe_points(points)
        ));
    }
    for (labels, expected) in &expected_by_labels {
        let Some(actual) = actual_by_labels.get(labels) else {
            continue;
        };
        if let Some(difference) = compare_points(expected, actual) {
            differences.push(format!("{labels}: {difference}"));
        }
    }
}

/// `"up"`, or `none` when the series has no metric name.
pub(crate) fn describe_name(labels: &Labels) -> String {
    labels
        .metric_name()
        .map_or_else(|| "none".to_owned(), |name| format!("{name:?}"))
}

/// Whether an answer is an empty vector or matrix.
pub(crate) fn is_empty(value: &Value) -> bool {
    match value {
        Value::Vector(samples) => samples.is_empty(),
        Value::Matrix(series) => series.is_empty(),
        Value::Scalar { .. } | Value::String { .. } => false,
    }
}

pub(crate) fn index_by_labels<'a>(
    series: &'a [(Labels, Vec<Point>)],
    side: &str,
    differences: &mut Differences,
) -> BTreeMap<&'a Labels, &'a [Point]> {
    let mut index = BTreeMap::new();
    for (labels, points) in series {
        if index.insert(labels, points.as_slice()).is_some() {
            differences.push(format!("{side} returns {labels} more than once"));
        }
    }
    index
}

/// The first point where the series differ, and how many do.
pub(crate) fn compare_points(expected: &[Point], actual: &[Point]) -> Option<String> {
    let same = |e: &Point, a: &Point| e.t == a.t && same_value(e.v, a.v);
    let first = expected
        .iter()
        .zip(actual)
        .position(|(e, a)| !same(e, a))
        .or_else(|| (expected.len() != actual.len()).then(|| expected.len().min(actual.len())))?;
    let differing = expected
        .iter()
        .zip(actual)
        .filter(|(e, a)| !same(e, a))
        .count()
        + expected.len().abs_diff(actual.len());
    let show = |points: &[Point]| {
        points
            .get(first)
            .map(|p| format!("{} at {}", format_value(p.v), format_time(p.t)))
            .unwrap_or_else(|| "no point".to_owned())
    };
    let mut text = format!(
        "point #{first}: prometheus {}, engine {}",
        show(expected),
        show(actual)
    );
    if expected.len() != actual.len() {
        let _ = write!(
            text,
            " (prometheus has {} points, engine {})",
            expected.len(),
            actual.len()
        );
    }
    if differing > 1 {
        let _ = write!(text, "; {differing} points differ in all");
    }
    Some(text)
}

pub(crate) fn describe_value(value: &Value) -> String {
    match value {
        Value::Scalar { t, v } => format!("scalar {} at {}", format_value(*v), format_time(*t)),
        Value::String { t, s } => format!("string {s:?} at {}", format_time(*t)),
        Value::Vector(samples) => format!("a vector of {} samples", samples.len()),
        Value::Matrix(series) => format!(
            "a matrix of {} series ({} points)",
            series.len(),
            series.iter().map(|s| s.points.len()).sum::<usize>()
        ),
    }
}

pub(crate) fn describe_points(points: &[Point]) -> String {
    match points {
        [] => "no points".to_owned(),
        [point] => format!("{} at {}", format_value(point.v), format_time(point.t)),
        [first, .., last] => format!(
            "{} points, {} at {} .. {} at {}",
            points.len(),
            format_value(first.v),
            format_time(first.t),
            format_value(last.v),
            format_time(last.t)
        ),
    }
}

/// A value with every digit that tells it apart: `0.1`, `-18.5`, `NaN`, `+Inf`.
pub(crate) fn format_value(value: f64) -> String {
    pharos_promql::format_float(value)
}

/// A time as the API's seconds, with its offset from the data's start: `1700003607
/// (+1h00m07s)`.
pub(crate) fn format_time(ms: i64) -> String {
    let seconds = if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, (ms % 1000).abs())
    };
    format!("{seconds} ({})", format_seconds_offset(ms))
}
