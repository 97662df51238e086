//! `cargo xtask`: the Pharos build system. Every task a contributor or CI runs lives here, in Rust,
//! so that `.ci/run` stays a one-liner and a fresh machine needs nothing but cargo.

// The wall clock is allowed here: it times build steps and waits on processes in real time (see clippy.toml).
#![allow(clippy::disallowed_methods)]

mod bench;
mod ci;
mod pg;
mod tidy;
mod tools;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Pharos build tasks", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Everything CI runs: PostgreSQL check, Prometheus, promtool and amtool installs (the PromQL,
    /// rules and routing references), fmt, tidy,
    /// clippy -D warnings, buf lint, Rust tests, Python client tests. Installs the tools it needs
    /// under ~/.cache/pharos/tools (and Debian's prometheus and prometheus-alertmanager with
    /// apt-get).
    Ci,
    /// Source checks that need no build: `//!` docs on line 1, no dbg!, no #[ignore].
    Tidy,
    /// A throwaway local PostgreSQL for people who don't run one (port 54329, data under
    /// ~/.cache/pharos/pg, or /var/tmp/pharos-pg when run as root).
    Pg {
        #[command(subcommand)]
        action: pg::Action,
    },
    /// Benchmarks, printed beside the reference system measured in the same run.
    Bench {
        /// What to measure: config, ingest, search or query (alert arrives with its service).
        area: String,
        /// Shorter runs, for a smoke check of the harness.
        #[arg(long)]
        quick: bool,
    },
    /// Builds the debug `pharos` binary and runs only the Python client tests against it.
    PyTest,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(project_root());
    match cli.task {
        Task::Ci => ci::run(&sh),
        Task::Tidy => tidy::run(&project_root()),
        Task::Pg { action } => pg::run(&sh, action),
        Task::Bench { area, quick } => bench::run(&sh, &area, quick),
        Task::PyTest => ci::python_tests(&sh, true),
    }
}

/// The workspace root, whatever directory cargo was started in. `cargo xtask` (`cargo run`)
/// sets `CARGO_MANIFEST_DIR` when it starts the binary; that comes first, because the path compiled in goes stale when a clone elsewhere
/// shares the target directory: cargo keeps a built binary when the same sources move.
fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `~/.cache/pharos`: tools, the throwaway PostgreSQL and (by default) the shared target dir.
fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("pharos")
}

/// Where cargo puts build output for this workspace.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

/// Prints a step header so CI logs read as a list of steps with their durations.
fn step<T>(name: &str, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    eprintln!("\n==> {name}");
    let started = std::time::Instant::now();
    let result = work();
    let outcome = if result.is_ok() { "ok" } else { "FAILED" };
    eprintln!(
        "<== {name}: {outcome} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    result
}
