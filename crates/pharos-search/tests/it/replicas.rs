//! Two search replicas on one PostgreSQL database: writes on either reach the other through
//! NOTIFY and the change log, so both answer the same; a replica started later loads it all.

use std::time::Duration;

use pharos_proto::search::v1 as pb;
use pharos_store::testing::TestDatabase;

use crate::support::*;

/// Waits until `replica` has applied every change `writer` has (a write is answered once its
/// own replica applied it), bounded so that a lost change fails the test instead of hanging it.
async fn caught_up(replica: &TestServer, writer: &TestServer) {
    let revision = writer.service.applied_revision();
    tokio::time::timeout(
        Duration::from_secs(10),
        replica.service.wait_applied(revision),
    )
    .await
    .expect("the replica applies the other's changes within 10 s");
}

/// The vector count of `index` as `client`'s replica lists it.
async fn count(client: &mut Client, index: &str) -> Option<u64> {
    client
        .list_indexes(pb::ListIndexesRequest {})
        .await
        .expect("list")
        .into_inner()
        .indexes
        .into_iter()
        .find(|info| info.name == index)
        .map(|info| info.count)
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
    caught_up(&b, &a).await;
    assert_eq!(count(&mut on_b, "shared").await, Some(600));
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
    caught_up(&a, &b).await;
    assert_eq!(count(&mut on_a, "shared").await, Some(950));
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
    assert_eq!(count(&mut on_c, "shared").await, Some(950));
    // Dropping on one removes it everywhere.
    on_b.drop_index(pb::DropIndexRequest {
        name: "shared".into(),
    })
    .await
    .expect("drop");
    caught_up(&a, &b).await;
    assert_eq!(count(&mut on_a, "shared").await, None);
    assert!(a.service.applied_revision() >= 5);
    c.stop().await;
    b.stop().await;
    a.stop().await;
}
