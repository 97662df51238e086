//! The ingest service over real gRPC on loopback, on SQLite and PostgreSQL alike: exact round
//! trips, partial success, the cardinality limit, concurrent writers, and the overload and outage
//! statuses with their retry hints, rollups; spans, logs, security events, the `Write` stream and
//! OTLP traces and logs in `records.rs`; OTLP metrics under Prometheus' names in
//! `otlp_metrics.rs`; the committed-data feed in `feed.rs`.

mod feed;
mod otlp_metrics;
mod records;

use std::sync::Arc;
use std::time::Duration;

use pharos_ingest::{IngestModule, IngestService, IngestSettings};
use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use pharos_runtime::ServerSettings;
use pharos_store::Store;
use pharos_store::signals::metrics::MetricsRepository;
use pharos_store::testing::TestDatabase;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

pharos_store::backend_tests!(
    points_round_trip_exactly,
    partial_success_reports_each_bad_item,
    cardinality_limit_rejects_new_series,
    concurrent_writers_are_all_committed,
    oversized_requests_are_invalid,
    full_buffer_is_resource_exhausted_with_retry_info,
    live_settings_apply_without_a_restart,
    retention_removes_old_points_only,
    rollups_summarize_every_hour_and_day,
);

/// A real server with the ingest service it started (through its module, as
/// `pharos serve --target ingest` starts it); see `pharos_test_support`.
type TestServer = pharos_test_support::TestServer<Arc<IngestService>>;

/// The largest gRPC message the servers and clients of these tests take.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

async fn start_server(database: &TestDatabase, settings: IngestSettings) -> TestServer {
    start_on(database.store().await, settings).await
}

async fn start_on(store: Store, settings: IngestSettings) -> TestServer {
    let module = IngestModule::new(settings);
    let mut server = ServerSettings::default();
    server.limits.max_message_bytes = MAX_MESSAGE_BYTES;
    let started = pharos_test_support::TestServer::builder(store)
        .server(server)
        .module(module.clone())
        .start()
        .await;
    started.with_service(
        module
            .service()
            .expect("the ingest module started its service"),
    )
}

/// Stops `server` as `pharos serve` does and starts a new one on the same store.
async fn restart(server: TestServer, settings: IngestSettings) -> TestServer {
    let store = server.store.clone();
    server.stop().await;
    start_on(store, settings).await
}

/// What the tests reach a [`TestServer`] through.
trait Harness {
    async fn client(&self) -> IngestServiceClient<Channel>;
    fn repository(&self) -> MetricsRepository;
}

impl Harness for TestServer {
    async fn client(&self) -> IngestServiceClient<Channel> {
        IngestServiceClient::connect(self.endpoint())
            .await
            .expect("connect")
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    fn repository(&self) -> MetricsRepository {
        self.store.metrics()
    }
}

fn point(name: &str, labels: &[(&str, &str)], time_us: i64, value: f64) -> pb::MetricPoint {
    pb::MetricPoint {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(name, value)| pb::Label {
                name: (*name).to_owned(),
                value: (*value).to_owned(),
            })
            .collect(),
        time_unix_nano: time_us * 1_000,
        value,
    }
}

fn write(points: Vec<pb::MetricPoint>) -> pb::WriteMetricsRequest {
    pb::WriteMetricsRequest { points }
}

async fn points_round_trip_exactly(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let mut client = server.client().await;
    let now = server.store.clock().now_micros();
    let values = [
        0.0,
        -1.5,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        42.25,
    ];
    let mut points = Vec::new();
    for (host, offset) in [("a", 0), ("b", 1)] {
        for (step, value) in values.iter().enumerate() {
            let time = now - 60_000_000 + step as i64 * 1_000_000 + offset;
            points.push(point(
                "cpu_seconds_total",
                &[("host", host), ("mode", "user")],
                time,
                *value,
            ));
        }
    }
    // Label order does not make a new series.
    points.push(point(
        "cpu_seconds_total",
        &[("mode", "user"), ("host", "a")],
        now - 1,
        7.0,
    ));
    let response = client
        .write_metrics(write(points))
        .await
        .expect("write")
        .into_inner();
    assert_eq!(
        (response.accepted, response.rejected),
        (15, 0),
        "{response:?}"
    );

    let repository = server.repository();
    let series = repository
        .series_of("cpu_seconds_total")
        .await
        .expect("series");
    let keys: Vec<&str> = series.iter().map(|s| s.labels_key.as_str()).collect();
    assert_eq!(keys, [r#"host="a",mode="user""#, r#"host="b",mode="user""#]);
    for (index, series) in series.iter().enumerate() {
        let stored = repository
            .read_points(series.id, now - 120_000_000, now + 1)
            .await
            .expect("points");
        let expected_len = if index == 0 { 8 } else { 7 };
        assert_eq!(stored.len(), expected_len);
        for (step, value) in values.iter().enumerate() {
            let (time, got) = stored[step];
            assert_eq!(
                time,
                now - 60_000_000 + step as i64 * 1_000_000 + index as i64
            );
            assert!(
                got == *value || (got.is_nan() && value.is_nan()),
                "{got} != {value}"
            );
        }
    }
}

async fn partial_success_reports_each_bad_item(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let mut client = server.client().await;
    let now = server.store.clock().now_micros();
    let points = vec![
        point("http_requests_total", &[("code", "200")], now, 1.0),
        point("http-requests", &[], now, 1.0),
        point("http_requests_total", &[("__reserved", "x")], now, 1.0),
        point(
            "http_requests_total",
            &[("code", "500")],
            now - 8 * 86_400_000_000,
            1.0,
        ),
        point(
            "http_requests_total",
            &[("code", "500")],
            now + 3_600_000_000,
            1.0,
        ),
        point(
            "http_requests_total",
            &[("code", "1"), ("code", "2")],
            now,
            1.0,
        ),
        point(
            "http_requests_total",
            &[("code", &"x".repeat(2_000))],
            now,
            1.0,
        ),
        point("http_requests_total", &[("code", "404")], 0, 2.0),
    ];
    let response = client
        .write_metrics(write(points))
        .await
        .expect("write")
        .into_inner();
    assert_eq!((response.accepted, response.rejected), (2, 6));
    let got: Vec<(u32, &str, &str)> = response
        .rejections
        .iter()
        .map(|r| (r.index, r.field.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "name", "METRIC_NAME_INVALID"),
            (2, "labels[0].name", "LABEL_NAME_RESERVED"),
            (3, "time_unix_nano", "TIME_TOO_OLD"),
            (4, "time_unix_nano", "TIME_TOO_FAR_IN_FUTURE"),
            (5, "labels", "LABEL_NAME_DUPLICATE"),
            (6, "labels[0].value", "LABEL_VALUE_TOO_LONG"),
        ]
    );
    assert!(response.rejections.iter().all(|r| !r.message.is_empty()));
    assert_eq!(server.repository().count_points().await.expect("count"), 2);
    // A zero time means "now".
    let series = server
        .repository()
        .series_of("http_requests_total")
        .await
        .expect("series");
    let not_found = series
        .iter()
        .find(|s| s.labels_key == r#"code="404""#)
        .expect("404 series");
    let stored = server
        .repository()
        .read_points(not_found.id, now - 1, now + 60_000_000)
        .await
        .expect("points");
    assert_eq!(stored.len(), 1);
}

async fn cardinality_limit_rejects_new_series(database: &TestDatabase) {
    let mut settings = IngestSettings::default();
    settings.limits.max_series_per_metric = 3;
    let server = start_server(database, settings.clone()).await;
    let mut client = server.client().await;
    let now = server.store.clock().now_micros();
    let users: Vec<String> = (0..5).map(|user| user.to_string()).collect();
    let points: Vec<_> = users
        .iter()
        .map(|user| point("logins_total", &[("user", user)], now, 1.0))
        .collect();
    let response = client
        .write_metrics(write(points))
        .await
        .expect("write")
        .into_inner();
    assert_eq!((response.accepted, response.rejected), (3, 2));
    assert!(
        response
            .rejections
            .iter()
            .all(|r| r.reason == "CARDINALITY_LIMIT" && r.field == "labels")
    );
    assert_eq!(server.service.series_count("logins_total"), 3);

    // Known series still write; another metric has its own budget.
    let points = vec![
        point("logins_total", &[("user", "0")], now, 2.0),
        point("logins_total", &[("user", "9")], now, 2.0),
        point("logouts_total", &[("user", "9")], now, 2.0),
    ];
    let response = client
        .write_metrics(write(points))
        .await
        .expect("write")
        .into_inner();
    assert_eq!((response.accepted, response.rejected), (2, 1));
    assert_eq!(response.rejections[0].index, 1);

    // The count survives a restart: it is loaded from the store.
    drop(server);
    let restarted = start_server(database, settings).await;
    assert_eq!(restarted.service.series_count("logins_total"), 3);
    let mut client = restarted.client().await;
    let response = client
        .write_metrics(write(vec![point(
            "logins_total",
            &[("user", "10")],
            now,
            1.0,
        )]))
        .await
        .expect("write")
        .into_inner();
    assert_eq!(response.rejections[0].reason, "CARDINALITY_LIMIT");
}

async fn concurrent_writers_are_all_committed(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let now = server.store.clock().now_micros();
    let mut tasks = Vec::new();
    for writer in 0..16 {
        let mut client = server.client().await;
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for request in 0..20 {
                let points = (0..100)
                    .map(|index| {
                        let series = format!("{}", (writer * 7 + index) % 50);
                        point(
                            "queue_depth",
                            &[("queue", &series)],
                            now - 1_000_000 + request * 100 + index,
                            index as f64,
                        )
                    })
                    .collect();
                let response = client
                    .write_metrics(write(points))
                    .await
                    .expect("write")
                    .into_inner();
                assert_eq!(response.rejected, 0);
                accepted += response.accepted;
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.expect("writer");
    }
    assert_eq!(accepted, 16 * 20 * 100);
    assert_eq!(
        server.repository().count_points().await.expect("count"),
        16 * 20 * 100
    );
    assert_eq!(
        server
            .repository()
            .series_of("queue_depth")
            .await
            .expect("series")
            .len(),
        50
    );
}

async fn oversized_requests_are_invalid(database: &TestDatabase) {
    let mut settings = IngestSettings::default();
    settings.limits.max_items_per_request = 10;
    let server = start_server(database, settings).await;
    let mut client = server.client().await;
    let points = (0..11)
        .map(|index| {
            point(
                "m",
                &[],
                server.store.clock().now_micros(),
                f64::from(index),
            )
        })
        .collect();
    let status = client
        .write_metrics(write(points))
        .await
        .expect_err("too many points");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(violations[0].field, "points");
    assert_eq!(server.repository().count_points().await.expect("count"), 0);
}

async fn full_buffer_is_resource_exhausted_with_retry_info(database: &TestDatabase) {
    let mut settings = IngestSettings::default();
    settings.metrics.max_buffered_points = 100;
    let server = start_server(database, settings).await;
    let now = server.store.clock().now_micros();
    let batch = |value: f64| {
        write(
            (0..80)
                .map(|index| point("m", &[], now - index, value))
                .collect(),
        )
    };
    // Series first, so that the blocked write below waits on the points table only.
    server
        .client()
        .await
        .write_metrics(batch(0.0))
        .await
        .expect("first write");

    let blocker = Blocker::hold(database).await;
    let mut first = server.client().await;
    let blocked = batch(1.0);
    let waiting = tokio::spawn(async move { first.write_metrics(blocked).await });
    while server.service.buffered_points() < 80 {
        tokio::task::yield_now().await;
    }
    let status = server
        .client()
        .await
        .write_metrics(batch(2.0))
        .await
        .expect_err("buffer is full");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));

    blocker.release().await;
    let response = waiting
        .await
        .expect("task")
        .expect("the waiting write commits")
        .into_inner();
    assert_eq!(response.accepted, 80);
    assert_eq!(server.service.buffered_points(), 0);
    assert_eq!(
        server.repository().count_points().await.expect("count"),
        160
    );
}

/// Holds a lock that stops the writers from inserting points until released.
enum Blocker {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::SqliteConnection),
}

impl Blocker {
    async fn hold(database: &TestDatabase) -> Blocker {
        use sqlx::Connection as _;
        if database.url().starts_with("sqlite:") {
            let mut connection = sqlx::SqliteConnection::connect(database.url())
                .await
                .expect("connect");
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut connection)
                .await
                .expect("lock");
            Blocker::Sqlite(connection)
        } else {
            let pool = sqlx::PgPool::connect(database.url())
                .await
                .expect("connect");
            let mut transaction = pool.begin().await.expect("begin");
            sqlx::query("LOCK TABLE metric_points IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *transaction)
                .await
                .expect("lock");
            Blocker::Postgres(transaction)
        }
    }

    async fn release(self) {
        match self {
            Blocker::Postgres(transaction) => transaction.rollback().await.expect("release"),
            Blocker::Sqlite(mut connection) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut connection)
                    .await
                    .expect("release");
            }
        }
    }
}

/// A database that refuses connections answers UNAVAILABLE with RetryInfo, stores nothing of the
/// refused batch, and the service recovers by itself once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_unavailable_then_recovers() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let server = start_server(&database, IngestSettings::default()).await;
    let mut client = server.client().await;
    let now = server.store.clock().now_micros();
    let batch = |value: f64| {
        write(vec![point(
            "up",
            &[("job", "api")],
            now + value as i64,
            value,
        )])
    };
    client
        .write_metrics(batch(1.0))
        .await
        .expect("write while up");

    let admin = sqlx::PgPool::connect(database.admin_url())
        .await
        .expect("admin");
    let name = database.name();
    let set_connections = |allow: bool| {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}"
        )))
    };
    set_connections(false)
        .execute(&admin)
        .await
        .expect("refuse connections");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(name)
        .execute(&admin)
        .await
        .expect("terminate");

    let status = client
        .write_metrics(batch(2.0))
        .await
        .expect_err("database is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.get_details_retry_info().is_some(),
        "RetryInfo: {status:?}"
    );

    set_connections(true)
        .execute(&admin)
        .await
        .expect("allow connections");
    let response = client
        .write_metrics(batch(3.0))
        .await
        .expect("write after recovery")
        .into_inner();
    assert_eq!(response.accepted, 1);
    let series = server.repository().series_of("up").await.expect("series");
    let values: Vec<f64> = server
        .repository()
        .read_points(series[0].id, now, now + 10)
        .await
        .expect("points")
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    assert_eq!(values, [1.0, 3.0]);
}

/// `pharos.ingest.*` keys set in the config service change the running service, a bad value is
/// ignored, and deleting a key restores the start-up value.
async fn live_settings_apply_without_a_restart(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let config = pharos_config::ConfigService::start(
        server.store.clone(),
        pharos_config::ConfigSettings::default(),
        server.shutdown.clone(),
    )
    .await
    .expect("config service");
    let local = pharos_config::client::api(config.clone());
    let follower = pharos_ingest::live_settings::follow(
        server.service.clone(),
        pharos_api::module::Resolved {
            api: local.clone(),
            source: "in-process".to_string(),
        },
        &server.shutdown,
    )
    .expect("ingest settings can be made live");
    let set = |key: &str, value: &str| pharos_proto::config::v1::SetRequest {
        key: key.to_owned(),
        value: value.to_owned(),
        ..Default::default()
    };

    let mut client = server.client().await;
    let two_labels = || {
        write(vec![point(
            "m",
            &[("a", "1"), ("b", "2")],
            server.store.clock().now_micros(),
            1.0,
        )])
    };
    assert_eq!(
        client
            .write_metrics(two_labels())
            .await
            .expect("write")
            .into_inner()
            .rejected,
        0
    );

    let revision = local
        .set(set("pharos.ingest.limits.max_labels", "1"))
        .await
        .expect("set")
        .revision;
    applied(&follower, revision).await;
    assert_eq!(server.service.settings().limits.max_labels, 1);
    let reply = client
        .write_metrics(two_labels())
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.rejections[0].reason, "TOO_MANY_LABELS");

    // A value that does not fit its setting is ignored; the last good one stays.
    let revision = local
        .set(set("pharos.ingest.metrics.max_buffered_points", "lots"))
        .await
        .expect("set")
        .revision;
    applied(&follower, revision).await;
    let revision = local
        .set(set("pharos.ingest.metrics.max_batch_points", "500"))
        .await
        .expect("set")
        .revision;
    applied(&follower, revision).await;
    assert_eq!(server.service.settings().metrics.max_batch_points, 500);
    assert_eq!(
        server.service.settings().metrics.max_buffered_points,
        500_000
    );

    let revision = local
        .set(set("pharos.ingest.metrics.max_buffered_points", "10"))
        .await
        .expect("set")
        .revision;
    applied(&follower, revision).await;
    assert_eq!(server.service.settings().metrics.max_buffered_points, 10);
    let twenty = write(
        (0..20)
            .map(|i| point("m", &[], server.store.clock().now_micros() - i, 1.0))
            .collect(),
    );
    let status = client
        .write_metrics(twenty)
        .await
        .expect_err("over the whole buffer");
    assert_eq!(status.code(), Code::InvalidArgument);

    let revision = local
        .delete(pharos_proto::config::v1::DeleteRequest {
            key: "pharos.ingest.limits.max_labels".to_owned(),
            ..Default::default()
        })
        .await
        .expect("delete")
        .revision;
    applied(&follower, revision).await;
    assert_eq!(server.service.settings().limits.max_labels, 32);
    assert_eq!(
        client
            .write_metrics(two_labels())
            .await
            .expect("write")
            .into_inner()
            .rejected,
        0
    );
}

/// Waits until the follower has applied `revision` (bounded, so that a lost change fails the
/// test instead of hanging it).
async fn applied(follower: &pharos_api::live_settings::Follower, revision: i64) {
    tokio::time::timeout(Duration::from_secs(10), follower.applied(revision))
        .await
        .expect("the live setting is applied within 10 s");
}

/// Points past the raw retention go (whole day partitions on PostgreSQL); newer ones stay.
async fn retention_removes_old_points_only(database: &TestDatabase) {
    let mut settings = IngestSettings::default();
    settings.retention.metrics_raw = Duration::from_secs(2 * 86_400);
    let server = start_server(database, settings).await;
    let mut client = server.client().await;
    let now = server.store.clock().now_micros();
    let day = 86_400_000_000;
    let points = vec![
        point("disk_used_bytes", &[], now - 5 * day, 5.0),
        point("disk_used_bytes", &[], now - 4 * day, 4.0),
        point("disk_used_bytes", &[], now - day / 2, 0.5),
        point("disk_used_bytes", &[], now, 0.0),
    ];
    let reply = client
        .write_metrics(write(points))
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted, 4);
    let partitions_before = server
        .repository()
        .partition_count()
        .await
        .expect("partitions");

    let expired = server.service.apply_retention().await.expect("retention");
    let series = server
        .repository()
        .series_of("disk_used_bytes")
        .await
        .expect("series");
    let left: Vec<f64> = server
        .repository()
        .read_points(series[0].id, 0, i64::MAX)
        .await
        .expect("points")
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    assert_eq!(left, [0.5, 0.0]);
    if database.url().starts_with("postgres") {
        assert!(expired.metrics.partitions_dropped >= 3, "{expired:?}");
        let partitions_after = server
            .repository()
            .partition_count()
            .await
            .expect("partitions");
        assert_eq!(
            partitions_after,
            partitions_before - expired.metrics.partitions_dropped as i64
        );
    } else {
        assert_eq!(expired.metrics.rows_deleted, 2);
    }

    // Writing into a day whose partition expiry dropped recreates it.
    let reply = client
        .write_metrics(write(vec![point(
            "disk_used_bytes",
            &[],
            now - 5 * day,
            5.5,
        )]))
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted, 1);
}

async fn rollups_summarize_every_hour_and_day(database: &TestDatabase) {
    let server = start_server(database, IngestSettings::default()).await;
    let mut client = server.client().await;
    const HOUR: i64 = 3_600_000_000;
    let now = server.store.clock().now_micros();
    // Two whole hours that ended well before now, and the current hour (not rolled up yet).
    let first = (now - 4 * HOUR).div_euclid(HOUR) * HOUR;
    let second = first + HOUR;
    let current = now.div_euclid(HOUR) * HOUR;
    let mut points = Vec::new();
    for (step, value) in [3.0, -1.0, 10.0, f64::NAN].into_iter().enumerate() {
        points.push(point(
            "queue_depth",
            &[("q", "a")],
            first + step as i64 * 1_000,
            value,
        ));
    }
    points.push(point("queue_depth", &[("q", "a")], second + 5, 2.5));
    points.push(point("queue_depth", &[("q", "b")], second + 6, 7.0));
    points.push(point("queue_depth", &[("q", "a")], current, 100.0));
    let reply = client
        .write_metrics(write(points))
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted, 7);
    let pending = server
        .repository()
        .pending_rollups()
        .await
        .expect("pending");
    assert!(pending.contains(&first) && pending.contains(&second) && pending.contains(&current));

    let done = server.service.roll_up().await.expect("roll up");
    assert_eq!(done.hours, 2, "{done:?}");
    assert_eq!(done.hourly_rows, 3);
    let repository = server.repository();
    let series = repository.series_of("queue_depth").await.expect("series");
    let (a, b) = (series[0].id, series[1].id);
    let hourly = repository.read_rollups(a, true).await.expect("hourly");
    let summary: Vec<(i64, i64, f64, f64, f64)> = hourly
        .iter()
        .map(|row| (row.bucket_us, row.count, row.sum, row.min, row.max))
        .collect();
    // NaN is not counted.
    assert_eq!(
        summary,
        [(first, 3, 12.0, -1.0, 10.0), (second, 1, 2.5, 2.5, 2.5)]
    );
    assert_eq!(
        repository.pending_rollups().await.expect("pending"),
        [current],
        "the current hour waits until it is over"
    );

    // A late point marks its hour again, and the next pass counts it.
    let reply = client
        .write_metrics(write(vec![point(
            "queue_depth",
            &[("q", "a")],
            first + 99,
            20.0,
        )]))
        .await
        .expect("write")
        .into_inner();
    assert_eq!(reply.accepted, 1);
    assert_eq!(server.service.roll_up().await.expect("roll up").hours, 1);
    let hourly = repository.read_rollups(a, true).await.expect("hourly");
    assert_eq!(
        (hourly[0].count, hourly[0].sum, hourly[0].max),
        (4, 32.0, 20.0)
    );

    // The daily rows add up the hourly ones of their day.
    const DAY: i64 = 86_400_000_000;
    for (id, hourly) in [
        (a, hourly),
        (b, repository.read_rollups(b, true).await.expect("hourly")),
    ] {
        let daily = repository.read_rollups(id, false).await.expect("daily");
        for day in daily {
            let hours: Vec<_> = hourly
                .iter()
                .filter(|row| row.bucket_us.div_euclid(DAY) * DAY == day.bucket_us)
                .collect();
            assert!(!hours.is_empty());
            assert_eq!(day.count, hours.iter().map(|row| row.count).sum::<i64>());
            assert_eq!(day.sum, hours.iter().map(|row| row.sum).sum::<f64>());
            assert_eq!(
                day.min,
                hours
                    .iter()
                    .map(|row| row.min)
                    .fold(f64::INFINITY, f64::min)
            );
            assert_eq!(
                day.max,
                hours
                    .iter()
                    .map(|row| row.max)
                    .fold(f64::NEG_INFINITY, f64::max)
            );
        }
    }

    // Rollups expire on their own clocks.
    let expired = repository
        .expire_rollups(now + DAY, now - 400 * DAY)
        .await
        .expect("expire");
    assert!(expired.partitions_dropped + expired.rows_deleted > 0);
    assert!(
        repository
            .read_rollups(a, true)
            .await
            .expect("hourly")
            .is_empty()
    );
    assert!(
        !repository
            .read_rollups(a, false)
            .await
            .expect("daily")
            .is_empty()
    );
}
