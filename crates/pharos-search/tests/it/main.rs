//! The search service end to end over real gRPC on loopback, on SQLite and PostgreSQL alike:
//! exact and approximate answers against ground truth, filters, payloads, restarts, concurrent
//! writes and searches, training and every refused input. The replica part runs two services
//! on one PostgreSQL database.

mod replicas;
mod snapshots;
mod support;

use std::collections::HashSet;
use std::time::Duration;

use pharos_proto::search::v1 as pb;
use pharos_search::SearchSettings;
use pharos_store::testing::TestDatabase;
use snapshots::restart_reads_the_snapshot_and_replays_later_changes;
use support::*;
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic_types::StatusExt as _;

pharos_store::backend_tests!(
    flat_search_is_exact_and_returns_payloads,
    recall_at_10_for_each_kind_and_metric,
    filters_return_only_matching_vectors,
    batch_and_multi_index_search,
    bad_inputs_get_clear_statuses,
    restart_keeps_every_vector_and_the_same_answers,
    concurrent_upserts_and_searches,
    train_streams_progress_and_describe_reports,
    restart_reads_the_snapshot_and_replays_later_changes,
);

async fn flat_search_is_exact_and_returns_payloads(database: &TestDatabase) {
    let server = start_server(database.store().await).await;
    let mut client = server.client().await;
    for metric in [pb::Metric::InnerProduct, pb::Metric::L2, pb::Metric::Cosine] {
        let name = format!("flat-{metric:?}").to_lowercase();
        client
            .create_index(create(&name, 12, metric, pb::IndexKind::Flat))
            .await
            .expect("create");
        let base = clustered(600, 12, 1);
        let vectors = base
            .iter()
            .enumerate()
            .map(|(id, values)| vector(id as u64, values, &[("id", &id.to_string())]))
            .collect();
        let written = client
            .upsert(pb::UpsertRequest {
                index: name.clone(),
                vectors,
            })
            .await
            .expect("upsert")
            .into_inner();
        assert_eq!(written.upserted, 600);
        for query in clustered(20, 12, 2) {
            let hits = client
                .search(search(&name, &query, 10))
                .await
                .expect("search")
                .into_inner()
                .hits;
            assert_eq!(
                ids(&hits),
                exact(metric, &base, &query, 10, |_| true),
                "{name}"
            );
            for hit in &hits {
                assert_eq!(hit.payload.get("id"), Some(&hit.id.to_string()));
            }
        }
    }
    // Upsert replaces vector and payload; delete removes.
    let name = "flat-innerproduct";
    client
        .upsert(pb::UpsertRequest {
            index: name.into(),
            vectors: vec![vector(7, &[9.0; 12], &[("tag", "moved")])],
        })
        .await
        .expect("replace");
    let hits = client
        .search(search(name, &[9.0; 12], 1))
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(hits[0].id, 7);
    assert_eq!(
        hits[0].payload.get("tag").map(String::as_str),
        Some("moved")
    );
    assert_eq!(
        hits[0].payload.get("id"),
        None,
        "the payload is replaced, not merged"
    );
    let deleted = client
        .delete(pb::DeleteRequest {
            index: name.into(),
            ids: vec![7, 8, 1_000_000],
        })
        .await
        .expect("delete")
        .into_inner();
    assert_eq!(deleted.deleted, 2);
    let hits = client
        .search(search(name, &[9.0; 12], 600))
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(hits.len(), 598);
    assert!(!hits.iter().any(|hit| hit.id == 7 || hit.id == 8));
    let listed = client
        .list_indexes(pb::ListIndexesRequest {})
        .await
        .expect("list")
        .into_inner()
        .indexes;
    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed.iter().find(|i| i.name == name).map(|i| i.count),
        Some(598)
    );
    client
        .drop_index(pb::DropIndexRequest { name: name.into() })
        .await
        .expect("drop");
    let status = client
        .search(search(name, &[9.0; 12], 1))
        .await
        .expect_err("dropped");
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await;
}

async fn recall_at_10_for_each_kind_and_metric(database: &TestDatabase) {
    let server = start_server(database.store().await).await;
    let mut client = server.client().await;
    let dimension = 16;
    let base = clustered(4_000, dimension, 11);
    let queries = clustered(100, dimension, 12);
    for metric in [pb::Metric::InnerProduct, pb::Metric::L2, pb::Metric::Cosine] {
        let ivf = format!("ivf-{metric:?}").to_lowercase();
        let hnsw = format!("hnsw-{metric:?}").to_lowercase();
        client
            .create_index(ivf_pq(&ivf, dimension as u32, metric, 16, 4))
            .await
            .expect("create");
        client
            .create_index(create(&hnsw, dimension as u32, metric, pb::IndexKind::Hnsw))
            .await
            .expect("create");
        upsert_all(&mut client, &ivf, &base).await;
        upsert_all(&mut client, &hnsw, &base).await;
        // 4,000 vectors is past the automatic training threshold.
        until_trained(&server, &ivf).await;
        for (name, floor) in [(&ivf, 0.9), (&hnsw, 0.95)] {
            let mut found = 0;
            for query in &queries {
                let truth = exact(metric, &base, query, 10, |_| true);
                let hits = client
                    .search(tuned_search(name, query, 10))
                    .await
                    .expect("search")
                    .into_inner()
                    .hits;
                found += hits.iter().filter(|hit| truth.contains(&hit.id)).count();
            }
            let recall = found as f64 / (queries.len() * 10) as f64;
            assert!(recall >= floor, "{name}: recall@10 {recall}");
        }
    }
    server.stop().await;
}

async fn filters_return_only_matching_vectors(database: &TestDatabase) {
    let server = start_server(database.store().await).await;
    let mut client = server.client().await;
    let colours = ["red", "green", "blue"];
    let shapes = ["circle", "square", "star", "line"];
    let base = clustered(3_000, 8, 5);
    for (name, request) in [
        (
            "flat",
            create("flat", 8, pb::Metric::L2, pb::IndexKind::Flat),
        ),
        ("ivf", ivf_pq("ivf", 8, pb::Metric::L2, 8, 4)),
        (
            "hnsw",
            create("hnsw", 8, pb::Metric::L2, pb::IndexKind::Hnsw),
        ),
    ] {
        client.create_index(request).await.expect("create");
        for (block, chunk) in base.chunks(1000).enumerate() {
            let vectors = chunk
                .iter()
                .enumerate()
                .map(|(offset, values)| {
                    let id = block * 1000 + offset;
                    vector(
                        id as u64,
                        values,
                        &[("colour", colours[id % 3]), ("shape", shapes[id % 4])],
                    )
                })
                .collect();
            client
                .upsert(pb::UpsertRequest {
                    index: name.into(),
                    vectors,
                })
                .await
                .expect("upsert");
        }
    }
    until_trained(&server, "ivf").await;
    let filter = pb::Filter {
        conditions: vec![
            pb::Condition {
                key: "colour".into(),
                values: vec!["red".into()],
            },
            pb::Condition {
                key: "shape".into(),
                values: vec!["circle".into(), "star".into()],
            },
        ],
    };
    let matches = |id: u64| id.is_multiple_of(3) && id.is_multiple_of(2);
    for query in clustered(20, 8, 6) {
        for name in ["flat", "ivf", "hnsw"] {
            let mut request = search(name, &query, 10);
            request.filter = Some(filter.clone());
            request.nprobe = 8;
            request.rerank = 20;
            let hits = client
                .search(request)
                .await
                .expect("search")
                .into_inner()
                .hits;
            assert_eq!(hits.len(), 10, "{name}");
            for hit in &hits {
                assert!(
                    matches(hit.id),
                    "{name}: {} does not match the filter",
                    hit.id
                );
                assert_eq!(hit.payload.get("colour").map(String::as_str), Some("red"));
            }
            if name == "flat" {
                assert_eq!(
                    ids(&hits),
                    exact(pb::Metric::L2, &base, &query, 10, matches)
                );
            }
        }
    }
    // A key no vector has matches nothing.
    let mut request = search("flat", &base[0], 10);
    request.filter = Some(pb::Filter {
        conditions: vec![pb::Condition {
            key: "size".into(),
            values: vec!["big".into()],
        }],
    });
    assert!(
        client
            .search(request)
            .await
            .expect("search")
            .into_inner()
            .hits
            .is_empty()
    );
    server.stop().await;
}

async fn batch_and_multi_index_search(database: &TestDatabase) {
    let server = start_server(database.store().await).await;
    let mut client = server.client().await;
    let base = clustered(2_000, 24, 7);
    for name in ["one", "two"] {
        client
            .create_index(create(
                name,
                24,
                pb::Metric::InnerProduct,
                pb::IndexKind::Flat,
            ))
            .await
            .expect("create");
    }
    upsert_all(&mut client, "one", &base).await;
    upsert_all(&mut client, "two", &base[..500]).await;
    let queries = clustered(40, 24, 8);
    let batch = client
        .batch_search(pb::BatchSearchRequest {
            index: "one".into(),
            queries: queries
                .iter()
                .map(|q| pb::Query { vector: q.clone() })
                .collect(),
            k: 5,
            ..pb::BatchSearchRequest::default()
        })
        .await
        .expect("batch")
        .into_inner()
        .results;
    assert_eq!(batch.len(), 40);
    for (query, result) in queries.iter().zip(&batch) {
        let single = client
            .search(search("one", query, 5))
            .await
            .expect("search")
            .into_inner()
            .hits;
        assert_eq!(ids(&result.hits), ids(&single));
    }
    let multi = client
        .multi_index_search(pb::MultiIndexSearchRequest {
            indexes: vec!["two".into(), "one".into()],
            vector: queries[0].clone(),
            k: 3,
            ..pb::MultiIndexSearchRequest::default()
        })
        .await
        .expect("multi")
        .into_inner()
        .results;
    assert_eq!(multi.len(), 2);
    assert_eq!(multi[0].index, "two");
    assert_eq!(
        ids(&multi[0].hits),
        exact(pb::Metric::InnerProduct, &base, &queries[0], 3, |id| id
            < 500)
    );
    assert_eq!(ids(&multi[1].hits), ids(&batch[0].hits[..3]));
    let status = client
        .multi_index_search(pb::MultiIndexSearchRequest {
            indexes: vec!["one".into(), "missing".into()],
            vector: queries[0].clone(),
            ..pb::MultiIndexSearchRequest::default()
        })
        .await
        .expect_err("unknown index");
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await;
}

/// The field violations of an INVALID_ARGUMENT status.
fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|request| {
            request
                .field_violations
                .iter()
                .map(|v| (v.field.clone(), v.description.clone()))
                .collect()
        })
        .unwrap_or_default()
}

async fn bad_inputs_get_clear_statuses(database: &TestDatabase) {
    let server = start_server(database.store().await).await;
    let mut client = server.client().await;
    client
        .create_index(create("docs", 4, pb::Metric::Cosine, pb::IndexKind::Flat))
        .await
        .expect("create");

    let status = client
        .create_index(create("docs", 4, pb::Metric::Cosine, pb::IndexKind::Flat))
        .await
        .expect_err("exists");
    assert_eq!(status.code(), Code::AlreadyExists);

    let status = client
        .upsert(pb::UpsertRequest {
            index: "docs".into(),
            vectors: vec![vector(1, &[1.0, 2.0, 3.0], &[])],
        })
        .await
        .expect_err("wrong dimension");
    let found = violations(&status);
    assert_eq!(found[0].0, "vectors[0].values");
    assert!(
        found[0].1.contains("has 3 values") && found[0].1.contains("dimension 4"),
        "{found:?}"
    );

    let status = client
        .upsert(pb::UpsertRequest {
            index: "docs".into(),
            vectors: vec![
                vector(1, &[1.0, f32::NAN, 0.0, 0.0], &[]),
                vector(2, &[0.0; 4], &[]),
            ],
        })
        .await
        .expect_err("NaN and a zero cosine vector");
    let found = violations(&status);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].1.contains("not a finite number"), "{found:?}");
    assert!(found[1].1.contains("zero vector"), "{found:?}");

    let status = client
        .search(search("docs", &[1.0; 5], 10))
        .await
        .expect_err("wrong query dimension");
    assert!(violations(&status)[0].1.contains("dimension 4"));
    let status = client
        .search(search("docs", &[1.0; 4], 1001))
        .await
        .expect_err("k too large");
    assert_eq!(violations(&status)[0].0, "k");
    let status = client
        .search(search("nope", &[1.0; 4], 1))
        .await
        .expect_err("unknown index");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("\"nope\""));

    let status = client
        .create_index(ivf_pq("pq", 30, pb::Metric::L2, 16, 7))
        .await
        .expect_err("m does not divide");
    assert_eq!(violations(&status)[0].0, "params.ivf_pq.m");
    let status = client
        .create_index(create("bad name!", 4, pb::Metric::L2, pb::IndexKind::Flat))
        .await
        .expect_err("bad name");
    assert_eq!(violations(&status)[0].0, "name");
    let status = client
        .create_index(create("big", 5000, pb::Metric::L2, pb::IndexKind::Flat))
        .await
        .expect_err("dimension too large");
    assert_eq!(violations(&status)[0].0, "dimension");
    let mut request = create("hnsw", 4, pb::Metric::L2, pb::IndexKind::Hnsw);
    request.params = Some(pb::create_index_request::Params::Hnsw(pb::HnswParams {
        m: 1,
        ef_construction: 0,
    }));
    let status = client.create_index(request).await.expect_err("m too small");
    assert_eq!(violations(&status)[0].0, "params.hnsw.m");

    let many: Vec<pb::Vector> = (0..10_001).map(|id| vector(id, &[1.0; 4], &[])).collect();
    let status = client
        .upsert(pb::UpsertRequest {
            index: "docs".into(),
            vectors: many,
        })
        .await
        .expect_err("too many vectors");
    assert_eq!(violations(&status)[0].0, "vectors");
    let status = client
        .train(pb::TrainRequest {
            name: "docs".into(),
        })
        .await
        .expect_err("flat has nothing to train");
    assert_eq!(status.code(), Code::FailedPrecondition);
    // Nothing above was written.
    let listed = client
        .list_indexes(pb::ListIndexesRequest {})
        .await
        .expect("list")
        .into_inner()
        .indexes;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].count, 0);
    server.stop().await;
}

async fn restart_keeps_every_vector_and_the_same_answers(database: &TestDatabase) {
    let server = start_server(database.store().await).await;
    let mut client = server.client().await;
    let base = clustered(3_000, 16, 21);
    client
        .create_index(create("flat", 16, pb::Metric::L2, pb::IndexKind::Flat))
        .await
        .expect("create");
    client
        .create_index(ivf_pq("ivf", 16, pb::Metric::InnerProduct, 8, 4))
        .await
        .expect("create");
    for name in ["flat", "ivf"] {
        upsert_all(&mut client, name, &base).await;
        client
            .delete(pb::DeleteRequest {
                index: name.into(),
                ids: (0..100).collect(),
            })
            .await
            .expect("delete");
    }
    until_trained(&server, "ivf").await;
    let queries = clustered(20, 16, 22);
    let mut before = Vec::new();
    for query in &queries {
        for name in ["flat", "ivf"] {
            before.push(
                client
                    .search(search(name, query, 10))
                    .await
                    .expect("search")
                    .into_inner()
                    .hits,
            );
        }
    }
    server.stop().await;

    let server = start_server(database.store().await).await;
    let mut client = server.client().await;
    let listed = client
        .list_indexes(pb::ListIndexesRequest {})
        .await
        .expect("list")
        .into_inner()
        .indexes;
    assert_eq!(
        listed
            .iter()
            .map(|i| (i.name.as_str(), i.count, i.trained))
            .collect::<Vec<_>>(),
        [("flat", 2_900, true), ("ivf", 2_900, true)]
    );
    let mut after = Vec::new();
    for query in &queries {
        for name in ["flat", "ivf"] {
            after.push(
                client
                    .search(search(name, query, 10))
                    .await
                    .expect("search")
                    .into_inner()
                    .hits,
            );
        }
    }
    assert_eq!(
        before.iter().map(|hits| ids(hits)).collect::<Vec<_>>(),
        after.iter().map(|hits| ids(hits)).collect::<Vec<_>>()
    );
    server.stop().await;
}

async fn concurrent_upserts_and_searches(database: &TestDatabase) {
    let server = start_server(database.store().await).await;
    let mut client = server.client().await;
    client
        .create_index(create("live", 32, pb::Metric::L2, pb::IndexKind::Flat))
        .await
        .expect("create");
    let base = clustered(4_000, 32, 31);
    let mut writers = Vec::new();
    for writer in 0..2u64 {
        let mut client = server.client().await;
        let part: Vec<Vec<f32>> = base
            .iter()
            .skip(writer as usize)
            .step_by(2)
            .cloned()
            .collect();
        writers.push(tokio::spawn(async move {
            for (block, chunk) in part.chunks(200).enumerate() {
                let vectors = chunk
                    .iter()
                    .enumerate()
                    .map(|(offset, values)| {
                        vector(((block * 200 + offset) * 2) as u64 + writer, values, &[])
                    })
                    .collect();
                client
                    .upsert(pb::UpsertRequest {
                        index: "live".into(),
                        vectors,
                    })
                    .await
                    .expect("upsert");
            }
        }));
    }
    let mut searchers = Vec::new();
    for seed in 0..2u64 {
        let mut client = server.client().await;
        searchers.push(tokio::spawn(async move {
            let mut searches = 0;
            let mut previous = 0;
            for query in clustered(200, 32, 40 + seed) {
                let hits = client
                    .search(search("live", &query, 5))
                    .await
                    .expect("search")
                    .into_inner()
                    .hits;
                // Every answer is whole: as many hits as vectors (up to k), ids written.
                assert!(hits.len() >= previous.min(5));
                previous = hits.len();
                assert!(hits.iter().all(|hit| hit.id < 4_000));
                searches += 1;
            }
            searches
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    for searcher in searchers {
        assert_eq!(searcher.await.expect("searcher"), 200);
    }
    let listed = client
        .list_indexes(pb::ListIndexesRequest {})
        .await
        .expect("list")
        .into_inner()
        .indexes;
    assert_eq!(listed[0].count, 4_000);
    let query = &base[1234];
    let hits = client
        .search(search("live", query, 1))
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(hits[0].id, 1234);
    server.stop().await;
}

async fn train_streams_progress_and_describe_reports(database: &TestDatabase) {
    let settings = SearchSettings {
        auto_train: false,
        ..SearchSettings::default()
    };
    let server = start_server_with(database.store().await, settings).await;
    let mut client = server.client().await;
    client
        .create_index(ivf_pq("pq", 16, pb::Metric::L2, 8, 4))
        .await
        .expect("create");
    let status = client
        .train(pb::TrainRequest { name: "pq".into() })
        .await
        .expect_err("too few vectors");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("holds 0 vectors"),
        "{}",
        status.message()
    );
    let base = clustered(1_500, 16, 51);
    upsert_all(&mut client, "pq", &base).await;
    let described = client
        .describe_index(pb::DescribeIndexRequest { name: "pq".into() })
        .await
        .expect("describe")
        .into_inner();
    assert!(!described.index.as_ref().is_some_and(|i| i.trained));
    assert!(
        described
            .recommendations
            .iter()
            .any(|r| r.contains("not trained yet")),
        "{:?}",
        described.recommendations
    );
    assert!(
        described
            .recommendations
            .iter()
            .any(|r| r.contains("FLAT index answers exactly"))
    );
    assert_eq!(
        described.latency.as_ref().map(|l| l.grade.as_str()),
        Some("-")
    );

    let mut stream = client
        .train(pb::TrainRequest { name: "pq".into() })
        .await
        .expect("train")
        .into_inner();
    let mut stages = Vec::new();
    while let Some(step) = tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("progress within 60 s")
    {
        let progress = step.expect("progress").progress.expect("progress");
        stages.push((progress.stage, progress.finished));
    }
    assert!(
        stages
            .first()
            .is_some_and(|(stage, _)| stage.starts_with("coarse quantizer")),
        "{stages:?}"
    );
    assert_eq!(
        stages
            .iter()
            .filter(|(stage, _)| stage.starts_with("product quantizer"))
            .count(),
        4
    );
    assert_eq!(stages.last(), Some(&("trained".to_owned(), true)));

    for query in clustered(30, 16, 52) {
        client
            .search(search("pq", &query, 10))
            .await
            .expect("search");
    }
    let described = client
        .describe_index(pb::DescribeIndexRequest { name: "pq".into() })
        .await
        .expect("describe")
        .into_inner();
    let info = described.index.expect("info");
    assert!(info.trained);
    assert_eq!(info.count, 1_500);
    assert!(
        described.memory_bytes > 2 * 1_500 * 16 * 4,
        "{}",
        described.memory_bytes
    );
    let latency = described.latency.expect("latency");
    assert_eq!(latency.searches, 30);
    assert!(latency.p50_us > 0.0 && latency.p50_us <= latency.p99_us);
    assert!(["A", "B", "C", "D", "F"].contains(&latency.grade.as_str()));
    let seen: HashSet<&str> = described
        .recommendations
        .iter()
        .map(String::as_str)
        .collect();
    assert!(!seen.iter().any(|r| r.contains("not trained yet")));
    server.stop().await;
}
