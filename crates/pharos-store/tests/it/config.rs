//! The configuration repository on both backends: revisions, compare-and-set, environments,
//! history, the change log, compaction, and the store's clock on every change.

use pharos_clock::Clock;
use pharos_store::StoreError;
use pharos_store::control::config::{DeleteEntry, KIND_DELETE, KIND_PUT, ListQuery, PutEntry};
use pharos_store::testing::TestDatabase;

pharos_store::backend_tests!(
    put_assigns_increasing_revisions,
    compare_and_set,
    delete_records_the_removed_value,
    overrides_inherit_type_from_base,
    list_pages_and_resolves_environments,
    history_is_newest_first,
    changes_after_and_snapshot_agree,
    compaction_prunes_old_changes,
    migrations_are_idempotent,
    changes_are_stamped_by_the_store_clock,
);

fn accept_all(_: i64, _: &str) -> Result<(), String> {
    Ok(())
}

fn put(key: &str, environment: &str, value: &str) -> PutEntry {
    PutEntry {
        key: key.into(),
        environment: environment.into(),
        value: value.into(),
        actor: "tester".into(),
        ..PutEntry::default()
    }
}

async fn put_assigns_increasing_revisions(database: &TestDatabase) {
    let repository = database.store().await.config();
    let first = repository
        .put(put("a", "", "1"), accept_all)
        .await
        .expect("put");
    let second = repository
        .put(put("b", "", "2"), accept_all)
        .await
        .expect("put");
    let third = repository
        .put(put("a", "", "3"), accept_all)
        .await
        .expect("put");
    assert_eq!((first.revision, second.revision, third.revision), (1, 2, 3));
    assert_eq!(third.previous_value.as_deref(), Some("1"));
    assert_eq!(third.kind, KIND_PUT);
    let rows = repository.key_rows("a").await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].value.as_str(), rows[0].revision), ("3", 3));
    assert_eq!(repository.revisions().await.expect("revisions").current, 3);
}

async fn compare_and_set(database: &TestDatabase) {
    let repository = database.store().await.config();
    let created = repository
        .put(
            PutEntry {
                expected_revision: Some(0),
                ..put("k", "", "v1")
            },
            accept_all,
        )
        .await
        .expect("create");
    let again = repository
        .put(
            PutEntry {
                expected_revision: Some(0),
                ..put("k", "", "v2")
            },
            accept_all,
        )
        .await;
    assert!(matches!(
        again,
        Err(StoreError::RevisionMismatch { expected: 0, current }) if current == created.revision
    ));
    let updated = repository
        .put(
            PutEntry {
                expected_revision: Some(created.revision),
                ..put("k", "", "v2")
            },
            accept_all,
        )
        .await
        .expect("cas");
    assert_eq!(updated.revision, created.revision + 1);
    // A refused write consumes no revision.
    assert_eq!(
        repository.revisions().await.expect("revisions").current,
        updated.revision
    );
    let refused = repository
        .put(put("k", "", "x"), |_, _| Err("no".to_string()))
        .await;
    assert!(matches!(refused, Err(StoreError::InvalidValue(_))));
    assert_eq!(
        repository.revisions().await.expect("revisions").current,
        updated.revision
    );
}

async fn delete_records_the_removed_value(database: &TestDatabase) {
    let repository = database.store().await.config();
    let created = repository
        .put(put("gone", "", "bye"), accept_all)
        .await
        .expect("put");
    let stale = repository
        .delete(DeleteEntry {
            key: "gone".into(),
            expected_revision: Some(created.revision + 5),
            actor: "t".into(),
            ..DeleteEntry::default()
        })
        .await;
    assert!(matches!(stale, Err(StoreError::RevisionMismatch { .. })));
    let deleted = repository
        .delete(DeleteEntry {
            key: "gone".into(),
            actor: "t".into(),
            ..DeleteEntry::default()
        })
        .await
        .expect("delete");
    assert_eq!(deleted.kind, KIND_DELETE);
    assert_eq!(deleted.previous_value.as_deref(), Some("bye"));
    assert!(repository.key_rows("gone").await.expect("rows").is_empty());
    let missing = repository
        .delete(DeleteEntry {
            key: "gone".into(),
            actor: "t".into(),
            ..DeleteEntry::default()
        })
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

async fn overrides_inherit_type_from_base(database: &TestDatabase) {
    let repository = database.store().await.config();
    repository
        .put(
            PutEntry {
                value_type: Some(2),
                category: Some("db".into()),
                ..put("pool", "", "10")
            },
            accept_all,
        )
        .await
        .expect("base");
    let over = repository
        .put(put("pool", "prod", "20"), accept_all)
        .await
        .expect("override");
    assert_eq!((over.value_type, over.category.as_str()), (2, "db"));
    let rows = repository.key_rows("pool").await.expect("rows");
    let environments: Vec<&str> = rows.iter().map(|r| r.environment.as_str()).collect();
    assert_eq!(environments, ["", "prod"]);
}

async fn list_pages_and_resolves_environments(database: &TestDatabase) {
    let repository = database.store().await.config();
    for index in 0..5 {
        repository
            .put(put(&format!("app.k{index}"), "", "base"), accept_all)
            .await
            .expect("put");
    }
    repository
        .put(put("app.k2", "prod", "over"), accept_all)
        .await
        .expect("put");
    repository
        .put(put("other", "", "x"), accept_all)
        .await
        .expect("put");
    repository
        .put(put("app_", "", "not in prefix"), accept_all)
        .await
        .expect("put");

    let mut keys = Vec::new();
    let mut after = String::new();
    loop {
        let (page, more) = repository
            .list(&ListQuery {
                prefix: "app.".into(),
                after_key: after.clone(),
                limit: 2,
                ..ListQuery::default()
            })
            .await
            .expect("list");
        keys.extend(page.iter().map(|row| row.key.clone()));
        if !more {
            break;
        }
        after = page.last().map(|row| row.key.clone()).unwrap_or_default();
    }
    assert_eq!(keys, ["app.k0", "app.k1", "app.k2", "app.k3", "app.k4"]);

    let (resolved, more) = repository
        .list(&ListQuery {
            prefix: "app.".into(),
            environment: "prod".into(),
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert!(!more);
    let values: Vec<(&str, &str)> = resolved
        .iter()
        .map(|row| (row.key.as_str(), row.value.as_str()))
        .collect();
    assert_eq!(
        values,
        [
            ("app.k0", "base"),
            ("app.k1", "base"),
            ("app.k2", "over"),
            ("app.k3", "base"),
            ("app.k4", "base")
        ]
    );
}

async fn history_is_newest_first(database: &TestDatabase) {
    let repository = database.store().await.config();
    for value in ["a", "b", "c"] {
        repository
            .put(put("h", "", value), accept_all)
            .await
            .expect("put");
    }
    repository
        .put(put("h", "prod", "p"), accept_all)
        .await
        .expect("put");
    let history = repository.history("h", "", 10).await.expect("history");
    let values: Vec<(&str, Option<&str>)> = history
        .iter()
        .map(|c| (c.value.as_str(), c.previous_value.as_deref()))
        .collect();
    assert_eq!(values, [("c", Some("b")), ("b", Some("a")), ("a", None)]);
    assert_eq!(
        repository.history("h", "", 1).await.expect("history").len(),
        1
    );
}

async fn changes_after_and_snapshot_agree(database: &TestDatabase) {
    let repository = database.store().await.config();
    for index in 0..10 {
        repository
            .put(
                put(&format!("s.{}", index % 3), "", &index.to_string()),
                accept_all,
            )
            .await
            .expect("put");
    }
    let changes = repository.changes_after(4, 100).await.expect("changes");
    let revisions: Vec<i64> = changes.iter().map(|c| c.revision).collect();
    assert_eq!(revisions, (5..=10).collect::<Vec<_>>());
    let (revision, rows) = repository
        .snapshot(&[], &["s.".into()])
        .await
        .expect("snapshot");
    assert_eq!(revision, 10);
    assert_eq!(rows.len(), 3);
    let (_, exact) = repository
        .snapshot(&["s.1".into()], &[])
        .await
        .expect("snapshot");
    assert_eq!(exact.len(), 1);
    assert_eq!(exact[0].value, "7");
}

async fn compaction_prunes_old_changes(database: &TestDatabase) {
    let repository = database.store().await.config();
    for value in ["1", "2", "3"] {
        repository
            .put(put("c", "", value), accept_all)
            .await
            .expect("put");
    }
    let upto = repository
        .compact(repository.store().clock().now_micros() + 1)
        .await
        .expect("compact");
    assert_eq!(upto, Some(3));
    let revisions = repository.revisions().await.expect("revisions");
    assert_eq!((revisions.current, revisions.compacted), (3, 3));
    assert!(
        repository
            .changes_after(0, 10)
            .await
            .expect("changes")
            .is_empty()
    );
    assert_eq!(repository.compact(0).await.expect("compact"), None);
    // Values survive compaction; only the log is pruned.
    assert_eq!(repository.key_rows("c").await.expect("rows")[0].value, "3");
}

async fn migrations_are_idempotent(database: &TestDatabase) {
    let store = database.store().await;
    store.migrate().await.expect("second migrate");
    assert!(store.ping().await.is_ok());
}

async fn changes_are_stamped_by_the_store_clock(database: &TestDatabase) {
    let (clock, hand) = Clock::manual(1_000_000_000_000);
    let repository = database.store_with_clock(clock).await.config();
    let first = repository
        .put(put("stamped", "", "1"), accept_all)
        .await
        .expect("put");
    hand.advance(std::time::Duration::from_secs(90));
    let second = repository
        .delete(DeleteEntry {
            key: "stamped".into(),
            environment: String::new(),
            expected_revision: None,
            actor: "tester".into(),
        })
        .await
        .expect("delete");
    assert_eq!(first.changed_at, 1_000_000_000_000);
    assert_eq!(second.changed_at, 1_000_090_000_000);
    // Compaction cuts by the same clock: only the first change is older than a minute ago.
    let upto = repository
        .compact(repository.store().clock().now_micros() - 60_000_000)
        .await
        .expect("compact");
    assert_eq!(upto, Some(first.revision));
}
