//! The alert service's registration in the module registry: target `alert`. It queries through
//! the query service and writes through ingest (in this process, or at `alert.query_endpoint`
//! and `alert.ingest_endpoint`), follows ingest's feed to evaluate as data commits, serves the
//! Alertmanager API v2 and `POST /-/reload` on the HTTP listener, and reloads its rule and
//! routing files on SIGHUP.

use std::sync::Arc;

use pharos_api::client::ClientSettings;
use pharos_api::module::{
    BoxError, Interface, Module, ModuleContext, Need, StartedService, Target,
};

use crate::service::AlertService;
use crate::settings::AlertSettings;

/// Starts the alert service with its section of the settings. Clones share the service
/// started by any of them ([`AlertModule::service`]).
#[derive(Debug, Clone)]
pub struct AlertModule {
    settings: AlertSettings,
    started: StartedService<AlertService>,
}

impl AlertModule {
    pub fn new(settings: AlertSettings) -> Self {
        Self {
            settings,
            started: StartedService::default(),
        }
    }

    /// The service this module or a clone of it started, `None` before that.
    pub fn service(&self) -> Option<Arc<AlertService>> {
        self.started.get()
    }

    fn remote(&self, endpoint: &str) -> ClientSettings {
        ClientSettings {
            token: Some(self.settings.service_token.clone()),
            ..ClientSettings::new(endpoint.to_owned())
        }
        .with_actor("pharos-alert")
    }
}

#[async_trait::async_trait]
impl Module for AlertModule {
    fn target(&self) -> Target {
        Target::Alert
    }

    fn needs(&self) -> Vec<Need> {
        vec![
            Need::required(Interface::Query, "alert.query_endpoint")
                .or_remote(self.remote(&self.settings.query_endpoint)),
            Need::required(Interface::Ingest, "alert.ingest_endpoint")
                .or_remote(self.remote(&self.settings.ingest_endpoint)),
            Need::optional(Interface::Feed, "alert.ingest_endpoint")
                .or_remote(self.remote(&self.settings.ingest_endpoint)),
            Need::optional(Interface::Config, "alert.config_endpoint")
                .or_remote(self.remote(&self.settings.config_endpoint)),
        ]
    }

    async fn start(&self, context: &mut ModuleContext<'_>) -> Result<(), BoxError> {
        let (Some(query), Some(ingest)) = (context.query(), context.ingest()) else {
            return Err("the query and ingest services are required".into());
        };
        let external_url = if self.settings.external_url.is_empty() {
            format!("http://{}", context.server.http_addr)
        } else {
            self.settings.external_url.trim_end_matches('/').to_owned()
        };
        let writes = ingest.api.clone();
        let service = AlertService::start(
            context.store.clone(),
            self.settings.clone(),
            external_url,
            context.clock.clone(),
            query.api,
            ingest.api,
            context.feed().map(|feed| feed.api),
            context.shutdown.clone(),
        )
        .await?;
        self.started.record(&service);
        context.add_health_check(service.health_check());
        if self.settings.self_monitoring {
            context
                .shutdown
                .spawn(crate::self_monitoring::write_own_metrics(
                    writes,
                    context.store.clone(),
                    context.server.grpc_addr.to_string(),
                    self.settings.self_monitoring_interval,
                    context.shutdown.clone(),
                ));
        }
        match context.config() {
            Some(config) => {
                let follower = crate::live_settings::follow(
                    service.detectors().clone(),
                    self.settings.detectors.clone(),
                    config,
                    &context.shutdown,
                );
                if let Some(follower) = follower {
                    context.add_health_check(follower.health_check("alert_live_settings"));
                }
            }
            None => tracing::info!(
                "alert live settings off: no config service in this process and no alert.config_endpoint"
            ),
        }
        context.describe_grpc(pharos_proto::FILE_DESCRIPTOR_SET);
        context.serve_grpc(crate::grpc::server(
            service.clone(),
            context.shutdown.clone(),
            context.max_message_bytes(),
        ));
        context.serve_http(crate::api::routes(service.clone()));
        context
            .shutdown
            .spawn(reload_on_sighup(service.clone(), context.shutdown.clone()));
        context.on_stop(move || async move { service.stop().await });
        Ok(())
    }
}

/// Reloads the rule and routing files on each SIGHUP, as Prometheus and Alertmanager do.
async fn reload_on_sighup(service: Arc<AlertService>, shutdown: pharos_runtime::Shutdown) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reload with POST /-/reload");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            received = hangups.recv() => {
                if received.is_none() {
                    return;
                }
                let _ = service.reload().await;
            }
        }
    }
}
