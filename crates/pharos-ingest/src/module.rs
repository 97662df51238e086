//! The ingest service's registration in the module registry: target `ingest`. It serves the
//! committed-data feed ([`FeedApi`](pharos_api::FeedApi)) to the services started after it, and
//! follows its live settings through the config service of this process, or the one at
//! `ingest.config_endpoint`.

use std::sync::Arc;

use pharos_api::client::ClientSettings;
use pharos_api::module::{
    BoxError, Interface, Module, ModuleContext, Need, StartedService, Target,
};

use crate::service::IngestService;
use crate::settings::IngestSettings;

/// Starts the ingest service with its section of the settings. Clones share the service
/// started by any of them ([`IngestModule::service`]).
#[derive(Debug, Clone)]
pub struct IngestModule {
    settings: IngestSettings,
    started: StartedService<IngestService>,
}

impl IngestModule {
    pub fn new(settings: IngestSettings) -> Self {
        Self {
            settings,
            started: StartedService::default(),
        }
    }

    /// The service this module or a clone of it started, `None` before that.
    pub fn service(&self) -> Option<Arc<IngestService>> {
        self.started.get()
    }
}

#[async_trait::async_trait]
impl Module for IngestModule {
    fn target(&self) -> Target {
        Target::Ingest
    }

    fn provides(&self) -> &'static [Interface] {
        &[Interface::Feed, Interface::Ingest]
    }

    fn needs(&self) -> Vec<Need> {
        let remote = ClientSettings {
            token: Some(self.settings.config_token.clone()),
            ..ClientSettings::new(self.settings.config_endpoint.clone())
        }
        .with_actor("pharos-ingest");
        vec![Need::optional(Interface::Config, "ingest.config_endpoint").or_remote(remote)]
    }

    async fn start(&self, context: &mut ModuleContext<'_>) -> Result<(), BoxError> {
        let service = IngestService::start(
            context.store.clone(),
            self.settings.clone(),
            context.shutdown.clone(),
        )
        .await?;
        self.started.record(&service);
        for check in service.health_checks() {
            context.add_health_check(check);
        }
        match context.config() {
            Some(config) => {
                let follower =
                    crate::live_settings::follow(service.clone(), config, &context.shutdown);
                if let Some(follower) = follower {
                    context.add_health_check(follower.health_check("ingest_live_settings"));
                }
            }
            None => tracing::info!(
                "ingest live settings off: no config service in this process and no ingest.config_endpoint"
            ),
        }
        context.provide_feed(crate::client::feed_api(service.clone()));
        context.provide_ingest(crate::client::ingest_api(service.clone()));
        let max_message_bytes = context.max_message_bytes();
        context.describe_grpc(pharos_proto::FILE_DESCRIPTOR_SET);
        context.describe_grpc(opentelemetry_proto::DESCRIPTORS);
        context.serve_grpc(crate::grpc::server(service.clone(), max_message_bytes));
        context.serve_grpc(crate::otlp::metrics_server(
            service.clone(),
            max_message_bytes,
        ));
        context.serve_grpc(crate::otlp::traces_server(
            service.clone(),
            max_message_bytes,
        ));
        context.serve_grpc(crate::otlp::logs_server(service.clone(), max_message_bytes));
        context.serve_http(crate::remote_write::routes(service, max_message_bytes));
        Ok(())
    }
}
