//! `pharos-bench ingest`: sustained ingest through gRPC (`pharos loadgen`'s generator against
//! `pharos serve --target ingest` on PostgreSQL): metric points, then spans and log records
//! through our own API and through OTLP. Beside each, the reference: the same number of rows
//! loaded with plain `psql` binary `COPY` into the same schema, on one connection and on two, in
//! the same run (spans and logs are exported from what the service stored, so the rows are
//! identical; metric points are synthetic rows of the same shape).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pharos_loadgen::{LoadSettings, Progress, Protocol, Signal};
use pharos_store::signals::metrics::{PointRow, encode_copy_binary};

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
         1,000 items in flight; 10,000 series; traces of 5 spans), every item acknowledged only \
         after commit, with the committed-data feed on. Reference: the same number of rows in \
         binary COPY format piped into `psql` (one COPY per connection, one transaction each), \
         into the same partitioned, indexed tables.",
        pharos_db.server_version
    );
    Ok(())
}

/// One load of the benchmark: what, how, and for how long (as a share of the full duration).
struct Load {
    signal: Signal,
    protocol: Protocol,
    label: &'static str,
    /// The stored table and the columns the reference COPY loads.
    table: &'static str,
    columns: &'static str,
}

const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, trace_state, service, name, kind, \
     start_ns, end_ns, status_code, status_message, attributes, events, links, resource";
const LOG_COLUMNS: &str = "time_ns, observed_ns, service, severity_number, severity_text, body, \
     attributes, resource, trace_id, span_id";

async fn measure(
    args: &Args,
    duration: Duration,
    work: &Path,
    pharos_db: &BenchDatabase,
    reference_db: &BenchDatabase,
) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "ingest: telemetry through gRPC beside raw binary COPY of the same rows, same run",
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
    let loads = [
        Load {
            signal: Signal::Metrics,
            protocol: Protocol::Pharos,
            label: "metric points",
            table: "metric_points",
            columns: "series_id, time_us, value",
        },
        Load {
            signal: Signal::Spans,
            protocol: Protocol::Pharos,
            label: "spans",
            table: "spans",
            columns: SPAN_COLUMNS,
        },
        Load {
            signal: Signal::Spans,
            protocol: Protocol::Otlp,
            label: "spans (OTLP)",
            table: "spans",
            columns: SPAN_COLUMNS,
        },
        Load {
            signal: Signal::Logs,
            protocol: Protocol::Pharos,
            label: "log records",
            table: "logs",
            columns: LOG_COLUMNS,
        },
        Load {
            signal: Signal::Logs,
            protocol: Protocol::Otlp,
            label: "log records (OTLP)",
            table: "logs",
            columns: LOG_COLUMNS,
        },
    ];
    let mut reports = Vec::new();
    for load in &loads {
        // The metric load runs the full duration; each of the others half of it.
        let duration = if load.signal == Signal::Metrics {
            duration
        } else {
            duration / 2
        };
        eprintln!("sending {} for {duration:?}", load.label);
        let settings = LoadSettings {
            client: pharos_api::ClientSettings::new(format!("http://{addr}")),
            duration,
            connections: 4,
            concurrency: 8,
            batch: 1_000,
            series: 10_000,
            signal: load.signal,
            protocol: load.protocol,
        };
        let report = pharos_loadgen::run(&settings, Arc::new(Progress::default())).await?;
        server.check_alive()?;
        if !report.errors.is_empty() {
            eprintln!("  failed requests: {:?}", report.errors);
        }
        eprintln!(
            "  {} acknowledged, {:.0}/s, ack p50 {:.1} ms p99 {:.1} ms",
            report.items_accepted, report.items_per_second, report.ack_p50_ms, report.ack_p99_ms
        );
        reports.push(report);
    }
    let peak_rss = server.peak_rss_bytes()?;
    server.stop().await?;
    for (table_name, signals) in [
        ("metric_points", &loads[0..1]),
        ("spans", &loads[1..3]),
        ("logs", &loads[3..5]),
    ] {
        let acknowledged: u64 = reports
            .iter()
            .zip(&loads)
            .filter(|(_, load)| signals.iter().any(|wanted| wanted.label == load.label))
            .map(|(report, _)| report.items_accepted)
            .sum();
        let stored = count(&pharos_db.url, table_name).await?;
        if stored < acknowledged as i64 {
            bail!(
                "{acknowledged} {table_name} rows were acknowledged but only {stored} are stored"
            );
        }
    }

    // The reference schema is the one Pharos makes: migrations plus the partitions ahead.
    let (reference_server, _) = start_pharos(
        &args.common.pharos_bin,
        "ingest",
        &reference_db.url,
        work,
        "reference-schema",
    )
    .await?;
    reference_server.stop().await?;
    let ms = |value: f64| Value::Time(Duration::from_secs_f64(value / 1000.0));
    let mut references: Vec<(&str, f64, f64)> = Vec::new();
    for (load, report) in loads.iter().zip(&reports) {
        let rows = usize::try_from(report.items_accepted)
            .unwrap_or(usize::MAX)
            .clamp(20_000, 5_000_000);
        // The same rows the service stored (synthetic ones for metric points, whose series ids
        // need no lookup), loaded once per table on 1 and on 2 connections.
        let (one, two) = match references.iter().find(|(table, _, _)| *table == load.table) {
            Some((_, one, two)) => (*one, *two),
            None => {
                eprintln!(
                    "loading {rows} {} rows with psql binary COPY on 1 and 2 connections",
                    load.table
                );
                let files = if load.table == "metric_points" {
                    point_files(rows, 2, work)?
                } else {
                    export(&pharos_db.url, load.table, load.columns, rows, 2, work).await?
                };
                let one =
                    copy_rate(&reference_db.url, load.table, load.columns, &files, false).await?;
                truncate(&reference_db.url, load.table).await?;
                let two =
                    copy_rate(&reference_db.url, load.table, load.columns, &files, true).await?;
                truncate(&reference_db.url, load.table).await?;
                references.push((load.table, one, two));
                (one, two)
            }
        };
        let rate = Value::Rate(report.items_per_second);
        let aim = match load.signal {
            Signal::Metrics => ">= 0.8x, >= 100k/s",
            _ => ">= 0.8x, >= 30k/s",
        };
        table.row(
            &format!("{}/s, ack after commit vs COPY on 1 connection", load.label),
            rate,
            Value::Rate(one),
            aim,
        );
        table.row(
            &format!("{}/s vs COPY on 2 connections", load.label),
            rate,
            Value::Rate(two),
            ">= 0.8x",
        );
        table.row(
            &format!("{} ack latency p50 (1,000-item requests)", load.label),
            ms(report.ack_p50_ms),
            Value::Missing,
            "",
        );
        table.row(
            &format!("{} ack latency p99", load.label),
            ms(report.ack_p99_ms),
            Value::Missing,
            "",
        );
    }
    table.row(
        "peak RSS of the ingest process, whole run",
        Value::Bytes(peak_rss),
        Value::Missing,
        "< 150 MB",
    );
    Ok(table)
}

/// `rows` synthetic point rows in binary COPY files, split over `parts` files.
fn point_files(rows: usize, parts: usize, work: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as i64;
    let per_part = rows.div_ceil(parts);
    let mut files = Vec::new();
    for part in 0..parts {
        let points: Vec<PointRow> = (0..per_part)
            .map(|index| {
                let global = part * per_part + index;
                PointRow {
                    series_id: (global % 10_000) as i64 + 1,
                    time_us: now_us - global as i64,
                    value: (global % 1000) as f64 * 0.5,
                }
            })
            .collect();
        let path = work.join(format!("metric_points-{part}.bin"));
        std::fs::write(&path, encode_copy_binary(&points))?;
        files.push(path);
    }
    Ok(files)
}

/// `rows` rows of `table` as the service stored them, exported by `psql` in binary COPY format,
/// split over `parts` files.
async fn export(
    url: &str,
    table: &str,
    columns: &str,
    rows: usize,
    parts: usize,
    work: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let per_part = rows.div_ceil(parts);
    let mut files = Vec::new();
    for part in 0..parts {
        let path = work.join(format!("{table}-{part}.bin"));
        let output = std::fs::File::create(&path)?;
        let query = format!(
            "COPY (SELECT {columns} FROM {table} ORDER BY ctid LIMIT {per_part} OFFSET {}) TO STDOUT (FORMAT binary)",
            part * per_part
        );
        let status = tokio::process::Command::new("psql")
            .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", &query])
            .stdout(output)
            .status()
            .await
            .context("cannot run psql: install the PostgreSQL client")?;
        if !status.success() {
            bail!("psql could not export {table}");
        }
        files.push(path);
    }
    Ok(files)
}

/// Rows per second loading every file with one `psql` COPY each (one transaction each): all at
/// once (`parallel`, one connection per file) or one after the other (one connection at a time).
async fn copy_rate(
    url: &str,
    table: &str,
    columns: &str,
    files: &[PathBuf],
    parallel: bool,
) -> anyhow::Result<f64> {
    let statement = format!("COPY {table} ({columns}) FROM STDIN (FORMAT binary)");
    let load = |file: &PathBuf| -> anyhow::Result<_> {
        let input = std::fs::File::open(file)?;
        Ok(tokio::process::Command::new("psql")
            .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", &statement])
            .stdin(input)
            .output())
    };
    let started = Instant::now();
    let mut outputs = Vec::new();
    if parallel {
        let loads: Vec<_> = files.iter().map(load).collect::<anyhow::Result<_>>()?;
        for running in loads {
            outputs.push(running.await);
        }
    } else {
        for file in files {
            outputs.push(load(file)?.await);
        }
    }
    for output in outputs {
        let output = output.context("cannot run psql: install the PostgreSQL client")?;
        if !output.status.success() {
            bail!(
                "psql COPY failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let elapsed = started.elapsed();
    let rows = count(url, table).await?;
    Ok(rows as f64 / elapsed.as_secs_f64())
}

async fn count(url: &str, table: &str) -> anyhow::Result<i64> {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(url).await?;
    // The table name is one of our constants.
    let query = format!("SELECT COUNT(*) FROM {table}");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_one(&mut connection)
        .await?)
}

async fn truncate(url: &str, table: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(url).await?;
    let query = format!("TRUNCATE {table}");
    sqlx::query(sqlx::AssertSqlSafe(query))
        .execute(&mut connection)
        .await?;
    Ok(())
}
