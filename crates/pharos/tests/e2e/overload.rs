//! Overload on a throttled database: RESOURCE_EXHAUSTED with RetryInfo instead of queueing,
//! bounded memory, and every acknowledged point stored once the database is back.

use std::time::{Duration, Instant};

use pharos_store::testing::TestDatabase;

use crate::support::Process;

/// A throttled database (its points table locked by another session) fills the bounded write
/// buffer: further writes get RESOURCE_EXHAUSTED with RetryInfo at once instead of queueing, the
/// process memory stays bounded, and once the database is back every acknowledged point is
/// stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_database_gives_retryable_overload_with_bounded_memory() {
    use sqlx::Connection as _;
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--target", "ingest", "--database-url", database.url()];
    let server = Process::spawn_with_env(
        dir.path(),
        &args,
        &[("PHAROS_INGEST__METRICS__MAX_BUFFERED_POINTS", "8000")],
    );
    server.wait_serving().await;
    let idle_rss = server.rss_bytes();

    let mut lock = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connect");
    sqlx::raw_sql("BEGIN; LOCK TABLE metric_points IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .expect("lock the points table");

    let settings = pharos_loadgen::LoadSettings {
        client: pharos_api::ClientSettings::new(server.endpoint()),
        duration: Duration::from_secs(4),
        connections: 2,
        concurrency: 16,
        batch: 1_000,
        series: 5_000,
        ..pharos_loadgen::LoadSettings::default()
    };
    let progress = std::sync::Arc::new(pharos_loadgen::Progress::default());
    let load = tokio::spawn({
        let progress = progress.clone();
        async move { pharos_loadgen::run(&settings, progress).await }
    });
    let mut peak_rss = 0;
    let throttled_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < throttled_until {
        peak_rss = peak_rss.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let refused_while_throttled = progress.errors.load(std::sync::atomic::Ordering::Relaxed);
    let accepted_while_throttled = progress
        .items_accepted
        .load(std::sync::atomic::Ordering::Relaxed);
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("release the lock");
    let report = load.await.expect("load task").expect("load");
    peak_rss = peak_rss.max(server.rss_bytes());

    assert_eq!(
        accepted_while_throttled, 0,
        "nothing is acknowledged before it commits"
    );
    assert!(refused_while_throttled > 0, "{report:?}");
    assert!(
        report.errors.get("ResourceExhausted").copied().unwrap_or(0) > 0,
        "{report:?}"
    );
    assert!(
        report.errors.keys().all(|code| code == "ResourceExhausted"),
        "only retryable overload: {report:?}"
    );
    // 16 callers of 1,000 points against a buffer of 8,000: half of them are refused at any time.
    // The buffered points are a few hundred KiB; the rest is requests being decoded and refused.
    assert!(
        peak_rss < idle_rss + 100 * 1024 * 1024,
        "peak RSS {peak_rss} against {idle_rss} idle"
    );
    assert!(report.items_accepted > 0, "{report:?}");

    let mut check = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connect");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metric_points")
        .fetch_one(&mut check)
        .await
        .expect("count");
    assert_eq!(
        stored,
        i64::try_from(report.items_accepted).expect("fits"),
        "{}",
        server.log()
    );
    server.terminate();
}
