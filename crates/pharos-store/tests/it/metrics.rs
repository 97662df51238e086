//! The metrics repository on both backends: series found and created in batches, points stored
//! and read back exactly (NaN included), hourly and daily rollups driven by a manual clock, and
//! expiry of points and rollups.

use std::time::Duration;

use pharos_clock::Clock;
use pharos_store::signals::metrics::{NewSeries, PointRow, RollupRow, SeriesKey};
use pharos_store::testing::TestDatabase;
use pharos_store::{Backend, Store};

use super::{DAY_START_US, DAY_US, HOUR_US};

pharos_store::backend_tests!(
    series_are_found_and_created_once,
    series_are_selected_by_name_and_label_values,
    points_round_trip_in_time_order,
    roll_up_waits_for_the_hour_to_end,
    expiry_removes_old_points_and_rollups,
    nan_bit_patterns_survive,
    an_abandoned_read_stops_on_the_server,
    reads_of_points_keep_to_their_own_pool,
    compacted_windows_read_exactly_as_their_points,
);

fn series(name: &str, labels: &[(&str, &str)]) -> NewSeries {
    let labels: Vec<(String, String)> = labels
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    let labels_key = labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect::<Vec<_>>()
        .join(",");
    NewSeries {
        key: SeriesKey {
            name: name.to_owned(),
            labels_key,
        },
        labels,
    }
}

async fn one_series(store: &Store) -> i64 {
    let new = series("requests_total", &[("route", "/")]);
    let ids = store
        .metrics()
        .create_series(std::slice::from_ref(&new))
        .await
        .expect("create");
    ids[&new.key].0
}

async fn series_are_found_and_created_once(database: &TestDatabase) {
    let metrics = database.store().await.metrics();
    let get = series("http_requests", &[("method", "GET")]);
    let post = series("http_requests", &[("method", "POST")]);
    let up = series("up", &[]);
    let keys = [get.key.clone(), post.key.clone()];
    assert!(metrics.find_series(&keys).await.expect("find").is_empty());

    let created = metrics
        .create_series(&[get.clone(), post.clone()])
        .await
        .expect("create");
    assert!(created.values().all(|&(_, new)| new));
    assert_ne!(created[&get.key].0, created[&post.key].0);

    let again = metrics
        .create_series(&[post.clone(), up.clone()])
        .await
        .expect("create again");
    assert_eq!(again[&post.key], (created[&post.key].0, false));
    assert!(again[&up.key].1);

    let found = metrics
        .find_series(&[get.key.clone(), post.key.clone(), up.key.clone()])
        .await
        .expect("find");
    assert_eq!(found.len(), 3);
    assert_eq!(found[&get.key], created[&get.key].0);

    let of_name = metrics.series_of("http_requests").await.expect("series of");
    assert_eq!(
        of_name
            .iter()
            .map(|row| row.labels_key.as_str())
            .collect::<Vec<_>>(),
        ["method=\"GET\"", "method=\"POST\""]
    );
    let counts = metrics.series_counts().await.expect("counts");
    assert_eq!((counts["http_requests"], counts["up"]), (2, 1));
    let described = metrics
        .series_by_ids(&[found[&get.key]])
        .await
        .expect("by ids");
    assert_eq!(described.len(), 1);
    let labels: serde_json::Value = serde_json::from_str(&described[0].2).expect("json labels");
    assert_eq!(labels, serde_json::json!({"method": "GET"}));
}

async fn series_are_selected_by_name_and_label_values(database: &TestDatabase) {
    let metrics = database.store().await.metrics();
    let all = [
        series("http_requests", &[("job", "api"), ("method", "GET")]),
        series("http_requests", &[("job", "api"), ("method", "POST")]),
        series("http_requests", &[("job", "web"), ("method", "GET")]),
        series("up", &[("job", "api")]),
        series("up", &[("job", "api's \"quoted\" \\ job")]),
        series("up", &[("dotted.name", "x")]),
    ];
    metrics.create_series(&all).await.expect("create");
    let select = async |name: Option<&str>, wanted: &[(&str, &[&str])]| {
        let rows = metrics.series_labels(name, wanted).await.expect("select");
        let mut found: Vec<String> = rows
            .into_iter()
            .map(|(_, name, labels)| {
                let labels: std::collections::BTreeMap<String, String> =
                    serde_json::from_str(&labels).expect("json labels");
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{name}{{{}}}", labels.join(","))
            })
            .collect();
        found.sort();
        found
    };
    assert_eq!(select(Some("http_requests"), &[]).await.len(), 3);
    assert_eq!(select(None, &[]).await.len(), 6);
    assert_eq!(
        select(
            Some("http_requests"),
            &[("job", &["api"]), ("method", &["GET"])]
        )
        .await,
        ["http_requests{job=api,method=GET}"]
    );
    assert_eq!(
        select(None, &[("job", &["api"])]).await,
        [
            "http_requests{job=api,method=GET}",
            "http_requests{job=api,method=POST}",
            "up{job=api}"
        ]
    );
    assert_eq!(
        select(Some("up"), &[("job", &["api's \"quoted\" \\ job"])]).await,
        ["up{job=api's \"quoted\" \\ job}"]
    );
    assert!(select(Some("up"), &[("job", &["none"])]).await.is_empty());
    assert!(
        select(Some("http_requests"), &[("missing", &["x"])])
            .await
            .is_empty()
    );
    // One of several values, alone, beside one value, and without a name.
    assert_eq!(
        select(Some("http_requests"), &[("job", &["web", "none"])]).await,
        ["http_requests{job=web,method=GET}"]
    );
    assert_eq!(
        select(
            Some("http_requests"),
            &[("job", &["api", "web"]), ("method", &["GET"])]
        )
        .await,
        [
            "http_requests{job=api,method=GET}",
            "http_requests{job=web,method=GET}"
        ]
    );
    assert_eq!(
        select(
            None,
            &[
                ("job", &["web", "api's \"quoted\" \\ job"]),
                ("method", &["GET", "PUT"])
            ]
        )
        .await,
        ["http_requests{job=web,method=GET}"]
    );
    assert_eq!(
        select(None, &[("job", &["api's \"quoted\" \\ job", "none"])]).await,
        ["up{job=api's \"quoted\" \\ job}"]
    );
    // A label asked twice: both sets apply.
    assert_eq!(
        select(None, &[("job", &["api", "web"]), ("job", &["web", "none"])]).await,
        ["http_requests{job=web,method=GET}"]
    );
    assert!(
        select(Some("up"), &[("missing", &["x", "y"])])
            .await
            .is_empty()
    );
    // No value to choose from: no series.
    assert!(select(Some("up"), &[("job", &[])]).await.is_empty());
    // Any label name, a dotted one too.
    assert_eq!(
        select(Some("up"), &[("dotted.name", &["x"])]).await,
        ["up{dotted.name=x}"]
    );
    assert!(
        select(Some("up"), &[("dotted.name", &["y", "z"])])
            .await
            .is_empty()
    );
}

async fn points_round_trip_in_time_order(database: &TestDatabase) {
    let store = database.store().await;
    let series_id = one_series(&store).await;
    let metrics = store.metrics();
    let at = |minutes: i64| DAY_START_US + minutes * 60_000_000;
    let points = [
        PointRow {
            series_id,
            time_us: at(2),
            value: 2.5,
        },
        PointRow {
            series_id,
            time_us: at(1),
            value: -1.0,
        },
        PointRow {
            series_id,
            time_us: at(3),
            value: f64::NAN,
        },
        PointRow {
            series_id,
            time_us: at(90),
            value: 7.0,
        },
    ];
    assert_eq!(
        metrics.insert_points(&points, None).await.expect("insert"),
        None
    );
    assert_eq!(metrics.count_points().await.expect("count"), 4);

    let read = metrics
        .read_points(series_id, at(1), at(90))
        .await
        .expect("read");
    assert_eq!(read.len(), 3, "the end of the range is exclusive");
    assert_eq!((read[0], read[1]), ((at(1), -1.0), (at(2), 2.5)));
    assert_eq!(read[2].0, at(3));
    assert!(read[2].1.is_nan());
    // The latest point of each series within a range, as an instant selector reads it.
    let latest = metrics
        .latest_points_of_series(&[series_id], at(0), at(2))
        .await
        .expect("latest");
    assert_eq!(latest, [(series_id, at(2), 2.5)]);
    let latest = metrics
        .latest_points_of_series(&[series_id], at(4), at(89))
        .await
        .expect("latest");
    assert!(latest.is_empty(), "no point in the range: {latest:?}");
    let latest = metrics
        .latest_points_of_series(&[series_id], at(0), at(120))
        .await
        .expect("latest");
    assert_eq!(latest, [(series_id, at(90), 7.0)]);
    assert_eq!(
        metrics.pending_rollups().await.expect("pending"),
        [DAY_START_US, DAY_START_US + HOUR_US]
    );
    if store.backend() == Backend::Postgres {
        assert_eq!(metrics.partition_count().await.expect("partitions"), 1);
    }
}

async fn roll_up_waits_for_the_hour_to_end(database: &TestDatabase) {
    let hour = DAY_START_US + 5 * HOUR_US;
    let (clock, hand) = Clock::manual(hour + 30 * 60_000_000);
    let store = database.store_with_clock(clock).await;
    let series_id = one_series(&store).await;
    let metrics = store.metrics();
    let point = |minute: i64, value: f64| PointRow {
        series_id,
        time_us: hour + minute * 60_000_000,
        value,
    };
    metrics
        .insert_points(&[point(1, 1.0), point(2, 3.0), point(3, f64::NAN)], None)
        .await
        .expect("insert");

    // Half past: the hour has not ended, nothing rolls up.
    let now = || store.clock().now_micros();
    assert_eq!(metrics.roll_up(now()).await.expect("roll up").hours, 0);
    assert_eq!(metrics.pending_rollups().await.expect("pending"), [hour]);

    // The hour ended and settled.
    hand.advance(Duration::from_secs(33 * 60));
    let done = metrics.roll_up(now()).await.expect("roll up");
    assert_eq!((done.hours, done.hourly_rows), (1, 1));
    let expected = RollupRow {
        series_id,
        bucket_us: hour,
        count: 2,
        sum: 4.0,
        min: 1.0,
        max: 3.0,
        nan_count: 1,
    };
    assert_eq!(
        metrics.read_rollups(series_id, true).await.expect("hourly"),
        [expected]
    );
    assert_eq!(
        metrics.read_rollups(series_id, false).await.expect("daily"),
        [RollupRow {
            bucket_us: DAY_START_US,
            ..expected
        }]
    );
    assert!(metrics.pending_rollups().await.expect("pending").is_empty());

    // A late point marks the hour again and the next pass counts it.
    metrics
        .insert_points(&[point(59, -2.0)], None)
        .await
        .expect("late insert");
    assert_eq!(metrics.roll_up(now()).await.expect("again").hours, 1);
    let hourly = metrics.read_rollups(series_id, true).await.expect("hourly");
    assert_eq!(
        (hourly[0].count, hourly[0].sum, hourly[0].min),
        (3, 2.0, -2.0)
    );
    let daily = metrics.read_rollups(series_id, false).await.expect("daily");
    assert_eq!((daily[0].count, daily[0].min), (3, -2.0));
}

async fn expiry_removes_old_points_and_rollups(database: &TestDatabase) {
    let (clock, _hand) = Clock::manual(DAY_START_US + 3 * DAY_US);
    let store = database.store_with_clock(clock).await;
    let series_id = one_series(&store).await;
    let metrics = store.metrics();
    let old = PointRow {
        series_id,
        time_us: DAY_START_US + HOUR_US,
        value: 1.0,
    };
    let recent = PointRow {
        series_id,
        time_us: DAY_START_US + 2 * DAY_US,
        value: 2.0,
    };
    metrics
        .insert_points(&[old, recent], None)
        .await
        .expect("insert");
    let done = metrics
        .roll_up(store.clock().now_micros())
        .await
        .expect("roll up");
    assert_eq!(done.hours, 2);
    let compacted = metrics
        .compact(store.clock().now_micros())
        .await
        .expect("compact");
    assert_eq!((compacted.windows, compacted.chunks), (2, 2));

    // The old point goes with its chunk: a point and a chunk partition, or row each.
    let expired = metrics
        .expire_points(DAY_START_US + DAY_US)
        .await
        .expect("expire points");
    match store.backend() {
        Backend::Postgres => assert_eq!(expired.partitions_dropped, 2),
        Backend::Sqlite => assert_eq!(expired.rows_deleted, 2),
    }
    assert_eq!(metrics.chunk_totals().await.expect("chunks").0, 1);
    let left = metrics
        .read_points(series_id, 0, i64::MAX)
        .await
        .expect("read");
    assert_eq!(left, [(recent.time_us, 2.0)]);

    // Hourly rollups of the first day go; daily ones are kept longer.
    metrics
        .expire_rollups(DAY_START_US + DAY_US, 0)
        .await
        .expect("expire rollups");
    let hourly = metrics.read_rollups(series_id, true).await.expect("hourly");
    assert_eq!(
        hourly.iter().map(|row| row.bucket_us).collect::<Vec<_>>(),
        [recent.time_us]
    );
    assert_eq!(
        metrics
            .read_rollups(series_id, false)
            .await
            .expect("daily")
            .len(),
        2
    );
}

/// Prometheus' staleness marker is a NaN with its own bits and must read back as itself, apart
/// from an ordinary NaN (SQLite stores NaN as NULL, so it keeps the bits beside).
async fn nan_bit_patterns_survive(database: &TestDatabase) {
    let store = database.store().await;
    let series_id = one_series(&store).await;
    let metrics = store.metrics();
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let points = [
        PointRow {
            series_id,
            time_us: DAY_START_US,
            value: stale,
        },
        PointRow {
            series_id,
            time_us: DAY_START_US + 1,
            value: f64::NAN,
        },
    ];
    metrics.insert_points(&points, None).await.expect("insert");
    let read = metrics
        .points_of_series(&[series_id], DAY_START_US, DAY_START_US + 1)
        .await
        .expect("read");
    assert_eq!(read.len(), 2);
    assert_eq!(
        read[0].2.to_bits(),
        stale.to_bits(),
        "the staleness marker keeps its bits"
    );
    assert_eq!(
        read[1].2.to_bits(),
        f64::NAN.to_bits(),
        "an ordinary NaN stays ordinary"
    );
}

/// A read of points whose future is dropped (its query timed out, its caller went away) is
/// canceled on PostgreSQL instead of running to its end: here it waits on a lock held by another
/// connection, is abandoned, and must leave the server's list of running statements at once.
async fn an_abandoned_read_stops_on_the_server(database: &TestDatabase) {
    let store = database.store().await;
    if store.backend() != Backend::Postgres {
        return;
    }
    let series_id = one_series(&store).await;
    let metrics = store.metrics();
    let point = PointRow {
        series_id,
        time_us: DAY_START_US,
        value: 1.0,
    };
    metrics.insert_points(&[point], None).await.expect("insert");
    let admin = sqlx::PgPool::connect(database.url())
        .await
        .expect("connect");
    let mut locker = admin.begin().await.expect("begin");
    sqlx::query("LOCK TABLE metric_points IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .expect("lock");
    let ids = [series_id];
    let read = metrics.points_of_series(&ids, 0, i64::MAX);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), read)
            .await
            .is_err(),
        "the read waits for the lock"
    );
    let left = sessions_after_waiting(
        &admin,
        "state = 'active' AND query LIKE 'WITH pending AS MATERIALIZED%'",
    )
    .await;
    assert_eq!(left, 0, "the abandoned read still runs on the server");
    locker.rollback().await.expect("unlock");
    let read = metrics
        .points_of_series(&[series_id], 0, i64::MAX)
        .await
        .expect("the next read works");
    assert_eq!(read.len(), 1);
    // A finished read's transaction ends as its connection goes back to the pool: none stays
    // idle in a transaction (holding back vacuum).
    let idle = sessions_after_waiting(&admin, "state = 'idle in transaction'").await;
    assert_eq!(idle, 0, "a finished read left its transaction open");
}

/// On PostgreSQL, reads of points run on a pool of their own, no larger than
/// `max_read_connections` however many reads run at once, and every read still answers.
async fn reads_of_points_keep_to_their_own_pool(database: &TestDatabase) {
    if database.store().await.backend() != Backend::Postgres {
        return;
    }
    let settings = pharos_store::StoreSettings {
        max_read_connections: 2,
        ..database.settings()
    };
    let store = Store::connect(&settings).await.expect("connect");
    store.migrate().await.expect("migrate");
    let series_id = one_series(&store).await;
    let metrics = store.metrics();
    let points: Vec<PointRow> = (0..10)
        .map(|i| PointRow {
            series_id,
            time_us: DAY_START_US + i * 15_000_000,
            value: i as f64,
        })
        .collect();
    metrics.insert_points(&points, None).await.expect("insert");
    let ids = [series_id];
    let reads = (0..12).map(|n| {
        let metrics = metrics.clone();
        async move {
            if n % 2 == 0 {
                metrics
                    .points_of_series(&ids, DAY_START_US, DAY_START_US + DAY_US)
                    .await
                    .map(|read| read.len())
            } else {
                metrics
                    .latest_points_of_series(&ids, DAY_START_US, DAY_START_US + DAY_US)
                    .await
                    .map(|read| read.len())
            }
        }
    });
    let counts = futures::future::try_join_all(reads).await.expect("reads");
    for (n, count) in counts.iter().enumerate() {
        assert_eq!(*count, if n % 2 == 0 { 10 } else { 1 }, "read {n}");
    }
    let admin = sqlx::PgPool::connect(database.url())
        .await
        .expect("connect");
    let opened: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1",
    )
    .bind(pharos_store::METRIC_READS_APPLICATION)
    .fetch_one(&admin)
    .await
    .expect("pg_stat_activity");
    assert!(
        (1..=2).contains(&opened),
        "the pool of reads holds {opened} connections, at most 2 allowed"
    );
}

/// The sessions of the test's database that match `condition` (on `pg_stat_activity`), polled
/// for up to two seconds until there are none.
async fn sessions_after_waiting(admin: &sqlx::PgPool, condition: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND {condition}"
    );
    let mut left = 0;
    for _ in 0..100 {
        left = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(admin)
            .await
            .expect("pg_stat_activity");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    left
}

/// A window compacted into chunks reads exactly as its points did, bit for bit (NaN, the
/// staleness marker, duplicate times, uneven steps), whatever the range's edges, and so does
/// an hour once its windows' chunks are compacted into hour chunks; reads do take compacted
/// windows from their chunks; a late point makes its window pending again (read from points,
/// the rest of its hour's chunk still from the chunk, until compacted again); a window that
/// has not ended is left pending.
async fn compacted_windows_read_exactly_as_their_points(database: &TestDatabase) {
    const MINUTE: i64 = 60_000_000;
    let start = DAY_START_US + HOUR_US;
    let (clock, hand) = Clock::manual(start + 45 * MINUTE);
    let store = database.store_with_clock(clock).await;
    let metrics = store.metrics();
    let new = [series("up", &[("job", "a")]), series("up", &[("job", "b")])];
    let created = metrics.create_series(&new).await.expect("create");
    let (a, b) = (created[&new[0].key].0, created[&new[1].key].0);
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let mut points: Vec<PointRow> = (0..180)
        .map(|i| PointRow {
            series_id: a,
            time_us: start + i * 15_000_000,
            value: match i {
                7 => f64::NAN,
                8 => stale,
                _ => (i * 3) as f64 + 0.25,
            },
        })
        .collect();
    points.extend(
        [3, 17, 17, 250, 601, 1_199, 1_800, 2_399]
            .iter()
            .map(|&s| PointRow {
                series_id: b,
                time_us: start + s * 1_000_000 + 123,
                value: -(s as f64),
            }),
    );
    // The newest points arrive first: batches need not be in time order.
    let (older, newer) = points.split_at(100);
    metrics.insert_points(newer, None).await.expect("insert");
    metrics.insert_points(older, None).await.expect("insert");

    let ranges = [
        (0, i64::MAX),
        (start, start + 45 * MINUTE),
        (start + 5 * MINUTE + 1, start + 25 * MINUTE - 1),
        (start + 10 * MINUTE, start + 10 * MINUTE),
        (start + 17 * 1_000_000 + 123, start + 17 * 1_000_000 + 123),
        (start + 31 * MINUTE, start + 29 * MINUTE),
    ];
    let read_all = || async {
        let mut reads = Vec::new();
        for &(from, to) in &ranges {
            let rows = metrics
                .points_of_series(&[a, b], from, to)
                .await
                .expect("read");
            reads.push(sortable(rows));
        }
        reads
    };
    let before = read_all().await;
    assert_eq!(before[0].len(), 188);
    assert_eq!(before[5].len(), 0, "an inverted range is empty");

    // Twelve minutes later the five windows with points have ended and settled, their hour
    // has not: one chunk a series and window.
    hand.advance(Duration::from_secs(12 * 60));
    assert_eq!(compact_now(&store).await, (5, 0, 8, 188));
    assert!(metrics.pending_windows().await.expect("pending").is_empty());
    assert_eq!(read_all().await, before, "chunks read as their points");

    // A point in the hour's last window; once the hour has ended, that window's compaction
    // compacts the hour: one chunk a series replaces its window chunks.
    let last = PointRow {
        series_id: b,
        time_us: start + 55 * MINUTE,
        value: 5.5,
    };
    metrics.insert_points(&[last], None).await.expect("insert");
    let before = read_all().await;
    assert_eq!(before[0].len(), 189);
    hand.advance(Duration::from_secs(20 * 60));
    assert_eq!(compact_now(&store).await, (1, 1, 2, 189));
    assert_eq!(metrics.chunk_totals().await.expect("totals").0, 2);
    assert_eq!(read_all().await, before, "hour chunks read as their points");

    // The reads do come from the chunks: with the points gone from their table, they are
    // still found.
    remove_points(database, store.backend()).await;
    assert_eq!(read_all().await, before, "read from chunks alone");

    // A late point marks its window pending; the window is read from its points (the late
    // one alone, the others having been removed above) and, once compacted again, from its
    // new chunk.
    let late = PointRow {
        series_id: a,
        time_us: start + 44 * MINUTE + 7,
        value: 99.0,
    };
    metrics.insert_points(&[late], None).await.expect("late");
    let window = start + 40 * MINUTE;
    assert_eq!(metrics.pending_windows().await.expect("pending"), [window]);
    let read = metrics
        .points_of_series(&[a], window, i64::MAX)
        .await
        .expect("read");
    assert_eq!(read, [(a, late.time_us, 99.0)]);
    // The rest of the hour still comes from its chunk.
    let mut expected: Vec<(i64, i64, u64)> = before[0]
        .iter()
        .filter(|&&(id, time, _)| id == a && !(window..window + 10 * MINUTE).contains(&time))
        .copied()
        .collect();
    expected.push((a, late.time_us, 99f64.to_bits()));
    let read = metrics
        .points_of_series(&[a], 0, i64::MAX)
        .await
        .expect("read");
    assert_eq!(sortable(read), expected);
    // Its hour is compacted again, from the points it has now: the late one.
    assert_eq!(compact_now(&store).await, (1, 1, 1, 1));
    let read = metrics
        .points_of_series(&[a], window, i64::MAX)
        .await
        .expect("read");
    assert_eq!(read, [(a, late.time_us, 99.0)]);

    // A window that has not ended (or not settled) stays pending and reads from its points.
    let now = store.clock().now_micros();
    let fresh = PointRow {
        series_id: b,
        time_us: now - MINUTE,
        value: 1.0,
    };
    metrics.insert_points(&[fresh], None).await.expect("fresh");
    assert_eq!(metrics.compact(now).await.expect("compact").windows, 0);
    let read = metrics
        .points_of_series(&[b], now - 2 * MINUTE, now)
        .await
        .expect("read");
    assert_eq!(read, [(b, fresh.time_us, 1.0)]);
}

/// Compacts what is due by the store's clock: windows (or hours), whole hours, chunks, points.
async fn compact_now(store: &Store) -> (u64, u64, u64, u64) {
    let done = store
        .metrics()
        .compact(store.clock().now_micros())
        .await
        .expect("compact");
    (done.windows, done.hours, done.chunks, done.points)
}

/// Rows with their values' bits, sorted (points at the same time may come in either order).
fn sortable(rows: Vec<(i64, i64, f64)>) -> Vec<(i64, i64, u64)> {
    let mut rows: Vec<(i64, i64, u64)> = rows
        .into_iter()
        .map(|(id, time, value)| (id, time, value.to_bits()))
        .collect();
    rows.sort_unstable();
    rows
}

/// Deletes every row of `metric_points`, behind the repository's back.
async fn remove_points(database: &TestDatabase, backend: Backend) {
    match backend {
        Backend::Postgres => delete_points::<sqlx::Postgres>(database.url()).await,
        Backend::Sqlite => delete_points::<sqlx::Sqlite>(database.url()).await,
    }
}

async fn delete_points<DB: sqlx::Database>(url: &str)
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let pool = sqlx::Pool::<DB>::connect(url).await.expect("connect");
    sqlx::query::<DB>("DELETE FROM metric_points")
        .execute(&pool)
        .await
        .expect("delete");
}
