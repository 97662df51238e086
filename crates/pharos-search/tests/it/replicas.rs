//! Two search replicas on one PostgreSQL database: writes on either reach the other through
//! NOTIFY and the change log, so both answer the same; a replica started later loads it all.

use std::time::Duration;

use pharos_proto::search::v1 as pb;
use pharos_store::testing::TestDatabase;

use crate::support::*;

/// Polls `client` until `index` holds `count` vectors (10 s at most).
async fn until_count(client: &mut Client, index: &str, count: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = client
            .list_indexes(pb::ListIndexesRequest {})
            .await
            .expect("list")
            .into_inner()
            .indexes;
        if listed
            .iter()
            .any(|info| info.name == index && info.count == count)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{index} reaches {count} vectors within 10 s: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_converge_after_writes_on_either() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let a = start_server(database.store().await).await;
    let b = start_server(database.store().await).await;
    let mut on_a = a.client().await;
    let mut on_b = b.client().await;
    on_a.create_index(create("shared", 8, pb::Metric::L2, pb::IndexKind::Flat))
        .await
        .expect("create");
    let base = clustered(1_000, 8, 61);
    upsert_all(&mut on_a, "shared", &base[..600]).await;
    until_count(&mut on_b, "shared", 600).await;
    // Writes on B: more vectors, and a delete of some written on A.
    let vectors = base[600..]
        .iter()
        .enumerate()
        .map(|(i, v)| vector(600 + i as u64, v, &[("from", "b")]))
        .collect();
    on_b.upsert(pb::UpsertRequest {
        index: "shared".into(),
        vectors,
    })
    .await
    .expect("upsert on b");
    on_b.delete(pb::DeleteRequest {
        index: "shared".into(),
        ids: (0..50).collect(),
    })
    .await
    .expect("delete on b");
    until_count(&mut on_a, "shared", 950).await;
    for query in clustered(20, 8, 62) {
        let from_a = on_a
            .search(search("shared", &query, 10))
            .await
            .expect("a")
            .into_inner()
            .hits;
        let from_b = on_b
            .search(search("shared", &query, 10))
            .await
            .expect("b")
            .into_inner()
            .hits;
        assert_eq!(ids(&from_a), ids(&from_b));
        assert_eq!(
            ids(&from_a),
            exact(pb::Metric::L2, &base, &query, 10, |id| id >= 50)
        );
        for hit in &from_a {
            assert_eq!(hit.payload.contains_key("from"), hit.id >= 600);
        }
    }
    // A third replica started now loads everything from the store.
    let c = start_server(database.store().await).await;
    let mut on_c = c.client().await;
    until_count(&mut on_c, "shared", 950).await;
    // Dropping on one removes it everywhere.
    on_b.drop_index(pb::DropIndexRequest {
        name: "shared".into(),
    })
    .await
    .expect("drop");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !on_a
        .list_indexes(pb::ListIndexesRequest {})
        .await
        .expect("list")
        .into_inner()
        .indexes
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the drop reaches A within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(a.service.applied_revision() >= 5);
    c.stop().await;
    b.stop().await;
    a.stop().await;
}
