//! Two configuration replicas on one PostgreSQL database: a change made on
//! one reaches the other's watchers and cache at once, survives a lost
//! notification connection, and a watcher resuming on either replica gets
//! exactly what it missed.

use std::time::Duration;

use pharos_api::ConfigApi as _;
use pharos_proto::config::v1 as pb;
use pharos_store::testing::TestDatabase;

use crate::support::{Clients as _, TestServer};
use crate::{events, get, initial, set, summary};

async fn two_replicas() -> Option<(TestDatabase, TestServer, TestServer)> {
    let database = TestDatabase::postgres().await?;
    let a = crate::support::start_server(database.store().await).await;
    let b = crate::support::start_server(database.store().await).await;
    Some((database, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_on_one_replica_reaches_watch_and_get_on_the_other() {
    let Some((_database, a, b)) = two_replicas().await else {
        return;
    };
    let on_a = a.client().await;
    let on_b = b.client().await;
    on_a.set(set("shared", "1")).await.expect("set");
    // B caches the key now, so only the change stream can refresh it.
    assert_eq!(on_b.get(get("shared", "")).await.expect("get").value, "1");
    let mut watch_b = on_b
        .watch(pb::WatchRequest {
            keys: vec!["shared".into()],
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    initial(&mut watch_b).await;

    let written = on_a.set(set("shared", "2")).await.expect("set");
    let seen = events(&mut watch_b, 1).await;
    assert_eq!(summary(&seen)[0].2, "2");
    assert_eq!(summary(&seen)[0].3, written.revision);
    assert_eq!(on_b.get(get("shared", "")).await.expect("get").value, "2");
    let stats = on_b.cache_stats().await.expect("stats");
    assert_eq!(stats.misses, 1, "B answered from its updated cache");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_catches_up_after_losing_its_connection() {
    let Some((database, a, b)) = two_replicas().await else {
        return;
    };
    let on_a = a.client().await;
    let on_b = b.client().await;
    let mut watch_b = on_b
        .watch(pb::WatchRequest::default())
        .await
        .expect("watch");
    initial(&mut watch_b).await;

    // Cut B's LISTEN connection (and A's: they look alike) from the server side.
    let terminated = terminate_listeners(database.url()).await;
    assert!(terminated >= 1, "a listener connection existed");

    for index in 1..=3 {
        on_a.set(set("after.cut", &index.to_string()))
            .await
            .expect("set");
    }
    let seen = events(&mut watch_b, 3).await;
    let values: Vec<String> = summary(&seen).into_iter().map(|s| s.2).collect();
    assert_eq!(values, ["1", "2", "3"]);
    a.stop().await;
    b.stop().await;
}

async fn terminate_listeners(url: &str) -> i64 {
    let database = url
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .unwrap_or_default()
        .to_string();
    let pool = sqlx::PgPool::connect(url).await.expect("admin pool");
    let count: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .bind(&database)
    .fetch_one(&pool)
    .await
    .expect("terminate");
    pool.close().await;
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_resumes_on_the_other_replica() {
    let Some((_database, a, b)) = two_replicas().await else {
        return;
    };
    let on_a = a.client().await;
    let on_b = b.client().await;
    let mut watch_a = on_a
        .watch(pb::WatchRequest {
            prefixes: vec!["m.".into()],
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    initial(&mut watch_a).await;
    on_a.set(set("m.x", "1")).await.expect("set");
    let last_seen = summary(&events(&mut watch_a, 1).await)[0].3;
    drop(watch_a);

    for index in 2..=4 {
        on_a.set(set("m.x", &index.to_string())).await.expect("set");
        on_a.set(set("n.other", "noise")).await.expect("set");
    }
    let mut resumed = on_b
        .watch(pb::WatchRequest {
            prefixes: vec!["m.".into()],
            start_revision: Some(last_seen),
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    let (missed, _) = initial(&mut resumed).await;
    let values: Vec<String> = summary(&missed).into_iter().map(|s| s.2).collect();
    assert_eq!(values, ["2", "3", "4"]);
    on_a.set(set("m.x", "5")).await.expect("set");
    let next = tokio::time::timeout(Duration::from_secs(10), events(&mut resumed, 1))
        .await
        .expect("live change");
    assert_eq!(summary(&next)[0].2, "5");
    a.stop().await;
    b.stop().await;
}
