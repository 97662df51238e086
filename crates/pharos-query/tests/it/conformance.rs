//! The PromQL conformance suite through the whole query path: the data set of
//! `pharos-promql`'s suite stored as the ingest service stores it (on SQLite and PostgreSQL),
//! every query of its corpus asked of the query service's Prometheus HTTP API and of a real
//! Prometheus 2.42 over the same samples, and the answers compared as in that suite (the
//! harness is the same file, `crates/pharos-promql/tests/it/harness.rs`).

use std::collections::HashMap;

use pharos_query::{QueryModule, QuerySettings};
use pharos_store::Store;
use pharos_store::signals::metrics::{NewSeries, PointRow, SeriesKey};
use pharos_store::testing::TestDatabase;
use pharos_test_support::TestServer;

use crate::dataset::Dataset;
use crate::harness::{assert_conforms, http_api, run};

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
}

pub(crate) async fn the_http_api_answers_the_corpus_as_prometheus_does(database: &TestDatabase) {
    let data = Dataset::build();
    let store = database.store().await;
    store_dataset(&store, &data).await;
    let server = TestServer::builder(store)
        .module(QueryModule::new(QuerySettings::default()))
        .start()
        .await;
    let report = run(&data, http_api(&server.http_url(""))).await;
    if let Some(report) = report {
        assert_conforms(&report, "the query service's HTTP API over the store");
    }
    server.stop().await;
}
