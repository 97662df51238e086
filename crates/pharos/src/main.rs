//! The `pharos` binary: parses the command line, loads the settings, sets up
//! telemetry and hands over to the library (`pharos::run` for `serve`).

use anyhow::Context as _;
use clap::Parser as _;
use pharos::cli::{Cli, Command, load_settings};
use pharos_runtime::Shutdown;
use tokio::net::TcpListener;

/// jemalloc instead of the system allocator: the ingest path allocates a few small strings per
/// item, and glibc's malloc took about 40 % of the CPU under sustained ingest.
/// Its build-time settings are in `.cargo/config.toml` (`JEMALLOC_SYS_WITH_MALLOC_CONF`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = load_settings(&args)?;
            let _telemetry = pharos_runtime::telemetry::init(&settings.telemetry)?;
            let grpc = TcpListener::bind(settings.server.grpc_addr)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen for gRPC on {}; pick a free address with --grpc-addr",
                        settings.server.grpc_addr
                    )
                })?;
            let http = TcpListener::bind(settings.server.http_addr)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen for HTTP on {}; pick a free address with --http-addr",
                        settings.server.http_addr
                    )
                })?;
            let shutdown = Shutdown::new();
            shutdown.trigger_on_signals();
            pharos::run(settings, grpc, http, shutdown).await
        }
        Command::Migrate(args) => {
            let settings = load_settings(&args)?;
            let _telemetry = pharos_runtime::telemetry::init(&settings.telemetry)?;
            let store = pharos::serve::open_store(&settings).await?;
            println!(
                "migrations applied to {} ({})",
                pharos::serve::redact(&settings.database.url),
                store.backend().name()
            );
            store.close().await;
            Ok(())
        }
        Command::Settings(args) => {
            let settings = load_settings(&args)?;
            print!("{}", settings.to_toml());
            Ok(())
        }
        Command::Targets => {
            let registry = pharos::modules::registry(&pharos::Settings::default());
            for (target, built) in registry.listing() {
                let state = if built { "" } else { "  (not built yet)" };
                println!("{}{state}", target.name());
            }
            Ok(())
        }
        Command::Config(args) => pharos::cli::run_config(args).await,
        Command::Search(args) => pharos::search_cli::run_search(args).await,
        Command::Query(args) => pharos::query_cli::run_query(args).await,
        Command::Rules(args) => pharos::rules_cli::run_rules(args).await,
        Command::Alert(args) => pharos::alert_cli::run_alert(args).await,
        Command::Loadgen(args) => pharos::loadgen::run(args).await,
        Command::Health(args) => pharos::health_cli::run_health(args).await,
    }
}
