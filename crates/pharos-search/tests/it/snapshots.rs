//! Index snapshots: a replica starts from the snapshot in its data directory and replays only
//! the changes after it, answering exactly as before; a damaged snapshot or one taken from
//! another store is not used, and the indexes are loaded from the store instead.

use std::path::Path;

use pharos_proto::search::v1 as pb;
use pharos_search::SearchSettings;
use pharos_store::testing::TestDatabase;

use crate::support::*;

const INDEXES: [&str; 3] = ["flat", "hnsw", "ivf"];

fn with_snapshots(dir: &Path) -> SearchSettings {
    SearchSettings {
        snapshot_dir: Some(dir.to_owned()),
        ..SearchSettings::default()
    }
}

/// The hits of every query on every index of `names`, in that order.
async fn answers(client: &mut Client, names: &[&str], queries: &[Vec<f32>]) -> Vec<Vec<u64>> {
    let mut all = Vec::new();
    for name in names {
        for query in queries {
            let hits = client
                .search(tuned_search(name, query, 10))
                .await
                .expect("search")
                .into_inner()
                .hits;
            all.push(ids(&hits));
        }
    }
    all
}

fn index_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("snapshot dir")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "index"))
        .collect();
    files.sort();
    files
}

pub async fn restart_reads_the_snapshot_and_replays_later_changes(database: &TestDatabase) {
    let snapshots = tempfile::tempdir().expect("tempdir");
    let dir = snapshots.path().join("search");
    let base = clustered(3_000, 16, 41);
    let queries = clustered(20, 16, 42);

    // A replica with snapshots builds three indexes and writes its snapshot as it stops.
    let server = start_server_with(database.store().await, with_snapshots(&dir)).await;
    assert_eq!(server.service.started_from_snapshot(), None);
    let mut client = server.client().await;
    client
        .create_index(create("flat", 16, pb::Metric::L2, pb::IndexKind::Flat))
        .await
        .expect("create");
    client
        .create_index(create("hnsw", 16, pb::Metric::Cosine, pb::IndexKind::Hnsw))
        .await
        .expect("create");
    client
        .create_index(ivf_pq("ivf", 16, pb::Metric::InnerProduct, 8, 4))
        .await
        .expect("create");
    for name in INDEXES {
        upsert_all(&mut client, name, &base).await;
        client
            .delete(pb::DeleteRequest {
                index: name.into(),
                ids: (0..50).collect(),
            })
            .await
            .expect("delete");
    }
    until_trained(&server, "ivf").await;
    let before = answers(&mut client, &INDEXES, &queries).await;
    let written_at = server.service.applied_revision();
    server.stop().await;
    assert_eq!(index_files(&dir).len(), 3, "one file per index");

    // Started again, it reads the snapshot and answers exactly as before: the same vectors,
    // the same graph, the same lists.
    let server = start_server_with(database.store().await, with_snapshots(&dir)).await;
    assert_eq!(server.service.started_from_snapshot(), Some(written_at));
    let mut client = server.client().await;
    assert_eq!(answers(&mut client, &INDEXES, &queries).await, before);
    server.stop().await;

    // Another replica, without snapshots, changes things meanwhile.
    let other = start_server(database.store().await).await;
    let mut client = other.client().await;
    let more = clustered(400, 16, 43);
    for name in INDEXES {
        let vectors = more
            .iter()
            .enumerate()
            .map(|(offset, values)| vector(10_000 + offset as u64, values, &[("late", "yes")]))
            .collect();
        client
            .upsert(pb::UpsertRequest {
                index: name.into(),
                vectors,
            })
            .await
            .expect("upsert");
        client
            .delete(pb::DeleteRequest {
                index: name.into(),
                ids: (50..150).collect(),
            })
            .await
            .expect("delete");
    }
    client
        .drop_index(pb::DropIndexRequest {
            name: "hnsw".into(),
        })
        .await
        .expect("drop");
    client
        .create_index(create("late", 16, pb::Metric::L2, pb::IndexKind::Flat))
        .await
        .expect("create");
    upsert_all(&mut client, "late", &more).await;
    let names = ["flat", "ivf", "late"];
    let expected = answers(&mut client, &names, &queries).await;
    let store_revision = other.service.applied_revision();
    other.stop().await;

    // The snapshot replica catches up from the change log: the drop, the new index, and the
    // writes to the others, with their payloads.
    let server = start_server_with(database.store().await, with_snapshots(&dir)).await;
    assert_eq!(server.service.started_from_snapshot(), Some(written_at));
    assert_eq!(server.service.applied_revision(), store_revision);
    let mut client = server.client().await;
    let listed: Vec<(String, u64)> = client
        .list_indexes(pb::ListIndexesRequest {})
        .await
        .expect("list")
        .into_inner()
        .indexes
        .into_iter()
        .map(|index| (index.name, index.count))
        .collect();
    assert_eq!(
        listed,
        [
            ("flat".to_owned(), 3_250),
            ("ivf".to_owned(), 3_250),
            ("late".to_owned(), 400)
        ]
    );
    assert_eq!(answers(&mut client, &names, &queries).await, expected);
    let hits = client
        .search(search("flat", &more[0], 1))
        .await
        .expect("search")
        .into_inner()
        .hits;
    assert_eq!(hits[0].id, 10_000);
    assert_eq!(hits[0].payload.get("late").map(String::as_str), Some("yes"));
    server.stop().await;
    assert_eq!(
        index_files(&dir).len(),
        3,
        "the dropped index's file is gone"
    );

    // A damaged file: the snapshot is not used, the store is.
    let damaged = index_files(&dir)[0].clone();
    let mut bytes = std::fs::read(&damaged).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&damaged, bytes).expect("write");
    let server = start_server_with(database.store().await, with_snapshots(&dir)).await;
    assert_eq!(server.service.started_from_snapshot(), None);
    let mut client = server.client().await;
    assert_eq!(answers(&mut client, &names, &queries).await, expected);
    server.stop().await;

    // A snapshot of another store is not used either.
    let server = start_server_with(database.store().await, with_snapshots(&dir)).await;
    assert!(
        server.service.started_from_snapshot().is_some(),
        "rewritten at the last stop"
    );
    server.stop().await;
    let manifest = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["store_id"] = "another-store".into();
    std::fs::write(&manifest, json.to_string()).expect("write");
    let server = start_server_with(database.store().await, with_snapshots(&dir)).await;
    assert_eq!(server.service.started_from_snapshot(), None);
    let mut client = server.client().await;
    assert_eq!(answers(&mut client, &names, &queries).await, expected);
    server.stop().await;
}
