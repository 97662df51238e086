//! The committed-data feed on both backends: a batch of metric points or security events appends
//! its feed row in the batch's transaction, stamped by the store's clock, at gap-free positions;
//! readers see rows after a position in order; old rows expire.

use std::time::Duration;

use pharos_clock::Clock;
use pharos_store::Store;
use pharos_store::signals::feed::{FeedEntry, FeedSignal};
use pharos_store::signals::metrics::{NewSeries, PointRow, SeriesKey};
use pharos_store::signals::security_events::SecurityEventRow;
use pharos_store::testing::TestDatabase;

use super::DAY_START_US;

pharos_store::backend_tests!(
    batches_append_their_feed_rows_in_order,
    old_feed_rows_expire,
    recent_points_are_one_snapshot_with_their_position,
);

async fn series_id(store: &Store) -> i64 {
    let new = NewSeries {
        key: SeriesKey {
            name: "up".into(),
            labels_key: String::new(),
        },
        labels: Vec::new(),
    };
    let ids = store
        .metrics()
        .create_series(std::slice::from_ref(&new))
        .await
        .expect("create");
    ids[&new.key].0
}

fn points(series_id: i64, value: f64) -> Vec<PointRow> {
    vec![
        PointRow {
            series_id,
            time_us: DAY_START_US,
            value,
        },
        PointRow {
            series_id,
            time_us: DAY_START_US + 1,
            value: value + 1.0,
        },
    ]
}

/// A feed row for a metrics batch; its payload is opaque to the store (ingest owns the format).
fn metrics_entry(points: &[PointRow]) -> FeedEntry {
    FeedEntry {
        signal: FeedSignal::Metrics,
        items: points.len() as i32,
        payload: format!("{} points", points.len()).into_bytes(),
    }
}

async fn batches_append_their_feed_rows_in_order(database: &TestDatabase) {
    let (clock, hand) = Clock::manual(DAY_START_US + 1_000);
    let store = database.store_with_clock(clock).await;
    let id = series_id(&store).await;
    let (metrics, events, feed) = (store.metrics(), store.security_events(), store.feed());
    assert_eq!(feed.head().await.expect("head"), 0);

    let first = points(id, 1.0);
    let position = metrics
        .insert_points(&first, Some(&metrics_entry(&first)))
        .await
        .expect("metrics batch");
    assert_eq!(position, Some(1));
    // A batch without a feed row takes no position.
    assert_eq!(
        metrics
            .insert_points(&points(id, 5.0), None)
            .await
            .expect("plain"),
        None
    );
    hand.advance(Duration::from_secs(1));
    let event = SecurityEventRow {
        time_ns: DAY_START_US * 1_000,
        event_type: "root_login".into(),
        severity: 5,
        attributes: "{}".into(),
        ..SecurityEventRow::default()
    };
    let position = events
        .insert(
            &[event],
            Some(&FeedEntry {
                signal: FeedSignal::SecurityEvents,
                items: 1,
                payload: b"event".to_vec(),
            }),
        )
        .await
        .expect("events batch");
    assert_eq!(position, Some(2));
    assert_eq!(feed.head().await.expect("head"), 2);

    let rows = feed.read_after(0, 10).await.expect("read");
    let summary: Vec<(i64, FeedSignal, i64, i32)> = rows
        .iter()
        .map(|row| (row.position, row.signal, row.committed_us, row.items))
        .collect();
    assert_eq!(
        summary,
        [
            (1, FeedSignal::Metrics, DAY_START_US + 1_000, 2),
            (2, FeedSignal::SecurityEvents, DAY_START_US + 1_001_000, 1),
        ]
    );
    assert_eq!(rows[0].payload, b"2 points");
    assert_eq!(rows[1].payload, b"event");
    let after_one = feed.read_after(1, 10).await.expect("after 1");
    assert_eq!(
        after_one.iter().map(|row| row.position).collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(feed.read_after(0, 1).await.expect("limit")[0].position, 1);
    assert!(feed.read_after(2, 10).await.expect("after head").is_empty());
}

async fn old_feed_rows_expire(database: &TestDatabase) {
    let start = DAY_START_US;
    let (clock, hand) = Clock::manual(start);
    let store = database.store_with_clock(clock).await;
    let id = series_id(&store).await;
    let (metrics, feed) = (store.metrics(), store.feed());
    for value in [1.0, 2.0] {
        let batch = points(id, value);
        metrics
            .insert_points(&batch, Some(&metrics_entry(&batch)))
            .await
            .expect("batch");
        hand.advance(Duration::from_secs(60));
    }
    assert_eq!(feed.expire(start + 1).await.expect("expire"), 1);
    let left: Vec<i64> = feed
        .read_after(0, 10)
        .await
        .expect("read")
        .into_iter()
        .map(|row| row.position)
        .collect();
    assert_eq!(left, [2]);
    assert_eq!(feed.head().await.expect("head"), 2, "expiry keeps the head");
    assert_eq!(
        feed.expire(start + 120_000_000).await.expect("expire all"),
        1
    );
    assert!(feed.read_after(0, 10).await.expect("read").is_empty());
}

/// `recent_points` reads the points and the feed position from one snapshot: while batches
/// commit beside it, every answer holds exactly the points of the batches up to its position
/// (older points, compacted into chunks, included; points before `from` and series without
/// recent points left out).
async fn recent_points_are_one_snapshot_with_their_position(database: &TestDatabase) {
    const MINUTE_US: i64 = 60_000_000;
    let start = DAY_START_US + 2 * 3_600_000_000;
    let (clock, _) = Clock::manual(start + 60 * MINUTE_US);
    let store = database.store_with_clock(clock).await;
    let metrics = store.metrics();
    let created = metrics
        .create_series(&[named("recent"), named("old")])
        .await
        .expect("create");
    let (recent, old) = (
        created[&named("recent").key].0,
        created[&named("old").key].0,
    );
    let point = |series_id, time_us, value| PointRow {
        series_id,
        time_us,
        value,
    };
    // Compacted: a window of `recent` 30 minutes before the writes below, and `old` before `from`.
    let early = [
        point(recent, start + 5 * MINUTE_US, 1.0),
        point(recent, start + 6 * MINUTE_US, 2.0),
        point(old, start - 30 * MINUTE_US, 3.0),
    ];
    let first = metrics
        .insert_points(&early, Some(&metrics_entry(&early)))
        .await
        .expect("early")
        .expect("a position");
    let compacted = metrics
        .compact(start + 60 * MINUTE_US)
        .await
        .expect("compact");
    assert!(compacted.windows >= 1, "{compacted:?}");

    let writer = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            for n in 0..40_i64 {
                let batch = [point(recent, start + 40 * MINUTE_US + n, n as f64)];
                metrics
                    .insert_points(&batch, Some(&metrics_entry(&batch)))
                    .await
                    .expect("batch");
            }
        })
    };
    let mut seen = Vec::new();
    loop {
        let done = writer.is_finished();
        let read = metrics.recent_points(start).await.expect("recent points");
        let ids: Vec<i64> = read.series.iter().map(|s| s.0).collect();
        assert_eq!(ids, [recent], "only series with points since `from`");
        let [(id, points)] = read.points.as_slice() else {
            panic!("one series expected: {:?}", read.points);
        };
        assert_eq!(*id, recent);
        let batches = usize::try_from(read.position - first).expect("position");
        assert_eq!(
            points.len(),
            2 + batches,
            "position {} must hold exactly the points of its batches: {points:?}",
            read.position
        );
        assert_eq!(
            &points[..2],
            &[(start + 5 * MINUTE_US, 1.0), (start + 6 * MINUTE_US, 2.0)]
        );
        seen.push(read.position);
        if done {
            break;
        }
    }
    writer.await.expect("writer");
    assert_eq!(seen.last(), Some(&(first + 40)));
}

fn named(name: &str) -> NewSeries {
    NewSeries {
        key: SeriesKey {
            name: name.into(),
            labels_key: String::new(),
        },
        labels: Vec::new(),
    }
}
