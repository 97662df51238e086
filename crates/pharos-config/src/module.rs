//! The config service's registration in the module registry: target `config`; it serves the
//! [`ConfigApi`](pharos_api::ConfigApi) to the services started after it in the same process.

use std::sync::Arc;

use pharos_api::module::{BoxError, Interface, Module, ModuleContext, StartedService, Target};

use crate::service::ConfigService;
use crate::settings::ConfigSettings;

/// Starts the config service with its section of the settings. Clones share the service
/// started by any of them ([`ConfigModule::service`]).
#[derive(Debug, Clone)]
pub struct ConfigModule {
    settings: ConfigSettings,
    started: StartedService<ConfigService>,
}

impl ConfigModule {
    pub fn new(settings: ConfigSettings) -> Self {
        Self {
            settings,
            started: StartedService::default(),
        }
    }

    /// The service this module or a clone of it started, `None` before that.
    pub fn service(&self) -> Option<Arc<ConfigService>> {
        self.started.get()
    }
}

#[async_trait::async_trait]
impl Module for ConfigModule {
    fn target(&self) -> Target {
        Target::Config
    }

    fn provides(&self) -> &'static [Interface] {
        &[Interface::Config]
    }

    async fn start(&self, context: &mut ModuleContext<'_>) -> Result<(), BoxError> {
        let service = ConfigService::start(
            context.store.clone(),
            self.settings.clone(),
            context.shutdown.clone(),
        )
        .await?;
        self.started.record(&service);
        for check in service.health_checks() {
            context.add_health_check(check);
        }
        context.provide_config(crate::client::api(service.clone()));
        context.describe_grpc(pharos_proto::FILE_DESCRIPTOR_SET);
        let max_message_bytes = context.max_message_bytes();
        context.serve_grpc(crate::grpc::server(service, max_message_bytes));
        Ok(())
    }
}
