//! Engine tests over memory, in the manner of Prometheus' `promqltest` cases: a few series
//! loaded at known times, a query, the exact answer. The conformance suite (`tests/it`) compares
//! hundreds of queries with a real Prometheus; these cover what it cannot load there
//! (staleness markers) and the engine's own limits and errors.

use crate::{Engine, EngineSettings, ErrorClass, Labels, MemorySource, Point, Value, stale_nan};

const MINUTE: i64 = 60_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// `name{labels}` with one point every `interval` ms from 0, valued by `values`.
fn series(source: &mut MemorySource, pairs: &[(&str, &str)], interval: i64, values: &[f64]) {
    source.add(
        labels(pairs),
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point::new(i as i64 * interval, *v)),
    );
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}

fn instant(source: &MemorySource, query: &str, t: i64) -> Value {
    block_on(Engine::default().instant(source, query, t))
        .unwrap_or_else(|error| panic!("{query}: {error}"))
        .value
}

fn vector_values(value: &Value) -> Vec<(String, f64)> {
    match value {
        Value::Vector(samples) => samples
            .iter()
            .map(|s| (s.labels.to_string(), s.v))
            .collect(),
        other => panic!("expected a vector, got {other:?}"),
    }
}

#[test]
fn an_instant_selector_looks_back_five_minutes_and_no_further() {
    let mut source = MemorySource::new();
    series(
        &mut source,
        &[("__name__", "up"), ("job", "a")],
        MINUTE,
        &[1.0, 2.0],
    );
    assert_eq!(
        vector_values(&instant(&source, "up", MINUTE)),
        [("up{job=\"a\"}".to_owned(), 2.0)]
    );
    // The last sample is at 1m; at 6m it is exactly 5 minutes old, still selected (2.42's
    // window is closed); a millisecond later it is gone.
    assert_eq!(vector_values(&instant(&source, "up", 6 * MINUTE)).len(), 1);
    assert!(vector_values(&instant(&source, "up", 6 * MINUTE + 1)).is_empty());
}

#[test]
fn a_staleness_marker_ends_a_series_at_once_and_a_real_nan_does_not() {
    let mut source = MemorySource::new();
    series(
        &mut source,
        &[("__name__", "stale"), ("job", "a")],
        MINUTE,
        &[1.0, stale_nan()],
    );
    series(
        &mut source,
        &[("__name__", "has_nan"), ("job", "a")],
        MINUTE,
        &[1.0, f64::NAN],
    );
    assert!(vector_values(&instant(&source, "stale", MINUTE + 1)).is_empty());
    let nan = vector_values(&instant(&source, "has_nan", MINUTE + 1));
    assert_eq!(nan.len(), 1);
    assert!(nan[0].1.is_nan());
    // Range functions skip the marker: count_over_time sees one point.
    assert_eq!(
        vector_values(&instant(&source, "count_over_time(stale[5m])", MINUTE)),
        [("{job=\"a\"}".to_owned(), 1.0)]
    );
}

#[test]
fn rate_extrapolates_and_handles_a_counter_reset() {
    let mut source = MemorySource::new();
    // 0, 10, 20, reset to 5, 15 at one-minute steps: increase 10+10+5+10 = 35 over 4 minutes.
    series(
        &mut source,
        &[("__name__", "requests_total")],
        MINUTE,
        &[0.0, 10.0, 20.0, 5.0, 15.0],
    );
    let value = vector_values(&instant(
        &source,
        "increase(requests_total[4m])",
        4 * MINUTE,
    ));
    assert_eq!(value.len(), 1);
    assert!((value[0].1 - 35.0).abs() < 1e-9, "{value:?}");
    let value = vector_values(&instant(&source, "rate(requests_total[4m])", 4 * MINUTE));
    assert!((value[0].1 - 35.0 / 240.0).abs() < 1e-12, "{value:?}");
}

#[test]
fn a_range_query_returns_one_point_per_step_with_the_step_times() {
    let mut source = MemorySource::new();
    series(
        &mut source,
        &[("__name__", "g")],
        MINUTE,
        &[1.0, 2.0, 3.0, 4.0],
    );
    let answer = block_on(Engine::default().range(&source, "g * 2", 0, 3 * MINUTE, MINUTE))
        .expect("the range query runs");
    let Value::Matrix(series) = answer.value else {
        panic!("a range query returns a matrix")
    };
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].labels, Labels::empty());
    assert_eq!(
        series[0].points,
        [
            Point::new(0, 2.0),
            Point::new(MINUTE, 4.0),
            Point::new(2 * MINUTE, 6.0),
            Point::new(3 * MINUTE, 8.0)
        ]
    );
}

#[test]
fn one_to_one_matching_with_duplicates_is_an_execution_error() {
    let mut source = MemorySource::new();
    series(
        &mut source,
        &[("__name__", "a"), ("job", "x"), ("i", "1")],
        MINUTE,
        &[1.0],
    );
    series(
        &mut source,
        &[("__name__", "a"), ("job", "x"), ("i", "2")],
        MINUTE,
        &[1.0],
    );
    series(
        &mut source,
        &[("__name__", "b"), ("job", "x")],
        MINUTE,
        &[1.0],
    );
    let error = block_on(Engine::default().instant(&source, "a + on(job) b", 0))
        .expect_err("two left series match one right series without group_left");
    assert_eq!(error.class(), ErrorClass::Execution);
    assert!(
        error
            .to_string()
            .contains("many-to-one matching must be explicit"),
        "{error}"
    );
    let joined = vector_values(&instant(&source, "a + on(job) group_left b", 0));
    assert_eq!(joined.len(), 2);
}

#[test]
fn bad_queries_are_bad_data_with_a_position() {
    let source = MemorySource::new();
    for (query, expected) in [
        ("sum(rate(x[5m])", "unparsable"),
        ("no_such_function(x)", "unknown function"),
        ("histogram_count(x)", "native histograms"),
        ("x{a=~\"(\"}", "bad regex"),
    ] {
        let error = block_on(Engine::default().instant(&source, query, 0)).expect_err(expected);
        assert_eq!(error.class(), ErrorClass::BadData, "{query}: {error}");
    }
    let error = block_on(Engine::default().instant(&source, "abs(x) + histogram_count(x)", 0))
        .expect_err("histogram_count is not evaluated");
    let position = error.position().expect("the position of the function");
    assert_eq!((position.line, position.column), (1, 10), "{error}");
}

#[test]
fn range_parameters_are_checked_before_anything_loads() {
    let source = MemorySource::new();
    let engine = Engine::default();
    let inverted =
        block_on(engine.range(&source, "x", 10 * MINUTE, 0, MINUTE)).expect_err("end before start");
    assert_eq!(inverted.class(), ErrorClass::BadData);
    let zero = block_on(engine.range(&source, "x", 0, MINUTE, 0)).expect_err("step 0");
    assert_eq!(zero.class(), ErrorClass::BadData);
    let many =
        block_on(engine.range(&source, "x", 0, 11_000 * 1000, 1000)).expect_err("too many points");
    assert!(
        many.to_string().contains("11,000") || many.to_string().contains("11000"),
        "{many}"
    );
}

#[test]
fn the_sample_limit_stops_a_query_that_loads_too_much() {
    let mut source = MemorySource::new();
    for i in 0..10 {
        series(
            &mut source,
            &[("__name__", "m"), ("i", &i.to_string())],
            1000,
            &[1.0; 100],
        );
    }
    let engine = Engine::new(EngineSettings {
        max_samples: 500,
        ..EngineSettings::default()
    });
    let error = block_on(engine.instant(&source, "sum(count_over_time(m[2m]))", 100_000))
        .expect_err("1,000 samples against a limit of 500");
    assert_eq!(error.class(), ErrorClass::Execution);
    assert!(error.to_string().contains("too many samples"), "{error}");
}

#[test]
fn raw_strings_keep_their_backslashes_as_prometheus_reads_them() {
    let mut source = MemorySource::new();
    series(
        &mut source,
        &[("__name__", "m"), ("port", "8080")],
        MINUTE,
        &[1.0],
    );
    match instant(&source, r"`a\d`", 0) {
        Value::String { s, .. } => assert_eq!(s, r"a\d"),
        other => panic!("expected a string, got {other:?}"),
    }
    let relabeled = vector_values(&instant(
        &source,
        r#"label_replace(m, "first", "$1", "port", `(\d)\d+`)"#,
        0,
    ));
    assert_eq!(
        relabeled,
        [("m{first=\"8\", port=\"8080\"}".to_owned(), 1.0)]
    );
}

/// Three days of one-minute points with an ordinary NaN, a staleness marker and a gap.
fn three_days() -> MemorySource {
    let mut source = MemorySource::new();
    let points = (0..3 * 24 * 60)
        .filter(|i| !(1000..1100).contains(i))
        .map(|i| {
            let v = match i {
                500 => f64::NAN,
                2000 => stale_nan(),
                _ => ((i * 37) % 101) as f64 - 50.0,
            };
            Point::new(i * MINUTE, v)
        });
    source.add(labels(&[("__name__", "m"), ("job", "a")]), points);
    source
}

#[test]
fn hourly_rollups_answer_whole_hour_windows_exactly_as_the_points_do() {
    let plain = three_days();
    let rollups = three_days().with_hourly_rollups();
    let engine = Engine::default();
    let hour = 60 * MINUTE;
    for query in [
        "sum_over_time(m[1h])",
        "count_over_time(m[3h])",
        "min_over_time(m[2h])",
        "max_over_time(m[1h] offset 1h)",
        "avg_over_time(m[6h])",
        "sum by (job) (avg_over_time(m[1h]))",
    ] {
        let run = |source: &MemorySource| {
            block_on(engine.range(source, query, 2 * hour, 70 * hour, hour))
                .unwrap_or_else(|error| panic!("{query}: {error}"))
        };
        let (expected, actual) = (run(&plain), run(&rollups));
        assert_eq!(expected.stats.hourly_buckets_loaded, 0);
        assert!(
            actual.stats.hourly_buckets_loaded > 0,
            "{query} read the rollups"
        );
        let (Value::Matrix(expected), Value::Matrix(actual)) = (expected.value, actual.value)
        else {
            panic!("range queries answer matrices");
        };
        assert_eq!(expected.len(), actual.len(), "{query}");
        for (e, a) in expected.iter().zip(&actual) {
            assert_eq!(e.labels, a.labels, "{query}");
            assert_eq!(e.points.len(), a.points.len(), "{query}");
            for (p, q) in e.points.iter().zip(&a.points) {
                let same = (p.v.is_nan() && q.v.is_nan())
                    || (p.v - q.v).abs() <= 1e-9 * p.v.abs().max(1.0);
                assert!(p.t == q.t && same, "{query} at {}: {} vs {}", p.t, p.v, q.v);
            }
        }
    }
    // Not on whole hours: the points are read.
    let answer = block_on(engine.range(
        &rollups,
        "sum_over_time(m[1h])",
        2 * hour + MINUTE,
        5 * hour,
        hour,
    ))
    .expect("unaligned query");
    assert_eq!(answer.stats.hourly_buckets_loaded, 0);
    let answer =
        block_on(engine.range(&rollups, "sum_over_time(m[90m])", 2 * hour, 5 * hour, hour))
            .expect("a range of 90 minutes");
    assert_eq!(answer.stats.hourly_buckets_loaded, 0);
}

#[test]
fn range_functions_spread_over_threads_answer_exactly_as_one_thread_does() {
    // 300 counters with resets and gaps, 1,000 points each: enough for four threads.
    let mut source = MemorySource::new();
    for i in 0..300_u32 {
        let values: Vec<f64> = (0..1_000_u32)
            .map(|j| f64::from((j * (i % 7 + 1)) % (400 + i) + i % 3))
            .collect();
        let (name, job) = (format!("s{i}"), format!("j{}", i % 4));
        series(
            &mut source,
            &[("__name__", "c_total"), ("job", &job), ("s", &name)],
            15_000,
            &values,
        );
    }
    let on_threads = |threads: usize| {
        Engine::new(EngineSettings {
            evaluation_threads: threads,
            ..EngineSettings::default()
        })
    };
    // Range functions the planner does not stream (inside a subquery, or with an argument
    // that is not a number), so that the evaluator spreads them over its threads.
    for query in [
        "max_over_time(rate(c_total[5m])[20m:1m])",
        "sum by (job) (predict_linear(c_total[3m], scalar(vector(60))))",
        "quantile_over_time(scalar(vector(0.3)), c_total[10m])",
    ] {
        let run = |threads| {
            block_on(on_threads(threads).range(&source, query, 0, 250 * MINUTE, MINUTE))
                .unwrap_or_else(|error| panic!("{query}: {error}"))
                .value
        };
        let (Value::Matrix(one), Value::Matrix(four)) = (run(1), run(4)) else {
            panic!("range queries answer matrices");
        };
        assert!(!one.is_empty(), "{query} has an answer");
        assert_eq!(one.len(), four.len(), "{query}");
        for (a, b) in one.iter().zip(&four) {
            assert_eq!(a.labels, b.labels, "{query}");
            let bits = |points: &[Point]| -> Vec<(i64, u64)> {
                points.iter().map(|p| (p.t, p.v.to_bits())).collect()
            };
            assert_eq!(bits(&a.points), bits(&b.points), "{query} {}", a.labels);
        }
    }
}

/// A source that hands its series to the engine one at a time, last first, as a store reading
/// in parts may hand them over in any order.
struct OneByOne(MemorySource);

#[async_trait::async_trait]
impl crate::SeriesSource for OneByOne {
    async fn select(
        &self,
        selection: &crate::Selection,
    ) -> Result<Vec<crate::Series>, crate::SourceError> {
        self.0.select(selection).await
    }

    async fn select_into(
        &self,
        selection: &crate::Selection,
        batches: std::sync::Arc<dyn crate::SeriesBatches>,
    ) -> Result<(), crate::SourceError> {
        for series in self.0.select(selection).await?.into_iter().rev() {
            if !batches.take(vec![series]) {
                break;
            }
        }
        Ok(())
    }
}

#[test]
fn range_functions_evaluated_as_batches_arrive_answer_as_the_evaluator_does() {
    // Counters with resets and gaps under two names (so that dropping the name merges them),
    // and a staleness marker, handed over one series at a time in reverse order.
    let mut source = MemorySource::new();
    for i in 0..40_u32 {
        let mut values: Vec<f64> = (0..400_u32)
            .map(|j| f64::from((j * (i % 5 + 1)) % (90 + i) + i % 3))
            .collect();
        values[200 + i as usize] = stale_nan();
        let name = if i < 20 { "a_total" } else { "b_total" };
        let (job, s) = (format!("j{}", i % 3), format!("s{}", i % 20));
        series(
            &mut source,
            &[("__name__", name), ("job", &job), ("s", &s)],
            15_000,
            &values,
        );
    }
    let batches = OneByOne(source.clone());
    let bits = |value: Value| -> Vec<(String, Vec<(i64, u64)>)> {
        let Value::Matrix(series) = value else {
            panic!("range queries answer matrices");
        };
        series
            .into_iter()
            .map(|s| {
                let points = s.points.iter().map(|p| (p.t, p.v.to_bits())).collect();
                (s.labels.to_string(), points)
            })
            .collect()
    };
    let run = |source: &dyn crate::SeriesSource, query: &str| {
        block_on(Engine::default().range(source, query, 0, 100 * MINUTE, MINUTE))
            .map(|answer| bits(answer.value))
    };
    // Each streamed query (a function of a selector with number arguments) beside the same
    // function made unstreamable by an argument computed from `vector()`: the same bits, from
    // the whole answer at once and from one series at a time.
    for (streamed, evaluated) in [
        (
            "quantile_over_time(0.3, {__name__=~\"a_total|b_total\", s=\"s1\"}[10m])",
            "quantile_over_time(scalar(vector(0.3)), {__name__=~\"a_total|b_total\", s=\"s1\"}[10m])",
        ),
        (
            "sum by (job) (predict_linear(a_total[5m] offset 3m, 600))",
            "sum by (job) (predict_linear(a_total[5m] offset 3m, scalar(vector(600))))",
        ),
        (
            "holt_winters(b_total[10m], 0.5, 0.1)",
            "holt_winters(b_total[10m], scalar(vector(0.5)), 0.1)",
        ),
    ] {
        let expected =
            run(&source, evaluated).unwrap_or_else(|error| panic!("{evaluated}: {error}"));
        assert!(!expected.is_empty(), "{evaluated} has an answer");
        for (name, from) in [
            ("memory", &source as &dyn crate::SeriesSource),
            ("one by one", &batches),
        ] {
            let answer = run(from, streamed).unwrap_or_else(|error| panic!("{streamed}: {error}"));
            assert_eq!(answer, expected, "{streamed} from {name}");
        }
    }
    // Functions without arguments: the same from one series at a time as from all at once
    // (the sums add in the series' order whatever order they arrive in).
    for query in [
        "sum by (job) (rate(a_total[5m]))",
        "last_over_time(b_total[2m])",
    ] {
        let whole = run(&source, query).unwrap_or_else(|error| panic!("{query}: {error}"));
        assert!(!whole.is_empty(), "{query} has an answer");
        assert_eq!(run(&batches, query).ok(), Some(whole), "{query}");
    }
    let last = run(&batches, "last_over_time(b_total[2m])").expect("last_over_time");
    assert!(
        last.iter()
            .all(|(labels, _)| labels.starts_with("b_total{")),
        "{last:?}"
    );
    // Two names that become one label set: the same error as the evaluator's.
    let mut alike = source.clone();
    // a_total{job="j1", s="s1"} is there already.
    series(
        &mut alike,
        &[("__name__", "c_total"), ("job", "j1"), ("s", "s1")],
        15_000,
        &[1.0; 400],
    );
    let error = run(
        &OneByOne(alike),
        "rate({__name__=~\"a_total|c_total\", s=\"s1\"}[5m])",
    )
    .expect_err("a_total and c_total of s1 share a label set once named alike");
    assert!(error.to_string().contains("same labelset"), "{error}");
    // The sample limit stops the batches.
    let limited = Engine::new(EngineSettings {
        max_samples: 1_000,
        ..EngineSettings::default()
    });
    let error = block_on(limited.range(&batches, "rate(a_total[5m])", 0, 100 * MINUTE, MINUTE))
        .expect_err("8,000 samples against a limit of 1,000");
    assert!(error.to_string().contains("too many samples"), "{error}");
}
