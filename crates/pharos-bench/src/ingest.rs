//! `pharos-bench ingest`: sustained metric ingest through gRPC (`pharos loadgen`'s generator
//! against `pharos serve --target ingest` on PostgreSQL), beside the reference: the same number of
//! point rows loaded with plain `psql` binary `COPY` into the same schema, on one connection and
//! on two, in the same run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pharos_loadgen::{LoadSettings, Progress};
use pharos_store::metrics::{PointRow, encode_copy_binary};

use crate::Common;
use crate::database::BenchDatabase;
use crate::process::start_pharos;
use crate::stats::{Table, Value};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let duration = Duration::from_secs(if args.common.quick { 5 } else { 20 });
    let work = tempfile::tempdir()?;
    let pharos_db = BenchDatabase::create(&args.common.database_url, "ingest").await?;
    let reference_db = BenchDatabase::create(&args.common.database_url, "copy").await?;
    let result = measure(&args, duration, work.path(), &pharos_db, &reference_db).await;
    pharos_db.drop_it().await;
    reference_db.drop_it().await;
    let table = result?;
    table.print();
    println!(
        "\nratio = pharos / raw COPY. Pharos: `pharos serve --target ingest` on PostgreSQL {}, \
         load from `pharos loadgen`'s generator in this process (4 connections, 8 requests of \
         1,000 points in flight, 10,000 series), every point acknowledged only after commit. \
         Reference: the same number of rows in binary COPY format piped into `psql` (one COPY per \
         connection, one transaction each), into the same partitioned, indexed table.",
        pharos_db.server_version
    );
    Ok(())
}

async fn measure(
    args: &Args,
    duration: Duration,
    work: &Path,
    pharos_db: &BenchDatabase,
    reference_db: &BenchDatabase,
) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "ingest: metric points through gRPC beside raw binary COPY, same run",
        "raw COPY",
    );

    eprintln!("starting pharos serve --target ingest");
    let (mut server, addr) = start_pharos(
        &args.common.pharos_bin,
        "ingest",
        &pharos_db.url,
        work,
        "pharos-ingest",
    )
    .await?;
    eprintln!("sending load for {duration:?}");
    let settings = LoadSettings {
        endpoint: format!("http://{addr}"),
        duration,
        connections: 4,
        concurrency: 8,
        batch: 1_000,
        series: 10_000,
        token: None,
    };
    let report = pharos_loadgen::run(&settings, Arc::new(Progress::default())).await?;
    server.check_alive()?;
    let peak_rss = server.peak_rss_bytes()?;
    server.stop().await?;
    if !report.errors.is_empty() {
        eprintln!("  failed requests: {:?}", report.errors);
    }
    let stored = count_points(&pharos_db.url).await?;
    if stored < report.points_accepted as i64 {
        bail!(
            "{} points were acknowledged but only {stored} are stored",
            report.points_accepted
        );
    }
    eprintln!(
        "  pharos: {} points acknowledged, {stored} stored, {:.0} points/s",
        report.points_accepted, report.points_per_second
    );

    // The reference schema is the one Pharos makes: migrations plus today's partitions.
    let (reference_server, _) = start_pharos(
        &args.common.pharos_bin,
        "ingest",
        &reference_db.url,
        work,
        "reference-schema",
    )
    .await?;
    reference_server.stop().await?;
    let rows = usize::try_from(report.points_accepted)
        .unwrap_or(usize::MAX)
        .clamp(100_000, 5_000_000);
    eprintln!("loading {rows} rows with psql binary COPY on 1 and 2 connections");
    let one = copy_rate(&reference_db.url, rows, 1, work).await?;
    truncate(&reference_db.url).await?;
    let two = copy_rate(&reference_db.url, rows, 2, work).await?;

    let rate = Value::Rate(report.points_per_second);
    table.row(
        "metric points/s, gRPC ack after commit vs COPY on 1 connection",
        rate,
        Value::Rate(one),
        ">= 0.8x, >= 100k/s",
    );
    table.row(
        "metric points/s vs COPY on 2 connections",
        rate,
        Value::Rate(two),
        ">= 0.8x",
    );
    let ms = |value: f64| Value::Time(Duration::from_secs_f64(value / 1000.0));
    table.row(
        "ack latency p50 (1,000-point requests)",
        ms(report.ack_p50_ms),
        Value::Missing,
        "",
    );
    table.row("ack latency p99", ms(report.ack_p99_ms), Value::Missing, "");
    table.row(
        "peak RSS of the ingest process",
        Value::Bytes(peak_rss),
        Value::Missing,
        "< 150 MB",
    );
    Ok(table)
}

/// Rows per second loading `rows` point rows with `connections` parallel `psql` COPYs.
async fn copy_rate(url: &str, rows: usize, connections: usize, work: &Path) -> anyhow::Result<f64> {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as i64;
    let per_connection = rows.div_ceil(connections);
    let mut files = Vec::new();
    for connection in 0..connections {
        let points: Vec<PointRow> = (0..per_connection)
            .map(|index| {
                let global = connection * per_connection + index;
                PointRow {
                    series_id: (global % 10_000) as i64 + 1,
                    time_us: now_us - global as i64,
                    value: (global % 1000) as f64 * 0.5,
                }
            })
            .collect();
        let path = work.join(format!("copy-{connection}.bin"));
        std::fs::write(&path, encode_copy_binary(&points))?;
        files.push(path);
    }
    let started = Instant::now();
    let mut loads = Vec::new();
    for file in &files {
        let input = std::fs::File::open(file)?;
        let child = tokio::process::Command::new("psql")
            .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg("COPY metric_points (series_id, time_us, value) FROM STDIN (FORMAT binary)")
            .stdin(input)
            .output();
        loads.push(child);
    }
    for load in loads {
        let output = load
            .await
            .context("cannot run psql: install the PostgreSQL client")?;
        if !output.status.success() {
            bail!(
                "psql COPY failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let elapsed = started.elapsed();
    Ok((per_connection * connections) as f64 / elapsed.as_secs_f64())
}

async fn count_points(url: &str) -> anyhow::Result<i64> {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(url).await?;
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM metric_points")
        .fetch_one(&mut connection)
        .await?)
}

async fn truncate(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(url).await?;
    sqlx::query("TRUNCATE metric_points")
        .execute(&mut connection)
        .await?;
    Ok(())
}
