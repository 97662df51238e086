//! The configuration service end to end over real gRPC on loopback: the
//! conformance part runs on SQLite and PostgreSQL alike; the replica part
//! runs two services on one PostgreSQL database.

mod replicas;
mod support;

use std::time::Duration;

use futures::StreamExt as _;
use pharos_api::ConfigApi as _;
use pharos_api::config::WatchResponses;
use pharos_proto::config::v1 as pb;
use pharos_store::testing::TestDatabase;
use support::Clients as _;
use tonic::Code;
use tonic_types::StatusExt as _;

pharos_store::backend_tests!(
    set_get_list_delete_history,
    typed_values_are_validated,
    compare_and_set_conflicts,
    environments_override_the_base,
    watch_sends_snapshot_then_changes,
    a_watch_open_at_shutdown_ends_unavailable_with_its_resume_point,
    watch_resumes_exactly_after_a_revision,
    watch_refuses_compacted_revisions,
    slow_watcher_gets_coalesced_events,
    cache_serves_repeated_gets,
    auth_guards_everything_but_health,
);

const WAIT: Duration = Duration::from_secs(10);

pub fn set(key: &str, value: &str) -> pb::SetRequest {
    pb::SetRequest {
        key: key.into(),
        value: value.into(),
        ..pb::SetRequest::default()
    }
}

pub fn get(key: &str, environment: &str) -> pb::GetRequest {
    pb::GetRequest {
        key: key.into(),
        environment: environment.into(),
    }
}

/// The next response of a watch stream, failing the test after 10 s.
pub async fn next(stream: &mut WatchResponses) -> pb::WatchResponse {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a watch response within 10 s")
        .expect("the stream is open")
        .expect("a response, not an error")
}

/// Reads responses until `count` events have arrived.
pub async fn events(stream: &mut WatchResponses, count: usize) -> Vec<pb::WatchEvent> {
    let mut events = Vec::new();
    while events.len() < count {
        events.extend(next(stream).await.events);
    }
    events
}

/// Reads until the response that ends the initial part of the stream.
pub async fn initial(stream: &mut WatchResponses) -> (Vec<pb::WatchEvent>, i64) {
    let mut events = Vec::new();
    loop {
        let response = next(stream).await;
        events.extend(response.events);
        if response.snapshot_complete {
            return (events, response.revision);
        }
    }
}

pub fn summary(events: &[pb::WatchEvent]) -> Vec<(i32, String, String, i64)> {
    events
        .iter()
        .map(|event| {
            let entry = event.entry.clone().unwrap_or_default();
            (event.r#type, entry.key, entry.value, entry.revision)
        })
        .collect()
}

async fn set_get_list_delete_history(database: &TestDatabase) {
    let server = support::start_server(database.store().await).await;
    let client = server.client_as(None, Some("alice")).await;

    let first = client
        .set(pb::SetRequest {
            r#type: pb::ValueType::Int as i32,
            category: "db".into(),
            description: "pool size".into(),
            ..set("app.db.pool", "10")
        })
        .await
        .expect("set");
    assert_eq!(first.revision, 1);
    assert_eq!(first.updated_by, "alice");
    assert_eq!(first.r#type, pb::ValueType::Int as i32);
    assert!(first.updated_at.is_some());

    let second = client.set(set("app.db.pool", "12")).await.expect("set");
    assert_eq!(second.revision, 2);
    assert_eq!(second.r#type, pb::ValueType::Int as i32, "type is kept");
    assert_eq!(second.category, "db", "category is kept");

    let got = client.get(get("app.db.pool", "")).await.expect("get");
    assert_eq!((got.value.as_str(), got.revision), ("12", 2));

    for key in ["app.a", "app.b", "zzz"] {
        client.set(set(key, "x")).await.expect("set");
    }
    let page = client
        .list(pb::ListRequest {
            prefix: "app.".into(),
            page_size: 2,
            ..pb::ListRequest::default()
        })
        .await
        .expect("list");
    let keys: Vec<&str> = page.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["app.a", "app.b"]);
    let rest = client
        .list(pb::ListRequest {
            prefix: "app.".into(),
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..pb::ListRequest::default()
        })
        .await
        .expect("list");
    let keys: Vec<&str> = rest.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["app.db.pool"]);
    assert!(rest.next_page_token.is_empty());
    let by_category = client
        .list(pb::ListRequest {
            category: "db".into(),
            ..pb::ListRequest::default()
        })
        .await
        .expect("list");
    assert_eq!(by_category.entries.len(), 1);

    let deleted = client
        .delete(pb::DeleteRequest {
            key: "app.db.pool".into(),
            ..pb::DeleteRequest::default()
        })
        .await
        .expect("delete");
    assert_eq!(deleted.previous.map(|e| e.value), Some("12".to_string()));
    let missing = client.get(get("app.db.pool", "")).await.expect_err("gone");
    assert_eq!(missing.code(), Code::NotFound);

    let history = client
        .history(pb::HistoryRequest {
            key: "app.db.pool".into(),
            ..pb::HistoryRequest::default()
        })
        .await
        .expect("history");
    let items: Vec<(i32, Option<&str>, Option<&str>)> = history
        .items
        .iter()
        .map(|i| (i.kind, i.old_value.as_deref(), i.new_value.as_deref()))
        .collect();
    assert_eq!(
        items,
        [
            (pb::ChangeKind::Delete as i32, Some("12"), None),
            (pb::ChangeKind::Put as i32, Some("10"), Some("12")),
            (pb::ChangeKind::Put as i32, None, Some("10")),
        ]
    );
    assert!(history.items.iter().all(|i| i.actor == "alice"));

    let warmed = client
        .warm(pb::WarmRequest {
            keys: vec!["app.a".into(), "nope".into()],
        })
        .await
        .expect("warm");
    assert_eq!(warmed.loaded, 1);
    let stats = client.cache_stats().await.expect("stats");
    assert_eq!(stats.capacity, 100_000);
    server.stop().await;
}

async fn typed_values_are_validated(database: &TestDatabase) {
    let server = support::start_server(database.store().await).await;
    let client = server.client().await;
    let cases: [(pb::SetRequest, &str); 8] = [
        (set("", "x"), "key"),
        (set("has space", "x"), "key"),
        (set(&"k".repeat(257), "x"), "key"),
        (
            pb::SetRequest {
                r#type: pb::ValueType::Int as i32,
                ..set("n", "abc")
            },
            "value",
        ),
        (
            pb::SetRequest {
                r#type: pb::ValueType::Json as i32,
                ..set("j", "{")
            },
            "value",
        ),
        (
            pb::SetRequest {
                r#type: pb::ValueType::Duration as i32,
                ..set("d", "forever")
            },
            "value",
        ),
        (
            pb::SetRequest {
                r#type: 99,
                ..set("t", "x")
            },
            "type",
        ),
        (set("big", &"x".repeat(1024 * 1024 + 1)), "value"),
    ];
    for (request, field) in cases {
        let status = client.set(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let details = status.get_error_details();
        let violations = details
            .bad_request()
            .expect("BadRequest detail")
            .field_violations
            .clone();
        assert_eq!(violations[0].field, field, "{violations:?}");
    }
    // An existing INT key checks new values against its type.
    client
        .set(pb::SetRequest {
            r#type: pb::ValueType::Int as i32,
            ..set("n", "1")
        })
        .await
        .expect("int");
    let status = client.set(set("n", "one")).await.expect_err("still an int");
    assert_eq!(status.code(), Code::InvalidArgument);
    for (value_type, value) in [
        (pb::ValueType::Float, "2.5"),
        (pb::ValueType::Bool, "true"),
        (pb::ValueType::Json, r#"{"a":[1,2]}"#),
        (pb::ValueType::Duration, "1h30m"),
    ] {
        client
            .set(pb::SetRequest {
                r#type: value_type as i32,
                ..set("typed", value)
            })
            .await
            .expect("valid typed value");
    }
    server.stop().await;
}

async fn compare_and_set_conflicts(database: &TestDatabase) {
    let server = support::start_server(database.store().await).await;
    let client = server.client().await;
    let created = client
        .set(pb::SetRequest {
            expected_revision: Some(0),
            ..set("cas", "1")
        })
        .await
        .expect("create");
    let status = client
        .set(pb::SetRequest {
            expected_revision: Some(0),
            ..set("cas", "2")
        })
        .await
        .expect_err("exists");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "REVISION_MISMATCH");
    assert_eq!(
        info.metadata.get("current_revision"),
        Some(&created.revision.to_string())
    );
    let updated = client
        .set(pb::SetRequest {
            expected_revision: Some(created.revision),
            ..set("cas", "2")
        })
        .await
        .expect("cas");
    let stale = client
        .delete(pb::DeleteRequest {
            key: "cas".into(),
            environment: String::new(),
            expected_revision: Some(created.revision),
        })
        .await
        .expect_err("stale delete");
    assert_eq!(stale.code(), Code::FailedPrecondition);
    client
        .delete(pb::DeleteRequest {
            key: "cas".into(),
            environment: String::new(),
            expected_revision: Some(updated.revision),
        })
        .await
        .expect("delete");

    // Concurrent CAS writers: exactly one wins each round.
    let current = client.set(set("race", "0")).await.expect("seed").revision;
    let attempts = (0..8).map(|index| {
        let client = client.clone();
        async move {
            client
                .set(pb::SetRequest {
                    expected_revision: Some(current),
                    ..set("race", &index.to_string())
                })
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|status| status.code() == Code::FailedPrecondition)
    );
    server.stop().await;
}

async fn environments_override_the_base(database: &TestDatabase) {
    let server = support::start_server(database.store().await).await;
    let client = server.client().await;
    client
        .set(pb::SetRequest {
            r#type: pb::ValueType::Int as i32,
            ..set("limit", "10")
        })
        .await
        .expect("base");
    // Cache the key for "prod" before the override exists.
    assert_eq!(
        client.get(get("limit", "prod")).await.expect("get").value,
        "10"
    );
    let over = client
        .set(pb::SetRequest {
            environment: "prod".into(),
            ..set("limit", "50")
        })
        .await
        .expect("override");
    assert_eq!(
        over.r#type,
        pb::ValueType::Int as i32,
        "override inherits the type"
    );
    assert_eq!(
        client.get(get("limit", "prod")).await.expect("get").value,
        "50"
    );
    assert_eq!(
        client.get(get("limit", "dev")).await.expect("get").value,
        "10"
    );
    assert_eq!(client.get(get("limit", "")).await.expect("get").value, "10");
    let status = client
        .set(pb::SetRequest {
            environment: "prod".into(),
            ..set("limit", "many")
        })
        .await
        .expect_err("override keeps the type");
    assert_eq!(status.code(), Code::InvalidArgument);
    client
        .delete(pb::DeleteRequest {
            key: "limit".into(),
            environment: "prod".into(),
            expected_revision: None,
        })
        .await
        .expect("delete override");
    assert_eq!(
        client.get(get("limit", "prod")).await.expect("get").value,
        "10"
    );
    let resolved = client
        .list(pb::ListRequest {
            environment: "prod".into(),
            ..pb::ListRequest::default()
        })
        .await
        .expect("list");
    assert_eq!(resolved.entries.len(), 1);
    let missing = client
        .get(get("nothing", "prod"))
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    server.stop().await;
}

async fn watch_sends_snapshot_then_changes(database: &TestDatabase) {
    let server = support::start_server(database.store().await).await;
    let client = server.client().await;
    client.set(set("app.one", "1")).await.expect("set");
    client.set(set("app.two", "2")).await.expect("set");
    client.set(set("other", "x")).await.expect("set");

    let mut stream = client
        .watch(pb::WatchRequest {
            prefixes: vec!["app.".into()],
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    let (snapshot, revision) = initial(&mut stream).await;
    let keys: Vec<String> = snapshot
        .iter()
        .filter_map(|e| e.entry.clone())
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["app.one", "app.two"]);
    assert_eq!(revision, 3);

    client.set(set("other", "y")).await.expect("set");
    client.set(set("app.one", "1b")).await.expect("set");
    client
        .delete(pb::DeleteRequest {
            key: "app.two".into(),
            ..pb::DeleteRequest::default()
        })
        .await
        .expect("delete");
    let changes = events(&mut stream, 2).await;
    assert_eq!(
        summary(&changes),
        [
            (pb::ChangeKind::Put as i32, "app.one".into(), "1b".into(), 5),
            (
                pb::ChangeKind::Delete as i32,
                "app.two".into(),
                "2".into(),
                6
            ),
        ]
    );
    assert_eq!(changes[0].previous_value.as_deref(), Some("1"));
    server.stop().await;
}

async fn a_watch_open_at_shutdown_ends_unavailable_with_its_resume_point(database: &TestDatabase) {
    let server = support::start_server(database.store().await).await;
    let client = server.client().await;
    client.set(set("app.one", "1")).await.expect("set");
    let mut stream = client
        .watch(pb::WatchRequest {
            prefixes: vec!["app.".into()],
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    let (_, revision) = initial(&mut stream).await;
    assert_eq!(revision, 1);
    let stopping = tokio::spawn(server.stop());
    let ended = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("the watch ends when the server stops");
    let status = ended
        .expect("a status, not a plain end")
        .expect_err("an error status");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("start_revision 1"),
        "{}",
        status.message()
    );
    stopping.await.expect("the server stopped");
}

async fn watch_resumes_exactly_after_a_revision(database: &TestDatabase) {
    let server = support::start_server(database.store().await).await;
    let client = server.client().await;
    for index in 1..=5 {
        client
            .set(set("r.key", &index.to_string()))
            .await
            .expect("set");
    }
    let mut stream = client
        .watch(pb::WatchRequest {
            keys: vec!["r.key".into()],
            start_revision: Some(2),
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    let (caught_up, revision) = initial(&mut stream).await;
    let revisions: Vec<i64> = caught_up
        .iter()
        .filter_map(|e| e.entry.as_ref())
        .map(|e| e.revision)
        .collect();
    assert_eq!(revisions, [3, 4, 5]);
    assert_eq!(revision, 5);
    client.set(set("r.key", "6")).await.expect("set");
    let live = events(&mut stream, 1).await;
    assert_eq!(summary(&live)[0].3, 6);
    drop(stream);

    // Disconnected at 6: three more changes, then resume from 6.
    for index in 7..=9 {
        client
            .set(set("r.key", &index.to_string()))
            .await
            .expect("set");
    }
    let mut resumed = client
        .watch(pb::WatchRequest {
            keys: vec!["r.key".into()],
            start_revision: Some(6),
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    let (missed, _) = initial(&mut resumed).await;
    let values: Vec<String> = summary(&missed).into_iter().map(|s| s.2).collect();
    assert_eq!(values, ["7", "8", "9"]);
    client.set(set("r.key", "10")).await.expect("set");
    assert_eq!(summary(&events(&mut resumed, 1).await)[0].2, "10");

    // A revision from the future waits for it.
    let mut ahead = client
        .watch(pb::WatchRequest {
            keys: vec!["r.key".into()],
            start_revision: Some(10),
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    let (nothing, _) = initial(&mut ahead).await;
    assert!(nothing.is_empty());
    server.stop().await;
}

async fn watch_refuses_compacted_revisions(database: &TestDatabase) {
    let store = database.store().await;
    let server = support::start_server(store.clone()).await;
    let client = server.client().await;
    for index in 1..=3 {
        client
            .set(set("old", &index.to_string()))
            .await
            .expect("set");
    }
    store
        .config()
        .compact(store.clock().now_micros() + 1)
        .await
        .expect("compact");
    let status = match client
        .watch(pb::WatchRequest {
            start_revision: Some(1),
            ..pb::WatchRequest::default()
        })
        .await
    {
        Ok(_) => panic!("a compacted revision must be refused"),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(
        status
            .get_error_details()
            .error_info()
            .map(|i| i.reason.clone()),
        Some("REVISION_COMPACTED".to_string())
    );
    // Resuming from the compacted revision itself is fine: nothing was lost.
    let mut stream = client
        .watch(pb::WatchRequest {
            start_revision: Some(3),
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch from the compaction point");
    let (nothing, _) = initial(&mut stream).await;
    assert!(nothing.is_empty());
    server.stop().await;
}

async fn slow_watcher_gets_coalesced_events(database: &TestDatabase) {
    let settings = pharos_config::ConfigSettings {
        watch: pharos_config::settings::WatchSettings {
            buffer: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let server =
        support::start_server_with(database.store().await, settings, Default::default()).await;
    // In-process, so nothing but the hub buffers the events.
    let local = pharos_config::client::api(server.service.clone());
    let mut slow = local
        .watch(pb::WatchRequest {
            prefixes: vec!["hot.".into()],
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    let (_, start) = initial(&mut slow).await;
    let client = server.client().await;
    let mut fast = client
        .watch(pb::WatchRequest {
            prefixes: vec!["hot.".into()],
            ..pb::WatchRequest::default()
        })
        .await
        .expect("watch");
    initial(&mut fast).await;

    for index in 0..200 {
        let key = if index % 2 == 0 { "hot.a" } else { "hot.b" };
        client.set(set(key, &index.to_string())).await.expect("set");
    }
    // The fast watcher keeps up and sees every change.
    let all = events(&mut fast, 200).await;
    assert_eq!(all.len(), 200);
    // The slow one sees at most its buffer's worth, ending with the latest
    // value of each key at its true revision.
    let mut coalesced = Vec::new();
    let mut last = start;
    while last < start + 200 {
        let response = next(&mut slow).await;
        coalesced.extend(response.events);
        last = response.revision;
    }
    assert!(
        coalesced.len() < 200,
        "events were coalesced: {}",
        coalesced.len()
    );
    let tail = summary(&coalesced[coalesced.len() - 2..]);
    assert_eq!(
        tail,
        [
            (
                pb::ChangeKind::Put as i32,
                "hot.a".into(),
                "198".into(),
                start + 199
            ),
            (
                pb::ChangeKind::Put as i32,
                "hot.b".into(),
                "199".into(),
                start + 200
            ),
        ]
    );
    let revisions: Vec<i64> = summary(&coalesced).into_iter().map(|s| s.3).collect();
    assert!(
        revisions.windows(2).all(|pair| pair[0] < pair[1]),
        "in revision order"
    );
    server.stop().await;
}

async fn cache_serves_repeated_gets(database: &TestDatabase) {
    let server = support::start_server(database.store().await).await;
    let client = server.client().await;
    client.set(set("hot", "1")).await.expect("set");
    for _ in 0..100 {
        client.get(get("hot", "")).await.expect("get");
    }
    client.set(set("hot", "2")).await.expect("set");
    assert_eq!(client.get(get("hot", "")).await.expect("get").value, "2");
    let stats = client.cache_stats().await.expect("stats");
    assert_eq!(stats.misses, 1, "only the first get reads the database");
    assert_eq!(stats.hits, 100);
    assert!(stats.hit_rate > 0.99);
    server.stop().await;
}

async fn auth_guards_everything_but_health(database: &TestDatabase) {
    let server_settings = pharos_runtime::ServerSettings {
        auth: pharos_runtime::AuthSettings {
            tokens: vec!["deployer:s3cret".into()],
            tokens_file: None,
        },
        ..Default::default()
    };
    let server =
        support::start_server_with(database.store().await, Default::default(), server_settings)
            .await;
    let anonymous = server.client().await;
    let status = anonymous.get(get("k", "")).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let wrong = server.client_as(Some("guess"), None).await;
    assert_eq!(
        wrong.get(get("k", "")).await.expect_err("bad token").code(),
        Code::Unauthenticated
    );
    let good = server.client_as(Some("s3cret"), Some("spoofed")).await;
    let entry = good.set(set("k", "v")).await.expect("authorized");
    assert_eq!(entry.updated_by, "deployer", "the token names the actor");

    let channel = tonic::transport::Endpoint::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "pharos.config.v1.ConfigService".into(),
        })
        .await
        .expect("health needs no token")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.stop().await;
}
