//! [`run`]: connects the store, applies migrations, starts the services of
//! the enabled targets on one gRPC listener (with health and reflection) and
//! the HTTP listener, and returns once a shutdown has drained them.

use std::sync::Arc;

use anyhow::Context as _;
use pharos_runtime::Shutdown;
use pharos_runtime::health::{
    BoxFuture, ComponentHealth, FreeDiskCheck, HealthCheck, HealthRegistry, ProcessMemoryCheck,
};
use pharos_runtime::server::GrpcServer;
use pharos_store::Store;
use tokio::net::TcpListener;

use crate::settings::Settings;
use crate::target::Target;

/// Opens the store and applies pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database).await.with_context(|| {
        format!(
            "cannot open the database {}; check --database-url (postgres://... or sqlite:path)",
            redact(&settings.database.url)
        )
    })?;
    store
        .migrate()
        .await
        .context("cannot apply the database migrations")?;
    Ok(store)
}

/// Runs the services of `settings.target` until `shutdown` fires.
pub async fn run(
    settings: Settings,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let services = Target::resolve(&settings.target)?;
    let store = open_store(&settings).await?;
    tracing::info!(backend = store.backend().name(), targets = ?services, "store ready");

    let mut grpc = GrpcServer::new(settings.server.clone());
    grpc.add_descriptor_set(pharos_proto::FILE_DESCRIPTOR_SET);
    let mut health = HealthRegistry::new();
    health.register(Arc::new(DatabaseCheck(store.clone())));
    health.register(Arc::new(ProcessMemoryCheck));
    health.register(Arc::new(FreeDiskCheck {
        path: settings.data_dir.clone(),
    }));

    // Services with work to finish once the server has drained.
    let mut stopping: Vec<Arc<pharos_search::SearchService>> = Vec::new();
    // The in-process config service, for the live settings of the others.
    let mut local_config: Option<pharos_config::ConfigClient> = None;
    for service in &services {
        match service {
            Target::Config => {
                let config = pharos_config::ConfigService::start(
                    store.clone(),
                    settings.config.clone(),
                    shutdown.clone(),
                )
                .await
                .context("cannot start the config service")?;
                for check in config.health_checks() {
                    health.register(check);
                }
                local_config = Some(pharos_config::ConfigClient::local(config.clone()));
                grpc.add_service(pharos_config::grpc::server(
                    config,
                    settings.server.limits.max_message_bytes,
                ));
            }
            Target::Ingest => {
                let ingest = pharos_ingest::IngestService::start(
                    store.clone(),
                    settings.ingest.clone(),
                    shutdown.clone(),
                )
                .await
                .context("cannot start the ingest service")?;
                for check in ingest.health_checks() {
                    health.register(check);
                }
                match live_settings_client(
                    local_config.clone(),
                    &settings.ingest.config_endpoint,
                    &settings.ingest.config_token,
                )
                .await
                {
                    Some(client) => {
                        pharos_ingest::live::follow(ingest.clone(), client, shutdown.clone());
                    }
                    None => tracing::info!(
                        "ingest live settings off: no config service in this process and no ingest.config_endpoint"
                    ),
                }
                grpc.add_service(pharos_ingest::grpc::server(
                    ingest.clone(),
                    settings.server.limits.max_message_bytes,
                ));
                let max_message_bytes = settings.server.limits.max_message_bytes;
                grpc.add_service(pharos_ingest::otlp::metrics_server(
                    ingest.clone(),
                    max_message_bytes,
                ));
                grpc.add_service(pharos_ingest::otlp::traces_server(
                    ingest.clone(),
                    max_message_bytes,
                ));
                grpc.add_service(pharos_ingest::otlp::logs_server(ingest, max_message_bytes));
                grpc.add_descriptor_set(opentelemetry_proto::DESCRIPTORS);
            }
            Target::Search => {
                let mut search_settings = settings.search.clone();
                if search_settings.snapshot_dir.is_none() {
                    search_settings.snapshot_dir = Some(settings.data_dir.join("search"));
                }
                let search = pharos_search::SearchService::start(
                    store.clone(),
                    search_settings,
                    shutdown.clone(),
                )
                .await
                .context("cannot start the search service")?;
                for check in search.health_checks() {
                    health.register(check);
                }
                grpc.add_service(pharos_search::grpc::server(
                    search.clone(),
                    settings.server.limits.max_message_bytes,
                ));
                stopping.push(search);
            }
            other => anyhow::bail!("target `{other}` is not built yet"),
        }
    }

    let http = tokio::spawn(pharos_runtime::http::serve(
        http_listener,
        pharos_runtime::http::router(health, shutdown.clone()),
        shutdown.clone(),
    ));
    let served = grpc.serve(grpc_listener, shutdown.clone()).await;
    shutdown.trigger();
    for service in stopping {
        service.stop().await;
    }
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "http server failed"),
        Err(error) => tracing::warn!(%error, "http server task failed"),
    }
    store.close().await;
    served.context("the gRPC server failed")?;
    Ok(())
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Where a service follows its live settings: the in-process config service, else the
/// configured endpoint (a failure to reach it leaves live settings off, never the service).
async fn live_settings_client(
    local: Option<pharos_config::ConfigClient>,
    endpoint: &str,
    token: &str,
) -> Option<pharos_config::ConfigClient> {
    if local.is_some() {
        return local;
    }
    if endpoint.is_empty() {
        return None;
    }
    let token = (!token.is_empty()).then_some(token);
    match pharos_config::ConfigClient::connect(endpoint, token, Some("pharos-ingest")).await {
        Ok(client) => Some(client),
        Err(error) => {
            tracing::warn!(%endpoint, %error, "cannot reach the config service; live settings off");
            None
        }
    }
}

/// The store every service shares: its backend, a timed round trip, the pool's connections.
struct DatabaseCheck(Store);

impl HealthCheck for DatabaseCheck {
    fn name(&self) -> &str {
        "database"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let backend = self.0.backend().name();
            let (open, idle) = self.0.pool_stats();
            match self.0.ping().await {
                Ok(elapsed) => ComponentHealth::ok(serde_json::json!({
                    "backend": backend,
                    "round_trip_ms": elapsed.as_secs_f64() * 1000.0,
                    "connections": open,
                    "idle": idle,
                })),
                Err(error) => ComponentHealth::down(serde_json::json!({
                    "backend": backend,
                    "error": error.to_string(),
                })),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite:x.db"), "sqlite:x.db");
    }
}
