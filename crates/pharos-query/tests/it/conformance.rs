//! The PromQL conformance suite through the whole query path: the data set of
//! `pharos-promql`'s suite stored as the ingest service stores it (on SQLite and PostgreSQL),
//! every query of its corpus asked of the query service's Prometheus HTTP API and of a real
//! Prometheus 2.42 over the same samples, and the answers compared as in that suite (the
//! harness is the same file, `crates/pharos-promql/tests/it/harness.rs`). On PostgreSQL the
//! points are compacted into chunks first and on SQLite they are not, so the corpus checks
//! both read paths against Prometheus.

use std::collections::HashMap;

use pharos_query::{QueryModule, QuerySettings};
use pharos_store::signals::metrics::{NewSeries, PointRow, SeriesKey};
use pharos_store::testing::TestDatabase;
use pharos_store::{Backend, Store};
use pharos_test_support::TestServer;

use crate::dataset::Dataset;
use crate::harness::{assert_conforms, http_api, run_on, start_reference};

/// Stores every series of the data set, name and labels as the ingest service keys them.
async fn store_dataset(store: &Store, data: &Dataset) {
    let source = data.memory_source();
    let metrics = store.metrics();
    let mut wanted: Vec<NewSeries> = Vec::new();
    for series in source.series() {
        let name = series.labels.metric_name().unwrap_or_default().to_owned();
        let labels: Vec<(String, String)> = series
            .labels
            .iter()
            .filter(|label| label.name != pharos_promql::METRIC_NAME)
            .map(|label| (label.name.clone(), label.value.clone()))
            .collect();
        let labels_key = labels
            .iter()
            .map(|(n, v)| format!("{n}={v:?}"))
            .collect::<Vec<_>>()
            .join(",");
        wanted.push(NewSeries {
            key: SeriesKey { name, labels_key },
            labels,
        });
    }
    let ids: HashMap<SeriesKey, (i64, bool)> = metrics
        .create_series(&wanted)
        .await
        .expect("create the data set's series");
    let mut rows: Vec<PointRow> = Vec::new();
    for (series, new) in source.series().iter().zip(&wanted) {
        let id = ids[&new.key].0;
        rows.extend(series.points.iter().map(|point| PointRow {
            series_id: id,
            time_us: point.t * 1000,
            value: point.v,
        }));
    }
    let first = rows.iter().map(|row| row.time_us).min().unwrap_or(0);
    let last = rows.iter().map(|row| row.time_us).max().unwrap_or(0);
    metrics
        .ensure_partitions(first, last)
        .await
        .expect("partitions for the data set");
    for chunk in rows.chunks(10_000) {
        metrics
            .insert_points(chunk, None)
            .await
            .expect("store the data set's points");
    }
    if store.backend() == Backend::Postgres {
        let done = metrics
            .compact(i64::MAX / 2)
            .await
            .expect("compact the data set");
        assert!(
            done.windows > 0 && metrics.pending_windows().await.expect("pending").is_empty(),
            "every window of the data set is compacted"
        );
    }
}

pub(crate) async fn the_http_api_answers_the_corpus_as_prometheus_does(database: &TestDatabase) {
    let data = Dataset::build();
    let store = database.store().await;
    store_dataset(&store, &data).await;
    let server = TestServer::builder(store)
        .module(QueryModule::new(QuerySettings::default()))
        .start()
        .await;
    let Some(reference) = start_reference(&data).await else {
        return;
    };
    let report = run_on(&reference, &data, http_api(&server.http_url(""))).await;
    assert_conforms(&report, "the query service's HTTP API over the store");
    metadata_answers_match(reference.base_url(), &server.http_url("")).await;
    server.stop().await;
}

/// The series and label endpoints answer byte for byte what Prometheus answers (their `data`,
/// or their `errorType`), over the same data.
async fn metadata_answers_match(prometheus: &str, pharos: &str) {
    let start = crate::dataset::START_MS / 1000;
    let end = crate::dataset::END_MS / 1000;
    let requests = [
        "/api/v1/series?match[]=http_requests_total".to_owned(),
        "/api/v1/series?match[]=up&match[]=machine_cpu_cores%7Bjob%3D~%22node.*%22%7D".to_owned(),
        format!("/api/v1/series?match[]=%7B__name__%3D~%22node_.%2B%22%7D&start={start}&end={end}"),
        "/api/v1/labels".to_owned(),
        "/api/v1/labels?match[]=up".to_owned(),
        "/api/v1/label/__name__/values".to_owned(),
        "/api/v1/label/job/values".to_owned(),
        "/api/v1/label/instance/values?match[]=http_requests_total".to_owned(),
        "/api/v1/label/no_such_label/values".to_owned(),
        "/api/v1/series".to_owned(),
        "/api/v1/series?match[]=%7B__name__%3D~%22.*%22%7D".to_owned(),
        "/api/v1/series?match[]=rate(x%5B5m%5D)".to_owned(),
    ];
    let client = reqwest::Client::new();
    let mut differences = Vec::new();
    for request in &requests {
        let ask = |base: &str| {
            let url = format!("{base}{request}");
            let client = client.clone();
            async move {
                let response = client.get(&url).send().await.expect("the API answers");
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.expect("a JSON body");
                (status, body)
            }
        };
        let (expected_status, expected) = ask(prometheus).await;
        let (status, actual) = ask(pharos).await;
        let same = if expected["status"] == "success" {
            status == expected_status && actual["data"] == expected["data"]
        } else {
            status == expected_status && actual["errorType"] == expected["errorType"]
        };
        if !same {
            differences.push(format!(
                "{request}\n  prometheus {expected_status}: {expected}\n  pharos     {status}: {actual}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "metadata answers differ from Prometheus':\n{}",
        differences.join("\n")
    );
}
