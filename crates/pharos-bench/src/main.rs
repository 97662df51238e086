//! `pharos-bench`: the benchmark harness behind `cargo xtask bench <area>`. Each area runs Pharos
//! and the real system it is compared with (etcd for config, Prometheus and Alertmanager for
//! alert) through the same measuring code in the same run, and prints numbers and ratios;
//! nothing here asserts a speed.

// The wall clock is allowed here: it times other processes in real time (see clippy.toml).
#![allow(clippy::disallowed_methods)]

mod alert;
mod config;
mod database;
mod ingest;
mod process;
mod query;
mod search;
mod search_reference;
mod stats;
mod systems;
mod writes;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The same allocator as the `pharos` binary, so the load generator in this process costs the
/// shared cores no more than `pharos loadgen` would.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "pharos-bench",
    about = "Pharos benchmarks beside their reference systems"
)]
struct Cli {
    #[command(subcommand)]
    area: Area,
}

#[derive(Subcommand)]
enum Area {
    /// The config service beside etcd: Get, Set, cross-replica propagation, watcher fan-out,
    /// start-up time and idle memory.
    Config(config::Args),
    /// Metric ingest through gRPC beside raw binary COPY into the same schema.
    Ingest(ingest::Args),
    /// Vector search beside FAISS and hnswlib on the same data and threads.
    Search(search::Args),
    /// PromQL queries through the Prometheus HTTP API beside Prometheus and VictoriaMetrics on
    /// the same data, and beside the SQL the query service issues.
    Query(query::Args),
    /// The alert service beside Prometheus and Alertmanager: write acknowledgement to webhook
    /// per breach, notifications sent, evaluations under load, the security detectors.
    Alert(alert::Args),
}

#[derive(clap::Args, Clone)]
pub struct Common {
    /// The release `pharos` binary to measure.
    #[arg(long)]
    pharos_bin: PathBuf,
    /// A PostgreSQL server URL; the harness creates and drops its own database there.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    /// Fewer operations: checks the harness end to end in a minute.
    #[arg(long)]
    quick: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pharos-bench: cannot start the tokio runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.area {
            Area::Config(args) => config::run(args).await,
            Area::Ingest(args) => ingest::run(args).await,
            Area::Search(args) => search::run(args).await,
            Area::Query(args) => query::run(args).await,
            Area::Alert(args) => alert::run(args).await,
        }
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pharos-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
