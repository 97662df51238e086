//! The vector repository on both backends: index lifecycle, upserts and deletes recorded in the
//! change log with the store's clock, a consistent load, and compaction of the log.

use std::time::Duration;

use pharos_clock::Clock;
use pharos_store::StoreError;
use pharos_store::control::vectors::{ChangeKind, Loaded, VectorRow};
use pharos_store::testing::TestDatabase;

pharos_store::backend_tests!(
    indexes_vectors_and_the_change_log,
    writes_check_the_index_definition,
    compaction_prunes_changes_before_the_cut,
);

fn vector(id: u64, values: &[f32]) -> VectorRow {
    VectorRow {
        id,
        values: values.to_vec(),
        payload: format!("{{\"id\":{id}}}"),
    }
}

async fn indexes_vectors_and_the_change_log(database: &TestDatabase) {
    let (clock, hand) = Clock::manual(5_000_000);
    let vectors = database.store_with_clock(clock).await.vectors();
    let created = vectors.create_index("docs", "dim=2").await.expect("create");
    assert_eq!(
        (created.revision, created.kind),
        (1, ChangeKind::CreateIndex)
    );
    assert_eq!(created.changed_at, 5_000_000);
    assert!(matches!(
        vectors.create_index("docs", "dim=2").await,
        Err(StoreError::AlreadyExists)
    ));

    hand.advance(Duration::from_secs(1));
    let upserted = vectors
        .upsert(
            "docs",
            "dim=2",
            &[vector(1, &[1.0, 0.0]), vector(2, &[0.0, 1.0])],
        )
        .await
        .expect("upsert");
    assert_eq!((upserted.revision, upserted.count), (2, 2));
    assert_eq!(upserted.changed_at, 6_000_000);
    let deleted = vectors.delete("docs", &[1]).await.expect("delete");
    assert_eq!((deleted.revision, deleted.kind), (3, ChangeKind::Delete));
    assert_eq!(deleted.ids, vec![1]);

    let kinds: Vec<ChangeKind> = vectors
        .changes_after(0, 10)
        .await
        .expect("changes")
        .into_iter()
        .map(|change| change.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::CreateIndex,
            ChangeKind::Upsert,
            ChangeKind::Delete
        ]
    );
    assert_eq!(
        vectors.vectors_of_change(2).await.expect("of change"),
        [vector(2, &[0.0, 1.0])]
    );

    let mut loaded = Vec::new();
    let revision = vectors
        .load(&mut |item| loaded.push(item))
        .await
        .expect("load");
    assert_eq!(revision, 3);
    assert_eq!(loaded.len(), 2);
    assert!(
        matches!(&loaded[0], Loaded::Index(index) if index.name == "docs" && index.definition == "dim=2")
    );
    assert!(
        matches!(&loaded[1], Loaded::Vector { index, row } if index == "docs" && *row == vector(2, &[0.0, 1.0]))
    );

    let dropped = vectors.drop_index("docs").await.expect("drop");
    assert_eq!((dropped.revision, dropped.kind), (4, ChangeKind::DropIndex));
    let mut after_drop = 0;
    vectors.load(&mut |_| after_drop += 1).await.expect("load");
    assert_eq!(after_drop, 0);
}

async fn writes_check_the_index_definition(database: &TestDatabase) {
    let vectors = database.store().await.vectors();
    assert!(matches!(
        vectors
            .upsert("missing", "dim=2", &[vector(1, &[1.0, 1.0])])
            .await,
        Err(StoreError::NotFound)
    ));
    vectors.create_index("docs", "dim=2").await.expect("create");
    assert!(matches!(
        vectors
            .upsert("docs", "dim=3", &[vector(1, &[1.0, 1.0, 1.0])])
            .await,
        Err(StoreError::InvalidValue(_))
    ));
    assert_eq!(vectors.revisions().await.expect("revisions"), (1, 0));
}

async fn compaction_prunes_changes_before_the_cut(database: &TestDatabase) {
    let (clock, hand) = Clock::manual(10_000_000);
    let vectors = database.store_with_clock(clock).await.vectors();
    vectors.create_index("docs", "dim=1").await.expect("create");
    hand.advance(Duration::from_secs(60));
    vectors
        .upsert("docs", "dim=1", &[vector(7, &[0.5])])
        .await
        .expect("upsert");
    let cut = vectors.store().clock().now_micros() - 30_000_000;
    assert_eq!(vectors.compact(cut).await.expect("compact"), Some(1));
    assert_eq!(vectors.compact(cut).await.expect("again"), None);
    let identity = vectors.identity().await.expect("identity");
    assert_eq!((identity.revision, identity.compacted_revision), (2, 1));
    let left: Vec<i64> = vectors
        .changes_after(0, 10)
        .await
        .expect("changes")
        .into_iter()
        .map(|change| change.revision)
        .collect();
    assert_eq!(left, [2]);
}
