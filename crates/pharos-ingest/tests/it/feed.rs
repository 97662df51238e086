//! The committed-data feed through the real `Subscribe` RPC on both backends: every committed
//! batch exactly once and in position order while concurrent writers run and the subscriber
//! does not read (publishing never waits for it), exact resume after a position (also across a
//! restart), the signal filter, batches past retention announced as missed, and subscriptions
//! to a signal whose batches are not published refused (ended when publishing stops).

use std::collections::HashSet;
use std::time::Duration;

use pharos_ingest::IngestSettings;
use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::subscribe_response::Item;
use pharos_store::testing::TestDatabase;
use tonic::Streaming;

use super::{Harness as _, TestServer, point, restart, start_server, write};

pharos_store::backend_tests!(
    every_committed_batch_arrives_once_in_order,
    resume_after_a_position_is_exact,
    batches_past_retention_are_announced_as_missed,
    a_signal_not_published_is_refused,
);

async fn subscribe(
    server: &TestServer,
    signals: &[pb::FeedSignal],
    after: Option<u64>,
) -> Streaming<pb::SubscribeResponse> {
    server
        .client()
        .await
        .subscribe(pb::SubscribeRequest {
            signals: signals.iter().map(|signal| *signal as i32).collect(),
            after_position: after,
        })
        .await
        .expect("subscribe")
        .into_inner()
}

async fn next(stream: &mut Streaming<pb::SubscribeResponse>) -> Item {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a feed item within 10 s")
        .expect("stream")
        .expect("not ended")
        .item
        .expect("item")
}

fn batch(item: Item) -> pb::CommittedBatch {
    match item {
        Item::Batch(batch) => batch,
        other => panic!("unexpected {other:?}"),
    }
}

fn security_event(event_type: &str) -> pb::SecurityEvent {
    pb::SecurityEvent {
        event_type: event_type.to_owned(),
        user_id: "bob".to_owned(),
        source_ip: "192.0.2.1".to_owned(),
        severity: pb::Severity::High as i32,
        ..Default::default()
    }
}

async fn every_committed_batch_arrives_once_in_order(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    // Subscribed from now on, and not reading while the writes below run.
    let mut stream = subscribe(&server, &[], None).await;
    // From now on: the first item says where "now" is (nothing committed yet).
    match next(&mut stream).await {
        Item::Started(started) => assert_eq!(started.position, 0),
        other => panic!("expected Started first, got {other:?}"),
    }
    let now = server.store.clock().now_micros();
    let mut writers = Vec::new();
    for writer in 0..4i64 {
        let mut client = server.client().await;
        writers.push(tokio::spawn(async move {
            for request in 0..25i64 {
                let points = (0..40i64)
                    .map(|i| {
                        let host = format!("h{}", i % 5);
                        let time = now - writer * 1_000_000 - request * 1_000 - i;
                        point("feed_total", &[("host", &host)], time, i as f64)
                    })
                    .collect();
                let reply = client.write_metrics(write(points)).await.expect("write");
                assert_eq!(reply.into_inner().accepted, 40);
            }
        }));
    }
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .expect("writes finish while the subscriber is not reading")
            .expect("writer");
    }
    let reply = server
        .client()
        .await
        .write_security_events(pb::WriteSecurityEventsRequest {
            events: vec![
                security_event("auth_failure"),
                security_event("sql_injection_attempt"),
            ],
        })
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted, 2);

    let mut seen_points = HashSet::new();
    let mut described = HashSet::new();
    let mut last_position = None;
    let mut events = Vec::new();
    while seen_points.len() < 4_000 || events.is_empty() {
        let batch = batch(next(&mut stream).await);
        if let Some(last) = last_position {
            assert_eq!(
                batch.position,
                last + 1,
                "positions are gap-free and in order"
            );
        }
        last_position = Some(batch.position);
        match batch.items.expect("items") {
            pb::committed_batch::Items::Metrics(metrics) => {
                for series in metrics.series {
                    assert_eq!(series.name, "feed_total");
                    assert_eq!(series.labels.len(), 1);
                    assert!(described.insert(series.id), "each series described once");
                }
                for point in metrics.points {
                    assert!(described.contains(&point.series_id), "described before use");
                    assert!(
                        seen_points.insert((point.series_id, point.time_unix_nano)),
                        "no point twice"
                    );
                }
            }
            pb::committed_batch::Items::SecurityEvents(batch) => events.extend(batch.events),
        }
    }
    assert_eq!(seen_points.len(), 4_000);
    assert_eq!(described.len(), 5);
    let types: Vec<&str> = events
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert_eq!(types, ["auth_failure", "sql_injection_attempt"]);
    assert_eq!(
        (
            events[0].user_id.as_str(),
            events[0].source_ip.as_str(),
            events[0].severity
        ),
        ("bob", "192.0.2.1", pb::Severity::High as i32)
    );
    assert_eq!(last_position, Some(server.service.feed().head() as u64));
}

async fn resume_after_a_position_is_exact(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let mut client = server.client().await;
    let now = server.store.clock().now_micros();
    for i in 0..5 {
        client
            .write_metrics(write(vec![point("resume_total", &[], now - i, i as f64)]))
            .await
            .expect("write");
    }
    client
        .write_security_events(pb::WriteSecurityEventsRequest {
            events: vec![security_event("rate_limit_violation")],
        })
        .await
        .expect("write");

    let mut from_start = subscribe(&server, &[], Some(0)).await;
    let positions: Vec<u64> = {
        let mut positions = Vec::new();
        for _ in 0..6 {
            positions.push(batch(next(&mut from_start).await).position);
        }
        positions
    };
    assert_eq!(positions, [1, 2, 3, 4, 5, 6]);

    let mut from_three = subscribe(&server, &[], Some(3)).await;
    let mut values = Vec::new();
    for _ in 0..2 {
        if let Some(pb::committed_batch::Items::Metrics(metrics)) =
            batch(next(&mut from_three).await).items
        {
            values.extend(metrics.points.iter().map(|point| point.value));
        }
    }
    assert_eq!(values, [3.0, 4.0]);

    let mut only_events = subscribe(&server, &[pb::FeedSignal::SecurityEvents], Some(0)).await;
    let first = batch(next(&mut only_events).await);
    assert_eq!(first.position, 6);

    // A restart keeps the positions: the next batch is 7, and a subscriber resuming after 6
    // gets it and nothing before.
    drop((from_start, from_three, only_events, client));
    let restarted = restart(server, IngestSettings::default()).await;
    let mut after_six = subscribe(&restarted, &[], Some(6)).await;
    restarted
        .client()
        .await
        .write_metrics(write(vec![point(
            "resume_total",
            &[],
            restarted.store.clock().now_micros(),
            9.0,
        )]))
        .await
        .expect("write");
    assert_eq!(batch(next(&mut after_six).await).position, 7);
}

async fn batches_past_retention_are_announced_as_missed(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let mut client = server.client().await;
    for i in 0..3 {
        client
            .write_metrics(write(vec![point(
                "missed_total",
                &[],
                server.store.clock().now_micros(),
                f64::from(i),
            )]))
            .await
            .expect("write");
    }
    let deleted = server
        .service
        .feed()
        .expire(Duration::ZERO)
        .await
        .expect("expire");
    assert_eq!(deleted, 3);
    client
        .write_metrics(write(vec![point(
            "missed_total",
            &[],
            server.store.clock().now_micros(),
            3.0,
        )]))
        .await
        .expect("write");

    let mut stream = subscribe(&server, &[], Some(1)).await;
    match next(&mut stream).await {
        Item::Missed(missed) => assert_eq!((missed.first_position, missed.last_position), (2, 3)),
        other => panic!("expected Missed, got {other:?}"),
    }
    assert_eq!(batch(next(&mut stream).await).position, 4);
}

async fn a_signal_not_published_is_refused(database: &TestDatabase) {
    let mut settings = IngestSettings::default();
    settings.feed.metrics = false;
    let server = start_server(database, settings.clone()).await;
    for signals in [&[pb::FeedSignal::Metrics][..], &[]] {
        let refused = server
            .client()
            .await
            .subscribe(pb::SubscribeRequest {
                signals: signals.iter().map(|signal| *signal as i32).collect(),
                after_position: None,
            })
            .await
            .expect_err("metric points are not published");
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        assert!(
            refused.message().contains("ingest.feed.metrics = true"),
            "{}",
            refused.message()
        );
    }
    let mut events = subscribe(&server, &[pb::FeedSignal::SecurityEvents], None).await;
    assert!(matches!(next(&mut events).await, Item::Started(_)));

    // Published again: a subscription opens; unpublished while it is open: it ends, refused.
    settings.feed.metrics = true;
    server.service.apply_settings(&settings);
    let mut metrics = subscribe(&server, &[pb::FeedSignal::Metrics], None).await;
    assert!(matches!(next(&mut metrics).await, Item::Started(_)));
    settings.feed.metrics = false;
    server.service.apply_settings(&settings);
    let ended = tokio::time::timeout(Duration::from_secs(10), metrics.message())
        .await
        .expect("the subscription ends within 10 s")
        .expect_err("ended with a status");
    assert_eq!(ended.code(), tonic::Code::FailedPrecondition, "{ended:?}");
    // The security events' subscription goes on.
    server
        .client()
        .await
        .write_security_events(pb::WriteSecurityEventsRequest {
            events: vec![security_event("root_login")],
        })
        .await
        .expect("write");
    assert!(matches!(next(&mut events).await, Item::Batch(_)));
}
