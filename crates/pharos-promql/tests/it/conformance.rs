//! The conformance tests of the engine: the harness (`harness.rs`) checked on its own, then the
//! engine over memory compared with a real Prometheus 2.42 on the whole corpus.

use std::time::Duration;

use pharos_promql::{Labels, Point, Value};

use crate::dataset::Dataset;
use crate::harness::*;
use crate::prometheus::{Outcome, QueryError};

/// The corpus parses into enough unique expressions.
#[test]
fn corpus_is_well_formed() {
    let queries = corpus();
    assert!(
        queries.len() >= MIN_QUERIES,
        "queries.txt holds {} queries, expected at least {MIN_QUERIES}",
        queries.len()
    );
    let mut seen = std::collections::HashSet::new();
    for query in &queries {
        assert!(seen.insert(query), "queries.txt holds {query:?} twice");
    }
}

/// Sort detection sees only an outermost `sort`/`sort_desc`.
#[test]
fn outermost_sort_detection() {
    assert!(outermost_sort("sort(up)"));
    assert!(outermost_sort(" sort_desc (rate(x[5m])) "));
    assert!(outermost_sort(
        r#"sort(label_replace(up, "a", ")", "b", "("))"#
    ));
    assert!(!outermost_sort("sort(up) + sort(up)"));
    assert!(!outermost_sort("sum(sort(up))"));
    assert!(!outermost_sort("sorted_metric"));
}

/// The values comparison follows the compliance tester's tolerance.
#[test]
fn value_comparison() {
    assert!(same_value(f64::NAN, f64::NAN));
    assert!(same_value(f64::INFINITY, f64::INFINITY));
    assert!(!same_value(f64::INFINITY, f64::NEG_INFINITY));
    assert!(!same_value(f64::NAN, 0.0));
    assert!(same_value(1.0, 1.0 + 1e-9));
    assert!(!same_value(1.0, 1.001));
    assert!(same_value(0.0, 1e-12));
    assert!(same_value(1e20, 1e20 * (1.0 + 1e-7)));
}

/// The comparison flags each kind of difference, and only differences.
#[test]
fn comparison_reports_differences() {
    use pharos_promql::{Sample, Series};
    let labels = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
    let sample = |name: &str, v: f64| Sample {
        labels: labels(&[("__name__", name), ("job", "a")]),
        t: 1000,
        v,
    };
    let vector = |samples: Vec<Sample>| -> Outcome { Ok(Value::Vector(samples)) };
    let error = |class: &str| -> Outcome {
        Err(QueryError {
            class: class.to_owned(),
            message: "boom".to_owned(),
        })
    };
    let gist = |expected: &Outcome, actual: &Outcome, ordered: bool| {
        compare(expected, actual, ordered).unwrap_or_default()
    };

    let two = vector(vec![sample("x", 1.0), sample("y", 2.0)]);
    assert_eq!(gist(&two, &two, true), "");
    assert_eq!(gist(&error("bad_data"), &error("bad_data"), false), "");
    assert!(gist(&error("bad_data"), &error("execution"), false).contains("errorType differs"));
    assert!(gist(&error("bad_data"), &two, false).contains("prometheus fails with bad_data"));
    assert!(
        gist(
            &two,
            &vector(vec![sample("x", 1.0), sample("y", 2.5)]),
            false
        )
        .contains("y{job=\"a\"}: point #0: prometheus 2 at 1 ")
    );
    assert!(gist(&two, &vector(vec![sample("x", 1.0)]), false).contains("only prometheus has y"));
    let unnamed = Sample {
        labels: labels(&[("job", "a")]),
        t: 1000,
        v: 1.0,
    };
    assert!(
        gist(
            &vector(vec![sample("x", 1.0)]),
            &vector(vec![unnamed]),
            false
        )
        .contains("metric name differs: prometheus \"x\", engine none")
    );
    let reversed = vector(vec![sample("y", 2.0), sample("x", 1.0)]);
    assert_eq!(gist(&two, &reversed, false), "");
    assert!(gist(&two, &reversed, true).contains("order differs"));
    assert!(
        gist(&two, &Ok(Value::Scalar { t: 1000, v: 1.0 }), false).contains("value type differs")
    );

    let series = |points: Vec<(i64, f64)>| -> Outcome {
        Ok(Value::Matrix(vec![Series {
            labels: labels(&[("job", "a")]),
            points: points.into_iter().map(|(t, v)| Point::new(t, v)).collect(),
        }]))
    };
    let expected = series(vec![(0, 1.0), (60_000, f64::NAN), (120_000, 3.0)]);
    assert_eq!(gist(&expected, &expected, false), "");
    assert!(
        gist(
            &expected,
            &series(vec![(0, 1.0), (60_000, f64::NAN)]),
            false
        )
        .contains("prometheus has 3 points, engine 2")
    );
    assert!(
        gist(
            &expected,
            &series(vec![(0, 1.0), (60_000, 2.0), (120_000, 3.0)]),
            false
        )
        .contains("point #1: prometheus NaN")
    );
    assert!(
        gist(
            &expected,
            &series(vec![(0, 1.0), (61_000, f64::NAN), (120_000, 3.0)]),
            false
        )
        .contains("point #1")
    );
}

/// The engine answers every query of the corpus as Prometheus 2.42 does.
#[test]
fn engine_matches_prometheus() {
    // A runtime of our own, so that an engine evaluation that never returns (it runs on a
    // blocking thread) cannot keep the test from reporting: we shut down without waiting for it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime");
    let data = Dataset::build();
    let report = runtime.block_on(run(&data, engine_over_memory(&data)));
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Some(report) = report {
        assert_conforms(&report, "the engine over memory");
    }
}
