//! The search service's registration in the module registry: target `search`. Its snapshots go
//! to `<data_dir>/search` unless `search.snapshot_dir` says otherwise; its stop hook writes the
//! last snapshot and releases that directory.

use std::sync::Arc;

use pharos_api::module::{BoxError, Module, ModuleContext, StartedService, Target};

use crate::service::SearchService;
use crate::settings::SearchSettings;

/// Starts the search service with its section of the settings. Clones share the service
/// started by any of them ([`SearchModule::service`]).
#[derive(Debug, Clone)]
pub struct SearchModule {
    settings: SearchSettings,
    started: StartedService<SearchService>,
}

impl SearchModule {
    pub fn new(settings: SearchSettings) -> Self {
        Self {
            settings,
            started: StartedService::default(),
        }
    }

    /// The service this module or a clone of it started, `None` before that.
    pub fn service(&self) -> Option<Arc<SearchService>> {
        self.started.get()
    }
}

#[async_trait::async_trait]
impl Module for SearchModule {
    fn target(&self) -> Target {
        Target::Search
    }

    async fn start(&self, context: &mut ModuleContext<'_>) -> Result<(), BoxError> {
        let mut settings = self.settings.clone();
        if settings.snapshot_dir.is_none() {
            settings.snapshot_dir = Some(context.data_dir.join("search"));
        }
        let service =
            SearchService::start(context.store.clone(), settings, context.shutdown.clone()).await?;
        self.started.record(&service);
        for check in service.health_checks() {
            context.add_health_check(check);
        }
        let max_message_bytes = context.max_message_bytes();
        context.describe_grpc(pharos_proto::FILE_DESCRIPTOR_SET);
        context.serve_grpc(crate::grpc::server(service.clone(), max_message_bytes));
        context.on_stop(move || async move { service.stop().await });
        Ok(())
    }
}
